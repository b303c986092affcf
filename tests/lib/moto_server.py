#!/usr/bin/env python3
"""Start moto's server with two fixes to its request authentication.

  moto_server.py --port-file FILE   serve on a free loopback port, written to FILE once listening
  moto_server.py [-H HOST] [-p PORT] ...   the command line of `python -m moto.server`


moto 5.2 verifies S3 signatures against werkzeug's *decoded* request URL: a request signed over
`?delimiter=%2F&prefix=dir%2F` is checked as `?delimiter=/&prefix=dir/`, so every listing with a
delimiter or a prefix containing "/" fails with SignatureDoesNotMatch, even from boto3/awscli
(`aws s3 ls s3://bucket/` fails). Real S3 computes the canonical request from the URI as the client
encoded it. This launcher makes moto do the same by verifying against the raw request target
(werkzeug's RAW_URI) and otherwise leaves moto untouched. Used by tests/lib/with-stack.
"""
import sys
from urllib.parse import parse_qs, urlparse

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import _RESTError
from moto.iam.access_control import S3IAMRequest
from moto.s3.exceptions import S3AccessDeniedError

_original_check = ActionAuthenticatorMixin._authenticate_and_authorize_action


class MissingAuthenticationToken(_RESTError):
    code = 403

    def __init__(self):
        super().__init__("MissingAuthenticationToken", "Request is missing Authentication Token")


def _refuse_unsigned(self, iam_request_cls):
    """moto 5.2 answers a request without an Authorization header with a 500 (KeyError) once
    signatures are checked; S3 answers 403 AccessDenied, the JSON services MissingAuthenticationToken.
    Presigned requests (signature in the query) are left to moto."""
    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        return
    headers = getattr(self, "headers", None) or {}
    if headers.get("Authorization") or headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
        return
    query = parse_qs(urlparse(getattr(self, "uri", "") or "").query)
    if "X-Amz-Signature" in query or "Signature" in query:
        return
    if iam_request_cls is S3IAMRequest:
        raise S3AccessDeniedError()
    raise MissingAuthenticationToken()


def _check_against_raw_uri(self, iam_request_cls, resource="*"):
    _refuse_unsigned(self, iam_request_cls)
    request = getattr(self, "request", None)
    environ = getattr(request, "environ", None) or {}
    raw_target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    decoded_uri = getattr(self, "uri", None)
    if not raw_target or decoded_uri is None:
        return _original_check(self, iam_request_cls, resource)
    parsed = urlparse(decoded_uri)
    if raw_target.startswith("/"):
        # RAW_URI is a latin-1 "WSGI string"; the request target itself is ASCII (percent-encoded).
        self.uri = f"{parsed.scheme}://{parsed.netloc}{raw_target}"
    try:
        return _original_check(self, iam_request_cls, resource)
    finally:
        # The rest of moto (key name parsing, ...) expects the decoded URL.
        self.uri = decoded_uri


ActionAuthenticatorMixin._authenticate_and_authorize_action = _check_against_raw_uri

def serve(port_file):
    """Serve moto on a loopback port chosen by the kernel, and write that port to port_file once the
    socket is listening: no window in which another process can take the port."""
    import os
    import signal
    import socket

    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    os.environ["MOTO_PORT"] = str(port)   # moto builds some URLs (queue URLs, ...) from it

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", port, app, threaded=True, fd=listener.fileno())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    with open(port_file + ".partial", "w") as f:
        f.write(f"{port}\n")
    os.rename(port_file + ".partial", port_file)
    print(f" * moto serving on http://127.0.0.1:{port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--port-file":
        serve(sys.argv[2])
    else:
        # Same command line as `python -m moto.server` (-H HOST -p PORT ...).
        from moto.server import main

        sys.argv[0] = "moto_server"
        main()
