"""Shared by the Python integration tests: finding a tool the build made, and recording checks.

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    from itest import check, find_tool, finish
"""
import os
import sys

_failures = []
_passes = 0


def find_tool(name):
    """The built tool `name`: $S3CSEFS_<NAME>, else under $S3CSEFS_BUILD_DIR/tests[/tools]."""
    explicit = os.environ.get("S3CSEFS_" + name.upper())
    if explicit:
        return explicit
    build = os.environ.get("S3CSEFS_BUILD_DIR", "")
    for candidate in (os.path.join(build, "tests", name), os.path.join(build, "tests", "tools", name)):
        if os.access(candidate, os.X_OK):
            return candidate
    sys.exit(f"cannot find {name}: set S3CSEFS_BUILD_DIR or S3CSEFS_{name.upper()}")


def check(condition, what, detail=""):
    """Prints ok:/FAIL: for one check and remembers a failure."""
    global _passes
    if condition:
        _passes += 1
        print("ok:", what)
    else:
        _failures.append(what)
        print("FAIL:", what, detail, file=sys.stderr, flush=True)


def failures():
    return len(_failures)


def finish():
    """Prints the tally and exits non-zero if any check failed."""
    print(f"{_passes} passed, {len(_failures)} failed")
    sys.exit(1 if _failures else 0)
