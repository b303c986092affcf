# Shell helpers to run tests/wine/sqlbackup_sim.exe under Wine (source this file; bash).
#
#   wine_env_setup OUT_DIR
#       Checks for Wine and the mingw cross compiler, builds sqlbackup_sim.exe into OUT_DIR (when the
#       source is newer), and makes a Wine prefix ready. Sets SQLBACKUP_SIM (the .exe), WINE (the loader),
#       WINESERVER, and exports WINEPREFIX and WINEDEBUG. Returns 77 when Wine or mingw is missing.
#   sqlbackup_sim ARGS...      runs the program under Wine (exit status is the program's)
#   wine_path LINUX_PATH       prints the Windows path of a Linux path (Z: is the Linux root)
#   wine_env_finish            waits for this prefix's wineserver to exit (it holds no file open then)
#
# The prefix (wineboot --init: ~15 s, ~700 MB) is cached across runs in
#   ${S3CSEFS_WINEPREFIX_CACHE:-/var/tmp/s3csefs-wineprefix}-<wine version>
# and created on first use under a lock (flock), in a temporary directory renamed into place only when
# complete, so parallel or interrupted runs never see a half-made prefix. Set S3CSEFS_WINEPREFIX to use
# a prefix of your own instead.

wine_path() {
    local p
    p=$(realpath -m -- "$1") || return 1
    printf 'Z:%s\n' "${p//\//\\}"
}

_wine_find_loader() {
    local candidate
    for candidate in /usr/lib/wine/wine64 "$(command -v wine64 2>/dev/null)" "$(command -v wine 2>/dev/null)"; do
        [ -n "$candidate" ] && [ -x "$candidate" ] && { printf '%s\n' "$candidate"; return 0; }
    done
    return 1
}

_wine_find_server() {
    local candidate
    for candidate in /usr/lib/wine/wineserver64 /usr/lib/wine/wineserver "$(command -v wineserver 2>/dev/null)"; do
        [ -n "$candidate" ] && [ -x "$candidate" ] && { printf '%s\n' "$candidate"; return 0; }
    done
    return 1
}

_wine_make_prefix() {   # _wine_make_prefix DIR: wineboot into DIR.tmp.PID, then rename to DIR
    local final=$1 tmp="$1.tmp.$$"
    rm -rf -- "$tmp"
    echo "wine_env: creating Wine prefix $final (once; takes ~15 s)" >&2
    # No Mono/Gecko install prompts: the console program needs neither.
    if ! WINEPREFIX=$tmp WINEDLLOVERRIDES="mscoree,mshtml=" "$WINE" wineboot --init >"$tmp.log" 2>&1; then
        echo "wine_env: wineboot failed; log $tmp.log:" >&2
        tail -n 20 "$tmp.log" >&2
        rm -rf -- "$tmp"
        return 1
    fi
    WINEPREFIX=$tmp "$WINESERVER" -w
    [ -f "$tmp/system.reg" ] || { echo "wine_env: wineboot left no system.reg in $tmp" >&2; return 1; }
    rm -f -- "$tmp.log"
    mv -- "$tmp" "$final"
}

wine_env_setup() {
    local out_dir=$1 src_dir
    src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    WINE=$(_wine_find_loader) || { echo "wine_env: Wine not installed (apt-get install wine64)" >&2; return 77; }
    WINESERVER=$(_wine_find_server) || { echo "wine_env: wineserver not found" >&2; return 77; }
    command -v x86_64-w64-mingw32-gcc >/dev/null ||
        { echo "wine_env: x86_64-w64-mingw32-gcc not installed (apt-get install gcc-mingw-w64-x86-64)" >&2; return 77; }
    export WINEDEBUG=-all

    mkdir -p "$out_dir" || return 1
    SQLBACKUP_SIM=$out_dir/sqlbackup_sim.exe
    if [ ! -f "$SQLBACKUP_SIM" ] || [ "$src_dir/sqlbackup_sim.c" -nt "$SQLBACKUP_SIM" ]; then
        x86_64-w64-mingw32-gcc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$SQLBACKUP_SIM.tmp" \
            "$src_dir/sqlbackup_sim.c" && mv -- "$SQLBACKUP_SIM.tmp" "$SQLBACKUP_SIM" ||
            { echo "wine_env: building sqlbackup_sim.exe failed" >&2; return 1; }
    fi

    if [ -n "${S3CSEFS_WINEPREFIX:-}" ]; then
        WINEPREFIX=$S3CSEFS_WINEPREFIX
        if [ ! -f "$WINEPREFIX/system.reg" ]; then
            _wine_make_prefix "$WINEPREFIX" || return 1
        fi
    else
        local version cache
        version=$("$WINE" --version 2>/dev/null | sed 's/[^A-Za-z0-9.]\{1,\}/-/g; s/-$//') || return 1
        cache=${S3CSEFS_WINEPREFIX_CACHE:-/var/tmp/s3csefs-wineprefix}-$version
        WINEPREFIX=$cache
        if [ ! -f "$cache/system.reg" ]; then
            mkdir -p "$(dirname "$cache")" || return 1
            (
                flock 9 || exit 1
                [ -f "$cache/system.reg" ] || _wine_make_prefix "$cache"
            ) 9>"$cache.lock" || return 1
        fi
    fi
    export WINEPREFIX
}

sqlbackup_sim() {
    "$WINE" "$SQLBACKUP_SIM" "$@"
}

wine_env_finish() {
    [ -n "${WINESERVER:-}" ] && [ -n "${WINEPREFIX:-}" ] && "$WINESERVER" -w 2>/dev/null
    return 0
}
