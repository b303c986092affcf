#!/usr/bin/env bash
# Namespace operations through a real mount: ls -l of 1,500 encrypted objects (written with boto3 and
# the `cryptography` package, sharing a few data keys, no stored plaintext length) shows exact sizes with
# at most one KMS call per data key, and none on a repeat within the TTL (counters from the
# user.s3csefs.stats xattr); a file being written is listed; mkdir/rmdir (ENOTEMPTY), unlink, rename of an encrypted object (envelope
# kept, verified by the Python reference) and of a directory; chmod and utimens round trip; rsync -a of a
# tree twice transfers no file the second time.
# Run by CTest as: tests/lib/with-stack tests/integration/test_namespace_ops.sh
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
src=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
py=$src/tests/tools/ref_cse.py
python=${S3CSEFS_PYTHON:-python3}
. "$src/tests/lib/mount.sh"
work=$S3CSEFS_TEST_TMPDIR/namespace_ops
mnt=$S3CSEFS_TEST_TMPDIR/mnt
mkdir -p "$work" "$mnt" && cd "$work" || exit 2

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
counter() { getfattr --only-values -n user.s3csefs.stats "$mnt" 2>/dev/null | awk -v n="$1" '$1 == n { print $2 }'; }

# 1,500 encrypted objects under many/, 3 data keys; sizes.txt lists "name size".
"$python" - <<'PY' || { echo "FAIL: creating objects" >&2; exit 1; }
import base64, json, os, random, boto3
from concurrent.futures import ThreadPoolExecutor
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
ep, bucket, arn = os.environ["AWS_ENDPOINT_URL"], os.environ["S3CSEFS_TEST_BUCKET"], os.environ["S3CSEFS_TEST_KEY_ARN"]
s3 = boto3.client("s3", endpoint_url=ep)
kms = boto3.client("kms", endpoint_url=ep)
matdesc = {"kms_cmk_id": arn}
keys = [kms.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext=matdesc) for _ in range(3)]
rng = random.Random(5)
jobs = []
for i in range(1500):
    size = rng.randrange(0, 5000)
    jobs.append(("many/obj%04d.bak" % i, size, keys[i % 3]))
def put(job):
    key, size, dk = job
    iv = os.urandom(16)
    p = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(dk["Plaintext"]), modes.CBC(iv)).encryptor()
    body = enc.update(p.update(os.urandom(size)) + p.finalize()) + enc.finalize()
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={
        "x-amz-key-v2": base64.b64encode(dk["CiphertextBlob"]).decode(), "x-amz-iv": base64.b64encode(iv).decode(),
        "x-amz-cek-alg": "AES/CBC/PKCS5Padding", "x-amz-wrap-alg": "kms",
        "x-amz-matdesc": json.dumps(matdesc, separators=(",", ":"))})
with ThreadPoolExecutor(8) as pool:
    list(pool.map(put, jobs))
with open("sizes.txt", "w") as f:
    for key, size, _ in jobs:
        f.write("%s %d\n" % (key.split("/")[1], size))
PY

s3csefs_mount "$S3CSEFS_TEST_BUCKET" "$mnt" "stat_ttl_s=60" || { echo "FAIL: mount" >&2; exit 1; }

kms0=$(counter kms_decrypt_calls)
start=$(date +%s.%N)
ls -l "$mnt/many" | awk 'NR > 1 { print $9, $5 }' | sort >listed.txt
end=$(date +%s.%N)
kms1=$(counter kms_decrypt_calls)
sort sizes.txt | cmp -s - listed.txt && ok "ls -l of 1500 encrypted objects: exact sizes" ||
    fail "ls -l sizes differ: $(sort sizes.txt | diff - listed.txt | head -5)"
echo "figure: ls -l of 1500 encrypted objects took $(echo "$end - $start" | bc) s, $((kms1 - kms0)) KMS Decrypt calls"
[ $((kms1 - kms0)) -le 3 ] && ok "at most one KMS call per data key ($((kms1 - kms0)))" ||
    fail "$((kms1 - kms0)) KMS calls for 3 data keys"
ls -l "$mnt/many" >/dev/null
kms2=$(counter kms_decrypt_calls)
[ "$kms2" = "$kms1" ] && ok "repeat within the TTL: no KMS call" || fail "repeat made $((kms2 - kms1)) KMS calls"

# mkdir / rmdir / unlink
mkdir "$mnt/d" && ok mkdir || fail mkdir
[ -d "$mnt/d" ] && ok "new dir is a directory" || fail "new dir not a directory"
echo hello >"$mnt/d/f.txt" || fail "write d/f.txt"
out=$(rmdir "$mnt/d" 2>&1) && fail "rmdir of a non-empty dir succeeded" ||
    { case $out in *"not empty"*) ok "rmdir non-empty: ENOTEMPTY" ;; *) fail "rmdir non-empty: $out" ;; esac; }
rm "$mnt/d/f.txt" && ok unlink || fail unlink
[ -e "$mnt/d/f.txt" ] && fail "unlinked file still there" || ok "unlinked file gone"
rmdir "$mnt/d" && ok "rmdir empty" || fail "rmdir empty"
[ -e "$mnt/d" ] && fail "removed dir still there" || ok "removed dir gone"

# a file still being written (no object yet) is listed with its current size
exec 3>"$mnt/growing.txt"
printf 'abcdef' >&3
ls -l "$mnt" | grep -q " 6 .* growing.txt$" && ok "file being written is listed with its size" ||
    fail "file being written not listed: $(ls -l "$mnt" | grep growing)"
exec 3>&-

# rename of an encrypted object: bytes and envelope unchanged, still decrypts
head -c 100000 /dev/urandom >plain
"$py" put plain ".db.bak.Xy12Ab" >/dev/null || fail "reference put"
mv "$mnt/.db.bak.Xy12Ab" "$mnt/db.bak" && ok "rename" || fail "rename"
cmp -s "$mnt/db.bak" plain && ok "renamed object reads back" || fail "renamed object content differs"
"$py" verify db.bak plain --profile default >/dev/null 2>&1 && ok "renamed object verified by the reference" ||
    fail "reference verify of the renamed object: $("$py" verify db.bak plain --profile default 2>&1)"
[ -e "$mnt/.db.bak.Xy12Ab" ] && fail "rename source still exists" || ok "rename source gone"

# rename of a directory
mkdir -p "$mnt/tree/sub" && echo a >"$mnt/tree/a" && echo b >"$mnt/tree/sub/b" || fail "make tree"
mv "$mnt/tree" "$mnt/tree2" && ok "rename dir" || fail "rename dir"
[ "$(cat "$mnt/tree2/sub/b" 2>&1)" = b ] && [ ! -e "$mnt/tree" ] && ok "dir rename moved everything" || fail "dir rename result"

# chmod / utimens round trip
chmod 640 "$mnt/db.bak" && [ "$(stat -c %a "$mnt/db.bak")" = 640 ] && ok chmod || fail "chmod: $(stat -c %a "$mnt/db.bak")"
touch -m -d @1600000000.123456789 "$mnt/db.bak" || fail touch
[ "$(stat -c %Y "$mnt/db.bak")" = 1600000000 ] && ok "utimens seconds" || fail "mtime: $(stat -c %Y "$mnt/db.bak")"
stat -c %y "$mnt/db.bak" | grep -q "\.123456789" && ok "utimens nanoseconds" || fail "mtime ns: $(stat -c %y "$mnt/db.bak")"
cmp -s "$mnt/db.bak" plain && ok "object still decrypts after chmod/utimens" || fail "content after chmod/utimens"
"$py" verify db.bak plain --profile default >/dev/null 2>&1 && ok "envelope intact after chmod/utimens" ||
    fail "reference verify after chmod/utimens"

# rsync -a twice: the second run transfers nothing
mkdir -p tree/sub && head -c 300000 /dev/urandom >tree/one.bak && echo text >tree/sub/two.txt &&
    head -c 20 /dev/urandom >tree/sub/three.bak && chmod 600 tree/sub/two.txt
rsync -a tree/ "$mnt/rs/" && ok "rsync 1" || fail "rsync 1"
sleep 1
n=$(rsync -a --stats tree/ "$mnt/rs/" | awk -F': ' '/Number of regular files transferred/ { print $2 }')
[ "$n" = 0 ] && ok "second rsync -a transfers 0 files" || fail "second rsync transferred '$n' files"
diff -r tree "$mnt/rs" >/dev/null && ok "rsync'd tree equal" || fail "rsync'd tree differs"
[ "$(getfattr --only-values -n user.s3csefs.encrypted "$mnt/rs/one.bak" 2>/dev/null)" = yes ] &&
    ok "rsync'd .bak is encrypted" || fail "rsync'd .bak not encrypted"

s3csefs_unmount "$mnt" || fail "unmount"
echo "failures: $failures"
[ "$failures" -eq 0 ]
