#!/usr/bin/env python3
"""Retries and answer checks of the HTTP layer, against a scripted fake server (in this process) that
plays back failures moto cannot produce: 503 SlowDown then success, a 500 on a PUT whose body must be
sent again in full (same CRC32C), S3's "200 OK with an <Error> body" on CompleteMultipartUpload,
a connection cut in the middle of a GET body, a completed ETag of the wrong form, a GET whose Range
was ignored, non-retryable 403s, and KMS ThrottlingException. Each case checks the number of attempts
the server saw. Needs objc_check/kms_check; uses the credentials with-stack exports (the fake server
does not check signatures, it checks that every attempt is signed with a fresh date header)."""
import base64
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from itest import check, find_tool, finish  # noqa: E402


OBJC = find_tool("objc_check")
KMS = find_tool("kms_check")
TMP = os.environ.get("S3CSEFS_TEST_TMPDIR", "/tmp")


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return base64.b64encode((crc ^ 0xFFFFFFFF).to_bytes(4, "big")).decode()


class Plan:
    """Answers to play back, in order; each is (status, headers, body) or the string "cut"."""
    answers = []
    seen = []   # (method, path, headers, body) of every request
    lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length) if length else b""
        with Plan.lock:
            Plan.seen.append((self.command, self.path, dict((k.lower(), v) for k, v in self.headers.items()), body))
            answer = Plan.answers.pop(0) if Plan.answers else (500, {}, b"plan exhausted")
        if answer == "cut":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        status, headers, payload = answer
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if not any(k.lower() == "content-length" for k in headers):   # a case may send a malformed one
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
endpoint = f"http://127.0.0.1:{server.server_address[1]}"
ENV = dict(os.environ, AWS_ENDPOINT_URL=endpoint, S3CSEFS_TEST_BUCKET="fake-bucket", AWS_REGION="us-east-1")
for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_KMS"):
    ENV.pop(name, None)


def run(tool, answers, *args, stdin="", env=None, timeout=120):
    Plan.answers = list(answers)
    Plan.seen = []
    try:
        p = subprocess.run([tool, *args], input=stdin, capture_output=True, text=True, env=dict(ENV, **(env or {})),
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, "", "timed out"
    return p.returncode, p.stdout, p.stderr.strip()


def s3_error(status, code):
    return (status, {"Content-Type": "application/xml"},
            f"<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>m</Message><RequestId>r1</RequestId></Error>".encode())


HEAD_OK = (200, {"Content-Length": "5", "ETag": '"abc"', "Last-Modified": "Wed, 12 Oct 2009 17:50:00 GMT",
                 "x-amz-meta-mode": "0644"}, b"")

# 1. Throttling then success.
rc, out, err = run(OBJC, [s3_error(503, "SlowDown"), s3_error(503, "SlowDown"), HEAD_OK], "head", "k")
check(rc == 0 and len(Plan.seen) == 3 and "meta mode=0644" in out, f"503 SlowDown twice, then success ({err[:150]})")
dates = [h.get("x-amz-date") for _, _, h, _ in Plan.seen]
check(all(dates) and all("authorization" in h for _, _, h, _ in Plan.seen), "every attempt is signed")

# 2. A PUT answered 500 is sent again, whole, with the same checksum.
data = os.urandom(70000)
path = os.path.join(TMP, "retry.bin")
with open(path, "wb") as f:
    f.write(data)
rc, out, err = run(OBJC, [s3_error(500, "InternalError"), (200, {"ETag": '"e1"'}, b"")], "put", "k", path)
check(rc == 0 and len(Plan.seen) == 2, f"PUT retried after 500 ({err[:150]})")
check(all(b == data for _, _, _, b in Plan.seen), "both attempts carried the whole body")
check(all(h.get("x-amz-checksum-crc32c") == crc32c(data) for _, _, h, _ in Plan.seen),
      "x-amz-checksum-crc32c equals an independent CRC32C on every attempt")
check(all(h.get("x-amz-content-sha256") not in (None, "UNSIGNED-PAYLOAD") for _, _, h, _ in Plan.seen),
      "plain http: the payload hash is signed")

# A streamed body (read callback in 1000-byte pieces) is rewound and sent again in full.
rc, out, err = run(OBJC, [s3_error(503, "SlowDown"), (200, {"ETag": '"e2"'}, b"")], "stream-put", "k", path)
check(rc == 0 and "attempts 2 rewinds 1" in out and all(b == data for _, _, _, b in Plan.seen),
      f"streamed body rewound and re-sent ({err[:150]})")
check(Plan.seen[0][2].get("x-amz-content-sha256") == "UNSIGNED-PAYLOAD", "a streamed body is sent UNSIGNED-PAYLOAD")

# 3. Multipart upload whose completion first answers 200 with an <Error> body.
init = (200, {}, b"<InitiateMultipartUploadResult><UploadId>U1</UploadId></InitiateMultipartUploadResult>")
part = (200, {"ETag": '"0123456789abcdef0123456789abcdef"'}, b"")
done = (200, {}, b"<CompleteMultipartUploadResult><ETag>\"00112233445566778899aabbccddeeff-1\"</ETag>"
                 b"</CompleteMultipartUploadResult>")
trap = (200, {}, b"<Error><Code>InternalError</Code><Message>try again</Message></Error>")
rc, out, err = run(OBJC, [init, part, trap, done], "mpu", "k", path, "1000000")
check(rc == 0 and len(Plan.seen) == 4, f"200-with-Error on completion is retried ({err[:150]})")
complete_body = Plan.seen[-1][3].decode()
check("<ChecksumCRC32C>" + crc32c(data) + "</ChecksumCRC32C>" in complete_body and "<PartNumber>1</PartNumber>" in complete_body,
      "CompleteMultipartUpload lists the part with its CRC32C")
check(Plan.seen[0][2].get("x-amz-checksum-algorithm") == "CRC32C", "CreateMultipartUpload asks for CRC32C")

# The completion's answer is lost (connection cut) and the retry finds the upload gone: accepted only
# when the object at the key provably is the one built from OUR parts: S3's multipart ETag
# MD5(binary part MD5s)-N (computed here with hashlib), or the composite CRC32C(part CRC32Cs)-N.
gone = s3_error(404, "NoSuchUpload")
our_etag = hashlib.md5(bytes.fromhex("0123456789abcdef0123456789abcdef")).hexdigest() + "-1"
head_mpu = (200, {"Content-Length": "70000", "ETag": f'"{our_etag}"'}, b"")
rc, out, err = run(OBJC, [init, part, "cut", gone, head_mpu], "mpu", "k", path, "1000000")
check(rc == 0 and len(Plan.seen) == 5 and Plan.seen[-1][0] == "HEAD",
      f"lost completion answer, NoSuchUpload on retry, HEAD shows our object: success ({err[:150]})")
head_other = (200, {"Content-Length": "70000", "ETag": '"00112233445566778899aabbccddeeff"'}, b"")
rc, out, err = run(OBJC, [init, part, "cut", gone, head_other], "mpu", "k", path, "1000000")
check(rc == 3 and "NoSuchUpload" in err, "... but not when the object is not ours")
# Yesterday's backup of the same name and part count: right ETag form, other parts (review finding 1).
head_stale = (200, {"Content-Length": "70000", "ETag": '"00112233445566778899aabbccddeeff-1"',
                    "x-amz-meta-x-amz-iv": "OLDOBJECTIVOLDOBJECTIV=="}, b"")
rc, out, err = run(OBJC, [init, part, "cut", gone, head_stale], "mpu", "k", path, "1000000")
check(rc == 3 and "NoSuchUpload" in err and "not the one built from our parts" in err,
      f"a stale object with a multipart ETag of our part count is not taken for our upload ({err[:160]})")
# Part ETags that are no MD5 (SSE-KMS): the composite checksum proves it, asked for with checksum mode.
kms_part = (200, {"ETag": '"kms-opaque-etag"'}, b"")
composite = crc32c(base64.b64decode(crc32c(data))) + "-1"
head_sum = (200, {"Content-Length": "70000", "ETag": '"99999999999999999999999999999999-1"',
                  "x-amz-checksum-crc32c": composite}, b"")
rc, out, err = run(OBJC, [init, kms_part, "cut", gone, head_sum], "mpu", "k", path, "1000000")
check(rc == 0 and Plan.seen[-1][2].get("x-amz-checksum-mode") == "ENABLED",
      f"lost completion proven by the composite CRC32C ({err[:150]})")
head_sum_other = (200, {"Content-Length": "70000", "ETag": '"99999999999999999999999999999999-1"',
                        "x-amz-checksum-crc32c": "AAAAAA==-1"}, b"")
rc, out, err = run(OBJC, [init, kms_part, "cut", gone, head_sum_other], "mpu", "k", path, "1000000")
check(rc == 3 and "NoSuchUpload" in err, "... and refused when the composite CRC32C differs")

# CreateMultipartUpload whose first answer is lost: the retry gets U2, and the upload the lost attempt
# may have created (U1, same key, initiated just now) is aborted; other keys and older uploads are left
# alone (review finding 10).
now_iso = __import__("datetime").datetime.now(__import__("datetime").timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
init2 = (200, {}, b"<InitiateMultipartUploadResult><UploadId>U2</UploadId></InitiateMultipartUploadResult>")
listing = (200, {}, ("<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
                     f"<Upload><Key>k</Key><UploadId>U1</UploadId><Initiated>{now_iso}</Initiated></Upload>"
                     f"<Upload><Key>k</Key><UploadId>U2</UploadId><Initiated>{now_iso}</Initiated></Upload>"
                     "<Upload><Key>k</Key><UploadId>OLD</UploadId><Initiated>2020-01-01T00:00:00.000Z</Initiated></Upload>"
                     f"<Upload><Key>k2</Key><UploadId>U3</UploadId><Initiated>{now_iso}</Initiated></Upload>"
                     "</ListMultipartUploadsResult>").encode())
rc, out, err = run(OBJC, ["cut", init2, listing, (204, {}, b"")], "mpu-create", "k")
deletes = [p for m, p, _, _ in Plan.seen if m == "DELETE"]
check(rc == 0 and out.startswith("U2") and deletes == ["/fake-bucket/k?uploadId=U1"] and
      any(m == "GET" and "uploads" in p and "prefix=k" in p for m, p, _, _ in Plan.seen),
      f"a lost CreateMultipartUpload answer: the orphan upload is aborted ({Plan.seen and [(m, p) for m, p, _, _ in Plan.seen]} {err[:100]})")
rc, out, err = run(OBJC, [(200, {}, b"<InitiateMultipartUploadResult></InitiateMultipartUploadResult>"), listing,
                          (204, {}, b""), (204, {}, b"")], "mpu-create", "k")
deletes = sorted(p for m, p, _, _ in Plan.seen if m == "DELETE")
check(rc == 3 and deletes == ["/fake-bucket/k?uploadId=U1", "/fake-bucket/k?uploadId=U2"],
      f"an unreadable CreateMultipartUpload answer: the recent uploads of the key are aborted ({err[:100]})")

bad_etag = (200, {}, b"<CompleteMultipartUploadResult><ETag>\"00112233445566778899aabbccddeeff\"</ETag>"
                     b"</CompleteMultipartUploadResult>")
rc, out, err = run(OBJC, [init, part, bad_etag], "mpu", "k", path, "1000000")
check(rc == 3 and "integrity" in err, f"a completed ETag without -<parts> is an integrity error ({err[:120]})")
no_etag = (200, {}, b"")
rc, out, err = run(OBJC, [init, no_etag], "mpu", "k", path, "1000000")
check(rc == 3 and "integrity" in err, "an UploadPart answer without ETag is an integrity error")

# 4. A GET cut in the middle of its body is retried.
rng = (206, {"Content-Range": "bytes 0-9/100"}, b"0123456789")
rc, out, err = run(OBJC, ["cut", rng], "get", "k", "0", "10", os.path.join(TMP, "g.bin"))
check(rc == 0 and "got 10" in out and len(Plan.seen) == 2, f"GET cut mid-body is retried ({err[:150]})")
# A callback sink that already took bytes of a cut answer is told to start over before the retry, or
# the call is not retried (review finding 22).
whole = (200, {}, b"0123456789")
rc, out, err = run(OBJC, ["cut", whole], "callback-get", "k", "reset")
check(rc == 0 and "attempts 2 resets 1 bytes 10 first 0123456789" in out,
      f"callback sink reset before the retry: holds the body once ({out.strip()} {err[:100]})")
rc, out, err = run(OBJC, ["cut", whole], "callback-get", "k", "noreset")
check(rc == 3 and "attempts 1 resets 0 bytes 10" in out and len(Plan.seen) == 1,
      f"without sink_reset no retry after delivered bytes ({out.strip()} {err[:100]})")
# A server that ignores Range must not be taken for the asked bytes.
rc, out, err = run(OBJC, [(200, {}, b"0123456789")], "get", "k", "5", "5", os.path.join(TMP, "g.bin"))
check(rc == 3 and "integrity" in err, f"a 200 for a ranged GET at offset 5 is refused ({err[:120]})")
rc, out, err = run(OBJC, [(206, {"Content-Range": "bytes 0-4/100"}, b"01234")], "get", "k", "5", "5",
                   os.path.join(TMP, "g.bin"))
check(rc == 3 and "integrity" in err, "a 206 for another range is refused")

# A 206 shorter than asked, mid-object, is not "end of object": it is retried (review finding 9).
short = (206, {"Content-Range": "bytes 0-4/100"}, b"01234")
rc, out, err = run(OBJC, [short, rng], "get", "k", "0", "10", os.path.join(TMP, "g.bin"))
check(rc == 0 and "got 10" in out and len(Plan.seen) == 2, f"a short 206 mid-object is retried ({err[:150]})")
# ... while a 206 that reaches the end of the object is a short read at the end.
tail = (206, {"Content-Range": "bytes 95-99/100"}, b"56789")
rc, out, err = run(OBJC, [tail], "get", "k", "95", "10", os.path.join(TMP, "g.bin"))
check(rc == 0 and "got 5" in out and len(Plan.seen) == 1, f"a 206 to the end of the object is a short read ({err[:150]})")
lying = (206, {"Content-Range": "bytes 0-9/100"}, b"01234")
rc, out, err = run(OBJC, [lying, rng], "get", "k", "0", "10", os.path.join(TMP, "g.bin"))
check(rc == 0 and "got 10" in out and len(Plan.seen) == 2, "a body shorter than its Content-Range is retried")
rc, out, err = run(OBJC, [(206, {"Content-Range": "bytes 0-4"}, b"01234")], "get", "k", "0", "10",
                   os.path.join(TMP, "g.bin"))
check(rc == 3 and "integrity" in err, f"a malformed Content-Range is refused ({err[:120]})")

# get_range_if_match sends If-Match; 412 means the object was replaced (review finding 2).
rc, out, err = run(OBJC, [rng], "get-if-match", "k", '"abc"', "0", "10", os.path.join(TMP, "g.bin"))
check(rc == 0 and Plan.seen[0][2].get("if-match") == '"abc"', f"If-Match carries the ETag ({err[:120]})")
rc, out, err = run(OBJC, [s3_error(412, "PreconditionFailed")], "get-if-match", "k", '"abc"', "0", "10",
                   os.path.join(TMP, "g.bin"))
check(rc == 3 and err.startswith("ERROR object changed 412 PreconditionFailed") and len(Plan.seen) == 1,
      f"412 on a GET is 'object changed', not retried ({err[:120]})")
rc, out, err = run(OBJC, [rng], "get", "k", "0", "10", os.path.join(TMP, "g.bin"))
check("if-match" not in Plan.seen[0][2], "plain get_range sends no If-Match")

# Copies are conditional on the source ETag seen by HEAD, on CopyObject and on every UploadPartCopy
# (review finding 3).
head_src = (200, {"Content-Length": "25", "ETag": '"srcetag"', "x-amz-meta-mode": "0644"}, b"")
copied = (200, {}, b"<CopyObjectResult><ETag>\"d\"</ETag></CopyObjectResult>")
rc, out, err = run(OBJC, [head_src, copied], "copy", "a", "b", "copy")
check(rc == 0 and Plan.seen[1][2].get("x-amz-copy-source-if-match") == '"srcetag"',
      f"CopyObject carries x-amz-copy-source-if-match ({err[:120]})")
rc, out, err = run(OBJC, [head_src, s3_error(412, "PreconditionFailed")], "copy", "a", "b", "copy")
check(rc == 3 and "object changed" in err, f"a source replaced before CopyObject: object changed ({err[:120]})")
part_copied = (200, {}, b"<CopyPartResult><ETag>\"p\"</ETag></CopyPartResult>")
aborted = (204, {}, b"")
rc, out, err = run(OBJC, [head_src, init, part_copied, s3_error(412, "PreconditionFailed"), aborted],
                   "copy", "a", "b", "copy", env={"S3CSEFS_COPY_THRESHOLD": "10", "S3CSEFS_COPY_PART_SIZE": "10"})
part_reqs = [h for m, p, h, _ in Plan.seen if m == "PUT" and "partNumber=" in p]
check(rc == 3 and "object changed" in err and len(part_reqs) == 2 and
      all(h.get("x-amz-copy-source-if-match") == '"srcetag"' for h in part_reqs) and Plan.seen[-1][0] == "DELETE",
      f"every UploadPartCopy is conditional; a source replaced mid-copy aborts the upload ({err[:120]})")

# HeadObject's Content-Length must be plain digits (review finding 14).
for bad_len in ("+5", "-1", "0x5", "99999999999999999999999"):
    rc, out, err = run(OBJC, [(200, {"Content-Length": bad_len, "ETag": '"e"'}, b"")], "head", "k")
    check(rc == 3, f"HEAD Content-Length {bad_len!r} is refused ({err[:100]})")

# A truncated ListMultipartUploads whose markers do not advance is an error, not an endless loop
# (review finding 15).
looping = (200, {}, b"<ListMultipartUploadsResult><IsTruncated>true</IsTruncated><NextKeyMarker></NextKeyMarker>"
                    b"<NextUploadIdMarker></NextUploadIdMarker><Upload><Key>k</Key><UploadId>U</UploadId>"
                    b"<Initiated>2026-11-29T19:55:00.000Z</Initiated></Upload></ListMultipartUploadsResult>")
rc, out, err = run(OBJC, [looping] * 5, "mpu-list", "", timeout=20)
check(rc == 3 and len(Plan.seen) == 1, f"empty NextKeyMarker: parse error after one page ({err[:120]})")
stuck = (200, {}, b"<ListMultipartUploadsResult><IsTruncated>true</IsTruncated><NextKeyMarker>k</NextKeyMarker>"
                  b"<NextUploadIdMarker>U</NextUploadIdMarker></ListMultipartUploadsResult>")
rc, out, err = run(OBJC, [stuck] * 5, "mpu-list", "", timeout=20)
check(rc == 3 and len(Plan.seen) == 2, f"markers that do not advance: error after two pages ({err[:120]})")

# Header injection through a metadata value is refused before anything is sent.
rc, out, err = run(OBJC, [], "put", "k", path, "mode=0644\r\nx-amz-meta-evil: 1")
check(rc == 3 and "invalid argument" in err and len(Plan.seen) == 0, f"CR/LF in a metadata value: refused ({err[:120]})")

# 5. Final errors are not retried; a wrong-region answer names the bucket's region.
moved = (301, {"x-amz-bucket-region": "eu-west-3"}, b"")
rc, out, err = run(OBJC, [moved], "head", "k")
check(rc == 3 and "region eu-west-3" in err and len(Plan.seen) == 1, f"301 names the bucket region: {err[:160]}")
rc, out, err = run(OBJC, [s3_error(403, "AccessDenied")], "put", "k", path)
check(rc == 3 and "AccessDenied" in err and len(Plan.seen) == 1, "403 AccessDenied: one attempt")
rc, out, err = run(OBJC, [(200, {}, b"<DeleteResult><Error><Key>a</Key><Code>AccessDenied</Code>"
                                    b"<Message>no</Message></Error></DeleteResult>")], "delete-many",
                   stdin="a\nb & c\n")
check(rc == 3 and "AccessDenied" in err and len(Plan.seen) == 1, "DeleteObjects reports a per-key error")
check("content-md5" in Plan.seen[0][2] and
      base64.b64decode(Plan.seen[0][2]["content-md5"]) == __import__("hashlib").md5(Plan.seen[0][3]).digest(),
      "DeleteObjects sends the right Content-MD5")
check(b"<Key>b &amp; c</Key>" in Plan.seen[0][3] and Plan.seen[0][1].endswith("?delete="), "DeleteObjects body and query")

# 6. KMS throttling is retried; the JSON error type is parsed.
throttle = (400, {"Content-Type": "application/x-amz-json-1.1"},
            b'{"__type":"com.amazonaws.kms#ThrottlingException","message":"slow down"}')
described = (200, {}, b'{"KeyMetadata":{"Arn":"arn:aws:kms:us-east-1:1:key/k","Enabled":true,"KeyState":"Enabled"}}')
rc, out, err = run(KMS, [throttle, throttle, described], "describe", "alias/x")
check(rc == 0 and "arn arn:aws:kms:us-east-1:1:key/k" in out and len(Plan.seen) == 3,
      f"KMS ThrottlingException twice, then success ({err[:150]})")
req = Plan.seen[0]
check(req[2].get("x-amz-target") == "TrentService.DescribeKey" and
      req[2].get("content-type") == "application/x-amz-json-1.1" and req[3] == b'{"KeyId":"alias/x"}',
      "KMS request: target, content type and body")
denied = (400, {}, b'{"__type":"AccessDeniedException","Message":"not allowed"}')
rc, out, err = run(KMS, [denied], "generate", "alias/x")
check(rc == 3 and "AccessDeniedException" in err and len(Plan.seen) == 1, "KMS AccessDeniedException: one attempt")

server.shutdown()
finish()
