#!/usr/bin/env bash
# The S3 endpoint stops answering in the middle of an upload (moto frozen with SIGSTOP): with short
# timeouts (retries=2, stall_timeout=3) the writer gets EIO (from a write or from close), no object
# appears, and once the endpoint is back the failed multipart upload is aborted (deferred abort, at the
# latest at unmount): nothing stays billed.
# Run by CTest as: tests/lib/with-stack tests/integration/test_write_endpoint_stop.sh
set -uo pipefail
: "${S3CSEFS_MOTO_PID:?run me through tests/lib/with-stack}"
src_dir=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$src_dir/tests/lib/mount.sh"
PY=${S3CSEFS_PYTHON:-python3}

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

work=$S3CSEFS_TEST_TMPDIR/stop
mnt=$S3CSEFS_TEST_TMPDIR/mnt
mkdir -p "$work" "$mnt"
s3csefs_mount "$S3CSEFS_TEST_BUCKET:/stop" "$mnt" "retries=2,stall_timeout=3,request_timeout=10,connect_timeout=2,part_size=5M" ||
    { echo "FAIL: mount" >&2; exit 1; }
log=$(s3csefs_daemon_log "$mnt")
head -c $((60 * 1048576)) /dev/urandom >"$work/big"

# A writer that is slow enough for the freeze to land mid-upload.
( dd if="$work/big" of="$mnt/frozen.bak" bs=1M status=none 2>"$work/dd.err"; echo $? >"$work/dd.rc" ) &
writer=$!
for _ in $(seq 100); do grep -q "frozen.bak: multipart upload started" "$log" && break; sleep 0.1; done
kill -STOP "$S3CSEFS_MOTO_PID"
pass "moto frozen"
for _ in $(seq 600); do kill -0 "$writer" 2>/dev/null || break; sleep 0.1; done
kill -CONT "$S3CSEFS_MOTO_PID"
if kill -0 "$writer" 2>/dev/null; then
    fail "writer still blocked 60 s after the endpoint froze"
    wait "$writer"
fi
rc=$(cat "$work/dd.rc" 2>/dev/null)
[ "$rc" != 0 ] && grep -qi "input/output error" "$work/dd.err" && pass "dd failed with EIO: $(tr '\n' ' ' <"$work/dd.err")" ||
    fail "dd status $rc: $(cat "$work/dd.err")"
grep -E "frozen.bak.*failed" "$log" | head -2

s3csefs_unmount "$mnt" || fail "unmount"
"$PY" - <<'PYEOF' && pass "no object and no multipart upload left" || fail "leftovers"
import os, sys, boto3, botocore
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
bucket = os.environ["S3CSEFS_TEST_BUCKET"]
try:
    s3.head_object(Bucket=bucket, Key="stop/frozen.bak")
    print("object exists"); sys.exit(1)
except botocore.exceptions.ClientError as e:
    if e.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
        raise
uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
print(f"{len(uploads)} open uploads")
sys.exit(1 if uploads else 0)
PYEOF
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
