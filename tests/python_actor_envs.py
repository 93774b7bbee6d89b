"""Environments that break the Gymnasium contract on purpose, for tests/python_actor_test.py:
each is the example multi-goal task (softq.examples.multigoal) until its fault, at step 5 of
its life (counted over episodes)."""
import numpy as np

from softq.examples.multigoal import MultiGoal


class _Faulty(MultiGoal):
    FAULT_STEP = 5

    def __init__(self):
        super().__init__()
        self.steps_taken = 0

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self.steps_taken += 1
        if self.steps_taken >= self.FAULT_STEP:
            return self.fault(obs, reward, terminated, truncated, info)
        return obs, reward, terminated, truncated, info


class NanObservation(_Faulty):
    def fault(self, obs, reward, terminated, truncated, info):
        obs[1] = np.nan
        return obs, reward, terminated, truncated, info


class InfReward(_Faulty):
    def fault(self, obs, reward, terminated, truncated, info):
        return obs, float("inf"), terminated, truncated, info


class WrongShape(_Faulty):
    def fault(self, obs, reward, terminated, truncated, info):
        return np.zeros(3, np.float32), reward, terminated, truncated, info


class Raises(_Faulty):
    def fault(self, obs, reward, terminated, truncated, info):
        raise RuntimeError("the simulator diverged")


class DiscreteActions(MultiGoal):
    class Discrete:
        n = 4

    def __init__(self):
        super().__init__()
        self.action_space = self.Discrete()


def nan_observation():
    return NanObservation()


def inf_reward():
    return InfReward()


def wrong_shape():
    return WrongShape()


def raises():
    return Raises()


def discrete_actions():
    return DiscreteActions()


class ResetReturnsObservationOnly(MultiGoal):
    """The old Gym API: reset returns the observation alone, not (obs, info)."""

    def reset(self, seed=None, options=None):
        return super().reset(seed=seed)[0]


def old_reset():
    return ResetReturnsObservationOnly()
