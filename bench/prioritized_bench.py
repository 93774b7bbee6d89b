"""The cost of prioritized replay on the learner's updates/s (issue 28): the same learner
(learner_main, multi-goal sizes; eager CPU updates, or --device=cuda: a GPU learner, a CUDA
graph by default, which takes the importance weights too) against 2 shards, once uniform (shards
--sampler=uniform, learner without --prioritized) and once prioritized (shards
--sampler=prioritized, learner --prioritized: importance weights in the critic's loss,
priorities sent back in the background), alternating which goes first, --repeats rounds,
medians side by side. Each round fills both shards with an actor first, stops it, then runs
the learner for --updates updates without a rate limit (samples_per_insert 0), so the
learner's own work is what is timed: its final line's updates/s.

  bazel build //replay:replay_server //learner:learner_main //actor:actor_main
  /usr/bin/python3 bench/prioritized_bench.py --bin_dir=bazel-bin [--updates=4000 --repeats=3]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy",
                                "local"))
from cluster import Cluster  # noqa: E402


def one_run(bin_dir, prioritized, updates, fill, device):
    cluster = Cluster(bin_dir, echo=False)
    try:
        sampler = "prioritized" if prioritized else "uniform"
        cluster.start_shards(2, ["--capacity=200000", "--min_size_to_sample=1000",
                                 "--samples_per_insert=0", f"--sampler={sampler}"])
        # A learner that only publishes (0 updates) lets the actor fill the shards.
        filler = cluster.start_learner(["--env=multigoal", "--max_updates=0",
                                        "--eval_interval=0"])
        actor = cluster.start_actor(0, cluster.learner_address,
                                    ["--env=multigoal", "--num_envs=16", "--report_interval_s=1"])
        actor.wait_for(lambda l: (m := re.search(r"acked (\d+)", l)) is not None
                       and int(m.group(1)) >= fill, 300)
        actor.signal(15)
        actor.wait(30)
        filler.signal(15)
        filler.wait(30)
        learner = cluster.start("learner_timed", "learner", [
            f"--replay={','.join(cluster.shard_addresses)}", "--port=0", "--env=multigoal",
            f"--max_updates={updates}", "--eval_interval=0", f"--device={device}",
            "--log_interval_s=60"] + (["--prioritized"] if prioritized else []))
        line = learner.wait_for(lambda l: l.startswith("learner: final:"), 1800)
        return float(re.search(r"\(([\d.]+) upd/s\)", line).group(1))
    finally:
        cluster.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin_dir", default="bazel-bin")
    p.add_argument("--updates", type=int, default=4000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu", help="the timed learner's --device")
    p.add_argument("--fill", type=int, default=20000,
                   help="transitions the actor stores before the learner starts")
    args = p.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines()
        if l.startswith("Model name")), "unknown")
    print(f"# /usr/bin/python3 bench/prioritized_bench.py --updates={args.updates} "
          f"--repeats={args.repeats} --fill={args.fill} --device={args.device}")
    print(f"# commit {commit}; CPU: {cpu}, {os.cpu_count()} cores; load average before: "
          f"{' '.join(open('/proc/loadavg').read().split()[:3])}", flush=True)
    rates = {False: [], True: []}
    for r in range(args.repeats):
        for prioritized in ([False, True] if r % 2 == 0 else [True, False]):
            rates[prioritized].append(one_run(args.bin_dir, prioritized, args.updates,
                                              args.fill, args.device))
            print(f"round {r}: {'prioritized' if prioritized else 'uniform'} "
                  f"{rates[prioritized][-1]:.1f} upd/s", flush=True)
    uniform, prio = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"learner updates/s (median of {args.repeats}): uniform {uniform:.1f}, prioritized "
          f"{prio:.1f}, prioritized/uniform {prio / uniform:.3f}x")
    print(f"# load average after: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
