"""deploy/k8s, checked without a Kubernetes cluster. Run by tests/cluster/k8s_test.sh with the
binaries' paths and deploy/k8s's folder.

1. Renders the kustomize base and the overlays gpu-learner and python-actors
   (deploy/k8s/validate/render.js) and validates every object against the Kubernetes API
   schemas (npm kubernetes-models), unknown fields included (deploy/k8s/validate/validate.js).
2. Checks that the manifests agree with each other: the shard list in the learner's and the
   actors' --replay names every StatefulSet replica through the headless Service; Services
   select pods that exist and point at named container ports; probes (a stats query with the
   job's credentials on the shards, the port on the learner and actors) and Prometheus
   annotations use the ports the binaries are told to listen on; every $(VAR) is defined; the
   GPU overlay, and only it, requests a GPU and runs --device=cuda; the Python overlay runs
   python3 -m softq.actor on $(PYTHON_ENV) and the learner on --env=external with the sizes.
   Security: every container gets --tls_ca, --tls_cert, --tls_key and --auth_token_file under
   /etc/softq/credentials, where its pod mounts the Secret softq-credentials read-only
   (defaultMode without group or other bits).
3. Checks that every flag in the manifests (probes included) exists in the program it is
   passed to (--help; the Python actor's from python/softq with its built module).
4. Runs the base's containers as rendered, on this machine, secured with credentials made by
   deploy/local/make_credentials.sh mapped onto /etc/softq/credentials: Kubernetes' $(VAR)
   expansion with the ConfigMap, the actor's shell command for real; only the network names
   (Service DNS, 0.0.0.0, fixed ports) are mapped onto 127.0.0.1, the checkpoint volumes onto a
   temporary folder, the metrics ports onto free ports, the learner's periodic evaluation
   turned off. Beside the base's actor runs the python-actors overlay's actor container as
   rendered (its ConfigMap, /opt/softq/python mapped onto python/softq): the example
   multi-goal task has the base learner's sizes. Each actor gets parameters and its
   transitions, under the id its pod name hashes to, reach both shards; the learner updates;
   the shards' exec probes answer, the learner's and actors' probe ports accept connections;
   every container's /metrics, with the job's token (what Prometheus scrapes by the pods'
   annotations), reports that progress, and without it answers 401; a client without
   credentials gets nothing from a shard; no process runs insecure; all exit 0 on SIGTERM
   with checkpoints written.
"""
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy",
                                "local"))
from cluster import Process, free_port, metrics_status, scrape_metric  # noqa: E402

failures = []
T0 = time.time()
BIN_PREFIX = "/opt/softq/bin/"
PYTHON_ACTOR = "softq.actor"  # python3 -m softq.actor, from /opt/softq/python
IMAGE_PYTHON_DIR = "/opt/softq/python"
CREDENTIALS_DIR = "/etc/softq/credentials"
SECURITY_FLAGS = {"tls_ca": "ca.crt", "tls_cert": "job.crt", "tls_key": "job.key",
                  "auth_token_file": "token"}


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + f"[{time.time() - T0:5.1f}s] {what}", flush=True)
    if not condition:
        failures.append(what)
    return condition


def find(objects, kind, name):
    return next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None)


def containers(obj):
    return obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])


def flag_values(argv):
    """{flag: value} of every --flag=value in a list of words (booleans: "true")."""
    out = {}
    for word in argv:
        for m in re.finditer(r"(?:^|\s)--([a-z_]+)(?:=(\S*))?", word):
            out[m.group(1)] = m.group(2) if m.group(2) is not None else "true"
    return out


def binary_of(container):
    words = container.get("command", []) + container.get("args", [])
    for w in words:
        m = re.search(re.escape(BIN_PREFIX) + r"(\w+)", w)
        if m:
            return m.group(1)
        if re.search(r"python3 -m " + re.escape(PYTHON_ACTOR) + r"(\s|$)", w):
            return PYTHON_ACTOR
    return None


def probe_commands(container):
    """The exec probes' commands of a container."""
    return [container[p]["exec"]["command"] for p in ("readinessProbe", "livenessProbe")
            if "exec" in container.get(p, {})]


def k8s_expand(text, env):
    """Kubernetes' $(VAR) expansion of command and args: $$ is a literal $, unknown names stay."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i) and ")" in text[i:]:
            j = text.index(")", i)
            name = text[i + 2:j]
            out.append(env[name] if name in env else text[i:j + 1])
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def container_env(container, configmaps, pod_name):
    env = {}
    for src in container.get("envFrom", []):
        env.update(configmaps[src["configMapRef"]["name"]]["data"])
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[e["name"]] = pod_name
    return env


def help_flags(argv, env=None):
    """The flags a program lists in --help: the C++ binaries' "  --name (text)" lines, or with
    `env` (the Python actor) argparse's "  --name VALUE" lines."""
    out = subprocess.run(argv + ["--help"], capture_output=True, text=True, timeout=60, env=env)
    pattern = r"^  --(\w+)(?:\s|$)" if env else r"^\s+--(\w+) \("
    return set(re.findall(pattern, out.stdout, re.M))


def check_consistency(variant, objects):
    configmaps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    replay_sts, replay_svc = find(objects, "StatefulSet", "replay"), find(objects, "Service", "replay")
    learner_sts, learner_svc = find(objects, "StatefulSet", "learner"), find(objects, "Service", "learner")
    actor = find(objects, "Deployment", "actor")
    if not check(all([replay_sts, replay_svc, learner_sts, learner_svc, actor]),
                 f"{variant}: replay StatefulSet+Service, learner StatefulSet+Service, actor Deployment"):
        return
    check(replay_svc["spec"].get("clusterIP") == "None" and
          replay_sts["spec"]["serviceName"] == replay_svc["metadata"]["name"],
          f"{variant}: the shards' Service is headless and is the StatefulSet's serviceName")
    check(replay_sts["spec"].get("volumeClaimTemplates") and
          learner_sts["spec"].get("volumeClaimTemplates"),
          f"{variant}: shards and learner have checkpoint volumes (volumeClaimTemplates)")

    # Services select pods of a workload and target a named container port.
    for svc in (replay_svc, learner_svc):
        sel = svc["spec"]["selector"]
        pods = [w for w in (replay_sts, learner_sts, actor)
                if sel.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        ports = {p["name"]: p["containerPort"] for w in pods for c in containers(w)
                 for p in c.get("ports", [])}
        check(len(pods) == 1 and all(p["targetPort"] in ports and ports[p["targetPort"]] == p["port"]
                                     for p in svc["spec"]["ports"]),
              f"{variant}: Service {svc['metadata']['name']} selects one workload and its ports")

    shards = int(replay_sts["spec"]["replicas"])
    svc_port = replay_svc["spec"]["ports"][0]["port"]
    expected = ",".join(f"{replay_sts['metadata']['name']}-{k}.{replay_svc['metadata']['name']}:{svc_port}"
                        for k in range(shards))
    learner_address = f"{learner_svc['metadata']['name']}:{learner_svc['spec']['ports'][0]['port']}"
    for w in (learner_sts, actor):
        flags = flag_values(containers(w)[0].get("command", []) + containers(w)[0]["args"])
        check(flags.get("replay") == expected,
              f"{variant}: {w['metadata']['name']} --replay names all {shards} shards: {flags.get('replay')}")
    actor_flags = flag_values(containers(actor)[0]["args"])
    check(actor_flags.get("learner") == learner_address,
          f"{variant}: actors' --learner is the learner Service: {actor_flags.get('learner')}")

    for w in (replay_sts, learner_sts, actor):
        for c in containers(w):
            flags = flag_values(c.get("command", []) + c.get("args", []))
            ports = {p["containerPort"] for p in c.get("ports", [])}
            named = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                p = c.get(probe)
                if not p:
                    continue
                if "exec" in p:
                    # A stats query of this very shard, with the container's own credentials.
                    cmd = p["exec"]["command"]
                    pf = flag_values(cmd[1:])
                    check(cmd[0] == BIN_PREFIX + "replay_stats" and "port" in flags and
                          pf.get("shards") == f"127.0.0.1:{flags['port']}" and
                          all(pf.get(f) == flags.get(f) for f in SECURITY_FLAGS),
                          f"{variant}: {c['name']} {probe}: replay_stats of 127.0.0.1:--port="
                          f"{flags.get('port')} with the container's credentials: {pf}")
                elif "tcpSocket" in p:
                    port = named.get(p["tcpSocket"]["port"], p["tcpSocket"]["port"])
                    check(str(port) in (flags.get("port"), flags.get("metrics_port")),
                          f"{variant}: {c['name']} {probe}: TCP port {port} is --port or --metrics_port")
                else:
                    check(False, f"{variant}: {c['name']} {probe}: exec or tcpSocket (the kubelet's "
                                 f"gRPC and HTTP probes carry no client certificate or token): {p}")
            ann = w["spec"]["template"]["metadata"].get("annotations", {})
            if int(flags.get("metrics_port", -1)) >= 0:
                check(ann.get("prometheus.io/scrape") == "true",
                      f"{variant}: {c['name']} serves /metrics and its pods are scraped")
            if ann.get("prometheus.io/scrape") == "true":
                check(ann.get("prometheus.io/port") == flags.get("metrics_port") and
                      int(ann["prometheus.io/port"]) in ports,
                      f"{variant}: {c['name']} Prometheus scrape port = --metrics_port={flags.get('metrics_port')}")
            if "port" in flags:
                check(c.get("readinessProbe") is not None,
                      f"{variant}: {c['name']} (a gRPC server) has a readiness probe")
            check_security(variant, w, c, flags)
            env = container_env(c, configmaps, "pod-0")
            words = c.get("command", []) + c.get("args", [])
            undefined = {m for w_ in words for m in re.findall(r"(?<!\$)\$\((\w+)\)", w_)
                         if m not in env}
            check(not undefined, f"{variant}: {c['name']}: every $(VAR) is defined {sorted(undefined)}")

    learner = containers(learner_sts)[0]
    actor_c = containers(actor)[0]
    actor_env = container_env(actor_c, configmaps, "actor-0")
    learner_env = container_env(learner, configmaps, "learner-0")
    if variant.endswith("python-actors"):
        sizes = flag_values([k8s_expand(w, learner_env) for w in learner["args"]])
        check(binary_of(actor_c) == PYTHON_ACTOR and
              actor_env.get("PYTHONPATH") == IMAGE_PYTHON_DIR and
              re.fullmatch(r"[\w.]+:\w+", actor_env.get("PYTHON_ENV", "")) and
              flag_values(actor_c["args"]).get("env") == "$(PYTHON_ENV)",
              f"{variant}: actors run python3 -m softq.actor on PYTHON_ENV="
              f"{actor_env.get('PYTHON_ENV')} from PYTHONPATH={actor_env.get('PYTHONPATH')}")
        check(sizes.get("env") == "external" and
              re.fullmatch(r"observation_dim=\d+,action_dim=\d+", sizes.get("env_config", "")),
              f"{variant}: the learner on --env=external with the sizes: "
              f"--env={sizes.get('env')} --env_config={sizes.get('env_config')}")
    else:
        check(binary_of(actor_c) == "actor_main", f"{variant}: actors run actor_main")
    gpu = learner.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
    device = container_env(learner, configmaps, "learner-0").get("DEVICE")
    if variant.endswith("gpu-learner"):
        check(gpu == 1 and device == "cuda" and learner_sts["spec"]["template"]["spec"].get("tolerations"),
              f"{variant}: learner requests nvidia.com/gpu=1, tolerates GPU nodes, --device=cuda")
        check(learner["image"].endswith(":cuda"), f"{variant}: learner image {learner['image']}")
    else:
        check(gpu is None and device == "cpu", f"{variant}: learner on CPU, no GPU request")


def check_security(variant, workload, c, flags):
    """The container gets the four security flags under CREDENTIALS_DIR, where its pod mounts
    the Secret softq-credentials read-only, readable by the owner only."""
    want = {f: f"{CREDENTIALS_DIR}/{name}" for f, name in SECURITY_FLAGS.items()}
    got = {f: flags.get(f) for f in SECURITY_FLAGS}
    check(got == want, f"{variant}: {c['name']} gets the job's credentials: {got}")
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"].get("volumes", [])}
    mounts = [m for m in c.get("volumeMounts", []) if m["mountPath"] == CREDENTIALS_DIR]
    secret = volumes.get(mounts[0]["name"], {}).get("secret", {}) if len(mounts) == 1 else {}
    mode = secret.get("defaultMode")
    check(len(mounts) == 1 and mounts[0].get("readOnly") is True and
          secret.get("secretName") == "softq-credentials" and mode is not None and
          mode & 0o077 == 0 and not secret.get("items"),
          f"{variant}: {c['name']} mounts the Secret softq-credentials read-only at "
          f"{CREDENTIALS_DIR}, defaultMode {oct(mode) if mode is not None else None}")
    if "0.0.0.0" in (flags.get("host"), flags.get("metrics_host")):
        check(got == want, f"{variant}: {c['name']} binds 0.0.0.0 only with TLS and the token")


def check_flags(variant, objects, bins, python_env):
    known = {name: help_flags([path]) for name, path in bins.items()}
    known[PYTHON_ACTOR] = help_flags(["/usr/bin/python3", "-m", PYTHON_ACTOR], env=python_env)
    for w in objects:
        for c in containers(w):
            b = binary_of(c)
            if not check(b in known, f"{variant}: {c['name']} runs a softq program: {b}"):
                continue
            used = set(flag_values(c.get("command", []) + c.get("args", [])))
            unknown = used - known[b]
            check(known[b] and not unknown,
                  f"{variant}: {c['name']}: all {len(used)} flags exist in {b} --help {sorted(unknown)}")
            for cmd in probe_commands(c):
                probe_bin = cmd[0].replace(BIN_PREFIX, "")
                used = set(flag_values(cmd[1:]))
                unknown = used - known.get(probe_bin, set())
                check(probe_bin in known and not unknown,
                      f"{variant}: {c['name']} probe: all {len(used)} flags exist in {probe_bin} "
                      f"--help {sorted(unknown)}")


def port_open(port, host="127.0.0.1"):
    """What a tcpSocket probe checks: the port accepts a connection."""
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def run_base(objects, bins, work, creds, python_objects, python_dir):
    """Starts the base's containers as rendered, and the python-actors overlay's actor beside
    them, network names mapped onto 127.0.0.1 and the Secret's mount onto `creds`."""
    replay_sts = find(objects, "StatefulSet", "replay")
    learner_sts = find(objects, "StatefulSet", "learner")
    actor = find(objects, "Deployment", "actor")
    python_actor = find(python_objects, "Deployment", "actor")
    with open(os.path.join(creds, "token")) as f:
        token = f.read().strip()
    procs = []
    actors = {}  # process name -> (pod name, the id its pod name hashes to)

    def argv(container, configmaps_of, pod_name, mapping):
        configmaps = {o["metadata"]["name"]: o for o in configmaps_of if o["kind"] == "ConfigMap"}
        mapping = mapping + [(re.escape(CREDENTIALS_DIR), creds),
                             (re.escape(IMAGE_PYTHON_DIR), python_dir)]

        def local(w):
            w = w.replace(BIN_PREFIX + "replay_server", bins["replay_server"])
            w = w.replace(BIN_PREFIX + "learner_main", bins["learner_main"])
            w = w.replace(BIN_PREFIX + "actor_main", bins["actor_main"])
            for old, new in mapping:
                w = re.sub(old, new, w)
            return w
        env = {k: local(v) for k, v in container_env(container, configmaps, pod_name).items()}
        words = [local(k8s_expand(w, env)) for w in container.get("command", []) + container["args"]]
        # The container's environment, as the kubelet sets it (the shell command reads it).
        return ["/usr/bin/env"] + [f"{k}={v}" for k, v in sorted(env.items())] + words

    try:
        metrics_ports = {}  # process name -> its metrics port here

        def base_map(name):
            metrics_ports[name] = free_port()
            return [(r"--host=0\.0\.0\.0", "--host=127.0.0.1"),
                    (r"--metrics_host=0\.0\.0\.0", "--metrics_host=127.0.0.1"),
                    (r"--metrics_port=\d+", f"--metrics_port={metrics_ports[name]}")]
        shard_addrs = []
        for k in range(int(replay_sts["spec"]["replicas"])):
            c = containers(replay_sts)[0]
            mount = c["volumeMounts"][0]["mountPath"]
            os.makedirs(work + mount, exist_ok=True)
            a = argv(c, objects, f"replay-{k}", base_map(f"replay-{k}") + [
                (r"--port=\d+", "--port=0"), (re.escape(mount), work + mount)])
            p = Process(f"replay-{k}", a)
            procs.append(p)
            shard_addrs.append(p.address(60))
        svc_names = ",".join(f"replay-{k}.replay:7000" for k in range(len(shard_addrs)))
        c = containers(learner_sts)[0]
        mount = c["volumeMounts"][0]["mountPath"]
        a = argv(c, objects, "learner-0", base_map("learner-0") + [
            (r"--port=\d+", "--port=0"), (re.escape(mount), work + mount),
            (re.escape(svc_names), ",".join(shard_addrs)),
            (r"--eval_interval=\d+", "--eval_interval=0")])
        learner = Process("learner-0", a + ["--log_interval_s=1", "--eval_rollouts=10"])
        procs.append(learner)
        learner_addr = learner.address(120)
        check(True, f"shards and learner started with the manifests' flags: {shard_addrs}, {learner_addr}")
        for name, workload, pod, extra in [
                ("actor", actor, "actor-6d4cf56db6-x7k2p", ["--max_steps_per_second=500"]),
                ("actor-python", python_actor, "actor-7f9c8b5d4-q2m8n", [])]:
            a = argv(containers(workload)[0], python_objects if workload is python_actor else objects,
                     pod, base_map(name) + [(re.escape(svc_names), ",".join(shard_addrs)),
                                            (r"--learner=learner:7100", f"--learner={learner_addr}")])
            procs.append(Process(name, a + ["--report_interval_s=2"] + extra))
            actors[name] = (pod, int(hashlib.md5(pod.encode()).hexdigest()[:7], 16))
        for p in procs:
            if p.name in actors:
                pod, want_id = actors[p.name]
                line = p.wait_for(lambda l: "got parameters" in l, 90)
                check(line.startswith(f"actor {want_id}:"),
                      f"{p.name}: the shell command computes --actor_id={want_id} from its pod "
                      f"name: {line}")
        ids = [want for _, want in actors.values()]
        python_line = next((l for p in procs if p.name == "actor-python" for l in p.lines
                            if " x softq.examples" in l), None)
        check(python_line, f"the overlay's actor is the Python actor on the example: {python_line}")
        stats_argv = [bins["replay_stats"], f"--shards={','.join(shard_addrs)}", "--json",
                      f"--tls_ca={creds}/ca.crt", f"--tls_cert={creds}/job.crt",
                      f"--tls_key={creds}/job.key", f"--auth_token_file={creds}/token"]

        def progressed():
            out = subprocess.run(stats_argv, capture_output=True, text=True, timeout=30)
            if out.returncode != 0:
                return None
            stats = json.loads(out.stdout)["shards"]
            per = [{int(x.get("actor_id", 0)): int(x["inserted"]) for x in s["stats"].get("per_actor", [])}
                   for s in stats]
            ups = [int(m) for m in re.findall(r"updates +(\d+)", "\n".join(learner.lines))]
            done = all(p.get(i, 0) > 0 for p in per for i in ids) and ups and ups[-1] > 0
            return (per, ups[-1]) if done else None

        deadline, result = time.time() + 90, None
        while time.time() < deadline and not result:
            result = progressed()
            time.sleep(1)
        check(result, f"both actors' transitions (C++ and Python, ids {ids}) reach every shard "
                      f"and the learner updates: {result}")
        # The probes as the kubelet would run them: the shards' exec command, the TCP ports.
        for k, addr in enumerate(shard_addrs):
            for cmd in probe_commands(containers(replay_sts)[0]):
                local_cmd = [w.replace(BIN_PREFIX + "replay_stats", bins["replay_stats"])
                             .replace("127.0.0.1:7000", addr).replace(CREDENTIALS_DIR, creds)
                             for w in cmd]
                r = subprocess.run(local_cmd, capture_output=True, text=True, timeout=30)
                check(r.returncode == 0, f"replay-{k}'s exec probe answers: exit {r.returncode} "
                                         f"{r.stderr.strip()[-200:]}")
        check(port_open(int(learner_addr.rsplit(":", 1)[1])) and
              all(port_open(metrics_ports[n]) for n in actors),
              "the learner's and the actors' tcpSocket probe ports accept connections")
        # What Prometheus would scrape from each pod, with the job's token; nothing without it.
        # An actor's series hold zeros until its first report (--report_interval_s=2), and the
        # checks below want progress: scraped after that report.
        for p in procs:
            if p.name in actors:
                try:
                    p.wait_for(lambda l: ": env steps " in l, 60)
                except TimeoutError as e:
                    check(False, f"{p.name} reports its progress: {e}")
        progress = {"replay": "softq_replay_inserts_total", "learner": "softq_learner_updates_total",
                    "actor": "softq_actor_env_steps_total"}
        for name, port in sorted(metrics_ports.items()):
            metric = progress[name.split("-")[0]]
            value = scrape_metric(port, metric, token=token)
            status = metrics_status(port)
            check(value is not None and value > 0 and status == 401,
                  f"{name}: /metrics on its --metrics_port reports {metric} = {value} with the "
                  f"token, {status} without")
        r = subprocess.run([bins["replay_stats"], f"--shards={shard_addrs[0]}", "--json",
                            "--timeout_ms=2000"], capture_output=True, text=True, timeout=30)
        check(r.returncode != 0 and '"stats"' not in r.stdout,
              f"a client without credentials gets nothing from replay-0: exit {r.returncode}, "
              f"{r.stdout.strip()[:160]}")
        insecure = [f"{p.name}: {l}" for p in procs for l in p.lines if "insecure" in l]
        check(not insecure, f"no container runs insecure {insecure}")
    finally:
        codes = {}
        for group in (list(actors), ["learner-0"], [p.name for p in procs if p.name.startswith("replay")]):
            for p in procs:
                if p.name in group:
                    p.signal(15)
            for p in procs:
                if p.name in group:
                    code = p.wait(60)
                    if code is None:
                        p.signal(9)
                        code = p.wait(5)
                    codes[p.name] = code
    check(codes and all(c == 0 for c in codes.values()), f"every container exits 0 on SIGTERM: {codes}")
    ckpts = sorted(os.path.relpath(os.path.join(d, f), work) for d, _, fs in os.walk(work) for f in fs)
    # Each shard leaves its checkpoint and its (emptied) insert log.
    check(any("learner.ckpt" in f for f in ckpts)
          and sum(f.endswith(".ckpt") and "replay-replay-" in f for f in ckpts) == 2,
          f"checkpoints written on the volumes: {ckpts}")


def main():
    bins = dict(zip(["replay_server", "replay_stats", "learner_main", "actor_main"],
                    [os.path.abspath(p) for p in sys.argv[1:5]]))
    k8s = os.path.realpath(sys.argv[5])  # the source tree: node_modules lives there, not in runfiles
    validate = os.path.join(k8s, "validate")
    r = subprocess.run([os.path.join(validate, "install.sh")], capture_output=True, text=True,
                       timeout=300)
    if not check(r.returncode == 0, f"npm packages installed ({r.stderr.strip() or 'already'})"):
        return 1
    work = tempfile.mkdtemp(prefix="softq_k8s_", dir=os.environ.get("TEST_TMPDIR"))
    rendered_json = os.path.join(work, "rendered.json")
    python_dir = os.path.abspath(sys.argv[6])  # python/softq with its built module
    python_env = dict(os.environ, PYTHONPATH=python_dir)
    variants = [os.path.join(k8s, "base"), os.path.join(k8s, "overlays", "gpu-learner"),
                os.path.join(k8s, "overlays", "python-actors")]
    r = subprocess.run(["node", os.path.join(validate, "validate.js"), f"--json={rendered_json}",
                        *variants], capture_output=True, text=True, timeout=120)
    print(r.stdout + r.stderr, end="")
    check(r.returncode == 0, "every rendered object of the base and the overlays is valid")
    if r.returncode != 0 and not os.path.exists(rendered_json):
        return 1
    with open(rendered_json) as f:
        rendered = json.load(f)
    for v in variants:
        name = os.path.relpath(v, k8s)
        check(len(rendered.get(v, [])) >= 6, f"{name}: {len(rendered.get(v, []))} objects rendered")
        check_consistency(name, rendered[v])
        check_flags(name, rendered[v], bins, python_env)
    with open(os.path.join(k8s, "Dockerfile")) as f:
        dockerfile = f.read()
    check(all(f"bazel-bin/{p}" in dockerfile for p in
              ("replay/replay_server", "replay/replay_stats", "learner/learner_main", "actor/actor_main"))
          and "/opt/softq/bin" in dockerfile,
          "the Dockerfile installs the four binaries under /opt/softq/bin, as the manifests run them")
    check("_softq_actor.so" in dockerfile and f"COPY --from=build /out/python {IMAGE_PYTHON_DIR}"
          in dockerfile, f"the Dockerfile ships python/softq with its module under {IMAGE_PYTHON_DIR}")
    # The image runs install.sh before the rest of the tree is copied in (the runtime stage as
    # /tmp/install.sh): it must need no other file of the repository.
    alone = os.path.join(work, "install_alone")
    os.makedirs(alone)
    shutil.copy(os.path.join(k8s, "..", "local", "install.sh"), alone)
    r = subprocess.run(["bash", os.path.join(alone, "install.sh")], capture_output=True,
                       text=True, timeout=600)
    check(r.returncode == 0 and "COPY deploy/local/install.sh" in dockerfile,
          "deploy/local/install.sh runs alone, as the Dockerfile runs it "
          f"(exit {r.returncode}{': ' + r.stderr.strip()[-200:] if r.returncode else ''})")
    # The job's credentials, as the Secret would hold them.
    creds = os.path.join(work, "credentials")
    r = subprocess.run(["bash", os.path.join(k8s, "..", "local", "make_credentials.sh"), creds, "1"],
                       capture_output=True, text=True, timeout=60)
    if not check(r.returncode == 0, f"credentials made by make_credentials.sh: {r.stdout.strip()}"
                                    f"{r.stderr.strip()}"):
        return 1
    run_base(rendered[variants[0]], bins, work, creds, rendered[variants[2]], python_dir)
    print(f"{len(failures)} failed, {time.time() - T0:.1f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
