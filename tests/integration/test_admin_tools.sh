#!/usr/bin/env bash
# The everyday admin tools on a real mount against moto: cp, cp -p, rsync -a (twice: the second run
# must transfer nothing, also after a remount), rsync --inplace over an existing file (whole-file and
# delta), tar -x, dd with odd block sizes both ways, sha256sum, find and du. Every *.bak object that
# lands in the bucket must decrypt with the Python reference (tests/tools/ref_cse.py verify) to the
# source bytes, including the ones rsync wrote under its temporary name (.name.bak.XXXXXX) and renamed;
# other names must be stored as they are; nothing may be left as a temp object or open multipart upload.
# Run by CTest as: tests/lib/with-stack tests/integration/test_admin_tools.sh
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
src_dir=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$src_dir/tests/lib/mount.sh"
PY=${S3CSEFS_PYTHON:-python3}
REF_PY="$PY $src_dir/tests/tools/ref_cse.py"

passed=0
failed=0
pass() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }
check() {   # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

MIB=1048576
work=$S3CSEFS_TEST_TMPDIR/admin
mnt=$S3CSEFS_TEST_TMPDIR/mnt
prefix=admin
mkdir -p "$work" "$mnt"
# Default options, as an admin mounts; a remount below shows what is really stored, not cached.
mount_it() { s3csefs_mount "$S3CSEFS_TEST_BUCKET:/$prefix" "$mnt"; }
mount_it || { echo "FAIL: mount"; echo "0 passed, 1 failed"; exit 1; }

# ---- source tree: mixed .bak and other files, subdirectories, one 20 MiB .bak ---------------------
tree=$work/tree
mkdir -p "$tree/sub/deeper" "$tree/empty-dir"
head -c $((20 * MIB)) /dev/urandom >"$tree/big.bak"
head -c $((5 * MIB + 3)) /dev/urandom >"$tree/sub/mid.bak"
head -c 4096 /dev/urandom >"$tree/sub/deeper/block.bak"
head -c 0 /dev/urandom >"$tree/sub/empty.bak"
head -c 777 /dev/urandom >"$tree/notes.txt"
head -c $((1 * MIB + 1)) /dev/urandom >"$tree/sub/deeper/data.bin"
: >"$tree/sub/empty.log"
chmod 640 "$tree/sub/mid.bak"
chmod 600 "$tree/notes.txt"
# Distinct, whole-second mtimes in the past, so a wrong or dropped mtime is visible.
n=0
while IFS= read -r -d '' f; do
    n=$((n + 1))
    touch -m -d "@$((1600000000 + n * 86400))" "$f"
done < <(find "$tree" -type f -print0)

# Where each mount path's bytes came from, for the bucket-side check at the end.
declare -A origin=()

# ---- cp and cp -p -------------------------------------------------------------------------------
src=$tree/sub/mid.bak
if cp "$src" "$mnt/cp-plain.bak"; then pass "cp"; else fail "cp"; fi
origin[cp-plain.bak]=$src
if cp -p "$src" "$mnt/cp-p.bak"; then pass "cp -p"; else fail "cp -p"; fi
origin[cp-p.bak]=$src
cp -p "$tree/notes.txt" "$mnt/cp-p.txt" || fail "cp -p notes.txt"
origin[cp-p.txt]=$tree/notes.txt
check "cp content equal" cmp -s "$src" "$mnt/cp-plain.bak"
check "cp -p content equal" cmp -s "$src" "$mnt/cp-p.bak"

attrs() { stat -c '%a %Y %s' "$1" 2>&1; }
check_attrs_kept() {   # check_attrs_kept LABEL SOURCE MOUNTED
    local want got
    want=$(attrs "$2"); got=$(attrs "$3")
    if [ "$want" = "$got" ]; then pass "$1: mode, mtime, size kept ($got)"; else
        fail "$1: mode/mtime/size: got '$got', want '$want'"; fi
}
check_attrs_kept "cp -p .bak" "$src" "$mnt/cp-p.bak"
check_attrs_kept "cp -p .txt" "$tree/notes.txt" "$mnt/cp-p.txt"

# Empty files created with O_EXCL (as rsync's mkstemp does; bash's noclobber opens that way), closed,
# then given an mtime by path (touch -h: utimensat on the name, no open), as rsync does to every empty
# file it copies.
empty_bad=0
for i in 1 2 3 4 5; do
    name=empty-then-touch-$i.bak
    (set -C; : >"$mnt/$name") || { fail "create $name with O_EXCL"; continue; }
    origin[$name]=$tree/sub/empty.bak
    if ! out=$(touch -h -m -d @1600000000 "$mnt/$name" 2>&1) ||
        [ "$(stat -c '%s %Y' "$mnt/$name" 2>&1)" != "0 1600000000" ]; then
        empty_bad=$((empty_bad + 1))
        echo "  $name: $out $(stat -c '%s %Y' "$mnt/$name" 2>&1)" >&2
    fi
done
[ "$empty_bad" -eq 0 ] && pass "empty files (O_EXCL): set mtime by path right after close" ||
    fail "empty files (O_EXCL): setting mtime by path right after close failed $empty_bad of 5 times"

# ---- rsync -a of the tree, twice ----------------------------------------------------------------
rsync_files_transferred() {   # prints the count from rsync --stats
    awk -F': ' '/^Number of regular files transferred/ { gsub(/,/, "", $2); print $2 }'
}
out=$(rsync -a --stats "$tree/" "$mnt/tree/" 2>&1)
rc=$?
first=$(printf '%s\n' "$out" | rsync_files_transferred)
if [ "$rc" -eq 0 ] && [ "$first" = 7 ]; then pass "rsync -a first run transferred 7 files"; else
    fail "rsync -a first run: rc=$rc, transferred '$first', want 7: $out"; fi
while IFS= read -r -d '' f; do
    rel=${f#"$tree"/}
    origin["tree/$rel"]=$f
done < <(find "$tree" -type f -print0)

out=$(rsync -a --stats "$tree/" "$mnt/tree/" 2>&1)
second=$(printf '%s\n' "$out" | rsync_files_transferred)
if [ "$second" = 0 ]; then pass "rsync -a second run transferred nothing"; else
    fail "rsync -a second run transferred '$second' files: $out"; fi

# rsync -a preserved mode and mtime on every file (this is what makes the second run a no-op).
attr_bad=0
while IFS= read -r -d '' f; do
    rel=${f#"$tree"/}
    want=$(attrs "$f"); got=$(attrs "$mnt/tree/$rel")
    [ "$want" = "$got" ] || { fail "rsync -a attributes of $rel: got '$got', want '$want'"; attr_bad=1; }
done < <(find "$tree" -type f -print0)
[ "$attr_bad" -eq 0 ] && pass "rsync -a kept mode and mtime of every file"

# ---- rsync --inplace over an existing file --------------------------------------------------------
# Whole-file (rsync's default for local copies): rewrites from offset 0 without O_TRUNC, then truncates
# to the new, shorter size.
inplace_src=$work/inplace.bak
head -c $((3 * MIB + 100)) /dev/urandom >"$inplace_src"
cp "$inplace_src" "$mnt/inplace.bak" || fail "cp before --inplace"
head -c $((2 * MIB + 7)) /dev/urandom >"$inplace_src"
if rsync --inplace "$inplace_src" "$mnt/inplace.bak"; then pass "rsync --inplace (whole file, shrinking)"; else
    fail "rsync --inplace (whole file, shrinking)"; fi
check "rsync --inplace result equal (shrunk)" cmp -s "$inplace_src" "$mnt/inplace.bak"
origin[inplace.bak]=$inplace_src

# A new file with --inplace: written straight under its final name (no temporary name, no rename).
fresh_src=$work/fresh-inplace.bak
head -c $((9 * MIB + 3)) /dev/urandom >"$fresh_src"
if rsync -a --inplace "$fresh_src" "$mnt/fresh-inplace.bak" && cmp -s "$fresh_src" "$mnt/fresh-inplace.bak"; then
    pass "rsync -a --inplace of a new file"; else fail "rsync -a --inplace of a new file"; fi
origin[fresh-inplace.bak]=$fresh_src

# Delta transfer: most blocks match and are skipped with a seek, one changed block is rewritten in
# the middle of the existing file.
delta_src=$work/delta.bak
head -c $((2 * MIB)) /dev/urandom >"$delta_src"
cp "$delta_src" "$mnt/delta.bak" || fail "cp before --inplace --no-whole-file"
printf 'CHANGED-IN-THE-MIDDLE' | dd of="$delta_src" bs=1 seek=$((MIB + 5)) conv=notrunc status=none
# Same size; a different mtime so rsync's quick check does not skip the file.
touch -m -d @1650000000 "$delta_src"
out=$(rsync --inplace --no-whole-file --stats "$delta_src" "$mnt/delta.bak" 2>&1)
rc=$?
matched=$(printf '%s\n' "$out" | awk -F': ' '/^Matched data/ { gsub(/,/, "", $2); sub(/ .*/, "", $2); print $2 }')
if [ "$rc" -eq 0 ] && [ "${matched:-0}" -gt 0 ]; then
    pass "rsync --inplace --no-whole-file (delta: $matched bytes matched)"
else
    fail "rsync --inplace --no-whole-file: rc=$rc, matched '$matched': $out"
fi
check "rsync --inplace delta result equal" cmp -s "$delta_src" "$mnt/delta.bak"
origin[delta.bak]=$delta_src

# ---- tar -x into the mount --------------------------------------------------------------------------
tar -C "$work" -cf "$work/tree.tar" tree || fail "tar -c"
mkdir -p "$mnt/untar"
if tar -C "$mnt/untar" -xf "$work/tree.tar"; then pass "tar -x into the mount"; else fail "tar -x into the mount"; fi
# Right after tar exits, as tar itself or a script would look (GNU tar creates with the final mode,
# then sets mtime and owner on the open file, and calls no chmod).
compare_untar() {   # compare_untar LABEL
    local f rel want got bad=0
    while IFS= read -r -d '' f; do
        rel=${f#"$tree"/}
        cmp -s "$f" "$mnt/untar/tree/$rel" || { fail "$1: content of $rel"; bad=1; }
        want=$(attrs "$f"); got=$(attrs "$mnt/untar/tree/$rel")
        [ "$want" = "$got" ] || { fail "$1: attributes of $rel: got '$got', want '$want'"; bad=1; }
    done < <(find "$tree" -type f -print0)
    [ "$bad" -eq 0 ] && pass "$1: contents, modes and mtimes equal the source"
}
compare_untar "tar -x"
while IFS= read -r -d '' f; do
    origin["untar/tree/${f#"$tree"/}"]=$f
done < <(find "$tree" -type f -print0)
# tar's view of the extracted tree agrees with the archive (mode, size, mtime of every member).
if tar -C "$mnt/untar" --compare -f "$work/tree.tar" >"$work/tar-diff" 2>&1; then pass "tar --compare finds no difference"; else
    fail "tar --compare: $(head -5 "$work/tar-diff")"; fi

# ---- dd with odd block sizes, both ways ---------------------------------------------------------------
dd_src=$work/dd-src
head -c $((9 * MIB + 11)) /dev/urandom >"$dd_src"
for bs in $((3 * MIB + 1)) 1000001 4097 511; do
    name=dd-$bs.bak
    [ "$bs" -eq 511 ] && name=dd-$bs.dat
    if dd if="$dd_src" of="$mnt/$name" bs="$bs" status=none; then pass "dd write bs=$bs"; else fail "dd write bs=$bs"; fi
    origin[$name]=$dd_src
done
for bs in $((3 * MIB + 1)) 65537 4095; do
    got=$(dd if="$mnt/dd-$((3 * MIB + 1)).bak" bs="$bs" status=none | sha256sum | cut -d' ' -f1)
    want=$(sha256sum <"$dd_src" | cut -d' ' -f1)
    [ "$got" = "$want" ] && pass "dd read bs=$bs" || fail "dd read bs=$bs: sha256 differs"
done
# A read from the middle with skip/count, odd sizes, across block and part boundaries.
got=$(dd if="$mnt/dd-1000001.bak" bs=4097 skip=1234 count=777 status=none | sha256sum | cut -d' ' -f1)
want=$(dd if="$dd_src" bs=4097 skip=1234 count=777 status=none | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] && pass "dd ranged read skip=1234 count=777 bs=4097" || fail "dd ranged read differs"

# ---- sha256sum through the mount equals the source, after a remount (nothing served from memory) --------
s3csefs_unmount "$mnt" || fail "unmount (daemon exit status $?)"
mount_it || { fail "remount"; finish; }
bad=0
for rel in "${!origin[@]}"; do
    want=$(sha256sum <"${origin[$rel]}" | cut -d' ' -f1)
    got=$(sha256sum <"$mnt/$rel" 2>/dev/null | cut -d' ' -f1)
    [ "$want" = "$got" ] || { fail "sha256sum of $rel through the mount"; bad=1; }
done
[ "$bad" -eq 0 ] && pass "sha256sum of ${#origin[@]} files through the mount equals the source"

# Attributes survived the remount: they are stored, not cached.
check_attrs_kept "cp -p .bak after remount" "$src" "$mnt/cp-p.bak"
compare_untar "tar -x, after remount"
out=$(rsync -a --stats "$tree/" "$mnt/tree/" 2>&1)
third=$(printf '%s\n' "$out" | rsync_files_transferred)
if [ "$third" = 0 ]; then pass "rsync -a after remount transferred nothing"; else
    fail "rsync -a after remount transferred '$third' files"; fi

# ---- find and du ----------------------------------------------------------------------------------------
(cd "$tree" && find . | sort) >"$work/find-src"
(cd "$mnt/tree" && find . | sort) >"$work/find-mnt"
if cmp -s "$work/find-src" "$work/find-mnt"; then pass "find lists the same tree ($(wc -l <"$work/find-src") entries)"; else
    fail "find differs: $(diff "$work/find-src" "$work/find-mnt" | head -5)"; fi
(cd "$tree" && find . -type f | sort) >"$work/find-src-f"
(cd "$mnt/tree" && find . -type f | sort) >"$work/find-mnt-f"
check "find -type f lists the same files" cmp -s "$work/find-src-f" "$work/find-mnt-f"
(cd "$tree" && find . -type d | sort) >"$work/find-src-d"
(cd "$mnt/tree" && find . -type d | sort) >"$work/find-mnt-d"
check "find -type d lists the same directories" cmp -s "$work/find-src-d" "$work/find-mnt-d"
all_rel=$(cd "$mnt" && find . -type f | sed 's|^\./||' | sort)
want_rel=$(printf '%s\n' "${!origin[@]}" | sort)
if [ "$all_rel" = "$want_rel" ]; then pass "find on the whole mount lists exactly the files written"; else
    fail "find on the whole mount: $(diff <(echo "$want_rel") <(echo "$all_rel") | head -5)"; fi

# du: no non-empty file counts as zero; the big file counts at least its size; the total is plausible.
du_bad=0
while IFS= read -r -d '' f; do
    rel=${f#"$tree"/}
    size=$(stat -c %s "$f")
    kib=$(du -k "$mnt/tree/$rel" | cut -f1)
    if [ "$size" -gt 0 ] && [ "${kib:-0}" -eq 0 ]; then fail "du reports 0 for $rel ($size bytes)"; du_bad=1; fi
done < <(find "$tree" -type f -print0)
[ "$du_bad" -eq 0 ] && pass "du is non-zero for every non-empty file"
big_kib=$(du -k "$mnt/tree/big.bak" | cut -f1)
[ "$big_kib" -ge $((20 * 1024)) ] && [ "$big_kib" -le $((21 * 1024)) ] && pass "du of the 20 MiB file: $big_kib KiB" ||
    fail "du of the 20 MiB file: $big_kib KiB"
total_kib=$(du -sk "$mnt/tree" | cut -f1)
src_kib=$(du -sk --apparent-size "$tree" | cut -f1)
[ "$total_kib" -ge $((src_kib * 9 / 10)) ] && [ "$total_kib" -le $((src_kib * 11 / 10 + 64)) ] &&
    pass "du -s of the tree: $total_kib KiB (source $src_kib KiB apparent)" || fail "du -s of the tree: $total_kib KiB, source $src_kib KiB"
apparent=$(du -sb --apparent-size "$mnt/tree" | cut -f1)
want_apparent=$(find "$tree" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
# du -b also counts directory sizes; the files alone must be there.
[ "$apparent" -ge "$want_apparent" ] && pass "du --apparent-size covers the plaintext bytes" ||
    fail "du --apparent-size $apparent < $want_apparent"

s3csefs_unmount "$mnt" || fail "final unmount (daemon exit status $?)"

# ---- the bucket: every .bak decrypts with the reference to its source, others are stored as they are ----
enc_bad=0
for rel in "${!origin[@]}"; do
    case ${rel,,} in
    *.bak)
        if ! out=$($REF_PY verify "$prefix/$rel" "${origin[$rel]}" --profile any 2>&1); then
            fail "reference decrypt of $rel: $out"; enc_bad=1
        fi ;;
    esac
done
[ "$enc_bad" -eq 0 ] && pass "every .bak object decrypts with ref_cse.py to its source bytes"

# rsync wrote each .bak under .name.bak.XXXXXX and renamed it: the renamed object must be encrypted
# (checked above) and the daemon must have uploaded the temp name encrypted (its stored size is the
# padded one), and no temp object may remain.
"$PY" - "$prefix/" "$tree" <<'PYEOF' && pass "bucket: plain objects as is, no temp objects, no open uploads" || fail "bucket check"
import hashlib, os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
bucket = os.environ["S3CSEFS_TEST_BUCKET"]
prefix, tree = sys.argv[1], sys.argv[2]
problems = []
keys = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    keys += [o["Key"] for o in page.get("Contents", [])]
for key in keys:
    base = key.rstrip("/").rsplit("/", 1)[-1]
    if base.startswith(".") and not key.endswith("/"):
        problems.append(f"temporary object left: {key}")
# Files outside the policy that rsync copied: stored byte-for-byte, with no envelope.
for rel in ("notes.txt", "sub/deeper/data.bin", "sub/empty.log"):
    o = s3.get_object(Bucket=bucket, Key=f"{prefix}tree/{rel}")
    body = o["Body"].read()
    if hashlib.sha256(body).digest() != hashlib.sha256(open(os.path.join(tree, rel), "rb").read()).digest():
        problems.append(f"{rel}: stored bytes differ from the source")
    if any(k.startswith("x-amz-") for k in o.get("Metadata", {})):
        problems.append(f"{rel}: has an encryption envelope")
# The stored size of an encrypted object is the padded ciphertext size.
for rel in ("big.bak", "sub/mid.bak", "sub/deeper/block.bak", "sub/empty.bak"):
    plain = os.path.getsize(os.path.join(tree, rel))
    stored = s3.head_object(Bucket=bucket, Key=f"{prefix}tree/{rel}")["ContentLength"]
    if stored != plain + 16 - plain % 16:
        problems.append(f"{rel}: stored {stored} bytes for {plain} plaintext bytes")
uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
if uploads:
    problems.append(f"{len(uploads)} multipart uploads left open")
for p in problems:
    print(p, file=sys.stderr)
print(f"{len(keys)} objects checked")
sys.exit(1 if problems else 0)
PYEOF

# The temp names rsync used were encrypted at upload time (the daemon logs each upload by name).
log=$(s3csefs_daemon_log "$mnt")
if grep -qE "upload $prefix/tree/\.big\.bak\.[A-Za-z0-9]{6} " "$log"; then
    pass "rsync's temp name .big.bak.XXXXXX was uploaded (then renamed)"
else
    fail "no upload of rsync's temp name .big.bak.XXXXXX in the daemon log"
fi
if grep -qE "upload $prefix/fresh-inplace\.bak " "$log" && ! grep -qE "upload $prefix/\.fresh-inplace" "$log"; then
    pass "rsync --inplace of a new file uploaded it under its final name only"
else
    fail "rsync --inplace of a new file: no direct upload of fresh-inplace.bak in the daemon log"
fi
if grep -qiE "secret|BEGIN|key=[A-Za-z0-9+/]{40}" "$log"; then fail "daemon log mentions secret-looking material"; fi

finish
