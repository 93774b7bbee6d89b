#!/usr/bin/env bash
# The cost of mutual TLS and the job token on the replay path: two replay shards in one run,
# one insecure and one secured with a throwaway CA, certificate and token
# (deploy/local/make_credentials.sh), the same inserts (ReplayWriter) and samples (a Sample RPC
# loop, and ReplaySampler as the learner uses it) of batches of 256 alternating between them,
# --repeats rounds, medians side by side (replay_bench --mode=security), then the CPU time
# (client + shard) each costs per transition and the least the cipher alone adds to it
# (openssl speed). Extra flags go to replay_bench (e.g. --repeats=7).
#
#   bash bench/security_bench.sh [--repeats=N]
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build -c opt //bench/replay:replay_bench >&2
bin="$(bazel info -c opt bazel-bin 2>/dev/null)"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
deploy/local/make_credentials.sh "$dir/credentials" >&2
echo "# bash bench/security_bench.sh $*"
echo "# commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- common replay bench || echo ' (with uncommitted changes)')"
echo "# CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# The negotiated cipher (TLS 1.3, TLS_AES_256_GCM_SHA384) on one core, in TLS's largest
# records: the fastest of 3 runs (the most generous bound); "AES-256-GCM 3131678.72k" is
# thousands of bytes per second.
rate=0
for i in 1 2 3; do
  speed="$(openssl speed -seconds 2 -bytes 16384 -evp aes-256-gcm 2>/dev/null | tail -n 1)"
  echo "# openssl speed -seconds 2 -bytes 16384 -evp aes-256-gcm: $speed"
  rate="$(awk -v best="$rate" '{sub(/k$/, "", $2); r = $2 * 1000; printf "%.0f", (r > best ? r : best)}' <<<"$speed")"
done
"$bin/bench/replay/replay_bench" --mode=security --credentials_dir="$dir/credentials" \
  --server_binary="$bin/replay/replay_server" --cipher_bytes_per_second="$rate" "$@"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
