"""Fault injection on separate processes on 127.0.0.1: kill -9 and restart an actor, a replay
shard and the learner; SIGTERM every kind of process. Run by tests/faults/fault_test.sh as
`fault_test.py BIN_DIR SCENARIO` with SCENARIO one of actor_kill, shard_kill,
shard_kill_unfrozen, learner_kill, sigterm.

Claims are checked on the replay's stats RPC (replay_stats --json: size, per-actor counts,
inserts, samples), on checkpoints (the Checkpoint RPC's item count, the learner checkpoint's
step) and on exit codes and ports. Log text is read only where no RPC knows the fact: the
number of transitions a process had acknowledged (its own count, printed as "acked N" every
50 ms by actor_main and "N transitions acknowledged" at exit), and the learner's "resumed
... at step N, version V" line, which is compared with the checkpoint it resumed from.
Every wait is bounded; cluster.stop() ends everything in `finally`.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "deploy", "local"))
from cluster import Cluster, free_port  # noqa: E402

failures = []
figures = {}


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


def wait_until(predicate, timeout, what, interval=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"within {timeout}s: {what}")


def port_free(port):
    """True when a listening socket can be bound to 127.0.0.1:port (TIME_WAIT connections of
    the old process do not count, as for any server that sets SO_REUSEADDR)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        s.listen(1)
        return True
    except OSError:
        return False
    finally:
        s.close()


def stats_of(cluster, addresses):
    out = subprocess.run([cluster.bin["replay_stats"], f"--shards={','.join(addresses)}",
                          "--json", "--timeout_ms=5000"], capture_output=True, text=True,
                         timeout=30)
    return json.loads(out.stdout)["shards"]


def per_actor(shard_row):
    """{actor_id: inserted} of one shard's stats row ({} when the shard did not answer)."""
    if "stats" not in shard_row:
        return {}
    return {int(a.get("actor_id", 0)): int(a.get("inserted", 0))
            for a in shard_row["stats"].get("per_actor", [])}


def found(rows, actor_id):
    return sum(per_actor(r).get(actor_id, 0) for r in rows)


def counter(row, name):
    return int(row["stats"].get(name, 0)) if "stats" in row else -1


def last_acked(process):
    """The actor's own acknowledged count: its exit line, else its last report line."""
    value = 0
    for line in process.lines:
        m = re.search(r"(\d+) transitions acknowledged", line) or re.search(r"acked (\d+)", line)
        if m:
            value = int(m.group(1))
    return value


def replay_ctl_checkpoint(bin_dir, address):
    out = subprocess.run([os.path.join(bin_dir, "tests", "faults", "replay_ctl"), "checkpoint",
                          address], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"Checkpoint RPC failed: {out.stderr}")
    return json.loads(out.stdout)


SHARD_FLAGS = ["--min_size_to_sample=200", "--capacity=1000000"]
ACTOR_FLAGS = ["--num_envs=2", "--report_interval_s=0.05", "--max_steps_per_second=400"]
LEARNER_FLAGS = ["--device=cpu", "--log_interval_s=0.5", "--eval_interval=0",
                 "--eval_rollouts=1", "--batch_size=32"]


def start_system(cluster, shards, actors, learner_flags=(), shard_flags=()):
    cluster.start_shards(shards, SHARD_FLAGS + list(shard_flags))
    learner = cluster.start_learner(LEARNER_FLAGS + list(learner_flags))
    procs = {i: cluster.start_actor(i, cluster.learner_address, ACTOR_FLAGS)
             for i in range(actors)}
    return learner, procs


def stop_actors(actors):
    for a in actors:
        a.signal(signal.SIGTERM)
    return [a.wait(30) for a in actors]


# ---------------------------------------------------------------------------------------------
def actor_kill(bin_dir, work):
    cluster = Cluster(bin_dir, echo=False)
    try:
        learner, actors = start_system(cluster, 2, 3)
        wait_until(lambda: last_acked(actors[1]) >= 800, 120, "actor 1 acknowledged 800")
        before = stats_of(cluster, cluster.shard_addresses)
        actors[1].signal(signal.SIGKILL)
        actors[1].wait(10)
        acked_killed = last_acked(actors[1])
        time.sleep(0.5)
        after_kill = stats_of(cluster, cluster.shard_addresses)
        f1 = found(after_kill, 1)
        figures["killed actor acknowledged (own count)"] = acked_killed
        figures["killed actor's transitions in the replay"] = f1
        check(f1 >= acked_killed > 0,
              f"the replay holds every transition acknowledged to the killed actor "
              f"({f1} found >= {acked_killed} acked)")
        time.sleep(3)
        later = stats_of(cluster, cluster.shard_addresses)
        check(found(later, 1) == f1, "nothing more arrives from the dead actor")
        check(all(found(later, i) > found(before, i) for i in (0, 2)),
              "the other actors go on inserting")
        check(sum(counter(r, "samples_total") for r in later)
              > sum(counter(r, "samples_total") for r in after_kill),
              "the learner goes on sampling")
        check(learner.running() and actors[0].running() and actors[2].running(),
              "no other process died")

        again = cluster.start_actor(1, cluster.learner_address, ACTOR_FLAGS)
        wait_until(lambda: found(stats_of(cluster, cluster.shard_addresses), 1) > f1 + 200, 60,
                   "the restarted actor's transitions arrive")
        check(True, "a restarted actor (same id) rejoins: its transitions arrive")
        codes = stop_actors([actors[0], again, actors[2]])
        check(codes == [0, 0, 0], f"the actors exit 0 on SIGTERM: {codes}")
        final = stats_of(cluster, cluster.shard_addresses)
        for i, p in ((0, actors[0]), (2, actors[2])):
            check(found(final, i) >= last_acked(p) > 0,
                  f"actor {i}: {found(final, i)} found >= {last_acked(p)} acknowledged")
        acked1 = acked_killed + last_acked(again)
        check(found(final, 1) >= acked1,
              f"actor 1 (killed + restarted): {found(final, 1)} found >= {acked1} acknowledged")
        figures["acknowledged (all actors)"] = last_acked(actors[0]) + last_acked(actors[2]) + acked1
        figures["found (all actors)"] = sum(found(final, i) for i in range(3))
    finally:
        cluster.stop()


# ---------------------------------------------------------------------------------------------
def shard_kill(bin_dir, work, frozen=True):
    """kill -9 shard 0 after its Checkpoint RPC and restart it from its --checkpoint_dir.
    A shard writes every insert to its insert log (replay/insert_log.h) before acknowledging
    it, so the restarted shard holds its last checkpoint plus every insert logged after it.
    frozen: the actors are SIGSTOPped around checkpoint+kill, so nothing is logged after the
    checkpoint and the restarted shard holds exactly the checkpoint's items and per-actor
    counts. Not frozen (shard_kill_unfrozen): the actors keep inserting for 1 s between the
    checkpoint and the kill; what the shard held just before its death (its last stats) is
    all restored, more than the checkpoint. Either way every acknowledged transition is found
    (at-least-once), per actor, from the stats RPC. (With --wal=false on the shards the
    unfrozen scenario fails: the second's acknowledgements are lost.)"""
    ckpt = os.path.join(work, "shard_ckpt")
    os.makedirs(ckpt)
    cluster = Cluster(bin_dir, echo=False)
    try:
        learner, actors = start_system(cluster, 2, 2, shard_flags=[f"--checkpoint_dir={ckpt}"])
        addrs = list(cluster.shard_addresses)
        wait_until(lambda: all(counter(r, "samples_total") > 500 and counter(r, "size") > 500
                               for r in stats_of(cluster, addrs)), 120,
                   "both shards filled and sampled")
        if frozen:
            for a in actors.values():
                a.signal(signal.SIGSTOP)
            time.sleep(0.5)
        before = stats_of(cluster, addrs)
        written = replay_ctl_checkpoint(bin_dir, addrs[0])
        last_seen = before[0]
        if not frozen:
            time.sleep(1)  # inserts acknowledged after the checkpoint: in the insert log only
            last_seen = stats_of(cluster, addrs[:1])[0]  # a lower bound of what it held
        shard0 = cluster.processes[0]
        shard0.signal(signal.SIGKILL)
        shard0.wait(10)
        if frozen:
            for a in actors.values():
                a.signal(signal.SIGCONT)
        figures["checkpoint items"] = written["items"]
        figures["shard 0 size in its last stats before kill -9"] = counter(last_seen, "size")
        check(written["items"] == counter(before[0], "size") or not frozen,
              f"the checkpoint holds the shard's contents ({written['items']} items, "
              f"stats said {counter(before[0], 'size')})")

        # Shard 0 is down: the learner trains on shard 1, the actors re-route to it.
        s1 = stats_of(cluster, addrs[1:])[0]
        time.sleep(3)
        s1b = stats_of(cluster, addrs[1:])[0]
        check(counter(s1b, "samples_total") > counter(s1, "samples_total"),
              "while shard 0 is down the learner keeps sampling shard 1 "
              f"({counter(s1, 'samples_total')} -> {counter(s1b, 'samples_total')})")
        check(counter(s1b, "inserts_total") > counter(s1, "inserts_total"),
              "while shard 0 is down the actors insert into shard 1")
        check(learner.running() and all(a.running() for a in actors.values()),
              "learner and actors survive the shard's death")

        # Restart from the checkpoint dir on a private port first: nobody writes to it, so
        # its stats right after restart are exactly what it restored.
        port0 = int(addrs[0].rsplit(":", 1)[1])
        probe = cluster.start("shard0probe", "replay_server",
                              ["--shard_id=0", "--port=0", f"--checkpoint_dir={ckpt}"] + SHARD_FLAGS)
        probe_row = stats_of(cluster, [probe.address()])[0]
        restored = counter(probe_row, "size")
        figures["restored size"] = restored
        figures["restored from the insert log (after the checkpoint)"] = restored - written["items"]
        if frozen:
            check(restored == written["items"],
                  f"the restarted shard holds exactly its last checkpoint, nothing having been "
                  f"logged after it ({restored} == {written['items']} items)")
            check(per_actor(probe_row) == per_actor(before[0]),
                  f"and its per-actor counts {per_actor(probe_row)}")
        else:
            check(restored > written["items"],
                  f"the restarted shard holds its checkpoint plus the inserts logged after it "
                  f"({restored} > {written['items']} items)")
            seen = per_actor(last_seen)
            check(restored >= counter(last_seen, "size")
                  and all(per_actor(probe_row).get(i, 0) >= n for i, n in seen.items()),
                  f"everything the shard held in its last stats before kill -9 is restored "
                  f"(size {restored} >= {counter(last_seen, 'size')}, per actor "
                  f"{per_actor(probe_row)} >= {seen})")
        probe.signal(signal.SIGTERM)
        check(probe.wait(15) == 0, "the probe shard exits 0 on SIGTERM (rewriting the checkpoint)")

        # Now on its own port, where the learner and the actors look for it.
        back = cluster.start("shard0again", "replay_server",
                             ["--shard_id=0", f"--port={port0}", f"--checkpoint_dir={ckpt}"]
                             + SHARD_FLAGS)
        check(back.address() == addrs[0], f"shard 0 is back on {addrs[0]}")
        r0 = stats_of(cluster, addrs[:1])[0]
        check(counter(r0, "size") >= restored,
              f"restarted again from the probe's checkpoint it holds {counter(r0, 'size')} "
              f">= {restored}")
        wait_until(lambda: (lambda r: counter(r, "samples_total") > counter(r0, "samples_total") + 500
                            and counter(r, "inserts_total") > counter(r0, "inserts_total") + 200)(
                                stats_of(cluster, addrs[:1])[0]), 60,
                   "the learner samples and the actors insert into the restarted shard")
        check(True, "the learner reconnects to the restarted shard and the actors insert again")

        codes = stop_actors(list(actors.values()))
        check(codes == [0, 0], f"the actors exit 0 on SIGTERM: {codes}")
        final = stats_of(cluster, addrs)
        acked = {i: last_acked(a) for i, a in actors.items()}
        held = {i: found(final, i) for i in actors}
        figures["acknowledged per actor"] = acked
        figures["found per actor"] = held
        for i in actors:
            check(held[i] >= acked[i] > 0,
                  f"actor {i}: nothing acknowledged is lost: {held[i]} found >= "
                  f"{acked[i]} acknowledged")
    finally:
        cluster.stop()


# ---------------------------------------------------------------------------------------------
def learner_checkpoint_step(path):
    """(step, version) stored in a learner checkpoint, read with Python's LibTorch."""
    import torch
    m = torch.jit.load(path, map_location="cpu")
    values = {}
    for name, v in list(m.named_buffers()) + list(m.named_parameters()):
        values[name] = v
    step = version = None
    for name in ("step", "agent.step"):
        if name in values:
            step = int(values[name].item())
    for name in ("version",):
        if name in values:
            version = int(values[name].item())
    return step, version, sorted(values)[:20]


def learner_kill(bin_dir, work):
    ckpt = os.path.join(work, "learner_ckpt")
    cluster = Cluster(bin_dir, echo=False)
    try:
        port = free_port()
        learner_flags = [f"--checkpoint_dir={ckpt}", "--checkpoint_interval=100",
                         "--publish_interval=10"]
        learner, actors = start_system(cluster, 1, 2,
                                       learner_flags=learner_flags + [f"--port={port}"])
        addrs = list(cluster.shard_addresses)
        wait_until(lambda: os.path.isdir(ckpt) and os.listdir(ckpt)
                   and counter(stats_of(cluster, addrs)[0], "samples_total") > 32 * 350, 180,
                   "the learner made 350 updates and checkpointed")
        learner.signal(signal.SIGKILL)
        learner.wait(10)
        files = [f for f in os.listdir(ckpt) if not f.endswith(".tmp")]
        path = os.path.join(ckpt, files[0])
        saved = learner_checkpoint_step(path)
        print("learner checkpoint:", saved, flush=True)

        # The learner is gone: actors keep stepping (their inserts reach the shard) with the
        # parameters they have.
        versions = [last_version(a) for a in actors.values()]
        s0 = stats_of(cluster, addrs)[0]
        time.sleep(3)
        s1 = stats_of(cluster, addrs)[0]
        check(counter(s1, "inserts_total") > counter(s0, "inserts_total") + 100,
              "while the learner is down the actors keep stepping and inserting "
              f"({counter(s0, 'inserts_total')} -> {counter(s1, 'inserts_total')})")
        check(counter(s1, "samples_total") == counter(s0, "samples_total"),
              "and nothing samples")
        check(all(a.running() for a in actors.values()), "the actors survive the learner's death")
        check([last_version(a) for a in actors.values()] == versions and min(versions) > 0,
              f"the actors keep their last parameters (versions {versions})")

        again = cluster.start("learner2", "learner",
                              [f"--replay={','.join(addrs)}", f"--port={port}"] + LEARNER_FLAGS
                              + learner_flags)
        line = again.wait_for(lambda l: "resumed from" in l, 120)
        m = re.search(r"at step (\d+), version (\d+)", line)
        step, version = int(m.group(1)), int(m.group(2))
        figures["resumed at step, version"] = (step, version)
        check(step > 0 and step % 100 == 0, f"the learner resumed from a periodic checkpoint: {line}")
        if saved[0] is not None:
            check(step == saved[0], f"at the checkpoint's step {saved[0]}")
        if saved[1] is not None:
            check(version == saved[1], f"with the checkpoint's version {saved[1]}")
        wait_until(lambda: all(last_version(a) > version for a in actors.values()), 60,
                   "the actors receive parameters from the restarted learner")
        check(True, f"the actors receive versions > {version} from the restarted learner")
        codes = stop_actors(list(actors.values()))
        check(codes == [0, 0], f"the actors exit 0: {codes}")
    finally:
        cluster.stop()


def last_version(process):
    v = 0
    for line in process.lines:
        m = re.search(r" version (\d+) ", line)
        if m:
            v = int(m.group(1))
    return v


# ---------------------------------------------------------------------------------------------
def sigterm(bin_dir, work):
    """SIGTERM to each kind of process while the system runs: exit 0 within 5 s, port free."""
    ckpt = os.path.join(work, "sigterm_ckpt")
    os.makedirs(ckpt)
    cluster = Cluster(bin_dir, echo=False)
    try:
        lport = free_port()
        learner, actors = start_system(cluster, 1, 1, shard_flags=[f"--checkpoint_dir={ckpt}"],
                                       learner_flags=[f"--port={lport}",
                                                      f"--checkpoint_dir={os.path.join(work, 'l')}"])
        addrs = list(cluster.shard_addresses)
        wait_until(lambda: counter(stats_of(cluster, addrs)[0], "samples_total") > 1000, 120,
                   "the system runs")
        shard_port = int(addrs[0].rsplit(":", 1)[1])
        # The learner first (the actor and the shard go on without it), then the shard while
        # the actor still writes to it, then the actor with no shard and no learner.
        for name, proc, ports in (("learner", learner, [lport]),
                                  ("replay_server", cluster.processes[0], [shard_port]),
                                  ("actor", actors[0], [])):
            t = time.time()
            proc.signal(signal.SIGTERM)
            code = proc.wait(10)
            took = time.time() - t
            figures[f"{name} SIGTERM exit"] = f"{code} in {took:.2f}s"
            check(code == 0 and took < 5, f"{name} exits 0 within 5 s of SIGTERM "
                                          f"(exit {code}, {took:.2f}s)")
            check(all(port_free(p) for p in ports), f"{name} left no port bound {ports}")
        t = time.time()
        tip = subprocess.Popen([os.path.join(bin_dir, "learner", "train_in_process"),
                                "--max_env_steps=1000000", "--eval_interval=1000000"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        # Its first line comes after the signal handlers are in place (a fixed sleep raced
        # LibTorch's start-up on a loaded machine).
        tip.stdout.readline()
        time.sleep(1)
        t = time.time()
        tip.send_signal(signal.SIGTERM)
        try:
            code = tip.wait(10)
        except subprocess.TimeoutExpired:
            tip.kill()
            code = None
        took = time.time() - t
        figures["train_in_process SIGTERM exit"] = f"{code} in {took:.2f}s"
        check(code == 0 and took < 5, f"train_in_process exits 0 within 5 s of SIGTERM "
                                      f"(exit {code}, {took:.2f}s)")
    finally:
        cluster.stop()


SCENARIOS = {
    "actor_kill": actor_kill,
    "shard_kill": shard_kill,
    "shard_kill_unfrozen": lambda b, w: shard_kill(b, w, frozen=False),
    "learner_kill": learner_kill,
    "sigterm": sigterm,
}


def main():
    bin_dir, scenario = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix=f"softq_{scenario}_", dir=os.environ.get("TEST_TMPDIR"))
    t = time.time()
    try:
        SCENARIOS[scenario](bin_dir, work)
    except Exception as e:  # a timeout or a crash of the harness is a failure, not a hang
        import traceback
        traceback.print_exc()
        failures.append(f"{type(e).__name__}: {e}")
    print(f"{scenario}: figures {json.dumps(figures)}")
    print(f"{scenario}: {len(failures)} failed in {time.time() - t:.1f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
