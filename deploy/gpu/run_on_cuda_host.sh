#!/usr/bin/env bash
# softq on a CUDA host that has a PyTorch wheel (LibTorch inside it), CMake, a C++ compiler
# and nvidia drivers, but no gRPC, Protobuf, Abseil or Bazel. Run from a copy of the working
# tree that carries deploy/gpu/debs/ (made here by deploy/gpu/fetch_debs.sh).
#
#   bash deploy/gpu/run_on_cuda_host.sh [PHASE...]      PHASE: build check bench demo scaling
#                                                       all (default: all)
# Phases (each fits in one 10-minute command; the build folder is reused between calls):
#   build    unpack the .debs with dpkg -x into a prefix, configure against the wheel's
#            LibTorch and that prefix, build, and run the CMake smoke test
#   check    tests/gpu_update_test on the GPU: the update's gradients against the CPU's, the
#            CUDA graph against eager updates, the fused kernels against ATen, FlatAdam
#            against torch::optim::Adam (a failure is counted, the phases after it run, and
#            their learner leaves out what failed: see check_fallbacks)
#   bench    the SQL update benchmark: CPU (C++ vs the wheel's Python) at batch 64/256/1024,
#            and on the GPU, eager and replayed as a CUDA graph on 1 and 2 streams;
#            what 2 replay shards feed a learner (actor_learner_bench), and the cost of
#            --prioritized on the GPU learner (bench/prioritized_bench.py)
#   demo     deploy/local/launch.py with the learner on --device=cuda and 8 actors on the CPU
#   scaling  actor processes 1, 2, 4, 8, 12 against 2 shards and a GPU learner: env steps/s
#
# Environment (all optional):
#   PYTHON        interpreter with torch (default python3)
#   SOFTQ_LIBTORCH  LibTorch prefix (default: the torch package's folder)
#   DEBS          folder of .deb files (default deploy/gpu/debs)
#   PREFIX        where the .debs are unpacked (default $BUILD/deps)
#   BUILD         CMake build folder (default deploy/gpu/build-cuda, ignored by git)
#   RESULTS       where logs and tables go (default out/gpu)
#   PACK_TO       summary.txt written here too, line by line, and after each phase (and on
#                 exit) a tarball of RESULTS, results.tgz (default $OUT when it is set: the
#                 device tool brings back at most 8 files, and what is in $OUT when a
#                 command is stopped at its limit)
#   TIME_BUDGET   seconds this run may take (default 0: no limit): with one, the CPU rows of
#                 the benchmark are skipped when less than 240 s are left, and the scaling
#                 phase shortens its rows to what is left (at least 12 s each) or is skipped
#   JOBS          build parallelism (default: nproc)
#   DEVICE        learner device for demo/scaling (default cuda; "cpu" to test this script
#                 on a machine without a GPU)
#   BENCH_UPDATES, BENCH_CPU_UPDATES  timed updates per GPU / CPU benchmark row (2000; 100:
#                 a CPU update at batch 1024 takes ~0.1 s, and Python's as long again; 0: no
#                 CPU rows)
#   LEARNER_FLAGS learner flags for demo/scaling, after those of the configuration the
#                 benchmark found fastest at batch 64 (e.g. --cuda_graph_streams=1)
#   CUDA_GRAPHS   AUTO (default), ON or OFF: CMake's SOFTQ_CUDA_GRAPHS; with AUTO a build that
#                 fails in the CUDA graph code is retried without it
#   CUDA_KERNELS  AUTO (default), ON or OFF: CMake's SOFTQ_CUDA_KERNELS (the fused kernels,
#                 compiled by nvcc); with AUTO a build that fails in them is retried without
#   SCALING_ACTORS, SCALING_SECONDS  actor counts and seconds per row (default 1,2,4,8,12; 25)
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"

PYTHON="${PYTHON:-python3}"
DEBS="${DEBS:-$root/deploy/gpu/debs}"
BUILD="${BUILD:-$root/deploy/gpu/build-cuda}"
PREFIX="${PREFIX:-$BUILD/deps}"
RESULTS="${RESULTS:-$root/out/gpu}"
PACK_TO="${PACK_TO:-${OUT:-}}"
TIME_BUDGET="${TIME_BUDGET:-0}"
JOBS="${JOBS:-$(nproc)}"
DEVICE="${DEVICE:-cuda}"
mkdir -p "$RESULTS" "$BUILD"
failures=0
[ -z "$PACK_TO" ] || { mkdir -p "$PACK_TO"; : >"$PACK_TO/summary.txt"; }
# Appends standard input to the summary (and its copy in PACK_TO), echoing it.
summary() { tee -a "$RESULTS/summary.txt" ${PACK_TO:+"$PACK_TO/summary.txt"}; }
log() { echo "run_on_cuda_host: $*" | summary; }
die() { log "FAILED: $*"; exit 1; }

phases=("$@")
[ ${#phases[@]} -gt 0 ] || phases=(all)
want() { local p; for p in "${phases[@]}"; do [ "$p" = "$1" ] || [ "$p" = all ] && return 0; done; return 1; }
# Seconds left of TIME_BUDGET (a large number without one).
seconds_left() { if [ "$TIME_BUDGET" -gt 0 ]; then echo $((TIME_BUDGET - SECONDS)); else echo 999999; fi; }
# The results so far to PACK_TO as one tarball (written beside and renamed, so a run stopped
# mid-way leaves the previous whole one).
pack() {
  [ -n "$PACK_TO" ] || return 0
  tar -C "$(dirname "$RESULTS")" -czf "$PACK_TO/results.tgz.part" "$(basename "$RESULTS")" \
    2>/dev/null && mv "$PACK_TO/results.tgz.part" "$PACK_TO/results.tgz"
}
trap pack EXIT
trap 'exit 143' TERM  # (so that the EXIT trap packs)
# Runs phase $1 (a function of that name), logs its duration and packs the results.
run_phase() {
  local t0=$SECONDS
  "$1"
  log "$1: $((SECONDS - t0)) s"
  pack
}

# --- the host -------------------------------------------------------------------------------
describe_host() {
  {
    echo "== $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores"
    (. /etc/os-release 2>/dev/null && echo "os: ${PRETTY_NAME:-?}") || true
    echo "glibc: $(ldd --version 2>/dev/null | head -1)"
    echo "compiler: $(c++ --version 2>/dev/null | head -1)"
    echo "cmake: $(cmake --version | head -1); ninja: $(ninja --version 2>/dev/null || echo none)"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
      || echo "nvidia-smi: none"
    "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
"cxx11_abi", getattr(torch, "compiled_with_cxx11_abi", lambda: True)(), "cuda_available", torch.cuda.is_available())' \
      || echo "torch: $PYTHON cannot import it"
  } 2>&1 | tee -a "$RESULTS/host.txt"
}

# The wheel's LibTorch must use the C++11 ABI: Debian's gRPC/Protobuf/Abseil do.
torch_prefix() {
  "$PYTHON" - <<'PY'
import os, sys, torch
# (2.8+ ship only C++11-ABI builds; the query may be gone from later releases.)
if not getattr(torch, "compiled_with_cxx11_abi", lambda: True)():
    sys.exit("torch %s was built with the pre-C++11 ABI; Debian's gRPC/Protobuf/Abseil use "
             "the C++11 ABI (toolchain notes)" % torch.__version__)
print(os.path.dirname(torch.__file__))
PY
}

# --- build ----------------------------------------------------------------------------------
unpack_debs() {
  ls "$DEBS"/*.deb >/dev/null 2>&1 || die "no .deb files in $DEBS (run deploy/gpu/fetch_debs.sh on the Debian machine and carry deploy/gpu/debs)"
  if [ -f "$PREFIX/.unpacked" ] && [ "$PREFIX/.unpacked" -nt "$DEBS" ]; then return; fi
  rm -rf "$PREFIX" && mkdir -p "$PREFIX"
  local d
  for d in "$DEBS"/*.deb; do
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$d" "$PREFIX"
    else  # no dpkg (not a Debian-family image): a .deb is an ar archive holding data.tar.xz
      ar p "$d" data.tar.xz | tar -xJ -C "$PREFIX"
    fi
  done
  touch "$PREFIX/.unpacked"
  log "unpacked $(ls "$DEBS"/*.deb | wc -l) packages into $PREFIX ($(du -sh "$PREFIX" | cut -f1))"
}

# Debian 12's libraries need glibc >= 2.34 and libstdc++ with GLIBCXX_3.4.29 (GCC 11+).
check_runtime() {
  local glibc
  glibc="$(getconf GNU_LIBC_VERSION | awk '{print $2}')"
  if [ "$(printf '%s\n2.34\n' "$glibc" | sort -V | head -1)" != "2.34" ]; then
    die "glibc $glibc is older than 2.34, which Debian 12's gRPC/Protobuf need"
  fi
  local stdcxx
  stdcxx="$(c++ -print-file-name=libstdc++.so.6)"
  if [ -f "$stdcxx" ] && ! grep -qa GLIBCXX_3.4.29 "$(readlink -f "$stdcxx")"; then
    die "$stdcxx lacks GLIBCXX_3.4.29 (GCC 11+), which Debian 12's gRPC/Protobuf need"
  fi
}

cmake_args() {
  echo "-DSOFTQ_LIBTORCH=$SOFTQ_LIBTORCH -DSOFTQ_DEPS_PREFIX=$PREFIX -DSOFTQ_TORCH_CMAKE_CONFIG=$torch_config -DSOFTQ_CUDA_GRAPHS=$graphs -DSOFTQ_CUDA_KERNELS=$kernels"
}

build() {
  unpack_debs
  check_runtime
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  # LibTorch's own TorchConfig.cmake first (it also sets up CUDA), with the fused kernels as
  # asked; if that cannot configure on this host, without the kernels, then the plain-flags
  # path that the Bazel wrapper uses, with and without them.
  local attempt tried=0
  for attempt in "$torch_config $kernels" "$torch_config OFF" "OFF $kernels" "OFF OFF"; do
    read -r torch_config kernels <<<"$attempt"
    [ "$tried" = 0 ] || rm -f "$BUILD/CMakeCache.txt"
    tried=1
    # shellcheck disable=SC2046
    if cmake -S "$root" -B "$BUILD" "${gen[@]}" $(cmake_args) >"$RESULTS/configure.log" 2>&1; then
      break
    fi
    mv "$RESULTS/configure.log" "$RESULTS/configure-failed-torchconfig-$torch_config-kernels-$kernels.log"
    log "cmake did not configure with TorchConfig.cmake $torch_config and fused kernels" \
        "$kernels (configure-failed-*.log); trying with less"
  done
  [ -f "$RESULTS/configure.log" ] || {
    tail -30 "$RESULTS/configure-failed-torchconfig-OFF-kernels-OFF.log"; die "cmake configure"; }
  grep "softq:" "$RESULTS/configure.log" | summary
  local t0=$SECONDS
  until cmake --build "$BUILD" -j "$JOBS" >"$RESULTS/build.log" 2>&1; do
    # The fused kernels and the CUDA graph code are the parts no CPU machine has built
    # against this LibTorch: if the build fails in one, keep the rest and say so.
    if [ "$kernels" = AUTO ] && grep -qE "kernel_launch|fused_ops" "$RESULTS/build.log"; then
      mv "$RESULTS/build.log" "$RESULTS/build-cuda-kernels.log"
      log "the fused CUDA kernels did not build (build-cuda-kernels.log); building without them"
      kernels=OFF
    elif [ "$graphs" = AUTO ] &&
         grep -qE "FAILED:.*cuda_graph_update|cuda_graph_update\.cc(\.o)?:" "$RESULTS/build.log"; then
      mv "$RESULTS/build.log" "$RESULTS/build-cuda-graphs.log"
      log "the CUDA graph code did not build (build-cuda-graphs.log); building without it"
      graphs=OFF
    else
      tail -60 "$RESULTS/build.log"; die "cmake build"
    fi
    # shellcheck disable=SC2046
    cmake -S "$root" -B "$BUILD" $(cmake_args) >>"$RESULTS/configure.log" 2>&1 \
      || die "cmake reconfigure (kernels $kernels, graphs $graphs)"
  done
  log "built in $((SECONDS - t0)) s with -j$JOBS"
  SOFTQ_CMAKE_ARGS="$(cmake_args)" SOFTQ_CMAKE_JOBS="$JOBS" \
    bash "$root/tests/cmake/cmake_smoke_test.sh" "$BUILD" 2>&1 | tee "$RESULTS/smoke.log" \
    | grep "cmake_smoke_test:" || true
  grep -q "cmake_smoke_test: PASS" "$RESULTS/smoke.log" || die "smoke test (see smoke.log)"
  log "smoke test passed"
}

check() {
  local binary="$BUILD/tests/gpu_update_test"
  rm -f "$RESULTS/gpu_test.log"
  if [ ! -x "$binary" ]; then
    log "FAILED: no $binary (no GoogleTest at configure: is libgtest-dev in $DEBS?)"
    failures=$((failures + 1))
    return
  fi
  local rc=0
  "$binary" --gtest_color=no >"$RESULTS/gpu_test.log" 2>&1 || rc=$?
  log "gpu_update_test on $DEVICE (exit $rc):"
  case_results "$RESULTS/gpu_test.log" | summary
  [ "$rc" -eq 0 ] || { log "FAILED: gpu_update_test (see gpu_test.log)"; failures=$((failures + 1)); }
  check_fallbacks
  [ -z "$check_flags" ] || log "so the demo's and scaling's learner gets:$check_flags"
}

# gpu_update_test's result lines in log $1: "[       OK ] Suite.Case (12 ms)" (OK, FAILED or
# SKIPPED).
case_results() { grep -E '^\[ +(OK|FAILED|SKIPPED) +\] [^ ]+ \([0-9]+ ms\)$' "$1" || true; }

# Sets check_flags (the check phase, else the first phase that needs it): the learner
# flags that leave out what gpu_update_test did not pass on this host (a case that failed,
# crashed or never ran), from the check phase's log of this run or an earlier one:
# --fused_kernels=false for a fused kernel, --cuda_graph_streams=1 for the graph on two
# streams, --cuda_graph=false for the graph on one. Without that log, the first and the last.
check_fallbacks() {
  local log="$RESULTS/gpu_test.log" binary="$BUILD/tests/gpu_update_test" not_passed
  if [ ! -s "$log" ] || [ ! -x "$binary" ]; then
    check_flags=" --fused_kernels=false --cuda_graph=false"
    return
  fi
  not_passed="$("$binary" --gtest_list_tests | awk '/^[^ ]/ {suite = $1} /^  / {print suite $1}' |
                grep -vxFf <(case_results "$log" | sed -nE 's/^\[ +(OK|SKIPPED) +\] ([^ ]+) .*/\2/p'
                             echo) || true)"
  check_flags=""
  if grep -q '^GpuFusedKernels\.' <<<"$not_passed"; then check_flags+=" --fused_kernels=false"; fi
  if grep -q '^GpuCudaGraph\.OnOneStream' <<<"$not_passed"; then
    check_flags+=" --cuda_graph=false"
  elif grep -q '^GpuCudaGraph\.OnTwoStreams' <<<"$not_passed"; then
    check_flags+=" --cuda_graph_streams=1"
  fi
}

# A bin_dir laid out like bazel-bin whose learner runs on $DEVICE, for deploy/local/launch.py
# (which has no flag for the learner's device). check_flags must be set.
bin_dir() {
  local dir="$BUILD/bin-$DEVICE"
  mkdir -p "$dir/replay" "$dir/learner" "$dir/actor"
  ln -sf "$BUILD/replay/replay_server" "$dir/replay/replay_server"
  ln -sf "$BUILD/replay/replay_stats" "$dir/replay/replay_stats"
  ln -sf "$BUILD/actor/actor_main" "$dir/actor/actor_main"
  printf '#!/bin/sh\nexec "%s" --device=%s %s %s %s %s "$@"\n' "$BUILD/learner/learner_main" \
    "$DEVICE" "$fastest_flags" "${LEARNER_FLAGS:-}" "$fallback_flags" "$check_flags" \
    >"$dir/learner/learner_main"
  chmod +x "$dir/learner/learner_main"
  echo "$dir"
}

# GPU rows first (what this host is lent for), then the replay pipeline, then the CPU rows
# (skipped when TIME_BUDGET leaves under 240 s, so that the demo and scaling still run).
bench() {
  bench_binary="$BUILD/bench/sql_update_bench"
  [ -x "$bench_binary" ] || die "no $bench_binary: run the build phase first"
  # shellcheck disable=SC2054  # the commas are within one flag
  bench_common=(--batch_sizes=64,256,1024 --python="$(command -v "$PYTHON")"
                --reference="$root/tests/sql_reference.py")
  if [ "$DEVICE" = cuda ]; then
    bench_gpu
  else
    log "DEVICE=$DEVICE: no GPU benchmark"
  fi
  # What the replay shards can feed a learner (batches of 64 per second from 2 shards, no
  # update): the ceiling on the demo's updates/s whatever the GPU does.
  log "replay -> learner: batches/s from 2 shards with no update (actor_learner_bench, CPU):"
  if ! "$BUILD/bench/actor_learner_bench" --seconds=2 --updates=100 \
      --replay_server="$BUILD/replay/replay_server" 2>&1 | tail -4 | tee "$RESULTS/pipeline.txt" \
      | summary; then
    log "FAILED: actor_learner_bench"
    failures=$((failures + 1))
  fi
  # The learner's updates/s on the GPU at batch 256 on quadruped-sized rows (obs 29, act 8),
  # from 2 shards vs from an in-process table, in one run (issue 28).
  if [ "$DEVICE" = cuda ]; then
    log "learner on the GPU, batch 256, quadruped-sized rows: local table vs 2 shards:"
    if ! "$BUILD/bench/actor_learner_bench" --seconds=1 --updates=2000 --batches=5000 \
        --observation_dim=29 --action_dim=8 --batch_size=256 --device=cuda \
        --replay_server="$BUILD/replay/replay_server" 2>&1 | tail -4 \
        | tee "$RESULTS/learner_from_shards_gpu.txt" | summary; then
      log "FAILED: actor_learner_bench on the GPU"
      failures=$((failures + 1))
    fi
    # The cost of --prioritized on the GPU learner's updates/s in the configuration the demo
    # runs (a CUDA graph takes the importance weights as one more input), 2 shards (issue 28).
    if [ "$(seconds_left)" -lt 240 ]; then
      log "no --prioritized cost: $(seconds_left) s of TIME_BUDGET left"
    else
      [ -v check_flags ] || check_fallbacks
      log "learner on the GPU, multi-goal: --prioritized vs uniform (prioritized_bench.py):"
      if ! OPENBLAS_NUM_THREADS=1 "$PYTHON" "$root/bench/prioritized_bench.py" \
          --bin_dir="$(bin_dir)" --device="$DEVICE" --updates=20000 --repeats=3 2>&1 \
          | tee "$RESULTS/prioritized_cost_gpu.txt" | tail -2 | summary; then
        log "FAILED: prioritized_bench.py on the GPU"
        failures=$((failures + 1))
      fi
    fi
  fi
  if [ "${BENCH_CPU_UPDATES:-100}" = 0 ]; then return; fi
  if [ "$(seconds_left)" -lt 240 ]; then
    log "no CPU rows: $(seconds_left) s of TIME_BUDGET left"
    return
  fi
  log "SQL update benchmark, CPU (C++ vs Python in the wheel's torch, both on the CPU):"
  OPENBLAS_NUM_THREADS=1 "$bench_binary" "${bench_common[@]}" \
    --updates="${BENCH_CPU_UPDATES:-100}" --threads="1,$(nproc)" 2>&1 \
    | tee "$RESULTS/bench_cpu.txt" | summary
}

bench_gpu() {
  log "SQL update benchmark, GPU (C++ eager and as a CUDA graph on 1 and 2 streams vs Python," \
      "all on the GPU):"
  local gpu=("$bench_binary" "${bench_common[@]}" --updates="${BENCH_UPDATES:-2000}" --threads=1
             --device=cuda)
  # A crash in the newest code must not cost the other figures: the fused kernels and the
  # two-stream graph are the newest, then the one-stream graph; each failure reruns with less.
  local attempt first=1
  for attempt in "--cuda_graph --graph_streams=1,2 --fused_kernels=1,0" \
                 "--cuda_graph --graph_streams=1,2 --fused_kernels=0" \
                 "--cuda_graph --graph_streams=1 --fused_kernels=0" "--fused_kernels=0"; do
    # shellcheck disable=SC2086  # $attempt is one or more flags
    if "${gpu[@]}" $attempt 2>&1 | tee "$RESULTS/bench_gpu.txt" | summary; then
      # (Whether each newer piece agrees with what it replaces is the check phase's.)
      fastest_flags="$(fastest_learner_flags "$RESULTS/bench_gpu.txt" "$attempt")"
      log "fastest at batch 64 in the benchmark: learner_main ${fastest_flags:-(defaults)}" \
          "(demo and scaling; LEARNER_FLAGS and fallbacks come after it)"
      case "$attempt" in
        *--graph_streams=1,2*) ;;
        *--graph_streams=1*) fallback_flags+=" --cuda_graph_streams=1" ;;
        *) fallback_flags+=" --cuda_graph=false" ;;
      esac
      [ -z "$fallback_flags" ] || log "the demo's and scaling's learner gets:$fallback_flags"
      return
    fi
    [ "$attempt" != "--fused_kernels=0" ] || die "the GPU benchmark, eager"
    mv "$RESULTS/bench_gpu.txt" "$RESULTS/bench_gpu_failed_${attempt//[^a-z0-9]/_}.txt"
    log "FAILED: the GPU benchmark with $attempt; once more with less:"
    failures=$((failures + 1))
    if [ "$first" = 1 ]; then fallback_flags+=" --fused_kernels=false"; fi
    first=0
  done
}

# The learner_main flags of the fastest configuration in the benchmark's batch-64 row (eager,
# then one column per graph variant: for each --fused_kernels value, each --graph_streams
# value, as `attempt` gave them).
fastest_learner_flags() {
  local streams="" fused=""
  if [[ "$2" == *--cuda_graph* ]]; then
    streams="$(sed -n 's/.*--graph_streams=\([0-9,]*\).*/\1/p' <<<"$2")"
    fused="$(sed -n 's/.*--fused_kernels=\([0-9,]*\).*/\1/p' <<<"$2")"
  fi
  awk -v streams="$streams" -v fused="${fused:-1}" '
    $1 == 64 && $2 == 1 && !seen {
      seen = 1; best = $3 + 0; flags = "--cuda_graph=false"
      ns = streams == "" ? 0 : split(streams, s, ","); nf = split(fused, f, ","); col = 4
      for (i = 1; i <= nf; i++) for (j = 1; j <= ns; j++) {
        if ($col != "n/a" && $col + 0 > best) {
          best = $col + 0
          flags = "--cuda_graph=true --cuda_graph_streams=" s[j] (f[i] == "0" ? " --fused_kernels=false" : "")
        }
        col++
      }
      print flags
    }' "$1"
}

demo() {
  [ -v check_flags ] || check_fallbacks
  local dir; dir="$(bin_dir)"
  log "demo: 2 shards, 8 actors, learner on $DEVICE"
  local rc=0
  OPENBLAS_NUM_THREADS=1 "$PYTHON" "$root/deploy/local/launch.py" --bin_dir="$dir" --shards=2 \
    --actors=8 --out="$RESULTS/demo" >"$RESULTS/demo.log" 2>&1 || rc=$?
  grep -E "^launch:" "$RESULTS/demo.log" | summary
  # Not fatal: the scaling phase after it measures something else.
  [ "$rc" -eq 0 ] || { log "FAILED: demo exited $rc (see demo.log)"; failures=$((failures + 1)); }
}

# With TIME_BUDGET, each row gets what is left (less ~8 s to start and stop its processes per
# row and 15 s in all), at most SCALING_SECONDS and at least 12 s (two 5-s reports).
scaling() {
  [ -v check_flags ] || check_fallbacks
  local dir; dir="$(bin_dir)"
  local actors="${SCALING_ACTORS:-1,2,4,8,12}" seconds="${SCALING_SECONDS:-25}"
  local rows fit
  rows="$(tr ',' '\n' <<<"$actors" | grep -c .)"
  fit=$((($(seconds_left) - 15) / rows - 8))
  if [ "$fit" -lt "$seconds" ]; then
    if [ "$fit" -lt 12 ]; then
      log "no actor scaling: $(seconds_left) s of TIME_BUDGET left for $rows rows"
      return
    fi
    log "actor scaling: $fit s per row to fit TIME_BUDGET"
    seconds="$fit"
  fi
  OPENBLAS_NUM_THREADS=1 "$PYTHON" "$root/deploy/gpu/actor_scaling.py" --bin_dir="$dir" \
    --actors="$actors" --seconds="$seconds" 2>&1 | tee "$RESULTS/scaling.txt" | summary
}

describe_host
SOFTQ_LIBTORCH="${SOFTQ_LIBTORCH:-$(torch_prefix)}" || die "no usable torch in $PYTHON"
log "LibTorch: $SOFTQ_LIBTORCH; packages: $DEBS; build: $BUILD; results: $RESULTS"
torch_config="$(sed -n 's/^SOFTQ_TORCH_CMAKE_CONFIG:BOOL=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)"
torch_config="${torch_config:-ON}"
graphs="$(sed -n 's/^SOFTQ_CUDA_GRAPHS:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)"
graphs="${CUDA_GRAPHS:-${graphs:-AUTO}}"
kernels="$(sed -n 's/^SOFTQ_CUDA_KERNELS:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)"
kernels="${CUDA_KERNELS:-${kernels:-AUTO}}"
# Learner flags for the demo and scaling phases, added when the benchmark crashed with a newer
# piece: --fused_kernels=false, --cuda_graph_streams=1, --cuda_graph=false (check_fallbacks
# adds those for what gpu_update_test did not pass).
fallback_flags=""
# The fastest configuration in the benchmark (set by it): what the demo and scaling learner
# run unless LEARNER_FLAGS say otherwise.
fastest_flags=""
[ "$TIME_BUDGET" = 0 ] || log "time budget: $TIME_BUDGET s"
for phase in build check bench demo scaling; do
  if want "$phase"; then run_phase "$phase"; fi
done
log "done: ${phases[*]}, $failures failure(s), $SECONDS s"
[ "$failures" -eq 0 ]
