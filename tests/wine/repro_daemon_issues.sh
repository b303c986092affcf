#!/usr/bin/env bash
# The two daemon problems test_wine_backup.sh found (docs/wine.md, "Results"), reproduced with plain
# Linux system calls, without Wine, so the daemon can be fixed and checked quickly. Prints what happens;
# exits 0 only when both behave as they should.
#   S3CSEFS_BUILD_DIR=<build> tests/lib/with-stack tests/wine/repro_daemon_issues.sh
# 1. Wine's compressed-backup sequence: ftruncate(0); pwrite 1 zero byte at E; ftruncate(E); in-order
#    1 MiB writes up to the next 512-byte boundary past S; ftruncate(S); fsync; close. Must succeed and
#    store exactly S bytes without the spool.
# 2. With every CompleteMultipartUpload failing (fault=complete:0, mounted with fsync=complete as
#    docs/wine.md recommends for Wine): writes, fsync, then the first close
#    (the wineserver's, whose result Wine ignores). fsync must already report the failure.
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
src_dir=$(cd "$(dirname "$0")/../.." && pwd)
. "$src_dir/tests/lib/mount.sh"
PY=${S3CSEFS_PYTHON:-python3}
status=0

mnt=$S3CSEFS_TEST_TMPDIR/mnt
s3csefs_mount "$S3CSEFS_TEST_BUCKET:/repro" "$mnt" || exit 2
"$PY" - "$mnt/comp.bak" $((96 << 20)) $(((40 << 20) + 1234)) <<'PYEOF' || status=1
import os, sys
path, estimate, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
padded = (size + 511) // 512 * 512
data = os.urandom(1 << 20)
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o666)
os.ftruncate(fd, 0)                 # CREATE_ALWAYS
os.pwrite(fd, b"\0", estimate)      # SetEndOfFile(estimate): one zero byte at the new size...
os.ftruncate(fd, estimate)          # ...then truncate to it
for off in range(0, padded, 1 << 20):
    os.pwrite(fd, data[:min(1 << 20, padded - off)], off)
try:
    os.ftruncate(fd, size)          # SetEndOfFile(size): 302 bytes below the written end
    os.fsync(fd)
    os.close(fd)
except OSError as e:
    sys.exit(f"1: compressed sequence: {e}")
got = os.stat(path).st_size
print(f"1: compressed sequence: ok, size {got}")
sys.exit(0 if got == size else 1)
PYEOF
getfattr -n user.s3csefs.stats --only-values "$mnt" 2>/dev/null | grep '^spool_fallbacks'
s3csefs_unmount "$mnt"

fmnt=$S3CSEFS_TEST_TMPDIR/mnt-fault
s3csefs_mount "$S3CSEFS_TEST_BUCKET:/repro" "$fmnt" fault=complete:0,fsync=complete || exit 2
"$PY" - "$fmnt/lost.bak" <<'PYEOF' || status=1
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o666)
server_fd = os.dup(fd)              # Wine: the wineserver holds its own descriptor and closes it first
for off in range(0, 24 << 20, 1 << 20):
    os.pwrite(fd, os.urandom(1 << 20), off)
try:
    os.fsync(fd)
    print("2: fsync returned 0 although the upload cannot complete")
    failed_early = False
except OSError as e:
    print(f"2: fsync reports the failure: {e}")
    failed_early = True
for name, d in (("wineserver's close (result ignored by Wine)", server_fd), ("program's close", fd)):
    try:
        os.close(d)
        print(f"2: {name}: ok")
    except OSError as e:
        print(f"2: {name}: {e}")
sys.exit(0 if failed_early else 1)
PYEOF
s3csefs_unmount "$fmnt"
exit "$status"
