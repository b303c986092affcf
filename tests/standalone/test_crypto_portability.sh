#!/usr/bin/env bash
# The crypto library must run on any x86-64 CPU and build on other architectures:
#   1. no SSE4.2/PCLMUL (or -march) flag for the whole library: only the CRC32C functions that carry a
#      target attribute may use those instructions, after the runtime CPU check;
#   2. in the built library, the crc32 and pclmul instructions appear in crc32c.c's object only;
#   3. crc32c.c compiles for arm64 (clang --target=aarch64-linux-gnu with the Debian arm64 libc headers;
#      this part is skipped with a note when those are not installed).
# S3CSEFS_SOURCE_DIR / S3CSEFS_BUILD_DIR select the tree and the build (defaults: this checkout, ./build).
set -uo pipefail
src=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${S3CSEFS_BUILD_DIR:-$src/build}
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

flags=$build/crypto/CMakeFiles/s3csefs_crypto.dir/flags.make
if [ ! -f "$flags" ]; then
    echo "SKIP: $flags not found (configure $build first)"
    exit 77
fi
if grep -E '^C_FLAGS' "$flags" | grep -qE -- '-m(sse4|pclmul|avx|crc32)|-march='; then
    fail "crypto library compiled with CPU-specific flags: $(grep -E '^C_FLAGS' "$flags")"
fi

lib=$build/crypto/libs3csefs_crypto.a
if [ -f "$lib" ] && command -v objdump >/dev/null; then
    disassembly=$(objdump -d "$lib")
    offenders=$(awk '/file format/ { obj = $1 }
        /\t(crc32[bwlq]?|pclmul[a-z]*qdq) / && obj != "crc32c.c.o:" { print obj }' <<<"$disassembly" | sort -u)
    [ -z "$offenders" ] || fail "crc32/pclmul instructions outside crc32c.c: $offenders"
    grep -qE $'\tcrc32[bwlq]? ' <<<"$disassembly" || fail "no crc32 instruction at all: hardware CRC32C path lost"
fi

arm_headers=/usr/aarch64-linux-gnu/include
if command -v clang >/dev/null && [ -d "$arm_headers" ]; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
    if ! clang --target=aarch64-linux-gnu -std=gnu11 -O2 -Wall -Wextra -Werror -isystem "$arm_headers" \
            -I"$src/crypto" -c "$src/crypto/crc32c.c" -o "$out/crc32c.o" 2>"$out/err"; then
        fail "crc32c.c does not compile for arm64: $(head -3 "$out/err")"
    fi
else
    echo "note: arm64 compile check skipped (needs clang and libc6-dev-arm64-cross)"
fi

[ "$failures" -eq 0 ] && echo "ok: crypto portability checks"
exit $((failures > 0))
