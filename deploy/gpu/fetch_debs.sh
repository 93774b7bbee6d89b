#!/usr/bin/env bash
# Downloads (does not install) the Debian 12 packages a CUDA host needs to build and run
# softq with CMake: gRPC, Protobuf and Abseil runtime + dev packages, the code generators,
# and the few libraries they link that a minimal image may lack. They go to
# deploy/gpu/debs/ (ignored by git, carried to the host with the working tree, unpacked there
# with `dpkg -x` by run_on_cuda_host.sh). Run on the Debian 12 build machine.
#
#   bash deploy/gpu/fetch_debs.sh          # the files pinned in debs.sha256
#   bash deploy/gpu/fetch_debs.sh --pin    # re-pins debs.sha256 to this machine's installed
#                                          # versions where the archive still has them, else
#                                          # its newest (review the diff, commit it)
#
# Fetched through apt -- `apt-get download PACKAGE=VERSION` against this machine's own
# bookworm sources, in a private apt state (deploy/private_apt.sh: the system's package
# lists are neither needed nor changed) -- and each file checked against debs.sha256 (the
# versions are those of its file names). Exits 1 on a checksum mismatch or a version the
# archive no longer has (one line naming the file), 2 when the archive cannot be reached.
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
  # MuJoCo 2.2.2 and what it links: the MuJoCo environments (env/) and bench/env_bench
  libmujoco-dev libmujoco2.2.2 libccd2 liblodepng0 libqhull-r8.0 libtinyxml2-9
)

pin=false
case "${1:-}" in
  --pin) pin=true ;;
  '') ;;
  *) echo "usage: fetch_debs.sh [--pin]" >&2; exit 1 ;;
esac

# shellcheck source=deploy/private_apt.sh
source ../private_apt.sh
trap private_apt_done EXIT
start=$SECONDS
private_apt_init deb || exit 1
rc=0; private_apt_update || rc=$?
[[ $rc -eq 0 ]] || exit "$rc"
updated=$SECONDS

# PACKAGE=VERSION for each package: from debs.sha256's file names (NAME_VERSION_ARCH.deb,
# the epoch's colon written %3a), or with --pin the installed version -- or, where the
# archive no longer has that one (a security update superseded it), the archive's newest.
wanted=()
for p in "${PACKAGES[@]}"; do
  if $pin; then
    v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null) || v=""
    have=$(private_apt_cache madison "$p" | awk -F'|' '{gsub(/ /, "", $2); print $2}')
    if [[ -z "$v" ]] || ! grep -qxF "$v" <<<"$have"; then
      new=$(private_apt_cache policy "$p" | awk '/Candidate:/ {print $2}')
      echo "fetch_debs: --pin: $p ${v:-not installed} is not in the archive; pinning $new" >&2
      v=$new
    fi
  else
    v=$(awk -v p="$p" '{n = split($2, f, "_")} n == 3 && f[1] == p {print f[2]}' debs.sha256 |
        sed 's/%3a/:/')
    [[ -n "$v" ]] || { echo "fetch_debs: $p has no file in debs.sha256 (--pin)" >&2; exit 1; }
  fi
  wanted+=("$p=$v")
done
dl="$PRIVATE_APT/download"
if ! (cd "$dl" && private_apt download "${wanted[@]}") >"$PRIVATE_APT/download.log" 2>&1; then
  grep -E '^(E|W):' "$PRIVATE_APT/download.log" >&2
  echo "fetch_debs: the archive lacks a pinned version (bookworm's point releases and security" \
       "updates replace them): --pin to this machine's versions, after upgrading it" >&2
  exit 1
fi
if $pin; then
  (cd "$dl" && sha256sum -- *.deb) >debs.sha256
  echo "fetch_debs: debs.sha256 pinned to ${#wanted[@]} files"
fi
while read -r sha name; do
  got=$(sha256sum "$dl/$name" 2>/dev/null | cut -d' ' -f1) || true
  [[ "$got" == "$sha" ]] ||
    { echo "fetch_debs: $name: sha256 ${got:-missing}, expected $sha (debs.sha256)" >&2; exit 1; }
done <debs.sha256
rm -rf debs.tmp && mkdir debs.tmp
mv "$dl"/*.deb debs.tmp/
rm -rf debs && mv debs.tmp debs
ls -1 debs > debs/MANIFEST
echo "fetch_debs: ${#PACKAGES[@]} packages, $(du -sh debs | cut -f1) in deploy/gpu/debs/, sha256" \
     "checked (apt update $((updated - start)) s, download $((SECONDS - updated)) s)"
