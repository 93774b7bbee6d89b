# shellcheck shell=bash
# Sourced by softq.sbatch and task.sh, so that the clients' addresses and the servers' bind
# addresses come from one place.
# node_addr NODE: the NodeAddr of Slurm node NODE (the address Slurm itself uses to reach it)
# as an IPv4 address (NodeAddr is often a host name; the metrics exporter binds only IPv4
# literals); prints nothing when it has none.
node_addr() {
  getent ahostsv4 "$(scontrol show node -o "$1" | tr ' ' '\n' | sed -n 's/^NodeAddr=//p')" |
    awk 'NR == 1 { print $1 }'
}
