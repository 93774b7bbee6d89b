#!/usr/bin/env bash
# Regenerates bench/results/env/env_bench.txt: env_bench's whole stdout (commit, CPU, table)
# after two lines naming the command and the date. Arguments go to env_bench, e.g.
#   bash bench/env_bench.sh                    # every body, 3 x 10 s per setting
#   bash bench/env_bench.sh --seconds=3        # quicker
# Run it on a quiet machine: every figure is one thread's, and the shard is another process.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results/env/env_bench.txt
bazel build -c opt //bench:env_bench
{
  echo "command: bash bench/env_bench.sh $*"
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs online, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
  bazel run -c opt //bench:env_bench -- "$@"
} > "$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
