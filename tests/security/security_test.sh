#!/usr/bin/env bash
# Runs tests/security/security_test.py against the built binaries, the credentials script and
# the Python package (python/softq with _softq_actor.so, from the runfiles).
set -euo pipefail
bin_dir="$(cd "$(dirname "$1")/.." && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
root="${TEST_SRCDIR:-$here/../../..}/${TEST_WORKSPACE:-softq}"
[ -d "$root/python/softq" ] || root="$here/../.."
exec /usr/bin/python3 "$here/security_test.py" "$bin_dir" \
  "$root/deploy/local/make_credentials.sh" "$root/python"
