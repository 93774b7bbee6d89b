#!/usr/bin/env bash
# The CMake build (CMakeLists.txt) against this machine's packages, from an empty build
# folder, then a smoke run of every binary it makes. Keeps the CMake build from drifting
# from the Bazel build: a source file named in a BUILD file but not in CMakeLists.txt fails
# here, and so does anything that no longer compiles or links under CMake.
#
#   bazel test //tests/cmake:cmake_smoke_test        (in CI, via `bazel test //...`)
#   bash tests/cmake/cmake_smoke_test.sh [BUILD_DIR] (by hand; BUILD_DIR is kept)
#
# Environment: SOFTQ_CMAKE_ARGS (extra configure arguments, e.g.
# "-DSOFTQ_DEPS_PREFIX=/tmp/debs -DSOFTQ_LIBTORCH=/opt/libtorch"), SOFTQ_CMAKE_JOBS (default 2).
set -euo pipefail

src="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"
# A throw-away build (no BUILD_DIR) is unoptimized: it only has to compile, link and start, and
# the Bazel build compiles the same sources with -O2 -Werror (warnings only optimization finds).
# A given BUILD_DIR (run_on_cuda_host.sh's) keeps the project's Release build.
build_type=()
if [ $# -ge 1 ]; then
  build="$1"
else
  build="${TEST_TMPDIR:-$(mktemp -d)}/cmake-build"
  [[ "${SOFTQ_CMAKE_ARGS:-}" == *CMAKE_BUILD_TYPE* ]] || build_type=(-DCMAKE_BUILD_TYPE=None)
fi
jobs="${SOFTQ_CMAKE_JOBS:-2}"
export OPENBLAS_NUM_THREADS=1
fail() { echo "cmake_smoke_test: FAIL: $*" >&2; exit 1; }
step() { echo "cmake_smoke_test: $* ($(( SECONDS ))s)"; }

# 1. Every source file of the Bazel targets the CMake build mirrors is in CMakeLists.txt.
step "checking file lists against BUILD files in $src"
missing=()
for pkg in common env policy eval replay learner actor bench; do
  while read -r f; do
    case "$pkg/$f" in replay/child_process.cc) continue ;; esac  # test-only helper
    grep -q "$pkg/$f" "$src/CMakeLists.txt" || missing+=("$pkg/$f")
  done < <(grep -oE '"[A-Za-z0-9_]+\.cc"' "$src/$pkg/BUILD" | tr -d '"')
done
for p in "$src"/proto/*.proto; do
  grep -q "proto/$(basename "$p")" "$src/CMakeLists.txt" || missing+=("proto/$(basename "$p")")
done
[ ${#missing[@]} -eq 0 ] || fail "in a BUILD file but not in CMakeLists.txt: ${missing[*]}"

# 2. Configure and build.
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
step "configuring in $build"
# shellcheck disable=SC2086  # SOFTQ_CMAKE_ARGS is a list of arguments
cmake -S "$src" -B "$build" "${generator[@]}" "${build_type[@]}" ${SOFTQ_CMAKE_ARGS:-} >"$build.configure.log" 2>&1 \
  || { cat "$build.configure.log"; fail "cmake configure"; }
grep "softq:" "$build.configure.log" || true
step "building with -j$jobs"
cmake --build "$build" -j "$jobs" >"$build.build.log" 2>&1 \
  || { tail -100 "$build.build.log"; fail "cmake build"; }
step "built"

# 3. The binaries, laid out like bazel-bin.
for b in replay/replay_server replay/replay_stats learner/learner_main learner/train_in_process \
         actor/actor_main bench/sql_update_bench cmake/torch_compat_check; do
  [ -x "$build/$b" ] || fail "no $build/$b"
done
for b in learner/learner_main actor/actor_main replay/replay_stats bench/sql_update_bench; do
  "$build/$b" --help >/dev/null 2>&1 || fail "$b --help exited $?"
done
step "--help: learner_main, actor_main, replay_stats, sql_update_bench exit 0"

compat="$("$build/cmake/torch_compat_check")" || fail "torch_compat_check exited $?"
step "$compat"

# The GPU test where GoogleTest was found, with no device visible (its cases skip): it links
# and runs. run_on_cuda_host.sh's check phase runs it on the GPU.
if [ -x "$build/tests/gpu_update_test" ]; then
  out="$build.gpu_update_test.out"
  rc=0
  # (Without Bazel's XML variables: its report would replace this test's own test.xml.)
  env -u GTEST_OUTPUT -u XML_OUTPUT_FILE CUDA_VISIBLE_DEVICES="" "$build/tests/gpu_update_test" \
    >"$out" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || { tail -30 "$out"; fail "gpu_update_test exited $rc"; }
  step "gpu_update_test without a device: $(grep -cE '^\[ +SKIPPED +\] .* \([0-9]+ ms\)$' "$out") cases skipped, exit 0"
else
  step "no GoogleTest: gpu_update_test not built"
fi

out="$build.replay_server.out"
"$build/replay/replay_server" --port=0 >"$out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  grep -q "replay_server listening on" "$out" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
grep -q "replay_server listening on 127.0.0.1:[0-9]" "$out" \
  || { kill -KILL "$pid" 2>/dev/null; cat "$out"; fail "replay_server printed no listening line"; }
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$out"; fail "replay_server exited $rc on SIGTERM"; }
step "replay_server: $(grep -m1 listening "$out"), exit 0 on SIGTERM"

out="$build.train.out"
rc=0
"$build/learner/train_in_process" --max_env_steps=300 --eval_interval=0 --eval_rollouts=5 \
  >"$out" 2>&1 || rc=$?
# 0: solved; 1: not solved (expected after 300 steps). Either way it must reach the end.
if [ "$rc" -gt 1 ] || ! grep -q "^final:" "$out"; then
  tail -20 "$out"; fail "train_in_process exited $rc"
fi
step "train_in_process: exit $rc, $(grep -m1 '^final:' "$out")"
# CPU time of everything above (the build's compilers included), independent of machine load.
times >"$build.times"  # in this shell: a subshell would count none of them
echo "cmake_smoke_test: PASS in ${SECONDS}s; CPU time of children (user, sys):" \
  "$(tail -1 "$build.times")"
