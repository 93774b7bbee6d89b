"""A user's own robot on the distributed system by flags alone: an MJCF model written here
(a puck sliding on a plane, turned by a hinge: none of the project's models), trained with
deploy/local/launch.py --env=mjcf --env_config=model=PATH,... (1 shard, 1 actor, the
learner: separate processes on 127.0.0.1), as README.md's "Environments" shows. Checks that
every process exits 0, the learner sized its networks from the model (observation 4 = the
hinge angle and 3 velocities; action 3), trained and evaluated it, and exported its policy;
and that a model that does not load, or a body it lacks, stops the launch with one line
naming it. Run by tests/python_test.sh with the binaries' folder.
"""
import os
import re
import subprocess
import sys
import tempfile

MODEL = """<mujoco model="puck">
  <option timestep="0.01"/>
  <worldbody>
    <geom name="floor" type="plane" size="20 20 0.1"/>
    <body name="puck" pos="0 0 0.1">
      <joint name="x" type="slide" axis="1 0 0"/>
      <joint name="y" type="slide" axis="0 1 0"/>
      <joint name="turn" type="hinge" axis="0 0 1"/>
      <geom type="cylinder" size="0.2 0.05" mass="1" contype="0" conaffinity="0"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="x" ctrllimited="true" ctrlrange="-1 1" gear="5"/>
    <motor joint="y" ctrllimited="true" ctrlrange="-1 1" gear="5"/>
    <motor joint="turn" ctrllimited="true" ctrlrange="-1 1" gear="1"/>
  </actuator>
</mujoco>
"""

failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        failures.append(what)


def launch(bin_dir, out, env_config, max_updates=300):
    launcher = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy",
                            "local", "launch.py")
    argv = ["/usr/bin/python3", launcher, f"--bin_dir={bin_dir}", "--shards=1", "--actors=1",
            "--envs_per_actor=2", f"--max_updates={max_updates}", f"--out={out}",
            "--env=mjcf", f"--env_config={env_config}"]
    print("run:", " ".join(argv[1:]), flush=True)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    print(p.stdout[-3000:], p.stderr[-2000:], sep="\n", flush=True)
    return p


def main():
    bin_dir = sys.argv[1]
    work = tempfile.mkdtemp(prefix="softq_own_model_", dir=os.environ.get("TEST_TMPDIR"))
    model = os.path.join(work, "puck.xml")
    with open(model, "w") as f:
        f.write(MODEL)
    config = (f"model={model},body=puck,max_steps=50,velocity=x,velocity_weight=1,"
              "ctrl_cost=0.01")

    out = os.path.join(work, "run")
    p = launch(bin_dir, out, config)
    check(p.returncode == 0, f"launch exits 0 (got {p.returncode})")
    check("launch: mjcf trained for 300 updates" in p.stdout,
          "the launcher reports the run trained its updates")
    final = re.search(r"learner: final: (\d+) updates .* return (-?[\d.]+) \+- ([\d.]+) over "
                      r"(\d+) rollouts", p.stdout)
    check(final is not None and int(final.group(1)) == 300,
          f"the learner's final line: 300 updates and an evaluation return: "
          f"{final.group(0) if final else None}")
    check(re.search(r"exit codes \{'actor0': 0, 'learner': 0, 'shard0': 0\}", p.stdout)
          is not None, "every process exits 0")
    exported = os.path.join(out, "sampling_network.pt")
    check(os.path.exists(exported) and os.path.getsize(exported) > 0,
          "the learner exported the trained sampling network")
    # The networks were sized from the model: forward(observations, noise) takes the
    # observation 4 (the hinge angle and 3 velocities; the slides are the root's x and y,
    # left out) and noise of the action's size 3, and gives 3 actions; a 5-wide observation
    # does not fit it.
    shapes = subprocess.run(
        ["/usr/bin/python3", "-c",
         "import sys, torch; m = torch.jit.load(sys.argv[1]);"
         "print(list(m(torch.zeros(2, 4), torch.zeros(2, 3)).shape));"
         "print('5 fits' if m(torch.zeros(2, 5), torch.zeros(2, 3)) is not None else '')",
         exported],
        capture_output=True, text=True, timeout=120)
    print(shapes.stdout, shapes.stderr[-500:], flush=True)
    check(shapes.stdout.splitlines()[:1] == ["[2, 3]"] and "5 fits" not in shapes.stdout,
          f"the exported network takes observation 4 and noise 3, gives 3 actions: "
          f"{shapes.stdout.splitlines()}")

    for bad, named in [(config.replace(model, model + ".missing"), model + ".missing"),
                       (config.replace("body=puck", "body=wheel"), "wheel")]:
        p = launch(bin_dir, os.path.join(work, "bad"), bad, max_updates=10)
        output = p.stdout + p.stderr
        lines = [l for l in output.splitlines() if l.startswith("[learner]") and named in l]
        check(p.returncode != 0 and len(lines) == 1 and "Traceback" not in output,
              f"a bad model ({named}) stops the launch, the learner's one line naming it: "
              f"{lines[:1]}")
    print(f"own model: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
