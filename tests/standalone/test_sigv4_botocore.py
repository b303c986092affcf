#!/usr/bin/env python3
"""Cross-checks our SigV4 signer (tests/tools/sigv4_sign) against botocore, an independent implementation.

Generates a few hundred random requests (seeded; the seed is printed so a failure can be replayed with
S3CSEFS_SIGV4_SEED): S3 requests with awkward keys (spaces, '+', '%', unicode, '//', '.', '..'), query
parameters, messy header values, session tokens, signed and UNSIGNED-PAYLOAD bodies; generic-service
requests whose paths botocore normalizes; and S3 presigned URLs. For each one, the canonical request,
string to sign and Authorization header (or the presigned URL's signature and parameters) must be
identical to what botocore's S3SigV4Auth / SigV4Auth / S3SigV4QueryAuth produce at the same instant.
"""
import datetime
import json
import os
import random
import subprocess
import sys
from urllib.parse import parse_qsl, quote, urlsplit

try:
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials
except ImportError:
    sys.exit("test_sigv4_botocore: botocore is missing (python3 must be the interpreter with boto3)")

CASES = int(os.environ.get("S3CSEFS_SIGV4_CASES", "400"))

KEY_PIECES = ["a", "dir/", "with space", "plus+sign", "percent%25", "per%cent", "ünïcødé", "日本語", "//",
              "./", "../", "~tilde", "star*", "quote'", "eq=", "amp&", "q?", "hash#", "semi;", "colon:",
              "at@", "comma,", "dollar$", "paren()", "tab\t", "x.bak", "-_.", "emoji😀"]
HEADER_VALUES = ["text/plain", "  leading and trailing  ", "many    inner     spaces", "a\tb", "MiXeD",
                 "bytes=0-1023", "value,with,commas", "quoted \"x   y\"", "ünï"]
HEADER_NAMES = ["Content-Type", "x-amz-meta-foo", "X-Amz-Meta-Mixed-Case", "Content-MD5", "Range",
                "x-amz-server-side-encryption", "x-amz-meta-a", "Cache-Control", "If-Match"]
QUERY_PARAMS = ["uploadId", "partNumber", "list-type", "prefix", "delimiter", "continuation-token",
                "versions", "marker", "max-keys", "start-after", "ünï"]


def find_tool():
    build = os.environ.get("S3CSEFS_BUILD_DIR", "")
    for candidate in (os.path.join(build, "tests", "sigv4_sign"), os.path.join(build, "sigv4_sign")):
        if build and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("test_sigv4_botocore: sigv4_sign not found under S3CSEFS_BUILD_DIR=%r" % build)


def random_text(rng, alphabet="abcXYZ019+/=-_.~ %&", n=12):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, n)))


def random_query(rng):
    params = []
    for name in rng.sample(QUERY_PARAMS, rng.randint(0, 4)):
        value = rng.choice(["", "2", "/", random_text(rng), rng.choice(KEY_PIECES)])
        if name == "versions" and rng.random() < 0.5:
            params.append(quote(name, safe="-_.~"))        # a bare parameter with no '='
        else:
            params.append(quote(name, safe="-_.~") + "=" + quote(value, safe="-_.~"))
    rng.shuffle(params)
    return "&".join(params)


def random_headers(rng):
    names = rng.sample(HEADER_NAMES, rng.randint(0, 4))
    return [[name, rng.choice(HEADER_VALUES)] for name in names]


def random_credentials(rng):
    token = None
    if rng.random() < 0.4:
        token = "".join(rng.choice("ABCDEFabcdef0123456789+/=") for _ in range(rng.randint(20, 300)))
    secret = "".join(rng.choice("ABCDEFGHIJabcdefghij0123456789+/") for _ in range(40))
    return "AKID" + random_text(rng, "ABCDEFGHIJKLMNOP0123456789", 16), secret, token


def make_case(rng, kind):
    access_key, secret_key, token = random_credentials(rng)
    case = {
        "method": rng.choice(["GET", "PUT", "POST", "HEAD", "DELETE"]),
        "region": rng.choice(["us-east-1", "eu-west-3", "ap-southeast-2"]),
        "time": rng.randint(1420070400, 2051222400),
        "access_key": access_key,
        "secret_key": secret_key,
        "token": token,
        "headers": random_headers(rng),
        "body": rng.choice(["", "hello", "Param1=value1", "ünïcødé body " * rng.randint(1, 5)]),
        "query": random_query(rng),
        "unsigned_payload": False,
        "content_sha256_header": False,
        "presign_expires": 0,
    }
    key = "".join(rng.choice(KEY_PIECES) for _ in range(rng.randint(1, 6)))
    if kind in ("s3", "presign"):
        bucket = rng.choice(["bucket", "my.dotted.bucket", None])
        case["host"] = rng.choice(["s3.amazonaws.com", "127.0.0.1:5000", "bucket.s3.eu-west-3.amazonaws.com"])
        case["path"] = ("/" + bucket if bucket else "") + "/" + quote(key, safe="/~")
        case["service"] = "s3"
        case["normalize"] = False
        case["content_sha256_header"] = True
        case["unsigned_payload"] = rng.random() < 0.3
    else:
        case["host"] = rng.choice(["kms.eu-west-3.amazonaws.com", "sts.amazonaws.com", "localhost:4566"])
        case["path"] = "/" + quote(key, safe="/~%")    # may hold '%' escapes: generic services double-encode
        case["service"] = rng.choice(["kms", "sts", "iam", "execute-api"])
        case["normalize"] = True
    if kind == "presign":
        case["presign_expires"] = rng.randint(1, 604800)
        case["method"] = rng.choice(["GET", "PUT"])
        case["headers"] = []
        case["body"] = ""
    return case


def botocore_sign(case):
    """Returns (canonical request, string to sign, Authorization or presigned URL) as botocore computes."""
    when = datetime.datetime.fromtimestamp(case["time"], datetime.timezone.utc).replace(tzinfo=None)
    botocore.auth.get_current_datetime = lambda *args, **kwargs: when
    creds = Credentials(case["access_key"], case["secret_key"], case["token"])
    url = "https://" + case["host"] + case["path"] + ("?" + case["query"] if case["query"] else "")
    headers = {name: value for name, value in case["headers"]}
    request = AWSRequest(method=case["method"], url=url, data=case["body"].encode("utf-8"), headers=headers)
    if case["presign_expires"]:
        auth = botocore.auth.S3SigV4QueryAuth(creds, case["service"], case["region"],
                                              expires=case["presign_expires"])
        auth.add_auth(request)
        return None, None, request.url
    if case["service"] == "s3":
        auth = botocore.auth.S3SigV4Auth(creds, case["service"], case["region"])
        if case["unsigned_payload"]:
            request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    else:
        auth = botocore.auth.SigV4Auth(creds, case["service"], case["region"])
    # Capture the intermediate products while botocore signs (afterwards the request also carries the
    # Authorization header, which would change a recomputed canonical request).
    captured = {}
    original_string_to_sign = auth.string_to_sign

    def capture(req, canonical):
        captured["canonical"] = canonical
        captured["string_to_sign"] = original_string_to_sign(req, canonical)
        return captured["string_to_sign"]

    auth.string_to_sign = capture
    auth.add_auth(request)
    return captured["canonical"], captured["string_to_sign"], request.headers["Authorization"]


def compare_presigned(ours, theirs):
    """Same path, same parameters (order aside), same signature."""
    ours_parts, theirs_parts = urlsplit(ours), urlsplit(theirs)
    if ours_parts.path != theirs_parts.path:
        return "path %r != %r" % (ours_parts.path, theirs_parts.path)
    ours_params = sorted(parse_qsl(ours_parts.query, keep_blank_values=True))
    theirs_params = sorted(parse_qsl(theirs_parts.query, keep_blank_values=True))
    if ours_params != theirs_params:
        return "parameters differ:\n  ours   %r\n  theirs %r" % (ours_params, theirs_params)
    return None


def main():
    seed = int(os.environ.get("S3CSEFS_SIGV4_SEED", random.randrange(1 << 30)))
    print("seed", seed)
    rng = random.Random(seed)
    kinds = ["s3"] * 5 + ["generic"] * 3 + ["presign"] * 2
    cases = [make_case(rng, rng.choice(kinds)) for _ in range(CASES)]
    tool = find_tool()
    proc = subprocess.run([tool], input="".join(json.dumps(c) + "\n" for c in cases), capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        print(proc.stderr)
        sys.exit("sigv4_sign failed")
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == len(cases), "tool answered %d of %d cases" % (len(results), len(cases))

    failed = 0
    counts = {}
    for index, (case, ours) in enumerate(zip(cases, results)):
        kind = "presign" if case["presign_expires"] else case["service"]
        counts[kind] = counts.get(kind, 0) + 1
        canonical, string_to_sign, auth = botocore_sign(case)
        problem = None
        if case["presign_expires"]:
            problem = compare_presigned(ours["url"], auth)
        elif ours["canonical_request"] != canonical:
            problem = "canonical request differs:\n--- ours\n%s\n--- botocore\n%s" % (ours["canonical_request"],
                                                                                    canonical)
        elif ours["string_to_sign"] != string_to_sign:
            problem = "string to sign differs"
        elif ours["authorization"] != auth:
            problem = "authorization differs:\n  ours   %s\n  theirs %s" % (ours["authorization"], auth)
        if problem:
            failed += 1
            if failed <= 5:
                print("case %d (%s %s%s): %s" % (index, case["method"], case["host"], case["path"], problem))
    print("checked %s" % ", ".join("%d %s" % (n, k) for k, n in sorted(counts.items())))
    print("%d passed, %d failed" % (len(cases) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
