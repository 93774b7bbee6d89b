"""Mutual TLS and the job token, with real processes on 127.0.0.1 (issue 29).

A secured replay shard and learner (credentials from deploy/local/make_credentials.sh; a
second run of it is "another CA"). Against each service (the shard's Insert, Sample,
UpdatePriorities, Checkpoint, GetStats; the learner's GetLatest and Subscribe; gRPC health and
reflection on both servers), tests/security:security_probe calls as
  - a plain insecure channel (even with the right token),
  - TLS presenting no client certificate,
  - TLS presenting a certificate of another CA (server checked against the right CA),
  - TLS with the other CA on both sides,
  - the right certificate and no token,
  - the right certificate and a wrong token;
the first four must fail in the TLS handshake (gRPC: UNAVAILABLE, the connection never
established, so no call reaches the server), the last two with UNAUTHENTICATED from the
server's token check (before any handler). After all of them the shard's contents (size,
inserts_total, samples_total, checkpoints_total through an authorized client) and the
learner's parameter version are what they were. Then the authorized path: health SERVING on
both, an actor trains (the shard fills, the learner publishes newer versions). /metrics of the
shard, learner and actor: 401 without the token or with a wrong one, 200 with it. Partial or
bad credential flags on every binary (and the Python actor): exit 2 with one line naming the
flag. Insecure mode: each process says so in one line at start.

  security_test.py BIN_DIR MAKE_CREDENTIALS PYTHON_DIR
"""
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "deploy", "local"))
from cluster import Cluster, Process, security_flags  # noqa: E402

failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


class Probe:
    def __init__(self, bin_dir):
        self.path = os.path.join(bin_dir, "tests", "security", "security_probe")

    def call(self, address, rpc, *flags):
        out = subprocess.run([self.path, f"--address={address}", f"--rpc={rpc}", *flags],
                             capture_output=True, text=True, timeout=60)
        lines = out.stdout.strip().splitlines()
        return lines[-1] if lines else f"{rpc} NO-OUTPUT {out.stderr.strip()[-300:]}"


def authorized(creds):
    token = open(os.path.join(creds, "token")).read().strip()
    return ["--tls=mutual", f"--ca={creds}/ca.crt", f"--cert={creds}/job.crt",
            f"--key={creds}/job.key", f"--token={token}"]


def refused_cases(good, other):
    token = open(os.path.join(good, "token")).read().strip()
    wrong = open(os.path.join(other, "token")).read().strip()
    handshake = "UNAVAILABLE"  # the TLS handshake fails: no call is made
    return [
        ("plain insecure channel with the right token", handshake,
         ["--tls=none", f"--token={token}"]),
        ("TLS without a client certificate", handshake,
         ["--tls=mutual", f"--ca={good}/ca.crt", f"--token={token}"]),
        ("client certificate of another CA", handshake,
         ["--tls=mutual", f"--ca={good}/ca.crt", f"--cert={other}/job.crt",
          f"--key={other}/job.key", f"--token={token}"]),
        ("another CA on both sides", handshake,
         ["--tls=mutual", f"--ca={other}/ca.crt", f"--cert={other}/job.crt",
          f"--key={other}/job.key", f"--token={token}"]),
        ("right certificate, no token", "UNAUTHENTICATED",
         ["--tls=mutual", f"--ca={good}/ca.crt", f"--cert={good}/job.crt",
          f"--key={good}/job.key"]),
        ("right certificate, wrong token", "UNAUTHENTICATED",
         ["--tls=mutual", f"--ca={good}/ca.crt", f"--cert={good}/job.crt",
          f"--key={good}/job.key", f"--token={wrong}"]),
    ]


def shard_state(probe, address, auth):
    line = probe.call(address, "stats", *auth)
    m = re.search(r"size=(\d+) inserts_total=(\d+) samples_total=(\d+) "
                  r"checkpoints_total=(\d+)", line)
    return tuple(int(x) for x in m.groups()) if m else line


def learner_version(probe, address, auth):
    m = re.search(r"version=(\d+)", probe.call(address, "latest", *auth))
    return int(m.group(1)) if m else None


def http_status(port, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""


def metrics_port(process, pattern):
    line = process.wait_for(lambda l: re.search(pattern, l) is not None, 60)
    return int(re.search(r"(\d+)\s*$", line).group(1))


def check_metrics(name, port, good, other, metric):
    token = open(os.path.join(good, "token")).read().strip()
    wrong = open(os.path.join(other, "token")).read().strip()
    status, _ = http_status(port)
    check(status == 401, f"{name} /metrics without the token: 401 ({status})")
    status, _ = http_status(port, wrong)
    check(status == 401, f"{name} /metrics with a wrong token: 401 ({status})")
    status, body = http_status(port, token)
    check(status == 200 and metric in body,
          f"{name} /metrics with the token: 200 and {metric} ({status})")


def secured_job(bin_dir, good, other, work):
    probe = Probe(bin_dir)
    auth = authorized(good)
    cluster = Cluster(bin_dir, credentials=good)
    try:
        checkpoints = os.path.join(work, "shard_checkpoint")
        os.makedirs(checkpoints, exist_ok=True)
        # min_size_to_sample: the learner cannot train on the one transition below, so its
        # version moves only once the actor runs.
        cluster.start_shards(1, ["--observation_dim=2", "--action_dim=2",
                                 "--min_size_to_sample=500", "--metrics_port=0",
                                 f"--checkpoint_dir={checkpoints}"])
        shard = cluster.processes[0]
        learner = cluster.start_learner(["--metrics_port=0", "--eval_interval=0",
                                         "--log_interval_s=2", "--publish_interval=5"])
        address, learner_address = cluster.shard_addresses[0], cluster.learner_address
        shard_metrics = metrics_port(shard, r"replay_server: metrics on ")
        learner_metrics = metrics_port(learner, r"learner metrics on ")
        for p in (shard, learner):
            check(not any("insecure" in l for l in p.lines),
                  f"{p.name}: secured, no insecure-mode line")

        line = probe.call(address, "insert", *auth)
        check(line.startswith("insert OK ack code 0"), f"authorized insert stored: {line}")
        before = shard_state(probe, address, auth)
        version = learner_version(probe, learner_address, auth)
        check(isinstance(before, tuple) and before[:2] == (1, 1),
              f"authorized GetStats: size 1, inserts_total 1: {before}")
        check(version is not None, f"authorized GetLatest: version {version}")

        targets = [(address, rpc) for rpc in ("insert", "sample", "update_priorities",
                                              "checkpoint", "stats", "health", "reflection")]
        targets += [(learner_address, rpc) for rpc in ("latest", "subscribe", "health",
                                                       "reflection")]
        for what, expected, flags in refused_cases(good, other):
            for target, rpc in targets:
                server = "shard" if target == address else "learner"
                line = probe.call(target, rpc, *flags)
                code = line.split()[1].rstrip(":") if len(line.split()) > 1 else line
                check(code == expected,
                      f"{server} {rpc}, {what}: refused with {expected}: {line[:160]}")
        after = shard_state(probe, address, auth)
        check(after == before,
              f"shard unchanged by the refused calls (size, inserts, samples, checkpoints): "
              f"{before} -> {after}")
        check(not os.path.exists(os.path.join(checkpoints, "shard_0.ckpt"))
              and not any(n.endswith(".ckpt") for n in os.listdir(checkpoints)),
              f"no checkpoint written by a refused Checkpoint: {os.listdir(checkpoints)}")
        later = learner_version(probe, learner_address, auth)
        check(later == version, f"learner's parameter version unchanged: {version} -> {later}")
        for target, server in ((address, "shard"), (learner_address, "learner")):
            line = probe.call(target, "health", *auth)
            check(line == "health OK SERVING", f"{server} health, authorized: {line}")
            line = probe.call(target, "reflection", *auth)
            check(line.startswith("reflection OK"), f"{server} reflection, authorized: {line}")
        check_metrics("shard", shard_metrics, good, other, "softq_replay_size")
        check_metrics("learner", learner_metrics, good, other, "")

        # The authorized path end to end: an actor with the job's credentials trains.
        actor = cluster.start_actor(0, learner_address,
                                    ["--num_envs=4", "--report_interval_s=1",
                                     "--metrics_port=0"])
        actor_metrics = metrics_port(actor, r"metrics on port ")
        # Waits for all three: stored, sampled, newer versions published (the shard's state is
        # read before the learner's version, so the learner may have begun sampling in between).
        deadline = time.time() + 120
        state, newer = before, version
        while time.time() < deadline:
            state = shard_state(probe, address, auth)
            newer = learner_version(probe, learner_address, auth)
            if isinstance(state, tuple) and state[0] > 1000 and state[2] > 0 \
                    and newer is not None and newer > version + 2:
                break
            time.sleep(1)
        check(isinstance(state, tuple) and state[0] > 1000 and state[2] > 0,
              f"secured actor's transitions stored and sampled by the learner: {state}")
        check(newer is not None and newer > version + 2,
              f"learner trains and publishes newer versions: {version} -> {newer}")
        check(any("got parameters version" in l for l in actor.lines),
              "secured actor got the learner's parameters")
        check_metrics("actor", actor_metrics, good, other, "softq_actor_env_steps_total")
    finally:
        codes = cluster.stop()
        print(f"exit codes: {codes}", flush=True)
    check(all(c == 0 for c in codes.values()), f"every secured process exits 0: {codes}")


def bad_flags(bin_dir, python_dir, good, other, work):
    empty = os.path.join(work, "empty_token")
    open(empty, "w").close()
    g = security_flags(good)  # --tls_ca, --tls_cert, --tls_key, --auth_token_file
    cases = [
        ("only --tls_ca", g[:1], "--tls_cert"),
        ("no --auth_token_file", g[:3], "--auth_token_file"),
        ("a key that is not the certificate's", g[:2] + [f"--tls_key={other}/job.key", g[3]],
         "--tls_key"),
        ("a certificate of another CA", [g[0], f"--tls_cert={other}/job.crt",
                                         f"--tls_key={other}/job.key", g[3]], "--tls_cert"),
        ("an empty token", g[:3] + [f"--auth_token_file={empty}"], "--auth_token_file"),
        ("a missing CA file", [f"--tls_ca={work}/nonexistent.crt"] + g[1:], "--tls_ca"),
    ]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": python_dir}
    binaries = {
        "replay_server": [os.path.join(bin_dir, "replay", "replay_server"), "--port=0"],
        "replay_stats": [os.path.join(bin_dir, "replay", "replay_stats"),
                         "--shards=127.0.0.1:1"],
        "learner_main": [os.path.join(bin_dir, "learner", "learner_main"),
                         "--replay=127.0.0.1:1", "--port=0"],
        "actor_main": [os.path.join(bin_dir, "actor", "actor_main"), "--replay=127.0.0.1:1",
                       "--learner=127.0.0.1:2"],
        "softq.actor": ["/usr/bin/python3", "-m", "softq.actor",
                        "--env=softq.examples.multigoal:make", "--replay=127.0.0.1:1",
                        "--learner=127.0.0.1:2"],
    }
    for name, argv in binaries.items():
        for what, flags, named in cases:
            out = subprocess.run(argv + flags, capture_output=True, text=True, timeout=60,
                                 env=env)
            lines = out.stderr.strip().splitlines()
            check(out.returncode == 2 and len(lines) == 1 and named in lines[0],
                  f"{name} with {what}: exit 2, one line naming {named}: "
                  f"exit {out.returncode}, {lines[-2:]}")


def insecure_mode(bin_dir, python_dir):
    cluster = Cluster(bin_dir)
    try:
        cluster.start_shards(1, ["--observation_dim=2", "--action_dim=2"])
        learner = cluster.start_learner(["--eval_interval=0"])
        actor = cluster.start_actor(0, cluster.learner_address, ["--num_envs=1"])
        os.environ["PYTHONPATH"] = python_dir  # Process passes the environment on
        python_actor = Process("actor1", [
            "/usr/bin/python3", "-m", "softq.actor", "--env=softq.examples.multigoal:make",
            f"--replay={cluster.shard_addresses[0]}", f"--learner={cluster.learner_address}",
            "--actor_id=1", "--num_envs=1"])
        cluster.processes.append(python_actor)
        for p, prog in ((cluster.processes[0], "replay_server"), (learner, "learner_main"),
                        (actor, "actor_main"), (python_actor, "softq.actor")):
            expected = f"{prog}: insecure: no TLS and no token (loopback development only)"
            try:
                p.wait_for(lambda l: l == expected, 60)
                said = True
            except TimeoutError:
                said = False
            check(said, f"{p.name} in insecure mode says so: {expected!r}")
    finally:
        cluster.stop()


def main():
    bin_dir, make_credentials, python_dir = sys.argv[1:4]
    work = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
    good, other = os.path.join(work, "job"), os.path.join(work, "other_job")
    for d in (good, other):
        subprocess.run([make_credentials, d], check=True, timeout=120)
    modes = {f: oct(os.stat(os.path.join(good, f)).st_mode & 0o777)
             for f in ("ca.crt", "job.crt", "job.key", "token")}
    check(oct(os.stat(good).st_mode & 0o777) == "0o700"
          and set(modes.values()) == {"0o600"}
          and not any(n.endswith(".key") and n != "job.key" for n in os.listdir(good)),
          f"make_credentials.sh: 0700 directory, 0600 files, no CA key left: "
          f"{sorted(os.listdir(good))} {modes}")
    secured_job(bin_dir, good, other, work)
    bad_flags(bin_dir, python_dir, good, other, work)
    insecure_mode(bin_dir, python_dir)
    print(f"security_test: {len(failures)} failed", flush=True)
    for f in failures:
        print("FAILED: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
