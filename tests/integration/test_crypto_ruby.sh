#!/usr/bin/env bash
# s3csefs' crypto library against the AWS SDK for Ruby's Aws::S3::Encryption::Client, both directions,
# on the local moto S3+KMS stack:
#   Ruby writes (sizes 0, 1, 15, 16, 17, 100000; metadata and instruction-file envelopes) -> awscli
#   fetches the raw ciphertext and metadata, `cse_crypt envelope|instruction` parses the envelope,
#   `aws kms decrypt` unwraps the data key with the KMS contexts our parser derived, and `cse_crypt dec`
#   decrypts byte-exactly (plaintext size from the tail too);
#   Ruby's EncryptionV2 client writes AES/GCM with kms+context -> we check the context binding, verify
#   the tag, read unauthenticated ranges and refuse a flipped bit;
#   we write (data key from GenerateDataKey with context {"kms_cmk_id": arn}, `cse_crypt enc` with odd
#   cuts, metadata from `cse_crypt emit`) -> awscli uploads -> Ruby decrypts byte-exactly;
#   the legacy (blog) profile: no context at GenerateDataKey, found by our second context, body checked
#   with `openssl enc`.
# Run by CTest as: tests/lib/with-stack tests/integration/test_crypto_ruby.sh
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
: "${S3CSEFS_BUILD_DIR:?S3CSEFS_BUILD_DIR must point at the build directory}"
here=$(cd "$(dirname "$0")" && pwd)
ruby_client=$here/crypto_ruby_client.rb
cse=$S3CSEFS_BUILD_DIR/tests/cse_crypt
py=${S3CSEFS_PYTHON:-python3}
bucket=$S3CSEFS_TEST_BUCKET
arn=$S3CSEFS_TEST_KEY_ARN
work=${S3CSEFS_TEST_TMPDIR:-$(mktemp -d)}/crypto_ruby
mkdir -p "$work" && cd "$work" || exit 2
[ -x "$cse" ] || { echo "missing $cse" >&2; exit 2; }

passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }
aws_() { aws --endpoint-url "$AWS_ENDPOINT_URL" --region "$AWS_REGION" "$@"; }
# json FILE EXPR: evaluates a Python expression over the JSON document j read from FILE
json() { "$py" -c 'import json,sys; j=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(v if isinstance(v,str) else json.dumps(v,separators=(",",":")))' "$1" "$2"; }

sizes=(0 1 15 16 17 100000)
for n in "${sizes[@]}"; do head -c "$n" /dev/urandom >"plain$n"; done

# Decrypts the data key with KMS using each context our parser produced, in order; prints it as hex.
unwrap_key() {
    local envelope=$1 count i
    count=$(json "$envelope" 'len(j["kms_contexts"])')
    for ((i = 0; i < count; i++)); do
        json "$envelope" "j['encrypted_key']" | base64 -d >blob.bin
        local ctx_args=()
        [ "$(json "$envelope" "len(j['kms_contexts'][$i])")" != 0 ] &&
            ctx_args=(--encryption-context "$(json "$envelope" "j['kms_contexts'][$i]")")
        if aws_ kms decrypt --ciphertext-blob fileb://blob.bin "${ctx_args[@]}" --query Plaintext \
            --output text 2>/dev/null | base64 -d | od -An -tx1 -v | tr -d ' \n'; then
            return 0
        fi
    done
    return 1
}

# ---- Ruby writes, we read -------------------------------------------------------------------------
for location in metadata instruction; do
    for n in "${sizes[@]}"; do
        key="rb-$location-$n.bak"
        if ! "$ruby_client" put "plain$n" "$key" $location; then fail "ruby put $key"; continue; fi
        aws_ s3api get-object --bucket "$bucket" --key "$key" "cipher$n" >/dev/null || { fail "get $key"; continue; }
        if [ $location = metadata ]; then
            aws_ s3api head-object --bucket "$bucket" --key "$key" --query Metadata >meta.json
            "$cse" envelope <meta.json >envelope.json
        else
            aws_ s3api get-object --bucket "$bucket" --key "$key.instruction" instr.json >/dev/null
            "$cse" instruction <instr.json >envelope.json
        fi
        status=$(json envelope.json 'j["status"]')
        if [ "$status" != CSE_OK ]; then fail "parse $key: $(cat envelope.json)"; continue; fi
        # The envelope is exactly the Encryption-Only KMS shape, and the context is the matdesc itself.
        shape=$(json envelope.json '[j["key_version"], j["cek_alg"], j["wrap_alg"], j["matdesc"], j["kms_contexts"], j["tag_len"]]')
        want="[2,\"AES/CBC/PKCS5Padding\",\"kms\",{\"kms_cmk_id\":\"$arn\"},[{\"kms_cmk_id\":\"$arn\"}],0]"
        [ "$shape" = "$want" ] && ok "ruby $location envelope $n parsed: $shape" || fail "ruby $location envelope $n: $shape != $want"
        if [ $location = metadata ]; then
            [ "$(json envelope.json 'j["plain_length"]')" = "$n" ] && ok "ruby $n: x-amz-unencrypted-content-length" ||
                fail "ruby $n: plain_length $(json envelope.json 'j["plain_length"]')"
        fi
        keyhex=$(unwrap_key envelope.json) || { fail "kms decrypt of $key's data key"; continue; }
        iv=$(json envelope.json 'j["iv"]')
        if "$cse" dec --key "$keyhex" --iv "$iv" --cuts 7,16,1000 <"cipher$n" >"out$n" && cmp -s "out$n" "plain$n"; then
            ok "ruby $location $n bytes: cse_crypt decrypts byte-exactly"
        else
            fail "ruby $location $n bytes: cse_crypt decryption differs"
        fi
        size=$("$cse" plainsize --key "$keyhex" --iv "$iv" <"cipher$n")
        [ "$size" = "$n" ] && ok "ruby $location $n: plaintext size from the tail" || fail "ruby $n: plainsize $size"
        rm -f "out$n"
    done
done

# ---- Ruby's V2 client writes GCM with kms+context, we read (whole with tag, ranged, tampered) ------
for n in "${sizes[@]}"; do
    key="rb-gcm-$n.bak"
    "$ruby_client" put-gcm "plain$n" "$key" || { fail "ruby put-gcm $key"; continue; }
    aws_ s3api get-object --bucket "$bucket" --key "$key" "gcm$n" >/dev/null || { fail "get $key"; continue; }
    aws_ s3api head-object --bucket "$bucket" --key "$key" --query Metadata >meta.json
    "$cse" envelope <meta.json >envelope.json
    shape=$(json envelope.json '[j["status"], j["cek_alg"], j["wrap_alg"], j["tag_len"], j["matdesc"].get("aws:x-amz-cek-alg"), j["matdesc"].get("team"), j["kms_contexts"] == [j["matdesc"]]]')
    want='["CSE_OK","AES/GCM/NoPadding","kms+context",128,"AES/GCM/NoPadding","db",true]'
    [ "$shape" = "$want" ] && ok "ruby gcm envelope $n parsed: $shape" || { fail "ruby gcm envelope $n: $shape"; continue; }
    keyhex=$(unwrap_key envelope.json) || { fail "kms decrypt of $key's data key (kms+context)"; continue; }
    iv=$(json envelope.json 'j["iv"]')
    if "$cse" gcm-dec --key "$keyhex" --iv "$iv" --cuts 7,16,1000 <"gcm$n" >"out$n" && cmp -s "out$n" "plain$n"; then
        ok "ruby gcm $n bytes: tag verified, decrypted byte-exactly"
    else
        fail "ruby gcm $n bytes: gcm-dec failed or differs"
    fi
    if [ "$n" -gt 20 ]; then
        for range in "0 $n" "1 15" "17 100" "$((n - 20)) 20"; do
            set -- $range
            "$cse" gcm-range --key "$keyhex" --iv "$iv" --offset "$1" --length "$2" <"gcm$n" >range.out
            # (not tail | head: under pipefail tail's SIGPIPE would fail the comparison)
            "$py" -c 'import sys; o,l=int(sys.argv[2]),int(sys.argv[3]); sys.stdout.buffer.write(open(sys.argv[1],"rb").read()[o:o+l])' \
                "plain$n" "$1" "$2" >range.want
            if cmp -s range.want range.out; then
                ok "ruby gcm $n: unauthenticated range $1+$2"
            else
                fail "ruby gcm $n: range $1+$2 differs"
            fi
        done
    fi
    "$py" -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[len(b)//2]^=1; open("gcm-bad","wb").write(b)' "gcm$n"
    out=$("$cse" gcm-dec --key "$keyhex" --iv "$iv" <gcm-bad 2>&1 >/dev/null)
    case $out in *CSE_ERR_GCM_TAG*) ok "ruby gcm $n: one flipped bit -> CSE_ERR_GCM_TAG" ;;
        *) fail "ruby gcm $n tampered: $out" ;; esac
    rm -f "out$n"
done

# ---- We write, Ruby reads -------------------------------------------------------------------------
for n in "${sizes[@]}"; do
    key="ours-$n.bak"
    aws_ kms generate-data-key --key-id "$arn" --key-spec AES_256 \
        --encryption-context "{\"kms_cmk_id\":\"$arn\"}" >dk.json || { fail "generate-data-key"; continue; }
    keyhex=$(json dk.json 'j["Plaintext"]' | base64 -d | od -An -tx1 -v | tr -d ' \n')
    blob=$(json dk.json 'j["CiphertextBlob"]')
    iv=$(head -c 16 /dev/urandom | od -An -tx1 -v | tr -d ' \n')
    "$cse" enc --key "$keyhex" --iv "$iv" --cuts 1,15,31,4096 <"plain$n" >"cipher$n" || { fail "enc $n"; continue; }
    "$cse" emit --profile kms --blob "$blob" --iv "$iv" --arn "$arn" --plain-length "$n" >emitted.json ||
        { fail "emit $n"; continue; }
    aws_ s3api put-object --bucket "$bucket" --key "$key" --body "cipher$n" --metadata file://emitted.json \
        >/dev/null || { fail "put $key"; continue; }
    if "$ruby_client" get "$key" "back$n" && cmp -s "back$n" "plain$n"; then
        ok "ours $n bytes: the Ruby SDK decrypts byte-exactly"
    else
        fail "ours $n bytes: the Ruby SDK could not decrypt it byte-exactly"
    fi
    # What S3 stores is what we emitted, name for name.
    aws_ s3api head-object --bucket "$bucket" --key "$key" --query Metadata >stored.json
    if [ "$(json stored.json 'sorted(j.items())')" = "$(json emitted.json 'sorted(j.items())')" ]; then
        ok "ours $n: stored metadata equals the emitted envelope"
    else
        fail "ours $n: stored metadata differs from the emitted envelope"
    fi
    rm -f "back$n"
done

# ---- Legacy (blog) profile: data key without context; our contexts [matdesc, {}] must find it -----
n=100000
aws_ kms generate-data-key --key-id "$arn" --key-spec AES_256 >dk.json
keyhex=$(json dk.json 'j["Plaintext"]' | base64 -d | od -An -tx1 -v | tr -d ' \n')
iv=$(head -c 16 /dev/urandom | od -An -tx1 -v | tr -d ' \n')
"$cse" enc --key "$keyhex" --iv "$iv" <"plain$n" >legacy.bin
"$cse" emit --profile legacy --blob "$(json dk.json 'j["CiphertextBlob"]')" --iv "$iv" --arn "$arn" >legacy.json
aws_ s3api put-object --bucket "$bucket" --key legacy.bak --body legacy.bin --metadata file://legacy.json >/dev/null
aws_ s3api head-object --bucket "$bucket" --key legacy.bak --query Metadata >meta.json
"$cse" envelope <meta.json >envelope.json
shape=$(json envelope.json '[j["status"], j["key_version"], j["wrap_alg"], j["kms_contexts"]]')
want="[\"CSE_OK\",1,\"\",[{\"kms_cmk_id\":\"$arn\"},{}]]"
[ "$shape" = "$want" ] && ok "legacy envelope: contexts matdesc then none" || fail "legacy envelope: $shape != $want"
if [ "$(unwrap_key envelope.json)" = "$keyhex" ] &&
    openssl enc -d -aes-256-cbc -K "$keyhex" -iv "$iv" <legacy.bin | cmp -s - "plain$n"; then
    ok "legacy: data key found with the empty context, openssl enc decrypts our body"
else
    fail "legacy: data key or body did not round-trip"
fi

# Sanity check that a broken object cannot pass: flipping bit 5 of the last byte of the next-to-last
# ciphertext block turns the pad byte p (1..16) into p ^ 0x20 (33..48), which every reader must refuse.
if [ -s cipher100000 ]; then
    "$py" -c 'import sys; b=bytearray(open("cipher100000","rb").read()); b[-17]^=0x20; open("cipher-bad","wb").write(b)'
    if aws_ s3api put-object --bucket "$bucket" --key bad.bak --body cipher-bad --metadata file://emitted.json >/dev/null &&
        ! "$ruby_client" get bad.bak back-bad 2>/dev/null; then
        ok "corrupt padding under a valid envelope: the Ruby SDK refuses it"
    else
        fail "corrupt padding was not refused by the Ruby SDK"
    fi
    out=$("$cse" dec --key "$keyhex" --iv "$iv" <cipher-bad 2>&1 >/dev/null)
    case $out in *CSE_ERR_BAD_PADDING*) ok "corrupt padding: cse_crypt reports CSE_ERR_BAD_PADDING" ;;
        *) fail "corrupt padding: cse_crypt said: $out" ;; esac
else
    fail "no ciphertext to corrupt"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
