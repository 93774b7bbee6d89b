"""End to end, separate processes on 127.0.0.1: 2 replay shards, 2 actors, 1 learner on the
multi-goal task. Run by tests/python_test.sh with the binaries' folder.

Checks, in order: an actor started before the learner waits, then picks up parameters; a
learner started before any data waits on the rate limiter instead of crashing; actors'
parameter versions advance while they keep stepping; every actor's transitions reach every
shard, and the shards hold what the actors had acknowledged; the learned policy reaches all
four goals, and the learner stopped at its first two consecutive evaluations (each of fresh
rollouts) meeting the criterion, as the demo's does; the learner's checkpoint resumes at the
same step and version; the exported TorchScript sampling network loads in Python and, rolled
out here, reaches the goals too.
"""
import math
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy", "local"))
from cluster import Cluster  # noqa: E402

failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


def actor_reports(process):
    """(env_steps, version) of each report line."""
    out = []
    for line in process.lines:
        m = re.search(r"env steps +(\d+) .* version (\d+)", line)
        if m:
            out.append((int(m.group(1)), int(m.group(2))))
    return out


def learner_evaluations(lines):
    """(update, goals covered, % reaching a goal) of each of the learner's evaluation lines."""
    out = []
    for line in lines:
        m = re.search(r"eval at update (\d+): goals (\d)/4 .*reached (\d+)%", line)
        if m:
            out.append(tuple(int(g) for g in m.groups()))
    return out


def first_solved_pair(evals):
    """Index of the evaluation that completes the first two solved ones in a row, or None."""
    solved = [goals == 4 and reached >= 90 for _, goals, reached in evals]
    return next((i for i in range(1, len(evals)) if solved[i - 1] and solved[i]), None)


def multigoal_rollouts(policy, torch, n=100, seed=0):
    """Goals reached by n rollouts of a TorchScript sampling network, in Python."""
    goals = [(5.0, 0.0), (-5.0, 0.0), (0.0, 5.0), (0.0, -5.0)]
    g = torch.Generator().manual_seed(seed)
    x = (0.1 * torch.randn(n, 2, generator=g)).clamp(-7, 7)
    active = torch.ones(n, dtype=torch.bool)
    counts = [0, 0, 0, 0]
    for _ in range(30):
        with torch.no_grad():
            a = policy(x, torch.randn(n, 2, generator=g)).clamp(-1, 1)
        x = torch.where(active[:, None], (x + a).clamp(-7, 7), x)
        for i in range(n):
            if not active[i]:
                continue
            for k, (gx, gy) in enumerate(goals):
                if math.hypot(x[i, 0].item() - gx, x[i, 1].item() - gy) < 1.0:
                    counts[k] += 1
                    active[i] = False
                    break
    return counts


def main():
    bin_dir = sys.argv[1]
    work = tempfile.mkdtemp(prefix="softq_e2e_", dir=os.environ.get("TEST_TMPDIR"))
    ckpt = os.path.join(work, "learner_ckpt")
    script = os.path.join(work, "policy.pt")
    cluster = Cluster(bin_dir)
    try:
        cluster.start_shards(2, ["--min_size_to_sample=500", "--samples_per_insert=32",
                                 "--error_buffer=6400"])
        # The learner's port must be known before the learner starts: pick a free one.
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        learner_port = s.getsockname()[1]
        s.close()
        learner_address = f"127.0.0.1:{learner_port}"
        actor_flags = ["--num_envs=2", "--report_interval_s=2", "--max_steps_per_second=300"]
        actor0 = cluster.start_actor(0, learner_address, actor_flags)
        actor0.wait_for(lambda l: "waiting for parameters" in l, 60)
        time.sleep(2)
        check(actor0.running(), "an actor started before the learner keeps waiting")
        stats = cluster.stats()
        check(all(int(sh["stats"]["inserts_total"]) == 0 for sh in stats["shards"]),
              "an actor without parameters inserts nothing")

        learner = cluster.start("learner", "learner", [
            f"--replay={','.join(cluster.shard_addresses)}", f"--port={learner_port}",
            "--log_interval_s=0.5", "--eval_interval=1000", "--stop_when_solved",
            "--require_solved", "--max_updates=20000", f"--checkpoint_dir={ckpt}",
            "--checkpoint_interval=1000", f"--export_torchscript={script}"])
        learner.address(120)
        actor0.wait_for(lambda l: "got parameters version" in l, 60)
        check(True, "the waiting actor picked up the learner's parameters")
        line = learner.wait_for(lambda l: "waiting:" in l, 60)
        check(learner.running(), "a learner started before enough data waits on the rate limiter")
        wait = re.search(r"replay wait +(\d+)%", line or "")
        check(wait is not None and int(wait.group(1)) >= 90,
              f"and its progress line says it spends its time waiting for the replay: {line}")

        actor1 = cluster.start_actor(1, learner_address, actor_flags)
        code = learner.wait(600)
        check(code == 0, f"the learner learned a policy reaching all four goals (exit {code})")
        final = [l for l in learner.lines if "final:" in l]
        print("learner", final[-1] if final else "(no final line)")
        evals = learner_evaluations(learner.lines)
        check(len(evals) >= 2 and first_solved_pair(evals) == len(evals) - 1,
              "the learner stopped at its first two solved evaluations in a row, not at the "
              f"first solved one: {evals[-3:]}")
        check(bool(final) and "solved 2 of 2 in a row" in final[-1],
              f"its final line says so: {final[-1] if final else None}")

        for name, actor in (("actor 0", actor0), ("actor 1", actor1)):
            reports = actor_reports(actor)
            steps = [r[0] for r in reports]
            versions = [r[1] for r in reports]
            check(len(reports) >= 3 and steps == sorted(steps) and len(set(steps)) == len(steps)
                  and versions[-1] > versions[0] and versions == sorted(versions),
                  f"{name} kept stepping while its parameter version advanced: {reports[:8]}")

        # Stop the actors (they flush), then compare with the shards.
        for actor in (actor0, actor1):
            actor.signal(15)
            check(actor.wait(30) == 0, f"{actor.name} exits 0 on SIGTERM")
            # With the learner gone the shards' rate limiter holds the last inserts: the
            # actor says so calmly instead of reporting a flush error.
            errors = [l for l in actor.lines if "replay flush:" in l]
            check(not errors, f"{actor.name}'s final flush reports no error: {errors}")
        acked = sum(int(re.search(r"(\d+) transitions acknowledged", l).group(1))
                    for a in (actor0, actor1) for l in a.lines if "transitions acknowledged" in l)
        stats = cluster.stats()
        inserted = sum(int(sh["stats"]["inserts_total"]) for sh in stats["shards"])
        for sh in stats["shards"]:
            per_actor = {int(a.get("actor_id", 0)): int(a["inserted"]) for a in sh["stats"]["per_actor"]}
            check(per_actor.get(0, 0) > 0 and per_actor.get(1, 0) > 0,
                  f"shard {sh['stats']['shard_id']} holds transitions of both actors: {per_actor}")
        check(inserted >= acked > 0,
              f"the shards hold every acknowledged transition ({inserted} inserted >= {acked} acked)")

        m = re.search(r"checkpoint at step (\d+), version (\d+)",
                      "\n".join(learner.lines))
        check(m is not None, "the learner checkpointed on exit")
        if m:
            step, version = m.group(1), m.group(2)
            again = cluster.start("learner2", "learner", [
                f"--replay={','.join(cluster.shard_addresses)}", "--port=0",
                f"--checkpoint_dir={ckpt}", f"--max_updates={step}", "--eval_rollouts=10"])
            line = again.wait_for(lambda l: "resumed from" in l or "final:" in l, 120)
            check(f"at step {step}, version {version}" in line,
                  f"a restarted learner resumes at step {step}, version {version}: {line}")
            check(again.wait(60) == 0, "the resumed learner exits cleanly")

        import torch
        policy = torch.jit.load(script)
        counts = multigoal_rollouts(policy, torch)
        check(sum(c >= 5 for c in counts) >= 3 and sum(counts) >= 70,
              f"the exported TorchScript policy, rolled out in Python, reaches the goals: {counts}")
    finally:
        codes = cluster.stop()
        print("exit codes", codes)
    check(all(c == 0 for n, c in codes.items() if n.startswith("shard")),
          "the shards exit 0 on SIGTERM")
    print(f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
