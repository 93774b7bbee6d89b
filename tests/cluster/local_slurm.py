"""A throw-away Slurm 22.05 cluster on this machine, for tests: one slurmctld on 127.0.0.1 and
three nodes n1..n3, each a `slurmd -N nX` reached at its own loopback address (127.0.0.11-13)
and its own port, all in one directory with its own slurm.conf (no system file is read or
written; every Slurm command gets SLURM_CONF). Daemons run in the foreground (-D) as children
of this process and are stopped by PID.

Configuration facts (measured on Debian 12's slurm-wlm): auth/none + cred/none need no munge;
proctrack/linuxproc and task/none need no cgroups; bf_interval=1 starts a heterogeneous job in
seconds, not at the default backfill interval; the parts of a heterogeneous job need distinct nodes, hence three.
Python 3 standard library only.
"""
import os
import signal
import socket
import subprocess
import time

NODE_ADDRESSES = {"n1": "127.0.0.11", "n2": "127.0.0.12", "n3": "127.0.0.13"}
CONTROLLER_ADDRESS = "127.0.0.1"


def free_port(address, span=1):
    """A port p such that p..p+span-1 are free on `address` right now (TCP)."""
    for _ in range(100):
        s = socket.socket()
        s.bind((address, 0))
        port = s.getsockname()[1]
        s.close()
        if port + span > 65535:
            continue
        ok = True
        for p in range(port, port + span):
            t = socket.socket()
            try:
                t.bind((address, p))
            except OSError:
                ok = False
            finally:
                t.close()
        if ok:
            return port
    raise RuntimeError(f"no {span} free consecutive ports on {address}")


class LocalSlurm:
    """Writes the configuration under `root` and starts the daemons (start()); stop() ends
    every daemon started here, and any process left holding the configuration, by PID."""

    def __init__(self, root, cpus_per_node=2, memory_mb=2000, kill_wait_s=20):
        self.root = root
        self.conf = os.path.join(root, "slurm.conf")
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        self.daemons = {}  # name -> Popen
        self.cpus = cpus_per_node
        self.memory_mb = memory_mb
        self.kill_wait_s = kill_wait_s

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def write_conf(self):
        for d in ("state", "log", *(f"spool/{n}" for n in NODE_ADDRESSES)):
            os.makedirs(self.path(d), exist_ok=True)
        ctld_port = free_port(CONTROLLER_ADDRESS)
        lines = [
            "ClusterName=softqtest",
            f"SlurmctldHost={socket.gethostname().split('.')[0]}({CONTROLLER_ADDRESS})",
            f"SlurmctldPort={ctld_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/none",
            "CredType=cred/none",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "MpiDefault=none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=bf_interval=1",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "MailProg=/bin/true",
            "ReturnToService=2",
            f"KillWait={self.kill_wait_s}",
            f"StateSaveLocation={self.path('state')}",
            f"SlurmdSpoolDir={self.path('spool', '%n')}",
            f"SlurmctldPidFile={self.path('slurmctld.pid')}",
            f"SlurmdPidFile={self.path('slurmd.%n.pid')}",
            f"SlurmctldLogFile={self.path('log', 'slurmctld.log')}",
            f"SlurmdLogFile={self.path('log', 'slurmd.%n.log')}",
        ]
        for name, address in NODE_ADDRESSES.items():
            lines.append(f"NodeName={name} NodeAddr={address} Port={free_port(address)} "
                         f"CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN")
        lines.append(f"PartitionName=test Nodes={','.join(NODE_ADDRESSES)} Default=YES "
                     "MaxTime=INFINITE State=UP")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _daemon(self, name, argv):
        out = open(self.path("log", f"{name}.out"), "w")
        self.daemons[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                              env=self.env, start_new_session=True)
        out.close()

    def start(self, timeout=60):
        """Starts slurmctld and the three slurmd; returns once all nodes are idle. Raises
        TimeoutError (with the daemons' last log lines) otherwise."""
        self.write_conf()
        self._daemon("slurmctld", ["/usr/sbin/slurmctld", "-D", "-i", "-f", self.conf])
        for name in NODE_ADDRESSES:
            self._daemon(f"slurmd-{name}", ["/usr/sbin/slurmd", "-D", "-N", name, "-f", self.conf])
        deadline = time.time() + timeout
        states = ""
        while time.time() < deadline:
            dead = [n for n, p in self.daemons.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead} exited: {self.logs_tail()}")
            r = self.run(["sinfo", "-h", "-N", "-o", "%N %T"], check=False, timeout=10)
            states = r.stdout.strip()
            if r.returncode == 0 and sorted(states.split("\n")) == [f"{n} idle" for n in NODE_ADDRESSES]:
                return
            time.sleep(0.5)
        raise TimeoutError(f"nodes not idle within {timeout}s: {states!r}; {self.logs_tail()}")

    def run(self, argv, check=True, timeout=30):
        """Runs a Slurm client command against this cluster."""
        r = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{argv} exited {r.returncode}: {r.stderr.strip()}")
        return r

    def job_state(self, job_id):
        """State of a job (e.g. PENDING, RUNNING), or None once it has left the queue."""
        r = self.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"], check=False)
        states = set(r.stdout.split())
        if r.returncode != 0 or not states:
            return None
        return "RUNNING" if "RUNNING" in states else sorted(states)[0]

    def logs_tail(self, n=8):
        out = []
        for name in sorted(os.listdir(self.path("log"))):
            with open(self.path("log", name), errors="replace") as f:
                lines = f.read().splitlines()[-n:]
            out.append(f"--- {name}\n" + "\n".join(lines))
        return "\n".join(out)

    def strays(self):
        """PIDs of processes whose environment names this cluster's configuration, other than
        the daemons and slurmctld's own helper (slurmscriptd): job steps and their tasks."""
        mine = {p.pid for p in self.daemons.values()}
        needle = f"SLURM_CONF={self.conf}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in mine or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid == self.daemons["slurmctld"].pid:
                    continue
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        found.append(int(entry))
            except (OSError, KeyError, IndexError, ValueError):
                pass
        return found

    def stop(self, timeout=20):
        """SIGTERM to every daemon started here, SIGKILL after `timeout`; then SIGKILL to any
        process left with this cluster's configuration. Returns {name: exit code}."""
        codes = {}
        for p in self.daemons.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.time() + timeout
        for name, p in self.daemons.items():
            try:
                codes[name] = p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = p.wait(5)
        for pid in self.strays():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return codes
