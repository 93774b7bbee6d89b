#!/usr/bin/env bash
# Downloads (does not install) the Debian 12 packages a CUDA host needs to build and run
# softq with CMake: gRPC, Protobuf and Abseil runtime + dev packages, the code generators,
# and the few libraries they link that a minimal image may lack. They go to
# deploy/gpu/debs/ (ignored by git, carried to the host with the working tree, unpacked there
# with `dpkg -x` by run_on_cuda_host.sh). Run on the Debian 12 build machine; needs only
# apt's package lists (`apt-get update` once) and the archive.
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(
  # gRPC 1.51: headers + link symlinks, libraries, grpc_cpp_plugin
  libgrpc++-dev libgrpc-dev libgrpc++1.51 libgrpc29 protobuf-compiler-grpc
  # Protobuf 3.21: headers + link symlink, library, protoc and its library
  libprotobuf-dev libprotobuf32 libprotoc32 protobuf-compiler
  # Abseil 20220623
  libabsl-dev libabsl20220623
  # what libgrpc29 links besides glibc/libstdc++/zlib: c-ares, re2, OpenSSL 3
  libc-ares2 libre2-9 libssl3
  # GoogleTest 1.12 (static libraries): tests/gpu_update_test on the GPU
  libgtest-dev
)

rm -rf debs.tmp && mkdir debs.tmp
(cd debs.tmp && apt-get download "${PACKAGES[@]}")
rm -rf debs && mv debs.tmp debs
ls -1 debs > debs/MANIFEST
echo "fetch_debs: ${#PACKAGES[@]} packages, $(du -sh debs | cut -f1) in deploy/gpu/debs/"
