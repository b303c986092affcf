#!/usr/bin/env bash
# Write patterns of real clients on a mount (tests/tools/pwrite_pattern): shuffled writes within the
# reorder window (Samba/Windows), random writes (spool), pre-extend + write + trim (Wine), extend then
# write (Windows SetEndOfFile), and appending to an existing object. Each object must equal what the
# tool meant to write, checked with the Python reference and the Ruby SDK; the streaming cases must not
# have needed the spool (daemon counters, seen through its log).
# Run by CTest as: tests/lib/with-stack tests/integration/test_write_patterns.sh
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
src_dir=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$src_dir/tests/lib/mount.sh"
PY=${S3CSEFS_PYTHON:-python3}
REF_PY="$PY $src_dir/tests/tools/ref_cse.py"
REF_RB="ruby $src_dir/tests/tools/ref_cse.rb"
TOOL=$S3CSEFS_BUILD_DIR/tests/pwrite_pattern

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

work=$S3CSEFS_TEST_TMPDIR/patterns
mnt=$S3CSEFS_TEST_TMPDIR/mnt
mkdir -p "$work" "$mnt"
prefix=ptest
s3csefs_mount "$S3CSEFS_TEST_BUCKET:/$prefix" "$mnt" || { echo "FAIL: mount" >&2; exit 1; }
log=$(s3csefs_daemon_log "$mnt")

check() {   # check NAME EXPECTED
    local out
    if out=$($REF_PY verify "$prefix/$1" "$2" --profile any 2>&1); then pass "python reference: $1"; else fail "$1: $out"; fi
    if out=$($REF_RB get "$prefix/$1" "$work/rb.out" 2>&1) && cmp -s "$work/rb.out" "$2"; then
        pass "ruby SDK: $1"
    else
        fail "ruby SDK on $1: $out"
    fi
}

run() {   # run MODE NAME SIZE [SEED]
    local mode=$1 name=$2 size=$3 seed=${4:-7}
    if "$TOOL" "$mode" "$mnt/$name" "$work/$name.expected" "$size" "$seed"; then
        pass "$mode writes to $name"
    else
        fail "$mode writes to $name"
    fi
    case $name in *.bak) check "$name" "$work/$name.expected" ;; esac
}

MIB=1048576
fallbacks_before=$(grep -c "continuing in the local encrypted spool" "$log")
run shuffle shuffle.bak $((40 * MIB + 123))
run wine wine.bak $((30 * MIB + 5))
run extend extend.bak $((20 * MIB + 7))
fallbacks_after=$(grep -c "continuing in the local encrypted spool" "$log")
[ "$fallbacks_after" -eq "$fallbacks_before" ] && pass "shuffle, wine and extend streamed (no spool)" ||
    fail "a streaming pattern fell back to the spool: $(grep spool "$log" | tail -3)"
grep -q "upload ptest/wine.bak: multipart upload started" "$log" && pass "wine pattern used a multipart upload" ||
    fail "wine pattern did not stream"

run random random.bak $((3 * MIB + 11))
run random random.txt $((2 * MIB + 1)) 9
# random.txt is a plain object: compare its bytes directly.
if "$PY" -c "
import os, sys, boto3
s3 = boto3.client('s3', endpoint_url=os.environ['AWS_ENDPOINT_URL'])
b = s3.get_object(Bucket=os.environ['S3CSEFS_TEST_BUCKET'], Key='$prefix/random.txt')['Body'].read()
sys.exit(0 if b == open('$work/random.txt.expected', 'rb').read() else 1)"; then
    pass "random.txt stored plain and exact"
else
    fail "random.txt differs"
fi

# Append to an existing encrypted object (re-encrypted with a fresh data key).
old_key=$($REF_PY head "$prefix/extend.bak" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["x-amz-key-v2"])')
cp "$work/extend.bak.expected" "$work/append.expected"
if "$TOOL" append "$mnt/extend.bak" "$work/append.expected" $((3 * MIB + 3)) 11; then
    pass "append to extend.bak"
else
    fail "append to extend.bak"
fi
check extend.bak "$work/append.expected"
new_key=$($REF_PY head "$prefix/extend.bak" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["x-amz-key-v2"])')
[ "$old_key" != "$new_key" ] && pass "append re-encrypted with a fresh data key" || fail "append kept the old data key"

# rsync-style temp name: encrypted under the policy, renamed afterwards.
head -c 100000 /dev/urandom >"$work/rs"
cp "$work/rs" "$mnt/.db.bak.Ab12Cd" && mv "$mnt/.db.bak.Ab12Cd" "$mnt/db.bak" && pass "temp name written and renamed" ||
    fail "temp name write/rename"
check db.bak "$work/rs"

s3csefs_unmount "$mnt" || fail "unmount"
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
