#!/usr/bin/env bash
# The local test stack really verifies SigV4: right secret accepted, wrong secret or unknown key id
# refused, for S3 and for KMS; unsigned requests refused; the bucket, key and alias exist.
# Run by CTest as: tests/lib/with-stack tests/integration/test_stack.sh
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# expect_ok DESCRIPTION COMMAND...
expect_ok() {
    local what=$1; shift
    local out
    if out=$("$@" 2>&1); then pass "$what"; else fail "$what: $out"; fi
}
# expect_error DESCRIPTION ERROR_CODE COMMAND...   (fails unless COMMAND fails with that code in its output)
expect_error() {
    local what=$1 code=$2; shift 2
    local out
    if out=$("$@" 2>&1); then
        fail "$what: succeeded, expected $code"
    elif grep -q "$code" <<<"$out"; then
        pass "$what ($code)"
    else
        fail "$what: expected $code, got: $out"
    fi
}

bucket=$S3CSEFS_TEST_BUCKET
echo hello >"$S3CSEFS_TEST_TMPDIR/hello.txt"

expect_ok "S3 list with the right secret" aws s3api list-objects-v2 --bucket "$bucket"
expect_ok "S3 put with the right secret" \
    aws s3api put-object --bucket "$bucket" --key hello.txt --body "$S3CSEFS_TEST_TMPDIR/hello.txt"
expect_error "S3 list with a wrong secret" SignatureDoesNotMatch \
    env AWS_SECRET_ACCESS_KEY=wrong-secret aws s3api list-objects-v2 --bucket "$bucket"
expect_error "S3 put with a wrong secret" SignatureDoesNotMatch \
    env AWS_SECRET_ACCESS_KEY=wrong-secret aws s3api put-object --bucket "$bucket" --key x \
        --body "$S3CSEFS_TEST_TMPDIR/hello.txt"
expect_error "S3 list with an unknown key id" InvalidAccessKeyId \
    env AWS_ACCESS_KEY_ID=AKIAUNKNOWNUNKNOWN00 aws s3api list-objects-v2 --bucket "$bucket"
# Unsigned requests are refused with 403, as by AWS (moto alone answers some of them with a 500:
# tests/lib/moto_server.py fixes that).
expect_error "S3 list unsigned" AccessDenied \
    aws s3api list-objects-v2 --bucket "$bucket" --no-sign-request
code=$(curl -s -o /dev/null -w '%{http_code}' "$AWS_ENDPOINT_URL/$bucket/hello.txt")
if [ "$code" = 403 ]; then pass "raw unsigned GET object refused (403)"; else fail "raw unsigned GET object returned $code"; fi
code=$(curl -s -o /dev/null -w '%{http_code}' "$AWS_ENDPOINT_URL/$bucket?list-type=2")
if [ "$code" = 403 ]; then pass "raw unsigned bucket listing refused (403)"; else fail "raw unsigned bucket listing returned $code"; fi

# Listings with a delimiter and a prefix holding "/" (query %2F), and keys with characters that must be
# percent-encoded in the path: moto alone gets these wrong (tests/lib/moto_server.py fixes it).
for key in "dir/a b.bak" "dir/sub/c,d=e+f!(g)*~.bak" "dir/ü-ñ.bak"; do
    expect_ok "S3 put of '$key'" aws s3api put-object --bucket "$bucket" --key "$key" \
        --body "$S3CSEFS_TEST_TMPDIR/hello.txt"
    expect_ok "S3 get of '$key'" aws s3api get-object --bucket "$bucket" --key "$key" \
        "$S3CSEFS_TEST_TMPDIR/got.txt"
done
listing=$(aws s3api list-objects-v2 --bucket "$bucket" --prefix dir/ --delimiter / \
          --query '[Contents[].Key, CommonPrefixes[].Prefix]' --output json 2>&1 |
          python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), separators=(",", ":"), ensure_ascii=False))')
expected='[["dir/a b.bak","dir/ü-ñ.bak"],["dir/sub/"]]'
if [ "$listing" = "$expected" ]; then pass "S3 list with prefix dir/ and delimiter /"; else
    fail "S3 list with prefix dir/ and delimiter /: got $listing, expected $expected"; fi
expect_error "S3 list with delimiter and a wrong secret" SignatureDoesNotMatch \
    env AWS_SECRET_ACCESS_KEY=wrong-secret aws s3api list-objects-v2 --bucket "$bucket" --delimiter /

expect_ok "KMS describe-key with the right secret" aws kms describe-key --key-id "$S3CSEFS_TEST_KEY_ARN"
# moto answers a bad KMS signature with HTTP 403 and an XML (not JSON) body, code SignatureDoesNotMatch.
expect_error "KMS describe-key with a wrong secret" SignatureDoesNotMatch \
    env AWS_SECRET_ACCESS_KEY=wrong-secret aws kms describe-key --key-id "$S3CSEFS_TEST_KEY_ARN"
expect_error "KMS generate-data-key with a wrong secret" SignatureDoesNotMatch \
    env AWS_SECRET_ACCESS_KEY=wrong-secret aws kms generate-data-key --key-id "$S3CSEFS_TEST_KEY_ARN" \
        --key-spec AES_256
# Without an Authorization header moto cannot tell the service and answers as S3 (AccessDenied).
expect_error "KMS describe-key unsigned" 'AccessDenied\|MissingAuthenticationToken' \
    aws kms describe-key --key-id "$S3CSEFS_TEST_KEY_ARN" --no-sign-request
expect_error "KMS describe-key with an unknown key id" InvalidClientTokenId \
    env AWS_ACCESS_KEY_ID=AKIAUNKNOWNUNKNOWN00 aws kms describe-key --key-id "$S3CSEFS_TEST_KEY_ARN"
# The bootstrap identity used for the unauthenticated IAM setup calls must be dead now.
expect_error "IAM with the bootstrap identity" InvalidClientTokenId \
    env AWS_ACCESS_KEY_ID=bootstrap AWS_SECRET_ACCESS_KEY=bootstrap aws iam list-users

# The alias resolves to the exported ARN.
arn=$(aws kms describe-key --key-id "$S3CSEFS_TEST_KEY_ALIAS" --query KeyMetadata.Arn --output text 2>&1)
if [ "$arn" = "$S3CSEFS_TEST_KEY_ARN" ]; then pass "alias resolves to the key ARN"; else
    fail "alias $S3CSEFS_TEST_KEY_ALIAS resolves to '$arn', expected $S3CSEFS_TEST_KEY_ARN"; fi
case $S3CSEFS_TEST_KEY_ARN in
    arn:aws:kms:us-east-1:*:key/*) pass "key ARN has the expected shape" ;;
    *) fail "unexpected key ARN $S3CSEFS_TEST_KEY_ARN" ;;
esac

# The environment must not carry anything from the caller's AWS setup.
for var in AWS_PROFILE AWS_SESSION_TOKEN; do
    if [ -n "${!var:-}" ]; then fail "$var is set inside with-stack"; fi
done

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all stack checks passed"
