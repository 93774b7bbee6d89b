#!/usr/bin/env bash
# Runs tests/cluster/k8s_test.py (Debian's python3) with the binaries' and deploy/k8s's paths and
# the Python actor's package (python/softq with _softq_actor.so, from the runfiles).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python_dir="${TEST_SRCDIR:-$here/../../..}/${TEST_WORKSPACE:-softq}/python"
exec /usr/bin/python3 "$here/k8s_test.py" "$1" "$2" "$3" "$4" \
  "$(dirname "$(dirname "$(readlink -f "$5")")")" "$python_dir"
