#!/usr/bin/env bash
# Compiles (syntax and types, no linking) every C++ source of the CMake build (the CUDA hosts'
# build) that the LibTorch API touches against a second LibTorch's headers, so an API
# difference between Debian's 1.13 and 2.x shows up here, on a machine without the 2.x
# libraries. Linking and running against 2.x happen on a CUDA host (run_on_cuda_host.sh
# build). The test command (deploy/local/test.sh) runs it.
#
#   bash deploy/gpu/check_libtorch_api.sh                 # fetches Debian trixie's
#                                                         # libtorch-dev 2.6 headers
#   bash deploy/gpu/check_libtorch_api.sh sid             # Debian sid's 2.14: the
#                                                         # newest, which needs C++20
#   bash deploy/gpu/check_libtorch_api.sh /opt/libtorch   # any prefix with include/torch
#
# trixie and sid: the pinned libtorch-dev .deb (version and sha256 below) is fetched through
# apt -- `apt-get download` against this machine's own Debian sources with the suite
# replaced, in a private apt state (deploy/private_apt.sh: the system's package lists stay
# as they are; apt checks the Release signatures with this machine's keyrings) -- checked
# against its sha256 and unpacked once into /tmp/softq_libtorch_headers[_sid] (later runs
# need no network).
# Prints one line per source and "N compiled, M failed"; exits 1 if any failed (or the
# fetched .deb is not the pinned one), 2 if there are no headers to check against (none
# given, the archive out of reach).
# <torch/torch.h> is precompiled once and the sources compile nproc at a time, up to
# CHECK_GROUP (8) of a folder in one translation unit (check_together); sources that include
# no LibTorch header (the replay service's) are checked only under C++20, without it.
# learner/cuda_graph_update.cc's CUDA graph branch is also compiled when CUDA's headers are
# here (CUDA_INCLUDE, default /usr/local/cuda/include), and so are learner/fused_ops.cc's
# kernel branch and, by nvcc if there is one, the kernel itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
# fetch_headers DIR SUITE VERSION SHA256: Debian SUITE's libtorch-dev VERSION (amd64), whose
# .deb must have SHA256, unpacked into DIR once. Exits 2 when the archive cannot be reached,
# 1 when SUITE lacks VERSION or the file is not the pinned one.
fetch_headers() {
  local dir="$1" suite="$2" version="$3" sha="$4" rc=0 deb got
  if [[ -d "$dir/usr/include/torch" && "$(cat "$dir/.sha256" 2>/dev/null)" == "$sha" ]]; then
    return
  fi
  # shellcheck source=deploy/private_apt.sh
  source deploy/private_apt.sh
  trap private_apt_done EXIT
  local start=$SECONDS
  private_apt_init deb "$suite" || exit 1
  private_apt_update || rc=$?
  if [[ $rc -ne 0 ]]; then
    if [[ $rc -eq 2 ]]; then echo "check_libtorch_api: Debian's archive is out of reach" >&2; fi
    exit "$rc"
  fi
  local updated=$SECONDS
  if ! (cd "$PRIVATE_APT/download" && private_apt download "libtorch-dev=$version") \
         >"$PRIVATE_APT/download.log" 2>&1; then
    grep -E '^(E|W):' "$PRIVATE_APT/download.log" >&2
    echo "check_libtorch_api: $suite has no libtorch-dev $version (it has" \
         "$(private_apt_cache madison libtorch-dev | awk -F'|' '{gsub(/ /, "", $2); print $2}' | xargs)):" \
         "a new version is a deliberate update of the pin in this script" >&2
    exit 1
  fi
  deb=$(find "$PRIVATE_APT/download" -name '*.deb')
  got=$(sha256sum "$deb" | cut -d' ' -f1)
  [[ "$got" == "$sha" ]] || {
    echo "check_libtorch_api: $(basename "$deb") from $suite: sha256 $got, expected $sha" >&2
    exit 1
  }
  rm -rf "$dir" && mkdir -p "$dir"
  dpkg -x "$deb" "$dir"
  echo "$sha" >"$dir/.sha256"
  echo "check_libtorch_api: $(basename "$deb") fetched through apt, sha256 checked" \
       "(apt update $((updated - start)) s, download $((SECONDS - updated)) s)"
  private_apt_done
  trap - EXIT
}

prefix="${1:-trixie}"
case "$prefix" in
  # Pinned files, the same for every run: a point release (trixie) or a new upload (sid) that
  # replaces one is a deliberate update of its version and sha256 here.
  trixie) fetch_headers /tmp/softq_libtorch_headers trixie 2.6.0+dfsg-7 \
            d63886ac7482184e96d38cbbbb346430f1cc3a68b59319eb2ca1ababd501535b
          prefix=/tmp/softq_libtorch_headers/usr ;;
  sid) fetch_headers /tmp/softq_libtorch_headers_sid sid 2.14.1+dfsg-1 \
         d941cb918c760250305f2fd3c4fa63f1b86069fe6996e8c439b48af79ed27636
       prefix=/tmp/softq_libtorch_headers_sid/usr ;;
esac
include="$prefix/include"
[[ -f "$include/torch/csrc/api/include/torch/torch.h" ]] || {
  echo "check_libtorch_api: no LibTorch headers under $include" >&2
  exit 2
}
# (torch/version.h up to ~2.12; torch/headeronly/version.h after.)
version=$({ cat "$include/torch/csrc/api/include/torch/version.h" \
                "$include/torch/headeronly/version.h" 2>/dev/null || true; } |
          awk '/define TORCH_VERSION_(MAJOR|MINOR|PATCH) / {v = v (v ? "." : "") $3} END {print v}')
# C++17, the project's, unless the headers demand C++20 (ATen.h #errors below it from about
# 2.12 on; cmake/SoftqDeps.cmake switches the same way): the sources compile as either.
std=c++17
if grep -qE '__cplusplus < 20[2-9][0-9]+L' "$include/ATen/ATen.h"; then std=c++20; fi
bazel build //proto:all 2>&1 | tail -1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CHECK_INCLUDE="$include" CHECK_WORK="$work" CHECK_STD="$std"
# The precompiled <torch/torch.h>, forced first into every source with -include. A
# source whose flags make it unusable (the CUDA branch's macros) reads the header instead.
echo '#include <torch/torch.h>' >"$work/torch_all.h"
g++ -std="$std" -w -I"$include" -I"$include/torch/csrc/api/include" -x c++-header \
    "$work/torch_all.h" -o "$work/torch_all.h.gch"

# compiles FILE [FLAG...]: g++ -fsyntax-only of FILE against the headers (plus FLAGs; with
# the precompiled header unless CHECK_WITHOUT_PCH is set), its errors on stderr.
compiles() {
  local file="$1" pch=(-include "$CHECK_WORK/torch_all.h")
  shift
  if [[ -n "${CHECK_WITHOUT_PCH:-}" ]]; then pch=(); fi
  g++ -std="$CHECK_STD" -fsyntax-only -I"$CHECK_INCLUDE" -I"$CHECK_INCLUDE/torch/csrc/api/include" \
      "${pch[@]}" -I. -Ibazel-bin "$@" "$file"
}
export -f compiles

# check SRC LABEL [FLAG...]: compiles SRC (compiles); prints "ok" or "FAILED" and the first
# errors.
check() {
  local src="$1" label="$2" err
  shift 2
  err=$(mktemp -p "$CHECK_WORK")
  if compiles "$src" "$@" 2>"$err"; then
    echo "ok      $src$label"
  else
    echo "FAILED  $src$label"
    grep -m 5 "error" "$err" | sed 's/^/        /'
  fi
}
export -f check

# check_together LABEL FLAG... -- SRC...: SRCs as one translation unit (each #included in turn:
# LibTorch's templates are instantiated once for all of them, not once per source), each
# printed "ok" when it compiles. When it does not, the halves are checked the same way, down
# to single sources (check): a real error is still named by its source, and sources that clash
# only when pasted together (names in anonymous namespaces, flags) end up apart.
check_together() {
  local label="$1" flags=() srcs
  shift
  while [[ "$1" != -- ]]; do flags+=("$1"); shift; done
  shift
  srcs=("$@")
  if [[ ${#srcs[@]} -eq 1 ]]; then
    check "${srcs[0]}" "$label" "${flags[@]}"
    return
  fi
  local unity half=$((${#srcs[@]} / 2)) src
  unity=$(mktemp -p "$CHECK_WORK" --suffix=.cc)
  for src in "${srcs[@]}"; do echo "#include \"$PWD/$src\""; done >"$unity"
  if compiles "$unity" "${flags[@]}" 2>/dev/null; then
    for src in "${srcs[@]}"; do echo "ok      $src$label"; done
  else
    check_together "$label" "${flags[@]}" -- "${srcs[@]:0:half}"
    check_together "$label" "${flags[@]}" -- "${srcs[@]:half}"
  fi
}
export -f check_together

# in_groups N SRC...: the sources as lines of at most N, one group a line, each group from one
# folder (a folder's sources share the most headers).
in_groups() {
  local n="$1"
  shift
  printf '%s\n' "$@" | awk -v n="$n" -F/ '
    { k = $1; if (k != last || count == n) { if (NR > 1) printf "\n"; count = 0; sep = "" }
      printf "%s%s", sep, $0; sep = " "; count++; last = k }
    END { printf "\n" }'
}

# touches_torch SRC: whether SRC, or a project header it includes (followed by its quoted
# #includes), includes a LibTorch header.
touches_torch() {
  local -A seen=()
  local pending=("$1") file
  while [[ ${#pending[@]} -gt 0 ]]; do
    file=${pending[-1]}
    unset 'pending[-1]'
    [[ -f "$file" && -z "${seen[$file]:-}" ]] || continue
    seen[$file]=1
    grep -qE '^#include <(torch|ATen|c10)/' "$file" && return 0
    mapfile -t -O "${#pending[@]}" pending < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$file")
  done
  return 1
}

# Sources that reach LibTorch compile with the precompiled header; the rest need checking only
# where the standard is not the project's own C++17 (Bazel compiles them as that), and then
# without the header (loading it is most of a small source's time).
# Sources checked together per translation unit (check_together); 1 checks each on its own.
group="${CHECK_GROUP:-8}"
torch_sources=() other_sources=()
# The sources are the CMake build's (CMakeLists.txt and cmake/*.cmake name each one): that
# build is the one that meets LibTorch 2.x, on the CUDA hosts. The rest (most tests) are built
# only by Bazel, against Debian's LibTorch.
for src in $(grep -ohE '\<[a-z]+/[A-Za-z0-9_/]+\.cc\>' CMakeLists.txt cmake/*.cmake | sort -u); do
  [[ -f "$src" ]] || { echo "check_libtorch_api: CMakeLists.txt names $src, which is not here" >&2; exit 1; }
  if touches_torch "$src"; then torch_sources+=("$src"); else other_sources+=("$src"); fi
done
# shellcheck disable=SC2016  # "$1" is bash -c's own argument
{
  in_groups "$group" "${torch_sources[@]}" |
    xargs -P "$(nproc)" -I{} bash -c 'check_together "" -w -- $1' _ {}
  if [[ "$std" != c++17 ]]; then
    in_groups "$group" "${other_sources[@]}" |
      xargs -P "$(nproc)" -I{} bash -c 'CHECK_WITHOUT_PCH=1 check_together " (no LibTorch)" -w -- $1' _ {}
  else
    echo "skipped ${#other_sources[@]} sources that include no LibTorch header (C++17: Bazel's)"
  fi
  # learner/cuda_graph_update.cc's CUDA graph branch also needs CUDA's runtime headers.
  cuda_include="${CUDA_INCLUDE:-/usr/local/cuda/include}"
  if [[ -f "$cuda_include/cuda_runtime_api.h" ]]; then
    # Distribution packages of LibTorch's headers lack this CMake-generated one; wheels have it.
    mkdir -p "$work/shim/c10/cuda/impl"
    echo '#define C10_CUDA_BUILD_SHARED_LIBS' >"$work/shim/c10/cuda/impl/cuda_cmake_macros.h"
    check learner/cuda_graph_update.cc " (SOFTQ_CUDA_GRAPHS, CUDA headers at $cuda_include)" \
      -Wall -Wextra -DSOFTQ_CUDA_GRAPHS=1 -isystem "$cuda_include" -isystem "$work/shim"
    check learner/fused_ops.cc " (SOFTQ_CUDA_KERNELS, CUDA headers at $cuda_include)" \
      -Wall -Wextra -DSOFTQ_CUDA_KERNELS=1 -isystem "$cuda_include" -isystem "$work/shim"
  else
    echo "skipped learner/cuda_graph_update.cc with SOFTQ_CUDA_GRAPHS: no CUDA headers at" \
         "$cuda_include (CUDA_INCLUDE=...)"
  fi
  # The fused kernel itself, compiled (not run: no GPU) by the CUDA compiler if there is one.
  nvcc="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
  if [[ -x "$nvcc" ]]; then
    if err=$("$nvcc" -std=c++17 -arch=sm_90 -I. -Xcompiler -Wall,-Wextra,-Werror -c \
                learner/kernel_launch.cu -o "$work/kernel_launch.o" 2>&1); then
      echo "ok      learner/kernel_launch.cu (nvcc $("$nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), sm_90)"
    else
      echo "FAILED  learner/kernel_launch.cu (nvcc)"
      grep -m 5 "error" <<<"$err" | sed 's/^/        /'
    fi
  else
    echo "skipped learner/kernel_launch.cu: no nvcc (NVCC=...)"
  fi
} | tee "$work/results"
passed=$(grep -c '^ok ' "$work/results" || true)
failed=$(grep -c '^FAILED ' "$work/results" || true)
echo "LibTorch headers $version (C++${std#c++}) at $include: $passed compiled, $failed failed"
[[ $failed -eq 0 ]]
