#!/usr/bin/env python3
"""Cross-check of s3csefs' crypto library (through tests/tools/cse_crypt) against Python `cryptography`,
in both directions: what we encrypt, cryptography decrypts byte-exactly (with its own strict PKCS#7
unpadder / GCM tag check), and what cryptography encrypts, we decrypt - whole, streamed in odd pieces,
and in random ranges. Also: padding and tag failures are reported with their exact status, the
plaintext size from the tail, CRC32C against a bit-by-bit Python CRC, and the envelope parser/emitter
against JSON built here. Needs S3CSEFS_BUILD_DIR (the tool is $S3CSEFS_BUILD_DIR/tests/cse_crypt).
Prints one line per check and a final "N passed, M failed"; exits 1 on any failure."""
import base64
import json
import os
import random
import subprocess
import sys

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

BUILD = os.environ.get("S3CSEFS_BUILD_DIR")
if not BUILD:
    print("S3CSEFS_BUILD_DIR is not set", file=sys.stderr)
    sys.exit(2)
TOOL = os.path.join(BUILD, "tests", "cse_crypt")
if not os.access(TOOL, os.X_OK):
    print(f"{TOOL} not built", file=sys.stderr)
    sys.exit(2)

rng = random.Random(20261129)
passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok: {name}")
    else:
        failed += 1
        print(f"FAIL: {name} {detail}")


def tool(*args, data=b""):
    return subprocess.run([TOOL, *args], input=data, capture_output=True)


def rand_bytes(n):
    return rng.randbytes(n)


def py_cbc_encrypt(key, iv, plain):
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padder.update(plain) + padder.finalize()) + enc.finalize()


def py_cbc_decrypt(key, iv, cipher):
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(dec.update(cipher) + dec.finalize()) + unpadder.finalize()


def py_cbc_raw(key, iv, blocks):
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(blocks) + enc.finalize()


SIZES = [0, 1, 15, 16, 17, 4095, 1048576 + 5]
CUTS = ["", "1", "7", "16", "31", "0", "1,16,31,4096", "65536,3"]


def test_cbc():
    for size in SIZES:
        key, iv, plain = rand_bytes(32), rand_bytes(16), rand_bytes(size)
        kh, ih = key.hex(), iv.hex()
        theirs = py_cbc_encrypt(key, iv, plain)
        for cuts in CUTS:
            if size > 100000 and cuts in ("1", "7"):
                continue          # tens of thousands of calls per byte add nothing over the small sizes
            extra = ["--cuts", cuts] if cuts else []
            ours = tool("enc", "--key", kh, "--iv", ih, *extra, data=plain)
            ok = ours.returncode == 0
            try:
                round_trip = py_cbc_decrypt(key, iv, ours.stdout) == plain
            except ValueError:
                round_trip = False
            check(f"cbc enc size={size} cuts={cuts or 'none'}: cryptography decrypts it",
                  ok and round_trip and ours.stdout == theirs and len(ours.stdout) == size + 16 - size % 16,
                  ours.stderr.decode())
            back = tool("dec", "--key", kh, "--iv", ih, *extra, data=theirs)
            check(f"cbc dec size={size} cuts={cuts or 'none'}: ours decrypts cryptography's",
                  back.returncode == 0 and back.stdout == plain, back.stderr.decode())
        ps = tool("plainsize", "--key", kh, "--iv", ih, data=theirs)
        check(f"cbc plainsize size={size}", ps.returncode == 0 and ps.stdout.strip() == str(size).encode(),
              ps.stdout + ps.stderr)
        ranges = [(0, size), (size // 2, 17), (max(size - 1, 0), 5)]
        ranges += [(rng.randrange(size + 1), rng.randrange(40000)) for _ in range(6)]
        all_ok = True
        for offset, length in ranges:
            r = tool("dec-range", "--key", kh, "--iv", ih, "--offset", str(offset), "--length", str(length),
                     data=theirs)
            if r.returncode != 0 or r.stdout != plain[offset:offset + length]:
                all_ok = False
                print(f"   range {offset}+{length} failed: {r.stderr.decode()}")
        check(f"cbc random-access ranges size={size}", all_ok)


def test_cbc_padding_errors():
    key, iv = rand_bytes(32), rand_bytes(16)
    kh, ih = key.hex(), iv.hex()
    cases = {
        "pad byte 0": b"A" * 15 + b"\x00",
        "pad byte 17": b"A" * 15 + b"\x11",
        "pad byte 0xff": b"A" * 15 + b"\xff",
        "inconsistent pad bytes": b"A" * 12 + b"\x05\x04\x04\x04",
        "full pad block with a wrong byte": b"\x0f" + b"\x10" * 15,
    }
    for name, last in cases.items():
        for prefix in (b"", b"B" * 16):          # a 16-byte object uses the IV as the previous block
            cipher = py_cbc_raw(key, iv, prefix + last)
            r = tool("dec", "--key", kh, "--iv", ih, data=cipher)
            p = tool("plainsize", "--key", kh, "--iv", ih, data=cipher)
            check(f"cbc {name} ({len(cipher)} bytes) -> CSE_ERR_BAD_PADDING",
                  r.returncode == 2 and b"CSE_ERR_BAD_PADDING" in r.stderr and r.stdout == b""
                  and p.returncode == 2 and b"CSE_ERR_BAD_PADDING" in p.stderr, r.stderr + p.stderr)
    good = py_cbc_raw(key, iv, b"A" * 12 + b"\x04" * 4)
    r = tool("dec", "--key", kh, "--iv", ih, data=good)
    check("cbc valid 4-byte pad accepted", r.returncode == 0 and r.stdout == b"A" * 12)
    for n in (0, 15, 17):
        r = tool("dec", "--key", kh, "--iv", ih, data=rand_bytes(n))
        check(f"cbc ciphertext of {n} bytes -> CSE_ERR_CIPHERTEXT_LENGTH",
              r.returncode == 2 and b"CSE_ERR_CIPHERTEXT_LENGTH" in r.stderr, r.stderr)


def test_gcm():
    for size in SIZES:
        key, iv, plain = rand_bytes(32), rand_bytes(12), rand_bytes(size)
        kh, ih = key.hex(), iv.hex()
        theirs = AESGCM(key).encrypt(iv, plain, None)
        ours = tool("gcm-enc", "--key", kh, "--iv", ih, data=plain)
        try:
            ok = AESGCM(key).decrypt(iv, ours.stdout, None) == plain
        except Exception:
            ok = False
        check(f"gcm enc size={size}: cryptography decrypts and authenticates it",
              ours.returncode == 0 and ok and ours.stdout == theirs)
        for cuts in ("", "1,7,16,31", "0"):
            if size > 100000 and cuts.startswith("1,"):
                continue
            extra = ["--cuts", cuts] if cuts else []
            back = tool("gcm-dec", "--key", kh, "--iv", ih, *extra, data=theirs)
            check(f"gcm dec size={size} cuts={cuts or 'none'}", back.returncode == 0 and back.stdout == plain,
                  back.stderr.decode())
        for where in ([0] if size == 0 else [0, size // 2, size - 1]) + [size + 15]:
            tampered = bytearray(theirs)
            tampered[where] ^= 0x01
            r = tool("gcm-dec", "--key", kh, "--iv", ih, data=bytes(tampered))
            check(f"gcm size={size} flipped byte {where} -> CSE_ERR_GCM_TAG, no plaintext released",
                  r.returncode == 2 and b"CSE_ERR_GCM_TAG" in r.stderr and r.stdout == b"", r.stderr)
        ranges = [(0, size), (1, 15), (15, 2), (17, 100)] + \
                 [(rng.randrange(size + 1), rng.randrange(50000)) for _ in range(6)]
        all_ok = True
        for offset, length in ranges:
            offset = min(offset, size)
            length = min(length, size - offset)
            r = tool("gcm-range", "--key", kh, "--iv", ih, "--offset", str(offset), "--length", str(length),
                     data=theirs)
            if r.returncode != 0 or r.stdout != plain[offset:offset + length]:
                all_ok = False
                print(f"   gcm range {offset}+{length} failed: {r.stderr.decode()}")
        check(f"gcm ranged (unauthenticated) reads size={size}", all_ok)


def crc32c_bitwise(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def test_crc32c():
    for n in (0, 1, 9, 31, 4096 * 3 + 5, 40000):
        data = b"123456789" if n == 9 else rand_bytes(n)
        r = tool("crc32c", data=data)
        want = crc32c_bitwise(data)
        want_b64 = base64.b64encode(want.to_bytes(4, "big")).decode()
        check(f"crc32c of {n} bytes", r.returncode == 0 and r.stdout.decode().split() == [f"{want:08x}", want_b64],
              r.stdout)


ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_envelope():
    blob, iv = rand_bytes(184), rand_bytes(16)
    meta = {
        "x-amz-meta-x-amz-key-v2": base64.b64encode(blob).decode(),
        "x-amz-meta-x-amz-iv": base64.b64encode(iv).decode(),
        "x-amz-meta-x-amz-cek-alg": "AES/CBC/PKCS5Padding",
        "x-amz-meta-x-amz-wrap-alg": "kms",
        "x-amz-meta-x-amz-matdesc": json.dumps({"kms_cmk_id": ARN}),
        "x-amz-meta-x-amz-unencrypted-content-length": "100000",
    }
    r = tool("envelope", data=json.dumps(meta).encode())
    parsed = json.loads(r.stdout or b"{}")
    check("envelope: parsed fields equal the metadata built here",
          r.returncode == 0 and parsed.get("status") == "CSE_OK" and parsed.get("key_version") == 2
          and base64.b64decode(parsed.get("encrypted_key", "")) == blob and parsed.get("iv") == iv.hex()
          and parsed.get("matdesc") == {"kms_cmk_id": ARN} and parsed.get("plain_length") == 100000
          and parsed.get("kms_contexts") == [{"kms_cmk_id": ARN}], r.stdout)
    bad = {
        "x-amz-meta-x-amz-iv": ("AAAA", "CSE_ERR_IV_LENGTH"),
        "x-amz-meta-x-amz-cek-alg": ("AES/CTR/NoPadding", "CSE_ERR_UNKNOWN_CEK_ALG"),
        "x-amz-meta-x-amz-wrap-alg": ("RSA-OAEP-SHA1", "CSE_ERR_UNSUPPORTED_WRAP_ALG"),
        "x-amz-meta-x-amz-matdesc": ('{"kms_cmk_id":["x"]}', "CSE_ERR_MATDESC_NOT_FLAT"),
        "x-amz-meta-x-amz-unencrypted-content-length": ("1e5", "CSE_ERR_BAD_PLAIN_LENGTH"),
        "x-amz-meta-x-amz-key-v2": ("not base64!", "CSE_ERR_BAD_BASE64"),
    }
    for name, (value, code) in bad.items():
        m = dict(meta)
        m[name] = value
        r = tool("envelope", data=json.dumps(m).encode())
        check(f"envelope: {name}={value!r} -> {code}",
              r.returncode == 2 and json.loads(r.stdout or b"{}").get("status") == code, r.stdout)
    e = tool("emit", "--profile", "kms", "--blob", base64.b64encode(blob).decode(), "--iv", iv.hex(),
             "--arn", ARN, "--plain-length", "17")
    emitted = json.loads(e.stdout or b"{}")
    check("emit kms: exactly the Encryption-Only KMS metadata",
          e.returncode == 0 and list(emitted) == ["x-amz-key-v2", "x-amz-iv", "x-amz-cek-alg", "x-amz-wrap-alg",
                                                  "x-amz-matdesc", "x-amz-unencrypted-content-length"]
          and emitted["x-amz-key-v2"] == base64.b64encode(blob).decode()
          and emitted["x-amz-iv"] == base64.b64encode(iv).decode()
          and emitted["x-amz-cek-alg"] == "AES/CBC/PKCS5Padding" and emitted["x-amz-wrap-alg"] == "kms"
          and emitted["x-amz-matdesc"] == json.dumps({"kms_cmk_id": ARN}, separators=(",", ":"))
          and emitted["x-amz-unencrypted-content-length"] == "17", e.stdout)
    e = tool("emit", "--profile", "legacy", "--blob", base64.b64encode(blob).decode(), "--iv", iv.hex(),
             "--arn", ARN)
    emitted = json.loads(e.stdout or b"{}")
    check("emit legacy: x-amz-key, x-amz-iv, x-amz-matdesc only",
          e.returncode == 0 and list(emitted) == ["x-amz-key", "x-amz-iv", "x-amz-matdesc"], e.stdout)
    instr = json.dumps({k[len("x-amz-meta-"):]: v for k, v in meta.items()}).encode()
    r = tool("instruction", data=instr)
    check("instruction file parses like metadata",
          r.returncode == 0 and json.loads(r.stdout).get("matdesc") == {"kms_cmk_id": ARN}, r.stdout)


for test in (test_cbc, test_cbc_padding_errors, test_gcm, test_crc32c, test_envelope):
    test()
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
