#!/bin/bash
# Submits softq as one heterogeneous Slurm job (deploy/slurm/softq.sbatch): replay shards,
# one learner, actors. Every setting is a flag; anything after `--` goes to sbatch as job-wide
# options (e.g. --output, --time, --account, --parsable). Prints sbatch's answer.
#
#   deploy/slurm/submit.sh --bin=/shared/softq/bin --run_dir=/shared/softq/run \
#       --shards=4 --shard_nodes=2 --actors=16 --actor_nodes=4 --learner_gres=gpu:1
#
# Flags (default):
#   --bin (required)          directory with replay_server, replay_stats, learner_main,
#                             actor_main, the same path on every node
#   --run_dir (./softq-run)   checkpoints (replay/, learner/) and logs (logs/<job>/), shared
#   --partition               partition of every group (sbatch's default when empty)
#   --shards (2) --shard_nodes (1) --shard_cpus (1 per shard) --shard_mem (4G per node)
#   --learner_cpus (2) --learner_mem (8G) --learner_gres (none; e.g. gpu:1)
#   --actors (4) --actor_nodes (1) --actor_cpus (1 per actor) --actor_mem (4G per node)
#   --replay_port (17000, + local rank) --learner_port (17100)
#   --replay_metrics_port, --actor_metrics_port (-1: off; base + local rank; 0: any free)
#   --learner_metrics_port (-1: off)          Prometheus /metrics on each node's address
#   --env (multigoal) --env_config ("")   the environment and its parameters, given to the
#                             learner and every actor alike (quoted: a value may hold spaces)
#   --replay_flags, --learner_flags, --actor_flags ("")  extra flags of the binaries
#   --python_env (none)       MODULE:CALLABLE: Python actors (python3 -m softq.actor) step this
#                             Gymnasium-style environment in place of actor_main; give the
#                             learner --env=external --env_config=observation_dim=O,action_dim=A
#   --python_dir              with --python_env: the directory holding softq/ (python/ of a
#                             checkout) with _softq_actor.so beside its .py files, on every node
#   --prioritized             prioritized experience replay: the shards with
#                             --sampler=prioritized, the learner with --prioritized
#   --overcommit              let tasks exceed the CPUs of their nodes (small test clusters)
#   --credentials_days (30)   validity of the job's certificates
#   --insecure                no TLS and no token (loopback development only; says so)
#
# Secure by default: the job makes its own credentials at start (deploy/local/make_credentials.sh,
# openssl on the job's first node) in <run_dir>/credentials/<job id>, readable only by the job's
# user (directory 0700, files 0600, checked), gives them to every process and deletes them at
# its end. The repository's deploy/ folder (beside this script) must be on every node.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

bin="" run_dir="$PWD/softq-run" partition="" overcommit=0
shards=2 shard_nodes=1 shard_cpus=1 shard_mem=4G
learner_cpus=2 learner_mem=8G learner_gres=""
actors=4 actor_nodes=1 actor_cpus=1 actor_mem=4G
replay_port=17000 learner_port=17100
replay_metrics_port=-1 learner_metrics_port=-1 actor_metrics_port=-1
replay_flags="" learner_flags="" actor_flags="" env=multigoal env_config=""
python_env="" python_dir="" prioritized=0 insecure=0 credentials_days=30
sbatch_args=()
while (($#)); do
  case "$1" in
    --) shift; sbatch_args=("$@"); break ;;
    --overcommit) overcommit=1 ;;
    --prioritized) prioritized=1 ;;
    --insecure) insecure=1 ;;
    --*=*)
      name="${1%%=*}"; name="${name#--}"; value="${1#*=}"
      case "$name" in
        bin | run_dir | partition | shards | shard_nodes | shard_cpus | shard_mem | learner_cpus | \
          learner_mem | learner_gres | actors | actor_nodes | actor_cpus | actor_mem | \
          replay_port | learner_port | replay_metrics_port | learner_metrics_port | \
          actor_metrics_port | env | env_config | \
          replay_flags | learner_flags | actor_flags | python_env | python_dir | credentials_days)
          printf -v "$name" '%s' "$value" ;;
        *) echo "submit.sh: unknown flag --${name} (see the header of $0)" >&2; exit 2 ;;
      esac
      ;;
    *) echo "submit.sh: unexpected argument '$1' (flags are --name=value)" >&2; exit 2 ;;
  esac
  shift
done
if [[ -z "$bin" ]]; then
  echo "submit.sh: --bin=<directory with the four binaries> is required" >&2
  exit 2
fi
for b in replay_server replay_stats learner_main actor_main; do
  [[ -x "$bin/$b" ]] || { echo "submit.sh: --bin=$bin has no executable $b" >&2; exit 2; }
done
if [[ -n "$python_env" ]]; then
  [[ -f "$python_dir/softq/actor.py" && -f "$python_dir/softq/_softq_actor.so" ]] || {
    echo "submit.sh: --python_dir=$python_dir holds no softq/actor.py and softq/_softq_actor.so" >&2
    exit 2
  }
  python_dir="$(cd "$python_dir" && pwd)"
fi
for n in shards shard_nodes actors actor_nodes shard_cpus learner_cpus actor_cpus credentials_days; do
  [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: --$n=${!n}: must be a positive integer" >&2; exit 2; }
done
for n in replay_port learner_port replay_metrics_port learner_metrics_port actor_metrics_port; do
  if ! [[ "${!n}" =~ ^(-1|[0-9]+)$ ]] || ((${!n} > 65535)); then
    echo "submit.sh: --$n=${!n}: must be a port in [0, 65535], or -1 (off)" >&2
    exit 2
  fi
done
((shards >= shard_nodes)) || { echo "submit.sh: --shards=$shards < --shard_nodes=$shard_nodes" >&2; exit 2; }
((actors >= actor_nodes)) || { echo "submit.sh: --actors=$actors < --actor_nodes=$actor_nodes" >&2; exit 2; }

common=()
[[ -n "$partition" ]] && common+=(--partition="$partition")
((overcommit)) && common+=(--overcommit)
replay=(--nodes="$shard_nodes" --ntasks="$shards" --cpus-per-task="$shard_cpus" --mem="$shard_mem")
learner=(--nodes=1 --ntasks=1 --cpus-per-task="$learner_cpus" --mem="$learner_mem")
[[ -n "$learner_gres" ]] && learner+=(--gres="$learner_gres")
actor=(--nodes="$actor_nodes" --ntasks="$actors" --cpus-per-task="$actor_cpus" --mem="$actor_mem")

if ((insecure)); then
  echo "submit.sh: --insecure: the job runs without TLS and without a token; whoever reaches the nodes' ports can read and change its replay and parameters" >&2
elif [[ ! -x "$here/../local/make_credentials.sh" ]]; then
  echo "submit.sh: $here/../local/make_credentials.sh is missing (it makes the job's credentials; --insecure runs without)" >&2
  exit 2
fi

mkdir -p "$run_dir" || exit 2
SOFTQ_BIN="$(cd "$bin" && pwd)" && SOFTQ_RUN_DIR="$(cd "$run_dir" && pwd)" || exit 2
export SOFTQ_BIN SOFTQ_RUN_DIR SOFTQ_SLURM_DIR="$here"
export SOFTQ_REPLAY_PORT="$replay_port" SOFTQ_LEARNER_PORT="$learner_port"
export SOFTQ_REPLAY_METRICS_PORT="$replay_metrics_port" SOFTQ_LEARNER_METRICS_PORT="$learner_metrics_port"
export SOFTQ_ACTOR_METRICS_PORT="$actor_metrics_port"
export SOFTQ_ENV="$env" SOFTQ_ENV_CONFIG="$env_config"
export SOFTQ_PYTHON_ENV="$python_env" SOFTQ_PYTHON_DIR="$python_dir"
export SOFTQ_INSECURE="$insecure" SOFTQ_CREDENTIALS_DAYS="$credentials_days"
if ((prioritized)); then
  replay_flags="--sampler=prioritized${replay_flags:+ $replay_flags}"
  learner_flags="--prioritized${learner_flags:+ $learner_flags}"
fi
export SOFTQ_REPLAY_FLAGS="$replay_flags" SOFTQ_LEARNER_FLAGS="$learner_flags" SOFTQ_ACTOR_FLAGS="$actor_flags"
exec sbatch --export=ALL "${sbatch_args[@]}" "${common[@]}" "${replay[@]}" \
  : "${common[@]}" "${learner[@]}" : "${common[@]}" "${actor[@]}" "$here/softq.sbatch"
