#!/usr/bin/env bash
# Keeps scripts/demo working: runs its body (mount, copy sample.bak in, check the envelope with
# ref_cse.py verify, decrypt independently, read back through the mount, compare SHA-256, unmount)
# inside this test's stack, with a 12 MiB sample so that the upload is multipart.
set -uo pipefail
: "${S3CSEFS_TEST_TMPDIR:?run me through tests/lib/with-stack}"
: "${S3CSEFS_BUILD_DIR:?set S3CSEFS_BUILD_DIR to a build tree that has fs/s3csefs}"
root=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
exec "$root/scripts/demo" --inside-stack --size 12
