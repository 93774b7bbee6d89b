#!/bin/bash
# One softq process of a Slurm step, started by srun from softq.sbatch: `task.sh replay`,
# `task.sh learner` or `task.sh actor`. Binds to its node's NodeAddr (from scontrol), takes its
# id from its task rank (SLURM_PROCID) and its port from its local rank (SLURM_LOCALID), then
# execs the binary so that Slurm's SIGTERM reaches it directly.
# The environment: SOFTQ_ENV (multigoal), SOFTQ_ENV_CONFIG (""), for the learner and actors.
# Extra flags: SOFTQ_REPLAY_FLAGS, SOFTQ_LEARNER_FLAGS, SOFTQ_ACTOR_FLAGS (word-split).
# SOFTQ_PYTHON_ENV (MODULE:CALLABLE): the actors are Python ones (python3 -m softq.actor from
# SOFTQ_PYTHON_DIR) stepping that environment; SOFTQ_ENV/SOFTQ_ENV_CONFIG then go to the learner only.
# SOFTQ_CREDENTIALS: the job's credentials directory (softq.sbatch): every process gets its
# files as --tls_ca, --tls_cert, --tls_key, --auth_token_file; empty: insecure mode.
# Metrics (Prometheus /metrics on the node's address): SOFTQ_REPLAY_METRICS_PORT and
# SOFTQ_ACTOR_METRICS_PORT (base + local rank), SOFTQ_LEARNER_METRICS_PORT; 0: any free port;
# -1 (default): off.
set -euo pipefail
role="$1"
# shellcheck source-path=SCRIPTDIR source=node_addr.sh
source "$(dirname "${BASH_SOURCE[0]}")/node_addr.sh"
addr=$(node_addr "$SLURMD_NODENAME" || true)  # set -e must not end it without a word
if [[ -z "$addr" ]]; then
  echo "task.sh: no IPv4 address for node ${SLURMD_NODENAME} (its NodeAddr)" >&2
  exit 1
fi
# The metrics port of one task of a group with base port $1: -1 off, 0 any, else base + rank.
metrics_port() {
  if (($1 <= 0)); then echo "$1"; else echo $(($1 + SLURM_LOCALID)); fi
}
security=()
if [[ -n "${SOFTQ_CREDENTIALS:-}" ]]; then
  security=(--tls_ca="${SOFTQ_CREDENTIALS}/ca.crt" --tls_cert="${SOFTQ_CREDENTIALS}/job.crt"
    --tls_key="${SOFTQ_CREDENTIALS}/job.key" --auth_token_file="${SOFTQ_CREDENTIALS}/token")
fi
case "$role" in
  replay)
    # shellcheck disable=SC2086
    exec "${SOFTQ_BIN}/replay_server" "${security[@]}" --host="$addr" \
      --port="$((SOFTQ_REPLAY_PORT + SLURM_LOCALID))" --shard_id="$SLURM_PROCID" \
      --checkpoint_dir="${SOFTQ_RUN_DIR}/replay" \
      --metrics_port="$(metrics_port "${SOFTQ_REPLAY_METRICS_PORT:--1}")" ${SOFTQ_REPLAY_FLAGS:-}
    ;;
  learner)
    # shellcheck disable=SC2086
    exec "${SOFTQ_BIN}/learner_main" "${security[@]}" --host="$addr" --port="$SOFTQ_LEARNER_PORT" \
      --replay="$SOFTQ_REPLAY_ADDRESSES" --checkpoint_dir="${SOFTQ_RUN_DIR}/learner" \
      --metrics_port="${SOFTQ_LEARNER_METRICS_PORT:--1}" --env="${SOFTQ_ENV:-multigoal}" \
      --env_config="${SOFTQ_ENV_CONFIG:-}" ${SOFTQ_LEARNER_FLAGS:-}
    ;;
  actor)
    if [[ -n "${SOFTQ_PYTHON_ENV:-}" ]]; then
      # shellcheck disable=SC2086
      PYTHONPATH="${SOFTQ_PYTHON_DIR}${PYTHONPATH:+:$PYTHONPATH}" exec /usr/bin/python3 -m softq.actor "${security[@]}" \
        --env="$SOFTQ_PYTHON_ENV" --replay="$SOFTQ_REPLAY_ADDRESSES" \
        --learner="$SOFTQ_LEARNER_ADDRESS" --actor_id="$SLURM_PROCID" --metrics_host="$addr" \
        --metrics_port="$(metrics_port "${SOFTQ_ACTOR_METRICS_PORT:--1}")" ${SOFTQ_ACTOR_FLAGS:-}
    fi
    # shellcheck disable=SC2086
    exec "${SOFTQ_BIN}/actor_main" "${security[@]}" --replay="$SOFTQ_REPLAY_ADDRESSES" \
      --learner="$SOFTQ_LEARNER_ADDRESS" --actor_id="$SLURM_PROCID" --metrics_host="$addr" \
      --metrics_port="$(metrics_port "${SOFTQ_ACTOR_METRICS_PORT:--1}")" \
      --env="${SOFTQ_ENV:-multigoal}" --env_config="${SOFTQ_ENV_CONFIG:-}" ${SOFTQ_ACTOR_FLAGS:-}
    ;;
  *)
    echo "task.sh: unknown role '${role}' (replay, learner or actor)" >&2
    exit 2
    ;;
esac
