#!/usr/bin/python3
"""A Windows-like SMB writer, the way SQL Server's BACKUP TO DISK reaches a share: open (overwrite),
set the end of file to the final size first (SMB2 SET_INFO FileEndOfFileInformation, what Windows'
SetEndOfFile sends), then write 1 MiB requests with several of them in flight on the one handle, then
close. With --estimate, the file is first extended to an estimated size (SQL Server extends to its
estimate of the backup size) and cut back to the real size after the last write. Also reads a file
back the same way.

Uses Samba's own client library through its Python bindings (Debian python3-samba), so it must run
with /usr/bin/python3, not the pyenv python. One multi-threaded SMB3 connection; each worker thread
issues one blocking write at a time, so --in-flight threads keep that many requests outstanding, in the
order the offsets are handed out (they still complete, and reach smbd's thread pool, in any order).

Samba 4.17's Python binding sends its truncate() only as SMB1 (refused on an SMB3 connection), so the
end of file is set through libsmbclient (ctypes, Debian libsmbclient; its ftruncate speaks SMB2 SET_INFO)
on a second handle, opened while the writing handle is open. smbd turns either into the same
ftruncate() on the file, so the filesystem sees what it would see from Windows.

  win_client.py put  LOCAL REMOTE --conf SMB_CONF --auth AUTH_FILE [--in-flight 10] [--chunk 1048576]
                     [--no-extend | --estimate BYTES] [--descending] [--straggler OFFSET:SECONDS]
  win_client.py get  REMOTE LOCAL --conf SMB_CONF --auth AUTH_FILE [--in-flight 10] [--chunk 1048576]

Connects to //127.0.0.1/share on port 445 (Samba 4.17's client library takes no other port): run it
inside smbd's network namespace (tests/samba/smbd.sh: samba_exec). SMB_CONF is the server's smb.conf
(loaded for the client-side settings); AUTH_FILE the smbclient -A file.
Prints one line "<op> <bytes> bytes in <s> s, <MiB/s> MiB/s" on success; exit 1 on any error.
"""
import argparse
import ctypes
import os
import sys
import threading
import time

from samba import credentials
from samba.samba3 import libsmb_samba_internal as libsmb
from samba.samba3 import param as s3param

FILE_OVERWRITE_IF = 5
FILE_OPEN = 1
GENERIC_READ_WRITE = 0x80000000 | 0x40000000
GENERIC_READ = 0x80000000
SHARE_READ_WRITE = 0x1 | 0x2


def read_auth_file(path):
    values = {}
    with open(path, encoding="ascii") as f:
        for line in f:
            name, sep, value = line.partition("=")
            if sep:
                values[name.strip()] = value.strip()
    return values


def connect(conf, auth_file):
    lp = s3param.get_context()
    lp.load(conf)       # workgroup and client settings; the port is always 445
    auth = read_auth_file(auth_file)
    creds = credentials.Credentials()
    creds.guess(lp)
    creds.set_username(auth["username"])
    creds.set_password(auth["password"])
    creds.set_domain(auth.get("domain", ""))
    return libsmb.Conn("127.0.0.1", "share", lp, creds, multi_threaded=True)


class SmbcHelper:
    """Sets and asks a file's end of file over SMB2 with libsmbclient (its compat API: one global
    context, used from one thread)."""

    _AUTH_FN = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int,
                                ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)

    def __init__(self, auth):
        self.lib = ctypes.CDLL("libsmbclient.so.0", use_errno=True)
        self.lib.smbc_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint]
        self.lib.smbc_ftruncate.argtypes = [ctypes.c_int, ctypes.c_longlong]
        self.lib.smbc_close.argtypes = [ctypes.c_int]
        self.lib.smbc_lseek.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_int]
        self.lib.smbc_lseek.restype = ctypes.c_longlong

        def fill(dst, cap, text):
            data = text.encode()[:cap - 1] + b"\0"
            ctypes.memmove(dst, data, len(data))

        def answer(_server, _share, workgroup, wg_cap, user, user_cap, password, pw_cap):
            fill(workgroup, wg_cap, auth.get("domain", ""))
            fill(user, user_cap, auth["username"])
            fill(password, pw_cap, auth["password"])

        self.callback = self._AUTH_FN(answer)      # kept referenced: libsmbclient calls it later
        if self.lib.smbc_init(self.callback, 0) != 0:
            raise OSError(ctypes.get_errno(), "smbc_init failed")

    def _open(self, remote, flags):
        url = ("smb://127.0.0.1/share/" + remote.lstrip("\\").replace("\\", "/")).encode()
        fd = self.lib.smbc_open(url, flags, 0)
        if fd < 0:
            raise OSError(ctypes.get_errno(), f"smbc_open {remote}")
        return fd

    def size_of(self, remote):
        fd = self._open(remote, os.O_RDONLY)
        size = self.lib.smbc_lseek(fd, 0, os.SEEK_END)      # the server's end-of-file
        err = ctypes.get_errno()
        self.lib.smbc_close(fd)
        if size < 0:
            raise OSError(err, f"smbc_lseek {remote}")
        return size

    def set_end_of_file(self, remote, size):
        fd = self._open(remote, os.O_RDWR)
        rc = self.lib.smbc_ftruncate(fd, size)
        err = ctypes.get_errno()
        if self.lib.smbc_close(fd) != 0 and rc == 0:
            raise OSError(ctypes.get_errno(), f"smbc_close {remote}")
        if rc != 0:
            raise OSError(err, f"smbc_ftruncate {remote} to {size}")


def run_workers(count, work):
    """Runs work() on `count` threads; re-raises the first error any of them hit."""
    errors = []

    def guarded():
        try:
            work()
        except Exception as e:      # noqa: BLE001 - reported below with its type
            errors.append(e)

    threads = [threading.Thread(target=guarded) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


class OffsetQueue:
    """Hands out chunk offsets to the worker threads, ascending (or descending: a random-write
    pattern that no reorder window can absorb)."""

    def __init__(self, size, chunk, descending=False):
        self.offsets = list(range(0, size, chunk))
        if not descending:
            self.offsets.reverse()          # pop() takes from the end
        self.lock = threading.Lock()

    def take(self):
        with self.lock:
            return self.offsets.pop() if self.offsets else None


def put(conn, eof_setter, local, remote, in_flight, chunk, estimate=None, descending=False, straggler=None):
    size = os.path.getsize(local)
    fnum = conn.create(remote, DesiredAccess=GENERIC_READ_WRITE, ShareAccess=SHARE_READ_WRITE,
                       CreateDisposition=FILE_OVERWRITE_IF)
    try:
        if eof_setter is not None:
            eof_setter.set_end_of_file(remote, size if estimate is None else estimate)
        offsets = OffsetQueue(size, chunk, descending)

        def writer():
            with open(local, "rb") as src:
                while (offset := offsets.take()) is not None:
                    data = os.pread(src.fileno(), chunk, offset)
                    if straggler is not None and offset == straggler[0]:
                        # One request held back while the others run ahead: what a busy smbd thread
                        # pool or a client with many requests in flight produces now and then.
                        time.sleep(straggler[1])
                    conn.write(fnum, data, offset)

        run_workers(in_flight, writer)
        if eof_setter is not None and estimate is not None and estimate != size:
            eof_setter.set_end_of_file(remote, size)
    finally:
        conn.close(fnum)
    return size


def get(conn, smbc, remote, local, in_flight, chunk):
    fnum = conn.create(remote, DesiredAccess=GENERIC_READ, ShareAccess=SHARE_READ_WRITE,
                       CreateDisposition=FILE_OPEN)
    try:
        size = smbc.size_of(remote)
        offsets = OffsetQueue(size, chunk)
        with open(local, "wb") as dst:
            dst.truncate(size)

            def reader():
                while (offset := offsets.take()) is not None:
                    want = min(chunk, size - offset)
                    data = conn.read(fnum, offset, want)
                    if len(data) != want:
                        raise RuntimeError(f"short read at {offset}: {len(data)} of {want}")
                    os.pwrite(dst.fileno(), data, offset)

            run_workers(in_flight, reader)
    finally:
        conn.close(fnum)
    return size


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("op", choices=("put", "get"))
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--conf", required=True)
    parser.add_argument("--auth", required=True)
    parser.add_argument("--in-flight", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=1 << 20)
    parser.add_argument("--no-extend", action="store_true", help="put: skip setting the size first")
    parser.add_argument("--estimate", type=int, help="put: extend to this size first, cut back at the end")
    parser.add_argument("--descending", action="store_true", help="put: write the last chunk first")
    parser.add_argument("--straggler", help="put: OFFSET:SECONDS, send the write at OFFSET that much later")
    args = parser.parse_args()
    if args.in_flight < 1 or args.chunk < 1:
        parser.error("--in-flight and --chunk must be positive")
    if args.no_extend and args.estimate is not None:
        parser.error("--no-extend and --estimate exclude each other")
    straggler = None
    if args.straggler is not None:
        offset, sep, seconds = args.straggler.partition(":")
        try:
            straggler = (int(offset), float(seconds))
        except ValueError:
            parser.error("--straggler takes OFFSET:SECONDS")
        if not sep or straggler[0] % args.chunk:
            parser.error("--straggler OFFSET must be a multiple of --chunk")
    try:
        conn = connect(args.conf, args.auth)
        smbc = SmbcHelper(read_auth_file(args.auth))
        start = time.monotonic()
        if args.op == "put":
            remote = "\\" + args.dst.lstrip("\\/").replace("/", "\\")
            size = put(conn, None if args.no_extend else smbc, args.src, remote, args.in_flight, args.chunk,
                       args.estimate, args.descending, straggler)
        else:
            remote = "\\" + args.src.lstrip("\\/").replace("/", "\\")
            size = get(conn, smbc, remote, args.dst, args.in_flight, args.chunk)
        seconds = max(time.monotonic() - start, 1e-9)
    except Exception as e:          # noqa: BLE001 - one line with the NTSTATUS or OS error
        print(f"win_client.py {args.op}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"{args.op} {size} bytes in {seconds:.2f} s, {size / seconds / (1 << 20):.1f} MiB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
