"""Stepping environments: a worker's collection (`Collector`, all its collect envs in
lockstep, every transition to a writer), the episode statistics, and one greedy
episode (`play_episode`, the workers' evaluation and tfagents_system.run's)."""

from __future__ import annotations

import time

from tfagents_system.runtime import StopRequested

LAST = 2  # tf_agents.trajectories.time_step.StepType.LAST


class EpisodeStats:
    """Counts a worker's env steps and completed episode returns, over all its envs."""

    def __init__(self, num_envs: int = 1):
        self.env_steps = 0
        self._returns = [0.0] * num_envs
        self._lengths = [0] * num_envs
        self.finished: list[tuple[float, int]] = []

    def step(self, env_index: int, reward, last: bool) -> None:
        self.env_steps += 1
        self._returns[env_index] += float(reward)
        self._lengths[env_index] += 1
        if last:
            self.finished.append((self._returns[env_index], self._lengths[env_index]))
            self._returns[env_index], self._lengths[env_index] = 0.0, 0

    def restart_episodes(self) -> None:
        """The envs were reset: partial episodes are dropped."""
        self._returns = [0.0] * len(self._returns)
        self._lengths = [0] * len(self._lengths)

    def pop_finished(self) -> list[tuple[float, int]]:
        done, self.finished = self.finished, []
        return done


class Collector:
    """Steps a worker's collect envs in lockstep, one policy call for all of them,
    and writes every transition to Reverb (one writer per env).

    An env whose episode ends is reset at once. The heartbeat is touched every
    step and a stop request is checked every `STOP_CHECK_S` seconds (and during
    every blocking write).
    """

    STOP_CHECK_S = 0.5

    def __init__(self, envs, stats: EpisodeStats, beat, should_stop):
        self.envs = list(envs)
        self.stats = stats
        self.writers = None
        self._beat = beat
        self._should_stop = should_stop
        self.time_steps = None

    def reset(self) -> None:
        self.time_steps = [env.reset() for env in self.envs]
        self.stats.restart_episodes()

    def run(self, act, episodes: int | None = None, steps: int | None = None) -> None:
        """Collect until `episodes` episodes (over all envs) have ended, or until `steps`
        env steps (over all envs) are taken; episodes in progress then stay open."""
        if self.time_steps is None:
            self.reset()
        envs, writers, stats, time_steps = self.envs, self.writers, self.stats, self.time_steps
        ended = 0
        episodes = float("inf") if episodes is None else episodes
        end_step = stats.env_steps + steps if steps is not None else float("inf")
        next_check = time.monotonic() + self.STOP_CHECK_S
        while ended < episodes and stats.env_steps < end_step:
            action_steps = act(time_steps)
            for i, env in enumerate(envs):
                action_step = action_steps[i]
                next_time_step = env.step(action_step.action)
                writers[i].add(time_steps[i], action_step, next_time_step)
                last = next_time_step.step_type == LAST  # TimeStep.is_last() costs ~20 us
                stats.step(i, next_time_step.reward, last)
                if last:
                    ended += 1
                    next_time_step = env.reset()
                time_steps[i] = next_time_step
            self._beat()
            now = time.monotonic()
            if now >= next_check:
                next_check = now + self.STOP_CHECK_S
                if self._should_stop():
                    raise StopRequested()


def play_episode(env, policy, should_stop=None, on_step=None) -> tuple[float, int]:
    """One episode of a py policy, its state carried from step to step, without writing
    experience; (return, length). `on_step()` runs after the reset and after every
    step (a video frame); `should_stop()` is polled every step."""
    time_step = env.reset()
    state = policy.get_initial_state(batch_size=None)
    if on_step is not None:
        on_step()
    total, length = 0.0, 0
    while not time_step.is_last():
        if should_stop is not None and should_stop():
            raise StopRequested()
        action_step = policy.action(time_step, state)
        state = action_step.state
        time_step = env.step(action_step.action)
        total += float(time_step.reward)
        length += 1
        if on_step is not None:
            on_step()
    return total, length
