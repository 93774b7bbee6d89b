"""softq on a real Slurm: a local three-node Slurm 22.05 cluster (tests/cluster/local_slurm.py,
loopback addresses only) runs deploy/slurm/submit.sh's heterogeneous job: 2 replay shards on
n1, the learner on n2, 2 actors on n3. Run by tests/cluster/slurm_test.sh with the binaries'
paths.

Checks, in order: the job starts on the three nodes; it made its own credentials (submit.sh is
secure by default) in <run_dir>/credentials/<job>, directory 0700 and files 0600; the shards
listen on n1's address and the learner on n2's, as discovered from the job's layout; the
replay stats RPC, with the job's credentials, shows both actors' transitions on every shard;
the learner's updates advance; every process serves Prometheus /metrics on its node's address
(shards and actors on base port + local rank), with the job's token, showing that progress;
a shard of the running job refuses a client without credentials (no answer: the TLS handshake
fails), one with the job's certificate and a wrong token ("wrong job token") and a /metrics
request without the token (401); no process ran insecure; `scancel` ends the job cleanly
(every step exits 0) with the shards' and the learner's checkpoints written and the
credentials deleted; no process of the cluster is left.

Then a second, shorter job through submit.sh's Python-actor branch (--python_env, --python_dir):
2 Python actors (python3 -m softq.actor) stepping softq.examples.multigoal:make, the learner on
--env=external: both actors' transitions (observation 2) reach both shards, the learner
updates and evaluates from the episodes they finished, the actors' /metrics count env steps, every step exits 0 after scancel; its
credentials are its own (another token than the first job's). Last, a job submitted with
--insecure says so, makes no credentials and its shards answer a client without any.
Every wait has a timeout; the daemons are stopped by PID, also on failure.
"""
import json
import os
import re
import stat
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy",
                                "local"))
from cluster import metrics_status, scrape_metric  # noqa: E402
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


CREDENTIAL_FILES = ("ca.crt", "job.crt", "job.key", "token")


def security_flags(credentials):
    return [f"--tls_ca={credentials}/ca.crt", f"--tls_cert={credentials}/job.crt",
            f"--tls_key={credentials}/job.key", f"--auth_token_file={credentials}/token"]


def check_credentials(out, run_dir, job):
    """The job's credentials directory from its output, checked private; (dir, token) or None."""
    m = re.search(r"credentials in (\S+) \(", out)
    if not check(m, f"job {job} made its credentials: {m.group(0) if m else 'no line'}"):
        return None
    creds = m.group(1)
    check(creds == os.path.join(run_dir, "credentials", str(job)),
          f"credentials in the job's own directory <run_dir>/credentials/{job}: {creds}")
    modes = {name: stat.S_IMODE(os.stat(os.path.join(creds, name)).st_mode)
             if os.path.exists(os.path.join(creds, name)) else None for name in CREDENTIAL_FILES}
    dir_mode = stat.S_IMODE(os.stat(creds).st_mode)
    check(dir_mode == 0o700 and all(m == 0o600 for m in modes.values()),
          f"credentials readable by the job's user only: directory {oct(dir_mode)}, files "
          f"{ {k: oct(v) if v is not None else None for k, v in modes.items()} }")
    with open(os.path.join(creds, "token")) as f:
        return creds, f.read().strip()


def check_refused(bins, shard, creds, root, metrics_host, metrics_port):
    """Clients the running job must refuse: no credentials at all, the job's certificate with
    another token, /metrics without the token."""
    r = subprocess.run([bins["replay_stats"], f"--shards={shard}", "--json", "--timeout_ms=2000"],
                       capture_output=True, text=True, timeout=30)
    answer = json.loads(r.stdout)["shards"][0] if r.stdout.strip().startswith("{") else {}
    check(r.returncode != 0 and "stats" not in answer and answer.get("reason") == "timeout"
          and "secured shard" in answer.get("error", ""),
          f"a client without credentials gets nothing from shard {shard} (TLS handshake refused): "
          f"exit {r.returncode}, {answer.get('error', r.stderr.strip())[:160]}")
    other = os.path.join(root, "other_token")
    os.makedirs(other, mode=0o700)
    for name in ("ca.crt", "job.crt", "job.key"):
        shutil.copy(os.path.join(creds, name), other)
    with open(os.path.join(other, "token"), "w") as f:
        f.write("0" * 64 + "\n")
    os.chmod(os.path.join(other, "token"), 0o600)
    r = subprocess.run([bins["replay_stats"], f"--shards={shard}", "--json", "--timeout_ms=2000",
                        *security_flags(other)], capture_output=True, text=True, timeout=30)
    answer = json.loads(r.stdout)["shards"][0] if r.stdout.strip().startswith("{") else {}
    check(r.returncode != 0 and "stats" not in answer and "wrong job token" in answer.get("error", ""),
          f"a client with the job's certificate and another token is refused by shard {shard}: "
          f"exit {r.returncode}, {answer.get('error', r.stderr.strip())[:160]}")
    status = metrics_status(metrics_port, host=metrics_host)
    check(status == 401, f"/metrics on {metrics_host}:{metrics_port} without the token: {status}")


# The resources of the two-shard, two-actor jobs: one node each for the shards, the learner
# and the actors, memory within what the test's nodes have.
TWO_BY_TWO = ["--shards=2", "--shard_nodes=1", "--shard_mem=300M", "--learner_cpus=1",
              "--learner_mem=800M", "--actors=2", "--actor_nodes=1", "--actor_mem=600M"]


def submit(slurm, deploy, bin_dir, run_dir, root, jobs, label, flags):
    """Submits deploy/slurm/submit.sh with `flags` (its output in root/job-%j.out), prints the
    command under `label` (unless None), records the job in `jobs`: (job id, the run)."""
    argv = [os.path.join(deploy, "submit.sh"), f"--bin={bin_dir}", f"--run_dir={run_dir}",
            *flags, "--", f"--output={root}/job-%j.out", "--parsable"]
    if label is not None:
        print(f"{label}:", " ".join(argv[:1] + [a if " " not in a else repr(a)
                                                for a in argv[1:]]))
    r = slurm.run(argv, timeout=30)
    job = int(re.match(r"\d+", r.stdout.strip()).group(0))
    jobs.append(job)
    return job, r


def python_job(slurm, bins, deploy, python_dir, bin_dir, root, first_token, jobs):
    """submit.sh's Python-actor branch: 2 Python actors on n3 step the example multi-goal task,
    the learner on --env=external; their transitions reach both shards."""
    run_dir = os.path.join(root, "run_python")
    replay_port = free_port(NODE_ADDRESSES["n1"], span=2)
    learner_port = free_port(NODE_ADDRESSES["n2"])
    actor_metrics = free_port(NODE_ADDRESSES["n3"], span=2)
    job, _ = submit(slurm, deploy, bin_dir, run_dir, root, jobs, "submit (Python actors)", [
        *TWO_BY_TWO, f"--replay_port={replay_port}", f"--learner_port={learner_port}",
        f"--actor_metrics_port={actor_metrics}",
        "--python_env=softq.examples.multigoal:make", f"--python_dir={python_dir}",
        "--env=external", "--env_config=observation_dim=2,action_dim=2",
        "--replay_flags=--min_size_to_sample=200 --samples_per_insert=16 --error_buffer=3200",
        "--learner_flags=--eval_interval=200 --log_interval_s=1 --checkpoint_interval=100000 "
        "--batch_size=32",
        "--actor_flags=--num_envs=2 --report_interval_s=2"])
    job_out = os.path.join(root, f"job-{job}.out")
    logs = os.path.join(run_dir, "logs", str(job))
    serving = wait_until("shards serving", lambda: "replay shards serving" in read(job_out), 90)
    out = read(job_out)
    print(out, end="")
    if not check(serving, f"Python-actor job {job}: the replay shards came up"):
        return
    secured = check_credentials(out, run_dir, job)
    if not secured:
        return
    creds, token = secured
    check(token != first_token, "each job has its own token")
    shards = re.search(r"replay shards on \S+: (\S+)", out).group(1).split(",")

    def trained():
        r = subprocess.run([bins["replay_stats"], f"--shards={','.join(shards)}", "--json",
                            *security_flags(creds)], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            return None
        s = json.loads(r.stdout)["shards"]
        per = [{int(a.get("actor_id", 0)): int(a["inserted"]) for a in sh["stats"].get("per_actor", [])}
               for sh in s]
        learner_log = read(os.path.join(logs, "learner-0.log"))
        updates = learner_updates(learner_log)
        evals = re.findall(r"eval at update \d+: return \S+ \+- \S+ over [1-9]\d* actor episodes",
                           learner_log)
        if all(p.get(0, 0) > 0 and p.get(1, 0) > 0 for p in per) and updates and evals:
            return s, per, updates, evals
        return None

    result = wait_until("Python actors' transitions on both shards", trained, 120, interval=2)
    if not check(result, "both Python actors' transitions reach both shards and the learner "
                         "updates and evaluates from their finished episodes"):
        for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
            print(f"--- {name}\n" + "\n".join(read(os.path.join(logs, name)).splitlines()[-8:]))
        return
    s, per, updates, evals = result
    for sh, p in zip(s, per):
        check(int(sh["stats"].get("observation_dim", 0)) == 2,
              f"shard {sh['address']} holds the example's observations (2) from Python actors "
              f"{sorted(p)}: {sh['stats'].get('observation_dim')}, per actor {p}")
    check(True, f"learner (--env=external) updates: {updates[-1]}; {evals[0]}")
    for k in range(2):
        log = read(os.path.join(logs, f"actor-{k}.log"))
        check("softq.examples.multigoal:make" in log and "got parameters" in log,
              f"actor {k} is a Python actor on the example that got the learner's parameters")

    def scraped():  # the Python actor sets its metrics at its reports (--report_interval_s)
        values = [scrape_metric(actor_metrics + k, "softq_actor_env_steps_total",
                                host=NODE_ADDRESSES["n3"], token=token) for k in range(2)]
        return values if all(v is not None and v > 0 for v in values) else None
    values = wait_until("both Python actors' /metrics", scraped, 30) or [None, None]
    check(all(values), f"Python actors' /metrics (with the job's token): env steps {values}")
    slurm.run(["scancel", str(job)])
    gone = wait_until("job gone after scancel", lambda: slurm.job_state(job) is None, 60)
    tail = wait_until("batch script's last line", lambda: "softq: done:" in read(job_out), 15)
    out = read(job_out)
    check(gone and tail and "done: replay=0 learner=0 actor=0" in out,
          f"Python-actor job: every step exits 0 after scancel: "
          f"{[l for l in out.splitlines() if 'done:' in l]}")
    for k in range(2):
        line = [l for l in read(os.path.join(logs, f"actor-{k}.log")).splitlines()
                if "stopped after" in l]
        check(line, f"Python actor {k} stopped on SIGTERM: {line[-1] if line else 'no line'}")
    check(not os.path.exists(creds), "the Python-actor job deleted its credentials")


def insecure_job(slurm, bins, deploy, bin_dir, root, jobs):
    """submit.sh --insecure: says so, makes no credentials, its shards answer anyone."""
    run_dir = os.path.join(root, "run_insecure")
    replay_port = free_port(NODE_ADDRESSES["n1"], span=2)
    job, r = submit(slurm, deploy, bin_dir, run_dir, root, jobs, None, [
        "--insecure", "--shard_mem=300M", "--learner_cpus=1", "--learner_mem=800M",
        "--actors=1", "--actor_mem=600M", f"--replay_port={replay_port}",
        f"--learner_port={free_port(NODE_ADDRESSES['n2'])}"])
    check("--insecure" in r.stderr and "without TLS" in r.stderr,
          f"submit.sh --insecure says so: {r.stderr.strip()[:120]}")
    job_out = os.path.join(root, f"job-{job}.out")
    serving = wait_until("shards serving", lambda: "replay shards serving" in read(job_out), 60)
    shards = f"127.0.0.11:{replay_port},127.0.0.11:{replay_port + 1}"
    r = subprocess.run([bins["replay_stats"], f"--shards={shards}", "--json"],
                       capture_output=True, text=True, timeout=30)
    out = read(job_out)
    check(serving and r.returncode == 0 and "softq: insecure:" in out and
          not os.path.exists(os.path.join(run_dir, "credentials")),
          f"--insecure job {job}: no credentials made, its shards answer a client without any "
          f"(replay_stats exit {r.returncode})")
    logs = os.path.join(run_dir, "logs", str(job))

    def warned():
        names = sorted(os.listdir(logs)) if os.path.isdir(logs) else []
        said = [n for n in names if "insecure" in read(os.path.join(logs, n))]
        return said if len(said) == 4 else None
    said = wait_until("every process saying insecure", warned, 60, interval=0.5)
    check(said, f"--insecure job: every process says it runs insecure: {said}")
    slurm.run(["scancel", str(job)])
    gone = wait_until("job gone after scancel", lambda: slurm.job_state(job) is None, 60)
    tail = wait_until("batch script's last line", lambda: "softq: done:" in read(job_out), 15)
    check(gone and tail and "done: replay=0 learner=0 actor=0" in read(job_out),
          f"--insecure job: every step exits 0 after scancel: "
          f"{[l for l in read(job_out).splitlines() if 'done:' in l]}")


def main():
    bins = dict(zip(["replay_server", "replay_stats", "learner_main", "actor_main"],
                    [os.path.abspath(p) for p in sys.argv[1:5]]))
    deploy = os.path.abspath(sys.argv[5])
    python_dir = os.path.abspath(sys.argv[6])
    # Unix socket paths (slurmd's spool) must stay short: not under Bazel's long TEST_TMPDIR.
    root = tempfile.mkdtemp(prefix="softq_slurm_", dir="/tmp")
    bin_dir = os.path.join(root, "bin")
    os.makedirs(bin_dir)
    for name, path in bins.items():
        os.symlink(path, os.path.join(bin_dir, name))
    run_dir = os.path.join(root, "run")
    slurm = LocalSlurm(os.path.join(root, "slurm"))
    jobs = []  # every job submitted, cancelled on the way out
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
        job, r = submit(slurm, deploy, bin_dir, run_dir, root, jobs, "submit", [
            *TWO_BY_TWO, f"--replay_port={replay_port}", f"--learner_port={learner_port}",
            f"--replay_metrics_port={replay_metrics}", f"--learner_metrics_port={learner_metrics}",
            f"--actor_metrics_port={actor_metrics}",
            # The environment reaches the learner and both actors with its parameters (a
            # comma inside the value): the swimmer, observation 10.
            "--env=swimmer_target", "--env_config=max_steps=40,target_x=2",
            "--replay_flags=--min_size_to_sample=200 --samples_per_insert=16 --error_buffer=3200",
            "--learner_flags=--eval_interval=0 --eval_rollouts=10 --log_interval_s=1 "
            "--checkpoint_interval=100000 --batch_size=32",
            "--actor_flags=--num_envs=2 --report_interval_s=2 --max_steps_per_second=400"])
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
        secured = check_credentials(out, run_dir, job)
        if not secured:
            return
        creds, token = secured
        security = security_flags(creds)
        shards = re.search(r"replay shards on \S+: (\S+)", out).group(1).split(",")
        learner_addr = re.search(r"learner on \S+: (\S+)", out).group(1)
        check(shards == [f"127.0.0.11:{replay_port}", f"127.0.0.11:{replay_port + 1}"],
              f"shard addresses from the job layout: n1's NodeAddr, one port per task: {shards}")
        check(learner_addr == f"127.0.0.12:{learner_port}",
              f"learner address from the job layout: n2's NodeAddr: {learner_addr}")

        def stats():
            r = subprocess.run([bins["replay_stats"], f"--shards={','.join(shards)}", "--json",
                                *security], capture_output=True, text=True, timeout=30)
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
                values = [scrape_metric(port, name, host=host, token=token)
                          for _, host, port, name in endpoints]
                return values if all(v is not None and v > 0 for v in values) else None

            values = wait_until("every /metrics endpoint showing progress", scraped, 30)
            for (who, host, port, name), v in zip(endpoints, values or [None] * len(endpoints)):
                check(v is not None and v > 0, f"{who} /metrics on {host}:{port}: {name} = {v}")
            check_refused(bins, shards[0], creds, root, NODE_ADDRESSES["n1"], replay_metrics)
            logged = [read(job_out)] + [read(os.path.join(logs, n)) for n in sorted(os.listdir(logs))]
            check(len(logged) == 6 and not any("insecure" in text for text in logged),
                  f"no process of the job ran insecure ({len(logged) - 1} logs read)")
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
        check(not os.path.exists(creds) and f"credentials {creds} deleted" in out,
              f"the job deleted its credentials at its end (still there: {os.path.exists(creds)})")
        left = wait_until("job processes gone", lambda: not slurm.strays(), 20, interval=0.5)
        check(left, "no job process left after the job ended: "
                    f"{[read(f'/proc/{p}/cmdline').replace(chr(0), ' ') for p in slurm.strays()]}")
        python_job(slurm, bins, deploy, python_dir, bin_dir, root, token, jobs)
        insecure_job(slurm, bins, deploy, bin_dir, root, jobs)
    finally:
        for job in jobs:
            if slurm.job_state(job) is not None:
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
