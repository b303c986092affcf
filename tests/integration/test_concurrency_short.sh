#!/usr/bin/env bash
# Short concurrency pass for the suite: 8 writers and 8 readers at once on one mount for about 30 s
# (files up to 24 MiB, about half *.bak, readers read files closed earlier, whole and in random ranges),
# no corruption through the mount (sha256 and byte ranges rebuilt from the generator), every object in
# the bucket decrypts with the Python reference to the written bytes (plain names stored as they are),
# and `aws s3api list-multipart-uploads` is empty once everything is closed.
# The long version is tests/stress/run-stress.sh (not in CTest).
# Run by CTest as: tests/lib/with-stack tests/integration/test_concurrency_short.sh
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
src_dir=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$src_dir/tests/lib/mount.sh"
PY=${S3CSEFS_PYTHON:-python3}
DRIVER="$PY $src_dir/tests/stress/concurrency_driver.py"

passed=0
failed=0
pass() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }

duration=${S3CSEFS_CONCURRENCY_SECONDS:-30}
mnt=$S3CSEFS_TEST_TMPDIR/mnt
manifest=$S3CSEFS_TEST_TMPDIR/manifest.jsonl
prefix=conc
if ! s3csefs_mount "$S3CSEFS_TEST_BUCKET:/$prefix" "$mnt"; then
    echo "FAIL: mount"; echo "0 passed, 1 failed"; exit 1
fi

if $DRIVER run "$mnt" --duration "$duration" --writers 8 --readers 8 --manifest "$manifest"; then
    pass "8 writers + 8 readers for $duration s: no corruption or I/O error through the mount"
else
    fail "concurrent writers/readers reported errors (above)"
fi
s3csefs_unmount "$mnt" && pass "unmount" || fail "unmount (daemon exit status $?)"

if [ -s "$manifest" ] && $DRIVER check-bucket "$prefix/" --manifest "$manifest"; then
    pass "every object in the bucket has the written bytes (.bak via ref_cse.py, envelope checked)"
else
    fail "bucket check"
fi
if uploads=$(aws s3api list-multipart-uploads --bucket "$S3CSEFS_TEST_BUCKET" --query 'Uploads[].Key' --output text 2>&1) &&
    { [ -z "$uploads" ] || [ "$uploads" = None ]; }; then
    pass "aws s3api list-multipart-uploads is empty"
else
    fail "open multipart uploads after all closes: $uploads"
fi
# The run must have produced multipart objects and encrypted ones, or it did not test much.
if "$PY" - "$manifest" <<'PYEOF'; then pass "the run covered multipart-sized .bak and plain files"; else fail "too little coverage"; fi
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1])]
big_bak = [e for e in entries if e["path"].endswith(".bak") and e["size"] > 8 << 20]
plain = [e for e in entries if e["path"].endswith(".dat")]
print(f"{len(entries)} files, {len(big_bak)} .bak over 8 MiB, {len(plain)} plain")
sys.exit(0 if big_bak and plain else 1)
PYEOF
if grep -qiE "secret|BEGIN|key=[A-Za-z0-9+/]{40}" "$(s3csefs_daemon_log "$mnt")"; then
    fail "daemon log mentions secret-looking material"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
