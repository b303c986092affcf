#!/usr/bin/env bash
# Write path on a real mount against moto: cp and dd (512 B, 4 KiB, 1 MiB, 3 MiB+1 blocks) of files of
# 0, 1, 16, 5 MiB-1, 5 MiB, 8 MiB+17 and 50 MiB bytes. Every *.bak object must decrypt byte-exactly with
# the Python reference (tests/tools/ref_cse.py verify: content and exact envelope) and with the Ruby AWS
# SDK's encryption client (ref_cse.rb get); no two objects share a data key or an IV; a name outside the
# policy is stored as it is; nothing is left as an unfinished multipart upload.
# Run by CTest as: tests/lib/with-stack tests/integration/test_write_mount.sh
set -uo pipefail
. "$(dirname "$0")/../lib/itest.sh"

work=$S3CSEFS_TEST_TMPDIR/write
mnt=$S3CSEFS_TEST_TMPDIR/mnt
mkdir -p "$work" "$mnt"
prefix=wtest
s3csefs_mount "$S3CSEFS_TEST_BUCKET:/$prefix" "$mnt" || { echo "FAIL: mount" >&2; exit 1; }

MIB=1048576
sizes=(0 1 16 $((5 * MIB - 1)) $((5 * MIB)) $((8 * MIB + 17)) $((50 * MIB)))
blocks=(512 4096 $MIB $((3 * MIB + 1)))

for size in "${sizes[@]}"; do
    head -c "$size" /dev/urandom >"$work/src-$size"
done

verify_both() {   # verify_both NAME LOCAL
    local name=$1 local_file=$2 out
    if out=$($REF_PY verify "$prefix/$name" "$local_file" --profile any 2>&1); then
        pass "python reference verifies $name"
    else
        fail "python reference on $name: $out"
    fi
    if out=$($REF_RB get "$prefix/$name" "$work/rb.out" 2>&1) && cmp -s "$work/rb.out" "$local_file"; then
        pass "ruby SDK decrypts $name"
    else
        fail "ruby SDK on $name: $out $(cmp "$work/rb.out" "$local_file" 2>&1)"
    fi
}

for size in "${sizes[@]}"; do
    if cp "$work/src-$size" "$mnt/cp-$size.bak"; then pass "cp $size"; else fail "cp $size"; fi
    verify_both "cp-$size.bak" "$work/src-$size"
    for bs in "${blocks[@]}"; do
        # 512-byte blocks of the 50 MiB file only add time.
        [ "$bs" -eq 512 ] && [ "$size" -gt $((8 * MIB + 17)) ] && continue
        if dd if="$work/src-$size" of="$mnt/dd-$size-$bs.bak" bs="$bs" status=none; then
            pass "dd bs=$bs size $size"
        else
            fail "dd bs=$bs size $size"
        fi
        if out=$($REF_PY verify "$prefix/dd-$size-$bs.bak" "$work/src-$size" --profile any 2>&1); then
            pass "python reference verifies dd-$size-$bs.bak"
        else
            fail "python reference on dd-$size-$bs.bak: $out"
        fi
    done
done
# The Ruby SDK on the dd objects of the two multipart-sized files too.
verify_both "dd-$((8 * MIB + 17))-$((3 * MIB + 1)).bak" "$work/src-$((8 * MIB + 17))"
verify_both "dd-$((50 * MIB))-$MIB.bak" "$work/src-$((50 * MIB))"

# A name outside the policy is stored as it is; upper-case .BAK is encrypted.
cp "$work/src-$((5 * MIB))" "$mnt/plain.txt"
"$PY" - "$prefix/plain.txt" "$work/src-$((5 * MIB))" <<'PYEOF' && pass "plain.txt stored unencrypted" || fail "plain.txt not stored as is"
import sys, os, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
o = s3.get_object(Bucket=os.environ["S3CSEFS_TEST_BUCKET"], Key=sys.argv[1])
body = o["Body"].read()
meta = o.get("Metadata", {})
sys.exit(0 if body == open(sys.argv[2], "rb").read() and not any(k.startswith("x-amz-") for k in meta) else 1)
PYEOF
cp "$work/src-16" "$mnt/UPPER.BAK"
verify_both "UPPER.BAK" "$work/src-16"

# Sizes seen through the mount after close.
for size in 0 1 $((8 * MIB + 17)); do
    got=$(stat -c %s "$mnt/cp-$size.bak" 2>/dev/null)
    [ "$got" = "$size" ] && pass "stat size of cp-$size.bak" || fail "stat size of cp-$size.bak: $got, expected $size"
done

# Every encrypted object has its own data key and IV; no multipart upload left behind.
"$PY" - "$prefix/" <<'PYEOF' && pass "data keys and IVs all distinct, no open multipart uploads" || fail "shared key/IV or leftover uploads"
import sys, os, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
bucket = os.environ["S3CSEFS_TEST_BUCKET"]
keys, ivs, n = set(), set(), 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=sys.argv[1]):
    for obj in page.get("Contents", []):
        if not obj["Key"].lower().endswith(".bak"):
            continue
        meta = s3.head_object(Bucket=bucket, Key=obj["Key"])["Metadata"]
        keys.add(meta["x-amz-key-v2"]); ivs.add(meta["x-amz-iv"]); n += 1
uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
print(f"{n} encrypted objects, {len(keys)} keys, {len(ivs)} IVs, {len(uploads)} open uploads")
sys.exit(0 if n > 20 and len(keys) == n and len(ivs) == n and not uploads else 1)
PYEOF

s3csefs_unmount "$mnt" || fail "unmount (daemon exit status $?)"
if grep -qiE "secret|BEGIN|key=[A-Za-z0-9+/]{40}" "$(s3csefs_daemon_log "$mnt")"; then
    fail "daemon log mentions secret-looking material"
fi
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
