"""Stepping environments: a worker's collection (`Collector`, all its collect envs in
lockstep, every transition to a writer), the episode statistics and task metrics, and
one greedy episode (`play_episode`, the workers' evaluation and tfagents_system.run's)."""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Mapping

from tfagents_system.core import constants as C
from tfagents_system.core.errors import FatalError, StopRequested

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


def final_info(env):
    """The `info` of the env's last step (TF-Agents' `get_info()`, which its wrappers pass
    through to the gym env's); None for an env without one (a PyEnvironment that does not
    implement `get_info`) and right after a reset."""
    try:
        return env.get_info()
    except NotImplementedError:
        return None


# Names of the framework's own eval scalars (eval/return, ...): no user metric may take them.
RESERVED_METRIC_NAMES = frozenset(
    tag[len(C.M_EVAL_METRIC_PREFIX):] for tag in (C.M_EVAL_RETURN, C.M_EVAL_LENGTH))
_METRIC_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


class HookError(FatalError, ValueError):
    """A task-metric hook of the params failed or returned something unusable: every
    episode would fail the same way, so the run stops (one line, not a restart loop)."""


def check_metric_name(name) -> None:
    """A name `episode_metrics` returns must make a TensorBoard tag of its own."""
    if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name):
        raise HookError(f"TrainParams.episode_metrics returned the metric name {name!r}: use "
                         "letters, digits and _ . / - (e.g. 'energy')")
    if name in RESERVED_METRIC_NAMES or name == C.SUCCESS_RATE:
        raise HookError(f"TrainParams.episode_metrics returned the metric name {name!r}, "
                         "which the framework logs itself: rename it (success belongs in "
                         "TrainParams.episode_success)")


class TaskMetrics:
    """Success and the user's named scalars of finished episodes, averaged per name.

    Each episode is judged once, from its final step's `info`, by the params hooks
    `episode_success(info)` and `episode_metrics(info)`, so stepping pays nothing per
    step. A mean counts only the episodes that reported that name, the last `window`
    of them (all when None).
    """

    def __init__(self, params, window: int | None = None):
        self._success = params.episode_success
        self._metrics = params.episode_metrics
        self._window = window
        self._values: dict[str, deque] = {}
        self._checked_names: set[str] = set()
        self._new = 0

    def record(self, env) -> dict[str, float]:
        """Judge the episode `env` has just ended (before its reset); its values."""
        info = final_info(env)
        if info is None:
            return {}
        try:
            values = self._numbers(self._metrics(info))
            success = self._success(info)
        except HookError:
            raise
        except Exception as exc:  # the user's hook: whatever it raised ends the run
            raise HookError(f"a task-metric hook of TrainParams (episode_success or "
                            f"episode_metrics) raised {type(exc).__name__}: {exc}; fix it "
                            "for this env's info") from exc
        if success is not None:
            values[C.SUCCESS_RATE] = float(bool(success))
        for name, value in values.items():
            self._values.setdefault(name, deque(maxlen=self._window)).append(value)
        self._new += bool(values)
        return values

    def _numbers(self, metrics) -> dict[str, float]:
        """The hook's scalars as floats; a None value is a scalar this episode lacks."""
        if not metrics:
            return {}
        if not isinstance(metrics, Mapping):
            raise HookError(f"TrainParams.episode_metrics returned {type(metrics).__name__}: "
                            "return a dict of name -> number")
        numbers = {}
        for name, value in metrics.items():
            if name not in self._checked_names:
                check_metric_name(name)
                self._checked_names.add(name)
            if value is None:
                continue
            try:
                numbers[name] = float(value)
            except (TypeError, ValueError):
                raise HookError(f"TrainParams.episode_metrics returned {name!r}: {value!r}, "
                                "not a number: return a float (or None to skip it)") from None
        return numbers

    def means(self) -> dict[str, float]:
        """Each name's mean over its episodes (success: the success rate)."""
        return {name: sum(values) / len(values) for name, values in self._values.items()}

    def new_means(self) -> dict[str, float]:
        """`means()` if an episode reported anything since the last call, else {}."""
        if not self._new:
            return {}
        self._new = 0
        return self.means()

    def clear(self) -> None:
        """Forget every episode (the warm-up's random episodes do not count)."""
        self._values.clear()
        self._new = 0


class Collector:
    """Steps a worker's collect envs in lockstep, one policy call for all of them,
    and writes every transition to Reverb (one writer per env).

    An env whose episode ends is judged by `task_metrics` (when given) and reset at
    once. The heartbeat is touched every step and a stop request is checked every
    `STOP_CHECK_S` seconds (and during every blocking write).
    """

    STOP_CHECK_S = 0.5

    def __init__(self, envs, stats: EpisodeStats, beat, should_stop,
                 task_metrics: TaskMetrics | None = None):
        self.envs = list(envs)
        self.stats = stats
        self.task_metrics = task_metrics
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
        task_metrics = self.task_metrics
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
                    if task_metrics is not None:
                        task_metrics.record(env)
                    next_time_step = env.reset()
                time_steps[i] = next_time_step
            self._beat()
            now = time.monotonic()
            if now >= next_check:
                next_check = now + self.STOP_CHECK_S
                if self._should_stop():
                    raise StopRequested()


def initial_state(policy):
    """A py policy's state at an episode start, shaped as its `action` takes it back: a
    TF policy that batches the time steps (SavedModelPyTFEagerPolicy's default) keeps
    its state (an LSTM's) with a batch of one."""
    batched = getattr(policy, "_batch_time_steps", False)
    return policy.get_initial_state(batch_size=1 if batched else None)


def play_episode(env, policy, should_stop=None, on_step=None) -> tuple[float, int]:
    """One episode of a py policy, its state carried from step to step, without writing
    experience; (return, length). `on_step()` runs after the reset and after every
    step (a video frame); `should_stop()` is polled every step. The env is left at the
    episode's last step: `TaskMetrics.record(env)` reads it next."""
    time_step = env.reset()
    state = initial_state(policy)
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
