"""Starts and stops softq processes on this machine: replay shards, a learner, actors.

Used by deploy/local/demo.sh (through launch.py) and by the end-to-end tests. Every process
listens on 127.0.0.1 with a port it picks itself (--port=0) and prints; its output is echoed
with a prefix and kept for inspection. Cluster(..., credentials=DIR) runs the job secured: DIR
holds ca.crt, job.crt, job.key and token (deploy/local/make_credentials.sh) and every process
gets them as --tls_ca, --tls_cert, --tls_key, --auth_token_file; without it every process runs
in insecure mode. stop() sends SIGTERM to every process still running,
waits, and SIGKILLs stragglers, so nothing started here outlives the caller.
Python 3 standard library only.
"""
import os
import re
import signal
import socket
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def security_flags(credentials):
    """The four flags that run a process with the credentials in directory `credentials`
    (make_credentials.sh's files); [] for None (insecure mode)."""
    if not credentials:
        return []
    c = os.path.abspath(credentials)
    return [f"--tls_ca={c}/ca.crt", f"--tls_cert={c}/job.crt", f"--tls_key={c}/job.key",
            f"--auth_token_file={c}/token"]


def scrape_metric(port, name, timeout=5, host="127.0.0.1", token=None):
    """The value of gauge/counter `name` at http://host:port/metrics (Prometheus text
    format), or None when the endpoint does not answer or lacks it. `token`: the job's, sent
    as "Authorization: Bearer <token>" (what a secured process requires)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        request = urllib.request.Request(f"http://{host}:{port}/metrics", headers=headers)
        with urllib.request.urlopen(request, timeout=timeout) as r:
            text = r.read().decode()
    except OSError:
        return None
    m = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? +(\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def metrics_status(port, host="127.0.0.1", token=None):
    """The HTTP status of GET http://host:port/metrics (with the token as a bearer token when
    given), or the error's text when nothing answered."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        request = urllib.request.Request(f"http://{host}:{port}/metrics", headers=headers)
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError as e:
        return str(e)


class Process:
    def __init__(self, name, argv, echo=True):
        self.name = name
        self.argv = argv
        self.lines = []
        self._cond = threading.Condition()
        # SIGTERM to the child when this process dies, however it dies (a test's timeout, a
        # closed terminal, SIGKILL): no server outlives its launcher. util-linux's setpriv
        # sets it and execs the binary in place (preexec_fn is unsafe beside threads).
        launch = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []
        self.proc = subprocess.Popen(launch + argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     start_new_session=True)
        self._echo = echo
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if self._echo:
                sys.stdout.write(f"[{self.name}] {line}\n")
                sys.stdout.flush()
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, predicate, timeout):
        """The first output line for which predicate(line) holds; raises TimeoutError."""
        deadline = time.time() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if predicate(line):
                        return line
                seen = len(self.lines)
                left = deadline - time.time()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise TimeoutError(f"{self.name}: no matching line within {timeout}s "
                                       f"(exit {self.proc.poll()}); last lines: {self.lines[-5:]}")
                self._cond.wait(min(left, 0.5))

    def address(self, timeout=60):
        line = self.wait_for(lambda l: " listening on " in l, timeout)
        return line.rsplit(" ", 1)[1]

    def running(self):
        return self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


class Cluster:
    def __init__(self, bin_dir, echo=True, credentials=None):
        self.bin = {
            "replay_server": os.path.join(bin_dir, "replay", "replay_server"),
            "replay_stats": os.path.join(bin_dir, "replay", "replay_stats"),
            "learner": os.path.join(bin_dir, "learner", "learner_main"),
            "actor": os.path.join(bin_dir, "actor", "actor_main"),
        }
        self.echo = echo
        self.credentials = credentials
        self.security = security_flags(credentials)
        self.processes = []
        self.shard_addresses = []
        self.learner_address = None

    def start(self, name, binary, flags):
        p = Process(name, [self.bin[binary]] + self.security + list(flags), self.echo)
        self.processes.append(p)
        return p

    def start_shards(self, count, flags=()):
        shards = []
        for i in range(count):
            p = self.start(f"shard{i}", "replay_server", [f"--shard_id={i}", "--port=0", *flags])
            shards.append(p)
        self.shard_addresses = [p.address() for p in shards]
        return shards

    def start_learner(self, flags=()):
        p = self.start("learner", "learner",
                       [f"--replay={','.join(self.shard_addresses)}", "--port=0", *flags])
        self.learner_address = p.address(timeout=120)
        return p

    def start_actor(self, actor_id, learner_address, flags=()):
        return self.start(f"actor{actor_id}", "actor",
                          [f"--replay={','.join(self.shard_addresses)}",
                           f"--learner={learner_address}", f"--actor_id={actor_id}", *flags])

    def stats(self):
        """The replay_stats --json answer for every shard (a list of dicts)."""
        import json
        out = subprocess.run([self.bin["replay_stats"], f"--shards={','.join(self.shard_addresses)}",
                              "--json", *self.security], capture_output=True, text=True,
                             timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"replay_stats failed: {out.stderr}")
        return json.loads(out.stdout)

    def stop(self, timeout=15):
        """Stops actors, then the learner, then the shards (so writers can flush and readers
        go first): SIGTERM to each group, SIGKILL after timeout. Returns {name: exit code}."""
        codes = {}
        groups = [[p for p in self.processes if p.name.startswith(kind)]
                  for kind in ("actor", "learner", "shard")]
        groups.append([p for p in self.processes if not any(p in g for g in groups)])
        for group in groups:
            for p in group:
                p.signal(signal.SIGTERM)
            deadline = time.time() + timeout
            for p in group:
                code = p.wait(max(0.1, deadline - time.time()))
                if code is None:
                    p.signal(signal.SIGKILL)
                    code = p.wait(5)
                codes[p.name] = code
        return codes
