#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: installs what is missing, builds, runs
# `bazel test //...`, then the replay, RPC and fuzz tests again under AddressSanitizer
# (--config=asan, with the wire codec's test) and ThreadSanitizer (--config=tsan, with the
# parameter broadcast's and the metrics exporter's, and the canary whose race TSan must
# report; it builds Debian's Abseil source with TSan once per output base; see
# tests/faults/README.md), each in its own output directory, then checks the tree's
# formatting (.clang-format) and compiles the sources against LibTorch 2.x's headers, 2.6
# and 2.14, side by side (deploy/gpu/check_libtorch_api.sh: the CUDA hosts' LibTorch).
# Ends with "N passed, N failed, N skipped" over the test targets of the three runs and the
# three checks (deploy/local/test_results.py): a target whose every case skipped, or a check
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

# The same sources against LibTorch 2.x's headers: Debian trixie's 2.6 (C++17) and sid's
# 2.14 (the newest, C++20), one check each. The two run side by side: each has serial stretches
# (its precompiled header, the CUDA branch) that the other's compiles fill. Exit 2: no headers
# to check against.
suites=(trixie sid)
declare -A api_log api_pid
for suite in "${suites[@]}"; do
  api_log[$suite]=$(mktemp)
  bash deploy/gpu/check_libtorch_api.sh "$suite" >"${api_log[$suite]}" 2>&1 &
  api_pid[$suite]=$!
done
for suite in "${suites[@]}"; do
  api=0
  wait "${api_pid[$suite]}" || api=$?
  grep -v '^ok ' "${api_log[$suite]}"
  case "$api" in
    0) record check "check_libtorch_api $suite" passed ;;
    2) record check "check_libtorch_api $suite" skipped "no LibTorch 2.x headers to check against: $(tail -1 "${api_log[$suite]}")" ;;
    *) record check "check_libtorch_api $suite" failed "$(tail -1 "${api_log[$suite]}")" ;;
  esac
  rm -f "${api_log[$suite]}"
done
phase "check_libtorch_api ${suites[*]}"

# Only the GPU cases may skip here: the Bazel build links Debian's CPU-only LibTorch.
/usr/bin/python3 deploy/local/test_results.py summary "$results" \
  "--may_skip=//tests:gpu_update_test=Debian's LibTorch is CPU-only (run it on a CUDA host: deploy/gpu/)"
