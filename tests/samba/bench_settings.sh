#!/usr/bin/env bash
# Benchmark: which smb.conf share settings keep s3csefs uploads streaming, and how fast each is.
# For every setting below, starts a fresh smbd on the mount with that one setting added to the share
# (tests/samba/smb.conf.in), then: smbclient put, Windows-like put (tests/samba/win_client.py: end of
# file set first, 10 x 1 MiB writes in flight), smbclient get; prints one table row each with the
# throughput, the change of the daemon's spool_fallbacks counter (user.s3csefs.stats xattr) and
# whether the data read back equal. Prints figures only; correctness is tests/integration/test_samba_*.
#
#   tests/lib/with-stack tests/samba/bench_settings.sh [SETTING...]
#       SETTING like "aio write size = 0"; "default" means no extra setting. Without arguments, the list
#       below. Environment: BENCH_SIZE_MIB (default 200), BENCH_READ=0 to skip the reads,
#       S3CSEFS_BUILD_DIR (the daemon).
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
src_dir=$(cd "$(dirname "$0")/../.." && pwd)
. "$src_dir/tests/lib/mount.sh"
. "$src_dir/tests/samba/smbd.sh"

if [ $# -eq 0 ]; then
    set -- "default" "aio write size = 0" "aio read size = 0" "strict sync = no" "sync always = yes" \
        "strict allocate = yes" "smb2 max write = 65536" "store dos attributes = no" \
        "vfs objects = acl_xattr"
fi
MIB=1048576
size=$((${BENCH_SIZE_MIB:-200} * MIB))
mnt=$S3CSEFS_TEST_TMPDIR/mnt
work=$S3CSEFS_TEST_TMPDIR/bench
mkdir -p "$mnt" "$work"
export SAMBA_CLIENT_TIMEOUT=${SAMBA_CLIENT_TIMEOUT:-600}
trap 'samba_stop; s3csefs_unmount "$mnt" >/dev/null 2>&1' EXIT
s3csefs_mount "$S3CSEFS_TEST_BUCKET:/bench" "$mnt" allow_other || exit 1
head -c "$size" /dev/urandom >"$work/src"
src_sha=$(sha256sum <"$work/src" | cut -d' ' -f1)

spool_fallbacks() {
    getfattr -n user.s3csefs.stats --only-values "$mnt" 2>/dev/null | awk '$1 == "spool_fallbacks" { print $2 }'
}
# Runs a command; prints "<MiB/s> <spool fallbacks during it>" or "FAILED <n>".
measure() {
    local before after start ns
    before=$(spool_fallbacks)
    start=$(date +%s%N)
    if "$@" >"$work/last.out" 2>&1; then
        ns=$(($(date +%s%N) - start))
        after=$(spool_fallbacks)
        awk -v b="$size" -v ns="$ns" -v d="$((after - before))" 'BEGIN { printf "%.1f %d", b / 1048576 / (ns / 1e9), d }'
    else
        after=$(spool_fallbacks)
        printf 'FAILED %d' "$((after - before))"
        sed 's/^/    # /' "$work/last.out" >&2
    fi
}
same() { [ -f "$1" ] && [ "$(sha256sum <"$1" | cut -d' ' -f1)" = "$src_sha" ] && echo yes || echo NO; }

echo "# $((size / MIB)) MiB per transfer; MiB/s and spool fallbacks per operation; daemon $S3CSEFS_BUILD_DIR"
printf '%-28s | %-22s | %-22s | %-14s\n' "share setting" "smbclient put (MiB/s, spool)" \
    "win put (MiB/s, spool)" "smbclient get"
n=0
for setting in "$@"; do
    n=$((n + 1))
    if [ "$setting" = default ]; then
        samba_start "$mnt" "$work/smbd-$n" || { echo "$setting: smbd did not start"; continue; }
    else
        samba_start "$mnt" "$work/smbd-$n" "$setting" || { echo "$setting: smbd did not start"; continue; }
    fi
    put1=$(measure samba_client -c "put $work/src p$n.bak")
    put2=$(measure samba_exec /usr/bin/python3 "$src_dir/tests/samba/win_client.py" put "$work/src" "w$n.bak" \
           --conf "$SAMBA_CONF" --auth "$SAMBA_AUTH_FILE" --in-flight 10)
    get="skipped"
    if [ "${BENCH_READ:-1}" != 0 ]; then
        rm -f "$work/back"
        get="$(measure samba_client -c "get p$n.bak $work/back" | cut -d' ' -f1) equal=$(same "$work/back")"
    fi
    printf '%-28s | %-28s | %-22s | %-14s\n' "$setting" "$put1" "$put2" "$get"
    samba_stop
    rm -f "$work/back" "$mnt/p$n.bak" "$mnt/w$n.bak"
done
