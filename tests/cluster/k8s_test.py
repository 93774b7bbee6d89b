"""deploy/k8s, checked without a Kubernetes cluster. Run by tests/cluster/k8s_test.sh with the
binaries' paths and deploy/k8s's folder.

1. Renders the kustomize base and the GPU-learner overlay (deploy/k8s/validate/render.js) and
   validates every object against the Kubernetes API schemas (npm kubernetes-models), unknown
   fields included (deploy/k8s/validate/validate.js).
2. Checks that the manifests agree with each other: the shard list in the learner's and the
   actors' --replay names every StatefulSet replica through the headless Service; Services
   select pods that exist and point at named container ports; gRPC probes and Prometheus
   annotations use the ports the binaries are told to listen on; every $(VAR) is defined; the
   overlay, and only it, requests a GPU and runs --device=cuda.
3. Checks that every flag in the manifests exists in the binary it is passed to (--help).
4. Runs the base's containers as rendered, on this machine: Kubernetes' $(VAR) expansion with
   the ConfigMap, the actor's shell command for real; only the network names (Service DNS,
   0.0.0.0, fixed ports) are mapped onto 127.0.0.1, the checkpoint volumes onto a temporary
   folder, the metrics ports onto free ports, the learner's periodic evaluation turned off.
   The actor gets parameters and its transitions, under the id its pod name hashes to, reach
   both shards; the learner updates; every container's /metrics (what Prometheus scrapes by
   the pods' annotations) reports that progress; all exit 0 on SIGTERM with checkpoints
   written.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy",
                                "local"))
from cluster import Process, free_port, scrape_metric  # noqa: E402

failures = []
T0 = time.time()
BIN_PREFIX = "/opt/softq/bin/"


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
    return None


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


def help_flags(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    return set(re.findall(r"^\s+--(\w+) \(", out.stdout, re.M))


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
                if "grpc" in p:
                    ok = str(p["grpc"]["port"]) == flags.get("port") and p["grpc"]["port"] in ports
                    check(ok, f"{variant}: {c['name']} {probe}: gRPC health on --port={flags.get('port')}")
                elif "httpGet" in p:
                    port = named.get(p["httpGet"]["port"], p["httpGet"]["port"])
                    check(str(port) == flags.get("metrics_port"),
                          f"{variant}: {c['name']} {probe}: HTTP on --metrics_port={flags.get('metrics_port')}")
            ann = w["spec"]["template"]["metadata"].get("annotations", {})
            if int(flags.get("metrics_port", -1)) >= 0:
                check(ann.get("prometheus.io/scrape") == "true",
                      f"{variant}: {c['name']} serves /metrics and its pods are scraped")
            if ann.get("prometheus.io/scrape") == "true":
                check(ann.get("prometheus.io/port") == flags.get("metrics_port") and
                      int(ann["prometheus.io/port"]) in ports,
                      f"{variant}: {c['name']} Prometheus scrape port = --metrics_port={flags.get('metrics_port')}")
            if "port" in flags:
                check(c.get("readinessProbe", {}).get("grpc") is not None,
                      f"{variant}: {c['name']} (a gRPC server) has a gRPC readiness probe")
            env = container_env(c, configmaps, "pod-0")
            words = c.get("command", []) + c.get("args", [])
            undefined = {m for w_ in words for m in re.findall(r"(?<!\$)\$\((\w+)\)", w_)
                         if m not in env}
            check(not undefined, f"{variant}: {c['name']}: every $(VAR) is defined {sorted(undefined)}")

    learner = containers(learner_sts)[0]
    gpu = learner.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
    device = container_env(learner, configmaps, "learner-0").get("DEVICE")
    if variant.endswith("gpu-learner"):
        check(gpu == 1 and device == "cuda" and learner_sts["spec"]["template"]["spec"].get("tolerations"),
              f"{variant}: learner requests nvidia.com/gpu=1, tolerates GPU nodes, --device=cuda")
        check(learner["image"].endswith(":cuda"), f"{variant}: learner image {learner['image']}")
    else:
        check(gpu is None and device == "cpu", f"{variant}: learner on CPU, no GPU request")


def check_flags(variant, objects, bins):
    known = {name: help_flags(path) for name, path in bins.items()}
    for w in objects:
        for c in containers(w):
            b = binary_of(c)
            if not check(b in bins, f"{variant}: {c['name']} runs a softq binary: {b}"):
                continue
            used = set(flag_values(c.get("command", []) + c.get("args", [])))
            unknown = used - known[b]
            check(known[b] and not unknown,
                  f"{variant}: {c['name']}: all {len(used)} flags exist in {b} --help {sorted(unknown)}")


def run_base(objects, bins, work):
    """Starts the base's containers as rendered, network names mapped onto 127.0.0.1."""
    configmaps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    replay_sts = find(objects, "StatefulSet", "replay")
    learner_sts = find(objects, "StatefulSet", "learner")
    actor = find(objects, "Deployment", "actor")
    bin_dir = os.path.dirname(bins["replay_server"])
    procs = []

    def argv(container, pod_name, mapping):
        env = container_env(container, configmaps, pod_name)
        words = [k8s_expand(w, env) for w in container.get("command", []) + container["args"]]
        out = []
        for w in words:
            w = w.replace(BIN_PREFIX + "replay_server", bins["replay_server"])
            w = w.replace(BIN_PREFIX + "learner_main", bins["learner_main"])
            w = w.replace(BIN_PREFIX + "actor_main", bins["actor_main"])
            for old, new in mapping:
                w = re.sub(old, new, w)
            out.append(w)
        # The container's environment, as the kubelet sets it (the shell command reads it).
        return ["/usr/bin/env"] + [f"{k}={v}" for k, v in sorted(env.items())] + out, env

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
            a, _ = argv(c, f"replay-{k}", base_map(f"replay-{k}") + [(r"--port=\d+", "--port=0"),
                                                      (re.escape(mount), work + mount)])
            p = Process(f"replay-{k}", a)
            procs.append(p)
            shard_addrs.append(p.address(60))
        svc_names = ",".join(f"replay-{k}.replay:7000" for k in range(len(shard_addrs)))
        c = containers(learner_sts)[0]
        mount = c["volumeMounts"][0]["mountPath"]
        a, _ = argv(c, "learner-0", base_map("learner-0") + [
            (r"--port=\d+", "--port=0"), (re.escape(mount), work + mount),
            (re.escape(svc_names), ",".join(shard_addrs)),
            (r"--eval_interval=\d+", "--eval_interval=0")])
        learner = Process("learner-0", a + ["--log_interval_s=1", "--eval_rollouts=10"])
        procs.append(learner)
        learner_addr = learner.address(120)
        check(True, f"shards and learner started with the manifests' flags: {shard_addrs}, {learner_addr}")
        pod = "actor-6d4cf56db6-x7k2p"
        c = containers(actor)[0]
        a, env = argv(c, pod, base_map("actor") + [(re.escape(svc_names), ",".join(shard_addrs)),
                                          (r"--learner=learner:7100", f"--learner={learner_addr}")])
        actor_p = Process("actor", a + ["--report_interval_s=2", "--max_steps_per_second=500"])
        procs.append(actor_p)
        want_id = int(hashlib.md5(pod.encode()).hexdigest()[:7], 16)
        line = actor_p.wait_for(lambda l: "got parameters" in l, 60)
        check(line.startswith(f"actor {want_id}:"),
              f"the actor's shell command computes --actor_id={want_id} from its pod name: {line}")

        def progressed():
            out = subprocess.run([bins["replay_stats"], f"--shards={','.join(shard_addrs)}", "--json"],
                                 capture_output=True, text=True, timeout=30)
            if out.returncode != 0:
                return None
            stats = json.loads(out.stdout)["shards"]
            per = [{int(x.get("actor_id", 0)): int(x["inserted"]) for x in s["stats"].get("per_actor", [])}
                   for s in stats]
            ups = [int(m) for m in re.findall(r"updates +(\d+)", "\n".join(learner.lines))]
            return (per, ups[-1]) if all(p.get(want_id, 0) > 0 for p in per) and ups and ups[-1] > 0 else None

        deadline, result = time.time() + 90, None
        while time.time() < deadline and not result:
            result = progressed()
            time.sleep(1)
        check(result, f"the actor's transitions reach every shard and the learner updates: {result}")
        # What Prometheus would scrape from each pod.
        progress = {"replay": "softq_replay_inserts_total", "learner": "softq_learner_updates_total",
                    "actor": "softq_actor_env_steps_total"}
        for name, port in sorted(metrics_ports.items()):
            metric = progress[name.split("-")[0]]
            value = scrape_metric(port, metric)
            check(value is not None and value > 0,
                  f"{name}: /metrics on its --metrics_port reports {metric} = {value}")
    finally:
        codes = {}
        for group in (["actor"], ["learner-0"], [p.name for p in procs if p.name.startswith("replay")]):
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
    variants = [os.path.join(k8s, "base"), os.path.join(k8s, "overlays", "gpu-learner")]
    r = subprocess.run(["node", os.path.join(validate, "validate.js"), f"--json={rendered_json}",
                        *variants], capture_output=True, text=True, timeout=120)
    print(r.stdout + r.stderr, end="")
    check(r.returncode == 0, "every rendered object of the base and the overlay is valid")
    if r.returncode != 0 and not os.path.exists(rendered_json):
        return 1
    with open(rendered_json) as f:
        rendered = json.load(f)
    for v in variants:
        name = os.path.relpath(v, k8s)
        check(len(rendered.get(v, [])) >= 6, f"{name}: {len(rendered.get(v, []))} objects rendered")
        check_consistency(name, rendered[v])
        check_flags(name, rendered[v], bins)
    with open(os.path.join(k8s, "Dockerfile")) as f:
        dockerfile = f.read()
    check(all(f"bazel-bin/{p}" in dockerfile for p in
              ("replay/replay_server", "replay/replay_stats", "learner/learner_main", "actor/actor_main"))
          and "/opt/softq/bin" in dockerfile,
          "the Dockerfile installs the four binaries under /opt/softq/bin, as the manifests run them")
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
    run_base(rendered[variants[0]], bins, work)
    print(f"{len(failures)} failed, {time.time() - T0:.1f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
