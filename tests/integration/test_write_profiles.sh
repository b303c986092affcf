#!/usr/bin/env bash
# Write profiles and policies on a mount: cse_profile=legacy writes the blog-style envelope (x-amz-key,
# x-amz-iv, x-amz-matdesc only; data key generated without context), checked by the Python reference's
# legacy profile and the Ruby legacy reader; encrypt=all encrypts every name; attributes of a created file
# (mode, uid, gid, mtime) are stored with it and survive an overwrite.
# Run by CTest as: tests/lib/with-stack tests/integration/test_write_profiles.sh
set -uo pipefail
. "$(dirname "$0")/../lib/itest.sh"

work=$S3CSEFS_TEST_TMPDIR/profiles
mnt=$S3CSEFS_TEST_TMPDIR/mnt
mkdir -p "$work" "$mnt"
for size in 1 $((5 * 1048576 + 3)) $((12 * 1048576 + 1)); do head -c "$size" /dev/urandom >"$work/s$size"; done

s3csefs_mount "$S3CSEFS_TEST_BUCKET:/legacy" "$mnt" "cse_profile=legacy" || { echo "FAIL: mount" >&2; exit 1; }
for f in "$work"/s*; do
    name=$(basename "$f").bak
    cp "$f" "$mnt/$name" || fail "cp $name"
    out=$($REF_PY verify "legacy/$name" "$f" --profile legacy 2>&1) && pass "legacy envelope + content: $name" ||
        fail "legacy $name: $out"
    out=$($REF_RB get-legacy "legacy/$name" "$work/rb.out" 2>&1) && cmp -s "$work/rb.out" "$f" &&
        pass "ruby legacy reader: $name" || fail "ruby legacy reader on $name: $out"
done
s3csefs_unmount "$mnt" || fail "unmount"

s3csefs_mount "$S3CSEFS_TEST_BUCKET:/all" "$mnt" "encrypt=all" || { echo "FAIL: mount" >&2; exit 1; }
cp "$work/s1" "$mnt/notes.txt" && install -m 0640 "$work/s1" "$mnt/mode.txt" || fail "cp/install"
out=$($REF_PY verify "all/notes.txt" "$work/s1" --profile any 2>&1) && pass "encrypt=all encrypts notes.txt" ||
    fail "encrypt=all: $out"
"$PY" - <<'PYEOF' && pass "mode/uid/gid/mtime stored with the created file" || fail "attributes not stored"
import os, sys, time, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
m = s3.head_object(Bucket=os.environ["S3CSEFS_TEST_BUCKET"], Key="all/mode.txt")["Metadata"]
print({k: v for k, v in m.items() if not k.startswith("x-amz-")})
ok = int(m.get("mode", "0")) & 0o7777 == 0o640 and m.get("uid") == str(os.getuid()) \
    and abs(int(m.get("mtime", "0")) - time.time()) < 600
sys.exit(0 if ok else 1)
PYEOF
# Overwriting (O_TRUNC) keeps the stored mode, as on a local file system.
cp "$work/s1" "$mnt/mode.txt" || fail "overwrite mode.txt"
"$PY" - <<'PYEOF' && pass "overwrite kept mode 0640" || fail "overwrite lost the mode"
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
m = s3.head_object(Bucket=os.environ["S3CSEFS_TEST_BUCKET"], Key="all/mode.txt")["Metadata"]
sys.exit(0 if int(m.get("mode", "0")) & 0o7777 == 0o640 else 1)
PYEOF
s3csefs_unmount "$mnt" || fail "unmount"
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
