# shellcheck shell=bash
# Shell helpers to mount and unmount s3csefs in tests (source this file; bash).
#
#   s3csefs_mount SOURCE MOUNTPOINT [EXTRA_OPTIONS]
#       SOURCE is BUCKET or BUCKET:/PREFIX. Runs $S3CSEFS_BUILD_DIR/fs/s3csefs in the foreground (-f)
#       as a background job, pointed at the with-stack endpoint and key (endpoint=$AWS_ENDPOINT_URL,
#       kms_key_id=$S3CSEFS_TEST_KEY_ARN, plus EXTRA_OPTIONS, a comma-separated -o list), and returns
#       once the mount is live. The daemon's output goes to MOUNTPOINT's log file
#       ($S3CSEFS_TEST_TMPDIR/mounts/<name>.log, path printed on failure).
#   s3csefs_unmount MOUNTPOINT
#       fusermount3 -u, then waits for the daemon to exit (returns its exit status; 124 if it had to
#       be killed).
#   s3csefs_unmount_all_under DIR
#       Unmounts every FUSE mount below DIR (used by with-stack's cleanup).
#   s3csefs_daemon_log MOUNTPOINT     prints the path of the daemon's log file
#   s3csefs_kill_leftover_daemons    stops daemons whose mount never came up (with-stack cleanup)
#
# Timeouts: S3CSEFS_MOUNT_TIMEOUT (default 20 s) and S3CSEFS_UNMOUNT_TIMEOUT (default 60 s, the daemon
# may still be completing uploads).

_s3csefs_state_dir() {
    local dir=${S3CSEFS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/mounts
    mkdir -p "$dir" && printf '%s\n' "$dir"
}

# A file name derived from the mount point, for its pid and log files.
_s3csefs_mount_id() {
    printf '%s' "$(realpath -m -- "$1")" | sha256sum | cut -c1-16
}

s3csefs_daemon_log() {
    printf '%s/%s.log\n' "$(_s3csefs_state_dir)" "$(_s3csefs_mount_id "$1")"
}

_s3csefs_is_mounted() {
    local target
    target=$(realpath -m -- "$1")
    # /proc/self/mounts escapes spaces as \040; test mount points have none.
    awk -v t="$target" '$2 == t { found = 1 } END { exit !found }' /proc/self/mounts
}

s3csefs_mount() {
    local source=$1 mountpoint=$2 extra=${3:-}
    local binary=${S3CSEFS_BUILD_DIR:?S3CSEFS_BUILD_DIR is not set}/fs/s3csefs
    local options state log pid
    if [ ! -x "$binary" ]; then
        echo "s3csefs_mount: $binary not built" >&2
        return 1
    fi
    mkdir -p "$mountpoint" || return 1
    options="endpoint=${AWS_ENDPOINT_URL:?},kms_key_id=${S3CSEFS_TEST_KEY_ARN:?}"
    [ -n "$extra" ] && options="$options,$extra"
    state=$(_s3csefs_state_dir) || return 1
    log=$(s3csefs_daemon_log "$mountpoint")
    "$binary" "$source" "$mountpoint" -f -o "$options" >>"$log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$state/$(_s3csefs_mount_id "$mountpoint").pid"
    local deadline=$((SECONDS + ${S3CSEFS_MOUNT_TIMEOUT:-20}))
    while ! _s3csefs_is_mounted "$mountpoint"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null
            echo "s3csefs_mount: daemon exited with status $? before mounting; log $log:" >&2
            tail -n 20 "$log" >&2
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "s3csefs_mount: $mountpoint not mounted after ${S3CSEFS_MOUNT_TIMEOUT:-20} s; log $log:" >&2
            tail -n 20 "$log" >&2
            kill -TERM "$pid" 2>/dev/null
            return 1
        fi
        sleep 0.1
    done
}

s3csefs_unmount() {
    local mountpoint=$1 state pidfile pid rc=0
    state=$(_s3csefs_state_dir) || return 1
    pidfile="$state/$(_s3csefs_mount_id "$mountpoint").pid"
    pid=$(cat "$pidfile" 2>/dev/null)
    if _s3csefs_is_mounted "$mountpoint"; then
        if ! fusermount3 -u "$mountpoint" 2>/dev/null; then
            # Busy (a test process still has a file open): detach lazily so cleanup still completes.
            fusermount3 -u -z "$mountpoint" || rc=1
        fi
    fi
    if [ -n "$pid" ]; then
        local deadline=$((SECONDS + ${S3CSEFS_UNMOUNT_TIMEOUT:-60}))
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "s3csefs_unmount: daemon $pid still running after unmount; killing it" >&2
            kill -KILL "$pid" 2>/dev/null
            rc=124
        fi
        # Only our own child can be waited for; otherwise the loop above already saw it exit.
        if wait "$pid" 2>/dev/null; then :; else
            local daemon_status=$?
            # 127: not our child (mounted from another shell), status unknown.
            [ "$daemon_status" -ne 127 ] && [ "$rc" -eq 0 ] && rc=$daemon_status
        fi
        rm -f "$pidfile"
    fi
    return "$rc"
}

s3csefs_unmount_all_under() {
    local dir target
    dir=$(realpath -m -- "$1")
    # Deepest first, so nested mounts come off before their parents.
    awk -v d="$dir/" '$3 ~ /^fuse/ && index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r target; do
            echo "cleanup: unmounting $target left mounted by the test" >&2
            s3csefs_unmount "$target" || true
        done
}

# Stops daemons started by s3csefs_mount whose mount never came up or was already detached (their pid
# files are still in the state directory). Only processes whose command line names s3csefs are
# signalled, so a recycled pid is left alone.
s3csefs_kill_leftover_daemons() {
    local pidfile pid
    for pidfile in "$(_s3csefs_state_dir)"/*.pid; do
        [ -e "$pidfile" ] || continue
        pid=$(cat "$pidfile" 2>/dev/null)
        if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q s3csefs; then
            echo "cleanup: stopping s3csefs daemon $pid left running by the test" >&2
            kill -TERM "$pid" 2>/dev/null
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null
        fi
        rm -f "$pidfile"
    done
}
