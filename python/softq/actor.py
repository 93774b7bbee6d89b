"""A softq actor for Python environments with the Gymnasium API.

  python3 -m softq.actor --env=MODULE:CALLABLE --replay=HOST:PORT,... --learner=HOST:PORT \
      --actor_id=N --num_envs=N

CALLABLE() returns one environment: reset(seed=...) -> (obs, info), step(action) -> (obs,
reward, terminated, truncated, info), observation_space and action_space Box-like (shape,
low, high). Observations are flattened to float32; the policy's actions in [-1, 1] are
rescaled to the action space's bounds; `terminated` is a terminal (no bootstrap),
`truncated` a time-out. Everything but the environments is the C++ actor (actor/actor.h)
through the module _softq_actor: the sampling network, the learner's parameters (picked up
between steps), the replay writer (batches spread over the shards, acknowledged, bounded in
flight, re-sent to a live shard when one dies), the transition ids (actor, episode, step).
Waits for the first parameters, reports like actor_main every --report_interval_s
(optionally as Prometheus metrics), and on SIGTERM flushes what is queued and exits 0. An
environment that raises, returns NaN/inf or a wrong shape, or has no Box spaces: one line
naming it, the step and the field; then what is queued is flushed and the actor exits 1.
Bad flags: one line, exit 2. --tls_ca, --tls_cert, --tls_key, --auth_token_file as the C++
binaries take them: all four, mutual TLS and the job's token on every call (and on /metrics);
none, insecure mode (said at start); some, or a bad file: one line naming the flag, exit 2.
Do not import torch in this process (two LibTorch copies).
"""
import argparse
import importlib
import math
import re
import sys
import time

import numpy as np

PROG = "softq.actor"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (as the C++ binaries' flags)
        sys.stderr.write(f"{PROG}: {message} (--help lists the flags)\n")
        sys.exit(2)


class FlagError(Exception):
    pass


def _address(text):
    return re.fullmatch(r"[A-Za-z0-9_.\-\[\]:]+:\d{1,5}", text) is not None


def parse_flags(argv):
    p = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--env", required=True,
                   help="MODULE:CALLABLE returning one Gymnasium-style environment")
    p.add_argument("--replay", required=True, help="comma-separated host:port of the shards")
    p.add_argument("--learner", required=True, help="host:port of the learner")
    p.add_argument("--actor_id", type=int, default=0, help="this actor's id, in [0, 2^31)")
    p.add_argument("--num_envs", type=int, default=4, help="environments stepped together")
    p.add_argument("--steps_per_write", type=int, default=16,
                   help="env steps gathered into one replay message (x num_envs transitions)")
    p.add_argument("--max_in_flight_batches", type=int, default=8,
                   help="replay batches per shard not yet acknowledged before the actor waits")
    p.add_argument("--hidden", default="128,128", help="hidden widths of the sampling network")
    p.add_argument("--deterministic_policy", action="store_true",
                   help="act with f(0; s) (the DDPG baseline)")
    p.add_argument("--action_noise", type=float, default=0.0,
                   help="std of Gaussian noise added to each action in [-1, 1]")
    p.add_argument("--max_env_steps", type=int, default=0,
                   help="stop after this many env steps (0: until SIGTERM)")
    p.add_argument("--report_interval_s", type=float, default=5.0)
    p.add_argument("--metrics_port", type=int, default=-1,
                   help="Prometheus /metrics port (0: any free, -1: off)")
    p.add_argument("--metrics_host", default="127.0.0.1")
    p.add_argument("--seed", type=int, default=0, help="random seed (combined with --actor_id)")
    for name, text in [("tls_ca", "PEM CA certificate(s) of the job"),
                       ("tls_cert", "PEM certificate this actor presents (softq-job)"),
                       ("tls_key", "PEM private key of --tls_cert"),
                       ("auth_token_file", "file holding the job's secret token")]:
        p.add_argument(f"--{name}", default="",
                       help=text + " (all four: secure mode; none: insecure)")
    p.add_argument("--initial_policy", choices=["learner", "local"], default="learner",
                   help="learner: wait for the learner's first parameters before stepping; "
                        "local: step at once with this actor's own randomly initialised "
                        "network (version 0) until they arrive (a learner on --env=external "
                        "without sizes reads them from the first stored batch)")
    p.add_argument("--acked_ids_out", default="",
                   help="file listing every acknowledged transition, 'actor episode step' "
                        "per line (for tests)")
    args = p.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", args.env):
        p.error(f"--env={args.env}: expected MODULE:CALLABLE, e.g. "
                "softq.examples.multigoal:make")
    shards = [s for s in args.replay.split(",") if s]
    if not shards or not all(_address(s) for s in shards):
        p.error(f"--replay={args.replay}: expected host:port,host:port,...")
    if not _address(args.learner):
        p.error(f"--learner={args.learner}: expected host:port")
    for name, lo, hi in [("actor_id", 0, 2**31 - 1), ("num_envs", 1, 4096),
                         ("steps_per_write", 1, 10000), ("max_in_flight_batches", 1, 1024),
                         ("metrics_port", -1, 65535), ("max_env_steps", 0, 2**62)]:
        v = getattr(args, name)
        if not lo <= v <= hi:
            p.error(f"--{name}={v}: must be in [{lo}, {hi}]")
    if not 0.0 <= args.action_noise <= 10.0:
        p.error(f"--action_noise={args.action_noise}: must be in [0, 10]")
    if not 0.01 <= args.report_interval_s <= 3600:
        p.error(f"--report_interval_s={args.report_interval_s}: must be in [0.01, 3600]")
    try:
        args.hidden = [int(w) for w in args.hidden.split(",")]
        if not args.hidden or min(args.hidden) < 1:
            raise ValueError
    except ValueError:
        p.error(f"--hidden={args.hidden}: expected positive widths, e.g. 128,128")
    return args


def load_factory(spec):
    module_name, attr = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001: the user's module, any error
        raise FlagError(f"--env={spec}: cannot import {module_name}: "
                        f"{type(e).__name__}: {e}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise FlagError(f"--env={spec}: {module_name} has no callable {attr}")
    return factory


def box_of(env, name, field):
    """(shape, low, high) of env.<field>, flat float arrays; ValueError unless Box-like."""
    space = getattr(env, field, None)
    if space is None or not all(hasattr(space, a) for a in ("shape", "low", "high")):
        kind = type(space).__name__ if space is not None else "missing"
        raise ValueError(f"{name}: {field} is {kind}, not a Box (shape, low, high)")
    try:
        shape = tuple(int(d) for d in space.shape)
        size = int(np.prod(shape)) if shape else 1
        low = np.broadcast_to(np.asarray(space.low, np.float64), shape).reshape(-1)
        high = np.broadcast_to(np.asarray(space.high, np.float64), shape).reshape(-1)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: {field}: shape {getattr(space, 'shape', None)} with its "
                         f"low and high: {e}") from None
    if size < 1:
        raise ValueError(f"{name}: {field} has shape {shape}: no values")
    return shape, size, low, high


def check_spaces(env, name):
    """(observation size, action shape, action low, action high) of `env`."""
    _, obs_size, _, _ = box_of(env, name, "observation_space")
    act_shape, _, low, high = box_of(env, name, "action_space")
    bad = [i for i in range(len(low))
           if not (math.isfinite(low[i]) and math.isfinite(high[i]) and low[i] <= high[i])]
    if bad:
        i = bad[0]
        raise ValueError(f"{name}: action_space bound {i} is [{low[i]}, {high[i]}]: "
                         "actions need finite bounds, low <= high")
    return obs_size, act_shape, low, high


def env_config_of(spec):
    """`--env_config` for a learner on `--env=external` training the environment MODULE:CALLABLE
    names: "observation_dim=O,action_dim=A" of one instance (ValueError, one line, if its
    spaces are not Box; FlagError if it does not load)."""
    env = load_factory(spec)()
    obs_size, act_shape, _, _ = check_spaces(env, spec)
    return f"observation_dim={obs_size},action_dim={int(np.prod(act_shape))}"


def publish_metrics(metrics, env_steps, rate, mean_return, episodes, version, acknowledged):
    """The actor's series (actor_main's too): set when the endpoint starts, so that a scrape
    before the first report finds them, and at every report."""
    for name, value, help_text in [
            ("softq_actor_env_steps_total", env_steps,
             "environment steps taken, over all of the actor's envs"),
            ("softq_actor_env_steps_per_second", rate,
             "environment steps per second since the last report"),
            ("softq_actor_episode_return", mean_return,
             "mean return of the episodes finished since the last report"),
            ("softq_actor_episodes_total", episodes, "episodes finished"),
            ("softq_actor_parameter_version", version,
             "version of the sampling network's parameters in use"),
            ("softq_actor_transitions_acknowledged_total", acknowledged,
             "transitions the replay shards acknowledged")]:
        metrics.set(name, float(value), help_text)


def run(args, core):
    tag = f"actor {args.actor_id}: "
    core.install_shutdown_handlers()
    print(tag + core.configure_torch_threads(), flush=True)
    try:
        security = core.load_security(args.tls_ca, args.tls_cert, args.tls_key,
                                      args.auth_token_file)
    except ValueError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        return 2
    try:
        factory = load_factory(args.env)
    except FlagError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        return 2
    envs = []
    for i in range(args.num_envs):
        name = f"{args.env} #{i}"
        try:
            env = factory()
        except Exception as e:  # noqa: BLE001
            print(f"{tag}{name}: creating it raised {type(e).__name__}: {e}",
                  file=sys.stderr, flush=True)
            return 1
        try:
            spec = check_spaces(env, name)
            if envs and (spec[0], spec[1]) != (first[0], first[1]):
                raise ValueError(f"{name}: observation size {spec[0]} and action shape "
                                 f"{spec[1]} differ from #0's {first[0]}, {first[1]}")
        except ValueError as e:
            print(tag + str(e), file=sys.stderr, flush=True)
            return 1
        if not envs:
            first = spec
        envs.append(env)
    obs_size, act_shape, low, high = first

    metrics = None
    if args.metrics_port >= 0:
        try:
            metrics = core.Metrics.start(args.metrics_host, args.metrics_port, security)
        except (ValueError, RuntimeError) as e:
            sys.stderr.write(f"{PROG}: --metrics_port: {e}\n")
            return 2
        publish_metrics(metrics, 0, 0.0, 0.0, 0, 0, 0)  # until the first report
        print(f"{tag}metrics on port {metrics.port}", flush=True)
    try:
        actor = core.Actor(envs, args.env, obs_size, list(act_shape), low.tolist(),
                           high.tolist(), args.replay, args.learner, args.actor_id,
                           args.hidden, seed=args.seed, steps_per_write=args.steps_per_write,
                           max_in_flight_batches=args.max_in_flight_batches,
                           deterministic=args.deterministic_policy,
                           action_noise=args.action_noise, acked_ids_out=args.acked_ids_out,
                           security=security)
    except ValueError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        return 2
    if not security.secure:
        sys.stderr.write(core.insecure_warning(PROG) + "\n")
        sys.stderr.flush()
    waiting = (f"waiting for parameters from {args.learner}" if args.initial_policy == "learner"
               else f"acting with its own initial network until {args.learner}'s arrive")
    print(f"{tag}{args.num_envs} x {args.env}: observation {obs_size}, action "
          f"{int(np.prod(act_shape))}; {waiting}", flush=True)

    def network_mismatch():
        m = actor.network_mismatch()
        if m:
            print(f"{tag}the learner's sampling network does not fit this actor's ({m}): run "
                  "the learner with this environment's sizes and the actors' --hidden",
                  file=sys.stderr, flush=True)
        return bool(m)

    announced = False
    if args.initial_policy == "learner":
        while not actor.wait_for_parameters(1.0):
            if core.shutdown_requested():
                return 0
            if network_mismatch():
                return 1
        print(f"{tag}got parameters version {actor.parameter_version}", flush=True)
        announced = True

    start = last_report = time.monotonic()
    last_steps = 0
    returns = []
    exit_code = 0
    while not core.shutdown_requested():
        if args.max_env_steps and actor.env_steps >= args.max_env_steps:
            break
        try:
            if not actor.step():
                break  # shutdown while the replay pushed back
        except (ValueError, RuntimeError) as e:
            print(f"{tag}step failed: {e}", file=sys.stderr, flush=True)
            exit_code = 1
            break
        returns.extend(actor.take_episode_returns())
        if not announced and actor.parameter_version > 0:
            print(f"{tag}got parameters version {actor.parameter_version}", flush=True)
            announced = True
        now = time.monotonic()
        if now - last_report >= args.report_interval_s:
            if network_mismatch():
                exit_code = 1
                break
            rate = (actor.env_steps - last_steps) / (now - last_report)
            mean_return = sum(returns) / len(returns) if returns else 0.0
            print(f"{tag}env steps {actor.env_steps:8d}  {rate:7.1f} steps/s  episodes "
                  f"{actor.episodes:6d}  return {mean_return:7.1f}  version "
                  f"{actor.parameter_version}  learner step {actor.latest_learner_step}  "
                  f"acked {actor.acknowledged}  waits {actor.waits}", flush=True)
            if metrics is not None:
                publish_metrics(metrics, actor.env_steps, rate, mean_return, actor.episodes,
                                actor.parameter_version, actor.acknowledged)
            returns.clear()
            last_report, last_steps = now, actor.env_steps
    error, note = actor.flush(2.0)
    if error:
        print(f"{tag}replay flush: {error}", file=sys.stderr, flush=True)
    elif note:
        print(tag + note, flush=True)
    print(f"{tag}stopped after {actor.env_steps} env steps, {actor.acknowledged} transitions "
          f"acknowledged, {actor.resent_batches} batches re-sent after a shard went away "
          f"({time.monotonic() - start:.1f} s)", flush=True)
    acked_error = actor.acked_ids_error()
    if acked_error:
        print(f"{tag}--acked_ids_out: {acked_error}", file=sys.stderr, flush=True)
        exit_code = 1
    del actor
    return exit_code


def main(argv=None):
    args = parse_flags(sys.argv[1:] if argv is None else argv)
    try:
        from softq import _softq_actor as core
    except ImportError as e:
        sys.stderr.write(f"{PROG}: the module _softq_actor is not built ({e}): "
                         "bazel build //python/softq:_softq_actor.so\n")
        return 1
    return run(args, core)


if __name__ == "__main__":
    sys.exit(main())
