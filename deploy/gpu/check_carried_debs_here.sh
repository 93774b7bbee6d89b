#!/usr/bin/env bash
# Proves on this Debian machine that run_on_cuda_host.sh's "carried packages" path works
# where gRPC, Protobuf, Abseil, GoogleTest are NOT installed: in a private mount
# namespace (root; nothing outside it changes) their headers, libraries, protoc and
# grpc_cpp_plugin under /usr are hidden (empty tmpfs over the include folders, /dev/null over
# every library file), then run_on_cuda_host.sh unpacks deploy/gpu/debs with dpkg -x and
# builds, smoke-tests and runs the given phases against Debian's CPU LibTorch (DEVICE=cpu).
#
#   bash deploy/gpu/check_carried_debs_here.sh [PHASE...]    (default: build)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "needs root (unshare -m)"; exit 1; }
phases=("$@"); [ ${#phases[@]} -gt 0 ] || phases=(build)
export SOFTQ_LIBTORCH=/usr DEVICE=cpu
export BUILD="${BUILD:-/tmp/softq-carried-build}" RESULTS="${RESULTS:-/tmp/softq-carried-results}"
# Debian's python3-torch links libprotobuf.so.32 too: the benchmark's Python peer gets the
# unpacked one.
mkdir -p "$BUILD"
export PYTHON="$BUILD/python3-carried"
printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec /usr/bin/python3 "$@"\n' \
  "$BUILD/deps/usr/lib/x86_64-linux-gnu" >"$PYTHON"
chmod +x "$PYTHON"
exec unshare -m bash -c '
  set -euo pipefail
  for d in /usr/include/grpc /usr/include/grpcpp /usr/include/grpc++ \
           /usr/include/google/protobuf /usr/include/absl /usr/include/gtest \
           /usr/include/gmock; do
    [ -d "$d" ] && mount -t tmpfs none "$d"
  done
  n=0
  for f in /usr/lib/x86_64-linux-gnu/{libgrpc,libgpr,libupb,libaddress_sorting,libprotobuf,libprotoc,libabsl_,libre2,libcares,libgtest,libgmock}*; do
    [ -e "$f" ] && mount --bind /dev/null "$f" && n=$((n + 1))
  done
  for f in /usr/bin/protoc /usr/bin/grpc_cpp_plugin; do mount --bind /dev/null "$(readlink -f "$f")"; done
  echo "check_carried_debs_here: hid $n library files, the headers, protoc and grpc_cpp_plugin"
  ! ls /usr/include/grpcpp/grpcpp.h 2>/dev/null
  bash deploy/gpu/run_on_cuda_host.sh "$@"
  echo "check_carried_debs_here: libraries of learner_main resolve to:"
  ldd "$BUILD/learner/learner_main" | grep -E "grpc|protobuf|absl_status|re2|cares|torch_cpu" | sed "s/^/  /"
' bash "${phases[@]}"
