"""Python actors (python3 -m softq.actor, python/softq) on the distributed system, separate
processes on 127.0.0.1. Run by tests/python_actor_test.sh as
`python_actor_test.py BIN_DIR PYTHON_DIR` (PYTHON_DIR holds softq/ with _softq_actor.so).

1. Training: 2 replay shards, a learner on `--env=external` with no sizes (it has no C++
   environment for the task and reads the sizes from the replay's first stored batch) and
   2 Python actors stepping the example environment (softq.examples.multigoal, numpy).
   Checks: the learner reads observation_dim 2, action_dim 2 from the replay (the actors
   step with their own initial network until its parameters arrive); both actors pick up
   parameters and their versions advance while they step; each shard holds
   transitions of both actors, and at least as many as were acknowledged; every
   acknowledged transition's ids (--acked_ids_out) are distinct and carry the actor's id;
   SIGTERM: both flush and exit 0; the learner's evaluations are the actors' finished
   episodes (reported to the shards with their transitions): every episode an actor
   reported is counted once over them, and after 12000 updates the last clears, by more
   than 100, both the learner's first and the actors' episodes before its 600th update
   (about -230 against -430 to -600 early, -430 to -890 first; one actor's first report
   alone, a dozen episodes, has read -195).
2. The local launcher: deploy/local/launch.py --python_env=MODULE:CALLABLE starts Python
   actors in place of C++ ones, the learner on `--env=external` with the environment's sizes
   read from one instance; every process exits 0 and the learner's evaluation lines give the
   actors' returns. A non-Box environment stops the launch with one line naming it, exit 2.
3. Side by side and kill -9: a learner on the C++ `multigoal`, a C++ actor (actor_main) and
   Python actors on the numpy mirror feed one shard; both kinds' transitions are stored, the
   Python actor serves the C++ actor's Prometheus metrics, and a Python actor killed with -9
   lost nothing acknowledged, checked by identity: every (episode, step) its --acked_ids_out
   listed when it died is among what the shard holds (its checkpoint, read back by
   tests/faults:replay_ctl ids).
4. A shard killed with -9 under a Python actor: the actor goes on, its batches now stored by
   the other shard (the C++ writer's re-sends), and exits 0 on SIGTERM.
5. Bad input: an environment that returns NaN in an observation, an infinite reward, a
   wrong-shaped observation, raises in step, has a non-Box action space, or whose reset
   returns the observation alone (the old Gym API): the actor exits 1 with one line naming
   the environment, the step and the field, after flushing; bad flags exit 2 with one line.
   (Run first, then 1-4.)
6. Metrics from the start: a C++ and a Python actor with `--report_interval_s=3600` serve
   the same six `softq_actor_*` series, each at zero, before their first report, and exit 0
   on SIGTERM.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "deploy", "local"))
from cluster import Cluster, Process  # noqa: E402

failures = []
SHARD_FLAGS = ["--capacity=200000", "--min_size_to_sample=200", "--samples_per_insert=32",
               "--error_buffer=6400"]
EXTERNAL = ["--env=external", "--env_config=observation_dim=2,action_dim=2"]


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


def python_env(python_dir):
    path = os.pathsep.join([python_dir, HERE])
    return {**os.environ, "PYTHONPATH": path, "OPENBLAS_NUM_THREADS": "1"}


def actor_argv(cluster, actor_id, env, flags=()):
    return ["/usr/bin/python3", "-m", "softq.actor", f"--env={env}",
            f"--replay={','.join(cluster.shard_addresses)}",
            f"--learner={cluster.learner_address}", f"--actor_id={actor_id}", *flags]


def start_actor(cluster, python_dir, actor_id, env, flags=()):
    # Process starts argv as is; PYTHONPATH reaches the child through os.environ.
    os.environ.update(python_env(python_dir))
    p = Process(f"actor{actor_id}", actor_argv(cluster, actor_id, env, flags))
    cluster.processes.append(p)
    return p


def reports(process):
    """(env_steps, return, version) of each report line."""
    return [(s, r, v) for s, _, r, v, _ in report_fields(process)]


def report_fields(process):
    """(env_steps, episodes, return, version, learner_step) of each report line; the return
    is the mean over the episodes finished since the report before."""
    out = []
    for line in process.lines:
        m = re.search(r"env steps +(\d+) .* episodes +(\d+) +return +(-?[\d.]+) +version (\d+)"
                      r" +learner step (\d+)", line)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), float(m.group(3)), int(m.group(4)),
                        int(m.group(5))))
    return out


def early_return(actors, learner_steps):
    """The episode-weighted mean return of the actors' reports made before the learner's
    first `learner_steps` updates (each actor's first report always counts): one report
    holds a dozen episodes, too few to stand for the untrained policy alone."""
    total, episodes = 0.0, 0
    for a in actors:
        before = 0
        for k, (_, seen, mean, _, step) in enumerate(report_fields(a)):
            if k > 0 and step > learner_steps:
                break
            total += mean * (seen - before)
            episodes += seen - before
            before = seen
    return total / episodes if episodes else 0.0


def acked_ids(path, actor_id):
    with open(path) as f:
        rows = [tuple(int(x) for x in line.split()) for line in f if line.endswith("\n")]
    return rows, all(a == actor_id and (e >> 40) == actor_id for a, e, _ in rows)


def training(bin_dir, python_dir, work):
    cluster = Cluster(bin_dir)
    try:
        cluster.start_shards(2, SHARD_FLAGS)
        # It listens only once it has the sizes, so its port is chosen here.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        learner = cluster.start("learner", "learner", [
            f"--replay={','.join(cluster.shard_addresses)}", f"--port={port}",
            "--env=external", "--max_updates=12000", "--eval_interval=3000",
            "--log_interval_s=5", "--seed=0"])
        cluster.learner_address = f"127.0.0.1:{port}"
        actors = []
        for i in range(2):
            actors.append(start_actor(cluster, python_dir, i, "softq.examples.multigoal:make",
                                      ["--num_envs=4", "--report_interval_s=2", "--seed=0",
                                       "--initial_policy=local",
                                       f"--acked_ids_out={os.path.join(work, f'acked{i}')}"]))
        for a in actors:
            a.wait_for(lambda l: "got parameters version" in l, 60)
            check(True, f"{a.name} picked up the learner's parameters")
        learner_code = learner.wait(400)
        check(learner_code == 0, f"the learner ran its 12000 updates and exited 0 ({learner_code})")
        time.sleep(3)  # a last report with the final parameters
        for a in actors:
            a.signal(15)
        for a in actors:
            code = a.wait(30)
            check(code == 0, f"{a.name} exits 0 on SIGTERM ({code})")
            # The learner is gone: the rate limiter holds the last inserts, said calmly.
            errors = [l for l in a.lines if "replay flush:" in l]
            check(not errors, f"{a.name}'s final flush reports no error: {errors}")
        for a in actors:
            r = reports(a)
            versions = [v for _, _, v in r]
            steps = [s for s, _, _ in r]
            check(len(r) >= 3 and versions == sorted(versions) and versions[-1] > versions[0]
                  and steps == sorted(steps),
                  f"{a.name} kept stepping while its parameter version advanced: "
                  f"{[(s, v) for s, _, v in r[:6]]}...")
        check(any("external: observation_dim 2, action_dim 2, read from the replay" in l
                  for l in learner.lines),
              "the learner on external without sizes read them from the replay")
        # Untrained: the actors' episodes before the learner's first 600 updates (5% of its
        # 12000); trained: the learner's last evaluation, the actors' episodes since the one
        # before.
        first = [reports(a)[0][1] for a in actors if reports(a)]
        untrained = early_return(actors, 600)
        evals = [(int(m.group(1)), float(m.group(2)), int(m.group(3))) for l in learner.lines
                 for m in [re.search(r"learner: eval at update (\d+): return (-?[\d.]+) \+- "
                                     r"[\d.]+ over (\d+) actor episodes", l)] if m]
        print(f"returns: first reports {first}, before update 600 {untrained:.1f}, learner's "
              f"evaluations {evals}", flush=True)
        check([u for u, _, _ in evals] == [3000, 6000, 9000, 12000],
              f"the learner evaluated at updates 3000..12000 from the actors' episodes: {evals}")
        finished = sum(([int(m.group(1)) for l in a.lines
                         for m in [re.search(r"episodes +(\d+) +return", l)] if m] or [0])[-1]
                       for a in actors)
        counted = sum(k for _, _, k in evals)
        check(0 < counted <= finished,
              f"the learner's evaluations count {counted} actor episodes, none twice (the "
              f"actors finished {finished})")
        check(len(evals) == 4 and evals[-1][1] > untrained + 100,
              f"the learner's last evaluation ({evals[-1][1] if evals else None}) clears the "
              f"actors' return before update 600 ({untrained:.1f}) by more than 100")
        check(len(evals) == 4 and evals[-1][1] > evals[0][1] + 100,
              f"the learner's last evaluation clears its first by more than 100: {evals}")
        stats = cluster.stats()
        acked = 0
        for i, a in enumerate(actors):
            line = a.wait_for(lambda l: "transitions acknowledged" in l, 5)
            n = int(re.search(r"(\d+) transitions acknowledged", line).group(1))
            acked += n
            rows, own = acked_ids(os.path.join(work, f"acked{i}"), i)
            ids = {(e, s) for _, e, s in rows}
            check(len(rows) == n and len(ids) == n and own and n > 0,
                  f"{a.name}: --acked_ids_out lists its {n} acknowledged transitions once each, "
                  f"episode ids carrying actor id {i} ({len(rows)} lines, {len(ids)} distinct)")
        inserted = 0
        for sh in stats["shards"]:
            per_actor = {int(x.get("actor_id", 0)): int(x["inserted"])
                         for x in sh["stats"]["per_actor"]}
            inserted += int(sh["stats"]["inserts_total"])
            check(per_actor.get(0, 0) > 0 and per_actor.get(1, 0) > 0,
                  f"shard {sh['stats'].get('shard_id', 0)} holds transitions of both Python "
                  f"actors: {per_actor}")
        check(inserted >= acked > 0,
              f"the shards hold every acknowledged transition ({inserted} >= {acked})")
    finally:
        print(f"exit codes: {cluster.stop()}", flush=True)


BAD = [
    ("nan_observation", r"step at step \d+ \(episode step \d+\): observation\[1\] is nan"),
    ("inf_reward", r"step at step \d+ \(episode step \d+\): reward is inf"),
    ("wrong_shape", r"step at step \d+ \(episode step \d+\): observation has 3 values, "
                    r"expected 2"),
    ("raises", r"step at step \d+ \(episode step \d+\): raised RuntimeError: the simulator "
               r"diverged"),
    ("discrete_actions", r"action_space is Discrete, not a Box"),
    ("old_reset", r"reset at step 0 \(episode step 0\): returned ndarray .*, expected "
                  r"\(obs, info\)"),
]


def bad_input(bin_dir, python_dir):
    cluster = Cluster(bin_dir)
    try:
        cluster.start_shards(1, SHARD_FLAGS)
        cluster.start_learner(EXTERNAL + ["--max_updates=0", "--eval_interval=0"])
        procs = [(name, pattern, start_actor(cluster, python_dir, 10 + k,
                                             f"python_actor_envs:{name}",
                                             ["--num_envs=2", "--steps_per_write=1"]))
                 for k, (name, pattern) in enumerate(BAD)]
        for name, pattern, p in procs:
            code = p.wait(60)
            errors = [l for l in p.lines if re.search(pattern, l)]
            check(code == 1 and len(errors) == 1
                  and f"python_actor_envs:{name} #" in errors[0],
                  f"{name}: exit 1 ({code}) with one line naming the environment, the step "
                  f"and the field: {errors or p.lines[-3:]}")
            if name not in ("discrete_actions", "old_reset"):
                stored = [l for l in p.lines if "transitions acknowledged" in l]
                check(len(stored) == 1 and " 0 transitions" not in stored[0],
                      f"{name}: flushed the steps before the fault: {stored}")
    finally:
        print(f"exit codes: {cluster.stop()}", flush=True)
    # No learner yet: the actor waits for parameters (the C++ subscriber's reconnects) and
    # SIGTERM still ends it cleanly.
    cluster = Cluster(bin_dir)
    try:
        cluster.start_shards(1, SHARD_FLAGS)
        cluster.learner_address = "127.0.0.1:1"
        waiting = start_actor(cluster, python_dir, 20, "softq.examples.multigoal:make")
        waiting.wait_for(lambda l: "waiting for parameters" in l, 60)
        time.sleep(2)
        waiting.signal(15)
        code = waiting.wait(15)
        check(code == 0, f"an actor waiting for a learner that is down exits 0 on SIGTERM ({code})")
    finally:
        cluster.stop()
    env = python_env(python_dir)
    for flags, what in [(["--env=nocolon", "--replay=127.0.0.1:1", "--learner=127.0.0.1:2"],
                         "--env=nocolon"),
                        (["--env=a:b", "--replay=x", "--learner=127.0.0.1:2"], "--replay=x"),
                        (["--env=a:b", "--replay=127.0.0.1:1", "--learner=127.0.0.1:2",
                          "--num_envs=0"], "--num_envs=0"),
                        (["--env=no_such_module:make", "--replay=127.0.0.1:1",
                          "--learner=127.0.0.1:2"], "cannot import no_such_module")]:
        out = subprocess.run(["/usr/bin/python3", "-m", "softq.actor", *flags], env=env,
                             capture_output=True, text=True, timeout=60)
        lines = out.stderr.strip().splitlines()
        check(out.returncode == 2 and len(lines) == 1 and what in lines[0],
              f"bad flag {what}: exit 2 ({out.returncode}) with one line: {lines}")


def launcher(bin_dir, python_dir, work):
    launch = os.path.join(HERE, "..", "deploy", "local", "launch.py")
    base = ["/usr/bin/python3", launch, f"--bin_dir={bin_dir}", "--shards=1", "--actors=2",
            "--envs_per_actor=2", "--max_updates=1500", f"--out={os.path.join(work, 'launch')}"]
    env = python_env(python_dir)
    out = subprocess.run(base + ["--python_env=softq.examples.multigoal:make"], env=env,
                         capture_output=True, text=True, timeout=300)
    print(out.stdout[-2500:], out.stderr[-1500:], sep="\n", flush=True)
    codes = re.search(r"launch: exit codes (\{.*\})", out.stdout)
    check(out.returncode == 0 and codes is not None
          and "'actor0': 0" in codes.group(1) and "'actor1': 0" in codes.group(1)
          and "learner on --env=external --env_config=observation_dim=2,action_dim=2"
          in out.stdout and "[actor1] actor 1: got parameters" in out.stdout,
          f"launch.py --python_env: Python actors and a learner on external, all exit 0 "
          f"({out.returncode}, {codes.group(1) if codes else None})")
    evals = re.findall(r"learner: eval at update \d+: return -?[\d.]+ \+- [\d.]+ over [1-9]\d* "
                       r"actor episodes", out.stdout)
    check(len(evals) >= 1, f"the launched learner evaluates the external task from the actors' "
                           f"episodes: {evals}")
    out = subprocess.run(base + ["--python_env=python_actor_envs:discrete_actions"], env=env,
                         capture_output=True, text=True, timeout=300)
    lines = out.stderr.strip().splitlines()
    check(out.returncode == 2 and len(lines) == 1 and "discrete_actions" in lines[0]
          and "not a Box" in lines[0],
          f"launch.py --python_env with a Discrete action space: exit 2 ({out.returncode}), "
          f"one line: {lines[-2:]}")


def side_by_side(bin_dir, python_dir, work):
    from cluster import scrape_metric
    cluster = Cluster(bin_dir)
    os.makedirs(os.path.join(work, "ckpt"), exist_ok=True)
    try:
        cluster.start_shards(1, SHARD_FLAGS + [f"--checkpoint_dir={os.path.join(work, 'ckpt')}"])
        cluster.start_learner(["--env=multigoal", "--max_updates=0", "--eval_interval=0",
                               "--log_interval_s=5"])
        cpp = cluster.start_actor(0, cluster.learner_address,
                                  ["--env=multigoal", "--num_envs=2", "--report_interval_s=1"])
        py = start_actor(cluster, python_dir, 1, "softq.examples.multigoal:make",
                         ["--num_envs=2", "--report_interval_s=1", "--metrics_port=0"])
        killed_ids = os.path.join(work, "acked_killed")
        killed = start_actor(cluster, python_dir, 2, "softq.examples.multigoal:make",
                             ["--num_envs=2", "--report_interval_s=1", "--steps_per_write=4",
                              f"--acked_ids_out={killed_ids}"])
        for a in (cpp, py, killed):
            a.wait_for(lambda l: re.search(r"acked [1-9]", l) is not None, 90)
        port = int(py.wait_for(lambda l: "metrics on port" in l, 5).rsplit(" ", 1)[1])
        steps = scrape_metric(port, "softq_actor_env_steps_total")
        version = scrape_metric(port, "softq_actor_parameter_version")
        check(steps is not None and steps > 0 and version is not None and version >= 1,
              f"the Python actor serves /metrics: env steps {steps}, version {version}")
        time.sleep(2)
        killed.signal(9)
        killed.wait(10)
        listed = len(acked_ids(killed_ids, 2)[0])
        time.sleep(1)
        per_actor = {int(x.get("actor_id", 0)): int(x["inserted"])
                     for x in cluster.stats()["shards"][0]["stats"]["per_actor"]}
        check(per_actor.get(0, 0) > 0 and per_actor.get(1, 0) > 0,
              f"the shard holds the C++ actor's and the Python actor's transitions: {per_actor}")
        check(listed > 0 and per_actor.get(2, 0) >= listed,
              f"the Python actor killed with -9: the shard holds {per_actor.get(2, 0)} of its "
              f"transitions, it had {listed} acknowledged")
        ids = subprocess.run([os.path.join(bin_dir, "tests", "faults", "replay_ctl"), "ids",
                              cluster.shard_addresses[0]], capture_output=True, text=True,
                             timeout=60)
        held = {tuple(int(x) for x in line.split()) for line in ids.stdout.splitlines()}
        acked = {(e, st) for _, e, st in acked_ids(killed_ids, 2)[0]}
        missing = acked - held
        check(ids.returncode == 0 and acked and not missing,
              f"the Python actor killed with -9 lost nothing acknowledged, by identity: "
              f"{len(acked)} acknowledged ids, {len(missing)} not held ({ids.stderr.strip()})")
        for a in (cpp, py):
            a.signal(15)
            check(a.wait(30) == 0, f"{a.name} exits 0 on SIGTERM beside the other kind")
    finally:
        print(f"exit codes: {cluster.stop()}", flush=True)


ACTOR_SERIES = ["softq_actor_env_steps_total", "softq_actor_env_steps_per_second",
                "softq_actor_episode_return", "softq_actor_episodes_total",
                "softq_actor_parameter_version", "softq_actor_transitions_acknowledged_total"]


def metrics_from_start(bin_dir, python_dir):
    from cluster import scrape_metric
    cluster = Cluster(bin_dir)
    try:
        cluster.start_shards(1, SHARD_FLAGS)
        cluster.start_learner(["--env=multigoal", "--max_updates=0", "--eval_interval=0"])
        flags = ["--num_envs=1", "--report_interval_s=3600", "--metrics_port=0"]
        actors = [cluster.start_actor(0, cluster.learner_address, ["--env=multigoal", *flags]),
                  start_actor(cluster, python_dir, 1, "softq.examples.multigoal:make", flags)]
        for a, kind in zip(actors, ("C++", "Python")):
            port = int(a.wait_for(lambda l: "metrics on port" in l, 60).rsplit(" ", 1)[1])
            values = {name: scrape_metric(port, name) for name in ACTOR_SERIES}
            check(all(v == 0 for v in values.values()),
                  f"the {kind} actor serves every series, at zero, before its first report: {values}")
        for a in actors:
            a.signal(15)
            check(a.wait(30) == 0, f"{a.name} exits 0 on SIGTERM")
    finally:
        print(f"exit codes: {cluster.stop()}", flush=True)


def shard_kill(bin_dir, python_dir):
    cluster = Cluster(bin_dir)
    try:
        shards = cluster.start_shards(2, SHARD_FLAGS)
        cluster.start_learner(["--env=multigoal", "--max_updates=0", "--eval_interval=0"])
        actor = start_actor(cluster, python_dir, 5, "softq.examples.multigoal:make",
                            ["--num_envs=2", "--report_interval_s=1", "--steps_per_write=2"])
        actor.wait_for(lambda l: re.search(r"acked [1-9]", l) is not None, 90)
        shards[0].signal(9)
        shards[0].wait(10)
        survivor = cluster.shard_addresses[1]
        time.sleep(1)
        out = subprocess.run([cluster.bin["replay_stats"], f"--shards={survivor}", "--json"],
                             capture_output=True, text=True, timeout=30)
        first = json.loads(out.stdout)["shards"][0]["stats"]
        time.sleep(4)
        out = subprocess.run([cluster.bin["replay_stats"], f"--shards={survivor}", "--json"],
                             capture_output=True, text=True, timeout=30)
        later = json.loads(out.stdout)["shards"][0]["stats"]
        check(int(later["inserts_total"]) > int(first["inserts_total"]) > 0,
              f"after shard 0's kill -9 the actor's batches go to shard 1: "
              f"{first['inserts_total']} then {later['inserts_total']} inserted")
        actor.signal(15)
        check(actor.wait(30) == 0, "the Python actor exits 0 on SIGTERM after the shard's death")
        line = actor.wait_for(lambda l: "transitions acknowledged" in l, 5)
        resent = int(re.search(r"(\d+) batches re-sent", line).group(1))
        check(resent > 0, f"the batches in flight to the dead shard were re-sent ({resent})")
    finally:
        print(f"exit codes: {cluster.stop()}", flush=True)


def main():
    bin_dir, python_dir = sys.argv[1], os.path.abspath(sys.argv[2])
    work = tempfile.mkdtemp(prefix="softq_python_actor_", dir=os.environ.get("TEST_TMPDIR"))
    for part in (bad_input, lambda b, p: training(b, p, work),
                 lambda b, p: side_by_side(b, p, work), shard_kill, metrics_from_start,
                 lambda b, p: launcher(b, p, work)):
        try:
            part(bin_dir, python_dir)
        except Exception as e:  # noqa: BLE001: report and go on to the summary
            check(False, f"{type(e).__name__}: {e}")
    print(f"{len(failures)} failure(s)" if failures else "all checks passed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
