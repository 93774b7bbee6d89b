#!/usr/bin/env bash
# Installs the Debian packages softq builds and runs with. Idempotent: installs only what is
# missing, and runs apt-get only when something is. Needs root (or sudo) on Debian 12.
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap bazel-rules-java g++
  # RPC and wire format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  # base libraries, tests, benchmarks
  libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  # learning: LibTorch (CPU) and OpenBLAS (else libblas.so.3 is the ~27x slower reference BLAS)
  libtorch-dev libopenblas0-pthread
  # simulator
  libmujoco-dev
  # Python side: the cross-check test, the plots and the Python benchmark peer
  python3-torch python3-numpy python3-matplotlib
  # metrics export; the replay benchmark's peer (Redis through hiredis)
  prometheus-cpp-dev redis-server libhiredis-dev
  # the second, CMake build (tests/cmake:cmake_smoke_test; deploy/gpu/)
  cmake ninja-build
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
