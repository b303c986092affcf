#!/usr/bin/env python3
"""Every call of the real S3 client (objc_new_s3, driven through tests/tools/objc_check) against the
local moto stack, each result checked independently with boto3: PUT (bytes, metadata, CRC32C), HEAD,
ranged GET (inside, across and past the end), a 3-part multipart upload with a checksum per part,
CopyObject with COPY and REPLACE, the UploadPartCopy path forced on a small multipart source, 2,500
keys listed across pages with delimiter/CommonPrefixes, ListMultipartUploads/Abort, DeleteObject(s),
every call with a wrong secret (SignatureDoesNotMatch), and an unreachable endpoint (network error
after bounded retries). Run as: tests/lib/with-stack tests/integration/test_s3_client.py"""
import base64
import concurrent.futures
import os
import subprocess
import sys
import time

import boto3

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from itest import check, find_tool, finish  # noqa: E402

BUCKET = os.environ["S3CSEFS_TEST_BUCKET"]
TMP = os.environ.get("S3CSEFS_TEST_TMPDIR", "/tmp")
MIB = 1024 * 1024


TOOL = find_tool("objc_check")
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def tool(*args, env=None, stdin=None):
    full_env = dict(os.environ, **(env or {}))
    p = subprocess.run([TOOL, *args], input=stdin, capture_output=True, text=True, env=full_env, timeout=300)
    return p.returncode, p.stdout, p.stderr


def crc32c(data):
    """Bitwise CRC32C (Castagnoli, reflected polynomial 0x82F63B78): independent of the C code."""
    table = crc32c.table
    if table is None:
        table = []
        for n in range(256):
            c = n
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            table.append(c)
        crc32c.table = table
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return base64.b64encode((crc ^ 0xFFFFFFFF).to_bytes(4, "big")).decode()


crc32c.table = None


def write(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_put_head_get():
    key = "dir/a b+c%d~\u00e9 &x.bak"
    data = os.urandom(100_003)
    rc, out, err = tool("put", key, write("put.bin", data), "x-amz-iv=aXY=", "x-amz-matdesc={\"kms_cmk_id\":\"k\"}")
    check(rc == 0, f"put of a key with space, +, %, ~, unicode, & ({err.strip()[:200]})")
    got = s3.get_object(Bucket=BUCKET, Key=key)
    check(got["Body"].read() == data, "boto3 reads back the same bytes")
    check(got["Metadata"] == {"x-amz-iv": "aXY=", "x-amz-matdesc": "{\"kms_cmk_id\":\"k\"}"},
          f"boto3 sees the same metadata: {got['Metadata']}")
    head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    check(head.get("ChecksumCRC32C") == crc32c(data),
          f"the CRC32C sent equals an independent CRC32C ({head.get('ChecksumCRC32C')} vs {crc32c(data)})")

    rc, out, err = tool("head", key)
    lines = out.splitlines()
    check(rc == 0 and "size 100003" in lines and f"etag {head['ETag']}" in lines, "HeadObject size and ETag")
    check("meta x-amz-iv=aXY=" in lines and "meta x-amz-matdesc={\"kms_cmk_id\":\"k\"}" in lines, "HeadObject metadata")
    lm = int(next(l.split()[1] for l in lines if l.startswith("last_modified")))
    check(lm == int(head["LastModified"].timestamp()), "HeadObject Last-Modified")

    rc, out, err = tool("head", "no/such/key")
    check(rc == 3 and "not found 404" in err, f"HeadObject of an absent key is not-found ({err.strip()})")

    for off, length, want in ((0, 10, data[:10]), (4097, 5000, data[4097:9097]), (100_000, 50, data[100_000:]),
                              (100_003, 10, b""), (500_000, 10, b"")):
        out_path = os.path.join(TMP, "range.bin")
        rc, out, err = tool("get", key, str(off), str(length), out_path)
        check(rc == 0 and read(out_path) == want and f"got {len(want)}" in out and "errors=0" in err,
              f"ranged GET [{off}, +{length}) returns {len(want)} bytes ({err.strip()[:200]})")

    # If-Match against moto: the ETag boto3 reports reads; after a same-size overwrite it is 412.
    out_path = os.path.join(TMP, "range.bin")
    rc, out, err = tool("get-if-match", key, head["ETag"], "10", "20", out_path)
    check(rc == 0 and read(out_path) == data[10:30], f"GET with If-Match of the current ETag ({err.strip()[:150]})")
    s3.copy_object(Bucket=BUCKET, Key=key + ".v2", CopySource={"Bucket": BUCKET, "Key": key})
    rc, out, err = tool("get-if-match", key + ".v2", head["ETag"], "0", "10", out_path)
    check(rc == 0, f"a byte-identical copy keeps the ETag ({err.strip()[:150]})")
    s3.put_object(Bucket=BUCKET, Key=key + ".v2", Body=os.urandom(len(data)))
    rc, out, err = tool("get-if-match", key + ".v2", head["ETag"], "0", "10", out_path)
    check(rc == 3 and err.startswith("ERROR object changed 412"),
          f"GET with If-Match after a same-size overwrite: object changed ({err.strip()[:150]})")


def test_empty_object():
    rc, out, err = tool("put", "empty/zero", write("empty.bin", b""), "mode=0600")
    got = s3.get_object(Bucket=BUCKET, Key="empty/zero")
    check(rc == 0 and got["Body"].read() == b"" and got["Metadata"] == {"mode": "0600"},
          f"PUT of an empty body ({err.strip()[:150]})")
    rc, out, err = tool("head", "empty/zero")
    check(rc == 0 and "size 0" in out.splitlines(), "HEAD of an empty object")
    out_path = os.path.join(TMP, "zero.bin")
    rc, out, err = tool("get", "empty/zero", "0", "4096", out_path)
    check(rc == 0 and "got 0" in out and read(out_path) == b"", f"ranged GET of an empty object ({err.strip()[:150]})")
    rc, out, err = tool("copy", "empty/zero", "empty/copy", "copy")
    check(rc == 0 and s3.head_object(Bucket=BUCKET, Key="empty/copy")["ContentLength"] == 0, "copy of an empty object")


def test_multipart_and_copies():
    key = "mpu/three parts.bak"
    data = os.urandom(11 * MIB + 12345)
    rc, out, err = tool("mpu", key, write("mpu.bin", data), str(5 * MIB), "x-amz-iv=bXBl", "mode=0600")
    check(rc == 0, f"multipart upload of 3 parts ({err.strip()[:300]})")
    parts = [l.split() for l in out.splitlines() if l.startswith("part ")]
    check(len(parts) == 3, "three parts reported")
    for i, p in enumerate(parts):
        chunk = data[i * 5 * MIB:(i + 1) * 5 * MIB]
        check(p[3] == crc32c(chunk), f"part {i + 1} CRC32C equals an independent CRC32C")
    got = s3.get_object(Bucket=BUCKET, Key=key)
    check(got["Body"].read() == data, "boto3 reads back the multipart object")
    check(got["Metadata"] == {"x-amz-iv": "bXBl", "mode": "0600"}, "multipart object metadata")
    check(got["ETag"].strip('"').endswith("-3"), f"multipart ETag {got['ETag']} ends in -3")

    rc, out, err = tool("copy", key, "copy/kept.bak", "copy")
    got = s3.get_object(Bucket=BUCKET, Key="copy/kept.bak")
    check(rc == 0 and got["Body"].read() == data and got["Metadata"] == {"x-amz-iv": "bXBl", "mode": "0600"},
          f"CopyObject with COPY keeps bytes and metadata ({err.strip()[:200]})")

    rc, out, err = tool("copy", key, "copy/replaced.bak", "replace", "mode=0644", "uid=7")
    got = s3.get_object(Bucket=BUCKET, Key="copy/replaced.bak")
    check(rc == 0 and got["Body"].read() == data and got["Metadata"] == {"mode": "0644", "uid": "7"},
          f"CopyObject with REPLACE sets exactly the new metadata: {got['Metadata']}")

    forced = {"S3CSEFS_COPY_THRESHOLD": "1", "S3CSEFS_COPY_PART_SIZE": str(5 * MIB)}
    rc, out, err = tool("copy", key, "copy/by parts.bak", "copy", env=forced)
    got = s3.get_object(Bucket=BUCKET, Key="copy/by parts.bak")
    check(rc == 0 and got["Body"].read() == data, f"UploadPartCopy path copies the bytes ({err.strip()[:200]})")
    check(got["Metadata"] == {"x-amz-iv": "bXBl", "mode": "0600"}, "UploadPartCopy path keeps metadata")
    check(got["ETag"].strip('"').endswith("-3"), f"UploadPartCopy made 3 parts ({got['ETag']})")
    rc, out, err = tool("copy", key, "copy/by parts replaced.bak", "replace", "mode=0400", env=forced)
    got = s3.head_object(Bucket=BUCKET, Key="copy/by parts replaced.bak")
    check(rc == 0 and got["Metadata"] == {"mode": "0400"}, "UploadPartCopy path with REPLACE")
    left = s3.list_multipart_uploads(Bucket=BUCKET, Prefix="copy/").get("Uploads", [])
    check(not left, "no multipart upload left behind by copies")

    rc, out, err = tool("copy", "no/such/source", "copy/x", "copy")
    check(rc == 3 and "not found" in err, "copy of an absent source is not-found")


def test_uploads_list_and_abort():
    ids = []
    for key in ("up/one.bak", "up/two words.bak", "up/one.bak"):
        rc, out, err = tool("mpu-create", key)
        ids.append(out.strip())
    rc, out, err = tool("mpu-list", "up/")
    ours = sorted(tuple(l.split(" ", 2)[1:]) for l in out.splitlines() if l.startswith("U "))
    theirs = sorted((u["UploadId"], u["Key"])
                    for u in s3.list_multipart_uploads(Bucket=BUCKET, Prefix="up/").get("Uploads", []))
    check(rc == 0 and len(ours) == 3 and ours == theirs, f"ListMultipartUploads matches boto3 ({ours})")
    rc, out, err = tool("mpu-abort", "up/two words.bak", ids[1])
    left = [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=BUCKET, Prefix="up/").get("Uploads", [])]
    check(rc == 0 and ids[1] not in left and len(left) == 2, "AbortMultipartUpload removes exactly that upload")
    for key, upload_id in (("up/one.bak", ids[0]), ("up/one.bak", ids[2])):
        tool("mpu-abort", key, upload_id)


def test_listing_and_deletes():
    keys = [f"list/d{i % 5}/k{i:05d}" for i in range(2000)] + [f"list/top {i:04d}+.bak" for i in range(500)]

    def put(k):
        s3.put_object(Bucket=BUCKET, Key=k, Body=b"x" * (len(k) % 7))

    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys))
    print(f"(created {len(keys)} keys in {time.time() - started:.1f} s)")

    rc, out, err = tool("list", "list/", "-", "1000")
    listed = [l.split(" ", 2) for l in out.splitlines() if l.startswith("K ")]
    check(rc == 0 and sorted(k for _, _, k in listed) == sorted(keys), "ListObjectsV2 without delimiter: all 2500 keys")
    check("pages 3" in out, "2500 keys come in 3 pages of at most 1000")
    check(all(int(size) == len(k) % 7 for _, size, k in listed), "sizes match")

    rc, out, err = tool("list", "list/", "/", "300")
    ours_keys = sorted(l.split(" ", 2)[2] for l in out.splitlines() if l.startswith("K "))
    ours_prefixes = sorted(l[2:] for l in out.splitlines() if l.startswith("P "))
    pages = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).get_paginator("list_objects_v2")
    theirs_keys, theirs_prefixes = [], []
    for page in pages.paginate(Bucket=BUCKET, Prefix="list/", Delimiter="/"):
        theirs_keys += [o["Key"] for o in page.get("Contents", [])]
        theirs_prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    check(ours_prefixes == [f"list/d{i}/" for i in range(5)] == sorted(theirs_prefixes),
          f"CommonPrefixes with delimiter: {ours_prefixes}")
    check(ours_keys == sorted(theirs_keys) and len(ours_keys) == 500,
          f"keys beside the prefixes (500, with spaces and +): {len(ours_keys)} vs {len(theirs_keys)}, "
          f"differ: {sorted(set(ours_keys) ^ set(theirs_keys))[:5]}")
    check("pages 2" in out, "505 entries with max-keys 300 come in 2 pages")

    rc, out, err = tool("delete", "list/top 0000+.bak")
    rc2, out2, err2 = tool("delete", "list/top 0000+.bak")
    check(rc == 0 and rc2 == 0, "DeleteObject, then again on the absent key: both succeed")
    rc, out, err = tool("delete-many", stdin="\n".join(keys[1:]) + "\n" + keys[0] + "\n")
    left = s3.list_objects_v2(Bucket=BUCKET, Prefix="list/").get("KeyCount", -1)
    check(rc == 0 and left == 0, f"DeleteObjects of 2500 keys in batches of 1000 leaves nothing ({err.strip()[:200]})")


def test_parallel_puts():
    """8 threads share one client and its connection pool."""
    count, size = 64, 100_000
    rc, out, err = tool("parallel-put", "par/obj", str(count), str(size), "8")
    check(rc == 0 and f"requests={count} retries=0 errors=0 sent={count * size}" in err,
          f"{count} PUTs from 8 threads ({err.strip()[:200]})")
    bad = 0
    for i in range(count):
        want = bytes((i + 31 * j) % 251 for j in range(size))
        bad += s3.get_object(Bucket=BUCKET, Key=f"par/obj{i}")["Body"].read() != want
    check(bad == 0, f"every object holds its own bytes ({bad} wrong)")


def test_wrong_secret():
    bad = {"AWS_SECRET_ACCESS_KEY": "wrong-secret", "S3CSEFS_MAX_ATTEMPTS": "2"}
    path = write("small.bin", b"small")
    calls = [("put", "w/x", path), ("get", "dir/x", "0", "10", os.path.join(TMP, "w.bin")),
             ("mpu-create", "w/x"), ("mpu-list", "w/"), ("list", "", "/", "10"),
             ("delete", "w/x"), ("mpu-abort", "w/x", "id")]
    for call in calls:
        rc, out, err = tool(*call, env=bad)
        check(rc == 3 and "SignatureDoesNotMatch" in err, f"{call[0]} with a wrong secret: SignatureDoesNotMatch")
        check("retries=0" in err, f"{call[0]}: a signature error is not retried")
    rc, out, err = tool("delete-many", env=bad, stdin="a\nb\n")
    check(rc == 3 and "SignatureDoesNotMatch" in err, "delete-many with a wrong secret: SignatureDoesNotMatch")
    # HEAD answers have no body, so no code; copy starts with a HEAD of its source.
    for call in (("head", "dir/x"), ("copy", "dir/x", "dir/y", "copy")):
        rc, out, err = tool(*call, env=bad)
        check(rc == 3 and "service error 403" in err, f"{call[0]} with a wrong secret: 403")


def test_unreachable_endpoint():
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "S3CSEFS_MAX_ATTEMPTS": "3"}
    started = time.time()
    rc, out, err = tool("head", "x", env=env)
    took = time.time() - started
    check(rc == 3 and "network error" in err and "after 3 attempts" in err,
          f"unreachable endpoint: network error after 3 attempts ({err.strip()[:200]})")
    check("requests=3 retries=2" in err, "exactly 3 attempts were made")
    check(took < 10, f"bounded retries end quickly ({took:.1f} s)")


for test in (test_put_head_get, test_empty_object, test_multipart_and_copies, test_uploads_list_and_abort, test_listing_and_deletes,
             test_parallel_puts, test_wrong_secret, test_unreachable_endpoint):
    print(f"== {test.__name__}")
    try:
        test()
    except Exception as exc:  # a crash in one group must not hide the others
        check(False, f"{test.__name__} raised {exc!r}")

finish()
