"""Two measurements of the whole system, each printed as a table:

  race: wall time to a policy reaching all four multi-goal goals, the single-process
        trainer (//learner:train_in_process) vs the local multi-process demo
        (deploy/local/launch.py), same machine, one after the other, for --seeds seeds;
        the medians are compared.
  soak: the demo run for --minutes without stopping at the goal: resident memory (RSS) of
        an actor, the learner and a shard near the start and at the end.

  bazel build //... && /usr/bin/python3 bench/demo_bench.py race
  /usr/bin/python3 bench/demo_bench.py soak --minutes=10
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "deploy", "local"))
from cluster import Cluster  # noqa: E402


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def race_once(args, seed, env):
    """(single-process seconds, solved?, env steps) and (demo seconds, solved?, updates)."""
    t = time.time()
    single = subprocess.run([os.path.join(args.bin_dir, "learner", "train_in_process"),
                             "--stop_when_solved", "--max_env_steps=40000", f"--seed={seed}"],
                            capture_output=True, text=True, env=env)
    single_s = time.time() - t
    solved = re.search(r"first solved at (-?\d+) env steps", single.stdout)
    t = time.time()
    multi = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "deploy", "local", "launch.py"),
                            f"--bin_dir={args.bin_dir}", f"--out={args.out}", f"--seed={seed}"],
                           capture_output=True, text=True, env=env)
    multi_s = time.time() - t
    updates = re.findall(r"final: (\d+) updates", multi.stdout)
    return ((single_s, single.returncode == 0, solved.group(1) if solved else "?"),
            (multi_s, multi.returncode == 0, updates[-1] if updates else "?"))


def race(args):
    # Learning speed varies from seed to seed by a factor of 2 or more: one pair of runs
    # says little, so each seed runs both, and the medians are compared.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    print(f"{'seed':>4} {'single s':>9} {'solved':>7} {'env steps':>9}   {'demo s':>7} "
          f"{'solved':>7} {'updates':>8}", flush=True)
    singles, multis = [], []
    for seed in range(args.seed, args.seed + args.seeds):
        (s_s, s_ok, steps), (m_s, m_ok, updates) = race_once(args, seed, env)
        singles.append(s_s)
        multis.append(m_s)
        print(f"{seed:>4} {s_s:9.1f} {str(s_ok):>7} {steps:>9}   {m_s:7.1f} {str(m_ok):>7} "
              f"{updates:>8}", flush=True)
    single_s, multi_s = statistics.median(singles), statistics.median(multis)
    print(f"median wall s: single process (train_in_process) {single_s:.1f}, multi-process demo "
          f"(2 shards, 2 actors, learner) {multi_s:.1f}; ratio (single / multi) "
          f"{single_s / multi_s:.2f}x")


def soak(args):
    cluster = Cluster(args.bin_dir, echo=False)
    try:
        shards = cluster.start_shards(2, ["--min_size_to_sample=100", "--samples_per_insert=32",
                                          "--error_buffer=6400"])
        learner = cluster.start_learner(["--eval_interval=0", "--log_interval_s=30"])
        actors = [cluster.start_actor(i, cluster.learner_address, ["--report_interval_s=30"])
                  for i in range(2)]
        watched = {"actor0": actors[0], "learner": learner, "shard0": shards[0]}
        time.sleep(30)
        start = {n: rss_mib(p.proc.pid) for n, p in watched.items()}
        time.sleep(max(0, args.minutes * 60 - 30))
        end = {n: rss_mib(p.proc.pid) for n, p in watched.items()}
        alive = all(p.running() for p in cluster.processes)
    finally:
        codes = cluster.stop()
    print(f"{args.minutes:.1f}-minute soak, every process alive to the end: {alive}; exit codes {codes}")
    print(f"{'process':10} {'RSS at 30 s (MiB)':>18} {'RSS at end (MiB)':>17} {'change':>8}")
    for n in watched:
        print(f"{n:10} {start[n]:18.1f} {end[n]:17.1f} {100 * (end[n] / start[n] - 1):7.1f}%")
    updates = [l for l in learner.lines if "updates" in l]
    print("learner:", updates[-1] if updates else "?")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["race", "soak"])
    parser.add_argument("--bin_dir", default=os.path.join(ROOT, "bazel-bin"))
    parser.add_argument("--out", default="/tmp/softq_demo_bench")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--seeds", type=int, default=3, help="race: seeds, each run both ways")
    args = parser.parse_args()
    race(args) if args.mode == "race" else soak(args)


if __name__ == "__main__":
    main()
