#!/usr/bin/env bash
# Runs the test script tests/$1 against the built binaries ($2: a binary of bazel-bin's replay/,
# whose parent's parent is the bin directory) with Debian's python3 (for torch).
set -euo pipefail
bin_dir="$(cd "$(dirname "$2")/.." && pwd)"
exec /usr/bin/python3 "$(dirname "$0")/$1" "$bin_dir"
