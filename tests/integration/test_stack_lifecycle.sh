#!/usr/bin/env bash
# tests/lib/with-stack itself: passes the command's exit status through, stops its moto however the
# command ends (normal exit, failure, SIGTERM to with-stack), removes the temp dir after success and
# keeps it after failure, and unmounts FUSE mounts the command left under its temp dir.
# Runs inside an outer with-stack (like every integration test) and starts inner ones.
set -uo pipefail
: "${S3CSEFS_TEST_TMPDIR:?run me through tests/lib/with-stack}"
lib=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib
work=$S3CSEFS_TEST_TMPDIR/lifecycle
mkdir -p "$work"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# The inner command records its moto port, moto pid and temp dir for the checks below.
record='echo "$S3CSEFS_MOTO_PORT $S3CSEFS_MOTO_PID $S3CSEFS_TEST_TMPDIR $$" >'

moto_gone() {   # port pid
    ! kill -0 "$2" 2>/dev/null && ! curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/moto-api/config"
}

# 1. Exit status passes through; moto stopped; temp dir kept because the command failed.
TMPDIR=$work "$lib/with-stack" bash -c "$record $work/one; exit 7" 2>/dev/null
status=$?
read -r port pid dir _ <"$work/one"
[ "$status" -eq 7 ] && pass "exit status 7 passed through" || fail "exit status $status, expected 7"
[ -n "$pid" ] && moto_gone "$port" "$pid" && pass "moto stopped after a failing command" ||
    fail "moto (port $port, pid $pid) still running after the command failed"
[ -d "$dir" ] && pass "temp dir kept after failure" || fail "temp dir $dir removed after a failure"

# 2. Success: status 0, temp dir removed.
TMPDIR=$work "$lib/with-stack" bash -c "$record $work/two" 2>/dev/null
status=$?
read -r port pid dir _ <"$work/two"
[ "$status" -eq 0 ] && pass "exit status 0" || fail "exit status $status, expected 0"
[ ! -e "$dir" ] && pass "temp dir removed after success" || fail "temp dir $dir left after success"
moto_gone "$port" "$pid" && pass "moto stopped after success" || fail "moto still running after success"

# 3. SIGTERM to with-stack (what ctest does on a timeout): the command and moto are stopped.
TMPDIR=$work "$lib/with-stack" bash -c "sleep 301 & echo \$! >$work/grandchild; $record $work/three; sleep 300" 2>/dev/null &
stack_pid=$!
for _ in $(seq 300); do [ -s "$work/three" ] && break; sleep 0.1; done
read -r port pid dir command_pid <"$work/three"
kill -TERM "$stack_pid"
wait "$stack_pid"
status=$?
[ "$status" -eq 143 ] && pass "SIGTERM gives status 143" || fail "status $status after SIGTERM, expected 143"
moto_gone "$port" "$pid" && pass "moto stopped after SIGTERM" || fail "moto still running after SIGTERM"
if kill -0 "$command_pid" 2>/dev/null; then
    fail "the command (pid $command_pid) was left running after SIGTERM"
    kill "$command_pid"
else
    pass "the command was stopped"
fi
grandchild=$(cat "$work/grandchild")
# Orphans are reaped by init a moment after they die (kill -0 succeeds on a zombie): allow 5 s.
for _ in $(seq 50); do [ "$(ps -o stat= -p "$grandchild" 2>/dev/null | cut -c1)" = "" ] && break; \
    [ "$(ps -o stat= -p "$grandchild" | cut -c1)" = Z ] && break; sleep 0.1; done
if [ -n "$(ps -o stat= -p "$grandchild" 2>/dev/null | grep -v '^Z')" ]; then
    fail "a process started by the command (pid $grandchild) was left running after SIGTERM"
    kill "$grandchild"
else
    pass "processes started by the command were stopped"
fi

# 4. Two stacks at once are independent (different ports, different keys).
TMPDIR=$work "$lib/with-stack" bash -c "$record $work/p1; echo \$S3CSEFS_TEST_KEY_ARN >$work/k1; sleep 1" &
a=$!
TMPDIR=$work "$lib/with-stack" bash -c "$record $work/p2; echo \$S3CSEFS_TEST_KEY_ARN >$work/k2; sleep 1" &
b=$!
wait "$a"; sa=$?
wait "$b"; sb=$?
read -r port1 _ _ _ <"$work/p1"
read -r port2 _ _ _ <"$work/p2"
if [ "$sa" -eq 0 ] && [ "$sb" -eq 0 ] && [ "$port1" != "$port2" ] && ! cmp -s "$work/k1" "$work/k2"; then
    pass "parallel stacks are independent (ports $port1, $port2)"
else
    fail "parallel stacks: status $sa/$sb, ports $port1/$port2"
fi

# 4b. A moto left frozen (SIGSTOP, as tests of an unresponsive endpoint do) is still stopped.
TMPDIR=$work "$lib/with-stack" bash -c "$record $work/frozen; kill -STOP \$S3CSEFS_MOTO_PID" 2>/dev/null
read -r port pid _ _ <"$work/frozen"
for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
    fail "a frozen moto (pid $pid) was left behind"
    kill -CONT "$pid"; kill "$pid"
else
    pass "a frozen moto is stopped"
fi

# 5. A FUSE mount left under the temp dir is unmounted by with-stack (s3fs stands in for any FUSE
#    daemon here, so this does not depend on s3csefs being built).
if command -v s3fs >/dev/null && [ -c /dev/fuse ]; then
    TMPDIR=$work "$lib/with-stack" bash -c '
        mkdir -p "$S3CSEFS_TEST_TMPDIR/leftover"
        AWSACCESSKEYID=$AWS_ACCESS_KEY_ID AWSSECRETACCESSKEY=$AWS_SECRET_ACCESS_KEY \
            s3fs "$S3CSEFS_TEST_BUCKET" "$S3CSEFS_TEST_TMPDIR/leftover" \
            -o url="$AWS_ENDPOINT_URL",use_path_request_style || exit 3
        for _ in $(seq 100); do grep -q " $S3CSEFS_TEST_TMPDIR/leftover " /proc/self/mounts && break; sleep 0.1; done
        echo "$S3CSEFS_TEST_TMPDIR/leftover" >'"$work/five"'
        exit 4' 2>/dev/null
    status=$?
    target=$(cat "$work/five" 2>/dev/null)
    if [ "$status" -ne 4 ]; then
        fail "mount cleanup scenario did not run (status $status)"
    elif grep -q " $target " /proc/self/mounts; then
        fail "FUSE mount $target left mounted"
        fusermount3 -u -z "$target"
    else
        pass "FUSE mount left by the command was unmounted"
    fi
else
    echo "skip: s3fs or /dev/fuse missing, mount cleanup not checked"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "with-stack lifecycle checks passed"
