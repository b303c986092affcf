# Common start of an integration test script (bash). Source it right after `set -uo pipefail`:
#   . "$(dirname "$0")/../lib/itest.sh"
# It refuses to run outside tests/lib/with-stack, loads the mount helpers (mount.sh), names the two
# independent reference implementations of the format, and counts results with fail/pass.
: "${AWS_ENDPOINT_URL:?run me through tests/lib/with-stack}"
src_dir=${S3CSEFS_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$src_dir/tests/lib/mount.sh"
PY=${S3CSEFS_PYTHON:-python3}
REF_PY="$PY $src_dir/tests/tools/ref_cse.py"
REF_RB="ruby $src_dir/tests/tools/ref_cse.rb"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
