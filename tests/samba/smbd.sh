# Shell helpers that run a private Samba server for tests (source this file; bash).
#
#   samba_start SHARE_PATH STATE_DIR [SHARE_SETTING...]
#       Writes STATE_DIR/smb.conf from tests/samba/smb.conf.in (loopback only, every Samba directory
#       under STATE_DIR, one share [share] whose path is SHARE_PATH, plus each SHARE_SETTING line such
#       as "aio write size = 0"), creates the Samba account root with a random password in a private
#       tdb, starts smbd in the foreground as a background job and returns once the share answers.
#       smbd runs in a private network namespace (unshare -n) on the standard port 445, because
#       Samba 4.17's client library (used by win_client.py) can only connect to 445/139; where
#       unshare is not permitted it runs on a free port of the host's loopback instead
#       (SAMBA_NETNS=0: smbclient works, win_client.py cannot connect). Sets SAMBA_PORT, SAMBA_PID,
#       SAMBA_NETNS, SAMBA_CONF, SAMBA_AUTH_FILE (an smbclient -A file), SAMBA_USER and SAMBA_LOG.
#   samba_exec COMMAND [ARGS...]
#       Runs COMMAND in smbd's network namespace (clients must, to reach it), killed after
#       SAMBA_CLIENT_TIMEOUT seconds (default 600; exit status 124) so that a hung share fails a test
#       instead of blocking it.
#   samba_stop
#       Stops that smbd by its pid (it runs in its own process group and takes its per-connection
#       children down with it; with --no-process-group it would signal our whole group) and
#       waits for it.
#   samba_client [SMBCLIENT_ARGS...]
#       smbclient //127.0.0.1/share on SAMBA_PORT over SMB3 with the test account.
#
# Environment: SAMBA_LOG_LEVEL (default 1), SAMBA_START_TIMEOUT (default 20 s).
# smbd runs as root and the share forces user root: the FUSE mount belongs to root, and the mount is
# made with allow_other so that a deployment that logs in other users works the same way.

_samba_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SAMBA_PID=
SAMBA_NETNS=0
SAMBA_USER=root

_samba_free_port() {
    "${S3CSEFS_PYTHON:-python3}" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

samba_exec() {
    if [ "$SAMBA_NETNS" = 1 ]; then
        timeout "${SAMBA_CLIENT_TIMEOUT:-600}" nsenter --net="/proc/$SAMBA_PID/ns/net" "$@"
    else
        timeout "${SAMBA_CLIENT_TIMEOUT:-600}" "$@"
    fi
}

samba_client() {
    samba_exec smbclient "//127.0.0.1/share" -p "$SAMBA_PORT" -m SMB3 -A "$SAMBA_AUTH_FILE" "$@"
}

# 1 when this process may create a network namespace (root in most containers and CI runners).
_samba_netns_works() {
    unshare --net true 2>/dev/null
}

samba_start() {
    local share_path=$1 state=$2
    shift 2
    local extra="" line
    for line in "$@"; do extra+="    $line"$'\n'; done
    mkdir -p "$state"/{private,lock,state,cache,run,ncalrpc,binddns} || return 1
    chmod 700 "$state/private"
    SAMBA_CONF=$state/smb.conf
    SAMBA_LOG=$state/log.smbd
    SAMBA_AUTH_FILE=$state/auth
    local password attempt
    password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    if _samba_netns_works; then SAMBA_NETNS=1; else SAMBA_NETNS=0; fi
    for attempt in 1 2 3 4 5; do
        if [ "$SAMBA_NETNS" = 1 ]; then
            SAMBA_PORT=445
        else
            SAMBA_PORT=$(_samba_free_port) || return 1
        fi
        # awk, not sed: the extra share lines may contain any character.
        awk -v port="$SAMBA_PORT" -v st="$state" -v path="$share_path" -v user="$SAMBA_USER" \
            -v level="${SAMBA_LOG_LEVEL:-1}" -v extra="$extra" '
            /^@SHARE_EXTRA@$/ { printf "%s", extra; next }
            { gsub(/@PORT@/, port); gsub(/@STATE@/, st); gsub(/@SHARE_PATH@/, path)
              gsub(/@USER@/, user); gsub(/@FORCE_USER@/, user); gsub(/@LOG_LEVEL@/, level); print }
            ' "$_samba_lib_dir/smb.conf.in" >"$SAMBA_CONF" || return 1
        if [ "$attempt" -eq 1 ]; then
            printf '%s\n%s\n' "$password" "$password" |
                smbpasswd -c "$SAMBA_CONF" -s -a "$SAMBA_USER" >"$state/smbpasswd.log" 2>&1 || {
                echo "samba_start: smbpasswd failed:" >&2; cat "$state/smbpasswd.log" >&2; return 1; }
            printf 'username = %s\npassword = %s\ndomain = S3CSEFSTEST\n' \
                "$SAMBA_USER" "$password" >"$SAMBA_AUTH_FILE"
            chmod 600 "$SAMBA_AUTH_FILE"
        fi
        if [ "$SAMBA_NETNS" = 1 ]; then
            # unshare and sh exec, so $! is smbd's own pid.
            unshare --net sh -c 'ip link set lo up && exec smbd --foreground -s "$1"' sh "$SAMBA_CONF" \
                </dev/null >>"$state/smbd.out" 2>&1 &
        else
            smbd --foreground -s "$SAMBA_CONF" </dev/null >>"$state/smbd.out" 2>&1 &
        fi
        SAMBA_PID=$!
        local deadline=$((SECONDS + ${SAMBA_START_TIMEOUT:-20}))
        while kill -0 "$SAMBA_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
            if samba_client -c 'ls' >/dev/null 2>&1; then
                return 0
            fi
            sleep 0.2
        done
        # Died (port taken between the probe and bind?) or never answered: try another port.
        samba_stop
    done
    echo "samba_start: smbd did not come up; last log lines ($SAMBA_LOG, $state/smbd.out):" >&2
    tail -n 20 "$SAMBA_LOG" "$state/smbd.out" >&2 2>/dev/null
    return 1
}

samba_stop() {
    [ -n "$SAMBA_PID" ] || return 0
    if kill -0 "$SAMBA_PID" 2>/dev/null; then
        kill -TERM "$SAMBA_PID" 2>/dev/null
        local _
        for _ in $(seq 100); do kill -0 "$SAMBA_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SAMBA_PID" 2>/dev/null
    fi
    wait "$SAMBA_PID" 2>/dev/null
    SAMBA_PID=
    return 0
}
