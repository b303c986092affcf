#!/usr/bin/env bash
# SQL Server's BACKUP/RESTORE TO DISK I/O pattern on a real mount, under Wine: tests/wine/sqlbackup_sim.exe
# (unbuffered, write-through, 8 overlapped 1 MiB writes in flight, FlushFileBuffers, CloseHandle) writes
# *.bak files through Z:\<mount>; every object must carry the reference envelope, decrypt byte-exactly
# with the Python reference (ref_cse.py) and the Ruby AWS SDK (ref_cse.rb), and read back through the
# mount with RESTORE's pattern (1-4 MiB unbuffered overlapped reads, then random reads).
#   1. plain backup, 64 MiB
#   2. compressed backup: extend to a 96 MiB estimate, write 40 MiB + 1234 bytes (whole sectors), cut the
#      end back with SetEndOfFile; must stay on the streaming path (spool_fallbacks unchanged);
#      2b: the same with a whole-sector real size (20 MiB + 4096, estimate 48 MiB)
#   3. BACKUP without INIT: a second set appended to an existing .bak (content = first + second)
#   4. BACKUP WITH INIT onto an existing .bak (CREATE_ALWAYS: open + truncate to 0, then write)
#      4b: WITH INIT in place (OPEN_ALWAYS, write from 0 over the old content, SetEndOfFile at the end)
#   5. a backup striped over 4 files written at the same time (backup1-of-4.bak ...)
#   6. a backup whose upload fails (mount option fault=complete:0) must fail in the program, not only
#      in the daemon log; 6b: the same when a part upload fails (fault=part:1); both mounted with
#      fsync=complete, the setting recommended for Wine/SQL Server on the mount itself
# Run alone: S3CSEFS_BUILD_DIR=<build> tests/lib/with-stack tests/integration/test_wine_backup.sh
# (or scripts/test -R wine). Prints "N passed, M failed"; exits 77 (skip) without Wine or mingw.
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
: "${S3CSEFS_BUILD_DIR:?S3CSEFS_BUILD_DIR is not set}"
src_dir=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$src_dir/tests/lib/mount.sh"
. "$src_dir/tests/wine/wine_env.sh"
PY=${S3CSEFS_PYTHON:-python3}
REF_PY="$PY $src_dir/tests/tools/ref_cse.py"
REF_RB="ruby $src_dir/tests/tools/ref_cse.rb"

passed=0 failed=0
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }
pass() { echo "ok: $*"; passed=$((passed + 1)); }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; return 1; fi; }

wine_env_setup "$S3CSEFS_BUILD_DIR/wine"
rc=$?
if [ "$rc" -eq 77 ]; then echo "SKIP: Wine or mingw missing"; exit 77; fi
[ "$rc" -eq 0 ] || { echo "FAIL: Wine setup"; echo "0 passed, 1 failed"; exit 1; }

work=$S3CSEFS_TEST_TMPDIR/wine
mnt=$S3CSEFS_TEST_TMPDIR/mnt
mkdir -p "$work" "$mnt"
prefix=winetest
MIB=1048576
s3csefs_mount "$S3CSEFS_TEST_BUCKET:/$prefix" "$mnt" ||
    { echo "FAIL: mount"; echo "0 passed, 1 failed"; exit 1; }
log=$(s3csefs_daemon_log "$mnt")

spool_fallbacks() {
    getfattr -n user.s3csefs.stats --only-values "$mnt" 2>/dev/null |
        awk '$1 == "spool_fallbacks" || $1 == "spool_fallbacks:" { print $2; found = 1 } END { exit !found }'
}

# The expected bytes, written by the program's buffered `gen` mode onto local disk. The generator itself
# is checked against an independent Python implementation of its formula on sampled ranges, so a broken
# generator (zeros, seed ignored) cannot make both sides agree.
expected() {   # expected FILE SIZE SEED
    sqlbackup_sim gen "$(wine_path "$1")" "$2" "$3" && [ "$(stat -c %s "$1")" = "$2" ]
}
generator_matches_formula() {   # FILE SIZE SEED
    "$PY" - "$@" <<'PYEOF'
import sys
path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
G, M = 0x9E3779B97F4A7C15, (1 << 64) - 1
def splitmix64(x):
    x = (x + G) & M
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M
    return x ^ (x >> 31)
def byte(i):
    return (splitmix64((seed * G + i // 8) & M) >> (8 * (i % 8))) & 0xFF
with open(path, "rb") as f:
    for off, n in ((0, 4096), (size // 2 + 3, 777), (max(0, size - 1500), 1500)):
        n = min(n, size - off)
        f.seek(off)
        if f.read(n) != bytes(byte(i) for i in range(off, off + n)):
            sys.exit(f"generator differs from the formula at {off}")
PYEOF
}

# The object's envelope must be exactly the reference format (docs/format.md section 2).
envelope_is_reference() {   # KEY PLAIN_SIZE
    "$PY" - "$prefix/$1" "$2" <<'PYEOF'
import base64, json, os, sys
import boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
key, plain = sys.argv[1], int(sys.argv[2])
head = s3.head_object(Bucket=os.environ["S3CSEFS_TEST_BUCKET"], Key=key)
meta = head["Metadata"]
arn = os.environ["S3CSEFS_TEST_KEY_ARN"]
problems = []
allowed = {"x-amz-key-v2", "x-amz-iv", "x-amz-cek-alg", "x-amz-wrap-alg", "x-amz-matdesc",
           "x-amz-unencrypted-content-length"}
extra = {k for k in meta if k.startswith("x-amz-")} - allowed
if extra:
    problems.append(f"unexpected envelope names {sorted(extra)}")
if not base64.b64decode(meta.get("x-amz-key-v2", ""), validate=True):
    problems.append("x-amz-key-v2 missing")
if len(base64.b64decode(meta.get("x-amz-iv", ""), validate=True)) != 16:
    problems.append("x-amz-iv is not 16 bytes")
if meta.get("x-amz-cek-alg") != "AES/CBC/PKCS5Padding":
    problems.append(f"x-amz-cek-alg {meta.get('x-amz-cek-alg')}")
if meta.get("x-amz-wrap-alg") != "kms":
    problems.append(f"x-amz-wrap-alg {meta.get('x-amz-wrap-alg')}")
# The SDKs write the matdesc compact; readers that compare it as a string need exactly this.
if meta.get("x-amz-matdesc") != json.dumps({"kms_cmk_id": arn}, separators=(",", ":")):
    problems.append(f"x-amz-matdesc {meta.get('x-amz-matdesc')}")
if "x-amz-unencrypted-content-length" in meta and meta["x-amz-unencrypted-content-length"] != str(plain):
    problems.append(f"x-amz-unencrypted-content-length {meta['x-amz-unencrypted-content-length']}")
stored = plain + 16 - plain % 16
if head["ContentLength"] != stored:
    problems.append(f"stored size {head['ContentLength']}, expected {stored} for {plain} plaintext bytes")
if problems:
    sys.exit("; ".join(problems))
PYEOF
}

decrypts_with_python() {   # NAME EXPECTED_FILE
    $REF_PY get "$prefix/$1" "$work/py.out" && cmp "$work/py.out" "$2"
}
decrypts_with_ruby() {   # NAME EXPECTED_FILE
    $REF_RB get "$prefix/$1" "$work/rb.out" && cmp "$work/rb.out" "$2"
}
verify_object() {   # NAME EXPECTED_FILE
    local name=$1 want=$2 size
    size=$(stat -c %s "$want")
    check "$name: envelope is the reference format" envelope_is_reference "$name" "$size"
    check "$name: ref_cse.py decrypts byte-exactly" decrypts_with_python "$name" "$want"
    check "$name: Ruby SDK decrypts byte-exactly" decrypts_with_ruby "$name" "$want"
    check "$name: size through the mount is $size" test "$(stat -c %s "$mnt/$name")" = "$size"
}

# --- the expected contents -------------------------------------------------------------------------
plain_size=$((64 * MIB))
comp_estimate=$((96 * MIB)) comp_size=$((40 * MIB + 1234))
first_size=$((8 * MIB)) second_size=$((6 * MIB + 512))
init_size=$((16 * MIB))
check "gen 64 MiB (seed 11)" expected "$work/plain.want" "$plain_size" 11
check "generator matches its formula (seed 11)" generator_matches_formula "$work/plain.want" "$plain_size" 11
check "gen 40 MiB+1234 (seed 12)" expected "$work/comp.want" "$comp_size" 12
check "generator matches its formula (seed 12)" generator_matches_formula "$work/comp.want" "$comp_size" 12
check "seeds give different content" bash -c "! cmp -s -n $MIB '$work/plain.want' '$work/comp.want'"
expected "$work/first.want" "$first_size" 13 && expected "$work/second.want" "$second_size" 14 &&
    cat "$work/first.want" "$work/second.want" >"$work/append.want" ||
    fail "gen append sets"
expected "$work/init.want" "$init_size" 15 || fail "gen init set"

# --- 1. plain backup -------------------------------------------------------------------------------
before=$(spool_fallbacks) || { before=; echo "note: no user.s3csefs.stats xattr; spool checks use the log"; }
check "1 write 64 MiB db.bak (overlapped, unbuffered, write-through)" \
    sqlbackup_sim write "$(wine_path "$mnt/db.bak")" "$plain_size" 11
verify_object db.bak "$work/plain.want"
check "1 RESTORE-style read of db.bak through the mount" \
    sqlbackup_sim read "$(wine_path "$mnt/db.bak")" "$plain_size" 11
check "1 read with the wrong seed fails (the read check can fail)" \
    bash -c "! '$WINE' '$SQLBACKUP_SIM' read '$(wine_path "$mnt/db.bak")' $plain_size 99 2>/dev/null"
if [ -n "$before" ]; then
    check "1 plain backup streamed (spool_fallbacks $before -> $(spool_fallbacks))" test "$(spool_fallbacks)" = "$before"
fi

# --- 2. compressed backup: preallocate, write, cut back ---------------------------------------------
before=$(spool_fallbacks) || before=
comp_written=0
check "2 write-compressed estimate 96 MiB, real 40 MiB+1234" \
    sqlbackup_sim write-compressed "$(wine_path "$mnt/comp.bak")" "$comp_estimate" "$comp_size" 12 &&
    comp_written=1
verify_object comp.bak "$work/comp.want"
check "2 RESTORE-style read of comp.bak through the mount" \
    sqlbackup_sim read "$(wine_path "$mnt/comp.bak")" "$comp_size" 12
if [ "$comp_written" -eq 0 ]; then
    echo "note: 2 spool check skipped, the write itself failed"
elif [ -n "$before" ]; then
    after=$(spool_fallbacks)
    check "2 compressed pattern did not fall back to the spool (spool_fallbacks $before -> $after)" \
        test "$after" = "$before"
else
    check "2 compressed pattern did not fall back to the spool (daemon log)" \
        bash -c "! grep -qi spool '$log'"
fi

# 2b. The same with a whole-sector real size, as SQL Server's own files are: the final SetEndOfFile
# then lands exactly on the written end.
comp2_size=$((20 * MIB + 4096))
expected "$work/comp2.want" "$comp2_size" 18 || fail "gen comp2 set"
before=$(spool_fallbacks) || before=
check "2b write-compressed estimate 48 MiB, real 20 MiB+4096" \
    sqlbackup_sim write-compressed "$(wine_path "$mnt/comp2.bak")" $((48 * MIB)) "$comp2_size" 18
verify_object comp2.bak "$work/comp2.want"
if [ -n "$before" ]; then
    check "2b whole-sector compressed pattern streamed (spool_fallbacks $before -> $(spool_fallbacks))" \
        test "$(spool_fallbacks)" = "$before"
fi

# --- 3. BACKUP without INIT: append a second set ----------------------------------------------------
check "3 first set: 8 MiB app.bak" sqlbackup_sim write "$(wine_path "$mnt/app.bak")" "$first_size" 13
check "3 second set appended: 6 MiB+512" sqlbackup_sim append "$(wine_path "$mnt/app.bak")" "$second_size" 14
verify_object app.bak "$work/append.want"
check "3 read back the first set through the mount" \
    sqlbackup_sim read "$(wine_path "$mnt/app.bak")" "$first_size" 13 0
check "3 read back the second set through the mount" \
    sqlbackup_sim read "$(wine_path "$mnt/app.bak")" "$second_size" 14 "$first_size"

# --- 4. BACKUP WITH INIT onto an existing file ------------------------------------------------------
before=$(spool_fallbacks) || before=
check "4 overwrite db.bak with 16 MiB (CREATE_ALWAYS on an existing object)" \
    sqlbackup_sim write "$(wine_path "$mnt/db.bak")" "$init_size" 15
verify_object db.bak "$work/init.want"
[ -n "$before" ] && echo "note: overwrite: spool_fallbacks $before -> $(spool_fallbacks)"

# 4b. WITH INIT done in place: no truncation at open, the new (shorter) set written from offset 0 over
# the old 16 MiB, then SetEndOfFile at its end.
inplace_size=$((10 * MIB + 512))
expected "$work/inplace.want" "$inplace_size" 19 || fail "gen in-place set"
before=$(spool_fallbacks) || before=
check "4b overwrite db.bak in place with 10 MiB+512 (OPEN_ALWAYS, SetEndOfFile at the end)" \
    sqlbackup_sim overwrite "$(wine_path "$mnt/db.bak")" "$inplace_size" 19
verify_object db.bak "$work/inplace.want"
check "4b RESTORE-style read of the replaced db.bak" \
    sqlbackup_sim read "$(wine_path "$mnt/db.bak")" "$inplace_size" 19
[ -n "$before" ] && echo "note: in-place overwrite: spool_fallbacks $before -> $(spool_fallbacks)"

# --- 5. striped backup (@number_of_files = 4): four files written at the same time ------------------
stripe_size=$((12 * MIB + 512))
expected "$work/stripe.want" "$stripe_size" 16 || fail "gen stripe set"
before=$(spool_fallbacks) || before=
pids=()
for n in 1 2 3 4; do
    sqlbackup_sim write "$(wine_path "$mnt/stripe$n-of-4.bak")" "$stripe_size" 16 >"$work/stripe$n.out" 2>&1 &
    pids+=($!)
done
for n in 1 2 3 4; do
    check "5 stripe $n of 4 written concurrently" wait "${pids[$((n - 1))]}" ||
        cat "$work/stripe$n.out" >&2
done
for n in 1 2 3 4; do
    check "5 stripe$n-of-4.bak: ref_cse.py decrypts byte-exactly" decrypts_with_python "stripe$n-of-4.bak" "$work/stripe.want"
done
verify_object stripe4-of-4.bak "$work/stripe.want"
if [ -n "$before" ]; then
    check "5 striped backup streamed (spool_fallbacks $before -> $(spool_fallbacks))" test "$(spool_fallbacks)" = "$before"
fi

# --- 6. a failed upload must fail the backup --------------------------------------------------------
# Under Wine, close() errors never reach the program (the wineserver closes its descriptor and ignores
# the result), so FlushFileBuffers (fsync) is the last call that can tell SQL Server the backup is not
# stored. With every CompleteMultipartUpload failing, the program must see an error, and no object may
# appear. This needs fsync=complete (FlushFileBuffers completes the object and reports its result); the
# daemon's default fsync=parts only waits for the parts sent so far (see docs/wine.md).
object_absent() {   # KEY: 0 only when HeadObject says 404
    "$PY" - "$1" <<'PYEOF'
import os, sys, boto3, botocore.exceptions
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
try:
    s3.head_object(Bucket=os.environ["S3CSEFS_TEST_BUCKET"], Key=sys.argv[1])
except botocore.exceptions.ClientError as e:
    sys.exit(0 if e.response["Error"]["Code"] in ("404", "NoSuchKey") else 2)
sys.exit(1)
PYEOF
}
fmnt=$S3CSEFS_TEST_TMPDIR/mnt-fault
if s3csefs_mount "$S3CSEFS_TEST_BUCKET:/winefault" "$fmnt" "fault=complete:0,fsync=complete"; then
    check "6 backup whose upload fails reports an error to the program" \
        bash -c "! '$WINE' '$SQLBACKUP_SIM' write '$(wine_path "$fmnt/lost.bak")' $((24 * MIB)) 17"
    check "6 no object left after the failed upload" object_absent winefault/lost.bak
    s3csefs_unmount "$fmnt"
else
    fail "6 mount with fault=complete:0,fsync=complete"
fi

# 6b. A part upload failing mid-backup must reach the program through WriteFile or FlushFileBuffers.
pmnt=$S3CSEFS_TEST_TMPDIR/mnt-partfault
if s3csefs_mount "$S3CSEFS_TEST_BUCKET:/winefault" "$pmnt" "fault=part:1,fsync=complete"; then
    check "6b backup whose second part fails reports an error to the program" \
        bash -c "! '$WINE' '$SQLBACKUP_SIM' write '$(wine_path "$pmnt/partlost.bak")' $((24 * MIB)) 20"
    check "6b no object left after the failed part" object_absent winefault/partlost.bak
    s3csefs_unmount "$pmnt"
else
    fail "6b mount with fault=part:1,fsync=complete"
fi

# --- the end: nothing left behind -------------------------------------------------------------------
wine_env_finish
no_open_uploads() {
    "$PY" -c 'import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
sys.exit(len(s3.list_multipart_uploads(Bucket=os.environ["S3CSEFS_TEST_BUCKET"]).get("Uploads", [])))'
}
check "no unfinished multipart uploads" no_open_uploads
if s3csefs_unmount "$mnt"; then pass "unmount, daemon exit status 0"; else fail "unmount (status $?)"; fi
if grep -qiE "secret|BEGIN|key=[A-Za-z0-9+/]{40}" "$log"; then fail "daemon log mentions secret-looking material"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
