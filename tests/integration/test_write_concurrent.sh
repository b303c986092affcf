#!/usr/bin/env bash
# Many files written at once, each with its own stream, within one small memory cap (max_memory=24M,
# part_size=5M): eight parallel writers of 23 MiB .bak files plus four small .txt files. Every object
# must be exact (Python reference for the .bak, byte compare for the plain ones), and the daemon's peak
# RSS is printed (not asserted: a benchmark figure).
# Run by CTest as: tests/lib/with-stack tests/integration/test_write_concurrent.sh
set -uo pipefail
. "$(dirname "$0")/../lib/itest.sh"

work=$S3CSEFS_TEST_TMPDIR/concurrent
mnt=$S3CSEFS_TEST_TMPDIR/mnt
mkdir -p "$work" "$mnt"
prefix=ctest
s3csefs_mount "$S3CSEFS_TEST_BUCKET:/$prefix" "$mnt" "max_memory=24M,part_size=5M,upload_concurrency=3" ||
    { echo "FAIL: mount" >&2; exit 1; }

for i in 1 2 3 4 5 6 7 8; do head -c $((23 * 1048576 + i)) /dev/urandom >"$work/f$i"; done
for i in 1 2 3 4; do head -c $((100000 * i)) /dev/urandom >"$work/t$i"; done
pids=()
for i in 1 2 3 4 5 6 7 8; do dd if="$work/f$i" of="$mnt/f$i.bak" bs=256k status=none & pids+=($!); done
for i in 1 2 3 4; do cp "$work/t$i" "$mnt/t$i.txt" & pids+=($!); done
ok=1
for p in "${pids[@]}"; do wait "$p" || ok=0; done
[ "$ok" -eq 1 ] && pass "12 parallel writers finished" || fail "a parallel writer failed"

for i in 1 2 3 4 5 6 7 8; do
    out=$($REF_PY verify "$prefix/f$i.bak" "$work/f$i" --profile any 2>&1) && pass "f$i.bak exact" || fail "f$i.bak: $out"
done
for i in 1 2 3 4; do
    cmp -s <("$PY" -c "
import os, sys, boto3
s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'])
sys.stdout.buffer.write(s3.get_object(Bucket=os.environ['S3CSEFS_TEST_BUCKET'], Key='$prefix/t$i.txt')['Body'].read())") \
        "$work/t$i" && pass "t$i.txt exact" || fail "t$i.txt differs"
done
pid=$(cat "${S3CSEFS_TEST_TMPDIR}/mounts/"*.pid 2>/dev/null | head -1)
[ -n "$pid" ] && echo "daemon peak RSS: $(awk '/^VmHWM/ { print $2, $3 }' "/proc/$pid/status")"
s3csefs_unmount "$mnt" || fail "unmount"
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
