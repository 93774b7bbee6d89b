#!/usr/bin/env bash
# The Fig. 4 experiment command (deploy/local/finetune_experiment.py) end to end at toy length:
# one pretraining run and the four downstream arms, one seed each, on the distributed system;
# checks every run finished, the fine-tuning learners started from the pretrained checkpoint,
# sql_finetune annealed alpha and its particles, and the plot and the summary were written. Whether fine-tuning wins is the long run's
# question (README), not this test's.
set -euo pipefail
bin_dir="$(cd "$(dirname "$1")/.." && pwd)"
script="$(dirname "$0")/../deploy/local/finetune_experiment.py"
out="${TEST_TMPDIR:-/tmp}/fig4"
rm -rf "$out"
fail() { echo "FAIL: $*"; exit 1; }
/usr/bin/python3 "$script" --bin_dir="$bin_dir" --out="$out" --seeds=1 --pretrain_updates=300 \
  --updates=300 --eval_interval=100 --eval_rollouts=2 --min_replay_size=200 --verbose \
  --anneal_updates=200 > "$out.log" 2>&1 || { tail -40 "$out.log"; fail "the experiment exited non-zero"; }
for run in pretrain/seed0 sql_finetune/seed0 sql_finetune_policy/seed0 sql_scratch/seed0 \
           ddpg_scratch/seed0; do
  [[ -f "$out/$run/done" ]] || fail "$run did not finish"
  rows=$(($(wc -l < "$out/$run/eval.csv") - 1))
  [[ $rows -eq 3 ]] || fail "$run: $rows evaluations, expected 3"
done
for networks in all policy; do
  grep -q "\[learner\] learner: networks initialized from $out/pretrain/seed0/learner_checkpoint.* ($networks)" \
    "$out.log" || fail "no fine-tuning learner started from the pretrained checkpoint ($networks)"
done
# sql_finetune anneals (the paper's protocol): alpha 1/100 to 0.001 and the particles to 1
# over its first 200 of 300 updates.
grep -q "\[learner\] learner: annealing over the first 200 updates: alpha 0.01 to 0.001" \
  "$out.log" || fail "the sql_finetune learner did not anneal"
grep -q "alpha,kernel_particles" "$out/sql_finetune/seed0/learner_metrics.csv" \
  || fail "sql_finetune's metrics CSV has no alpha and K"
[[ -s "$out/fig4.png" ]] || fail "no fig4.png"
for arm in sql_finetune sql_finetune_policy sql_scratch ddpg_scratch; do
  grep -qE "^$arm +1 " "$out/summary.txt" || fail "summary.txt has no line for $arm"
done
# A second invocation finds every run done and only redraws.
/usr/bin/python3 "$script" --bin_dir="$bin_dir" --out="$out" --seeds=1 --pretrain_updates=300 \
  --updates=300 > "$out.again.log" 2>&1 || fail "the rerun exited non-zero"
[[ $(grep -c "already done, skipped" "$out.again.log") -eq 5 ]] || fail "the rerun ran again"
cat "$out/summary.txt"
echo "PASS"
