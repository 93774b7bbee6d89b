#!/usr/bin/env bash
# The main job on one machine: installs what is missing, builds, trains SQL on the multi-goal
# task, evaluates, and draws the Fig. 3-style plot. Exit status 0 only if the policy learned.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/install.sh
bazel build //learner:train_in_process
out=${SOFTQ_OUT:-out/demo}
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=1
./bazel-bin/learner/train_in_process --stop_when_solved --max_env_steps=20000 \
  --trajectories_csv="$out/multigoal_rollouts.csv" "$@"
/usr/bin/python3 deploy/local/plot_multigoal.py "$out/multigoal_rollouts.csv" "$out/multigoal.png"
