#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: installs what is missing, builds, runs
# `bazel test //...`, then the replay, RPC and fuzz tests again under AddressSanitizer
# (--config=asan, with the wire codec's test) and ThreadSanitizer (--config=tsan, with the
# parameter broadcast's and the metrics exporter's, and the canary whose race TSan must
# report; it builds Debian's Abseil source with TSan once per output base; see
# tests/faults/README.md), each in its own output directory, then checks the tree's
# formatting (.clang-format) and compiles the CMake build's sources against LibTorch 2.14's
# headers (deploy/gpu/check_libtorch_api.sh: the CUDA hosts' LibTorch).
# Ends with "N passed, N failed, N skipped" over the test targets of the three runs and the
# two checks (deploy/local/test_results.py): a target whose every case skipped, or a check
# that could not run, is a skip, named above that line; it exits non-zero when anything
# failed or when something skipped that must run on this machine.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

# The Kubernetes manifests' offline validator (npm packages pinned by package-lock.json) is
# installed here, not by install.sh (the demo and the container image need no npm registry):
# Bazel's sandbox keeps tests from writing into the source tree.
{ bash deploy/local/install.sh && bash deploy/k8s/validate/install.sh; } ||
  { echo "0 passed, 1 failed, 0 skipped"; exit 1; }

results=$(mktemp)
trap 'rm -f "$results"' EXIT
record() { /usr/bin/python3 deploy/local/test_results.py "$@" >>"$results"; }
start=$SECONDS
phase() {  # phase NAME: how long the step just finished took, for the timing breakdown
  echo "test.sh: $1 took $((SECONDS - start)) s"
  start=$SECONDS
}
run() {  # run NAME <bazel test args...>: one bazel test run, its targets into the results
  local name="$1" log status
  shift
  log=$(mktemp)
  bazel test --color=no --curses=no "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  record bazel "$log" "$(readlink -f bazel-testlogs)" "$status" "$name"
  rm -f "$log"
  phase "bazel test ($name)"
}
# Under both sanitizers: the replay service, its RPCs and fuzzers. Under ASan also the wire
# codec (byte buffers, no threads); under TSan also the parameter broadcast's gRPC streams,
# the metrics exporter's server thread, and the canary (a deliberate race that must be
# reported: tsan.supp and the Abseil stand-ins hide nothing of ours).
replay=(//tests/replay/... //tests/fuzz/...)
run default //... "$@"
run asan --config=asan "${replay[@]}" //tests:tensor_codec_test "$@"
run tsan --config=tsan "${replay[@]}" //tests:parameter_broadcast_test //tests:metrics_test \
  //tests/faults:tsan_canary_reports_test "$@"

# The tree stays formatted with its .clang-format.
unformatted=$(git ls-files '*.cc' '*.h' '*.cu' '*.proto' | xargs clang-format --dry-run 2>&1 |
              grep 'warning:' | cut -d: -f1 | sort | uniq -c)
if [[ -z "$unformatted" ]]; then
  record check clang-format passed
else
  sed 's/^/clang-format: /' <<<"$unformatted"
  record check clang-format failed "$(awk '{n += $1} END {print n}' <<<"$unformatted") lines" \
    "differ from .clang-format in $(wc -l <<<"$unformatted") files (clang-format -i fixes them)"
fi
phase clang-format

# The CMake build's sources against LibTorch 2.x's headers: Debian sid's 2.14, the newest (C++20).
# With Bazel's own build against Debian's 1.13 (C++17) that covers both ends of the API range
# the CUDA hosts meet (common/torch_compat.h branches only at 2.0); trixie's 2.6 is checked by
# hand (check_libtorch_api.sh trixie). Exit 2: no headers to check against.
api_log=$(mktemp)
bash deploy/gpu/check_libtorch_api.sh sid >"$api_log" 2>&1
api=$?
grep -v '^ok ' "$api_log"
case "$api" in
  0) record check "check_libtorch_api sid" passed ;;
  2) record check "check_libtorch_api sid" skipped "no LibTorch 2.x headers to check against: $(tail -1 "$api_log")" ;;
  *) record check "check_libtorch_api sid" failed "$(tail -1 "$api_log")" ;;
esac
rm -f "$api_log"
phase "check_libtorch_api sid"

# Only the GPU cases may skip here: the Bazel build links Debian's CPU-only LibTorch.
/usr/bin/python3 deploy/local/test_results.py summary "$results" \
  "--may_skip=//tests:gpu_update_test=Debian's LibTorch is CPU-only (run it on a CUDA host: deploy/gpu/)"
