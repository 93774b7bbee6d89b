#!/usr/bin/env bash
# The experiment command (deploy/local/finetune_experiment.py) end to end at toy length, on
# the distributed system:
#  - fig4 (quadruped): SQL and DDPG pretraining on quadruped_speed, then the four arms on
#    hallway_wide, hallway_narrow and maze_u, one seed: every run finished with its
#    evaluations in curves.csv, the fine-tuning learners started from their pretrained
#    checkpoints, sql_finetune annealed, the summary table and both plots were written;
#  - exploration: SQL and DDPG on swimmer_explore (finish line moved to 1 cm: every rollout
#    crosses it) and maze_blocked (50-step episodes: the goal out of reach), two seeds: the
#    outcome of every run counted (all swimmer runs reached a finish line, with a direction;
#    no maze run reached the goal) with its intervals, progress lines on the terminal;
#  - resume: a rerun skips finished runs and runs only an unfinished one;
#  - --parallel=2 (fig4 and Ctrl-C): two runs at once, a fine-tuning run after its
#    pretraining run;
#  - Ctrl-C: exit 130 and no process of the experiment left.
# Whether fine-tuning or SQL wins is the long run's question (README), not this test's.
set -euo pipefail
bin_dir="$(cd "$(dirname "$1")/.." && pwd)"
script="$(dirname "$0")/../deploy/local/finetune_experiment.py"
tmp="${TEST_TMPDIR:-/tmp}"
fail() { echo "FAIL: $*"; exit 1; }
toy=(--bin_dir="$bin_dir" --updates=100 --eval_interval=50 --eval_rollouts=2
     --min_replay_size=100 --max_steps=50)

# --- flags: --help works; a bad flag is one line, exit 2 ---
/usr/bin/python3 "$script" --help > /dev/null || fail "--help failed"
rc=0; /usr/bin/python3 "$script" --arms=sql,bogus > "$tmp/bad.log" 2>&1 || rc=$?
[[ $rc -eq 2 && $(wc -l < "$tmp/bad.log") -eq 1 ]] && grep -q "arms: unknown \['sql', 'bogus'\]" "$tmp/bad.log" \
  || fail "a bad --arms: exit $rc, $(cat "$tmp/bad.log")"

# --- fig4 on the quadruped ---
out="$tmp/fig4"
rm -rf "$out"
/usr/bin/python3 "$script" "${toy[@]}" --out="$out" --seeds=1 --pretrain_seeds=1 \
  --pretrain_updates=100 --anneal_updates=50 --parallel=2 --verbose > "$out.log" 2>&1 \
  || { tail -40 "$out.log"; fail "fig4 exited non-zero"; }
grep -q "^experiment: fig4: 14 runs, 0 already done, into $out, 2 at a time" "$out.log" \
  || fail "no start line with --parallel=2"
# two at a time, and a fine-tuning run only after its pretraining run finished
/usr/bin/python3 - "$out.log" <<'PY' || fail "--parallel=2: runs not two at a time or out of order"
import re, sys
running, most, finished = set(), 0, set()
for line in open(sys.argv[1]):
    m = re.match(r"experiment: \[\d+/\d+\] (\S+): (\S+)", line)
    if not m:
        continue
    name, what = m.groups()
    if what == "finished":
        running.discard(name)
        finished.add(name)
    elif what.startswith("quadruped"):
        running.add(name)
        most = max(most, len(running))
        arm = name.split("/")[1]
        if arm.endswith("_finetune") and f"pretrain/{arm.split('_')[0]}/seed0" not in finished:
            sys.exit(f"{name} started before its pretraining run finished")
sys.exit(0 if most == 2 else f"at most {most} runs at once")
PY
for run in pretrain/sql/seed0 pretrain/ddpg/seed0; do
  [[ -f "$out/$run/done" ]] || fail "$run did not finish"
done
for task in hallway_wide hallway_narrow maze_u; do
  for arm in sql_finetune sql_scratch ddpg_scratch ddpg_finetune; do
    [[ -f "$out/$task/$arm/seed0/done" ]] || fail "$task/$arm did not finish"
    rows=$(grep -c "^fig4,$task,$arm,0," "$out/curves.csv" || true)
    [[ $rows -eq 2 ]] || fail "curves.csv: $rows evaluations of $task/$arm/seed0, expected 2"
    grep -qE "^  $arm +1 " "$out/summary.txt" || fail "summary.txt: no $task line for $arm"
  done
done
# every evaluation's rollouts ended somewhere: a distance from the start on every row
[[ $(grep -c ',nan$' "$out/curves.csv" || true) -eq 0 ]] || fail "curves.csv: evaluations without a distance"
for algorithm in sql ddpg; do
  n=$(grep -c "\[learner\] learner: networks initialized from $out/pretrain/$algorithm/seed0/learner_checkpoint.* (all)" "$out.log" || true)
  [[ $n -eq 3 ]] || fail "$n $algorithm fine-tuning learners started from the pretrained checkpoint, expected 3"
done
# sql_finetune anneals (the paper's protocol): alpha 1/30 to 0.001 and the particles to 1
# over its first 50 of 100 updates; no other arm does.
n=$(grep -c "\[learner\] learner: annealing over the first 50 updates: alpha 0.0333333 to 0.001" "$out.log" || true)
[[ $n -eq 3 ]] || fail "$n annealing learners, expected 3 (sql_finetune on each task)"
grep -q "alpha,kernel_particles" "$out/maze_u/sql_finetune/seed0/learner_metrics.csv" \
  || fail "sql_finetune's metrics CSV has no alpha and K"
for task in hallway_wide hallway_narrow maze_u; do
  grep -q "^$task: final" "$out/summary.txt" || fail "summary.txt: no table for $task"
done
grep -q "sql_finetune - ddpg_finetune, final: .*95% bootstrap" "$out/summary.txt" \
  || fail "summary.txt: no difference between arms"
[[ -s "$out/fig4.png" && -s "$out/pretrain.png" ]] || fail "no fig4.png or pretrain.png"

# --- exploration ---
out="$tmp/exploration"
rm -rf "$out"
explore=("${toy[@]}" --experiment=exploration --out="$out" --seeds=2
         --task_config=swimmer_explore=finish=0.01)
/usr/bin/python3 "$script" "${explore[@]}" > "$out.log" 2>&1 \
  || { tail -40 "$out.log"; fail "exploration exited non-zero"; }
grep -q "^experiment: \[1/8\] swimmer_explore/sql/seed0: eval at update 50: return" "$out.log" \
  || fail "no progress line for the first run's evaluation"
[[ $(($(wc -l < "$out/outcomes.csv") - 1)) -eq 8 ]] || fail "outcomes.csv: not 8 runs"
for arm in sql ddpg; do
  for seed in 0 1; do
    grep -qE "^swimmer_explore,$arm,$seed,2,1,1,[0-9]+,(forward|backward|both)," "$out/outcomes.csv" \
      || fail "swimmer_explore/$arm/seed$seed: not counted as reaching a finish line"
    grep -qE "^maze_blocked,$arm,$seed,2,0,0,,," "$out/outcomes.csv" \
      || fail "maze_blocked/$arm/seed$seed: counted as reaching the goal"
  done
  grep -qE "^  swimmer_explore $arm +reached 2/2 = 100% \[34%, 100%\]; ever 2/2 .*; forward [0-2], backward [0-2], both [0-2]" \
    "$out/summary.txt" || fail "summary.txt: swimmer_explore $arm not 2/2 with its interval"
  grep -qE "^  maze_blocked +$arm +reached 0/2 = 0% \[0%, 66%\]" "$out/summary.txt" \
    || fail "summary.txt: maze_blocked $arm not 0/2 with its interval"
done
[[ -s "$out/exploration.png" ]] || fail "no exploration.png"

# --- resume: every finished run is skipped; an unfinished one runs again ---
rm "$out/maze_blocked/ddpg/seed1/done"
/usr/bin/python3 "$script" "${explore[@]}" > "$out.again.log" 2>&1 \
  || { tail -20 "$out.again.log"; fail "the rerun exited non-zero"; }
[[ $(grep -c "already done, skipped" "$out.again.log") -eq 7 ]] || fail "the rerun ran finished runs again"
[[ $(grep -c ": finished in " "$out.again.log") -eq 1 ]] \
  && grep -q "maze_blocked/ddpg/seed1: finished in" "$out.again.log" \
  || fail "the rerun did not run exactly the unfinished run"

# --- Ctrl-C: exit 130, every process the command started stopped ---
out="$tmp/interrupted"
rm -rf "$out"
/usr/bin/python3 "$script" "${explore[@]/--out=*/--out=$out}" --updates=100000 --parallel=2 \
  > "$out.log" 2>&1 &
pid=$!
for _ in $(seq 120); do
  grep -q "eval at update" "$out.log" 2>/dev/null && break
  sleep 0.5
done
grep -q "eval at update" "$out.log" || { kill "$pid"; fail "the interrupted run never evaluated"; }
sleep 1
children=$(pgrep -P "$pid" || true)  # two runs' shard, learner and actor
[[ $(echo $children | wc -w) -eq 6 ]] || fail "expected 6 processes of two runs, found: $children"
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
[[ $rc -eq 130 ]] || { tail -20 "$out.log"; fail "Ctrl-C: exit $rc, expected 130"; }
for child in $children; do
  ! kill -0 "$child" 2> /dev/null || fail "process $child left after Ctrl-C: $(ps -o args= -p "$child")"
done
grep -q "stopped (rerun the same command to continue)" "$out.log" || fail "no stop line"
[[ ! -e "$out/swimmer_explore/sql/seed0/done" && ! -e "$out/swimmer_explore/ddpg/seed0/done" ]] \
  || fail "an interrupted run was marked done"
cat "$tmp/fig4/summary.txt" "$tmp/exploration/summary.txt"
echo "PASS"
