# shellcheck shell=bash
# Fetching from Debian's archive through apt, with this machine's own apt configuration
# (proxies, keyrings) and its own sources' URIs, but in a private apt state: a temporary
# sources list, package lists and cache, so the system's apt state is neither read for
# indexes nor changed (no root needed). Sourced by third_party/absl_tsan/fetch_source.sh,
# deploy/gpu/check_libtorch_api.sh and deploy/gpu/fetch_debs.sh:
#
#   source deploy/private_apt.sh
#   private_apt_init deb-src            # this release's suites (bookworm, -updates, -security)
#   private_apt_init deb trixie         # the main archive's URIs, suite trixie instead
#   private_apt_update || exit $?       # 0, 1 (a Release signature failed), 2 (unreachable)
#   private_apt source --download-only abseil=...   # apt-get with the private state
#   private_apt_cache show libtorch-dev             # apt-cache with the private state
#   private_apt_done                    # removes the state (also call it from a trap)
#
# The sources come from /etc/apt/sources.list and /etc/apt/sources.list.d/*.list|*.sources:
# the entries of type deb whose suite is this release's codename (VERSION_CODENAME in
# /etc/os-release) or codename-something, with their URIs, components and Signed-By/arch
# options. Nothing here names an archive: the machine's configuration does. apt checks every
# Release signature with the keyrings on this machine (debian-archive-keyring) and every file
# against the signed indexes; callers also check each file against a sha256 they keep.

# private_apt_init TYPE [SUITE...]: a new private state in $PRIVATE_APT (a temporary folder)
# whose sources list has TYPE (deb or deb-src) entries: without SUITEs, the system's entries
# for this release; with SUITEs, the system's entry for the release itself (the main
# archive, not -updates or -security) with each SUITE in its place.
private_apt_init() {
  local type="$1" codename
  shift
  codename=$(sed -n 's/^VERSION_CODENAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release)
  [[ -n "$codename" ]] || { echo "private_apt: no VERSION_CODENAME in /etc/os-release" >&2; return 1; }
  PRIVATE_APT=$(mktemp -d "${TMPDIR:-/tmp}/private-apt.XXXXXX")
  # apt downloads as the unprivileged _apt user when run as root: it must reach the folders.
  chmod 755 "$PRIVATE_APT"
  mkdir -p "$PRIVATE_APT"/{lists/partial,cache/archives/partial,parts,state,download}
  if [[ $(id -u) -eq 0 ]] && id _apt >/dev/null 2>&1; then chown _apt "$PRIVATE_APT/download"; fi
  local files=() etc="${PRIVATE_APT_ETC:-/etc/apt}"  # (another folder: for testing this)
  [[ -f "$etc/sources.list" ]] && files+=("$etc/sources.list")
  local f
  for f in "$etc"/sources.list.d/*.list "$etc"/sources.list.d/*.sources; do
    [[ -f "$f" ]] && files+=("$f")
  done
  # Each file as records "TYPES<TAB>URIS<TAB>SUITES<TAB>COMPONENTS<TAB>OPTIONS" (lists
  # space-separated, OPTIONS as in the one-line format: signed-by=... arch=...), then one
  # line per URI and wanted suite.
  local records
  records=$(for f in "${files[@]}"; do
    case "$f" in
      *.sources) awk '
        function flush() {
          if (types != "" && uris != "" && suites != "" && tolower(enabled) != "no")
            printf "%s\t%s\t%s\t%s\t%s\n", types, uris, suites, comps, opts
          types = uris = suites = comps = opts = enabled = ""; field = ""
        }
        /^#/ { next }
        /^[ \t]*$/ { flush(); next }
        /^[ \t]/ { next }   # a continuation line (an inline key): not an option we carry
        {
          field = tolower(substr($0, 1, index($0, ":") - 1))
          value = substr($0, index($0, ":") + 1); gsub(/^[ \t]+|[ \t]+$/, "", value)
          if (field == "types") types = value
          else if (field == "uris") uris = value
          else if (field == "suites") suites = value
          else if (field == "components") comps = value
          else if (field == "enabled") enabled = value
          else if (field == "signed-by" && value ~ /^\//) opts = opts " signed-by=" value
          else if (field == "architectures") { gsub(/ +/, ",", value); opts = opts " arch=" value }
        }
        END { flush() }' "$f" ;;
      *) awk '
        { sub(/#.*/, "") }
        $1 == "deb" || $1 == "deb-src" {
          type = $1; $1 = ""; line = $0; opts = ""
          if (match(line, /\[[^]]*\]/)) {
            n = split(substr(line, RSTART + 1, RLENGTH - 2), o, " ")
            for (i = 1; i <= n; i++)
              if (o[i] ~ /^(signed-by|arch)=/) opts = opts " " o[i]
            line = substr(line, 1, RSTART - 1) " " substr(line, RSTART + RLENGTH)
          }
          n = split(line, w, " ")
          if (n < 2) next
          comps = w[3]; for (i = 4; i <= n; i++) comps = comps " " w[i]
          printf "%s\t%s\t%s\t%s\t%s\n", type, w[1], w[2], comps, opts
        }' "$f" ;;
    esac
  done)
  local list="$PRIVATE_APT/sources.list" types uris suites comps opts uri suite s
  : >"$list"
  while IFS=$'\t' read -r types uris suites comps opts; do
    [[ " $types " == *" deb "* ]] || continue
    for uri in $uris; do
      for suite in $suites; do
        if [[ $# -eq 0 ]]; then
          [[ "$suite" == "$codename" || "$suite" == "$codename"-* ]] || continue
          echo "$type [${opts# }] $uri $suite $comps" >>"$list"
        elif [[ "$suite" == "$codename" ]]; then
          for s in "$@"; do echo "$type [${opts# }] $uri $s $comps" >>"$list"; done
        fi
      done
    done
  done <<<"$records"
  sed -i 's/ \[\] / /' "$list"
  [[ -s "$list" ]] || {
    echo "private_apt: no $codename entries in the system's apt sources (/etc/apt/sources.list*)" >&2
    return 1
  }
  # The machine's configuration (read first), then the private state. The system's update
  # hooks (PackageKit, AppStream) are about the system's lists, not these.
  cat >"$PRIVATE_APT/apt.conf" <<EOF
Dir::Etc::SourceList "$list";
Dir::Etc::SourceParts "$PRIVATE_APT/parts";
Dir::State "$PRIVATE_APT/state";
Dir::State::Lists "$PRIVATE_APT/lists";
Dir::State::status "/var/lib/dpkg/status";
Dir::Cache "$PRIVATE_APT/cache";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
EOF
}

private_apt() { apt-get -c "$PRIVATE_APT/apt.conf" -q "$@"; }
private_apt_cache() { apt-cache -c "$PRIVATE_APT/apt.conf" "$@"; }
private_apt_done() { if [[ -n "${PRIVATE_APT:-}" ]]; then rm -rf "$PRIVATE_APT"; fi; }

# private_apt_update: the private package lists. Returns 0 when every suite's Release came
# and its signature verified, 1 (with apt's messages) when a signature did not verify or a
# suite is missing from a reachable archive, 2 when the archive could not be reached.
private_apt_update() {
  local log="$PRIVATE_APT/update.log" missing=() uri suite base
  private_apt update >"$log" 2>&1 || true
  # apt keeps a suite's Release in the lists folder only once its signature verified.
  while read -r uri suite; do
    base=$(sed -E 's|^[a-z+]+://||; s|/+$||; s|/|_|g' <<<"$uri")_dists_${suite//\//_}
    [[ -f "$PRIVATE_APT/lists/${base}_InRelease" || -f "$PRIVATE_APT/lists/${base}_Release" ]] ||
      missing+=("$suite")
  done < <(sed -E 's/ \[[^]]*\]//' "$PRIVATE_APT/sources.list" | awk '{print $2, $3}' | sort -u)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if grep -qE 'NO_PUBKEY|EXPKEYSIG|REVKEYSIG|BADSIG|signatures (were invalid|couldn.t be verified)|is not signed|not signed by a key' "$log"; then
    echo "private_apt: the Release of ${missing[*]} did not verify with this machine's keyrings" \
         "(debian-archive-keyring too old?):" >&2
    grep -E '^(E|W):' "$log" >&2
    return 1
  fi
  if grep -qE 'does not have a Release file|^Err:.*404' "$log"; then
    echo "private_apt: the archive has no ${missing[*]}:" >&2
    grep -E '^(E|W):' "$log" >&2
    return 1
  fi
  echo "private_apt: cannot reach the archive for ${missing[*]}:" >&2
  grep -E '^(E|W):' "$log" | head -3 >&2
  return 2
}
