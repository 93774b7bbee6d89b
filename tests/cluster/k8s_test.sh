#!/usr/bin/env bash
# Runs tests/cluster/k8s_test.py (Debian's python3) with the binaries' and deploy/k8s's paths.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/k8s_test.py" "$1" "$2" "$3" "$4" \
  "$(dirname "$(dirname "$(readlink -f "$5")")")"
