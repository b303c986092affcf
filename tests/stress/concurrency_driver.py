#!/usr/bin/env python3
"""Concurrent writers and readers on an s3csefs mount, then a check of every object in the bucket.

  concurrency_driver.py run MOUNT --duration S [--writers 8] [--readers 8] [--max-size BYTES]
                            [--manifest FILE] [--seed N]
  concurrency_driver.py check-bucket PREFIX --manifest FILE

run: writer threads create files (mixed sizes up to --max-size, about half of them *.bak) in their own
subdirectory with varying write sizes until the duration is over; reader threads meanwhile read files
that writers have already closed, whole (sha256) or in random ranges, and compare them with the bytes
that were written. File contents are generated from (seed, 1 MiB block index), so a reader can rebuild
any range without keeping the file. Prints throughput figures and writes the manifest (path, seed,
size, sha256) as JSON lines. Exit status 1 on any corruption or I/O error.

check-bucket: every manifest entry must be an object under PREFIX whose bytes (decrypted with the
Python reference tests/tools/ref_cse.py for *.bak, which also checks the envelope; as stored for other
names) hash to the recorded sha256, and no multipart upload may be left open. Needs the with-stack
environment (AWS_ENDPOINT_URL, S3CSEFS_TEST_BUCKET, S3CSEFS_TEST_KEY_ARN).
"""
import argparse
import hashlib
import json
import os
import random
import sys
import threading
import time

BLOCK = 1 << 20
WRITE_SIZES = (512, 4096, 65536, 131072, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 1)
READ_SIZES = (4095, 65536, 131072, 1 << 20, 3 * (1 << 20) + 1)


def content_block(seed, index):
    """The index-th 1 MiB block of the file with this seed (deterministic, incompressible)."""
    return random.Random(seed * 1_000_003 + index).randbytes(BLOCK)


def content_range(seed, start, end):
    """Bytes [start, end) of the file with this seed."""
    out = bytearray()
    first, last = start // BLOCK, (end - 1) // BLOCK
    for index in range(first, last + 1):
        block = content_block(seed, index)
        lo = start - index * BLOCK if index == first else 0
        hi = end - index * BLOCK if index == last else BLOCK
        out += block[lo:hi]
    return bytes(out)


def pick_size(rng, max_size):
    roll = rng.random()
    if roll < 0.15:
        return rng.choice((0, 1, 15, 16, 17))
    if roll < 0.45:
        return rng.randrange(18, 256 * 1024)
    if roll < 0.80:
        return rng.randrange(256 * 1024, min(6 * BLOCK, max_size))
    return rng.randrange(min(6 * BLOCK, max_size - 1), max_size + 1)


class Shared:
    def __init__(self):
        self.lock = threading.Lock()
        self.closed_files = []          # manifest entries of files whose close() returned
        self.errors = []
        self.bytes_written = 0
        self.bytes_read = 0
        self.files_read = 0
        self.ranged_reads = 0

    def error(self, message):
        with self.lock:
            self.errors.append(message)
        print(f"ERROR: {message}", file=sys.stderr, flush=True)


def writer(shared, mount, index, deadline, max_size, base_seed):
    rng = random.Random(base_seed * 7919 + index)
    directory = f"w{index}"
    os.makedirs(os.path.join(mount, directory), exist_ok=True)
    number = 0
    while time.monotonic() < deadline:
        number += 1
        size = pick_size(rng, max_size)
        suffix = ".bak" if rng.random() < 0.55 else ".dat"
        rel = f"{directory}/f{number:05d}-{size}{suffix}"
        seed = base_seed * 1_000_000 + index * 10_000 + number
        digest = hashlib.sha256()
        try:
            with open(os.path.join(mount, rel), "wb", buffering=0) as f:
                position = 0
                block_index, block = -1, b""
                while position < size:
                    length = min(rng.choice(WRITE_SIZES), size - position)
                    chunk = bytearray()
                    while len(chunk) < length:
                        wanted = (position + len(chunk)) // BLOCK
                        if wanted != block_index:
                            block_index, block = wanted, content_block(seed, wanted)
                        offset = position + len(chunk) - block_index * BLOCK
                        chunk += block[offset:offset + length - len(chunk)]
                    view = memoryview(chunk)
                    while view:
                        done = f.write(view)
                        view = view[done:]
                    digest.update(chunk)
                    position += length
        except OSError as error:
            shared.error(f"writing {rel}: {error}")
            continue
        with shared.lock:
            shared.bytes_written += size
            shared.closed_files.append({"path": rel, "seed": seed, "size": size,
                                        "sha256": digest.hexdigest()})


def read_whole(path, rng):
    digest = hashlib.sha256()
    total = 0
    size = rng.choice(READ_SIZES)
    with open(path, "rb", buffering=0) as f:
        while True:
            data = f.read(size)
            if not data:
                break
            digest.update(data)
            total += len(data)
    return digest.hexdigest(), total


def reader(shared, mount, index, deadline, base_seed):
    rng = random.Random(base_seed * 104729 + index)
    while time.monotonic() < deadline:
        with shared.lock:
            entry = rng.choice(shared.closed_files) if shared.closed_files else None
        if entry is None:
            time.sleep(0.05)
            continue
        path = os.path.join(mount, entry["path"])
        try:
            st = os.stat(path)
            if st.st_size != entry["size"]:
                shared.error(f"{entry['path']}: stat size {st.st_size}, written {entry['size']}")
                continue
            if entry["size"] == 0 or rng.random() < 0.6:
                got, total = read_whole(path, rng)
                if got != entry["sha256"] or total != entry["size"]:
                    shared.error(f"{entry['path']}: read {total} bytes, sha256 differs from what was written")
                with shared.lock:
                    shared.bytes_read += total
                    shared.files_read += 1
            else:
                with open(path, "rb", buffering=0) as f:
                    for _ in range(4):
                        start = rng.randrange(entry["size"])
                        end = min(entry["size"], start + rng.randrange(1, 2 * BLOCK))
                        data = os.pread(f.fileno(), end - start, start)
                        if data != content_range(entry["seed"], start, end):
                            shared.error(f"{entry['path']}: bytes [{start}, {end}) differ from what was written")
                        with shared.lock:
                            shared.bytes_read += len(data)
                            shared.ranged_reads += 1
        except OSError as error:
            shared.error(f"reading {entry['path']}: {error}")


def run(args):
    shared = Shared()
    start = time.monotonic()
    deadline = start + args.duration
    threads = [threading.Thread(target=writer, args=(shared, args.mount, i, deadline, args.max_size, args.seed))
               for i in range(args.writers)]
    threads += [threading.Thread(target=reader, args=(shared, args.mount, i, deadline, args.seed))
                for i in range(args.readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start

    # Every file, re-read once after all closes: the listing is complete and nothing changed after close.
    listed = set()
    for root, _, files in os.walk(args.mount):
        for name in files:
            listed.add(os.path.relpath(os.path.join(root, name), args.mount))
    written = {e["path"] for e in shared.closed_files}
    if listed != written:
        shared.error(f"listing differs from the files written: missing {sorted(written - listed)[:5]},"
                     f" unexpected {sorted(listed - written)[:5]}")
    rng = random.Random(args.seed)
    for entry in shared.closed_files:
        try:
            got, total = read_whole(os.path.join(args.mount, entry["path"]), rng)
        except OSError as error:
            shared.error(f"final read of {entry['path']}: {error}")
            continue
        if got != entry["sha256"] or total != entry["size"]:
            shared.error(f"final read of {entry['path']}: {total} bytes, sha256 differs")

    if args.manifest:
        with open(args.manifest, "w") as f:
            for entry in shared.closed_files:
                f.write(json.dumps(entry) + "\n")
    mib = 1 << 20
    encrypted = sum(1 for e in shared.closed_files if e["path"].endswith(".bak"))
    print(f"{args.writers} writers, {args.readers} readers, {elapsed:.1f} s: "
          f"{len(shared.closed_files)} files written ({encrypted} .bak), "
          f"{shared.bytes_written / mib:.1f} MiB at {shared.bytes_written / mib / elapsed:.1f} MiB/s; "
          f"{shared.files_read} whole reads + {shared.ranged_reads} ranged reads, "
          f"{shared.bytes_read / mib:.1f} MiB at {shared.bytes_read / mib / elapsed:.1f} MiB/s; "
          f"{len(shared.errors)} errors (seed {args.seed})")
    if len(shared.closed_files) < args.writers or shared.files_read == 0:
        print("ERROR: too little work done to mean anything", file=sys.stderr)
        return 1
    return 1 if shared.errors else 0


class _Sink:
    def __init__(self):
        self.hash = hashlib.sha256()

    def write(self, data):
        self.hash.update(data)


def check_bucket(args):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
    import ref_cse  # the independent reference: boto3 + cryptography
    store = ref_cse.Store(argparse.Namespace(region=os.environ.get("AWS_REGION", "us-east-1"),
                                             endpoint=os.environ["AWS_ENDPOINT_URL"],
                                             bucket=os.environ["S3CSEFS_TEST_BUCKET"],
                                             key_id=os.environ["S3CSEFS_TEST_KEY_ARN"]))
    entries = [json.loads(line) for line in open(args.manifest)]
    problems = []
    for entry in entries:
        key = args.prefix + entry["path"]
        sink = _Sink()
        try:
            if entry["path"].lower().endswith(".bak"):
                envelope, _, stored, length = ref_cse.get_to(store, key, sink)
                profile = ref_cse.detect_profile(envelope)
                problems += [f"{key}: {p}" for p in
                             ref_cse.check_envelope(envelope, profile, store.key_id, length, stored)]
            else:
                obj = store.s3.get_object(Bucket=store.bucket, Key=key)
                if any(name.startswith("x-amz-") for name in obj.get("Metadata", {})):
                    problems.append(f"{key}: plain name stored with an encryption envelope")
                for chunk in iter(lambda: obj["Body"].read(BLOCK), b""):
                    sink.write(chunk)
        except Exception as error:   # Corrupt, service errors: all are failures of this object
            problems.append(f"{key}: {type(error).__name__}: {error}")
            continue
        if sink.hash.hexdigest() != entry["sha256"]:
            problems.append(f"{key}: bucket bytes differ from what was written")
    uploads = store.s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    if uploads:
        problems.append(f"{len(uploads)} multipart uploads left open: {[u['Key'] for u in uploads][:5]}")
    for p in problems:
        print(f"ERROR: {p}", file=sys.stderr)
    print(f"bucket check: {len(entries)} objects, {len(problems)} problems")
    return 1 if problems else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("run")
    p.add_argument("mount")
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--writers", type=int, default=8)
    p.add_argument("--readers", type=int, default=8)
    p.add_argument("--max-size", type=int, default=24 * BLOCK)
    p.add_argument("--manifest")
    p.add_argument("--seed", type=int, default=int(time.time()))
    c = commands.add_parser("check-bucket")
    c.add_argument("prefix")
    c.add_argument("--manifest", required=True)
    args = parser.parse_args()
    return run(args) if args.command == "run" else check_bucket(args)


if __name__ == "__main__":
    sys.exit(main())
