#!/usr/bin/env bash
# The seed article's manual workflow with the AWS CLI and openssl, against objects the mount reads and
# writes (against moto):
#  forward: `aws kms generate-data-key` (with and without --encryption-context kms_cmk_id=<arn>),
#           `openssl enc -aes-256-cbc -K -iv` (PKCS#7 is openssl's default), `aws s3api put-object
#           --metadata ...` in the default (x-amz-key-v2 + cek/wrap-alg) and the blog style (x-amz-key,
#           no context); the mount must read each back byte-exactly and stat its exact size; an
#           envelope whose context does not match must give an error, never bytes.
#  reverse: files written through the mount (default and cse_profile=legacy) -> `aws s3api head-object`
#           shows the envelope -> `aws kms decrypt` (with the context for kms, without for legacy) ->
#           `openssl enc -d` gives the original bytes.
# docs/admin-guide.md shows the same commands. Uses only the CLI tools plus python for JSON compares.
# Run by CTest as: tests/lib/with-stack tests/integration/test_awscli_workflow.sh
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
src_dir=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$src_dir/tests/lib/mount.sh"
PY=${S3CSEFS_PYTHON:-python3}

passed=0
failed=0
pass() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

# awscli v1 reads AWS_ENDPOINT_URL only in recent versions; pass it explicitly so either works.
aws() { command aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }
ARN=$S3CSEFS_TEST_KEY_ARN
BUCKET=$S3CSEFS_TEST_BUCKET
MIB=1048576
work=$S3CSEFS_TEST_TMPDIR/awscli
mnt=$S3CSEFS_TEST_TMPDIR/mnt
mkdir -p "$work" "$mnt"
prefix=manual
b64_to_hex() { base64 -d | xxd -p -c 256; }

# ---- forward: encrypt by hand, upload with the CLI, read through the mount -------------------------------
# manual_put NAME PLAINTEXT STYLE  (STYLE: v2 = context + x-amz-key-v2 + cek/wrap-alg; v2len = the same
# plus x-amz-unencrypted-content-length; blog = no context, x-amz-key, matdesc with a space like the
# article; mismatch = v2 metadata on a key generated WITHOUT the context)
manual_put() {
    local name=$1 plain=$2 style=$3 dk key_hex key_blob iv_hex iv_b64 metadata
    case $style in
    v2 | v2len) dk=$(aws kms generate-data-key --key-id "$ARN" --key-spec AES_256 \
                    --encryption-context "kms_cmk_id=$ARN" --output json) ;;
    blog | mismatch) dk=$(aws kms generate-data-key --key-id "$ARN" --key-spec AES_256 --output json) ;;
    esac
    [ -n "$dk" ] || { fail "$name: generate-data-key"; return 1; }
    key_hex=$(printf '%s' "$dk" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["Plaintext"])' | b64_to_hex)
    key_blob=$(printf '%s' "$dk" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["CiphertextBlob"])')
    iv_hex=$(openssl rand -hex 16)
    iv_b64=$(printf '%s' "$iv_hex" | xxd -r -p | base64 -w0)
    [ "${#key_hex}" -eq 64 ] || { fail "$name: data key is not 32 bytes"; return 1; }
    openssl enc -aes-256-cbc -K "$key_hex" -iv "$iv_hex" -in "$plain" -out "$work/$name.enc" ||
        { fail "$name: openssl enc"; return 1; }
    case $style in
    v2 | mismatch)
        metadata="x-amz-key-v2=$key_blob,x-amz-iv=$iv_b64,x-amz-matdesc='{\"kms_cmk_id\":\"$ARN\"}',x-amz-cek-alg=AES/CBC/PKCS5Padding,x-amz-wrap-alg=kms" ;;
    v2len)
        metadata="x-amz-key-v2=$key_blob,x-amz-iv=$iv_b64,x-amz-matdesc='{\"kms_cmk_id\":\"$ARN\"}',x-amz-cek-alg=AES/CBC/PKCS5Padding,x-amz-wrap-alg=kms,x-amz-unencrypted-content-length=$(stat -c %s "$plain")" ;;
    blog)
        metadata="x-amz-key=$key_blob,x-amz-iv=$iv_b64,x-amz-matdesc='{\"kms_cmk_id\": \"$ARN\"}'" ;;
    esac
    if aws s3api put-object --bucket "$BUCKET" --key "$prefix/$name" --body "$work/$name.enc" \
        --metadata "$metadata" >/dev/null; then
        pass "$name: encrypted with openssl and uploaded with aws s3api put-object ($style)"
    else
        fail "$name: put-object"; return 1
    fi
}

head -c $((1000003)) /dev/urandom >"$work/odd"
head -c 4096 /dev/urandom >"$work/aligned"
: >"$work/empty"
head -c $((12 * MIB + 5)) /dev/urandom >"$work/large"
head -c 777 /dev/urandom >"$work/small"
manual_put odd-v2.bak "$work/odd" v2
manual_put aligned-v2.bak "$work/aligned" v2
manual_put empty-v2.bak "$work/empty" v2
manual_put large-v2len.bak "$work/large" v2len
manual_put odd-blog.bak "$work/odd" blog
manual_put small-blog.bak "$work/small" blog
manual_put large-blog.bak "$work/large" blog
manual_put mismatch.bak "$work/small" mismatch
# The stored object is openssl's output byte for byte, i.e. padded to the next whole block.
stored=$(aws s3api head-object --bucket "$BUCKET" --key "$prefix/aligned-v2.bak" --query ContentLength --output text)
[ "$stored" = 4112 ] && pass "4096 plaintext bytes stored as 4112 (a whole padding block)" || fail "aligned stored size $stored"

s3csefs_mount "$BUCKET:/$prefix" "$mnt" || { fail "mount"; finish; }
for pair in odd-v2.bak:odd aligned-v2.bak:aligned empty-v2.bak:empty large-v2len.bak:large \
    odd-blog.bak:odd small-blog.bak:small large-blog.bak:large; do
    name=${pair%%:*}; plain=$work/${pair#*:}
    size=$(stat -c %s "$mnt/$name" 2>&1)
    [ "$size" = "$(stat -c %s "$plain")" ] && pass "$name: stat size $size through the mount" ||
        fail "$name: stat size '$size', want $(stat -c %s "$plain")"
    if cmp -s "$plain" "$mnt/$name"; then pass "$name: mount reads it back byte-exactly"; else
        fail "$name: mount read differs ($(cmp "$plain" "$mnt/$name" 2>&1 | head -1))"; fi
done
# A ranged read in the middle of the large one (not from the start: random-access CBC).
got=$(dd if="$mnt/large-blog.bak" bs=4099 skip=1777 count=300 status=none | sha256sum)
want=$(dd if="$work/large" bs=4099 skip=1777 count=300 status=none | sha256sum)
[ "$got" = "$want" ] && pass "large-blog.bak: ranged read through the mount" || fail "large-blog.bak: ranged read differs"
# The envelope as the mount sees it.
xa=$(getfattr --only-values -n user.s3csefs.key_arn "$mnt/odd-v2.bak" 2>/dev/null)
[ "$xa" = "$ARN" ] && pass "getfattr user.s3csefs.key_arn is the key ARN" || fail "user.s3csefs.key_arn '$xa'"
xa=$(getfattr --only-values -n user.s3csefs.key_version "$mnt/odd-blog.bak" 2>/dev/null)
[ "$xa" = v1 ] && pass "blog-style object shows key_version v1" || fail "blog-style key_version '$xa'"
# Metadata promising a context that the data key was not generated with: KMS refuses, so must the read.
if out=$(cat "$mnt/mismatch.bak" 2>&1 >"$work/mismatch.out"); then
    fail "mismatch.bak: read succeeded ($(stat -c %s "$work/mismatch.out") bytes) though KMS cannot decrypt its key"
else
    cmp -s "$work/small" "$work/mismatch.out" && fail "mismatch.bak: plaintext came out anyway" ||
        pass "mismatch.bak: read fails ($out)"
fi
s3csefs_unmount "$mnt" || fail "unmount (daemon exit status $?)"

# ---- reverse: written through the mount, decrypted by hand ------------------------------------------------
# manual_get KEY PLAINTEXT CONTEXT(yes|no): head-object, kms decrypt, get-object, openssl enc -d, cmp.
manual_get() {
    local key=$1 plain=$2 with_context=$3 tag=${1//\//_} blob_b64 iv_b64 key_hex
    if [ "$with_context" = yes ]; then
        blob_b64=$(aws s3api head-object --bucket "$BUCKET" --key "$key" --query 'Metadata."x-amz-key-v2"' --output text)
    else
        blob_b64=$(aws s3api head-object --bucket "$BUCKET" --key "$key" --query 'Metadata."x-amz-key"' --output text)
    fi
    iv_b64=$(aws s3api head-object --bucket "$BUCKET" --key "$key" --query 'Metadata."x-amz-iv"' --output text)
    printf '%s' "$blob_b64" | base64 -d >"$work/$tag.blob" 2>/dev/null || { fail "$key: key blob is not base64"; return 1; }
    if [ "$with_context" = yes ]; then
        key_hex=$(aws kms decrypt --ciphertext-blob "fileb://$work/$tag.blob" --encryption-context "kms_cmk_id=$ARN" \
            --query Plaintext --output text | b64_to_hex)
    else
        key_hex=$(aws kms decrypt --ciphertext-blob "fileb://$work/$tag.blob" --query Plaintext --output text | b64_to_hex)
    fi
    [ "${#key_hex}" -eq 64 ] && pass "$key: aws kms decrypt returns the 32-byte data key" ||
        { fail "$key: aws kms decrypt"; return 1; }
    aws s3api get-object --bucket "$BUCKET" --key "$key" "$work/$tag.enc" >/dev/null || { fail "$key: get-object"; return 1; }
    if openssl enc -d -aes-256-cbc -K "$key_hex" -iv "$(printf '%s' "$iv_b64" | b64_to_hex)" \
        -in "$work/$tag.enc" -out "$work/$tag.dec" && cmp -s "$plain" "$work/$tag.dec"; then
        pass "$key: openssl enc -d gives the original bytes"
    else
        fail "$key: openssl decrypt differs from the original"
    fi
}

# expect_envelope KEY PROFILE PLAINTEXT: the names and values head-object shows.
expect_envelope() {
    local meta length
    meta=$(aws s3api head-object --bucket "$BUCKET" --key "$1" --query Metadata --output json) || { fail "$1: head-object"; return 1; }
    length=$(aws s3api head-object --bucket "$BUCKET" --key "$1" --query ContentLength --output text)
    if "$PY" - "$2" "$ARN" "$(stat -c %s "$3")" "$length" "$meta" <<'PYEOF'; then pass "$1: head-object shows the $2 envelope"; else fail "$1: envelope"; fi
import base64, json, sys
profile, arn, plain, stored, meta = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
env = {k: v for k, v in meta.items() if k.startswith("x-amz-")}
problems = []
if profile == "kms":
    want = {"x-amz-key-v2", "x-amz-iv", "x-amz-matdesc", "x-amz-cek-alg", "x-amz-wrap-alg"}
    if env.get("x-amz-cek-alg") != "AES/CBC/PKCS5Padding" or env.get("x-amz-wrap-alg") != "kms":
        problems.append(f"cek/wrap {env.get('x-amz-cek-alg')} {env.get('x-amz-wrap-alg')}")
else:
    want = {"x-amz-key", "x-amz-iv", "x-amz-matdesc"}
extra = set(env) - want - {"x-amz-unencrypted-content-length"}
if not want <= set(env) or extra:
    problems.append(f"names {sorted(env)}")
if "x-amz-unencrypted-content-length" in env and env["x-amz-unencrypted-content-length"] != str(plain):
    problems.append("x-amz-unencrypted-content-length wrong")
if json.loads(env.get("x-amz-matdesc", "null")) != {"kms_cmk_id": arn}:
    problems.append(f"matdesc {env.get('x-amz-matdesc')}")
if len(base64.b64decode(env.get("x-amz-iv", ""))) != 16:
    problems.append("IV not 16 bytes")
if stored != plain + 16 - plain % 16:
    problems.append(f"stored {stored} for {plain}")
print("; ".join(problems) or "envelope ok", file=sys.stderr if problems else sys.stdout)
sys.exit(1 if problems else 0)
PYEOF
}

s3csefs_mount "$BUCKET:/$prefix" "$mnt" || { fail "mount"; finish; }
cp "$work/odd" "$mnt/rev-odd.bak" || fail "cp rev-odd.bak"
cp "$work/large" "$mnt/rev-large.bak" || fail "cp rev-large.bak"
cp "$work/aligned" "$mnt/rev-aligned.bak" || fail "cp rev-aligned.bak"
s3csefs_unmount "$mnt" || fail "unmount (daemon exit status $?)"
s3csefs_mount "$BUCKET:/$prefix/legacy" "$mnt" "cse_profile=legacy" || { fail "mount cse_profile=legacy"; finish; }
cp "$work/odd" "$mnt/rev-odd.bak" || fail "cp legacy/rev-odd.bak"
s3csefs_unmount "$mnt" || fail "unmount (daemon exit status $?)"

for pair in rev-odd.bak:odd rev-large.bak:large rev-aligned.bak:aligned; do
    name=${pair%%:*}; plain=$work/${pair#*:}
    expect_envelope "$prefix/$name" kms "$plain"
    manual_get "$prefix/$name" "$plain" yes
done
expect_envelope "$prefix/legacy/rev-odd.bak" legacy "$work/odd"
manual_get "$prefix/legacy/rev-odd.bak" "$work/odd" no

# KMS insists on the context for the default profile: without it the data key does not come out.
aws s3api head-object --bucket "$BUCKET" --key "$prefix/rev-odd.bak" --query 'Metadata."x-amz-key-v2"' --output text |
    base64 -d >"$work/ctx.blob"
if aws kms decrypt --ciphertext-blob "fileb://$work/ctx.blob" --query Plaintext --output text >/dev/null 2>"$work/ctx.err"; then
    fail "aws kms decrypt without the encryption context succeeded for a kms-wrapped key"
else
    grep -q InvalidCiphertextException "$work/ctx.err" && pass "aws kms decrypt without the context is refused (InvalidCiphertextException)" ||
        fail "aws kms decrypt without the context failed otherwise: $(head -2 "$work/ctx.err")"
fi
# And `aws s3 cp` of an encrypted object gives ciphertext, not the plaintext (S3 itself knows nothing).
aws s3 cp "s3://$BUCKET/$prefix/rev-odd.bak" "$work/raw.enc" --quiet
! cmp -s "$work/raw.enc" "$work/odd" && [ "$(stat -c %s "$work/raw.enc")" -eq $((1000003 + 16 - 1000003 % 16)) ] &&
    pass "aws s3 cp of an encrypted object is the ciphertext" || fail "aws s3 cp of an encrypted object"
# A bucket-to-bucket `aws s3 cp` keeps the user metadata (the CLI copies it by default), so the copy
# is still a decryptable CSE object (checked with the Python reference, envelope included).
out="copy failed"
if aws s3 cp "s3://$BUCKET/$prefix/rev-odd.bak" "s3://$BUCKET/$prefix/copied/rev-odd.bak" --quiet &&
    out=$("$PY" "$src_dir/tests/tools/ref_cse.py" verify "$prefix/copied/rev-odd.bak" "$work/odd" --profile any 2>&1); then
    pass "aws s3 cp s3:// s3:// keeps the envelope: the copy decrypts with ref_cse.py"
else
    fail "aws s3 cp s3:// s3:// copy does not decrypt: $out"
fi

finish
