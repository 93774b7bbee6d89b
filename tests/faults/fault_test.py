"""Fault injection on separate processes on 127.0.0.1: kill -9 and restart an actor, a replay
shard and the learner; SIGTERM every kind of process; a shard with --wal_fsync killed and
restarted. Run by tests/faults/fault_test.sh as `fault_test.py BIN_DIR SCENARIO` with SCENARIO
one of actor_kill, shard_kill, shard_kill_unfrozen, learner_kill, sigterm, wal_fsync_kill.

Nothing acknowledged is lost, checked by identity: every transition acknowledged to a writer
is looked up by its (actor_id, episode_id, step_id) in what the shards hold.
- What was acknowledged: each actor runs with --acked_ids_out and appends the ids of every
  message a shard acknowledges, as the ack arrives (one write(2) per message, so the file of
  an actor killed with -9 still lists what it had been told was stored). A batch re-sent
  after a shard's death is listed once, by the ack that ends it; an id listed twice by one
  process is a failure. wal_fsync_kill writes with `replay_ctl insert`, the test's own
  client, which keeps the same list.
- What the shards hold: `replay_ctl ids` asks a shard for its checkpoint (Checkpoint RPC) and
  reads it back with the replay library: one (episode_id, step_id) per item held, duplicates
  (at-least-once) included. An actor's episode ids carry its actor id (actor/actor.cc:
  actor_id << 40 | episode), so the pair names the actor too.
- Found: an id acknowledged to k processes (a restarted actor reuses its episode ids) must be
  held at least k times; ids held that no one acknowledged (at-least-once duplicates,
  batches stored whose ack was lost) are allowed except where the scenario bounds them.
Other claims use the replay's stats RPC (replay_stats --json: size, per-actor counts,
inserts, samples), checkpoints, exit codes and ports. The learner's "resumed ... at step N,
version V" line is compared with the checkpoint it resumed from. Every wait is bounded;
cluster.stop() ends everything in `finally`.
"""
import collections
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
from cluster import Cluster, Process, free_port  # noqa: E402

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


def replay_ctl(bin_dir, *args, timeout=60):
    out = subprocess.run([os.path.join(bin_dir, "tests", "faults", "replay_ctl"), *args],
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"replay_ctl {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def held_ids(bin_dir, addresses):
    """Counter of (episode_id, step_id) over every item the shards at `addresses` hold now
    (their checkpoints, written and read back by replay_ctl ids)."""
    held = collections.Counter()
    for address in addresses:
        for line in replay_ctl(bin_dir, "ids", address).splitlines():
            episode, step = line.split()
            held[(int(episode), int(step))] += 1
    return held


def acked_ids(path):
    """The ids a writer listed as acknowledged in `path` ("actor episode step" lines): a set
    of (episode_id, step_id). A line not ended by a newline (none expected: each message's
    lines go out in one write) is ignored. Checks that no id is listed twice and that each
    episode id carries the line's actor id."""
    ids = []
    bad_actor = 0
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                actor, episode, step = (int(x) for x in line.split())
                bad_actor += (episode >> 40) != actor
                ids.append((episode, step))
    unique = set(ids)
    if len(unique) != len(ids) or bad_actor:
        check(False, f"{os.path.basename(path)}: {len(ids) - len(unique)} ids listed twice, "
                     f"{bad_actor} with another actor's episode id")
    return unique


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def check_found(what, incarnations, held):
    """Every id acknowledged to each of `incarnations` (sets of ids, one per process) is held
    as many times as processes it was acknowledged to. Returns the number checked."""
    expected = collections.Counter()
    for ids in incarnations:
        expected.update(ids)
    missing = sorted(i for i, n in expected.items() if held[i] < n)
    total = sum(expected.values())
    check(total > 0 and not missing,
          f"{what}: every acknowledged transition is held, by (actor, episode, step): "
          f"{total - len(missing)} of {total} found"
          + (f"; missing e.g. {[(e >> 40, e & ((1 << 40) - 1), s) for e, s in missing[:5]]}"
             if missing else ""))
    return total


def exit_acked(process):
    """The count in an actor's exit line ("N transitions acknowledged"), or None."""
    for line in process.lines:
        m = re.search(r"(\d+) transitions acknowledged", line)
        if m:
            return int(m.group(1))
    return None


SHARD_FLAGS = ["--min_size_to_sample=200", "--capacity=1000000"]
ACTOR_FLAGS = ["--num_envs=2", "--report_interval_s=0.05", "--max_steps_per_second=400"]
LEARNER_FLAGS = ["--device=cpu", "--log_interval_s=0.5", "--eval_interval=0",
                 "--eval_rollouts=1", "--batch_size=32"]


def start_actor(cluster, work, actor_id, name=None):
    """An actor listing what it is acknowledged in work/acked_<name>.txt (p.acked_path)."""
    path = os.path.join(work, f"acked_{name or f'actor{actor_id}'}.txt")
    p = cluster.start_actor(actor_id, cluster.learner_address,
                            ACTOR_FLAGS + [f"--acked_ids_out={path}"])
    p.acked_path = path
    return p


def start_system(cluster, work, shards, actors, learner_flags=(), shard_flags=()):
    cluster.start_shards(shards, SHARD_FLAGS + list(shard_flags))
    learner = cluster.start_learner(LEARNER_FLAGS + list(learner_flags))
    procs = {i: start_actor(cluster, work, i) for i in range(actors)}
    return learner, procs


def stop_actors(actors):
    for a in actors:
        a.signal(signal.SIGTERM)
    return [a.wait(30) for a in actors]


def check_cleanly_stopped_actor(name, process, ids):
    """An actor that exited on SIGTERM listed exactly as many transitions as it counted."""
    n = exit_acked(process)
    check(n == len(ids) and n > 0,
          f"{name}: its --acked_ids_out lists {len(ids)} transitions, its exit line counts {n}")


# ---------------------------------------------------------------------------------------------
def actor_kill(bin_dir, work):
    """kill -9 of actor 1 of 3: every transition it had been told was stored is held by the
    shards (its ids file, read after the kill, against both shards' items); the others and
    the learner go on; a restarted actor with the same id rejoins; at the end every actor's
    acknowledged transitions are held (actor 1's ids, reused by its second process, twice)."""
    ckpt = os.path.join(work, "shard_ckpt")  # for replay_ctl ids
    os.makedirs(ckpt)
    cluster = Cluster(bin_dir, echo=False)
    try:
        learner, actors = start_system(cluster, work, 2, 3,
                                       shard_flags=[f"--checkpoint_dir={ckpt}"])
        addrs = list(cluster.shard_addresses)
        wait_until(lambda: count_lines(actors[1].acked_path) >= 800, 120,
                   "actor 1 acknowledged 800")
        before = stats_of(cluster, addrs)
        actors[1].signal(signal.SIGKILL)
        actors[1].wait(10)
        killed = acked_ids(actors[1].acked_path)
        after_kill = stats_of(cluster, addrs)
        held = held_ids(bin_dir, addrs)
        figures["killed actor: acknowledged (its ids file)"] = len(killed)
        figures["killed actor: items held"] = sum(n for (e, _), n in held.items() if e >> 40 == 1)
        check_found("actor 1, killed with -9", [killed], held)
        f1 = found(after_kill, 1)
        time.sleep(3)
        later = stats_of(cluster, addrs)
        check(found(later, 1) == f1, "nothing more arrives from the dead actor")
        check(all(found(later, i) > found(before, i) for i in (0, 2)),
              "the other actors go on inserting")
        check(sum(counter(r, "samples_total") for r in later)
              > sum(counter(r, "samples_total") for r in after_kill),
              "the learner goes on sampling")
        check(learner.running() and actors[0].running() and actors[2].running(),
              "no other process died")

        again = start_actor(cluster, work, 1, "actor1_restarted")
        wait_until(lambda: count_lines(again.acked_path) > 200, 60,
                   "the restarted actor's transitions are acknowledged")
        check(found(stats_of(cluster, addrs), 1) > f1,
              "a restarted actor (same id) rejoins: its transitions arrive")
        codes = stop_actors([actors[0], again, actors[2]])
        check(codes == [0, 0, 0], f"the actors exit 0 on SIGTERM: {codes}")
        final = held_ids(bin_dir, addrs)
        acked = {}
        for name, p in (("actor 0", actors[0]), ("actor 2", actors[2]),
                        ("actor 1 restarted", again)):
            acked[name] = acked_ids(p.acked_path)
            check_cleanly_stopped_actor(name, p, acked[name])
            check_found(name, [acked[name]], final)
        check_found("actor 1, both processes (the second reuses the first's ids)",
                    [killed, acked["actor 1 restarted"]], final)
        figures["acknowledged (all actors, all processes)"] = (
            len(killed) + sum(len(v) for v in acked.values()))
        figures["items held at the end"] = sum(final.values())
    finally:
        cluster.stop()


# ---------------------------------------------------------------------------------------------
def shard_kill(bin_dir, work, frozen=True):
    """kill -9 shard 0 after its Checkpoint RPC and restart it from its --checkpoint_dir.
    A shard writes every insert to its insert log (replay/insert_log.h) before acknowledging
    it, so the restarted shard holds its last checkpoint plus every insert logged after it.
    frozen: the actors are SIGSTOPped around checkpoint+kill, so nothing is logged after the
    checkpoint and the restarted shard holds exactly the checkpoint's items (the same ids,
    as often) and per-actor counts. Not frozen (shard_kill_unfrozen): the actors keep
    inserting for 1 s between the checkpoint and the kill; the restarted shard holds the
    checkpoint's items and more, and at least what its last stats before the kill reported.
    Either way every transition acknowledged to an actor before the kill is held by the
    restarted shard 0 or by shard 1, and at the end every transition acknowledged at all is
    held. (With --wal=false on the shards the unfrozen scenario fails: the second's
    acknowledgements are lost.)"""
    ckpt = os.path.join(work, "shard_ckpt")
    os.makedirs(ckpt)
    cluster = Cluster(bin_dir, echo=False)
    try:
        learner, actors = start_system(cluster, work, 2, 2,
                                       shard_flags=[f"--checkpoint_dir={ckpt}"])
        addrs = list(cluster.shard_addresses)
        wait_until(lambda: all(counter(r, "samples_total") > 500 and counter(r, "size") > 500
                               for r in stats_of(cluster, addrs)), 120,
                   "both shards filled and sampled")
        if frozen:
            for a in actors.values():
                a.signal(signal.SIGSTOP)
            time.sleep(0.5)
        before = stats_of(cluster, addrs)
        checkpointed = held_ids(bin_dir, addrs[:1])  # the Checkpoint RPC, read back
        written = sum(checkpointed.values())
        last_seen = before[0]
        if not frozen:
            time.sleep(1)  # inserts acknowledged after the checkpoint: in the insert log only
            last_seen = stats_of(cluster, addrs[:1])[0]  # a lower bound of what it held
        shard0 = cluster.processes[0]
        shard0.signal(signal.SIGKILL)
        shard0.wait(10)
        # What the actors had been told was stored when shard 0 died (they keep writing to
        # shard 1 from here on: their later acks are checked at the end).
        acked_at_kill = {i: acked_ids(a.acked_path) for i, a in actors.items()}
        if frozen:
            for a in actors.values():
                a.signal(signal.SIGCONT)
        figures["checkpoint items"] = written
        figures["shard 0 size in its last stats before kill -9"] = counter(last_seen, "size")
        check(written == counter(before[0], "size") or not frozen,
              f"the checkpoint holds the shard's contents ({written} items, "
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
        # what it holds right after restart is exactly what it restored.
        port0 = int(addrs[0].rsplit(":", 1)[1])
        probe = cluster.start("shard0probe", "replay_server",
                              ["--shard_id=0", "--port=0", f"--checkpoint_dir={ckpt}"] + SHARD_FLAGS)
        probe_row = stats_of(cluster, [probe.address()])[0]
        restored_ids = held_ids(bin_dir, [probe.address()])
        restored = sum(restored_ids.values())
        figures["restored size"] = restored
        figures["restored from the insert log (after the checkpoint)"] = restored - written
        if frozen:
            check(restored_ids == checkpointed,
                  f"the restarted shard holds exactly its last checkpoint's items, by id, "
                  f"nothing having been logged after it ({restored} == {written} items)")
            check(per_actor(probe_row) == per_actor(before[0]),
                  f"and its per-actor counts {per_actor(probe_row)}")
        else:
            check(not (checkpointed - restored_ids) and restored > written,
                  f"the restarted shard holds its checkpoint's items, by id, plus the inserts "
                  f"logged after it ({restored} > {written} items)")
            seen = per_actor(last_seen)
            check(restored >= counter(last_seen, "size")
                  and all(per_actor(probe_row).get(i, 0) >= n for i, n in seen.items()),
                  f"everything the shard held in its last stats before kill -9 is restored "
                  f"(size {restored} >= {counter(last_seen, 'size')}, per actor "
                  f"{per_actor(probe_row)} >= {seen})")
        held = restored_ids + held_ids(bin_dir, addrs[1:])
        for i, ids in acked_at_kill.items():
            check_found(f"actor {i}, acknowledged before shard 0's kill -9 (restarted shard 0 "
                        f"+ shard 1)", [ids], held)
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
        final = held_ids(bin_dir, addrs)
        acked = {i: acked_ids(a.acked_path) for i, a in actors.items()}
        figures["acknowledged per actor"] = {i: len(v) for i, v in acked.items()}
        figures["items held per actor"] = {
            i: sum(n for (e, _), n in final.items() if e >> 40 == i) for i in actors}
        for i, a in actors.items():
            check_cleanly_stopped_actor(f"actor {i}", a, acked[i])
            check_found(f"actor {i}, at the end", [acked[i]], final)
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
        learner, actors = start_system(cluster, work, 1, 2,
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
    """SIGTERM to each kind of process while the system runs: exit 0 within 5 s, port free.
    The shard goes while the actor still writes to it: restarted from its --checkpoint_dir
    it holds every transition acknowledged to the actor."""
    ckpt = os.path.join(work, "sigterm_ckpt")
    os.makedirs(ckpt)
    cluster = Cluster(bin_dir, echo=False)
    try:
        lport = free_port()
        learner, actors = start_system(cluster, work, 1, 1,
                                       shard_flags=[f"--checkpoint_dir={ckpt}"],
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
        acked = acked_ids(actors[0].acked_path)
        check_cleanly_stopped_actor("the actor", actors[0], acked)
        again = cluster.start("shard0again", "replay_server",
                              ["--shard_id=0", "--port=0", f"--checkpoint_dir={ckpt}"]
                              + SHARD_FLAGS)
        held = held_ids(bin_dir, [again.address()])
        figures["actor acknowledged"] = len(acked)
        figures["restarted shard holds"] = sum(held.values())
        check_found("the actor, its shard SIGTERMed while it wrote (shard restarted)", [acked],
                    held)
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


# ---------------------------------------------------------------------------------------------
WAL_ACTOR = 7
WAL_BATCH = 16  # transitions per batch of replay_ctl insert


def wal_fsync_kill(bin_dir, work):
    """replay_server --wal_fsync: a shard with it (shard 0) and one without (shard 1), each
    under tests/faults:libfdatasync_count.so (LD_PRELOAD, counts the process's completed
    fdatasync calls), take batches from `replay_ctl insert` (the test's own writer: a
    ReplayWriter with one unacknowledged batch per shard, listing each acknowledged
    transition) until both are killed with -9 mid-stream. Restarted from their
    --checkpoint_dir they hold every acknowledged transition, by id, and nothing else but
    at most the one batch each had in flight, unacknowledged, when it died; every batch
    whole. Shard 0 made one fdatasync per batch it logged (the last one's may not have
    completed before the kill: N-1 or N for N restored batches); shard 1 none."""
    ckpt = os.path.join(work, "wal_ckpt")
    os.makedirs(ckpt)
    shim = os.path.join(bin_dir, "tests", "faults", "libfdatasync_count.so")
    cluster = Cluster(bin_dir, echo=False)
    client = None
    try:
        shards, counts = [], []
        for i in range(2):
            counts.append(os.path.join(work, f"fdatasync_shard{i}.count"))
            fsync = ["--wal_fsync"] if i == 0 else []
            p = Process(f"shard{i}", ["env", f"LD_PRELOAD={shim}",
                                      f"SOFTQ_FDATASYNC_COUNT_FILE={counts[i]}",
                                      cluster.bin["replay_server"], f"--shard_id={i}",
                                      "--port=0", f"--checkpoint_dir={ckpt}"] + fsync
                        + SHARD_FLAGS, echo=False)
            cluster.processes.append(p)
            shards.append(p)
        addrs = [p.address() for p in shards]
        acked_path = os.path.join(work, "acked_replay_ctl.txt")
        client = subprocess.Popen(
            [os.path.join(bin_dir, "tests", "faults", "replay_ctl"), "insert", ",".join(addrs),
             str(WAL_ACTOR), "60", acked_path], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        # Killed mid-stream once shard 0 has synced 20 batches (it stops early then: 1 s
        # without an ack).
        wait_until(lambda: os.path.exists(counts[0]) and os.path.getsize(counts[0]) >= 20
                   and count_lines(acked_path) >= WAL_BATCH * 40, 30,
                   "shard 0 synced 20 batches, 40 acknowledged")
        for p in shards:
            p.signal(signal.SIGKILL)
        for p in shards:
            p.wait(10)
        out, err = client.communicate(timeout=30)
        check(client.returncode == 0, f"replay_ctl insert exits 0 ({err.strip()[-300:]})")
        summary = json.loads(out.strip().splitlines()[-1])
        acked = acked_ids(acked_path)
        syncs = [os.path.getsize(c) if os.path.exists(c) else 0 for c in counts]

        restored = []
        for i in range(2):
            fsync = ["--wal_fsync"] if i == 0 else []
            again = cluster.start(f"shard{i}again", "replay_server",
                                  [f"--shard_id={i}", "--port=0", f"--checkpoint_dir={ckpt}"]
                                  + fsync + SHARD_FLAGS)
            restored.append(held_ids(bin_dir, [again.address()]))
        held = restored[0] + restored[1]
        batches = [{e for e, _ in r} for r in restored]
        acked_batches = {e for e, _ in acked}
        figures["batches handed to the writer"] = summary["batches"]
        figures["transitions acknowledged"] = len(acked)
        figures["restored batches per shard"] = [len(b) for b in batches]
        figures["fdatasync calls per shard"] = syncs
        check_found("replay_ctl insert, both shards killed with -9 mid-stream", [acked], held)
        sent = {(WAL_ACTOR << 40) | b for b in range(summary["batches"])}
        steps = [collections.defaultdict(list) for _ in restored]
        for r, by_batch in zip(restored, steps):
            for (e, s), n in r.items():
                by_batch[e] += [s] * n
        whole = all(sorted(v) == list(range(WAL_BATCH)) for b in steps for v in b.values())
        extra = (batches[0] | batches[1]) - acked_batches
        check(whole and (batches[0] | batches[1]) <= sent and len(extra) <= 2,
              f"and nothing else: every restored batch whole and sent by the writer, "
              f"{len(extra)} unacknowledged (<= 1 in flight per shard)")
        check(len(batches[0]) >= 5 and len(batches[0]) - 1 <= syncs[0] <= len(batches[0]),
              f"the --wal_fsync shard made one fdatasync per logged batch: {syncs[0]} for "
              f"{len(batches[0])} restored batches")
        check(len(batches[1]) >= 5 and syncs[1] == 0,
              f"the shard without it made none: {syncs[1]} for {len(batches[1])} batches")
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.wait(10)
        cluster.stop()


SCENARIOS = {
    "actor_kill": actor_kill,
    "shard_kill": shard_kill,
    "shard_kill_unfrozen": lambda b, w: shard_kill(b, w, frozen=False),
    "learner_kill": learner_kill,
    "sigterm": sigterm,
    "wal_fsync_kill": wal_fsync_kill,
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
