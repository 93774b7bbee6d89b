#!/usr/bin/env bash
# Runs tests/cluster/slurm_test.py (Debian's python3) with the binaries' and deploy/slurm's paths
# and the Python actor's package (python/softq with _softq_actor.so, from the runfiles).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python_dir="${TEST_SRCDIR:-$here/../../..}/${TEST_WORKSPACE:-softq}/python"
exec /usr/bin/python3 "$here/slurm_test.py" "$1" "$2" "$3" "$4" "$(dirname "$5")" "$python_dir"
