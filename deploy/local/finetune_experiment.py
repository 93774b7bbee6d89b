"""The paper's Fig. 4 experiment on the MuJoCo swimmer, on the distributed system (a replay
shard, actors and a learner, each its own process on this machine):

  1. pretrain: SQL on swimmer_speed (reward: speed of the centre of mass, any direction);
  2. four arms on swimmer_target (reach the point (3, 3)), each for --updates updates:
       sql_finetune         SQL starting from the pretrained networks, Q and sampling network
                            (learner --init_from), by the paper's protocol: over the first
                            --anneal_updates updates alpha falls log-linearly from
                            1/--reward_scale to --final_alpha and the SVGD particle set
                            shrinks linearly to 1 (learner --anneal_updates, --final_alpha,
                            --anneal_particles),
       sql_finetune_policy  SQL starting from the pretrained sampling network with a fresh Q
                            network (--init_from --init_networks=policy),
       sql_scratch          SQL from a random initialization,
       ddpg_scratch         DDPG from a random initialization (deterministic f(0; s), Gaussian
                            action noise, Polyak target), same networks and budget;
  3. plots evaluation return against environment steps of the downstream task, mean and
     spread (min to max) over the seeds, to <out>/fig4.png, and writes <out>/summary.txt.

Every run appends its evaluations to <out>/<arm>/seed<k>/eval.csv and leaves a "done" marker;
a rerun skips finished runs, so an interrupted experiment continues where it stopped.

  python3 deploy/local/finetune_experiment.py --bin_dir=bazel-bin --seeds=3 --out=out/fig4
"""
import argparse
import csv
import os
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster  # noqa: E402

ARMS = ("sql_finetune", "sql_finetune_policy", "sql_scratch", "ddpg_scratch")


def run_one(args, env, out, seed, max_updates, learner_flags, actor_flags, stop_requested):
    """One training run on the distributed system; True when the learner finished."""
    if os.path.exists(os.path.join(out, "done")):
        print(f"experiment: {out} already done, skipped")
        return True
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    cluster = Cluster(args.bin_dir, echo=args.verbose)
    started = time.time()
    ok = False
    try:
        cluster.start_shards(args.shards, [
            "--capacity=1000000", f"--min_size_to_sample={args.min_replay_size}",
            f"--samples_per_insert={args.batch_size / args.env_steps_per_update}",
            "--error_buffer=6400"])
        learner = cluster.start_learner([
            f"--env={env}", f"--seed={seed}", f"--max_updates={max_updates}",
            f"--batch_size={args.batch_size}", f"--reward_scale={args.reward_scale}",
            f"--eval_interval={args.eval_interval}", f"--eval_rollouts={args.eval_rollouts}",
            f"--eval_csv={os.path.join(out, 'eval.csv')}",
            f"--metrics_csv={os.path.join(out, 'learner_metrics.csv')}",
            f"--checkpoint_dir={os.path.join(out, 'learner_checkpoint')}",
            "--checkpoint_interval=10000", "--log_interval_s=30", *learner_flags])
        actors = [cluster.start_actor(i, cluster.learner_address, [
            f"--env={env}", f"--seed={seed}", f"--num_envs={args.envs_per_actor}",
            "--steps_per_write=16", "--report_interval_s=30", *actor_flags])
            for i in range(args.actors)]
        while learner.running() and not stop_requested:
            if any(not p.running() for p in actors + cluster.processes[:args.shards]):
                print(f"experiment: {out}: a process stopped unexpectedly")
                break
            time.sleep(1)
        ok = not learner.running() and learner.wait(1) == 0
        final = [l for l in learner.lines if "final:" in l]
    finally:
        codes = cluster.stop()
    print(f"experiment: {out}: {'finished' if ok else 'FAILED'} in {time.time() - started:.0f} s"
          f" {final[-1] if ok and final else ''} exit codes {codes}")
    if ok:
        open(os.path.join(out, "done"), "w").close()
    return ok


def read_evals(path):
    with open(path) as f:
        return [(int(r["env_steps"]), float(r["mean_return"])) for r in csv.DictReader(f)]


def summarize(args):
    """Draws fig4.png and writes summary.txt from every finished run."""
    curves = {}
    for arm in args.arms:
        runs = []
        for seed in range(args.seeds):
            path = os.path.join(args.out, arm, f"seed{seed}", "eval.csv")
            if os.path.exists(os.path.join(os.path.dirname(path), "done")):
                runs.append(read_evals(path))
        if runs:
            n = min(len(r) for r in runs)
            curves[arm] = [r[:n] for r in runs]
    lines = [f"swimmer_target, {args.updates} updates per run, "
             f"{args.env_steps_per_update} env steps per update; "
             f"final = mean of the last {args.final_evals} evaluations of each seed",
             f"{'arm':<21}{'seeds':>6}{'final return mean':>20}{'std':>8}{'min':>8}{'max':>8}"]
    finals = {}
    for arm, runs in curves.items():
        per_seed = [sum(r for _, r in run[-args.final_evals:]) / len(run[-args.final_evals:])
                    for run in runs]
        mean = sum(per_seed) / len(per_seed)
        std = (sum((x - mean) ** 2 for x in per_seed) / len(per_seed)) ** 0.5
        finals[arm] = (mean, std)
        lines.append(f"{arm:<21}{len(runs):>6}{mean:>20.2f}{std:>8.2f}{min(per_seed):>8.2f}"
                     f"{max(per_seed):>8.2f}   per seed: "
                     + ", ".join(f"{x:.2f}" for x in per_seed))
    summary = "\n".join(lines)
    print(summary)
    with open(os.path.join(args.out, "summary.txt"), "w") as f:
        f.write(summary + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("experiment: matplotlib missing, no plot")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = {"sql_finetune": "tab:red", "sql_scratch": "tab:blue", "ddpg_scratch": "tab:green",
              "sql_finetune_policy": "tab:orange"}
    labels = {"sql_finetune": "SQL, pretrained (fine-tuning)", "sql_scratch": "SQL from scratch",
              "ddpg_scratch": "DDPG from scratch",
              "sql_finetune_policy": "SQL, pretrained policy, fresh Q"}
    for arm, runs in curves.items():
        steps = [sum(run[i][0] for run in runs) / len(runs) for i in range(len(runs[0]))]
        returns = [[run[i][1] for run in runs] for i in range(len(runs[0]))]
        mean = [sum(r) / len(r) for r in returns]
        ax.plot(steps, mean, color=colors[arm], label=f"{labels[arm]} ({len(runs)} seeds)")
        ax.fill_between(steps, [min(r) for r in returns], [max(r) for r in returns],
                        color=colors[arm], alpha=0.2)
    ax.set_xlabel("environment steps (downstream task)")
    ax.set_ylabel("evaluation return")
    ax.set_title("Swimmer, reach (3, 3): pretrained vs. from scratch")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "fig4.png"), dpi=120)
    print(f"experiment: plot {os.path.join(args.out, 'fig4.png')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin_dir", default="bazel-bin")
    parser.add_argument("--out", default="out/fig4")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pretrain_seeds", type=int, default=1,
                        help="pretrained policies; fine-tuning seed k starts from k % this")
    parser.add_argument("--pretrain_updates", type=int, default=30000)
    parser.add_argument("--updates", type=int, default=20000, help="per downstream run")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--actors", type=int, default=1)
    parser.add_argument("--envs_per_actor", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--env_steps_per_update", type=float, default=1.0)
    parser.add_argument("--min_replay_size", type=int, default=1000)
    parser.add_argument("--reward_scale", type=float, default=100.0)
    parser.add_argument("--eval_interval", type=int, default=2000)
    parser.add_argument("--eval_rollouts", type=int, default=10)
    parser.add_argument("--final_evals", type=int, default=3)
    parser.add_argument("--anneal_updates", type=int, default=5000,
                        help="sql_finetune: updates over which alpha falls to --final_alpha "
                             "and the particles shrink to 1 (0: no annealing)")
    parser.add_argument("--final_alpha", type=float, default=0.001,
                        help="sql_finetune: alpha at the end of the annealing")
    parser.add_argument("--anneal_particles", choices=("true", "false"), default="true",
                        help="sql_finetune: shrink the SVGD particle set to 1 while annealing")
    parser.add_argument("--ddpg_action_noise", type=float, default=0.2)
    parser.add_argument("--ddpg_target_tau", type=float, default=0.01)
    parser.add_argument("--arms", default=",".join(ARMS),
                        help=f"comma-separated, of {', '.join(ARMS)}")
    parser.add_argument("--plot_only", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="echo every process's output")
    args = parser.parse_args()
    if min(args.seeds, args.pretrain_seeds, args.updates, args.pretrain_updates) < 1:
        parser.error("--seeds, --pretrain_seeds, --updates, --pretrain_updates must be >= 1")
    if args.anneal_updates < 0:
        parser.error("--anneal_updates must be >= 0")
    if args.anneal_updates > 0 and not 0 < args.final_alpha <= 1 / args.reward_scale:
        parser.error(f"--final_alpha must be in (0, 1/--reward_scale = {1 / args.reward_scale:g}]")
    args.arms = [a for a in args.arms.split(",") if a]
    unknown = [a for a in args.arms if a not in ARMS]
    if unknown or not args.arms:
        parser.error(f"--arms: unknown {unknown}; known: {', '.join(ARMS)}")
    os.makedirs(args.out, exist_ok=True)
    if args.plot_only:
        summarize(args)
        return 0

    stop_requested = []
    signal.signal(signal.SIGINT, lambda *_: stop_requested.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))
    started = time.time()
    failures = 0
    for p in range(args.pretrain_seeds):
        out = os.path.join(args.out, "pretrain", f"seed{p}")
        failures += not run_one(args, "swimmer_speed", out, 100 + p, args.pretrain_updates, [], [],
                                stop_requested)
    ddpg_learner = ["--algorithm=ddpg", f"--target_tau={args.ddpg_target_tau}"]
    ddpg_actor = ["--deterministic_policy", f"--action_noise={args.ddpg_action_noise}"]
    anneal = [f"--anneal_updates={args.anneal_updates}", f"--final_alpha={args.final_alpha}",
              f"--anneal_particles={args.anneal_particles}"]
    for seed in range(args.seeds):
        for arm in args.arms:
            if stop_requested:
                break
            pretrained = os.path.join(args.out, "pretrain", f"seed{seed % args.pretrain_seeds}",
                                      "learner_checkpoint")
            learner_flags = {"sql_finetune": [f"--init_from={pretrained}", *anneal],
                             "sql_finetune_policy": [f"--init_from={pretrained}",
                                                     "--init_networks=policy"],
                             "sql_scratch": [], "ddpg_scratch": ddpg_learner}[arm]
            actor_flags = ddpg_actor if arm == "ddpg_scratch" else []
            failures += not run_one(args, "swimmer_target",
                                    os.path.join(args.out, arm, f"seed{seed}"), seed,
                                    args.updates, learner_flags, actor_flags, stop_requested)
    print(f"experiment: {time.time() - started:.0f} s, {failures} failed runs")
    summarize(args)
    if stop_requested:
        return 130
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
