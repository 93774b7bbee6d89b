#!/bin/bash
# Fetches Debian's Abseil source package -- the version named by SHA256SUMS beside this
# script, the one the installed libabsl-dev was built from -- through apt: `apt-get source
# --download-only` against the deb-src twins of this machine's own bookworm sources, in a
# private apt state (deploy/private_apt.sh; the system's package lists stay as they are).
# apt checks the files against the signed Sources index; this script checks each against
# SHA256SUMS.
#
#   bash third_party/absl_tsan/fetch_source.sh DIR
#
# Leaves abseil_*.dsc, the orig tarball and the Debian tarball in DIR (a folder for Bazel's
# --distdir, on a machine without the archive). Normally run by tsan_absl.bzl, and only when
# Bazel's repository cache (or --distdir) lacks the files. Exits 0 when DIR has all of them,
# 1 on a checksum mismatch or any other failure, 2 when the archive cannot be reached.
set -euo pipefail
here=$(dirname "$(realpath "$0")")
sums="$here/SHA256SUMS"
dir=$(realpath -m "$1")
mkdir -p "$dir"
dsc=$(awk '$2 ~ /\.dsc$/ {print $2}' "$sums")
version=${dsc#abseil_}; version=${version%.dsc}
if (cd "$dir" && sha256sum --quiet -c "$sums" >/dev/null 2>&1); then
  echo "absl_tsan: abseil $version source already in $dir" >&2
  exit 0
fi

# shellcheck source=deploy/private_apt.sh
source "$here/../../deploy/private_apt.sh"
trap private_apt_done EXIT
start=$SECONDS
private_apt_init deb-src
rc=0; private_apt_update || rc=$?
[[ $rc -eq 0 ]] || exit "$rc"
updated=$SECONDS
(cd "$PRIVATE_APT/download" && private_apt source --download-only "abseil=$version") \
  >"$PRIVATE_APT/source.log" 2>&1 || {
  grep -E '^(E|W):' "$PRIVATE_APT/source.log" >&2
  echo "absl_tsan: apt cannot fetch abseil=$version; the archive now offers:" \
       "$(private_apt_cache showsrc abseil | awk '/^Version:/ {print $2}' | sort -u | xargs)" \
       "(installed libabsl-dev: $(dpkg-query -W -f='${Version}' libabsl-dev 2>/dev/null || echo none))" >&2
  exit 1
}
while read -r sha name; do
  got=$(sha256sum "$PRIVATE_APT/download/$name" 2>/dev/null | cut -d' ' -f1) || true
  [[ "$got" == "$sha" ]] ||
    { echo "absl_tsan: $name: sha256 ${got:-missing}, expected $sha (SHA256SUMS)" >&2; exit 1; }
done <"$sums"
while read -r _ name; do mv -f "$PRIVATE_APT/download/$name" "$dir/$name"; done <"$sums"
echo "absl_tsan: abseil $version source fetched through apt into $dir, sha256 checked" \
     "(apt update $((updated - start)) s, download $((SECONDS - updated)) s)" >&2
