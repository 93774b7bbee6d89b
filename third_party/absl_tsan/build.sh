#!/bin/bash
# Builds the parts of Debian 12's Abseil (20220623.1-1+deb12u2) that carry its
# synchronization -- absl::Mutex, CondVar, the spinlocks and their dependencies -- with
# -fsanitize=thread, as shared libraries with the same SONAMEs, inline namespace
# (absl::debian3) and options as Debian's, so that they can stand in for
# /usr/lib/x86_64-linux-gnu/libabsl_*.so.20220623 at run time (LD_LIBRARY_PATH) under
# `bazel test --config=tsan`. Instrumented, absl::Mutex reports every lock and unlock to TSan
# (ABSL_TSAN_MUTEX_* -> __tsan_mutex_*), also when Debian's gRPC calls it.
#
# Usage: build.sh ORIG_TARBALL DEBIAN_TARBALL OUTDIR
#   ORIG_TARBALL   abseil_20220623.1.orig.tar.gz          (Debian's pool, sha256 checked by
#   DEBIAN_TARBALL abseil_20220623.1-1+deb12u2.debian.tar.xz  the caller: tsan_absl.bzl)
#   OUTDIR         gets lib/ (the .so files) and build.log
# Normally run by the repository rule in tsan_absl.bzl; standalone it needs cmake, ninja,
# patch and g++ (the compiler Bazel uses, so both sides share GCC's libtsan.so.2).
set -euo pipefail
for tool in cmake ninja patch g++; do
  command -v "$tool" >/dev/null ||
    { echo "absl_tsan: needs $tool (Debian: cmake ninja-build patch g++)" >&2; exit 1; }
done
orig=$(realpath "$1"); deb=$(realpath "$2"); out=$(realpath -m "$3")
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/absl-tsan.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
tar xzf "$orig"
src=$(find . -mindepth 1 -maxdepth 1 -type d -name "abseil-*")
tar xJf "$deb" -C "$src"
# Debian's patch series, in order (options.h: inline namespace debian3, absl::optional etc.
# as own types, hardened mode; SONAME 20220623; libatomic; the CVE-2025-0838 fix).
while read -r p; do
  case "$p" in ''|'#'*) continue ;; esac
  patch -d "$src" -p1 --quiet < "$src/debian/patches/$p"
done < "$src/debian/patches/series"
grep -q '^#define ABSL_OPTION_INLINE_NAMESPACE_NAME debian3$' "$src/absl/base/options.h"
cmp -s "$src/absl/base/options.h" /usr/include/absl/base/options.h ||
  { echo "options.h differs from the installed /usr/include/absl/base/options.h" >&2; exit 1; }

# Debian builds with CMAKE_BUILD_TYPE=None and dpkg-buildflags (no NDEBUG); the same here,
# with -O1 and TSan instead of -O2.
flags="-g -O1 -fsanitize=thread -fno-omit-frame-pointer -D_FORTIFY_SOURCE=2 -fstack-protector-strong"
nice -n 10 cmake -S "$src" -B build -G Ninja \
  -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=ON -DBUILD_TESTING=OFF \
  -DCMAKE_CXX_COMPILER=g++ -DCMAKE_C_COMPILER=gcc \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread -Wl,-z,relro" > "$out/build.log" 2>&1
# Every Abseil library that the tested binaries and Debian's gRPC/Protobuf load (53 of them;
# `ldd` of replay_server, client_test and replay_fuzz_test): a library left uninstrumented
# still runs Abseil's inline synchronization (SpinLock, call_once, refcounts) compiled without
# TSan, invisible to it. synchronization pulls in base, spinlock_wait, malloc_internal,
# raw_logging_internal, graphcycles_internal, stacktrace, symbolize, debugging_internal,
# demangle_internal, time, civil_time, time_zone, int128, strings, strings_internal,
# throw_delegate, log_severity; status/statusor pull in cord, cord_internal, cordz_*,
# str_format_internal, strerror (gRPC 1.51's grpc_error_handle is absl::Status);
# random_internal_pool_urbg (absl::BitGen, used by gRPC's call setup) the randen_* and
# seed_* libraries; flags_parse the flags_* libraries; hash city and low_level_hash.
nice -n 10 ninja -C build -j "${ABSL_TSAN_JOBS:-2}" \
  synchronization hashtablez_sampler raw_hash_set status statusor \
  random_internal_pool_urbg random_seed_sequences flags_parse hash >> "$out/build.log" 2>&1
rm -rf "$out/lib"; mkdir -p "$out/lib"
find build -name 'libabsl_*.so.20220623*' -exec cp -P {} "$out/lib/" \;
# Every library here must be one Debian ships under the same SONAME (else it is not a
# stand-in but an extra).
for f in "$out"/lib/libabsl_*.so.20220623; do
  test -e "/usr/lib/x86_64-linux-gnu/$(basename "$f")" ||
    { echo "$(basename "$f") is not a Debian library" >&2; exit 1; }
done
echo "absl_tsan: $(ls "$out"/lib/*.so.20220623 | wc -l) TSan libraries in $out/lib" >&2
