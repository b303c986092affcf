#!/usr/bin/env bash
# What programs see of a file right after they close it, on a real mount against moto:
#  - W3: setting mtime by path on a just-closed empty new file works (rsync, tar do this), and the
#    object exists (with the mode) once close() has returned;
#  - W4: a new file opened O_CREAT|O_EXCL with mode 0600 shows 0600 in fstat while open and in stat
#    right after close, and the object stores mode 0100600 (checked with boto3);
#  - review item 1: fallocate inside an existing file never shrinks it (boto3 size, content check);
#  - review item 7: rm of a file open for writing returns at once and the object stays deleted after
#    the writer closes.
# Run by CTest as: tests/lib/with-stack tests/integration/test_write_close_visibility.sh
set -uo pipefail
. "$(dirname "$0")/../lib/itest.sh"

work=$S3CSEFS_TEST_TMPDIR/closevis
mnt=$S3CSEFS_TEST_TMPDIR/mnt-closevis
mkdir -p "$work" "$mnt"
prefix=closevis
s3csefs_mount "$S3CSEFS_TEST_BUCKET:/$prefix" "$mnt" || { echo "FAIL: mount" >&2; exit 1; }

# The object's user metadata and size, straight from S3 (not through the mount).
head_object() {   # head_object KEY -> "size mode" or "missing"
    $PY - "$S3CSEFS_TEST_BUCKET" "$1" <<'EOF'
import os, sys, boto3, botocore
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
try:
    h = s3.head_object(Bucket=sys.argv[1], Key=sys.argv[2])
    print(h["ContentLength"], h["Metadata"].get("mode", "-"))
except botocore.exceptions.ClientError:
    print("missing")
EOF
}

# W3: five tries, as the race was intermittent.
for i in 1 2 3 4 5; do
    if ( set -C; : >"$mnt/empty$i.bak" ) && touch -h -m -d @1600000000 "$mnt/empty$i.bak"; then
        pass "touch -m right after creating empty$i.bak"
    else
        fail "touch -m right after creating empty$i.bak"
    fi
    got=$(stat -c %Y "$mnt/empty$i.bak" 2>&1)
    [ "$got" = 1600000000 ] && pass "mtime of empty$i.bak" || fail "mtime of empty$i.bak: $got"
done
sleep 1    # the attribute ticker stores mtimes set while the upload was finishing
info=$(head_object "$prefix/empty1.bak")
case $info in missing) fail "empty1.bak has no object after close" ;; *) pass "empty1.bak stored ($info)" ;; esac
if out=$($REF_PY verify "$prefix/empty1.bak" /dev/null --profile any 2>&1); then
    pass "python reference verifies the empty object"
else
    fail "python reference on empty1.bak: $out"
fi

# W4: mode while open, right after close, and stored.
modes=$($PY - "$mnt/mode.bak" <<'EOF'
import os, stat, sys
p = sys.argv[1]
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, b"x" * 1000)
a = stat.S_IMODE(os.fstat(fd).st_mode)
b = stat.S_IMODE(os.stat(p).st_mode)
os.close(fd)
c = stat.S_IMODE(os.stat(p).st_mode)
print("%o %o %o" % (a, b, c))
EOF
)
[ "$modes" = "600 600 600" ] && pass "mode 0600 while open and after close" || fail "modes (fstat, stat open, stat closed): $modes"
info=$(head_object "$prefix/mode.bak")
[ "$info" = "1008 33152" ] && pass "stored mode 0100600" || fail "stored size/mode: $info"

# Review item 1: fallocate never shrinks.
head -c 100000 /dev/urandom >"$work/fa"
cp "$work/fa" "$mnt/fa.bak" || fail "cp fa.bak"
if fallocate -o 0 -l 100 "$mnt/fa.bak"; then pass "fallocate inside the file"; else fail "fallocate"; fi
if cmp -s "$work/fa" "$mnt/fa.bak"; then pass "fa.bak unchanged after fallocate"; else fail "fa.bak changed by fallocate"; fi
if out=$($REF_PY verify "$prefix/fa.bak" "$work/fa" --profile any 2>&1); then
    pass "python reference: fa.bak still 100000 bytes"
else
    fail "fa.bak after fallocate: $out"
fi

# Review item 7: rm of a file open for writing.
exec 7>"$mnt/open.bak"
echo "partial data" >&7
start=$(date +%s)
if rm "$mnt/open.bak"; then pass "rm of an open file"; else fail "rm of an open file"; fi
took=$(( $(date +%s) - start ))
[ "$took" -lt 5 ] && pass "rm returned in ${took}s" || fail "rm took ${took}s"
exec 7>&-
sleep 1
info=$(head_object "$prefix/open.bak")
[ "$info" = missing ] && pass "open.bak stays deleted after close" || fail "open.bak came back: $info"
[ -e "$mnt/open.bak" ] && fail "open.bak still listed" || pass "open.bak not in the mount"

s3csefs_unmount "$mnt" || fail "unmount"
[ "$failures" -eq 0 ] && echo "all passed" || echo "$failures failure(s)"
[ "$failures" -eq 0 ]
