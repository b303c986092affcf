#!/usr/bin/env bash
# Shows which FUSE operations Wine produces for each SQL Server I/O pattern of sqlbackup_sim.exe (the
# table in docs/wine.md was made with it). Mounts with libfuse's debug log and prints, per pattern, the
# file operations the daemon received (security.capability lookups, which the kernel sends before
# every write, are left out). Not a test: it prints, it does not judge.
#   S3CSEFS_BUILD_DIR=<build> tests/lib/with-stack tests/wine/observe_fuse_ops.sh [SIZE_MIB]
set -uo pipefail
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
: "${S3CSEFS_BUILD_DIR:?S3CSEFS_BUILD_DIR is not set}"
src_dir=$(cd "$(dirname "$0")/../.." && pwd)
. "$src_dir/tests/lib/mount.sh"
. "$src_dir/tests/wine/wine_env.sh"
wine_env_setup "$S3CSEFS_BUILD_DIR/wine" || exit 1

size_mib=${1:-4}
MIB=1048576
mnt=$S3CSEFS_TEST_TMPDIR/mnt
s3csefs_mount "$S3CSEFS_TEST_BUCKET:/observe" "$mnt" debug || exit 1
log=$(s3csefs_daemon_log "$mnt")

# Prints the daemon's view of one run: operation, arguments, result (repeated lines counted).
observe() {   # observe TITLE SIM_ARGS...
    local title=$1 start
    shift
    start=$(wc -l <"$log")
    sqlbackup_sim "$@"
    echo "sqlbackup_sim exit status $?"
    sleep 0.5   # let the last FUSE replies reach the log
    echo "---- FUSE operations for: $title"
    tail -n +"$((start + 1))" "$log" | awk '
        /opcode:/ { match($0, /pid: [0-9]+/); pid = substr($0, RSTART + 5, RLENGTH - 5) }
        /^(create|open|truncate|write|read|fsync|flush|release|statfs|getxattr|setxattr|setattr|chmod|utimens)[\[ ]/ {
            if ($0 ~ /security.capability/) next
            line = $0; sub(/\[[0-9]+\]/, "", line); sub(/ flags: 0x[0-9a-f]+$/, "", line)
            print line "   (pid " pid ")"
        }
        /s3csefs (info|error|warning)/ { sub(/^[^ ]+ /, ""); print "  daemon: " $0 }' | uniq -c
}

observe "write ${size_mib} MiB (CREATE_ALWAYS, overlapped 1 MiB writes, FlushFileBuffers, CloseHandle)" \
    write "$(wine_path "$mnt/db.bak")" $((size_mib * MIB)) 1
observe "write-compressed: SetEndOfFile(2x), write ${size_mib} MiB+1234, SetEndOfFile(real)" \
    write-compressed "$(wine_path "$mnt/comp.bak")" $((2 * size_mib * MIB)) $((size_mib * MIB + 1234)) 2
observe "append 1 MiB to db.bak (OPEN_EXISTING, read the first sector, write at the end)" \
    append "$(wine_path "$mnt/db.bak")" $MIB 3
observe "read (RESTORE): 1-4 MiB overlapped reads, then random reads" \
    read "$(wine_path "$mnt/db.bak")" $((size_mib * MIB)) 1 0
observe "write onto an existing file (BACKUP WITH INIT)" \
    write "$(wine_path "$mnt/db.bak")" $MIB 4
observe "overwrite in place (OPEN_ALWAYS, write from 0, SetEndOfFile at the end)" \
    overwrite "$(wine_path "$mnt/db.bak")" $((MIB / 2)) 5
wine_env_finish
s3csefs_unmount "$mnt"
