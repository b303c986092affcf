#!/usr/bin/env bash
# The few-minutes concurrency stress run (not part of CTest): writers and readers at once on one mount
# for DURATION_SECONDS, then every object checked in the bucket with the Python reference, no open
# multipart upload, and the daemon's counters and memory peak printed.
#
#   tests/lib/with-stack tests/stress/run-stress.sh [DURATION_SECONDS [WRITERS [READERS]]]
#
# Defaults: 240 s, 12 writers, 8 readers, files up to 24 MiB. Extra mount options (e.g. max_memory=32M)
# in S3CSEFS_STRESS_MOUNT_OPTIONS. S3CSEFS_BUILD_DIR must point at a build with fs/s3csefs.
# tests/integration/test_concurrency_short.sh runs the same driver for about 30 s.
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
src_dir=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$src_dir/tests/lib/mount.sh"
PY=${S3CSEFS_PYTHON:-python3}
DRIVER="$PY $src_dir/tests/stress/concurrency_driver.py"

duration=${1:-240}
writers=${2:-12}
readers=${3:-8}
mnt=$S3CSEFS_TEST_TMPDIR/mnt
manifest=$S3CSEFS_TEST_TMPDIR/manifest.jsonl
prefix=stress
failed=0

options=${S3CSEFS_STRESS_MOUNT_OPTIONS:-}
s3csefs_mount "$S3CSEFS_TEST_BUCKET:/$prefix" "$mnt" "$options" || { echo "FAIL: mount"; exit 1; }
echo "stress: $duration s, $writers writers, $readers readers, mount options '${options:-defaults}'"
$DRIVER run "$mnt" --duration "$duration" --writers "$writers" --readers "$readers" --manifest "$manifest" ||
    { echo "FAIL: driver reported errors"; failed=1; }
echo "daemon counters:"
getfattr --only-values -n user.s3csefs.stats "$mnt" 2>/dev/null | tr '\n' ' ' | fold -w 120 -s; echo
daemon_pid=$(cat "$S3CSEFS_TEST_TMPDIR"/mounts/*.pid 2>/dev/null | head -1)
awk '$1 == "VmHWM:" { peak = $2 } $1 == "VmRSS:" { now = $2 }
     END { if (now) printf "daemon RSS: peak %d MiB, at the end %d MiB\n", peak / 1024, now / 1024 }' \
    "/proc/$daemon_pid/status" 2>/dev/null
s3csefs_unmount "$mnt" || { echo "FAIL: unmount (daemon exit status $?)"; failed=1; }
$DRIVER check-bucket "$prefix/" --manifest "$manifest" || { echo "FAIL: bucket check"; failed=1; }
uploads=$(aws s3api list-multipart-uploads --bucket "$S3CSEFS_TEST_BUCKET" --query 'Uploads[].Key' --output text)
if [ -n "$uploads" ] && [ "$uploads" != None ]; then echo "FAIL: open multipart uploads: $uploads"; failed=1; fi
if grep -qiE "secret|BEGIN|key=[A-Za-z0-9+/]{40}" "$(s3csefs_daemon_log "$mnt")"; then
    echo "FAIL: daemon log mentions secret-looking material"; failed=1
fi
if grep -qiE " (error|warn)" "$(s3csefs_daemon_log "$mnt")"; then
    echo "daemon warnings/errors (first 5):"; grep -iE " (error|warn)" "$(s3csefs_daemon_log "$mnt")" | head -5
fi
[ "$failed" -eq 0 ] && echo "stress: PASS" || echo "stress: FAIL"
exit "$failed"
