"""The Python actor's cost (issue 27): env steps/s of `python3 -m softq.actor` against
`actor_main` on the same task, and the Python actor's overhead per env step beside the
environment's own step time.

  python3 bench/python_actor_bench.py --bin_dir=bazel-bin [--envs=16] [--seconds=8]

Each run: one replay shard (no rate limit: inserts never wait on the learner) and a learner
that only serves its parameters (it never gets a sampleable replay: --min_size_to_sample is
above what the run inserts), then one actor streaming to the shard with --num_envs; its
report lines' steps/s, median over the run after the first. Tasks: `multigoal` (C++
actor_main) vs its numpy mirror (softq.examples.multigoal) in the Python actor, and a
trivial environment (constant observation, zero reward; `trivial` below) in the Python
actor. Overhead per env step = 1 / (Python actor's steps/s) - the environment's own step
time (measured here: N instances stepped in a plain Python loop, the same actions).
Target (issue 27): at most 20 us at 16 environments per process.
"""
import argparse
import os
import re
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "deploy", "local"))
sys.path.insert(0, os.path.join(ROOT, "python"))
from cluster import Cluster, Process  # noqa: E402


class _Box:
    def __init__(self, n):
        self.shape, self.low, self.high = (n,), -np.ones(n, np.float32), np.ones(n, np.float32)


class Trivial:
    """Constant observation (2 values), zero reward, 100-step episodes: what the actor adds."""

    def __init__(self):
        self.observation_space, self.action_space = _Box(2), _Box(2)
        self._obs = np.zeros(2, np.float32)
        self._t = 0

    def reset(self, seed=None, options=None):
        self._t = 0
        return self._obs, {}

    def step(self, action):
        self._t += 1
        return self._obs, 0.0, False, self._t >= 100, {}


def trivial():
    return Trivial()


def env_step_seconds(factory, n, steps=4000):
    """Seconds per env step of `n` instances stepped in a plain loop (resets included)."""
    envs = [factory() for _ in range(n)]
    for i, e in enumerate(envs):
        e.reset(seed=i)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps // n + 1, n, 2)).astype(np.float32)
    start = time.perf_counter()
    done = 0
    for k in range(steps // n):
        for i, e in enumerate(envs):
            _, _, term, trunc, _ = e.step(actions[k, i])
            if term or trunc:
                e.reset()
            done += 1
    return (time.perf_counter() - start) / done


def actor_rate(bin_dir, argv, seconds):
    """Median steps/s of an actor's report lines (the first left out)."""
    cluster = Cluster(bin_dir, echo=False)
    try:
        cluster.start_shards(1, ["--capacity=20000000", "--min_size_to_sample=20000000"])
        cluster.start_learner(["--env=multigoal", "--max_updates=0", "--eval_interval=0"])
        argv = argv + [f"--replay={cluster.shard_addresses[0]}",
                       f"--learner={cluster.learner_address}", "--report_interval_s=1"]
        p = Process("actor0", argv, echo=False)
        cluster.processes.append(p)
        p.wait_for(lambda l: "got parameters" in l, 60)
        time.sleep(seconds)
        rates = [float(m.group(1)) for l in p.lines
                 for m in [re.search(r"([\d.]+) steps/s", l)] if m]
        return statistics.median(rates[1:]) if len(rates) > 1 else float("nan")
    finally:
        cluster.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin_dir", default="bazel-bin")
    parser.add_argument("--envs", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "python"), HERE])
    os.environ["SOFTQ_MODULE_DIR"] = os.path.abspath(os.path.join(args.bin_dir, "python",
                                                                  "softq"))
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    from softq.examples import multigoal
    n = args.envs
    py = ["/usr/bin/python3", "-m", "softq.actor", f"--num_envs={n}", "--actor_id=0"]
    rows = [
        ("multigoal, C++ actor_main", [os.path.join(args.bin_dir, "actor", "actor_main"),
                                       "--env=multigoal", f"--num_envs={n}"], None),
        ("multigoal (numpy), Python actor", py + ["--env=softq.examples.multigoal:make"],
         multigoal.make),
        ("trivial, Python actor", py + ["--env=python_actor_bench:trivial"], trivial),
    ]
    print(f"python_actor_bench: {n} environments per actor, {args.seconds:.0f} s each, "
          f"{os.cpu_count()} CPUs")
    print(f"{'task, actor':36s} {'env steps/s':>12s} {'us/step':>8s} {'env us/step':>12s} "
          f"{'actor us/step':>14s}")
    for name, argv, factory in rows:
        rate = actor_rate(args.bin_dir, argv, args.seconds)
        per_step = 1e6 / rate
        env_us = env_step_seconds(factory, n) * 1e6 if factory else float("nan")
        overhead = per_step - env_us if factory else float("nan")
        print(f"{name:36s} {rate:12.0f} {per_step:8.1f} {env_us:12.1f} {overhead:14.1f}")
    print("actor us/step: the Python actor's cost per env step beside the environment's own "
          "(target <= 20 us at 16 envs)")


if __name__ == "__main__":
    main()
