#!/usr/bin/env bash
# Runs tests/python_actor_test.py against the built binaries and the Python package
# (python/softq with _softq_actor.so, from the runfiles), with Debian's python3 and numpy.
set -euo pipefail
bin_dir="$(cd "$(dirname "$1")/.." && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
python_dir="${TEST_SRCDIR:-$here/../..}/${TEST_WORKSPACE:-softq}/python"
[ -d "$python_dir/softq" ] || python_dir="$here/../python"
exec /usr/bin/python3 "$here/python_actor_test.py" "$bin_dir" "$python_dir"
