#!/usr/bin/env bash
# Read benchmark through a real mount against the local moto stack (prints figures; never fails on
# speed). Run:  tests/lib/with-stack bench/read_bench.sh        (S3CSEFS_BUILD_DIR = the build dir)
#   READ_BENCH_MB       size of the encrypted test object (default 1024)
#   READ_BENCH_RANDOM   number of random 4 KiB reads (default 300; moto serves ranges slowly)
#   READ_BENCH_OPTIONS  extra mount options (e.g. max_memory=256M,prefetch_max=128M)
#   READ_BENCH_SEQ_CONFIGS  "|"-separated option sets: one sequential run each (default READ_BENCH_OPTIONS)
#   READ_BENCH_READAHEAD  space-separated read_ahead_kb values (root): each sequential configuration is
#                       read once per value, set on the mount's bdi (default: the kernel's, 128)
#   READ_BENCH_RATE     e.g. 800mbit: after the upload, shape loopback to that rate (tc tbf, root) for
#                       every transfer measured, curl's and the mount's alike. Without it, on a 2-core
#                       machine moto, the daemon and dd share the CPU and the figure measures CPU cost;
#                       with it, the link is the bottleneck, as from S3 (one connection gets ~100-300 MB/s
#                       there), and the figure shows whether the mount keeps the link busy.
# Figures: sequential MB/s through the mount vs a plain curl GET of the same ciphertext from the same
# server; daemon CPU seconds per GiB; daemon peak RSS; random 4 KiB reads per second and bytes fetched
# from S3 per random read (daemon counters, user.s3csefs.stats).
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
src=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
export S3CSEFS_BUILD_DIR=${S3CSEFS_BUILD_DIR:-$src/build}
python=${S3CSEFS_PYTHON:-python3}
. "$src/tests/lib/mount.sh"
mb=${READ_BENCH_MB:-1024}
nrandom=${READ_BENCH_RANDOM:-300}
work=$S3CSEFS_TEST_TMPDIR/read_bench
mnt=$S3CSEFS_TEST_TMPDIR/mnt
mkdir -p "$work" "$mnt" && cd "$work" || exit 2

echo "creating a ${mb} MiB encrypted object (multipart, chained CBC, no stored length) ..."
head -c $((mb * 1024 * 1024 + 5)) /dev/urandom >plain
"$src/tests/tools/ref_cse.py" put plain bench.bak --multipart --part-size $((64 * 1024 * 1024)) || exit 1
size=$(stat -c %s plain)

if [ -n "${READ_BENCH_RATE:-}" ]; then
    command -v tc >/dev/null || { echo "READ_BENCH_RATE needs tc (iproute2)" >&2; exit 2; }
    tc qdisc add dev lo root tbf rate "$READ_BENCH_RATE" burst 256kb latency 100ms || exit 2
    trap 'tc qdisc del dev lo root 2>/dev/null' EXIT
    echo "loopback shaped to $READ_BENCH_RATE (tc tbf)"
fi

read -r curl_bytes curl_s < <(curl -s -o /dev/null -w '%{size_download} %{time_total}\n' \
    --aws-sigv4 "aws:amz:${AWS_REGION}:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$AWS_ENDPOINT_URL/$S3CSEFS_TEST_BUCKET/bench.bak")
echo "curl GET of the ciphertext: $curl_bytes bytes in ${curl_s} s = $(echo "$curl_bytes / $curl_s / 1000000" | bc -l | xargs printf %.1f) MB/s"

# The same bytes as 16 MiB ranged GETs, 4 at a time: what the server delivers for many ranged reads
# (moto re-reads the whole object for every range). The mount streams one GET per sequential reader,
# so the single curl GET is its reference; this figure shows what a ranged prefetcher would get.
ranged_start=$(date +%s.%N)
chunk=$((16 * 1024 * 1024))
for ((off = 0; off < size + 16; off += chunk)); do
    curl -s -o /dev/null -r "$off-$((off + chunk - 1))" --aws-sigv4 "aws:amz:${AWS_REGION}:s3" \
        --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
        "$AWS_ENDPOINT_URL/$S3CSEFS_TEST_BUCKET/bench.bak" &
    (( (off / chunk) % 4 == 3 )) && wait
done
wait
ranged_s=$(echo "$(date +%s.%N) - $ranged_start" | bc -l)
echo "curl 16 MiB ranged GETs x4: $(echo "$size / $ranged_s / 1000000" | bc -l | xargs printf %.1f) MB/s"

daemon_pid() { cat "$(_s3csefs_state_dir)/$(_s3csefs_mount_id "$mnt").pid"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
counter() { getfattr --only-values -n user.s3csefs.stats "$mnt" 2>/dev/null | awk -v n="$1" '$1 == n { print $2 }'; }
hz=$(getconf CLK_TCK)
opts=${READ_BENCH_OPTIONS:-}

# Random 4 KiB reads on a fresh mount (nothing in the page cache).
s3csefs_mount "$S3CSEFS_TEST_BUCKET" "$mnt" "$opts" || exit 1
stat "$mnt/bench.bak" >/dev/null
f0=$(counter bytes_fetched)
r0=$(counter s3_requests)
start=$(date +%s.%N)
"$python" - "$mnt/bench.bak" plain "$nrandom" <<'PY' || echo "RANDOM READ MISMATCH"
import os, random, sys
fd, ref = os.open(sys.argv[1], os.O_RDONLY), open(sys.argv[2], "rb")
size, n = os.fstat(fd).st_size, int(sys.argv[3])
rng = random.Random(1)
for _ in range(n):
    off = rng.randrange(0, size - 4096) // 4096 * 4096
    got = os.pread(fd, 4096, off)
    ref.seek(off)
    if got != ref.read(4096):
        sys.exit("mismatch at %d" % off)
PY
end=$(date +%s.%N)
f1=$(counter bytes_fetched)
r1=$(counter s3_requests)
echo "random 4 KiB reads: $nrandom in $(echo "$end - $start" | bc -l | xargs printf %.2f) s = $(echo "$nrandom / ($end - $start)" | bc -l | xargs printf %.0f) reads/s; fetched $(( (f1 - f0) / nrandom )) bytes and $(echo "($r1 - $r0) / $nrandom" | bc -l | xargs printf %.2f) requests per read"
s3csefs_unmount "$mnt"

# Sequential read on a fresh mount, once per configuration in READ_BENCH_SEQ_CONFIGS ("|"-separated
# mount option sets, e.g. "prefetch_max=64M|max_memory=256M,prefetch_max=128M"; default: $opts).
IFS='|' read -r -a seq_configs <<<"${READ_BENCH_SEQ_CONFIGS:-$opts}"
[ ${#seq_configs[@]} -eq 0 ] && seq_configs=("")
for seq_opts in "${seq_configs[@]}"; do
for ra in ${READ_BENCH_READAHEAD:-default}; do
echo "sequential, mount options: '${seq_opts}', read_ahead_kb: $ra"
s3csefs_mount "$S3CSEFS_TEST_BUCKET" "$mnt" "$seq_opts" || exit 1
if [ "$ra" != default ]; then
    echo "$ra" >"/sys/class/bdi/$(mountpoint -d "$mnt")/read_ahead_kb" || { echo "cannot set read_ahead_kb" >&2; exit 2; }
fi
pid=$(daemon_pid)
stat "$mnt/bench.bak" >/dev/null
c0=$(cpu_ticks "$pid")
# Timed like the curl GET: into /dev/null (a cmp in the pipe would take CPU from the 2 cores the
# daemon, moto and dd share). The content is compared afterwards, from a fresh open of the file.
start=$(date +%s.%N)
dd if="$mnt/bench.bak" of=/dev/null bs=1M 2>/dev/null
end=$(date +%s.%N)
c1=$(cpu_ticks "$pid")
sync && echo 1 >/proc/sys/vm/drop_caches 2>/dev/null
cmp -s "$mnt/bench.bak" plain && same=yes || same=NO
secs=$(echo "$end - $start" | bc -l)
mbps=$(echo "$size / $secs / 1000000" | bc -l)
echo "sequential read through the mount: $size bytes in $(printf %.2f "$secs") s = $(printf %.1f "$mbps") MB/s (content equal: $same)"
echo "  = $(echo "100 * $mbps / ($curl_bytes / $curl_s / 1000000)" | bc -l | xargs printf %.0f)% of the single curl GET," \
     "$(echo "100 * $mbps / ($size / $ranged_s / 1000000)" | bc -l | xargs printf %.0f)% of the ranged curl GETs"
echo "daemon CPU: $(echo "($c1 - $c0) / $hz / ($size / 1073741824)" | bc -l | xargs printf %.2f) s per GiB"
echo "daemon peak RSS: $(awk '/VmHWM/ { print $2, $3 }' "/proc/$pid/status")"
echo "memory (from stats): $(getfattr --only-values -n user.s3csefs.stats "$mnt" 2>/dev/null | grep -i mem | tr '\n' ' ')"
r_total=$(counter s3_requests)
echo "  S3 requests on this mount: $r_total"
s3csefs_unmount "$mnt"
done
done
