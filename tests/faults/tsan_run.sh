#!/bin/bash
# --run_under wrapper of `bazel test --config=tsan` (.bazelrc): runs the test with Debian's
# Abseil synchronization libraries replaced by TSan-instrumented builds of the same source
# (@absl_tsan, third_party/absl_tsan/) and with tsan.supp, whose entries are limited to frames
# in Debian's uninstrumented gRPC/Protobuf libraries. Both variables are inherited by the
# processes a test starts (replay_server), so they run the same way.
set -euo pipefail
# Under `bazel test` this wrapper's runfiles are merged into the test's ($TEST_SRCDIR);
# under `bazel run` it has its own.
rf="${TEST_SRCDIR:-${BASH_SOURCE[0]}.runfiles}"
[[ -d "$rf" ]] || { echo "tsan_run: no runfiles at $rf" >&2; exit 1; }
lib="$rf/absl_tsan/out/lib"
supp="$rf/softq/tests/faults/tsan.supp"
[[ -e "$lib/libabsl_synchronization.so.20220623" ]] || { echo "tsan_run: no TSan Abseil in $lib" >&2; exit 1; }
[[ -e "$supp" ]] || { echo "tsan_run: no $supp" >&2; exit 1; }
lib=$(realpath "$(dirname "$(realpath "$lib/libabsl_synchronization.so.20220623")")")
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}suppressions=$(realpath "$supp")"
exec "$@"
