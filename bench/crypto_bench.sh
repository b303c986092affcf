#!/usr/bin/env bash
# Throughput of s3csefs' crypto core next to OpenSSL's own figure for AES-256-CBC on this machine:
#   streaming CBC encryption (cbc_encryptor_update over 1 MiB buffers), random-access CBC decryption
#   (cbc_decrypt_blocks over 1 MiB ranges), CRC32C, each over $MIB MiB (default 1024) in memory,
#   reported as MB/s and CPU seconds per GiB (the product's budget is <= 1.5 CPU s per GiB written).
#
#   bench/crypto_bench.sh [BUILD_DIR]      (BUILD_DIR defaults to $S3CSEFS_BUILD_DIR, then ./build)
# Prints figures only; it is not a pass/fail test.
set -euo pipefail
build=${1:-${S3CSEFS_BUILD_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build}}
tool=$build/tests/cse_crypt
mib=${MIB:-1024}
[ -x "$tool" ] || { echo "crypto_bench: $tool not built (cmake --build $build)" >&2; exit 2; }

echo "== s3csefs crypto core, $mib MiB in 1 MiB buffers ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
"$tool" bench-enc --mib "$mib"
"$tool" bench-dec --mib "$mib"
"$tool" bench-crc --mib "$mib"

echo "== openssl speed -evp aes-256-cbc (encryption, 1 MiB blocks, 3 s)"
line=$(openssl speed -evp aes-256-cbc -bytes 1048576 -seconds 3 2>/dev/null | grep -i '^AES-256-CBC' | tail -1)
# The figure is in thousands of bytes per second ("1021097.45k").
kbps=$(echo "$line" | awk '{print $NF}' | tr -d k)
awk -v k="$kbps" 'BEGIN { if (k > 0) printf "openssl: %.0f MB/s per CPU s, %.3f CPU s/GiB\n", k / 1000, 1073741824 / (k * 1000) }'
