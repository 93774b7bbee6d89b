#!/bin/bash
# The layers (tests/layering_test.py): env/ and policy/ on common/ only, actor/ never
# reaching learner/. Reads the BUILD files and sources in the runfiles; runs no Bazel.
set -euo pipefail
exec python3 "$(dirname "$0")/layering_test.py" "$@"
