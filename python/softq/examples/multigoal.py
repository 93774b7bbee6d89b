"""The paper's multi-goal point mass (Haarnoja et al. 2017, Fig. 3) with the Gymnasium API,
in numpy: the same task as the C++ `multigoal` environment (env/multigoal.h), so Python and
C++ actors can feed one learner, and the learner's own `--env=multigoal` evaluation applies.

A point in the plane, x' = clip(x + a, -7, 7), a in [-1, 1]^2; four goals at (+-5, 0),
(0, +-5). Reward -30 |a|^2 - min_g |x - g|^2, +10 and terminated within 1 of a goal;
truncated after 30 steps. Start: N(0, 0.1^2) per coordinate.

  python3 -m softq.actor --env=softq.examples.multigoal:make ...
"""
import numpy as np


class Box:
    """A Box space as Gymnasium's: shape, low, high, dtype (duck-typed, no gymnasium)."""

    def __init__(self, low, high, shape, dtype=np.float32):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.low = np.broadcast_to(np.asarray(low, self.dtype), self.shape).copy()
        self.high = np.broadcast_to(np.asarray(high, self.dtype), self.shape).copy()


class MultiGoal:
    GOALS = np.array([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]], np.float32)
    BOUND, GOAL_RADIUS, GOAL_REWARD, ACTION_COST, MAX_STEPS = 7.0, 1.0, 10.0, 30.0, 30

    def __init__(self):
        self.observation_space = Box(-self.BOUND, self.BOUND, (2,))
        self.action_space = Box(-1.0, 1.0, (2,))
        self._rng = np.random.default_rng()
        self._x = np.zeros(2, np.float32)
        self._steps = 0

    def reset(self, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._x = np.clip(0.1 * self._rng.standard_normal(2), -self.BOUND,
                          self.BOUND).astype(np.float32)
        self._steps = 0
        return self._x.copy(), {}

    def step(self, action):
        a = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
        self._x = np.clip(self._x + a, -self.BOUND, self.BOUND).astype(np.float32)
        self._steps += 1
        d2 = ((self.GOALS - self._x) ** 2).sum(axis=1)
        reward = -self.ACTION_COST * float(a @ a) - float(d2.min())
        terminated = bool(np.sqrt(d2.min()) < self.GOAL_RADIUS)
        if terminated:
            reward += self.GOAL_REWARD
        truncated = not terminated and self._steps >= self.MAX_STEPS
        return self._x.copy(), reward, terminated, truncated, {}


def make():
    return MultiGoal()
