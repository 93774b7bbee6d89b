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
  # learning: LibTorch (CPU) and OpenBLAS (else libblas.so.3 is the far slower reference BLAS)
  libtorch-dev libopenblas0-pthread
  # simulator
  libmujoco-dev
  # Python side: the cross-check test, the plots and the Python benchmark peer
  python3-torch python3-numpy python3-matplotlib
  # the Python actor's module (python/softq: pybind11 over the C++ actor)
  pybind11-dev python3-dev
  # the replay benchmark's peer (Redis through hiredis)
  redis-server libhiredis-dev
  # cluster launch: Slurm 22.05 for tests/cluster:slurm_test; Node.js for the manifests'
  # offline validation (tests/cluster:k8s_test)
  slurm-wlm nodejs
  # the second, CMake build (tests/cmake:cmake_smoke_test; deploy/gpu/); also the
  # TSan-instrumented Abseil of --config=tsan (third_party/absl_tsan, which patches it)
  cmake ninja-build patch
  # the test command's formatting check (.clang-format)
  clang-format
  # the Debian source tarball (.debian.tar.xz) third_party/absl_tsan/build.sh unpacks
  xz-utils
  # the job's throwaway CA, certificate and token (deploy/local/make_credentials.sh)
  openssl
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# npm ships with NodeSource's nodejs but is a package of its own in Debian.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
  echo "install: all ${#PACKAGES[@]} packages present"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "install: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
