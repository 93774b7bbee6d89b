#!/usr/bin/env bash
# The C++ critic loss, policy surrogate and their gradients equal those of the independent
# Python implementation (tests/sql_reference.py, Debian's python3-torch) to 1e-5.
set -euo pipefail
dump_bin="$1"
reference="$2"
out="${TEST_TMPDIR:-/tmp}/sql_crosscheck.txt"
"$dump_bin" "$out"
/usr/bin/python3 "$reference" crosscheck "$out"
