#!/usr/bin/env python3
"""Reference implementation of the S3 client-side-encryption (CSE) envelope, independent of s3csefs' C
code (boto3 for S3 and KMS, `cryptography` for AES). Tests use it to write objects that s3csefs must
read, and to read and check objects that s3csefs wrote. The rules are docs/format.md
(/work/shared/reference/cse-format.md) sections 1-6.

  ref_cse.py put LOCAL KEY [--multipart --part-size N | --legacy | --gcm] [--instruction-file]
  ref_cse.py get KEY LOCAL
  ref_cse.py head KEY                      print the envelope (x-amz-* names without x-amz-meta-) as JSON
  ref_cse.py verify KEY LOCAL [--profile default|multipart|legacy|gcm|any]

Common options: --bucket (default $S3CSEFS_TEST_BUCKET), --key-id (default $S3CSEFS_TEST_KEY_ARN),
--endpoint (default $AWS_ENDPOINT_URL), --region (default $AWS_REGION or us-east-1).
Exit status: 0 success, 1 verification failure or corrupt object, 2 usage or service error.
"""
import argparse
import base64
import hashlib
import json
import os
import secrets
import sys

import boto3
import botocore.exceptions
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

CBC = "AES/CBC/PKCS5Padding"
GCM = "AES/GCM/NoPadding"
GCM_TAG_BYTES = 16
CHUNK = 1 << 20
INSTRUCTION_SUFFIX = ".instruction"
ENVELOPE_NAMES = ("x-amz-key", "x-amz-key-v2", "x-amz-iv", "x-amz-matdesc", "x-amz-wrap-alg",
                  "x-amz-cek-alg", "x-amz-tag-len", "x-amz-unencrypted-content-length")


class Corrupt(Exception):
    """The object or its envelope breaks the format (exit status 1)."""


class Mismatch(Exception):
    """verify: content or metadata differ from what the reference expects (exit status 1)."""


def compact_json(value):
    # The Java and Ruby SDKs write the matdesc without spaces; write it the same way.
    return json.dumps(value, separators=(",", ":"))


def b64(data):
    return base64.b64encode(data).decode("ascii")


class Store:
    """S3 + KMS clients and the target bucket/key."""

    def __init__(self, args):
        session = boto3.session.Session(region_name=args.region)
        self.s3 = session.client("s3", endpoint_url=args.endpoint)
        self.kms = session.client("kms", endpoint_url=args.endpoint)
        self.bucket = args.bucket
        self.key_id = args.key_id

    def generate_data_key(self, context):
        params = {"KeyId": self.key_id, "KeySpec": "AES_256"}
        if context is not None:
            params["EncryptionContext"] = context
        answer = self.kms.generate_data_key(**params)
        return answer["Plaintext"], answer["CiphertextBlob"]

    def decrypt_data_key(self, blob, context):
        params = {"CiphertextBlob": blob}
        if context is not None:
            params["EncryptionContext"] = context
        if self.key_id:
            params["KeyId"] = self.key_id  # KMS then refuses a blob made under another key
        return self.kms.decrypt(**params)["Plaintext"]


# ---- writing ------------------------------------------------------------------------------------

def read_chunks(path):
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                return
            yield chunk


def cbc_ciphertext(key, iv, path):
    """AES-256-CBC with PKCS#7 padding (always 1..16 bytes), as a stream of chunks."""
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    size = 0
    for chunk in read_chunks(path):
        size += len(chunk)
        yield encryptor.update(chunk)
    pad = 16 - size % 16
    yield encryptor.update(bytes([pad]) * pad) + encryptor.finalize()


def gcm_ciphertext(key, iv, path):
    encryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    for chunk in read_chunks(path):
        yield encryptor.update(chunk)
    yield encryptor.finalize() + encryptor.tag


def put(store, args):
    size = os.path.getsize(args.local)
    if args.legacy:
        # Blog style: `aws kms generate-data-key` without a context, old names only.
        matdesc = {"kms_cmk_id": store.key_id}
        data_key, blob = store.generate_data_key(None)
        iv = secrets.token_bytes(16)
        envelope = {"x-amz-key": b64(blob), "x-amz-iv": b64(iv), "x-amz-matdesc": compact_json(matdesc)}
        body = cbc_ciphertext(data_key, iv, args.local)
    elif args.gcm:
        # What the V2 clients write with a KMS key: kms+context, the cek-alg inside the context.
        matdesc = {"aws:x-amz-cek-alg": GCM}
        data_key, blob = store.generate_data_key(matdesc)
        iv = secrets.token_bytes(12)
        envelope = {"x-amz-key-v2": b64(blob), "x-amz-iv": b64(iv), "x-amz-cek-alg": GCM,
                    "x-amz-tag-len": str(GCM_TAG_BYTES * 8), "x-amz-wrap-alg": "kms+context",
                    "x-amz-matdesc": compact_json(matdesc)}
        body = gcm_ciphertext(data_key, iv, args.local)
    else:
        # The default ("Encryption-Only", what RDS exports are): section 2 of the format reference.
        matdesc = {"kms_cmk_id": store.key_id}
        data_key, blob = store.generate_data_key(matdesc)
        iv = secrets.token_bytes(16)
        envelope = {"x-amz-key-v2": b64(blob), "x-amz-iv": b64(iv), "x-amz-cek-alg": CBC,
                    "x-amz-wrap-alg": "kms", "x-amz-matdesc": compact_json(matdesc)}
        body = cbc_ciphertext(data_key, iv, args.local)
    if not args.multipart and not args.legacy:
        envelope["x-amz-unencrypted-content-length"] = str(size)

    metadata = dict(envelope)
    if args.instruction_file:
        metadata = {}
        store.s3.put_object(Bucket=store.bucket, Key=args.key + INSTRUCTION_SUFFIX,
                            Body=json.dumps(envelope).encode(),
                            Metadata={"x-amz-crypto-instr-file": ""})

    if args.multipart:
        put_multipart(store, args.key, body, metadata, args.part_size)
    else:
        store.s3.put_object(Bucket=store.bucket, Key=args.key, Body=b"".join(body), Metadata=metadata)


def put_multipart(store, key, ciphertext_chunks, metadata, part_size):
    """One CBC stream cut into parts: every part but the last is part_size bytes (a multiple of 16)."""
    upload = store.s3.create_multipart_upload(Bucket=store.bucket, Key=key, Metadata=metadata)
    upload_id = upload["UploadId"]
    parts = []
    pending = bytearray()

    def send(data):
        number = len(parts) + 1
        answer = store.s3.upload_part(Bucket=store.bucket, Key=key, UploadId=upload_id,
                                      PartNumber=number, Body=bytes(data))
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    try:
        for chunk in ciphertext_chunks:
            pending += chunk
            while len(pending) > part_size:
                send(pending[:part_size])
                del pending[:part_size]
        send(pending)
        store.s3.complete_multipart_upload(Bucket=store.bucket, Key=key, UploadId=upload_id,
                                           MultipartUpload={"Parts": parts})
    except BaseException:
        store.s3.abort_multipart_upload(Bucket=store.bucket, Key=key, UploadId=upload_id)
        raise


# ---- reading ------------------------------------------------------------------------------------

def fetch_envelope(store, key):
    """The envelope from the object's metadata, else from KEY.instruction. Returns (envelope, where)."""
    head = store.s3.head_object(Bucket=store.bucket, Key=key)
    metadata = {name.lower(): value for name, value in head["Metadata"].items()}
    envelope = {name: metadata[name] for name in ENVELOPE_NAMES if name in metadata}
    if "x-amz-key" in envelope or "x-amz-key-v2" in envelope:
        return envelope, "metadata", head["ContentLength"]
    try:
        instruction = store.s3.get_object(Bucket=store.bucket, Key=key + INSTRUCTION_SUFFIX)
    except botocore.exceptions.ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
            raise Corrupt(f"{key}: no CSE envelope in metadata and no instruction file")
        raise
    envelope = json.loads(instruction["Body"].read())
    return envelope, "instruction", head["ContentLength"]


def data_key_for(store, envelope):
    """Decrypt the data key with the KMS context that section 3 prescribes for the wrap algorithm."""
    blob = base64.b64decode(envelope.get("x-amz-key-v2") or envelope["x-amz-key"], validate=True)
    try:
        matdesc = json.loads(envelope.get("x-amz-matdesc", "{}"))
    except json.JSONDecodeError as error:
        raise Corrupt(f"x-amz-matdesc is not JSON: {error}")
    wrap = envelope.get("x-amz-wrap-alg")
    cek = envelope.get("x-amz-cek-alg", CBC)
    if wrap == "kms":
        return store.decrypt_data_key(blob, matdesc)
    if wrap == "kms+context":
        if matdesc.get("aws:x-amz-cek-alg") != cek:
            raise Corrupt(f"kms+context: matdesc aws:x-amz-cek-alg {matdesc.get('aws:x-amz-cek-alg')!r}"
                          f" differs from x-amz-cek-alg {cek!r}")
        return store.decrypt_data_key(blob, matdesc)
    if wrap is None:
        # Blog style: the matdesc may or may not have been the context.
        try:
            return store.decrypt_data_key(blob, matdesc)
        except botocore.exceptions.ClientError as error:
            if error.response["Error"]["Code"] != "InvalidCiphertextException":
                raise
        return store.decrypt_data_key(blob, None)
    raise Corrupt(f"unsupported x-amz-wrap-alg {wrap!r} (only KMS wrapping is implemented)")


def stream_body(store, key, chunk=CHUNK):
    body = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"]
    while True:
        data = body.read(chunk)
        if not data:
            return
        yield data


def decrypt_cbc(data_key, iv, chunks, out):
    """Writes the plaintext to out; returns its length. Strict PKCS#7 check (1..16, all equal)."""
    if len(iv) != 16:
        raise Corrupt(f"CBC IV is {len(iv)} bytes, expected 16")
    decryptor = Cipher(algorithms.AES(data_key), modes.CBC(iv)).decryptor()
    held = b""   # the last decrypted block is held back: it carries the padding
    total_in = written = 0
    for data in chunks:
        total_in += len(data)
        plain = held + decryptor.update(data)
        cut = max(0, len(plain) - 16)
        out.write(plain[:cut])
        written += cut
        held = plain[cut:]
    if total_in == 0 or total_in % 16 != 0:
        raise Corrupt(f"CBC ciphertext length {total_in} is not a positive multiple of 16")
    held += decryptor.finalize()
    pad = held[-1]
    if not 1 <= pad <= 16 or held[-pad:] != bytes([pad]) * pad:
        raise Corrupt("bad PKCS#7 padding in the last block")
    out.write(held[:-pad])
    return written + 16 - pad


def decrypt_gcm(data_key, iv, tag_bytes, chunks, out):
    decryptor = Cipher(algorithms.AES(data_key), modes.GCM(iv)).decryptor()
    held = b""   # the tag is the last tag_bytes of the object
    written = 0
    for data in chunks:
        held += data
        if len(held) > tag_bytes:
            plain = decryptor.update(held[:-tag_bytes])
            out.write(plain)
            written += len(plain)
            held = held[-tag_bytes:]
    if len(held) != tag_bytes:
        raise Corrupt("GCM object shorter than its tag")
    try:
        out.write(decryptor.finalize_with_tag(held))
    except Exception as error:  # cryptography raises InvalidTag
        raise Corrupt(f"GCM tag check failed ({type(error).__name__})")
    return written


def get_to(store, key, out):
    """Decrypt KEY into the binary file out. Returns the envelope and where it was found."""
    envelope, where, stored_length = fetch_envelope(store, key)
    data_key = data_key_for(store, envelope)
    iv = base64.b64decode(envelope["x-amz-iv"], validate=True)
    cek = envelope.get("x-amz-cek-alg", CBC)
    if cek in (CBC, "AES/CBC/PKCS7Padding"):
        if "x-amz-tag-len" in envelope:
            raise Corrupt("x-amz-tag-len present on a CBC object")
        length = decrypt_cbc(data_key, iv, stream_body(store, key), out)
    elif cek == GCM:
        if len(iv) != 12:
            raise Corrupt(f"GCM IV is {len(iv)} bytes, expected 12")
        tag_bits = int(envelope.get("x-amz-tag-len", "128"))
        if tag_bits != 128:
            raise Corrupt(f"unsupported GCM tag length {tag_bits}")
        length = decrypt_gcm(data_key, iv, tag_bits // 8, stream_body(store, key), out)
    else:
        raise Corrupt(f"unsupported x-amz-cek-alg {cek!r}")
    declared = envelope.get("x-amz-unencrypted-content-length")
    if declared is not None and int(declared) != length:
        raise Corrupt(f"x-amz-unencrypted-content-length says {declared}, plaintext is {length} bytes")
    return envelope, where, stored_length, length


def get(store, args):
    tmp = args.local + ".ref-cse-partial"
    try:
        with open(tmp, "wb") as out:
            get_to(store, args.key, out)
        os.replace(tmp, args.local)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def head(store, args):
    envelope, _, _ = fetch_envelope(store, args.key)
    print(json.dumps(envelope, indent=2, sort_keys=True))


class DigestSink:
    """A write-only file object that hashes what it is given, so verify needs no temp file."""

    def __init__(self):
        self.hash = hashlib.sha256()

    def write(self, data):
        self.hash.update(data)


def file_sha256(path):
    sink = DigestSink()
    for chunk in read_chunks(path):
        sink.write(chunk)
    return sink.hash.hexdigest()


def detect_profile(envelope):
    if "x-amz-key" in envelope:
        return "legacy"
    if envelope.get("x-amz-cek-alg") == GCM:
        return "gcm"
    return "default" if "x-amz-unencrypted-content-length" in envelope else "multipart"


def check_envelope(envelope, profile, key_arn, plain_length, stored_length):
    """The exact envelope our writers produce for each profile (format reference sections 1, 2, 4)."""
    problems = []
    expected_names = {
        "default": {"x-amz-key-v2", "x-amz-iv", "x-amz-cek-alg", "x-amz-wrap-alg", "x-amz-matdesc",
                    "x-amz-unencrypted-content-length"},
        "multipart": {"x-amz-key-v2", "x-amz-iv", "x-amz-cek-alg", "x-amz-wrap-alg", "x-amz-matdesc"},
        "legacy": {"x-amz-key", "x-amz-iv", "x-amz-matdesc"},
        "gcm": {"x-amz-key-v2", "x-amz-iv", "x-amz-cek-alg", "x-amz-wrap-alg", "x-amz-matdesc",
                "x-amz-tag-len", "x-amz-unencrypted-content-length"},
    }[profile]
    names = set(envelope)
    if profile == "gcm":
        names.discard("x-amz-unencrypted-content-length")   # optional for GCM writers
        expected_names = expected_names - {"x-amz-unencrypted-content-length"}
    if names != expected_names:
        problems.append(f"envelope names {sorted(names)}, expected {sorted(expected_names)}")
    iv = base64.b64decode(envelope.get("x-amz-iv", ""))
    matdesc = json.loads(envelope.get("x-amz-matdesc", "null"))
    if profile in ("default", "multipart", "legacy"):
        if len(iv) != 16:
            problems.append(f"IV is {len(iv)} bytes, expected 16")
        if matdesc != {"kms_cmk_id": key_arn}:
            problems.append(f"matdesc {matdesc!r}, expected {{'kms_cmk_id': {key_arn!r}}}")
        expected_stored = plain_length + 16 - plain_length % 16
    else:
        if len(iv) != 12:
            problems.append(f"IV is {len(iv)} bytes, expected 12")
        if matdesc.get("aws:x-amz-cek-alg") != GCM:
            problems.append(f"matdesc {matdesc!r} lacks aws:x-amz-cek-alg={GCM}")
        if envelope.get("x-amz-tag-len") != "128":
            problems.append(f"x-amz-tag-len {envelope.get('x-amz-tag-len')!r}, expected '128'")
        expected_stored = plain_length + GCM_TAG_BYTES
    if profile in ("default", "multipart"):
        if envelope.get("x-amz-cek-alg") != CBC:
            problems.append(f"x-amz-cek-alg {envelope.get('x-amz-cek-alg')!r}, expected {CBC!r}")
        if envelope.get("x-amz-wrap-alg") != "kms":
            problems.append(f"x-amz-wrap-alg {envelope.get('x-amz-wrap-alg')!r}, expected 'kms'")
    if profile == "gcm" and envelope.get("x-amz-wrap-alg") != "kms+context":
        problems.append(f"x-amz-wrap-alg {envelope.get('x-amz-wrap-alg')!r}, expected 'kms+context'")
    if profile == "default" and envelope.get("x-amz-unencrypted-content-length") != str(plain_length):
        problems.append(f"x-amz-unencrypted-content-length "
                        f"{envelope.get('x-amz-unencrypted-content-length')!r}, expected '{plain_length}'")
    if stored_length != expected_stored:
        problems.append(f"stored length {stored_length}, expected {expected_stored}")
    return problems


def verify(store, args):
    sink = DigestSink()
    envelope, where, stored_length, length = get_to(store, args.key, sink)
    expected_digest = file_sha256(args.local)
    if sink.hash.hexdigest() != expected_digest or length != os.path.getsize(args.local):
        raise Mismatch(f"{args.key}: decrypted content ({length} bytes) differs from {args.local} "
                       f"({os.path.getsize(args.local)} bytes)")
    profile = detect_profile(envelope) if args.profile == "any" else args.profile
    key_arn = args.key_arn or store.key_id
    problems = check_envelope(envelope, profile, key_arn, length, stored_length)
    if problems:
        raise Mismatch(f"{args.key}: envelope ({where}) does not match the {profile} profile: "
                       + "; ".join(problems))


def main():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bucket", default=os.environ.get("S3CSEFS_TEST_BUCKET"))
    common.add_argument("--key-id", default=os.environ.get("S3CSEFS_TEST_KEY_ARN"),
                        help="KMS key for put, and the key Decrypt must use (empty: any)")
    common.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"))
    common.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], parents=[common])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("put", parents=[common], help="encrypt LOCAL and upload it as KEY")
    p.add_argument("local")
    p.add_argument("key")
    style = p.add_mutually_exclusive_group()
    style.add_argument("--legacy", action="store_true", help="blog style: x-amz-key, no KMS context")
    style.add_argument("--gcm", action="store_true", help="AES/GCM/NoPadding with kms+context")
    p.add_argument("--multipart", action="store_true", help="RDS-export shape: multipart, no length")
    p.add_argument("--part-size", type=int, default=8 << 20)
    p.add_argument("--instruction-file", action="store_true", help="envelope in KEY.instruction")

    g = commands.add_parser("get", parents=[common], help="download and decrypt KEY into LOCAL")
    g.add_argument("key")
    g.add_argument("local")

    h = commands.add_parser("head", parents=[common], help="print KEY's envelope as JSON")
    h.add_argument("key")

    v = commands.add_parser("verify", parents=[common],
                            help="decrypt KEY, compare with LOCAL, check the envelope")
    v.add_argument("key")
    v.add_argument("local")
    v.add_argument("--profile", choices=["any", "default", "multipart", "legacy", "gcm"], default="any",
                   help="expected envelope shape (any: detect from the envelope)")
    v.add_argument("--key-arn", help="expected kms_cmk_id in the matdesc (default: --key-id)")

    args = parser.parse_args()
    if not args.bucket:
        parser.error("--bucket (or S3CSEFS_TEST_BUCKET) is required")
    if args.command == "put":
        if not args.key_id:
            parser.error("put needs --key-id (or S3CSEFS_TEST_KEY_ARN)")
        if args.multipart and (args.part_size % 16 or args.part_size <= 0):
            parser.error("--part-size must be a positive multiple of 16")
    store = Store(args)
    try:
        {"put": put, "get": get, "head": head, "verify": verify}[args.command](store, args)
    except (Corrupt, Mismatch) as error:
        print(f"ref_cse.py {args.command}: {error}", file=sys.stderr)
        return 1
    except botocore.exceptions.ClientError as error:
        print(f"ref_cse.py {args.command}: {error}", file=sys.stderr)
        return 2
    except (botocore.exceptions.BotoCoreError, OSError, ValueError, KeyError) as error:
        print(f"ref_cse.py {args.command}: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
