"""The local multi-process demo: S replay shards, A actors and one learner, each its own
process on this machine, trained on the multi-goal task until --solved_evaluations consecutive
evaluations of the learner (each of fresh rollouts) meet the criterion (every goal in >= 10%
of rollouts, >= 90% of rollouts at some goal) or --max_updates. Only then does the learner stop and export its
policy (sampling_network.pt; a run that did not learn exports none); one passing evaluation
can be a lucky draw. Stops every process it started, draws the
Fig. 3-style plot, and exits non-zero if learning failed or any process crashed.
Ctrl-C (or SIGTERM) stops everything cleanly. Each run trains from scratch: a learner
checkpoint left in --out by an earlier run is removed first, unless --resume.
Any other registered environment (--env, --env_config; `actor_main --env=help` lists them)
trains for --max_updates and succeeds when every process exits cleanly; the learner's
progress lines report its evaluation returns.
--python_env=MODULE:CALLABLE starts Python actors (python3 -m softq.actor, python/softq; needs
`bazel build //python/softq:_softq_actor.so`) stepping that Gymnasium-style environment in
place of C++ ones; the learner gets `--env=external` with the environment's sizes (read from
one instance) unless --env names a C++ environment of the same task; its evaluations are the
returns of the episodes the actors finished (reported to the shards with their transitions).
Every run is secured: a throwaway CA, job certificate and token are made under --out/credentials
(deploy/local/make_credentials.sh, openssl) and every process gets them (mutual TLS and the
token on every call, and on /metrics); --insecure runs without (loopback development only).

  python3 deploy/local/launch.py --bin_dir=bazel-bin --shards=2 --actors=2 --out=out/demo
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, Process  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin_dir", default="bazel-bin")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--envs_per_actor", type=int, default=4)
    parser.add_argument("--env", default=None,
                        help="environment by name, for the learner and every actor")
    parser.add_argument("--env_config", default="",
                        help="its parameters, key=value,key=value")
    parser.add_argument("--python_env", default="",
                        help="MODULE:CALLABLE: Python actors step this Gymnasium-style "
                             "environment (the learner: --env=external with its sizes, "
                             "unless --env is given)")
    parser.add_argument("--max_updates", type=int, default=30000)
    parser.add_argument("--samples_per_insert", type=float, default=32.0,
                        help="replay rate limit: sampled transitions per inserted one "
                             "(batch 64 => 2 env steps per update)")
    parser.add_argument("--out", default="out/demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--solved_evaluations", type=int, default=2,
                        help="consecutive evaluations that must meet the criterion before the "
                             "learner stops, exports and the demo reports success")
    parser.add_argument("--prioritized", action="store_true",
                        help="prioritized experience replay: shards with --sampler=prioritized, "
                             "the learner with --prioritized (priorities from TD errors, "
                             "importance-weighted critic loss)")
    parser.add_argument("--insecure", action="store_true",
                        help="no TLS and no token (loopback development only); default: a "
                             "throwaway CA, certificate and token per run under --out")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the learner checkpoint an earlier run left in --out")
    args = parser.parse_args()
    if args.shards < 1 or args.actors < 1:
        parser.error("--shards and --actors must be at least 1")
    if args.solved_evaluations < 1:
        parser.error("--solved_evaluations must be at least 1")
    python_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python")
    python_env = {**os.environ, "OPENBLAS_NUM_THREADS": "1",
                  "PYTHONPATH": os.pathsep.join(
                      [os.path.abspath(python_dir)] + [p for p in os.environ.get(
                          "PYTHONPATH", "").split(os.pathsep) if p]),
                  "SOFTQ_MODULE_DIR": os.path.abspath(os.path.join(args.bin_dir, "python",
                                                                   "softq"))}
    if args.python_env and args.env is None:
        probe = subprocess.run(
            ["/usr/bin/python3", "-c", "import sys; from softq.actor import env_config_of; "
             "print(env_config_of(sys.argv[1]))", args.python_env],
            env=python_env, capture_output=True, text=True, timeout=120)
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"launch: --python_env={args.python_env}: {last}", file=sys.stderr)
            return 2
        args.env, args.env_config = "external", probe.stdout.strip()
        print(f"launch: {args.python_env}: learner on --env=external "
              f"--env_config={args.env_config}")
    args.env = args.env or "multigoal"
    multigoal = args.env == "multigoal"
    os.makedirs(args.out, exist_ok=True)
    checkpoint_dir = os.path.join(args.out, "learner_checkpoint")
    if os.path.isdir(checkpoint_dir) and not args.resume:
        # A demo that resumed a trained learner would "learn" in a few updates.
        shutil.rmtree(checkpoint_dir)
        print(f"launch: removed the earlier run's {checkpoint_dir} (--resume keeps it)")
    os.makedirs(checkpoint_dir, exist_ok=True)
    exported = os.path.join(args.out, "sampling_network.pt")
    if os.path.exists(exported):
        # The learner exports only a learned policy: an earlier run's must not stand in.
        os.remove(exported)

    credentials = None
    if not args.insecure:
        credentials = os.path.join(args.out, "credentials")
        made = subprocess.run([os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                            "make_credentials.sh"), credentials],
                              capture_output=True, text=True, timeout=120)
        if made.returncode != 0:
            last = (made.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"launch: make_credentials.sh: {last}", file=sys.stderr)
            return 1
        print(f"launch: secured: CA, job certificate and token made in {credentials} "
              "(--insecure runs without)")
    else:
        print("launch: --insecure: no TLS and no token (loopback development only)")

    stop_requested = []
    signal.signal(signal.SIGINT, lambda *_: stop_requested.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.append(True))

    cluster = Cluster(args.bin_dir, credentials=credentials)
    start = time.time()
    ok = False
    actors = []
    try:
        cluster.start_shards(args.shards, [
            "--capacity=1000000", "--min_size_to_sample=100",
            f"--samples_per_insert={args.samples_per_insert}", "--error_buffer=6400"]
            + (["--sampler=prioritized"] if args.prioritized else []))
        env_flags = [f"--env={args.env}", f"--env_config={args.env_config}"]
        criterion = ["--stop_when_solved", "--require_solved",
                     f"--solved_evaluations={args.solved_evaluations}",
                     f"--rollouts_csv={os.path.join(args.out, 'multigoal_rollouts.csv')}"]
        # On external the learner's evaluation is the actors' episodes since the last one.
        learner = cluster.start_learner(env_flags + (criterion if multigoal else []) + [
            f"--max_updates={args.max_updates}", "--eval_interval=1000",
            "--log_interval_s=5", f"--seed={args.seed}",
            f"--checkpoint_dir={checkpoint_dir}",
            f"--metrics_csv={os.path.join(args.out, 'learner_metrics.csv')}",
            f"--export_torchscript={exported}"]
            + (["--prioritized"] if args.prioritized else []))
        actor_flags = [f"--num_envs={args.envs_per_actor}", f"--seed={args.seed}",
                       "--report_interval_s=10"]
        if args.python_env:
            actors = [start_python_actor(cluster, i, args.python_env, python_env, actor_flags)
                      for i in range(args.actors)]
        else:
            actors = [cluster.start_actor(i, cluster.learner_address, env_flags + actor_flags)
                      for i in range(args.actors)]
        while learner.running() and not stop_requested:
            crashed = [p.name for p in actors + cluster.processes[:args.shards] if not p.running()]
            if crashed:
                print(f"launch: {', '.join(crashed)} stopped unexpectedly")
                break
            time.sleep(0.5)
        learner_code = learner.wait(1) if not learner.running() else None
        # The learner exits 0 under --require_solved only when its run ended with
        # --solved_evaluations solved evaluations in a row; its final line says so too.
        ok = learner_code == 0 and (not multigoal or learned(learner, args.solved_evaluations))
    except TimeoutError as e:  # a process that did not come up: its own last line says why
        print(f"launch: {e}")
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
    if ok and not crashed and not multigoal:
        print(f"launch: {args.env} trained for {args.max_updates} updates in {wall:.1f} s")
        return 0
    if ok and not crashed:
        print(f"launch: learned a policy reaching all four goals on {args.solved_evaluations} "
              f"consecutive evaluations (fresh rollouts each) in {wall:.1f} s wall time")
        return 0
    print(f"launch: FAILED after {wall:.1f} s (learner solved {args.solved_evaluations} "
          f"evaluations in a row: {ok}, unclean exits: {crashed})")
    return 1


def start_python_actor(cluster, actor_id, python_env, environ, flags):
    """A Python actor (python3 -m softq.actor) stepping `python_env`, as Cluster.start_actor
    starts a C++ one (its name starts with "actor": stopped first, flushed)."""
    argv = ["/usr/bin/python3", "-m", "softq.actor", f"--env={python_env}",
            f"--replay={','.join(cluster.shard_addresses)}",
            f"--learner={cluster.learner_address}", f"--actor_id={actor_id}",
            *cluster.security, *flags]
    saved = dict(os.environ)
    os.environ.update(environ)  # Process passes this process's environment on
    try:
        p = Process(f"actor{actor_id}", argv, cluster.echo)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    cluster.processes.append(p)
    return p


def learned(learner, required):
    """Whether the (exited) learner's final line reports `required` solved evaluations in a
    row ("solved N of N in a row", learner_main's SolvedStreak)."""
    try:  # waits for the output reader to reach the line
        final = learner.wait_for(lambda l: l.startswith("learner: final:"), 10)
    except TimeoutError:
        return False
    m = re.search(r"solved (\d+) of (\d+) in a row", final)
    return m is not None and int(m.group(1)) == int(m.group(2)) == required


if __name__ == "__main__":
    sys.exit(main())
