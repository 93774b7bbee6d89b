"""Draws a Fig. 3-style plot of multi-goal rollouts: trajectories over the reward landscape
(-min_g ||x - g||^2), goals marked. Usage: plot_multigoal.py ROLLOUTS.csv OUT.png [TITLE]
Reads the CSV written by the trainer or learner ("rollout,step,x,y")."""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

GOALS = [(5, 0), (-5, 0), (0, 5), (0, -5)]


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: plot_multigoal.py ROLLOUTS.csv OUT.png [TITLE]")
    paths = defaultdict(list)
    with open(sys.argv[1]) as f:
        for row in csv.DictReader(f):
            paths[int(row["rollout"])].append((float(row["x"]), float(row["y"])))
    xs = np.linspace(-7, 7, 200)
    gx, gy = np.meshgrid(xs, xs)
    reward = -np.min([(gx - a) ** 2 + (gy - b) ** 2 for a, b in GOALS], axis=0)
    fig, ax = plt.subplots(figsize=(6, 6))
    contour = ax.contourf(gx, gy, reward, levels=30, cmap="viridis")
    fig.colorbar(contour, ax=ax, fraction=0.046, label="position reward")
    for path in paths.values():
        p = np.array(path)
        ax.plot(p[:, 0], p[:, 1], color="white", linewidth=0.7, alpha=0.8)
        ax.plot(p[-1, 0], p[-1, 1], "o", color="red", markersize=2)
    for a, b in GOALS:
        ax.add_patch(plt.Circle((a, b), 1.0, fill=False, color="orange", linewidth=2))
    ax.set_xlim(-7, 7)
    ax.set_ylim(-7, 7)
    ax.set_aspect("equal")
    ax.set_title(sys.argv[3] if len(sys.argv) > 3 else f"{len(paths)} rollouts of f_phi")
    fig.savefig(sys.argv[2], dpi=110, bbox_inches="tight")
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
