#!/usr/bin/env bash
# Reading through a real mount objects written by the independent references: the Ruby SDK's
# Encryption::Client (CBC, kms) and EncryptionV2::Client (GCM, kms+context), and ref_cse.py (RDS-export
# shape: multipart with chained CBC and no plaintext length; blog-style x-amz-key; instruction file).
# For each: cat equals the plaintext, stat shows the exact size, 200 random preads (offsets and lengths
# crossing 16-byte blocks and part edges) match. Then corrupt objects each give EIO, a good object
# still reads, and the xattrs describe the envelopes.
# Run by CTest as: tests/lib/with-stack tests/integration/test_read_formats.sh
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
src=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
tools=$src/tests/tools
py=$tools/ref_cse.py
rb=$tools/ref_cse.rb
python=${S3CSEFS_PYTHON:-python3}
. "$src/tests/lib/mount.sh"
work=$S3CSEFS_TEST_TMPDIR/read_formats
mnt=$S3CSEFS_TEST_TMPDIR/mnt
mkdir -p "$work" "$mnt" && cd "$work" || exit 2

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
run() { local what=$1; shift; local out; if out=$("$@" 2>&1); then ok "$what"; else fail "$what: $out"; fi; }

# Random preads of the mounted file against the local plaintext.
cat >preads.py <<'PY'
import os, random, sys
mounted, local, part = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(local, "rb").read()
size = len(data)
rng = random.Random(size * 7 + 1)
edges = [0, 15, 16, 17, 31, 32, size - 17, size - 16, size - 1, size]
edges += [k * part + d for k in range(1, size // part + 1) for d in (-17, -16, -1, 0, 1, 15, 16)]
fd = os.open(mounted, os.O_RDONLY)
bad = 0
for i in range(200):
    off = rng.choice(edges) if i % 2 else rng.randrange(0, size + 1)
    off = max(0, min(off, size))
    length = rng.choice([1, 15, 16, 17, 33, 4096, 65536, 200000, rng.randrange(1, 300000)])
    got = os.pread(fd, length, off)
    if got != data[off:off + length]:
        bad += 1
        print("mismatch at offset %d length %d: got %d bytes" % (off, length, len(got)))
os.close(fd)
sys.exit(1 if bad else 0)
PY

part=$((5 * 1024 * 1024))
sizes=(0 1 15 16 17 4096 100003 $((2 * part + 12345)))
for n in "${sizes[@]}"; do head -c "$n" /dev/urandom >"plain$n"; done
for n in "${sizes[@]}"; do
    run "ruby V1 put $n" "$rb" put "plain$n" "rb-v1-$n.bak"
    run "ruby V2 (GCM) put $n" "$rb" put-v2 "plain$n" "rb-v2-$n.bak"
    run "python multipart put $n" "$py" put "plain$n" "py-mp-$n.bak" --multipart --part-size "$part"
    run "python legacy put $n" "$py" put "plain$n" "py-legacy-$n.bak" --legacy
    run "python instruction-file put $n" "$py" put "plain$n" "py-instr-$n.bak" --instruction-file
done

s3csefs_mount "$S3CSEFS_TEST_BUCKET" "$mnt" || { echo "FAIL: mount" >&2; exit 1; }

for n in "${sizes[@]}"; do
    for kind in rb-v1 rb-v2 py-mp py-legacy py-instr; do
        f=$mnt/$kind-$n.bak
        size=$(stat -c %s "$f" 2>&1)
        [ "$size" = "$n" ] && ok "stat size $kind $n" || fail "stat size of $kind-$n.bak: $size, want $n"
        if cmp -s "$f" "plain$n"; then ok "cat $kind $n"; else fail "cat $kind-$n.bak differs from the plaintext"; fi
        if [ "$n" -gt 0 ]; then run "200 random preads $kind $n" "$python" preads.py "$f" "plain$n" "$part"; fi
    done
done

# Extended attributes describe the envelopes.
xa() { getfattr --only-values -n "user.s3csefs.$2" "$mnt/$1" 2>/dev/null; }
[ "$(xa rb-v1-17.bak encrypted)" = yes ] && ok "xattr encrypted" || fail "xattr encrypted of rb-v1-17.bak"
[ "$(xa rb-v1-17.bak key_arn)" = "$S3CSEFS_TEST_KEY_ARN" ] && ok "xattr key_arn" || fail "xattr key_arn: $(xa rb-v1-17.bak key_arn)"
[ "$(xa rb-v2-17.bak cek_alg)" = "AES/GCM/NoPadding" ] && ok "xattr cek_alg gcm" || fail "xattr cek_alg of rb-v2"
[ "$(xa rb-v2-17.bak wrap_alg)" = "kms+context" ] && ok "xattr wrap_alg" || fail "xattr wrap_alg of rb-v2"
[ "$(xa py-legacy-17.bak key_version)" = v1 ] && ok "xattr key_version v1" || fail "xattr key_version of legacy"
[ "$(xa py-mp-100003.bak plain_size)" = 100003 ] && ok "xattr plain_size" || fail "xattr plain_size"
getfattr -d "$mnt/rb-v1-17.bak" 2>/dev/null | grep -q "user.s3csefs.stored_size=\"32\"" &&
    ok "getfattr -d lists the attributes" || fail "getfattr -d: $(getfattr -d "$mnt/rb-v1-17.bak" 2>&1)"

# Corrupt objects: each read gives EIO, and a good object still reads afterwards.
"$python" - "$py" <<'PY' || fail "could not create the corrupt objects"
import base64, json, os, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
b = os.environ["S3CSEFS_TEST_BUCKET"]
def clone(src, dst, body=None, meta_change=None):
    o = s3.get_object(Bucket=b, Key=src)
    data, meta = o["Body"].read(), dict(o["Metadata"])
    if body: data = body(data)
    if meta_change: meta_change(meta)
    s3.put_object(Bucket=b, Key=dst, Body=data, Metadata=meta)
def flip(i):
    return lambda d: d[:i] + bytes([d[i] ^ 1]) + d[i + 1:]
clone("rb-v1-100003.bak", "bad-truncated.bak", body=lambda d: d[:-5])
clone("py-mp-100003.bak", "bad-padding.bak", body=lambda d: flip(len(d) - 17)(d))
clone("rb-v2-100003.bak", "bad-gcm-tag.bak", body=lambda d: flip(len(d) - 1)(d))
clone("rb-v1-100003.bak", "bad-context.bak",
      meta_change=lambda m: m.update({"x-amz-matdesc": json.dumps({"kms_cmk_id": "arn:aws:kms:us-east-1:000000000000:key/nope"})}))
clone("rb-v1-100003.bak", "bad-iv.bak", meta_change=lambda m: m.update({"x-amz-iv": "****"}))
# Another object's data key. CBC has no integrity check: a wrong key is caught only by the final
# block's PKCS#7 padding, which garbage passes about 1 time in 256. So try donors until the independent
# reference rejects the result too; that object must then be EIO through the mount, every run.
import subprocess, sys
for donor in ["rb-v1-%d.bak" % n for n in (17, 4096, 16, 15, 1, 100003, 0)]:
    other = s3.head_object(Bucket=b, Key=donor)["Metadata"]["x-amz-key-v2"]
    clone("py-mp-100003.bak", "bad-key.bak", meta_change=lambda m: m.update({"x-amz-key-v2": other}))
    if subprocess.run([sys.argv[1], "get", "bad-key.bak", os.devnull], capture_output=True).returncode != 0:
        break
else:
    raise SystemExit("every donor key happened to yield valid padding")
PY
for bad in bad-truncated bad-padding bad-gcm-tag bad-context bad-iv bad-key; do
    out=$(cat "$mnt/$bad.bak" 2>&1 >/dev/null)
    case $out in
        *"Input/output error"*) ok "$bad: EIO" ;;
        *) fail "$bad: expected EIO, got '${out:-success}'" ;;
    esac
    cmp -s "$mnt/rb-v1-4096.bak" plain4096 && ok "good read after $bad" || fail "good read after $bad failed"
done
log=$(s3csefs_daemon_log "$mnt")
for bad in bad-truncated bad-padding bad-gcm-tag bad-context bad-iv bad-key; do
    grep -q "$bad.bak" "$log" && ok "log names $bad" || fail "no log line names $bad.bak"
done
grep -q "decrypt_errors" <(getfattr --only-values -n user.s3csefs.stats "$mnt" 2>/dev/null) && ok "stats xattr" || fail "stats xattr"

# An object replaced (here by boto3) while a handle is open: the next read that goes to S3 is EIO, never
# bytes of the new version decrypted with the old key; a new open reads the new version. (The first
# read is at the end and the next at the start, behind anything the GET that the first read started
# before the replacement serves: that GET would rightly deliver the old version.)
head -c $((24 * 1024 * 1024)) /dev/urandom >replace-old
head -c $((24 * 1024 * 1024)) /dev/urandom >replace-new
run "python put replace-old" "$py" put replace-old replaced.bak
"$python" - "$mnt/replaced.bak" "$py" replace-old replace-new <<'PY' && ok "replaced while open: EIO" || fail "replaced while open"
import errno, os, subprocess, sys
path, ref, old, new = sys.argv[1:5]
old_data, new_data = open(old, "rb").read(), open(new, "rb").read()
fd = os.open(path, os.O_RDONLY)
end = len(old_data) - 4096
assert os.pread(fd, 4096, end) == old_data[end:], "first read"
subprocess.run([ref, "put", new, "replaced.bak"], check=True, stdout=subprocess.DEVNULL)
off = 0                                     # fetched now, after the replacement
try:
    got = os.pread(fd, 65536, off)
    sys.exit("read after replacement returned %d bytes (%s)" % (len(got),
             "old" if got == old_data[off:off + 65536] else "new" if got == new_data[off:off + 65536] else "garbage"))
except OSError as e:
    if e.errno != errno.EIO:
        raise
os.close(fd)
with open(path, "rb") as f:
    assert f.read() == new_data, "new open does not read the new version"
PY
grep -q "replaced.bak: object replaced while open" "$(s3csefs_daemon_log "$mnt")" && ok "log: object replaced while open" ||
    fail "no 'object replaced while open' log line"

s3csefs_unmount "$mnt" || fail "unmount"
echo "failures: $failures"
[ "$failures" -eq 0 ]
