#!/usr/bin/env bash
# SQL Server's path to s3csefs: a real smbd (Debian samba) exports the mount, SMB3 clients write and read.
#   1. smbclient `put` of a large file as db.bak (smbclient keeps several writes in flight; smbd's
#      default aio hands them to its thread pool, so they reach the mount out of order): read back
#      equal (sha256) over SMB, right size on the mount, the object matches the multipart CSE envelope and
#      decrypts byte-exactly with tests/tools/ref_cse.py and the Ruby SDK (ref_cse.rb), and the upload
#      streamed (spool_fallbacks unchanged, from the user.s3csefs.stats xattr).
#   2. `mput` of a directory tree of mixed files (prompt off, recurse): *.bak/*.BAK encrypted (verified
#      by ref_cse.py), the others stored as they are; everything read back equal with `mget`.
#   3. The Windows pattern (tests/samba/win_client.py): set the end of file to the final size first,
#      then 1 MiB writes with 10 in flight on one handle; and to a larger estimate first, cut back at the
#      end; and with one request held back 0.6 s while the others run far past the reorder window (the
#      daemon parks them in its encrypted overflow spool). Streams, decrypts with both references, reads
#      back equal with 10 reads in flight. Chunks written in descending order are parked, and the
#      file still streams and decrypts.
# Objects are checked once they stop changing (settle: the daemon applies attributes smbd set on the
# open file by a self-copy just after close). smbd runs as root in a private network namespace with every state file under the test's temp dir
# (tests/samba/smbd.sh) and is stopped by its pid however the test ends.
# Size of the large file: S3CSEFS_SAMBA_SIZE_MIB (default 200).
# Run by CTest as: tests/lib/with-stack tests/integration/test_samba_share.sh
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
src_dir=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$src_dir/tests/lib/mount.sh"
. "$src_dir/tests/samba/smbd.sh"
PY=${S3CSEFS_PYTHON:-python3}
REF_PY="$PY $src_dir/tests/tools/ref_cse.py"
REF_RB="ruby $src_dir/tests/tools/ref_cse.rb"
WIN_CLIENT="/usr/bin/python3 $src_dir/tests/samba/win_client.py"   # needs Debian's python3-samba

passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
completed=0
finish() {
    samba_stop
    s3csefs_unmount "$mnt" >/dev/null 2>&1
    # A script that dies early (syntax error, set -u) must not pass with what it checked so far.
    [ "$completed" = 1 ] || fail "the test ended before its last check"
    echo "$passed passed, $failed failed"
    # An EXIT trap's bare `exit` would keep the status from before the trap: give it explicitly.
    if [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; then exit 0; fi
    exit 1
}

MIB=1048576
size=$((${S3CSEFS_SAMBA_SIZE_MIB:-200} * MIB))
prefix=samba
work=$S3CSEFS_TEST_TMPDIR/samba-work
mnt=$S3CSEFS_TEST_TMPDIR/mnt
mkdir -p "$work" "$mnt"
export SAMBA_CLIENT_TIMEOUT=${SAMBA_CLIENT_TIMEOUT:-300}
trap finish EXIT

if ! s3csefs_mount "$S3CSEFS_TEST_BUCKET:/$prefix" "$mnt" allow_other; then
    fail "mount"
    completed=1
    exit
fi
if ! samba_start "$mnt" "$S3CSEFS_TEST_TMPDIR/smbd"; then
    fail "smbd serves the mount"
    completed=1
    exit
fi
ok "smbd serves the mount over SMB3 (network namespace: $SAMBA_NETNS, port $SAMBA_PORT)"

stat_counter() {   # NAME: one counter of the daemon's status view
    getfattr -n user.s3csefs.stats --only-values "$mnt" 2>/dev/null |
        awk -v name="$1" '$1 == name { print $2; found = 1 } END { exit !found }'
}
spool_fallbacks() { stat_counter spool_fallbacks; }
sha() { sha256sum <"$1" | cut -d' ' -f1; }
mib_per_s() {   # BYTES NANOSECONDS
    awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.1f MiB/s (%.2f s)", b / 1048576 / (ns / 1e9), ns / 1e9 }'
}

# Waits until object KEY stops changing (same ETag and Last-Modified 1 s apart, at most 20 s). After a
# close, the daemon applies attributes smbd set on the open file (mtime, mode) by a metadata-replacing
# self-copy a moment later; moto's CopyObject stores the new object before its metadata, so a reader
# racing it can see an object without envelope (real S3 copies atomically). Prints the waits needed.
settle() {   # KEY
    "$PY" - "$1" <<'PYEOF'
import os, sys, time, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
def state():
    h = s3.head_object(Bucket=os.environ["S3CSEFS_TEST_BUCKET"], Key=sys.argv[1])
    return h["ETag"], h["LastModified"], sorted(h.get("Metadata", {}).items())
last, waits = state(), 0
for _ in range(20):
    time.sleep(1)
    now = state()
    if now == last:
        break
    last, waits = now, waits + 1
print(waits)
PYEOF
}

# Checks that NAME (under the share) decrypts to LOCAL with both references and has the PROFILE envelope.
verify_encrypted() {   # NAME LOCAL PROFILE
    local name=$1 local_file=$2 profile=$3 out changes
    changes=$(settle "$prefix/$name" 2>&1) || { fail "$name: HEAD: $changes"; return; }
    [ "$changes" = 0 ] || echo "note: $name changed $changes time(s) after close (attributes applied by self-copy)"
    if out=$($REF_PY verify "$prefix/$name" "$local_file" --profile "$profile" 2>&1); then
        ok "$name: $profile envelope, ref_cse.py decrypts it byte-exactly"
    else
        fail "$name: ref_cse.py verify: $out"
    fi
    rm -f "$work/rb.out"
    if out=$($REF_RB get "$prefix/$name" "$work/rb.out" 2>&1) && cmp -s "$work/rb.out" "$local_file"; then
        ok "$name: the Ruby SDK's encryption client decrypts it byte-exactly"
    else
        fail "$name: ref_cse.rb get: $out $(cmp "$work/rb.out" "$local_file" 2>&1)"
    fi
    rm -f "$work/rb.out"
}

# Checks that plain objects KEY_PREFIX/NAME hold exactly LOCAL_ROOT/NAME and carry no envelope.
verify_plain() {   # KEY_PREFIX LOCAL_ROOT NAME...
    "$PY" - "$@" <<'PYEOF'
import os, sys, boto3
prefix, root, names = sys.argv[1], sys.argv[2], sys.argv[3:]
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
bad = 0
for name in names:
    try:
        o = s3.get_object(Bucket=os.environ["S3CSEFS_TEST_BUCKET"], Key=f"{prefix}/{name}")
    except s3.exceptions.NoSuchKey:
        keys = [c["Key"] for c in s3.list_objects_v2(Bucket=os.environ["S3CSEFS_TEST_BUCKET"],
                                                     Prefix=prefix + "/").get("Contents", [])]
        print(f"{prefix}/{name}: no such object; objects: {keys}")
        bad += 1
        continue
    envelope = [k for k in o.get("Metadata", {}) if k.startswith("x-amz-")]
    if o["Body"].read() != open(os.path.join(root, name), "rb").read() or envelope:
        print(f"{name}: stored bytes differ or envelope {envelope}")
        bad += 1
sys.exit(1 if bad else 0)
PYEOF
}

head -c "$size" /dev/urandom >"$work/big.src"
big_sha=$(sha "$work/big.src")

# ---- 1. smbclient put / get of the large file ----
before=$(spool_fallbacks) || before=
start=$(date +%s%N)
if out=$(samba_client -c "put $work/big.src db.bak" 2>&1); then
    ok "smbclient put $((size / MIB)) MiB as db.bak: $(mib_per_s "$size" $(($(date +%s%N) - start)))"
else
    fail "smbclient put db.bak: $out"
fi
after=$(spool_fallbacks) || after=
if [ -z "$before" ] || [ -z "$after" ]; then
    fail "user.s3csefs.stats has no spool_fallbacks counter"
elif [ "$after" -eq "$before" ]; then
    ok "smbclient put streamed (spool_fallbacks stayed $after)"
else
    fail "smbclient put fell back to the spool (spool_fallbacks $before -> $after)"
fi
[ "$(stat -c %s "$mnt/db.bak" 2>/dev/null)" = "$size" ] && ok "db.bak has its size on the mount" ||
    fail "db.bak size on the mount: $(stat -c %s "$mnt/db.bak" 2>&1)"
verify_encrypted db.bak "$work/big.src" multipart
rm -f "$work/big.smbget"
start=$(date +%s%N)
if out=$(samba_client -c "get db.bak $work/big.smbget" 2>&1) && [ "$(sha "$work/big.smbget")" = "$big_sha" ]; then
    ok "smbclient get db.bak reads back equal (sha256): $(mib_per_s "$size" $(($(date +%s%N) - start)))"
else
    fail "smbclient get db.bak: $out $(cmp "$work/big.smbget" "$work/big.src" 2>&1)"
fi
rm -f "$work/big.smbget"

# ---- 2. mput / mget of a directory of mixed files ----
tree=$work/tree
mkdir -p "$tree/sub/deep"
head -c $((5 * MIB + 3)) /dev/urandom >"$tree/full.bak"
: >"$tree/empty.bak"
head -c 100000 /dev/urandom >"$tree/notes.txt"
head -c 17 /dev/urandom >"$tree/sub/UPPER.BAK"
head -c $((MIB + 1)) /dev/urandom >"$tree/sub/data.csv"
head -c $((9 * MIB)) /dev/urandom >"$tree/sub/deep/log.bak"
head -c 4096 /dev/urandom >"$tree/sub/deep/backup.bak.txt"
if out=$(samba_client -c "mkdir mixed; cd mixed; lcd $tree; prompt off; recurse on; mput *" 2>&1); then
    ok "smbclient mput of a directory tree"
else
    fail "smbclient mput: $out"
fi
verify_encrypted mixed/full.bak "$tree/full.bak" default
verify_encrypted mixed/sub/deep/log.bak "$tree/sub/deep/log.bak" multipart
for name in empty.bak sub/UPPER.BAK; do
    if out=$($REF_PY verify "$prefix/mixed/$name" "$tree/$name" --profile default 2>&1); then
        ok "mixed/$name encrypted (ref_cse.py)"
    else
        fail "mixed/$name: $out"
    fi
done
if out=$(verify_plain "$prefix/mixed" "$tree" notes.txt sub/data.csv sub/deep/backup.bak.txt 2>&1); then
    ok "names outside *.bak stored as they are"
else
    fail "plain files: $out"
fi
rm -rf "$work/tree.back"
mkdir -p "$work/tree.back"
if out=$(samba_client -c "cd mixed; lcd $work/tree.back; prompt off; recurse on; mget *" 2>&1) &&
    diff -r "$tree" "$work/tree.back" >/dev/null 2>&1; then
    ok "smbclient mget reads the whole tree back equal"
else
    fail "mget tree: $out $(diff -r "$tree" "$work/tree.back" 2>&1 | head -5)"
fi

# ---- 3. Windows pattern: end of file set first, 10 writes in flight ----
win_put() {   # REMOTE [win_client options]   (PARKED_MIN: least bytes the daemon must have parked)
    local remote=$1 out before after start parked_before parked
    shift
    before=$(spool_fallbacks) || before=
    parked_before=$(stat_counter window_parked_bytes) || parked_before=
    start=$(date +%s%N)
    if out=$(samba_exec $WIN_CLIENT put "$work/big.src" "$remote" --conf "$SAMBA_CONF" \
             --auth "$SAMBA_AUTH_FILE" --in-flight 10 "$@" 2>&1); then
        ok "Windows-like put $remote (${*:-end of file set to the final size first}): $(mib_per_s "$size" $(($(date +%s%N) - start)))"
    elif [ -n "${KNOWN_ISSUE:-}" ]; then
        # A known, timing-dependent failure (see KNOWN_ISSUE at the call). The put must still fail
        # cleanly: an error to the client and no object left behind, never a partial backup.
        if aws s3api head-object --bucket "$S3CSEFS_TEST_BUCKET" --key "$prefix/$remote" >/dev/null 2>&1; then
            fail "Windows-like put $remote failed but left an object behind: $out"
        else
            echo "xfail: Windows-like put $remote ($*): $KNOWN_ISSUE; it failed cleanly (error, no object)"
        fi
        return
    else
        fail "Windows-like put $remote ($*): $out"
        return
    fi
    after=$(spool_fallbacks) || after=
    parked=$(($(stat_counter window_parked_bytes || echo -1) - ${parked_before:-0}))
    if [ -n "$before" ] && [ -n "$after" ] && [ "$after" -eq "$before" ]; then
        ok "$remote streamed although pre-extended (spool_fallbacks stayed $after; $parked bytes parked)"
    else
        fail "$remote fell back to the spool (spool_fallbacks $before -> $after)"
    fi
    if [ -n "${PARKED_MIN:-}" ]; then
        if [ "$parked" -ge "$PARKED_MIN" ]; then
            ok "$remote: writes far past the reorder window were parked ($parked bytes) and the upload went on"
        else
            fail "$remote: expected at least $PARKED_MIN bytes parked, the daemon parked $parked"
        fi
    fi
    verify_encrypted "$remote" "$work/big.src" multipart
}

if [ "$SAMBA_NETNS" != 1 ]; then
    fail "Windows-like client needs smbd on port 445 in a network namespace (unshare -n not permitted)"
else
    win_put win.bak
    win_put win-estimate.bak --estimate $((size + 16 * MIB + 5))
    # The request at 24 MiB (after the first parts were uploaded) sent 0.6 s late: the other nine run on
    # far past the 16 MiB reorder window. Before parking, such a straggler aborted the upload.
    PARKED_MIN=$MIB win_put win-straggler.bak --estimate $((size + 16 * MIB + 5)) --straggler $((24 * MIB)):0.6
    # The last chunk first, no extension, 40 MiB: the chunks more than the 16 MiB reorder window past
    # the frontier (offset 0, written last) are parked; the file still streams and stores the right bytes.
    head -c $((40 * MIB)) "$work/big.src" >"$work/reverse.src"
    before=$(spool_fallbacks) || before=
    parked_before=$(stat_counter window_parked_bytes) || parked_before=
    if out=$(samba_exec $WIN_CLIENT put "$work/reverse.src" reverse.bak --conf "$SAMBA_CONF" \
             --auth "$SAMBA_AUTH_FILE" --in-flight 10 --no-extend --descending 2>&1); then
        after=$(spool_fallbacks) || after=
        parked=$(($(stat_counter window_parked_bytes || echo -1) - ${parked_before:-0}))
        if [ -n "$before" ] && [ "$after" = "$before" ] && [ "$parked" -ge $((24 * MIB)) ]; then
            ok "descending writes parked ($parked bytes) and streamed (spool_fallbacks stayed $after)"
        else
            fail "descending writes: spool_fallbacks $before -> $after, $parked bytes parked (want >= 24 MiB)"
        fi
        verify_encrypted reverse.bak "$work/reverse.src" multipart
    else
        fail "Windows-like put of reverse.bak (descending): $out"
    fi
    rm -f "$work/reverse.src"

    rm -f "$work/big.winget"
    start=$(date +%s%N)
    # Bounded on its own: parallel reads are where a hang would show (see docs/samba.md).
    out=$(SAMBA_CLIENT_TIMEOUT=180 samba_exec $WIN_CLIENT get win.bak "$work/big.winget" --conf "$SAMBA_CONF" \
          --auth "$SAMBA_AUTH_FILE" --in-flight 10 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ] && [ "$(sha "$work/big.winget")" = "$big_sha" ]; then
        ok "Windows-like get win.bak (10 reads in flight) equal: $(mib_per_s "$size" $(($(date +%s%N) - start)))"
    elif [ "$rc" -eq 124 ]; then
        fail "Windows-like get win.bak (10 reads in flight): no answer within 180 s (hang)"
    else
        fail "Windows-like get win.bak (10 reads in flight): status $rc: $out"
    fi
    rm -f "$work/big.winget"
fi
completed=1
