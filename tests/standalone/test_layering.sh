#!/usr/bin/env bash
# Enforces the layer rules of docs/architecture.md by pattern matching the sources:
#   crypto/ includes no curl, FUSE, logging or network headers and does no I/O (no open/fopen/read/
#           write/socket/syslog/..., no printf-family output; snprintf into a buffer is fine)
#   aws/    includes no FUSE headers
# Comments and string literals are blanked before matching, so prose mentioning "write" is fine.
# S3CSEFS_SOURCE_DIR selects the tree to check (default: this checkout).
set -uo pipefail
src=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}

exec python3 - "$src" <<'EOF'
import glob
import os
import re
import sys

src = sys.argv[1]

# Comments and literals become spaces (newlines kept, so line numbers stay right); the target of an
# #include "..." is kept so that include rules still see it.
TOKENS = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
INCLUDE_QUOTED = re.compile(r'#\s*include\s*$')


def strip(text):
    def blank(m):
        s = m.group(0)
        if s.startswith('"') and INCLUDE_QUOTED.search(text[text.rfind("\n", 0, m.start()) + 1:m.start()]):
            return s
        return re.sub(r"[^\n]", " ", s)
    return TOKENS.sub(blank, text)


IO_FUNCTIONS = ("open openat creat fopen fdopen freopen read pread readv write pwrite writev fread fwrite "
                "fgets fputs puts putchar getchar socket connect send recv sendto recvfrom syslog vsyslog "
                "printf fprintf dprintf vprintf vfprintf vdprintf perror system popen unlink ioctl").split()

RULES = [
    ("crypto", re.compile(r'#\s*include\s*[<"](curl/|fuse)'),
     "crypto/ must not include curl or FUSE headers (crypto is pure; network is aws/, FUSE is fs/)"),
    ("crypto", re.compile(r'#\s*include\s*<(syslog|sys/socket|netdb|arpa/inet|netinet/[a-z_]+)\.h>'),
     "crypto/ must not include logging or network headers"),
    ("crypto", re.compile(r'(?<![A-Za-z0-9_.>])(' + "|".join(IO_FUNCTIONS) + r')\s*\('),
     "crypto/ must do no I/O (return data and errors to the caller; snprintf into a buffer is allowed)"),
    ("aws", re.compile(r'#\s*include\s*[<"](fuse)'),
     "aws/ must not include FUSE headers (only fs/ talks to FUSE)"),
]

violations = 0
for directory, pattern, message in RULES:
    for path in sorted(glob.glob(os.path.join(src, directory, "*.[ch]"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = strip(f.read()).split("\n")
        for number, line in enumerate(lines, 1):
            if pattern.search(line):
                print(f"LAYERING VIOLATION: {os.path.relpath(path, src)}:{number}: {message}\n"
                      f"    {line.strip()}", file=sys.stderr)
                violations += 1

if violations:
    print(f"test_layering: {violations} violation(s) of the layer rules in docs/architecture.md",
          file=sys.stderr)
    sys.exit(1)
print("test_layering: crypto/ and aws/ follow the layer rules")
EOF
