#!/usr/bin/env bash
# softq on a CUDA host that has a PyTorch wheel (LibTorch inside it), CMake, a C++ compiler
# and nvidia drivers, but no gRPC, Protobuf, Abseil or Bazel. Run from a copy of the working
# tree that carries deploy/gpu/debs/ (made here by deploy/gpu/fetch_debs.sh).
#
#   bash deploy/gpu/run_on_cuda_host.sh [PHASE...]      PHASE: build bench demo scaling all
#                                                       (default: all)
# Phases (each fits in one 10-minute command; the build folder is reused between calls):
#   build    unpack the .debs with dpkg -x into a prefix, configure against the wheel's
#            LibTorch and that prefix, build, and run the CMake smoke test
#   bench    the SQL update benchmark: CPU (C++ vs the wheel's Python) at batch 64/256/1024,
#            and on the GPU, eager and replayed as a CUDA graph (with a graph-vs-eager check);
#            and what 2 replay shards feed a learner (actor_learner_bench)
#   demo     deploy/local/launch.py with the learner on --device=cuda and 8 actors on the CPU
#   scaling  actor processes 1, 2, 4, 8, 12 against 2 shards and a GPU learner: env steps/s
#
# Environment (all optional):
#   PYTHON        interpreter with torch (default python3)
#   SOFTQ_LIBTORCH  LibTorch prefix (default: the torch package's folder)
#   DEBS          folder of .deb files (default deploy/gpu/debs)
#   PREFIX        where the .debs are unpacked (default $BUILD/deps)
#   BUILD         CMake build folder (default deploy/gpu/build-cuda, ignored by git)
#   RESULTS       where logs and tables go (default $OUT/gpu when $OUT is set, else out/gpu)
#   JOBS          build parallelism (default: nproc)
#   DEVICE        learner device for demo/scaling (default cuda; "cpu" to test this script
#                 on a machine without a GPU)
#   BENCH_UPDATES, BENCH_CPU_UPDATES  timed updates per GPU / CPU benchmark row (2000; 100:
#                 a CPU update at batch 1024 takes ~0.1 s, and Python's as long again; 0: no
#                 CPU rows)
#   LEARNER_FLAGS extra learner flags for demo/scaling (e.g. --cuda_graph)
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
if [ -n "${OUT:-}" ]; then RESULTS="${RESULTS:-$OUT/gpu}"; else RESULTS="${RESULTS:-$root/out/gpu}"; fi
JOBS="${JOBS:-$(nproc)}"
DEVICE="${DEVICE:-cuda}"
mkdir -p "$RESULTS" "$BUILD"
failures=0
log() { echo "run_on_cuda_host: $*" | tee -a "$RESULTS/summary.txt"; }
die() { log "FAILED: $*"; exit 1; }

phases=("$@")
[ ${#phases[@]} -gt 0 ] || phases=(all)
want() { local p; for p in "${phases[@]}"; do [ "$p" = "$1" ] || [ "$p" = all ] && return 0; done; return 1; }

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
  grep "softq:" "$RESULTS/configure.log" | tee -a "$RESULTS/summary.txt"
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

# A bin_dir laid out like bazel-bin whose learner runs on $DEVICE, for deploy/local/launch.py
# (which has no flag for the learner's device).
bin_dir() {
  local dir="$BUILD/bin-$DEVICE"
  mkdir -p "$dir/replay" "$dir/learner" "$dir/actor"
  ln -sf "$BUILD/replay/replay_server" "$dir/replay/replay_server"
  ln -sf "$BUILD/replay/replay_stats" "$dir/replay/replay_stats"
  ln -sf "$BUILD/actor/actor_main" "$dir/actor/actor_main"
  printf '#!/bin/sh\nexec "%s" --device=%s %s %s "$@"\n' "$BUILD/learner/learner_main" "$DEVICE" \
    "${LEARNER_FLAGS:-}" "$fallback_flags" >"$dir/learner/learner_main"
  chmod +x "$dir/learner/learner_main"
  echo "$dir"
}

bench() {
  local b="$BUILD/bench/sql_update_bench"
  [ -x "$b" ] || die "no $b: run the build phase first"
  local common=(--batch_sizes=64,256,1024 --python="$(command -v "$PYTHON")"
                --reference="$root/tests/sql_reference.py")
  if [ "${BENCH_CPU_UPDATES:-100}" != 0 ]; then
    log "SQL update benchmark, CPU (C++ vs Python in the wheel's torch, both on the CPU):"
    OPENBLAS_NUM_THREADS=1 "$b" "${common[@]}" --updates="${BENCH_CPU_UPDATES:-100}" \
      --threads="1,$(nproc)" 2>&1 | tee "$RESULTS/bench_cpu.txt" | tee -a "$RESULTS/summary.txt"
  fi
  # What the replay shards can feed a learner (batches of 64 per second from 2 shards, no
  # update): the ceiling on the demo's updates/s whatever the GPU does.
  log "replay -> learner: batches/s from 2 shards with no update (actor_learner_bench, CPU):"
  if ! "$BUILD/bench/actor_learner_bench" --seconds=2 --updates=100 \
      --replay_server="$BUILD/replay/replay_server" 2>&1 | tail -4 | tee "$RESULTS/pipeline.txt" \
      | tee -a "$RESULTS/summary.txt"; then
    log "FAILED: actor_learner_bench"
    failures=$((failures + 1))
  fi
  if [ "$DEVICE" != cuda ]; then
    log "DEVICE=$DEVICE: no GPU benchmark"
    return
  fi
  log "SQL update benchmark, GPU (C++ eager and as a CUDA graph on 1 and 2 streams vs Python," \
      "all on the GPU):"
  local gpu=("$b" "${common[@]}" --updates="${BENCH_UPDATES:-2000}" --threads=1 --device=cuda)
  # A crash in the newest code must not cost the other figures: the fused kernels and the
  # two-stream graph are the newest, then the one-stream graph; each failure reruns with less.
  local attempt first=1
  for attempt in "--cuda_graph --graph_streams=1,2 --fused_kernels=1,0" \
                 "--cuda_graph --graph_streams=1,2 --fused_kernels=0" \
                 "--cuda_graph --graph_streams=1 --fused_kernels=0" "--fused_kernels=0"; do
    # shellcheck disable=SC2086  # $attempt is one or more flags
    if "${gpu[@]}" $attempt 2>&1 | tee "$RESULTS/bench_gpu.txt" | tee -a "$RESULTS/summary.txt"; then
      # It ran; does each newer piece agree with what it replaces? (Flags given later to
      # learner_main win over LEARNER_FLAGS.)
      if [ "$first" = 1 ] && kernels_disagree "$RESULTS/bench_gpu.txt"; then
        log "FAILED: a fused kernel disagrees with the ATen operations; demo without them"
        fallback_flags+=" --fused_kernels=false"
        failures=$((failures + 1))
      fi
      if grep -q "on 2 stream(s) vs eager.*MISMATCH" "$RESULTS/bench_gpu.txt"; then
        log "FAILED: the two-stream CUDA graph disagrees with eager updates; demo on one stream"
        fallback_flags+=" --cuda_graph_streams=1"
        failures=$((failures + 1))
      fi
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

# Whether the benchmark's fused-kernel tables (SVGD step, soft TD step) hold a MISMATCH row.
kernels_disagree() {
  awk '/^(SVGD step.s gradient|Soft TD step)/ {t = 1} /^$/ {t = 0} t && /MISMATCH/ {m = 1}
       END {exit !m}' "$1"
}

demo() {
  local dir; dir="$(bin_dir)"
  log "demo: 2 shards, 8 actors, learner on $DEVICE"
  local rc=0
  OPENBLAS_NUM_THREADS=1 "$PYTHON" "$root/deploy/local/launch.py" --bin_dir="$dir" --shards=2 \
    --actors=8 --out="$RESULTS/demo" >"$RESULTS/demo.log" 2>&1 || rc=$?
  grep -E "^launch:" "$RESULTS/demo.log" | tee -a "$RESULTS/summary.txt"
  # Not fatal: the scaling phase after it measures something else.
  [ "$rc" -eq 0 ] || { log "FAILED: demo exited $rc (see demo.log)"; failures=$((failures + 1)); }
}

scaling() {
  local dir; dir="$(bin_dir)"
  OPENBLAS_NUM_THREADS=1 "$PYTHON" "$root/deploy/gpu/actor_scaling.py" --bin_dir="$dir" \
    --actors="${SCALING_ACTORS:-1,2,4,8,12}" --seconds="${SCALING_SECONDS:-25}" 2>&1 | tee "$RESULTS/scaling.txt" | tee -a "$RESULTS/summary.txt"
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
# Learner flags for the demo and scaling phases, added when the benchmark found a newer piece
# failing or disagreeing: --fused_kernels=false, --cuda_graph_streams=1, --cuda_graph=false.
fallback_flags=""
if want build; then build; fi
if want bench; then bench; fi
if want demo; then demo; fi
if want scaling; then scaling; fi
log "done: ${phases[*]}, $failures failure(s)"
[ "$failures" -eq 0 ]
