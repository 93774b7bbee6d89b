"""The local multi-process demo: S replay shards, A actors and one learner, each its own
process on this machine, trained on the multi-goal task until the learner's evaluation meets
the criterion (all four goals) or --max_updates. Stops every process it started, draws the
Fig. 3-style plot, and exits non-zero if learning failed or any process crashed.
Ctrl-C (or SIGTERM) stops everything cleanly. Each run trains from scratch: a learner
checkpoint left in --out by an earlier run is removed first, unless --resume.

  python3 deploy/local/launch.py --bin_dir=bazel-bin --shards=2 --actors=2 --out=out/demo
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin_dir", default="bazel-bin")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--envs_per_actor", type=int, default=4)
    parser.add_argument("--max_updates", type=int, default=30000)
    parser.add_argument("--samples_per_insert", type=float, default=32.0,
                        help="replay rate limit: sampled transitions per inserted one "
                             "(batch 64 => 2 env steps per update)")
    parser.add_argument("--out", default="out/demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true",
                        help="continue from the learner checkpoint an earlier run left in --out")
    args = parser.parse_args()
    if args.shards < 1 or args.actors < 1:
        parser.error("--shards and --actors must be at least 1")
    os.makedirs(args.out, exist_ok=True)
    checkpoint_dir = os.path.join(args.out, "learner_checkpoint")
    if os.path.isdir(checkpoint_dir) and not args.resume:
        # A demo that resumed a trained learner would "learn" in a few updates.
        shutil.rmtree(checkpoint_dir)
        print(f"launch: removed the earlier run's {checkpoint_dir} (--resume keeps it)")
    os.makedirs(checkpoint_dir, exist_ok=True)

    stop_requested = []
    signal.signal(signal.SIGINT, lambda *_: stop_requested.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))

    cluster = Cluster(args.bin_dir)
    start = time.time()
    ok = False
    try:
        cluster.start_shards(args.shards, [
            "--capacity=1000000", "--min_size_to_sample=100",
            f"--samples_per_insert={args.samples_per_insert}", "--error_buffer=6400"])
        learner = cluster.start_learner([
            f"--max_updates={args.max_updates}", "--eval_interval=1000", "--stop_when_solved",
            "--require_solved", "--log_interval_s=5", f"--seed={args.seed}",
            f"--checkpoint_dir={checkpoint_dir}",
            f"--metrics_csv={os.path.join(args.out, 'learner_metrics.csv')}",
            f"--rollouts_csv={os.path.join(args.out, 'multigoal_rollouts.csv')}",
            f"--export_torchscript={os.path.join(args.out, 'sampling_network.pt')}"])
        actors = [cluster.start_actor(i, cluster.learner_address,
                                      [f"--num_envs={args.envs_per_actor}", f"--seed={args.seed}",
                                       "--report_interval_s=10"])
                  for i in range(args.actors)]
        while learner.running() and not stop_requested:
            crashed = [p.name for p in actors + cluster.processes[:args.shards] if not p.running()]
            if crashed:
                print(f"launch: {', '.join(crashed)} stopped unexpectedly")
                break
            time.sleep(0.5)
        learner_code = learner.wait(1) if not learner.running() else None
        ok = learner_code == 0
    finally:
        codes = cluster.stop()
    wall = time.time() - start
    crashed = {n: c for n, c in codes.items() if c != 0 and not (n == "learner" and not ok)}
    print(f"launch: exit codes {codes}")
    if stop_requested:
        print("launch: stopped by signal")
        return 130
    rollouts = os.path.join(args.out, "multigoal_rollouts.csv")
    if os.path.exists(rollouts):
        subprocess.run(["/usr/bin/python3", os.path.join(os.path.dirname(__file__),
                                                          "plot_multigoal.py"),
                        rollouts, os.path.join(args.out, "multigoal.png"),
                        f"distributed SQL: {args.shards} shards, {args.actors} actors"])
    if ok and not crashed:
        print(f"launch: learned a policy reaching all four goals in {wall:.1f} s wall time")
        return 0
    print(f"launch: FAILED after {wall:.1f} s (learner solved: {ok}, unclean exits: {crashed})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
