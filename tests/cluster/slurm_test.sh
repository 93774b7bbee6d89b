#!/usr/bin/env bash
# Runs tests/cluster/slurm_test.py (Debian's python3) with the binaries' and deploy/slurm's paths.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/slurm_test.py" "$1" "$2" "$3" "$4" "$(dirname "$5")"
