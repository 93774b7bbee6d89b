"""softq on a real Slurm: a local three-node Slurm 22.05 cluster (tests/cluster/local_slurm.py,
loopback addresses only) runs deploy/slurm/submit.sh's heterogeneous job: 2 replay shards on
n1, the learner on n2, 2 actors on n3. Run by tests/cluster/slurm_test.sh with the binaries'
paths.

Checks, in order: the job starts on the three nodes; the shards listen on n1's address and the
learner on n2's, as discovered from the job's layout; the replay stats RPC shows both actors'
transitions on every shard; the learner's updates advance; every process serves Prometheus
/metrics on its node's address (shards and actors on base port + local rank) showing that
progress; `scancel` ends the job cleanly
(every step exits 0) with the shards' and the learner's checkpoints written; no process of the
cluster is left. Every wait has a timeout; the daemons are stopped by PID, also on failure.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy",
                                "local"))
from cluster import scrape_metric  # noqa: E402
from local_slurm import NODE_ADDRESSES, LocalSlurm, free_port  # noqa: E402

failures = []
T0 = time.time()


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + f"[{time.time() - T0:5.1f}s] {what}", flush=True)
    if not condition:
        failures.append(what)
    return condition


def wait_until(what, predicate, timeout, interval=1.0):
    """Polls predicate() until it returns a truthy value (returned) or `timeout` passes (None)."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            print(f"timeout: {what} within {timeout}s", flush=True)
            return None
        time.sleep(interval)


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def learner_updates(log):
    return [int(m.group(1)) for m in re.finditer(r"learner: +[\d.]+s +updates +(\d+)", log)]


def main():
    bins = dict(zip(["replay_server", "replay_stats", "learner_main", "actor_main"],
                    [os.path.abspath(p) for p in sys.argv[1:5]]))
    deploy = os.path.abspath(sys.argv[5])
    # Unix socket paths (slurmd's spool) must stay short: not under Bazel's long TEST_TMPDIR.
    root = tempfile.mkdtemp(prefix="softq_slurm_", dir="/tmp")
    bin_dir = os.path.join(root, "bin")
    os.makedirs(bin_dir)
    for name, path in bins.items():
        os.symlink(path, os.path.join(bin_dir, name))
    run_dir = os.path.join(root, "run")
    slurm = LocalSlurm(os.path.join(root, "slurm"))
    job = None
    try:
        slurm.start(timeout=60)
        check(True, f"local Slurm up: slurmctld + slurmd n1..n3 on {sorted(NODE_ADDRESSES.values())}")
        replay_port = free_port(NODE_ADDRESSES["n1"], span=2)
        learner_port = free_port(NODE_ADDRESSES["n2"])
        replay_metrics = free_port(NODE_ADDRESSES["n1"], span=2)
        while abs(replay_metrics - replay_port) < 2:
            replay_metrics = free_port(NODE_ADDRESSES["n1"], span=2)
        learner_metrics = free_port(NODE_ADDRESSES["n2"])
        while learner_metrics == learner_port:
            learner_metrics = free_port(NODE_ADDRESSES["n2"])
        actor_metrics = free_port(NODE_ADDRESSES["n3"], span=2)
        submit = [
            os.path.join(deploy, "submit.sh"), f"--bin={bin_dir}", f"--run_dir={run_dir}",
            "--shards=2", "--shard_nodes=1", "--shard_mem=300M",
            "--learner_cpus=1", "--learner_mem=800M",
            "--actors=2", "--actor_nodes=1", "--actor_mem=600M",
            f"--replay_port={replay_port}", f"--learner_port={learner_port}",
            f"--replay_metrics_port={replay_metrics}", f"--learner_metrics_port={learner_metrics}",
            f"--actor_metrics_port={actor_metrics}",
            # The environment reaches the learner and both actors with its parameters (a
            # comma inside the value): the swimmer, observation 10.
            "--env=swimmer_target", "--env_config=max_steps=40,target_x=2",
            "--replay_flags=--min_size_to_sample=200 --samples_per_insert=16 --error_buffer=3200",
            "--learner_flags=--eval_interval=0 --eval_rollouts=10 --log_interval_s=1 "
            "--checkpoint_interval=100000 --batch_size=32",
            "--actor_flags=--num_envs=2 --report_interval_s=2 --max_steps_per_second=400",
            "--", f"--output={root}/job-%j.out", "--parsable"]
        print("submit:", " ".join(submit[:1] + [a if " " not in a else repr(a) for a in submit[1:]]))
        r = slurm.run(submit, timeout=30)
        job = int(re.match(r"\d+", r.stdout.strip()).group(0))
        job_out = os.path.join(root, f"job-{job}.out")
        logs = os.path.join(run_dir, "logs", str(job))

        state = wait_until("job running", lambda: slurm.job_state(job) == "RUNNING", 60)
        if not check(state, f"job {job} running"):
            print(slurm.run(["squeue", "-o", "%i %T %R"], check=False).stdout)
            return
        layout = slurm.run(["squeue", "-h", "-j", str(job), "-o", "%i %N"]).stdout.split("\n")
        nodes = sorted(line.split()[1] for line in layout if line.strip())
        check(nodes == ["n1", "n2", "n3"], f"the het job's three parts run on three nodes: {layout}")

        serving = wait_until("shards serving", lambda: "replay shards serving" in read(job_out), 60)
        out = read(job_out)
        print(out, end="")
        if not check(serving, "the replay shards came up"):
            return
        shards = re.search(r"replay shards on \S+: (\S+)", out).group(1).split(",")
        learner_addr = re.search(r"learner on \S+: (\S+)", out).group(1)
        check(shards == [f"127.0.0.11:{replay_port}", f"127.0.0.11:{replay_port + 1}"],
              f"shard addresses from the job layout: n1's NodeAddr, one port per task: {shards}")
        check(learner_addr == f"127.0.0.12:{learner_port}",
              f"learner address from the job layout: n2's NodeAddr: {learner_addr}")

        def stats():
            r = subprocess.run([bins["replay_stats"], f"--shards={','.join(shards)}", "--json"],
                               capture_output=True, text=True, timeout=30)
            return json.loads(r.stdout)["shards"] if r.returncode == 0 else None

        def per_actor(shard):
            return {int(a.get("actor_id", 0)): int(a["inserted"])
                    for a in shard["stats"].get("per_actor", [])}

        def trained():
            s = stats()
            updates = learner_updates(read(os.path.join(logs, "learner-0.log")))
            if s and all(per_actor(sh).get(0, 0) > 0 and per_actor(sh).get(1, 0) > 0 for sh in s) \
                    and len(updates) >= 2 and updates[-1] > updates[0] and updates[-1] >= 100:
                return s, updates
            return None

        result = wait_until("training across the nodes", trained, 150, interval=2)
        if check(result, "the job trained across the nodes"):
            s, updates = result
            for sh in s:
                check(int(sh["stats"].get("observation_dim", 0)) == 10,
                      f"shard {sh['address']} holds the swimmer's observations (10): "
                      f"{sh['stats'].get('observation_dim')}")
                check(True, f"shard {sh['address']}: {sh['stats']['inserts_total']} inserts, "
                            f"per actor {per_actor(sh)}, {sh['stats'].get('samples_total', 0)} sampled")
            check(True, f"learner updates advancing: {updates[:3]} ... {updates[-1]}")
            # The same progress on every process's /metrics, on its node's address.
            endpoints = (
                [(f"shard {k}", NODE_ADDRESSES["n1"], replay_metrics + k,
                  "softq_replay_inserts_total") for k in range(2)] +
                [("learner", NODE_ADDRESSES["n2"], learner_metrics, "softq_learner_updates_total")] +
                [(f"actor {k}", NODE_ADDRESSES["n3"], actor_metrics + k,
                  "softq_actor_env_steps_total") for k in range(2)])

            def scraped():
                values = [scrape_metric(port, name, host=host) for _, host, port, name in endpoints]
                return values if all(v is not None and v > 0 for v in values) else None

            values = wait_until("every /metrics endpoint showing progress", scraped, 30)
            for (who, host, port, name), v in zip(endpoints, values or [None] * len(endpoints)):
                check(v is not None and v > 0, f"{who} /metrics on {host}:{port}: {name} = {v}")
        else:
            print("stats:", stats())
            for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
                print(f"--- {name}\n" + "\n".join(read(os.path.join(logs, name)).splitlines()[-5:]))
            return

        slurm.run(["scancel", str(job)])
        gone = wait_until("job gone after scancel", lambda: slurm.job_state(job) is None, 60)
        check(gone, "scancel ends the job")
        tail = wait_until("batch script's last line", lambda: "softq: done:" in read(job_out), 15)
        out = read(job_out)
        print("\n".join(l for l in out.splitlines() if "SIGTERM" in l or "ended" in l or "done" in l))
        check(tail and "done: replay=0 learner=0 actor=0" in out,
              "every step exits 0 after scancel's SIGTERM")
        learner_log = read(os.path.join(logs, "learner-0.log"))
        m = re.search(r"checkpoint at step (\d+), version (\d+)", learner_log)
        check(m and os.path.getsize(os.path.join(run_dir, "learner", "learner.ckpt")) > 0,
              f"the learner checkpointed on SIGTERM: {m.group(0) if m else 'no line'}")
        for k in range(2):
            log = read(os.path.join(logs, f"replay-{k}.log"))
            w = re.search(r"wrote (\d+) transitions to (\S+)", log)
            path = os.path.join(run_dir, "replay", f"replay-{k}.ckpt")
            check(w and int(w.group(1)) > 0 and os.path.exists(path),
                  f"shard {k} checkpointed on SIGTERM: {w.group(0) if w else 'no line'}")
        for k in range(2):
            log = read(os.path.join(logs, f"actor-{k}.log"))
            line = [l for l in log.splitlines() if "stopped after" in l]
            check(line, f"actor {k} stopped on SIGTERM: {line[-1] if line else 'no line'}")
        left = wait_until("job processes gone", lambda: not slurm.strays(), 20, interval=0.5)
        check(left, "no job process left after the job ended: "
                    f"{[read(f'/proc/{p}/cmdline').replace(chr(0), ' ') for p in slurm.strays()]}")
    finally:
        if job is not None and slurm.job_state(job) is not None:
            slurm.run(["scancel", str(job)], check=False)
            wait_until("job gone (cleanup)", lambda: slurm.job_state(job) is None, 40)
        codes = slurm.stop()
        print("daemons stopped:", codes)
        if failures:
            print(slurm.logs_tail(5))
        shutil.rmtree(root, ignore_errors=True)
    print(f"{len(failures)} failed, {time.time() - T0:.1f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    code = main()
    sys.exit(code if not failures else 1)
