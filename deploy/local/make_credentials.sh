#!/usr/bin/env bash
# Makes a throwaway certificate authority, one job certificate and a secret token for one
# softq job (openssl from Debian):
#
#   deploy/local/make_credentials.sh OUT_DIR [DAYS]
#
# writes OUT_DIR/ca.crt (the CA's certificate), OUT_DIR/job.crt and OUT_DIR/job.key (the one
# certificate every process of the job presents, as server and as client: subjectAltName
# DNS:softq-job, DNS:localhost, IP:127.0.0.1; clients check it under the name softq-job) and
# OUT_DIR/token (32 random bytes, hex, one line). OUT_DIR is made (or tightened) to mode 0700,
# its files 0600. The CA's key is deleted once it has signed, so no further certificate of
# this CA can ever be made. Certificates are valid for DAYS days (default 7). Pass the files
# to every process as --tls_ca, --tls_cert, --tls_key, --auth_token_file.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 OUT_DIR [DAYS]" >&2
  exit 2
fi
out="$1"
days="${2:-7}"
if ! [[ "$days" =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: DAYS=$days: expected a positive whole number" >&2
  exit 2
fi
command -v openssl >/dev/null || {
  echo "$0: openssl not found (Debian package openssl; deploy/local/install.sh)" >&2
  exit 1
}

umask 077
mkdir -p "$out"
chmod 700 "$out"
work="$(mktemp -d "$out/.make_credentials.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# P-256 keys: small, fast handshakes, supported by every gRPC TLS stack.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$work/ca.key" -out "$work/ca.crt" -days "$days" -subj "/CN=softq job CA" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$work/log" || {
  cat "$work/log" >&2
  exit 1
}
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$work/job.key" -out "$work/job.csr" -subj "/CN=softq-job" 2>"$work/log" || {
  cat "$work/log" >&2
  exit 1
}
cat >"$work/ext" <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:softq-job,DNS:localhost,IP:127.0.0.1
EXT
openssl x509 -req -in "$work/job.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
  -CAcreateserial -out "$work/job.crt" -days "$days" -extfile "$work/ext" 2>"$work/log" || {
  cat "$work/log" >&2
  exit 1
}
openssl rand -hex 32 >"$work/token"
chmod 600 "$work/ca.crt" "$work/job.crt" "$work/job.key" "$work/token"
# Renames within one directory: a reader never sees half a file.
for f in ca.crt job.crt job.key token; do mv -f "$work/$f" "$out/$f"; done
# The CA key (and the serial, csr) go with $work.
echo "make_credentials: wrote $out/{ca.crt,job.crt,job.key,token} (valid $days days; CA key deleted)"
