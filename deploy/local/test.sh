#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: installs what is missing, builds,
# runs `bazel test //...`, then the replay, RPC and fuzz tests again under AddressSanitizer
# (--config=asan, with the wire codec's test) and ThreadSanitizer (--config=tsan, with the
# parameter broadcast's and the metrics exporter's; it builds Debian's Abseil source with TSan
# once per output base; see tests/faults/README.md), each in its own output directory,
# then compiles the sources against LibTorch 2.x's headers, 2.6 and 2.14
# (deploy/gpu/check_libtorch_api.sh: the CUDA hosts' LibTorch), and ends with "N passed, N
# failed" counting the test targets of the three runs and those two checks.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

# The Kubernetes manifests' offline validator (npm packages pinned by package-lock.json) is
# installed here, not by install.sh (the demo and the container image need no npm registry):
# Bazel's sandbox keeps tests from writing into the source tree.
{ bash deploy/local/install.sh && bash deploy/k8s/validate/install.sh; } ||
  { echo "0 passed, 1 failed"; exit 1; }

log=$(mktemp)
rc=0
run() {  # run <bazel test args...>: appends to the log, keeps the first failure's status
  bazel test --color=no --curses=no "$@" 2>&1 | tee -a "$log"
  local status=${PIPESTATUS[0]}
  if [ "$rc" -eq 0 ]; then rc=$status; fi
}
# Under both sanitizers: the replay service, its RPCs and fuzzers. Under ASan also the wire
# codec (byte buffers, no threads); under TSan also the parameter broadcast's gRPC streams and
# the metrics exporter's server thread.
replay=(//tests/replay/... //tests/fuzz/...)
run //... "$@"
run --config=asan "${replay[@]}" //tests:tensor_codec_test "$@"
run --config=tsan "${replay[@]}" //tests:parameter_broadcast_test //tests:metrics_test "$@"

passed=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log")
failed=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|FLAKY|NO STATUS|INCOMPLETE|REMOTE FAILURE|FAILED TO BUILD)' "$log")

# The same sources against LibTorch 2.x's headers: Debian trixie's 2.6 (C++17) and sid's
# 2.14 (the newest, C++20), one more passed or failed check each. Skipped, and said, only
# when there are no headers to check against (Debian's archive out of reach).
for suite in trixie sid; do
  api_log=$(mktemp)
  bash deploy/gpu/check_libtorch_api.sh "$suite" >"$api_log" 2>&1
  api=$?
  grep -v '^ok ' "$api_log"
  case "$api" in
    0) passed=$((passed + 1)) ;;
    2) echo "check_libtorch_api $suite: skipped (no LibTorch 2.x headers to check against)" ;;
    *) failed=$((failed + 1)); if [ "$rc" -eq 0 ]; then rc=1; fi ;;
  esac
  rm -f "$api_log"
done
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi  # the build itself failed
rm -f "$log"
echo "$passed passed, $failed failed"
exit "$rc"
