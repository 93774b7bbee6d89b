#!/usr/bin/env bash
# Multi-goal still learns with prioritized experience replay (issue 28): the local launcher
# with --prioritized (2 prioritized shards, 2 actors, a learner with --prioritized) must
# reach all four goals on 2 consecutive evaluations, every process exiting 0, and the
# learner must have sent priorities to the shards without a failed RPC.
set -euo pipefail
bin_dir="$(cd "$(dirname "$1")/.." && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
out_dir="${TEST_TMPDIR:-$(mktemp -d)}/prioritized_demo"
log="$out_dir.log"
status=0
/usr/bin/python3 "$here/../deploy/local/launch.py" --bin_dir="$bin_dir" --prioritized \
  --out="$out_dir" --seed=0 >"$log" 2>&1 || status=$?
grep -v '^\[actor' "$log" | tail -25
fail=0
if [[ $status -ne 0 ]]; then echo "FAIL: launch.py --prioritized exit $status"; fail=1; fi
if ! grep -q "launch: learned a policy reaching all four goals" "$log"; then
  echo "FAIL: multi-goal not learned with --prioritized"; fail=1
fi
if ! grep -q "learner: prioritized replay" "$log"; then
  echo "FAIL: the learner did not run prioritized"; fail=1
fi
sent_line="$(grep -o 'priorities sent [0-9]*, dropped [0-9]*, failed [0-9]*' "$log" || true)"
read -r sent failed < <(echo "$sent_line" | awk '{print $3+0, $7+0}')
if [[ -z "$sent_line" || "${sent:-0}" -eq 0 || "${failed:-1}" -ne 0 ]]; then
  echo "FAIL: priorities: '$sent_line' (want some sent, none failed)"; fail=1
fi
if [[ $fail -eq 0 ]]; then echo "PASS: multi-goal learned with --prioritized ($sent_line)"; fi
exit $fail
