"""Malformed flags on every binary: an unknown flag, a value that does not parse and a value
out of range each give exactly one line on stderr that names the flag, and exit status 2,
before any port is opened or any work starts. Run by tests/faults/fault_test.sh as
`bad_flags_test.py BIN_DIR`.
"""
import concurrent.futures
import os
import subprocess
import sys

# binary -> flags a well-formed command line needs (so the bad flag is the first problem).
REQUIRED = {
    "replay/replay_server": [],
    "replay/replay_stats": ["--shards=127.0.0.1:1"],
    "learner/learner_main": ["--replay=127.0.0.1:1"],
    "actor/actor_main": ["--replay=127.0.0.1:1", "--learner=127.0.0.1:2"],
    "learner/train_in_process": [],
}
# binary -> (flag, unparsable value, out-of-range value)
CASES = {
    "replay/replay_server": [("port", "abc", "70000"), ("capacity", "-5", "0"),
                             ("priority_exponent", "x", "1.5"), ("sampler", None, "lifo"),
                             ("shard_id", None, "a/b"), ("max_abs_observation", "big", "0"),
                             ("max_abs_reward", "x", "1e39"), ("max_tracked_actors", "x", "0"),
                             ("max_insert_streams", "x", "0"), ("max_waiting_calls", "many", "0")],
    "replay/replay_stats": [("timeout_ms", "soon", "0"), ("shards", None, "nohost")],
    "learner/learner_main": [("port", "abc", "-1"), ("batch_size", "1e", "0"),
                             ("device", None, "tpu"), ("discount", "x", "2"),
                             ("replay", None, "127.0.0.1:99999"), ("cuda_graph", "maybe", None),
                             ("cuda_graph_streams", "two", "3"),
                             ("fused_kernels", "maybe", None),
                             ("kernel_update_ratio", "half", "0.01"),
                             ("max_nonfinite_updates", "many", "0"),
                             ("prioritized", "maybe", None),
                             ("priority_epsilon", "tiny", "0"),
                             ("importance_beta", "x", "1.5"),
                             ("importance_beta_updates", "x", "-1"),
                             ("priority_queue", "x", "0"),
                             ("anneal_updates", "many", "-1"),
                             ("final_alpha", "tiny", "0"),
                             ("anneal_particles", "maybe", None)],
    "actor/actor_main": [("num_envs", "four", "0"), ("actor_id", "x", "-3"),
                         ("hidden", None, "128,-1"), ("learner", None, "nocolon")],
    "learner/train_in_process": [("max_env_steps", "many", "-1"), ("batch_size", "x", "0"),
                                 ("torch_threads", "x", "0")],
}

failures = []
jobs = []  # (binary, argv, flag): every command line, run two at a time at the end


def check(binary, argv, flag):
    jobs.append((binary, argv, flag))


def run(job):
    binary, argv, flag = job
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    except subprocess.TimeoutExpired:
        failures.append(f"{' '.join(argv[1:])}: did not exit within 60 s")
        print(f"FAIL {binary} {argv[1:]}: hangs", flush=True)
        return
    lines = p.stderr.splitlines()
    ok = p.returncode == 2 and len(lines) == 1 and f"--{flag}" in lines[0]
    print(f"{'ok  ' if ok else 'FAIL'} {binary} {' '.join(argv[1:])} -> exit {p.returncode}, "
          f"stderr {lines}", flush=True)
    if not ok:
        failures.append(f"{binary} {argv[1:]}: exit {p.returncode}, stderr {lines}")


def main():
    bin_dir = sys.argv[1]
    for binary, cases in CASES.items():
        path = os.path.join(bin_dir, binary)
        base = [path] + REQUIRED[binary]
        check(binary, base + ["--no_such_flag=1"], "no_such_flag")
        check(binary, base + ["--no_such_flag"], "no_such_flag")
        for flag, bad, out_of_range in cases:
            if bad is not None:
                check(binary, base + [f"--{flag}={bad}"], flag)
            if out_of_range is not None:
                check(binary, base + [f"--{flag}={out_of_range}"], flag)
    # A flag that is fine alone but not with another: a CUDA graph asked for with the learner
    # on the CPU (the default, auto, takes a graph only on a GPU).
    learner = [os.path.join(bin_dir, "learner/learner_main")] + REQUIRED["learner/learner_main"]
    check("learner/learner_main", learner + ["--device=cpu", "--cuda_graph=true"], "cuda_graph")
    # Fine-tuning's annealing: a CUDA graph fixes the update's reward scale and particle
    # count (the line names both flags); DDPG has no temperature; the final alpha above the
    # starting one (1 / --reward_scale = 10).
    check("learner/learner_main", learner + ["--anneal_updates=100", "--cuda_graph=true"],
          "anneal_updates")
    check("learner/learner_main", learner + ["--anneal_updates=100", "--cuda_graph=true"],
          "cuda_graph")
    check("learner/learner_main", learner + ["--anneal_updates=100", "--algorithm=ddpg"],
          "anneal_updates")
    check("learner/learner_main", learner + ["--anneal_updates=100", "--final_alpha=20"],
          "final_alpha")
    # An actor's writes larger than a shard takes in one message; a list where one learner goes.
    actor = [os.path.join(bin_dir, "actor/actor_main")] + REQUIRED["actor/actor_main"]
    check("actor/actor_main", actor + ["--num_envs=4096", "--steps_per_write=300"],
          "steps_per_write")
    check("actor/actor_main", actor + ["--learner=127.0.0.1:2,127.0.0.1:3"], "learner")
    # The environment by name and its parameters (env/registry.h), on every binary that
    # builds one: an unknown name, a key it does not take, a bad value, a malformed item.
    for binary in ("actor/actor_main", "learner/learner_main", "learner/train_in_process"):
        base = [os.path.join(bin_dir, binary)] + REQUIRED[binary]
        check(binary, base + ["--env=cartpole"], "env")
        check(binary, base + ["--env=multigoal", "--env_config=layout=u"], "env_config")
        check(binary, base + ["--env=swimmer_target", "--env_config=target_x=east"],
              "env_config")
        check(binary, base + ["--env=swimmer_speed", "--env_config=max_steps=0"], "env_config")
        check(binary, base + ["--env=swimmer_speed", "--env_config=max_steps"], "env_config")
    # external (a task only Python actors step): both sizes or neither; no C++ actor or
    # in-process trainer steps it.
    check("learner/learner_main", learner + ["--env=external",
                                             "--env_config=observation_dim=3"], "env_config")
    check("actor/actor_main", actor + ["--env=external"], "env")
    check("learner/train_in_process",
          [os.path.join(bin_dir, "learner/train_in_process")]
          + REQUIRED["learner/train_in_process"] + ["--env=external"], "env")
    # A table larger than this machine's memory (or its container's limit), refused at start.
    shard = [os.path.join(bin_dir, "replay/replay_server")]
    check("replay/replay_server",
          shard + ["--observation_dim=100", "--action_dim=2", "--capacity=1000000000000"],
          "capacity")
    check("replay/replay_server",
          shard + ["--sampler=prioritized", "--capacity=18446744073709551615"], "capacity")
    # Each run is mostly a process loading LibTorch: two at a time use both cores of a small
    # machine.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(run, jobs))
    print(f"bad flags: {len(jobs)} command lines, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
