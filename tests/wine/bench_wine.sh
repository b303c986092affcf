#!/usr/bin/env bash
# Throughput of SQL Server's backup/restore pattern under Wine on the mount, next to plain Linux dd on
# the same mount and Wine on local disk, so the cost of Wine and of the pattern itself can be told apart.
# Prints figures; judges nothing. Against the local moto stack the figures mostly measure moto.
#   S3CSEFS_BUILD_DIR=<build> tests/lib/with-stack tests/wine/bench_wine.sh [SIZE_MIB]   (default 256)
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
: "${S3CSEFS_BUILD_DIR:?S3CSEFS_BUILD_DIR is not set}"
src_dir=$(cd "$(dirname "$0")/../.." && pwd)
. "$src_dir/tests/lib/mount.sh"
. "$src_dir/tests/wine/wine_env.sh"
wine_env_setup "$S3CSEFS_BUILD_DIR/wine" || exit 1

size_mib=${1:-256}
size=$((size_mib * 1048576))
mnt=$S3CSEFS_TEST_TMPDIR/mnt
local_dir=$S3CSEFS_TEST_TMPDIR/local
mkdir -p "$local_dir"
s3csefs_mount "$S3CSEFS_TEST_BUCKET:/bench" "$mnt" || exit 1

rate() {   # rate LABEL COMMAND...: runs COMMAND, prints MiB/s over size_mib
    local label=$1 start end
    shift
    start=$(date +%s.%N)
    if ! "$@" >/dev/null; then echo "$label: FAILED"; return 1; fi
    end=$(date +%s.%N)
    # Another process unmounting the mount would make the figures meaningless (writes to the bare dir).
    mountpoint -q "$mnt" || { echo "$label: the mount disappeared"; exit 1; }
    awk -v l="$label" -v s="$start" -v e="$end" -v m="$size_mib" \
        'BEGIN { printf "%-44s %6d MiB in %6.2f s = %7.1f MiB/s\n", l, m, e - s, m / (e - s) }'
}
drop_page_cache() { sync; echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

echo "sqlbackup_sim under $("$WINE" --version), $(nproc) cores"
rate "wine write, local disk" sqlbackup_sim write "$(wine_path "$local_dir/db.bak")" "$size" 1
rate "wine write (backup pattern), mount" sqlbackup_sim write "$(wine_path "$mnt/db.bak")" "$size" 1
rate "dd bs=1M conv=fsync, mount" dd if="$local_dir/db.bak" of="$mnt/dd.bak" bs=1M conv=fsync status=none
drop_page_cache
rate "wine read (restore pattern), mount" sqlbackup_sim read "$(wine_path "$mnt/db.bak")" "$size" 1
drop_page_cache
rate "cat > /dev/null, mount" cat "$mnt/dd.bak"
getfattr -n user.s3csefs.stats --only-values "$mnt" 2>/dev/null | grep -E '^(spool_fallbacks|memory_peak|parts_uploaded) '
wine_env_finish
s3csefs_unmount "$mnt"
