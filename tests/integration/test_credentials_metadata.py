#!/usr/bin/env python3
"""Credentials from the ECS container endpoint and from EC2 IMDSv2, served by small fake servers on a
loopback port in this process, and the refresh of expiring credentials.

IMDS fake: PUT /latest/api/token needs X-aws-ec2-metadata-token-ttl-seconds and returns a token; both GETs
need that token in X-aws-ec2-metadata-token (401 otherwise, as IMDSv2 in required mode). ECS fake: answers
only with the expected Authorization header. Each credentials document expires 6 minutes after it is served
and carries a new key id, so a refresh is visible. Runs under tests/lib/with-stack like every integration test
(the moto stack is not used here; AWS_EC2_METADATA_DISABLED from the stack is overridden per call).
"""
import datetime
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from itest import check, find_tool, finish  # noqa: E402


def credentials_document(serial, lifetime_s=360):
    expiration = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=lifetime_s)
    return json.dumps({
        "Code": "Success",
        "Type": "AWS-HMAC",
        "AccessKeyId": "ASIAFAKE%04d" % serial,
        "SecretAccessKey": "fake-secret-%d" % serial,
        "Token": "fake-token-%d" % serial,
        "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "LastUpdated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })


class FakeMetadata:
    """IMDSv2 at /latest/..., ECS at /ecs/credentials."""

    ROLE = "s3csefs-instance-role"
    ECS_TOKEN = "ecs-auth-token-value"

    def __init__(self):
        self.log = []                 # (method, path, relevant header or None)
        self.issued_tokens = set()
        self.serial = 0
        self.refuse_token = False
        self.unavailable = 0          # answer this many requests with 503 first (an instance still booting)
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def reply(self, status, body=""):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self):
                ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
                outer.log.append(("PUT", self.path, ttl))
                with outer.lock:
                    booting = outer.unavailable > 0
                    outer.unavailable -= booting
                if booting:
                    return self.reply(503)
                if self.path != "/latest/api/token" or not ttl or outer.refuse_token:
                    return self.reply(403 if outer.refuse_token else 400)
                with outer.lock:
                    token = "imds-token-%d" % (len(outer.issued_tokens) + 1)
                    outer.issued_tokens.add(token)
                self.reply(200, token)

            def do_GET(self):
                if self.path.startswith("/ecs/"):
                    auth = self.headers.get("Authorization")
                    outer.log.append(("GET", self.path, auth))
                    if auth != outer.ECS_TOKEN:
                        return self.reply(401)
                    with outer.lock:
                        outer.serial += 1
                        serial = outer.serial
                    return self.reply(200, credentials_document(serial))
                token = self.headers.get("X-aws-ec2-metadata-token")
                outer.log.append(("GET", self.path, token))
                if token not in outer.issued_tokens:
                    return self.reply(401)
                base = "/latest/meta-data/iam/security-credentials/"
                if self.path == base:
                    return self.reply(200, outer.ROLE + "\n")
                if self.path == base + outer.ROLE:
                    with outer.lock:
                        outer.serial += 1
                        serial = outer.serial
                    return self.reply(200, credentials_document(serial))
                self.reply(404)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self):
        self.log.clear()
        self.serial = 0
        self.refuse_token = False
        self.unavailable = 0

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def tool():
    path = os.path.join(os.environ["S3CSEFS_BUILD_DIR"], "tests", "credentials_check")
    if not os.access(path, os.X_OK):
        sys.exit("credentials_check not built at %s" % path)
    return path


def run(args, env):
    proc = subprocess.run([tool()] + args, env=env, capture_output=True, text=True, timeout=120)
    calls = [dict(item.split("=", 1) for item in line.split())
             for line in proc.stdout.splitlines() if line.startswith("source=")]
    return proc, calls


def clean_env(**extra):
    """No keys, no profile files, no container or IMDS settings unless given."""
    tmp = os.environ.get("S3CSEFS_TEST_TMPDIR", "/tmp")
    drop = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_DISABLED", "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["AWS_CONFIG_FILE"] = os.path.join(tmp, "absent-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(tmp, "absent-credentials")
    env.update(extra)
    return env


class RecordingProxy:
    """A "proxy" that records every connection and answers 502: credential traffic must never reach it."""

    def __init__(self):
        import socket
        self.connections = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(2)
            try:
                self.connections.append(conn.recv(4096))
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            conn.close()

    def stop(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def proxied(env, proxy):
    env = {k: v for k, v in env.items() if k.lower() != "no_proxy"}
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env[name] = proxy.url
    return env


def check_no_proxy(fake):
    """IMDS tokens, ECS authorization tokens and the credentials they return stay off any proxy."""
    proxy = RecordingProxy()
    try:
        fake.reset()
        proc, calls = run([], proxied(clean_env(AWS_EC2_METADATA_SERVICE_ENDPOINT=fake.endpoint + "/"), proxy))
        check(proc.returncode == 0 and calls and calls[0]["source"] == "imds" and not proxy.connections,
              "IMDS requests bypass http_proxy/all_proxy", (proc.stderr, proxy.connections))
        fake.reset()
        proc, calls = run([], proxied(clean_env(AWS_CONTAINER_CREDENTIALS_FULL_URI=fake.endpoint + "/ecs/credentials",
                                                AWS_CONTAINER_AUTHORIZATION_TOKEN=FakeMetadata.ECS_TOKEN), proxy))
        check(proc.returncode == 0 and calls and calls[0]["source"] == "ecs" and not proxy.connections,
              "ECS requests bypass http_proxy/all_proxy", (proc.stderr, proxy.connections))
    finally:
        proxy.stop()
        fake.reset()


def main():
    fake = FakeMetadata()
    try:
        check_no_proxy(fake)

        imds_env = clean_env(AWS_EC2_METADATA_SERVICE_ENDPOINT=fake.endpoint + "/")

        # IMDSv2: token first, then role name and credentials, both with the token.
        proc, calls = run([], imds_env)
        check(proc.returncode == 0 and calls and calls[0]["source"] == "imds", "credentials from IMDSv2",
              proc.stderr + proc.stdout)
        check(calls and calls[0]["access_key_id"] == "ASIAFAKE0001" and calls[0]["session_token"] == "yes",
              "IMDS key id and session token", calls)
        methods = [(m, p) for m, p, _ in fake.log]
        check(methods == [("PUT", "/latest/api/token"), ("GET", "/latest/meta-data/iam/security-credentials/"),
                          ("GET", "/latest/meta-data/iam/security-credentials/" + FakeMetadata.ROLE)],
              "IMDSv2 call sequence", fake.log)
        check(fake.log and fake.log[0][2] is not None and int(fake.log[0][2]) > 0,
              "token request carries X-aws-ec2-metadata-token-ttl-seconds", fake.log)
        check(all(h in fake.issued_tokens for m, _, h in fake.log if m == "GET"),
              "every metadata GET carries the session token", fake.log)
        check(all("fake-secret" not in line and "fake-token" not in line for line in proc.stdout.splitlines()),
              "secret and token never printed", proc.stdout)

        # An instance still booting: the first two token requests get 503, the retries get through.
        fake.reset()
        fake.unavailable = 2
        proc, calls = run([], imds_env)
        check(proc.returncode == 0 and calls and calls[0]["source"] == "imds", "IMDS retried while booting",
              proc.stderr + proc.stdout)
        check([m for m, _, _ in fake.log] == ["PUT", "PUT", "PUT", "GET", "GET"], "two retried token requests",
              fake.log)

        # No IMDSv1 fallback: a refused token request is an error.
        fake.reset()
        fake.refuse_token = True
        proc, calls = run([], imds_env)
        check(proc.returncode == 1 and not calls, "refused IMDSv2 token -> error, no v1 fallback", proc.stdout)
        check(all(m == "PUT" for m, _, _ in fake.log), "no metadata GET without a token", fake.log)

        # Disabled: nothing is asked.
        fake.reset()
        proc, calls = run([], dict(imds_env, AWS_EC2_METADATA_DISABLED="true"))
        check(proc.returncode == 1 and "no AWS credentials" in proc.stderr and not fake.log,
              "AWS_EC2_METADATA_DISABLED=true skips IMDS", proc.stderr + str(fake.log))

        # Refresh: 6 minutes of validity. Default margin (5 min): the second call reuses them.
        fake.reset()
        proc, calls = run(["--repeat", "2", "--interval", "1.5"], imds_env)
        ids = [c["access_key_id"] for c in calls]
        check(proc.returncode == 0 and ids == ["ASIAFAKE0001", "ASIAFAKE0001"] and fake.serial == 1,
              "default margin: still-fresh credentials are cached", (ids, fake.serial))
        # A margin of 359 s: 1.5 s later they are inside the margin and fetched again.
        fake.reset()
        proc, calls = run(["--repeat", "3", "--interval", "1.5", "--refresh-margin", "359",
                           "--min-refresh-interval", "0"], imds_env)
        ids = [c["access_key_id"] for c in calls]
        check(proc.returncode == 0 and ids == ["ASIAFAKE0001", "ASIAFAKE0002", "ASIAFAKE0003"] and fake.serial == 3,
              "credentials inside the refresh margin are fetched again", (ids, fake.serial, proc.stderr))

        # ECS full URI with the authorization token from the variable ...
        fake.reset()
        ecs_env = clean_env(AWS_CONTAINER_CREDENTIALS_FULL_URI=fake.endpoint + "/ecs/credentials?x=1",
                            AWS_CONTAINER_AUTHORIZATION_TOKEN=FakeMetadata.ECS_TOKEN,
                            AWS_EC2_METADATA_SERVICE_ENDPOINT=fake.endpoint)
        proc, calls = run([], ecs_env)
        check(proc.returncode == 0 and calls and calls[0]["source"] == "ecs" and
              calls[0]["access_key_id"] == "ASIAFAKE0001", "credentials from the ECS endpoint",
              proc.stderr + proc.stdout)
        check(fake.log == [("GET", "/ecs/credentials?x=1", FakeMetadata.ECS_TOKEN)],
              "ECS request carries the Authorization token (and ECS comes before IMDS)", fake.log)

        # ... and from the token file (preferred over the variable).
        fake.reset()
        token_file = os.path.join(os.environ.get("S3CSEFS_TEST_TMPDIR", "/tmp"), "ecs-token")
        with open(token_file, "w") as f:
            f.write(FakeMetadata.ECS_TOKEN + "\n")
        proc, calls = run([], dict(ecs_env, AWS_CONTAINER_AUTHORIZATION_TOKEN="stale-token",
                                   AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=token_file))
        check(proc.returncode == 0 and calls and calls[0]["source"] == "ecs", "ECS token from the token file",
              proc.stderr)

        # A wrong token: the endpoint refuses, the chain reports it (no fall-through to IMDS).
        fake.reset()
        proc, calls = run([], dict(ecs_env, AWS_CONTAINER_AUTHORIZATION_TOKEN="wrong"))
        check(proc.returncode == 1 and "401" in proc.stderr and all(p.startswith("/ecs/") for _, p, _ in fake.log),
              "ECS with a wrong token fails without trying IMDS", proc.stderr + str(fake.log))
    finally:
        fake.stop()

    finish()


if __name__ == "__main__":
    main()
