#!/usr/bin/env bash
# Reproduction (no Samba needed) of the parallel-read hang found through smbd: THREADS threads pread()
# 1 MiB chunks at ascending offsets of one encrypted file on the mount, as smbd's aio thread pool does
# for a Windows client with 10 reads in flight. Prints per thread count whether the read finished
# within 60 s and matched the source (sha256).
#   tests/lib/with-stack env S3CSEFS_BUILD_DIR=build tests/samba/repro_parallel_read.sh [MIB [THREADS...]]
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
src_dir=$(cd "$(dirname "$0")/../.." && pwd)
. "$src_dir/tests/lib/mount.sh"
mib=${1:-50}
shift || true
[ $# -gt 0 ] || set -- 1 2 4 10
mnt=$S3CSEFS_TEST_TMPDIR/mnt
s3csefs_mount "$S3CSEFS_TEST_BUCKET:/repro" "$mnt" || exit 1
trap 's3csefs_unmount "$mnt" >/dev/null 2>&1' EXIT
head -c $((mib << 20)) /dev/urandom >"$S3CSEFS_TEST_TMPDIR/src"
cp "$S3CSEFS_TEST_TMPDIR/src" "$mnt/x.bak" || exit 1
want=$(sha256sum <"$S3CSEFS_TEST_TMPDIR/src" | cut -d' ' -f1)
status=0
for threads in "$@"; do
    # In the background and polled: a reader stuck on an unanswered FUSE request cannot be killed
    # (timeout would wait for it forever); it is released when the daemon is killed at exit.
    "${S3CSEFS_PYTHON:-python3}" - "$mnt/x.bak" "$threads" >"$S3CSEFS_TEST_TMPDIR/got" 2>&1 <<'PYEOF' &
import hashlib, os, sys, threading
path, count = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDONLY)
size = os.fstat(fd).st_size
offsets = list(range(0, size, 1 << 20))[::-1]
lock, out = threading.Lock(), bytearray(size)
def reader():
    while True:
        with lock:
            if not offsets:
                return
            offset = offsets.pop()
        data = os.pread(fd, 1 << 20, offset)
        out[offset:offset + len(data)] = data
threads = [threading.Thread(target=reader) for _ in range(count)]
for t in threads: t.start()
for t in threads: t.join()
print(hashlib.sha256(out).hexdigest())
PYEOF
    reader=$!
    for _ in $(seq 600); do kill -0 "$reader" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$reader" 2>/dev/null; then
        echo "$threads threads: HUNG (no answer in 60 s); stopping the daemon"
        status=1
        break
    fi
    wait "$reader"
    if [ "$(cat "$S3CSEFS_TEST_TMPDIR/got")" = "$want" ]; then echo "$threads threads: ok"
    else echo "$threads threads: WRONG DATA or error: $(head -c 300 "$S3CSEFS_TEST_TMPDIR/got")"; status=1; fi
done
exit "$status"
