#!/usr/bin/env bash
# Compiles (syntax and types, no linking) every C++ source that the LibTorch API touches
# against a second LibTorch's headers, so an API difference between Debian's 1.13 and 2.x
# shows up here, on a machine without the 2.x libraries. Linking and running against 2.x
# happen on a CUDA host (run_on_cuda_host.sh build).
#
#   bash deploy/gpu/check_libtorch_api.sh                 # fetches Debian trixie's
#                                                         # libtorch-dev 2.6 headers (2.4 MB)
#   bash deploy/gpu/check_libtorch_api.sh /opt/libtorch   # any prefix with include/torch
#
# Prints one line per source and "N compiled, M failed"; exit 1 if any failed.
# Also compiles learner/cuda_graph_update.cc's CUDA graph branch when CUDA's headers are
# found (CUDA_INCLUDE, default /usr/local/cuda/include).
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix="${1:-}"
if [[ -z "$prefix" ]]; then
  prefix=/tmp/softq_libtorch_headers
  deb=libtorch-dev_2.6.0+dfsg-7_amd64.deb
  if [[ ! -d "$prefix/usr/include/torch" ]]; then
    mkdir -p "$prefix"
    curl -fsS -o "$prefix/$deb" "http://deb.debian.org/debian/pool/main/p/pytorch/$deb"
    dpkg -x "$prefix/$deb" "$prefix"
  fi
  prefix="$prefix/usr"
fi
include="$prefix/include"
[[ -f "$include/torch/csrc/api/include/torch/torch.h" ]] || {
  echo "check_libtorch_api: no LibTorch headers under $include" >&2
  exit 2
}
version=$(awk '/define TORCH_VERSION_(MAJOR|MINOR|PATCH)/ {v = v (v ? "." : "") $3} END {print v}' \
          "$include/torch/csrc/api/include/torch/version.h")
bazel build //proto:all 2>&1 | tail -1
passed=0
failed=0
# check SRC LABEL [FLAG...]: compiles SRC against the headers (plus FLAGs), counts and reports.
check() {
  local src="$1" label="$2"
  shift 2
  if g++ -std=c++17 -fsyntax-only -I"$include" -I"$include/torch/csrc/api/include" -I. \
         -Ibazel-bin "$@" "$src" 2>/tmp/check_libtorch_api.err; then
    passed=$((passed + 1))
    echo "ok      $src$label"
  else
    failed=$((failed + 1))
    echo "FAILED  $src$label"
    grep -m 5 "error" /tmp/check_libtorch_api.err | sed 's/^/        /'
  fi
}
for src in $(git ls-files 'actor/*.cc' 'learner/*.cc' 'common/*.cc' 'bench/*.cc' 'tests/*.cc' \
                          'cmake/*.cc'); do
  check "$src" "" -w
done
# learner/cuda_graph_update.cc's CUDA graph branch also needs CUDA's runtime headers: checked
# when they are here (CUDA_INCLUDE, default /usr/local/cuda/include).
cuda_include="${CUDA_INCLUDE:-/usr/local/cuda/include}"
if [[ -f "$cuda_include/cuda_runtime_api.h" ]]; then
  # Distribution packages of LibTorch's headers lack this CMake-generated one; wheels have it.
  shim=$(mktemp -d)
  mkdir -p "$shim/c10/cuda/impl"
  echo '#define C10_CUDA_BUILD_SHARED_LIBS' >"$shim/c10/cuda/impl/cuda_cmake_macros.h"
  check learner/cuda_graph_update.cc " (SOFTQ_CUDA_GRAPHS, CUDA headers at $cuda_include)" \
    -Wall -Wextra -DSOFTQ_CUDA_GRAPHS=1 -isystem "$cuda_include" -isystem "$shim"
  rm -rf "$shim"
else
  echo "skipped learner/cuda_graph_update.cc with SOFTQ_CUDA_GRAPHS: no CUDA headers at" \
       "$cuda_include (CUDA_INCLUDE=...)"
fi
echo "LibTorch headers $version at $include: $passed compiled, $failed failed"
[[ $failed -eq 0 ]]
