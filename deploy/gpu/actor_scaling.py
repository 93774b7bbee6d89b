"""Actor scaling on one host: for each count of actor processes, 2 replay shards (no rate
limit), one learner (its device is the bin_dir's choice) and N actors run for --seconds; the
table gives the summed env steps/s the actors report after a warm-up, per process and in all.

  python3 deploy/gpu/actor_scaling.py --bin_dir=deploy/gpu/build-cuda/bin-cuda --actors=1,2,4,8,12

Python 3 standard library only (uses deploy/local/cluster.py).
"""
import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "local"))
from cluster import Cluster  # noqa: E402

RATE = re.compile(r"env steps +\d+ +([0-9.]+) steps/s")


def measure(bin_dir, actors, seconds, report_s, envs_per_actor):
    cluster = Cluster(bin_dir, echo=False)
    try:
        cluster.start_shards(2, ["--capacity=1000000", "--min_size_to_sample=100"])
        cluster.start_learner(["--eval_interval=0", "--log_interval_s=5"])
        procs = [cluster.start_actor(i, cluster.learner_address,
                                     [f"--num_envs={envs_per_actor}", f"--seed={i}",
                                      f"--report_interval_s={report_s}"])
                 for i in range(actors)]
        time.sleep(seconds)
        # A loaded machine starts slowly: wait (up to 2x more) for a second report from each.
        deadline = time.time() + 2 * seconds
        while time.time() < deadline and any(
                sum(1 for l in p.lines if RATE.search(l)) < 2 for p in procs):
            time.sleep(0.5)
        rates = []
        for p in procs:
            found = [float(m.group(1)) for m in map(RATE.search, p.lines) if m]
            if len(found) < 2:
                raise RuntimeError(f"{p.name}: fewer than 2 report lines: {p.lines[-3:]}")
            later = found[1:]  # the first report includes start-up and the first parameters
            rates.append(sum(later) / len(later))
        return sum(rates)
    finally:
        codes = cluster.stop()
        bad = {n: c for n, c in codes.items() if c != 0}
        if bad:
            print(f"actor_scaling: unclean exits {bad}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin_dir", required=True)
    parser.add_argument("--actors", default="1,2,4,8,12")
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--report_s", type=float, default=5.0)
    parser.add_argument("--envs_per_actor", type=int, default=4)
    args = parser.parse_args()
    print(f"actor scaling: {os.cpu_count()} cores, 2 shards, {args.envs_per_actor} envs per "
          f"actor, {args.seconds:.0f} s per row, first report dropped")
    print(f"{'actors':>6} {'env steps/s':>12} {'per actor':>10} {'speed-up':>9}")
    base = None
    for n in [int(x) for x in args.actors.split(",") if x]:
        total = measure(args.bin_dir, n, args.seconds, args.report_s, args.envs_per_actor)
        base = base or total
        print(f"{n:>6} {total:>12.0f} {total / n:>10.0f} {total / base:>8.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
