#!/usr/bin/env bash
# Write benchmark: streams files of the given sizes through a mount with default settings and prints,
# per file: wall time, MB/s, the daemon's CPU seconds per GiB (utime+stime from /proc/PID/stat), its
# peak RSS (VmHWM) and the bytes it wrote to local disk (write_bytes from /proc/PID/io: the spool and
# staged parts; zero for a sequential write).
#
#   bench/write_bench.sh null [SIZE_MIB...]     no S3 at all (backend=null): the daemon's own cost
#   tests/lib/with-stack bench/write_bench.sh moto [SIZE_MIB...]   against the local moto server
#
# Default sizes: 1024 and 4096 MiB (moto keeps objects in memory: prefer 1024 there).
# Environment: S3CSEFS_BUILD_DIR (default build), S3CSEFS_BENCH_OPTIONS (extra -o options),
# S3CSEFS_BENCH_SOURCE (default /dev/zero; any file or device to copy from).
set -uo pipefail
mode=${1:-null}
shift || true
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(1024 4096)
src_dir=$(cd "$(dirname "$0")/.." && pwd)
build=${S3CSEFS_BUILD_DIR:-$src_dir/build}
bin=$build/fs/s3csefs
source_file=${S3CSEFS_BENCH_SOURCE:-/dev/zero}
[ -x "$bin" ] || { echo "write_bench: $bin not built" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/s3csefs-bench.XXXXXX")
mnt=$tmp/mnt
mkdir -p "$mnt"
case $mode in
null)
    source_spec=bench
    options="backend=null"
    ;;
moto)
    : "${AWS_ENDPOINT_URL:?run moto mode through tests/lib/with-stack}"
    source_spec="$S3CSEFS_TEST_BUCKET:/bench"
    options="endpoint=$AWS_ENDPOINT_URL,kms_key_id=$S3CSEFS_TEST_KEY_ARN"
    ;;
*)
    echo "usage: write_bench.sh null|moto [SIZE_MIB...]" >&2
    exit 2
    ;;
esac
[ -n "${S3CSEFS_BENCH_OPTIONS:-}" ] && options="$options,$S3CSEFS_BENCH_OPTIONS"

"$bin" "$source_spec" "$mnt" -f -o "$options" >"$tmp/daemon.log" 2>&1 &
pid=$!
cleanup() {
    fusermount3 -u "$mnt" 2>/dev/null
    for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid"
    rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 200); do
    awk -v t="$mnt" '$2 == t { f = 1 } END { exit !f }' /proc/self/mounts && break
    kill -0 "$pid" 2>/dev/null || { echo "daemon died:"; cat "$tmp/daemon.log"; exit 1; }
    sleep 0.1
done

clock_ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
disk_written() { awk '/^write_bytes/ { print $2 }' "/proc/$pid/io"; }

printf '%-6s %10s %9s %9s %14s %14s %14s\n' mode size_MiB wall_s MB_per_s cpu_s_per_GiB peak_rss_MiB local_disk_MiB
for size in "${sizes[@]}"; do
    cpu0=$(cpu_ticks); disk0=$(disk_written); t0=$(date +%s.%N)
    if ! dd if="$source_file" of="$mnt/bench-$size.bak" bs=1M count="$size" status=none; then
        echo "write of $size MiB failed; daemon log:"; tail -5 "$tmp/daemon.log"; exit 1
    fi
    t1=$(date +%s.%N); cpu1=$(cpu_ticks); disk1=$(disk_written)
    hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
    awk -v m="$mode" -v s="$size" -v t0="$t0" -v t1="$t1" -v c0="$cpu0" -v c1="$cpu1" -v hz="$clock_ticks" \
        -v hwm="$hwm" -v d0="$disk0" -v d1="$disk1" 'BEGIN {
        wall = t1 - t0; cpu = (c1 - c0) / hz; gib = s / 1024;
        printf "%-6s %10d %9.2f %9.1f %14.2f %14.1f %14.1f\n", m, s, wall, s * 1048576 / 1e6 / wall,
               cpu / gib, hwm / 1024, (d1 - d0) / 1048576 }'
done
grep -E "completed|failed" "$tmp/daemon.log" | tail -n "${#sizes[@]}"
