#!/usr/bin/env bash
# Upload failures surface at close() and leave nothing half-done: with UploadPart failing after two
# parts (testing option fault=part:2), dd of a 40 MiB .bak must fail (close returns EIO), the previous
# version of the object must still be there byte for byte, and no multipart upload may be left open.
# Small files (one PutObject) on the same mount still work.
# Run by CTest as: tests/lib/with-stack tests/integration/test_write_failure.sh
set -uo pipefail
. "$(dirname "$0")/../lib/itest.sh"

work=$S3CSEFS_TEST_TMPDIR/failure
mnt=$S3CSEFS_TEST_TMPDIR/mnt
mkdir -p "$work" "$mnt"
prefix=ftest
s3csefs_mount "$S3CSEFS_TEST_BUCKET:/$prefix" "$mnt" "fault=part:2" || { echo "FAIL: mount" >&2; exit 1; }
log=$(s3csefs_daemon_log "$mnt")

head -c 1000000 /dev/urandom >"$work/old"
head -c $((40 * 1048576)) /dev/urandom >"$work/big"
cp "$work/old" "$mnt/keep.bak" && pass "small file written (single PUT)" || fail "small file"
$REF_PY verify "$prefix/keep.bak" "$work/old" --profile any && pass "old version verifies" || fail "old version"

if out=$(dd if="$work/big" of="$mnt/keep.bak" bs=1M status=none 2>&1); then
    fail "dd succeeded although UploadPart fails"
else
    grep -qi "input/output error" <<<"$out" && pass "dd reports EIO: $out" || fail "dd failed without EIO: $out"
fi
$REF_PY verify "$prefix/keep.bak" "$work/old" --profile any && pass "previous version intact" ||
    fail "previous version damaged"

if out=$(dd if="$work/big" of="$mnt/new.bak" bs=1M status=none 2>&1); then
    fail "dd of new.bak succeeded"
else
    pass "dd of new.bak fails"
fi
"$PY" - "$prefix" <<'PYEOF' && pass "no new.bak object, no open multipart upload" || fail "leftovers after failure"
import os, sys, boto3, botocore
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
bucket = os.environ["S3CSEFS_TEST_BUCKET"]
try:
    s3.head_object(Bucket=bucket, Key=sys.argv[1] + "/new.bak")
    print("new.bak exists"); sys.exit(1)
except botocore.exceptions.ClientError as e:
    if e.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
        raise
uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
print(f"{len(uploads)} open uploads")
sys.exit(1 if uploads else 0)
PYEOF
grep -q "UploadPart 3 failed" "$log" && pass "log names the failing part and the S3 error" || fail "no failure log line"
grep "failed" "$log" | head -3

s3csefs_unmount "$mnt" || fail "unmount"
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
