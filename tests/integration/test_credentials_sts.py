#!/usr/bin/env python3
"""Credentials that come from STS, against moto with signature checking on (run through tests/lib/with-stack):

- a profile with role_arn + source_profile (static keys in the credentials file) -> AssumeRole, with no HOME
  and the files given as options, and with the files given through AWS_CONFIG_FILE/AWS_SHARED_CREDENTIALS_FILE;
- a profile with role_arn + credential_source = Environment;
- the source profile holding the right key id but a wrong secret -> SignatureDoesNotMatch from STS;
- AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN -> AssumeRoleWithWebIdentity (unsigned), and the same
  through a profile's web_identity_token_file;
- an explicit profile wins over credentials in the environment.
The role is created with boto3 first. Our side is tests/tools/credentials_check, which prints the source and
the access key id only.
"""
import json
import os
import subprocess
import sys

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import boto3
from moto.server import ThreadedMotoServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from itest import check, find_tool, finish  # noqa: E402


def tool():
    path = os.path.join(os.environ["S3CSEFS_BUILD_DIR"], "tests", "credentials_check")
    if not os.access(path, os.X_OK):
        sys.exit("credentials_check not built at %s" % path)
    return path


def run(args, env):
    proc = subprocess.run([tool()] + args, env=env, capture_output=True, text=True, timeout=120)
    fields = {}
    for line in proc.stdout.splitlines():
        if line.startswith("source="):
            fields = dict(item.split("=", 1) for item in line.split())
    return proc, fields


class RecordingSts:
    """A loopback fake STS that records each request and answers AssumeRoleWithWebIdentity."""

    ANSWER = ("<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
              "<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIAFAKEWEBIDENTITY</AccessKeyId>"
              "<SecretAccessKey>fakesecret</SecretAccessKey><SessionToken>faketoken</SessionToken>"
              "<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
              "</AssumeRoleWithWebIdentityResponse>")

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                outer.requests.append({
                    "method": "POST",
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "form": {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()},
                })
                data = outer.ANSWER.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def base_env(**extra):
    """The stack's environment without its static keys (so the chain must find another source)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HOME")}
    env.update(extra)
    return env


def main():
    tmp = os.environ["S3CSEFS_TEST_TMPDIR"]
    key_id = os.environ["AWS_ACCESS_KEY_ID"]
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    endpoint = os.environ["AWS_ENDPOINT_URL"]

    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"Federated": "accounts.example.test"},
         "Action": "sts:AssumeRoleWithWebIdentity"}]}
    role_arn = iam.create_role(RoleName="s3csefs-backup", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    print("role", role_arn)

    credentials_file = os.path.join(tmp, "credentials")
    config_file = os.path.join(tmp, "config")
    token_file = os.path.join(tmp, "web-identity-token")
    with open(credentials_file, "w") as f:
        f.write("[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (key_id, secret))
        f.write("[badbase]\naws_access_key_id = %s\naws_secret_access_key = wrong-%s\n" % (key_id, secret))
        f.write("[static]\naws_access_key_id = AKIDSTATICPROFILE\naws_secret_access_key = s\n")
    with open(config_file, "w") as f:
        f.write("[profile assumer]\nrole_arn = %s\nsource_profile = base\nrole_session_name = s3csefs-it\n"
                "region = eu-west-3\n" % role_arn)
        f.write("[profile badassumer]\nrole_arn = %s\nsource_profile = badbase\n" % role_arn)
        f.write("[profile envassumer]\nrole_arn = %s\ncredential_source = Environment\n" % role_arn)
        f.write("[profile webassumer]\nrole_arn = %s\nweb_identity_token_file = %s\n" % (role_arn, token_file))
    with open(token_file, "w") as f:
        f.write("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzM2NzZWZzIn0.c2lnbmF0dXJl\n")

    files = ["--credentials-file", credentials_file, "--config-file", config_file]

    # AssumeRole through source_profile, no HOME, files as options.
    no_region_env = {k: v for k, v in base_env().items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    proc, out = run(["--profile", "assumer"] + files, no_region_env)
    check(proc.returncode == 0 and out.get("source") == "assume-role", "assume-role via source_profile",
          proc.stderr + proc.stdout)
    check(out.get("access_key_id", "").startswith("ASIA") and out.get("access_key_id") != key_id,
          "assumed credentials are temporary ones", out)
    check(out.get("session_token") == "yes" and out.get("expires_in", "never") != "never",
          "assumed credentials carry a session token and an expiry", out)
    check("region=eu-west-3" in proc.stdout, "region taken from the profile", proc.stdout)

    # The assumed credentials work: GetCallerIdentity signed with them names the role and session.
    proc, out = run(["--profile", "assumer", "--caller-identity"] + files, base_env())
    check(proc.returncode == 0 and
          "arn=arn:aws:sts::123456789012:assumed-role/s3csefs-backup/s3csefs-it" in proc.stdout.splitlines(),
          "GetCallerIdentity with the assumed credentials names role and session", proc.stdout + proc.stderr)
    proc, out = run(["--caller-identity"], dict(base_env(), AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret))
    check(proc.returncode == 0 and out.get("source") == "env" and
          "arn=arn:aws:iam::123456789012:user/s3csefs-test" in proc.stdout.splitlines(),
          "GetCallerIdentity with the environment keys names the test user", proc.stdout + proc.stderr)
    proc, out = run(["--caller-identity"], dict(base_env(), AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY="bad"))
    check(proc.returncode == 1 and "SignatureDoesNotMatch" in proc.stderr,
          "GetCallerIdentity with a wrong secret -> SignatureDoesNotMatch", proc.stderr)

    # Same through the AWS_* variables and AWS_PROFILE.
    proc, out = run([], base_env(AWS_CONFIG_FILE=config_file, AWS_SHARED_CREDENTIALS_FILE=credentials_file,
                                 AWS_PROFILE="assumer"))
    check(proc.returncode == 0 and out.get("source") == "assume-role", "assume-role via AWS_PROFILE and file variables",
          proc.stderr)

    # Wrong secret in the source profile: STS must refuse the signature.
    proc, out = run(["--profile", "badassumer"] + files, base_env())
    check(proc.returncode == 1 and "SignatureDoesNotMatch" in proc.stderr,
          "STS AssumeRole signed with a wrong secret -> SignatureDoesNotMatch", proc.stderr + proc.stdout)
    check(secret not in proc.stderr and secret not in proc.stdout, "no secret in the tool's output")

    # credential_source = Environment: the environment keys sign the AssumeRole call.
    proc, out = run(["--profile", "envassumer"] + files, dict(base_env(), AWS_ACCESS_KEY_ID=key_id,
                                                              AWS_SECRET_ACCESS_KEY=secret))
    check(proc.returncode == 0 and out.get("source") == "assume-role", "assume-role with credential_source=Environment",
          proc.stderr)
    proc, out = run(["--profile", "envassumer"] + files, dict(base_env(), AWS_ACCESS_KEY_ID=key_id,
                                                              AWS_SECRET_ACCESS_KEY="wrong"))
    check(proc.returncode == 1 and "SignatureDoesNotMatch" in proc.stderr,
          "credential_source=Environment with a wrong secret -> SignatureDoesNotMatch", proc.stderr)

    # An explicit profile wins over the environment; without one the environment wins.
    env_with_keys = dict(base_env(), AWS_ACCESS_KEY_ID="AKIDFROMENV", AWS_SECRET_ACCESS_KEY="x")
    proc, out = run(["--profile", "static"] + files, env_with_keys)
    check(out.get("source") == "profile" and out.get("access_key_id") == "AKIDSTATICPROFILE",
          "explicit profile beats environment keys", proc.stdout + proc.stderr)
    proc, out = run(files, env_with_keys)
    check(out.get("source") == "env" and out.get("access_key_id") == "AKIDFROMENV",
          "environment keys win without an explicit profile", proc.stdout + proc.stderr)

    # Web identity. AssumeRoleWithWebIdentity is unsigned, which moto in signature-checking mode cannot
    # serve (it requires an Authorization header on every call), so this part uses a second moto without
    # authentication, in this process, plus a recording fake STS that checks what exactly we send.
    web_moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    web_moto.start()
    try:
        host, port = web_moto.get_host_and_port()
        web_endpoint = "http://%s:%d" % (host, port)
        web_iam = boto3.client("iam", endpoint_url=web_endpoint, region_name="us-east-1",
                               aws_access_key_id="x", aws_secret_access_key="x")
        web_role = web_iam.create_role(RoleName="s3csefs-web",
                                       AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        sts_option = ["--sts-endpoint", web_endpoint]
        proc, out = run(sts_option, base_env(AWS_WEB_IDENTITY_TOKEN_FILE=token_file, AWS_ROLE_ARN=web_role,
                                             AWS_ROLE_SESSION_NAME="s3csefs-web"))
        check(proc.returncode == 0 and out.get("source") == "web-identity", "web identity from the environment",
              proc.stderr + proc.stdout)
        check(out.get("access_key_id", "").startswith("ASIA") and out.get("session_token") == "yes",
              "web identity gives temporary credentials", out)
        proc, out = run(["--profile", "webassumer"] + files + sts_option, base_env())
        check(proc.returncode == 0 and out.get("source") == "web-identity", "web identity from a profile",
              proc.stderr + proc.stdout)
    finally:
        web_moto.stop()

    with open(token_file) as f:
        token = f.read().strip()
    fake = RecordingSts()
    try:
        proc, out = run(["--sts-endpoint", fake.endpoint],
                        base_env(AWS_WEB_IDENTITY_TOKEN_FILE=token_file, AWS_ROLE_ARN=role_arn,
                                 AWS_ROLE_SESSION_NAME="s3csefs-web"))
    finally:
        fake.stop()
    check(proc.returncode == 0 and out.get("access_key_id") == "ASIAFAKEWEBIDENTITY",
          "web identity answer parsed", proc.stderr + proc.stdout)
    sent = fake.requests[0] if fake.requests else {}
    form = sent.get("form", {})
    check(len(fake.requests) == 1 and sent.get("method") == "POST", "one POST to STS", fake.requests)
    check("authorization" not in sent.get("headers", {}), "AssumeRoleWithWebIdentity is unsigned", sent)
    check(form.get("Action") == "AssumeRoleWithWebIdentity" and form.get("RoleArn") == role_arn and
          form.get("WebIdentityToken") == token and form.get("RoleSessionName") == "s3csefs-web" and
          form.get("Version") == "2011-06-15", "form fields of AssumeRoleWithWebIdentity", form)

    # A missing token file is a clear error, not a silent fall-through.
    proc, out = run([], base_env(AWS_WEB_IDENTITY_TOKEN_FILE=token_file + ".missing", AWS_ROLE_ARN=role_arn))
    check(proc.returncode == 1 and "web identity token file" in proc.stderr, "missing web identity token file",
          proc.stderr)

    # Nothing configured at all.
    proc, out = run([], base_env())
    check(proc.returncode == 1 and "no AWS credentials" in proc.stderr, "no source -> clear error", proc.stderr)

    finish()


if __name__ == "__main__":
    main()
