#!/usr/bin/env bash
# Runs a Python fault test (tests/faults/*.py) against the built binaries with Debian's
# python3 (the one with torch). $1: path of //replay:replay_server (locates bazel-bin),
# $2: the script, $3...: its arguments.
set -euo pipefail
bin_dir="$(cd "$(dirname "$1")/.." && pwd)"
script="$2"
shift 2
exec /usr/bin/python3 "$script" "$bin_dir" "$@"
