#!/usr/bin/env bash
# Runs tests/own_model_test.py against the built binaries (Debian's python3 for torch).
set -euo pipefail
bin_dir="$(cd "$(dirname "$1")/.." && pwd)"
exec /usr/bin/python3 "$(dirname "$0")/own_model_test.py" "$bin_dir"
