#!/usr/bin/env bash
# Mount-time checks: an unknown bucket, an unknown KMS key, wrong credentials and a missing kms_key_id
# each make s3csefs exit non-zero with a clear message, in the foreground and daemonized; a good mount
# daemonizes only once the mount is up (the parent's exit means "mounted"), and statfs reports a large
# free space with 1 MiB blocks.
# Run by CTest as: tests/lib/with-stack tests/integration/test_mount_checks.sh
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
BIN=${S3CSEFS_BUILD_DIR:?}/fs/s3csefs

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

mnt=$S3CSEFS_TEST_TMPDIR/mnt
mkdir -p "$mnt"
base="endpoint=$AWS_ENDPOINT_URL,kms_key_id=$S3CSEFS_TEST_KEY_ARN"

expect_refused() {   # expect_refused DESCRIPTION PATTERN ARGS...
    local what=$1 pattern=$2; shift 2
    local out rc
    out=$(timeout 120 "$@" 2>&1 </dev/null); rc=$?
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
        fail "$what: exit status $rc"
        fusermount3 -u "$mnt" 2>/dev/null
    elif grep -qiE "$pattern" <<<"$out"; then
        pass "$what (status $rc): $out"
    else
        fail "$what: status $rc but message does not match '$pattern': $out"
    fi
}

expect_refused "unknown bucket" "bucket 'no-such-bucket-x' does not exist" \
    "$BIN" no-such-bucket-x "$mnt" -f -o "$base"
expect_refused "unknown bucket, daemonized" "does not exist" \
    "$BIN" no-such-bucket-x "$mnt" -o "$base"
expect_refused "unknown KMS key" "KMS key 'alias/no-such-key' does not exist" \
    "$BIN" "$S3CSEFS_TEST_BUCKET" "$mnt" -f -o "endpoint=$AWS_ENDPOINT_URL,kms_key_id=alias/no-such-key"
expect_refused "wrong secret key" "denied|signature|credentials|forbidden|403" \
    env AWS_SECRET_ACCESS_KEY=wrong-secret "$BIN" "$S3CSEFS_TEST_BUCKET" "$mnt" -f -o "$base"
expect_refused "no kms_key_id" "kms_key_id= is required" \
    "$BIN" "$S3CSEFS_TEST_BUCKET" "$mnt" -f -o "endpoint=$AWS_ENDPOINT_URL"
expect_refused "bad option" "unknown option 'bogus'" \
    "$BIN" "$S3CSEFS_TEST_BUCKET" "$mnt" -f -o "$base,bogus=1"

# A good daemonized mount: the parent returns 0 only once the mount is there.
if "$BIN" "$S3CSEFS_TEST_BUCKET:/mcheck" "$mnt" -o "$base,_netdev,nofail,x-systemd.automount"; then
    if awk -v t="$(realpath "$mnt")" '$2 == t { f = 1 } END { exit !f }' /proc/self/mounts; then
        pass "daemonized mount is up when the parent exits"
    else
        fail "parent exited 0 but nothing is mounted"
    fi
    pid=$(pgrep -f -- "$BIN $S3CSEFS_TEST_BUCKET:/mcheck $mnt" | head -1)
    echo hello >"$mnt/x.txt" && [ "$(cat "$mnt/x.txt" 2>/dev/null)" = hello ] && pass "write+read on daemonized mount" ||
        fail "write/read on daemonized mount"
    bsize=$(stat -f -c %S "$mnt"); avail=$(stat -f -c %a "$mnt")
    [ "$bsize" -eq 1048576 ] && [ "$avail" -ge $((1 << 29)) ] && pass "statfs: $bsize-byte blocks, $avail free" ||
        fail "statfs: bsize $bsize avail $avail"
    fusermount3 -u "$mnt" || fail "unmount"
    for _ in $(seq 100); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && fail "daemon $pid still running after unmount" ||
        pass "daemon exited after unmount"
else
    fail "daemonized mount failed"
fi

# encrypt=none needs no key.
if "$BIN" "$S3CSEFS_TEST_BUCKET" "$mnt" -o "endpoint=$AWS_ENDPOINT_URL,encrypt=none"; then
    pass "encrypt=none mounts without kms_key_id"
    fusermount3 -u "$mnt"
else
    fail "encrypt=none without key"
fi
sleep 0.5
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
