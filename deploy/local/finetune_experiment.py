"""The paper's pretraining and exploration experiments on the distributed system (a replay
shard, actors and a learner, each its own process on this machine), one command each:

--experiment=fig4 (the default; the paper's Fig. 4, task-specific initialization):
  1. pretraining on quadruped_speed (reward: speed of the centre of mass, any direction),
     --pretrain_seeds runs of SQL, and as many of DDPG when an arm needs them (ddpg_finetune);
  2. on each downstream task (--tasks: hallway_wide, hallway_narrow, maze_u) the arms
     (--arms), --seeds runs each of --updates updates; downstream seed k starts from
     pretraining seed k % --pretrain_seeds:
       sql_finetune         SQL from the pretrained Q and sampling network (learner
                            --init_from), by the paper's protocol: over the first
                            --anneal_updates updates alpha falls log-linearly from
                            1/--reward_scale to --final_alpha and the SVGD particle set shrinks
                            linearly to 1 (learner --anneal_updates, --final_alpha,
                            --anneal_particles),
       sql_scratch          SQL from a random initialization,
       ddpg_scratch         DDPG from a random initialization (deterministic f(0; s), Gaussian
                            action noise, Polyak target), same networks and budget,
       ddpg_finetune        DDPG from the DDPG network pretrained on the same speed task,
       sql_finetune_policy  (not a default arm) SQL from the pretrained sampling network
                            with a fresh Q network (--init_from --init_networks=policy).
--experiment=fig4_swimmer: the same on the swimmer (pretraining swimmer_speed, one downstream
  task swimmer_target, arms sql_finetune, sql_finetune_policy, sql_scratch, ddpg_scratch).
--experiment=exploration (the paper's exploration experiments): SQL and DDPG from scratch
  (arms sql, ddpg), --seeds runs each, on swimmer_explore (speed along x either way, finish
  lines at x = +-1 m) and maze_blocked (quadruped_maze layout=blocked: two passages, the upper
  blocked, goal bonus 100). Every evaluation's rollouts are recorded (learner
  --episodes_csv); a rollout reached the goal when it ended on a terminal step paying the
  task's bonus (finish_reward, goal_reward), and on the swimmer its direction is the sign of
  the body's x at the end. A run "reached" when at least --reach_share of the rollouts of one
  of its last --final_evals evaluations did ("ever": any rollout of any evaluation).

Outputs under --out: every run's evaluations in <task>/<arm>/seed<k>/eval.csv and how each
of their rollouts ended in episodes.csv (pretraining: pretrain/<sql|ddpg>/seed<p>/), a "done"
marker per finished run (a rerun skips finished runs: an interrupted experiment continues
where it stopped); curves.csv (every evaluation of every run: return vs. environment steps,
and how far from the start its rollouts ended, on average); <experiment>.png (per task, return vs. the task's
environment steps, mean and one standard deviation over seeds, as the paper draws it),
pretrain.png; summary.txt (per task and arm: final return and area under the curve, mean and
95% t-interval over seeds, each arm's difference to the first arm with a 95% bootstrap
interval); exploration: outcomes.csv (one row per run) and the proportions of runs that
reached the goal with 95% Wilson intervals in summary.txt.

  python3 deploy/local/finetune_experiment.py --bin_dir=bazel-bin --seeds=5 --out=out/fig4
"""
import argparse
import csv
import math
import os
import random
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster  # noqa: E402

# Downstream and exploration tasks: --env, --env_config, and (exploration) the reward of
# the terminal step that marks a goal, keyed by the env_config key that sets it.
TASKS = {
    "hallway_wide": ("quadruped_hallway", "width=wide"),
    "hallway_narrow": ("quadruped_hallway", "width=narrow"),
    "maze_u": ("quadruped_maze", "layout=u"),
    "swimmer_target": ("swimmer_target", ""),
    "swimmer_explore": ("swimmer_explore", ""),
    "maze_blocked": ("quadruped_maze", "layout=blocked"),
}
GOAL_BONUS = {"swimmer_explore": ("finish_reward", 10.0), "maze_blocked": ("goal_reward", 100.0)}

# arm: (algorithm, networks taken from the pretraining run of that algorithm or None)
ARMS = {
    "sql_finetune": ("sql", "all"),
    "sql_finetune_policy": ("sql", "policy"),
    "sql_scratch": ("sql", None),
    "ddpg_scratch": ("ddpg", None),
    "ddpg_finetune": ("ddpg", "all"),
    "sql": ("sql", None),
    "ddpg": ("ddpg", None),
}

EXPERIMENTS = {
    "fig4": dict(pretrain_env="quadruped_speed",
                 tasks=("hallway_wide", "hallway_narrow", "maze_u"),
                 arms=("sql_finetune", "sql_scratch", "ddpg_scratch", "ddpg_finetune"),
                 reward_scale=30.0, q_learning_rate=1e-3, title="Quadruped"),
    "fig4_swimmer": dict(pretrain_env="swimmer_speed", tasks=("swimmer_target",),
                         arms=("sql_finetune", "sql_finetune_policy", "sql_scratch",
                               "ddpg_scratch"),
                         reward_scale=100.0, q_learning_rate=3e-4, title="Swimmer"),
    "exploration": dict(pretrain_env=None, tasks=("swimmer_explore", "maze_blocked"),
                        arms=("sql", "ddpg"), reward_scale=None, q_learning_rate=None,
                        title="Exploration"),
}
# exploration's reward scale and Q learning rate per task (the body's, as in fig4*)
BODY_SETTINGS = {"swimmer": (100.0, 3e-4), "quadruped": (30.0, 1e-3)}

LABELS = {"sql_finetune": "SQL, pretrained (fine-tuned)", "sql_scratch": "SQL from scratch",
          "ddpg_scratch": "DDPG from scratch", "ddpg_finetune": "DDPG, pretrained (fine-tuned)",
          "sql_finetune_policy": "SQL, pretrained policy, fresh Q", "sql": "SQL",
          "ddpg": "DDPG"}
COLORS = {"sql_finetune": "tab:red", "sql_scratch": "tab:blue", "ddpg_scratch": "tab:green",
          "ddpg_finetune": "tab:purple", "sql_finetune_policy": "tab:orange",
          "sql": "tab:red", "ddpg": "tab:green"}


class Run:
    """One training run: where it writes, what it trains on, the extra flags of its
    processes."""

    def __init__(self, name, out, env, env_config, seed, updates, algorithm, reward_scale,
                 q_learning_rate, learner_flags=()):
        self.name, self.out, self.env, self.env_config = name, out, env, env_config
        self.seed, self.updates, self.algorithm = seed, updates, algorithm
        self.reward_scale, self.q_learning_rate = reward_scale, q_learning_rate
        self.learner_flags = list(learner_flags)

    def done(self):
        return os.path.exists(os.path.join(self.out, "done"))


def env_config(args, task_config):
    """The task's --env_config with --max_steps and the task's --task_config added."""
    parts = [p for p in task_config.split(",") if p]
    if args.max_steps:
        parts.append(f"max_steps={args.max_steps}")
    return parts


def task_env(args, task):
    env, config = TASKS[task]
    parts = env_config(args, config) + [p for t, c in args.task_config if t == task
                                         for p in c.split(",") if p]
    return env, ",".join(parts)


def body_of(env):
    return "swimmer" if env.startswith("swimmer") else "quadruped"


def plan(args):
    """Every run of the experiment, pretraining first, in the order they run."""
    spec = EXPERIMENTS[args.experiment]
    runs = []
    ddpg_learner = [f"--target_tau={args.ddpg_target_tau}"]
    if spec["pretrain_env"]:
        algorithms = ["sql"] + (["ddpg"] if any(ARMS[a] == ("ddpg", "all") for a in args.arms)
                                else [])
        for algorithm in algorithms:
            for p in range(args.pretrain_seeds):
                runs.append(Run(f"pretrain/{algorithm}/seed{p}",
                                os.path.join(args.out, "pretrain", algorithm, f"seed{p}"),
                                spec["pretrain_env"], ",".join(env_config(args, "")),
                                (100 if algorithm == "sql" else 200) + p, args.pretrain_updates,
                                algorithm, args.reward_scale, args.q_learning_rate,
                                ddpg_learner if algorithm == "ddpg" else []))
    if args.pretrain_only:
        return runs
    anneal = [f"--anneal_updates={args.anneal_updates}", f"--final_alpha={args.final_alpha}",
              f"--anneal_particles={args.anneal_particles}"]
    for seed in range(args.seeds):
        for task in args.tasks:
            env, config = task_env(args, task)
            reward_scale, q_lr = args.reward_scale, args.q_learning_rate
            if spec["reward_scale"] is None:
                body_scale, body_lr = BODY_SETTINGS[body_of(env)]
                reward_scale = reward_scale or body_scale
                q_lr = q_lr or body_lr
            for arm in args.arms:
                algorithm, init = ARMS[arm]
                flags = list(ddpg_learner) if algorithm == "ddpg" else []
                if init:
                    pretrained = os.path.join(args.out, "pretrain", algorithm,
                                              f"seed{seed % args.pretrain_seeds}",
                                              "learner_checkpoint")
                    flags += [f"--init_from={pretrained}", f"--init_networks={init}"]
                    if algorithm == "sql" and init == "all" and args.anneal_updates > 0:
                        flags += anneal
                runs.append(Run(f"{task}/{arm}/seed{seed}",
                                os.path.join(args.out, task, arm, f"seed{seed}"), env, config,
                                seed, args.updates, algorithm, reward_scale, q_lr, flags))
    return runs


def run_one(args, run, stop_requested, prefix):
    """One training run on the distributed system; True when the learner finished. Every
    process it starts is stopped before it returns, whatever happens."""
    if run.done():
        print(f"experiment: {prefix} {run.name} already done, skipped", flush=True)
        return True
    shutil.rmtree(run.out, ignore_errors=True)
    os.makedirs(run.out)
    cluster = Cluster(args.bin_dir, echo=args.verbose)
    started = time.time()
    ok = False
    final = []
    print(f"experiment: {prefix} {run.name}: {run.env} {run.env_config} {run.algorithm}, "
          f"{run.updates} updates", flush=True)
    try:
        cluster.start_shards(args.shards, [
            "--capacity=1000000", f"--min_size_to_sample={args.min_replay_size}",
            f"--samples_per_insert={args.batch_size / args.env_steps_per_update}",
            "--error_buffer=6400"])
        env_flags = [f"--env={run.env}"] + ([f"--env_config={run.env_config}"]
                                            if run.env_config else [])
        learner = cluster.start_learner([
            *env_flags, f"--seed={run.seed}", f"--max_updates={run.updates}",
            f"--algorithm={run.algorithm}", f"--hidden={args.hidden}",
            f"--batch_size={args.batch_size}", f"--reward_scale={run.reward_scale}",
            f"--q_learning_rate={run.q_learning_rate}",
            f"--eval_interval={args.eval_interval}", f"--eval_rollouts={args.eval_rollouts}",
            f"--eval_csv={os.path.join(run.out, 'eval.csv')}",
            f"--episodes_csv={os.path.join(run.out, 'episodes.csv')}",
            f"--metrics_csv={os.path.join(run.out, 'learner_metrics.csv')}",
            f"--checkpoint_dir={os.path.join(run.out, 'learner_checkpoint')}",
            "--checkpoint_interval=10000", "--log_interval_s=30", *run.learner_flags])
        actor_flags = (["--deterministic_policy", f"--action_noise={args.ddpg_action_noise}"]
                       if run.algorithm == "ddpg" else [])
        actors = [cluster.start_actor(i, cluster.learner_address, [
            *env_flags, f"--seed={run.seed}", f"--num_envs={args.envs_per_actor}",
            f"--hidden={args.hidden}", "--steps_per_write=16", "--report_interval_s=30",
            *actor_flags]) for i in range(args.actors)]
        shown = [0]

        def show_evaluations():  # the learner's evaluations are the run's progress
            lines = learner.lines[shown[0]:]
            shown[0] += len(lines)
            for line in lines if not args.verbose else []:
                if "eval at update" in line:
                    print(f"experiment: {prefix} {run.name}: "
                          f"{line.split('learner: ', 1)[-1]}", flush=True)
        while learner.running() and not stop_requested:
            if any(not p.running() for p in actors + cluster.processes[:args.shards]):
                print(f"experiment: {run.name}: a process stopped unexpectedly")
                break
            show_evaluations()
            time.sleep(1)
        ok = not stop_requested and learner.wait(5) == 0
        show_evaluations()
        final = [l for l in learner.lines if "final:" in l]
    except (OSError, RuntimeError, TimeoutError) as e:  # a process that did not start
        print(f"experiment: {run.name}: {e}")
    finally:
        codes = cluster.stop()
    if not ok and not args.verbose:
        for p in cluster.processes:
            for line in p.lines[-5:]:
                print(f"experiment: {run.name}: [{p.name}] {line}")
    outcome = "finished" if ok else "stopped" if stop_requested else "FAILED"
    print(f"experiment: {prefix} {run.name}: {outcome} in "
          f"{time.time() - started:.0f} s {final[-1] if ok and final else ''} exit codes "
          f"{codes}", flush=True)
    if ok:
        open(os.path.join(run.out, "done"), "w").close()
    return ok


# --- statistics (standard library only) ------------------------------------------------

# Two-sided 95% quantiles of Student's t, df 1..30; beyond, the normal's 1.96.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def mean_std(xs):
    """Mean and sample standard deviation (0 for one value)."""
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, 0.0
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def t_interval(xs):
    """The 95% t-interval of the mean of xs; (nan, nan) for fewer than 2 values."""
    if len(xs) < 2:
        return float("nan"), float("nan")
    m, s = mean_std(xs)
    df = len(xs) - 1
    half = (T975[df - 1] if df <= len(T975) else 1.96) * s / math.sqrt(len(xs))
    return m - half, m + half


def bootstrap_difference(a, b, draws=10000, seed=0):
    """A 95% percentile-bootstrap interval of mean(a) - mean(b), resampling each group;
    (nan, nan) unless both have 2 or more values."""
    if len(a) < 2 or len(b) < 2:
        return float("nan"), float("nan")
    rng = random.Random(seed)
    diffs = sorted(sum(rng.choices(a, k=len(a))) / len(a) - sum(rng.choices(b, k=len(b))) / len(b)
                   for _ in range(draws))
    return diffs[int(0.025 * draws)], diffs[int(0.975 * draws) - 1]


def wilson(k, n, z=1.96):
    """The 95% Wilson score interval of a proportion k/n; (0, 1) for n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# --- results -----------------------------------------------------------------------------

# The final observation's planar position (m): the quadruped's centre of mass (its last two
# observations), the swimmer's head (its first two; the body's centre when straight).
POSITION = {"quadruped": ("obs_27", "obs_28"), "swimmer": ("obs_0", "obs_1")}


def read_evals(run):
    """[(updates, env steps, mean return, return stddev, mean distance)] of a run's
    evaluations; mean distance: how far from the start (m) its rollouts ended, on average
    (nan without episodes.csv)."""
    distances = {}
    path = os.path.join(run.out, "episodes.csv")
    if os.path.exists(path):
        x, y = POSITION[body_of(run.env)]
        with open(path) as f:
            for r in csv.DictReader(f):
                distances.setdefault(int(r["updates"]), []).append(
                    math.hypot(float(r[x]), float(r[y])))
    with open(os.path.join(run.out, "eval.csv")) as f:
        return [(int(r["updates"]), int(r["env_steps"]), float(r["mean_return"]),
                 float(r["return_stddev"]),
                 mean_std(distances[int(r["updates"])])[0] if int(r["updates"]) in distances
                 else float("nan")) for r in csv.DictReader(f)]


def finished_curves(args, runs):
    """{(task, arm): [(seed, evaluations), ...]} of the finished runs, and the pretraining
    runs' as {("pretrain", algorithm): ...}."""
    curves = {}
    for run in runs:
        if not run.done():
            continue
        parts = run.name.split("/")
        key = (parts[0], parts[1])
        curves.setdefault(key, []).append((run.seed, read_evals(run)))
    return curves


def write_curves_csv(args, curves):
    path = os.path.join(args.out, "curves.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["experiment", "task", "arm", "seed", "updates", "env_steps", "mean_return",
                    "return_stddev", "mean_distance"])
        for (task, arm), runs in sorted(curves.items()):
            for seed, evals in runs:
                for updates, steps, ret, std, distance in evals:
                    w.writerow([args.experiment, task, arm, seed, updates, steps, ret, std,
                                f"{distance:.3f}"])
    return path


def curve_table(args, task, arms, curves):
    """Summary lines of one task: per arm the final return (mean of each seed's last
    --final_evals evaluations) and the area under the curve (mean over all evaluations), mean
    and 95% t-interval over seeds; each arm's difference to the first arm, bootstrapped."""
    lines = [f"{task}: final = mean of each seed's last {args.final_evals} evaluations; "
             f"AUC = mean of all its evaluations; 95% t-intervals over seeds",
             f"  {'arm':<20}{'seeds':>6}{'final mean':>12}{'std':>8}{'95% CI':>20}"
             f"{'AUC mean':>10}{'95% CI':>20}   final per seed"]
    stats = {}
    for arm in arms:
        runs = curves.get((task, arm), [])
        if not runs:
            continue
        final = [sum(e[2] for e in ev[-args.final_evals:]) / len(ev[-args.final_evals:])
                 for _, ev in runs]
        auc = [sum(e[2] for e in ev) / len(ev) for _, ev in runs]
        stats[arm] = (final, auc)
        fm, fs = mean_std(final)
        flo, fhi = t_interval(final)
        am, _ = mean_std(auc)
        alo, ahi = t_interval(auc)
        lines.append(f"  {arm:<20}{len(runs):>6}{fm:>12.2f}{fs:>8.2f}"
                     f"{f'[{flo:.2f}, {fhi:.2f}]':>20}{am:>10.2f}{f'[{alo:.2f}, {ahi:.2f}]':>20}"
                     "   " + ", ".join(f"{x:.2f}" for x in final))
    base = next((a for a in arms if a in stats), None)
    for arm in arms:
        if arm == base or arm not in stats:
            continue
        for i, what in ((0, "final"), (1, "AUC")):
            lo, hi = bootstrap_difference(stats[base][i], stats[arm][i])
            d = mean_std(stats[base][i])[0] - mean_std(stats[arm][i])[0]
            verdict = ("ahead" if lo > 0 else "behind" if hi < 0 else
                       "not significant" if lo == lo else "too few seeds")
            lines.append(f"  {base} - {arm}, {what}: {d:+.2f}, 95% bootstrap "
                         f"[{lo:.2f}, {hi:.2f}]: {base} {verdict}")
    return lines


def outcomes(args, run):
    """One exploration run's outcome from its episodes.csv: reached (at least --reach_share
    of the rollouts of one of its last --final_evals evaluations ended at a goal), ever (any
    rollout of any evaluation did), the env steps of the first evaluation with a goal, and on
    the swimmer the direction of the goal rollouts of the last reaching evaluation
    (forward, backward, both)."""
    task = run.name.split("/")[0]
    key, bonus = GOAL_BONUS[task]
    for part in run.env_config.split(","):
        if part.startswith(key + "="):
            bonus = float(part.split("=", 1)[1])
    by_eval = {}
    with open(os.path.join(run.out, "episodes.csv")) as f:
        for r in csv.DictReader(f):
            goal = r["terminal"] == "1" and float(r["last_reward"]) >= bonus - 0.1
            by_eval.setdefault((int(r["updates"]), int(r["env_steps"])), []).append(
                (goal, float(r["obs_0"])))
    evals = sorted(by_eval.items())
    ever = [steps for (_, steps), rs in evals if any(g for g, _ in rs)]
    reaching = [rs for _, rs in evals[-args.final_evals:]
                if sum(g for g, _ in rs) >= args.reach_share * len(rs)]
    direction = ""
    if task == "swimmer_explore" and reaching:
        xs = [x for g, x in reaching[-1] if g]
        forward, backward = sum(x > 0 for x in xs), sum(x < 0 for x in xs)
        direction = ("both" if forward and backward else "forward" if forward else "backward")
    return dict(task=task, arm=run.name.split("/")[1], seed=run.seed,
                evaluations=len(evals), reached=int(bool(reaching)), ever=int(bool(ever)),
                first_goal_env_steps=ever[0] if ever else "", direction=direction,
                final_goal_share=(sum(g for g, _ in evals[-1][1]) / len(evals[-1][1])
                                  if evals else 0))


def exploration_table(args, runs):
    rows = [outcomes(args, r) for r in runs if r.done() and "/" in r.name
            and r.name.split("/")[0] in GOAL_BONUS]
    path = os.path.join(args.out, "outcomes.csv")
    with open(path, "w", newline="") as f:
        fields = ["task", "arm", "seed", "evaluations", "reached", "ever",
                  "first_goal_env_steps", "direction", "final_goal_share"]
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    lines = [f"runs that reached the goal: at least {args.reach_share:.0%} of the rollouts of "
             f"one of the last {args.final_evals} evaluations at the goal (ever: any rollout "
             f"of any evaluation); 95% Wilson intervals"]
    for task in args.tasks:
        for arm in args.arms:
            mine = [r for r in rows if r["task"] == task and r["arm"] == arm]
            if not mine:
                continue
            n = len(mine)
            k = sum(r["reached"] for r in mine)
            e = sum(r["ever"] for r in mine)
            lo, hi = wilson(k, n)
            elo, ehi = wilson(e, n)
            line = (f"  {task:<16}{arm:<6} reached {k}/{n} = {k / n:.0%} [{lo:.0%}, {hi:.0%}]"
                    f"; ever {e}/{n} [{elo:.0%}, {ehi:.0%}]")
            if task == "swimmer_explore":
                counts = {d: sum(r["direction"] == d for r in mine)
                          for d in ("forward", "backward", "both")}
                line += (f"; forward {counts['forward']}, backward {counts['backward']}, both "
                         f"{counts['both']}")
                if k:
                    flo, fhi = wilson(counts["forward"], k)
                    line += f" (forward share of reaching runs 95% [{flo:.0%}, {fhi:.0%}])"
            lines.append(line)
    return lines


def plot(args, curves, tasks, arms, name, xlabel):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("experiment: matplotlib missing, no plot")
        return None
    shown = [t for t in tasks if any((t, a) in curves for a in arms)]
    if not shown:
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(4.5 * len(shown), 3.6), squeeze=False)
    for ax, task in zip(axes[0], shown):
        for arm in arms:
            runs = curves.get((task, arm))
            if not runs:
                continue
            n = min(len(ev) for _, ev in runs)
            steps = [sum(ev[i][1] for _, ev in runs) / len(runs) for i in range(n)]
            stats = [mean_std([ev[i][2] for _, ev in runs]) for i in range(n)]
            mean = [m for m, _ in stats]
            ax.plot(steps, mean, color=COLORS.get(arm), label=f"{LABELS.get(arm, arm)} "
                    f"({len(runs)})")
            ax.fill_between(steps, [m - s for m, s in stats], [m + s for m, s in stats],
                            color=COLORS.get(arm), alpha=0.2)
        ax.set_title(f"pretraining: {EXPERIMENTS[args.experiment]['pretrain_env']}"
                     if task == "pretrain" else task)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("evaluation return")
        ax.legend(loc="best", fontsize=7)
    fig.suptitle(f"{EXPERIMENTS[args.experiment]['title']}: mean and one standard deviation "
                 "over seeds", fontsize=9)
    fig.tight_layout()
    path = os.path.join(args.out, f"{name}.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def summarize(args, runs):
    """Writes curves.csv, the plots, summary.txt (and outcomes.csv) from every finished
    run."""
    curves = finished_curves(args, runs)
    write_curves_csv(args, curves)
    spec = EXPERIMENTS[args.experiment]
    lines = [f"experiment {args.experiment}: {args.updates} updates per downstream run"
             + (f", {args.pretrain_updates} per pretraining run" if spec["pretrain_env"] else "")
             + f", {args.env_steps_per_update} env steps per update, "
             f"{args.eval_rollouts} rollouts per evaluation"]
    pretrain = [a for a in ("sql", "ddpg") if ("pretrain", a) in curves]
    if pretrain:
        lines.append(f"pretraining on {spec['pretrain_env']}: per seed the final evaluation's "
                     "return (the mean distance from the start its rollouts ended at, m)")
        for a in pretrain:
            lines.append(f"  {a:<6}" + ", ".join(
                f"{ev[-1][2]:.2f}" + (f" ({ev[-1][4]:.2f} m)" if ev[-1][4] == ev[-1][4] else "")
                for _, ev in curves[("pretrain", a)] if ev))
    for task in args.tasks if not args.pretrain_only else []:
        lines += curve_table(args, task, args.arms, curves)
    if args.experiment == "exploration":
        lines += exploration_table(args, runs)
    summary = "\n".join(lines)
    print(summary)
    with open(os.path.join(args.out, "summary.txt"), "w") as f:
        f.write(summary + "\n")
    for path in (plot(args, curves, args.tasks, args.arms, args.experiment,
                      "environment steps (the task's)"),
                 plot(args, curves, ["pretrain"], pretrain, "pretrain",
                      f"environment steps ({spec['pretrain_env']})") if pretrain else None):
        if path:
            print(f"experiment: plot {path}")


class OneLineParser(argparse.ArgumentParser):
    """Rejects a bad flag in one line naming it, exit status 2 (the project's rule)."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: {message}\n")
        sys.exit(2)


def parse_args(argv=None):
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", choices=tuple(EXPERIMENTS), default="fig4")
    parser.add_argument("--bin_dir", default="bazel-bin")
    parser.add_argument("--out", default=None, help="default out/<experiment>")
    parser.add_argument("--seeds", type=int, default=5, help="runs per task and arm")
    parser.add_argument("--pretrain_seeds", type=int, default=5,
                        help="pretraining runs per algorithm; downstream seed k starts from "
                             "k %% this")
    parser.add_argument("--pretrain_updates", type=int, default=100000,
                        help="budget of each pretraining run (learner updates; one env step "
                             "per update by default)")
    parser.add_argument("--updates", type=int, default=50000,
                        help="budget of each downstream or exploration run (learner updates)")
    parser.add_argument("--tasks", default=None, help="comma-separated; default the "
                        "experiment's")
    parser.add_argument("--arms", default=None, help="comma-separated, of "
                        f"{', '.join(ARMS)}; default the experiment's")
    parser.add_argument("--max_steps", type=int, default=0,
                        help="episode length of every task (0: each task's default)")
    parser.add_argument("--task_config", action="append", default=[], metavar="TASK=K=V,...",
                        help="more --env_config keys for one task (repeatable)")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--actors", type=int, default=1)
    parser.add_argument("--envs_per_actor", type=int, default=4)
    parser.add_argument("--hidden", default="128,128")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--env_steps_per_update", type=float, default=1.0)
    parser.add_argument("--min_replay_size", type=int, default=1000)
    parser.add_argument("--reward_scale", type=float, default=None,
                        help="default the body's: quadruped 30, swimmer 100")
    parser.add_argument("--q_learning_rate", type=float, default=None,
                        help="default the body's: quadruped 1e-3, swimmer 3e-4")
    parser.add_argument("--eval_interval", type=int, default=5000)
    parser.add_argument("--eval_rollouts", type=int, default=10)
    parser.add_argument("--final_evals", type=int, default=3)
    parser.add_argument("--reach_share", type=float, default=0.5,
                        help="exploration: share of an evaluation's rollouts at the goal for "
                             "a run to count as reaching it")
    parser.add_argument("--anneal_updates", type=int, default=None,
                        help="sql_finetune: updates over which alpha falls to --final_alpha "
                             "and the particles shrink to 1 (0: no annealing; default a "
                             "quarter of --updates)")
    parser.add_argument("--final_alpha", type=float, default=0.001,
                        help="sql_finetune: alpha at the end of the annealing")
    parser.add_argument("--anneal_particles", choices=("true", "false"), default="true",
                        help="sql_finetune: shrink the SVGD particle set to 1 while annealing")
    parser.add_argument("--ddpg_action_noise", type=float, default=0.2)
    parser.add_argument("--ddpg_target_tau", type=float, default=0.01)
    parser.add_argument("--parallel", type=int, default=1,
                        help="runs at once (each is its own shard, actors and learner; a "
                             "downstream run waits for its pretraining run)")
    parser.add_argument("--pretrain_only", action="store_true",
                        help="fig4*: only the pretraining runs (to choose their budget)")
    parser.add_argument("--plot_only", action="store_true",
                        help="only summarize the finished runs under --out")
    parser.add_argument("--verbose", action="store_true", help="echo every process's output")
    args = parser.parse_args(argv)
    spec = EXPERIMENTS[args.experiment]
    args.out = args.out or os.path.join("out", args.experiment)

    def listed(value, default, known, flag):
        items = [x for x in (value.split(",") if value is not None else default) if x]
        unknown = [x for x in items if x not in known]
        if unknown or not items:
            parser.error(f"{flag}: unknown {unknown or 'none given'}; known: {', '.join(known)}")
        return items
    args.tasks = listed(args.tasks, spec["tasks"],
                        spec["tasks"] if args.experiment != "fig4" else
                        [t for t in TASKS if t not in GOAL_BONUS and t != "swimmer_target"],
                        "--tasks")
    args.arms = listed(args.arms, spec["arms"],
                       ("sql", "ddpg") if args.experiment == "exploration" else
                       [a for a in ARMS if a not in ("sql", "ddpg")], "--arms")
    if min(args.seeds, args.pretrain_seeds, args.updates, args.pretrain_updates,
           args.eval_interval, args.eval_rollouts, args.final_evals) < 1:
        parser.error("--seeds, --pretrain_seeds, --updates, --pretrain_updates, "
                     "--eval_interval, --eval_rollouts, --final_evals must be >= 1")
    if args.max_steps < 0:
        parser.error("--max_steps must be >= 0")
    if not 0 < args.reach_share <= 1:
        parser.error("--reach_share must be in (0, 1]")
    task_config = []
    for item in args.task_config:
        task, _, config = item.partition("=")
        if task not in args.tasks or not config:
            parser.error(f"--task_config={item}: TASK=key=value,... with TASK one of "
                         f"{', '.join(args.tasks)}")
        task_config.append((task, config))
    args.task_config = task_config
    if args.reward_scale is None and spec["reward_scale"] is not None:
        args.reward_scale = spec["reward_scale"]
    if args.q_learning_rate is None and spec["q_learning_rate"] is not None:
        args.q_learning_rate = spec["q_learning_rate"]
    if args.reward_scale is not None and args.reward_scale <= 0:
        parser.error("--reward_scale must be > 0")
    if args.parallel < 1:
        parser.error("--parallel must be >= 1")
    if args.anneal_updates is None:
        args.anneal_updates = args.updates // 4
    if args.anneal_updates < 0:
        parser.error("--anneal_updates must be >= 0")
    if (args.anneal_updates > 0 and args.reward_scale
            and not 0 < args.final_alpha <= 1 / args.reward_scale):
        parser.error(f"--final_alpha must be in (0, 1/--reward_scale = "
                     f"{1 / args.reward_scale:g}]")
    return args


def run_all(args, runs, stop_requested, started, todo):
    """Runs `runs` in order, --parallel at a time; a run that starts from a pretraining run
    waits for it to end and is skipped when it did not finish. Returns the failures."""
    cond = threading.Condition()
    state = {"next": 0, "running": set(), "ran": 0, "failures": 0}

    def pretrained_run(run):
        flags = [f.split("=", 1)[1] for f in run.learner_flags if f.startswith("--init_from=")]
        return os.path.dirname(flags[0]) if flags else None

    def worker():
        while True:
            with cond:
                if stop_requested or state["next"] == len(runs):
                    return
                i = state["next"]
                run = runs[i]
                state["next"] += 1
                state["running"].add(run.out)
                source = pretrained_run(run)
                cond.wait_for(lambda: source not in state["running"] or stop_requested)
            if stop_requested:
                return
            fresh, t0 = not run.done(), time.time()
            if source and not os.path.exists(os.path.join(source, "done")):
                print(f"experiment: {run.name}: its pretraining run did not finish, skipped",
                      flush=True)
                ok, fresh = False, False
            else:
                ok = run_one(args, run, stop_requested, f"[{i + 1}/{len(runs)}]")
            with cond:
                state["running"].discard(run.out)
                state["failures"] += not ok
                if fresh and not stop_requested:
                    state["ran"] += 1
                    ran, left = state["ran"], todo - state["ran"]
                    rate = (time.time() - started) / ran
                    print(f"experiment: {ran}/{todo} runs in {time.time() - started:.0f} s "
                          f"(this one {time.time() - t0:.0f} s); about "
                          f"{left * rate / 60:.0f} min left", flush=True)
                cond.notify_all()

    workers = [threading.Thread(target=worker) for _ in range(args.parallel)]
    for w in workers:
        w.start()
    while any(w.is_alive() for w in workers):  # signals reach the main thread here
        time.sleep(0.2)
        if stop_requested:
            with cond:
                cond.notify_all()
    return state["failures"]


def main():
    args = parse_args()
    os.makedirs(args.out, exist_ok=True)
    runs = plan(args)
    if args.plot_only:
        summarize(args, runs)
        return 0

    stop_requested = []
    signal.signal(signal.SIGINT, lambda *_: stop_requested.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))
    started = time.time()
    todo = sum(not r.done() for r in runs)
    print(f"experiment: {args.experiment}: {len(runs)} runs, {len(runs) - todo} already done, "
          f"into {args.out}" + (f", {args.parallel} at a time" if args.parallel > 1 else ""),
          flush=True)
    failures = run_all(args, runs, stop_requested, started, todo)
    print(f"experiment: {time.time() - started:.0f} s, {failures} failed runs"
          + (", stopped (rerun the same command to continue)" if stop_requested else ""))
    summarize(args, runs)
    if stop_requested:
        return 130
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
