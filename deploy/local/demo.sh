#!/usr/bin/env bash
# The main job on one machine: installs what is missing, builds, and runs the local
# multi-process demo (replay shards, actors and a learner as separate processes) on the
# multi-goal task until two consecutive evaluations (fresh rollouts each) find the policy
# reaching all four goals; stops everything, draws the
# Fig. 3-style plot. Exit status 0 only if the policy learned and every process exited
# cleanly. Ctrl-C stops everything. Options go to deploy/local/launch.py (--shards, --actors,
# --out, --max_updates, --seed, ...).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/install.sh
bazel build //replay:replay_server //replay:replay_stats //learner:learner_main //actor:actor_main
export OPENBLAS_NUM_THREADS=1
exec /usr/bin/python3 deploy/local/launch.py --bin_dir=bazel-bin "$@"
