"""Hindsight experience replay (HER, Andrychowicz et al., 2017) for goal-conditioned
envs: dict observations with `observation`, `achieved_goal` and `desired_goal`, and
the env's own `compute_reward(achieved_goal, desired_goal, info)`.

Where: on the workers, at each episode's end (`HindsightWriter`). A worker holds its
episode anyway, calls the env's own numpy `compute_reward` once per episode on all
relabeled transitions, and writes `her_goals_per_transition` copies of every
transition with another goal next to the original. The learner then trains on rows
like any other, inside its compiled loop; relabeling in the learner's sampling would
need the env's reward as TensorFlow code (or a Python call, leaving the compiled loop
at every gradient step) and the episode boundaries of every row. docs/manipulation.md
has both costs measured.

Strategies (the goals of transition t of an episode of T steps, achieved goals taken
after each step):
- `future`: the achieved goal after a uniformly drawn step j in [t, T-1];
- `final`: the achieved goal after the episode's last step (one goal per transition);
- `episode`: the achieved goal after a uniformly drawn step j in [0, T-1].

A relabeled transition keeps the original's discount (a time-limit truncation still
bootstraps; a termination still stops) unless the env has `compute_terminated`
(gymnasium-robotics' convention), which then decides. Env steps count only the
originals: the learner's replay sizes and ratio are per env step
(`TrainParamsBase.replay_settings`), so one gradient step per env step stays one.

Durability: an episode's relabeled copies go out with its last original transition
(in the same block, for the packed_blocks layout). A worker that crashes mid-episode
loses the copies of that episode only (as it loses its partly filled block today);
each transition is relabeled once, by the worker that collected it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfagents_system.core.errors import FatalError

STRATEGIES = ("future", "final", "episode")
GOAL_KEYS = ("achieved_goal", "desired_goal", "observation")
_LAST = 2  # tf_agents.trajectories.time_step.StepType.LAST


class HindsightError(FatalError, ValueError):
    """The env or the settings cannot take hindsight relabeling; the message says why
    (every try would fail the same way: the run stops)."""


@dataclass(frozen=True)
class HerSettings:
    """`strategy` (one of STRATEGIES) and `goals`, the relabeled copies written per
    transition."""

    strategy: str
    goals: int

    @property
    def rows_per_env_step(self) -> int:
        return 1 + self.goals


def settings_of(params) -> HerSettings | None:
    """The params' HER settings (None: HER is off)."""
    if params.her_strategy is None:
        return None
    return HerSettings(params.her_strategy, int(params.her_goals_per_transition))


def settings_problems(params) -> list[str]:
    """Problems of the HER settings, each naming the field and the fix."""
    strategy, goals = params.her_strategy, params.her_goals_per_transition
    problems = []
    if strategy is not None and strategy not in STRATEGIES:
        problems.append(f"her_strategy={strategy!r}: must be None (no HER) or one of "
                        f"{', '.join(map(repr, STRATEGIES))}")
    if not (isinstance(goals, int) and not isinstance(goals, bool) and goals >= 1):
        problems.append(f"her_goals_per_transition={goals!r}: must be a positive integer")
    elif strategy == "final" and goals != 1:
        problems.append(f"her_goals_per_transition={goals}: the 'final' strategy has one goal "
                        "per transition; set it to 1")
    if strategy is not None and (params.recurrent or params.n_step != 1):
        problems.append(f"her_strategy={strategy!r} relabels single transitions: set "
                        "recurrent = False and n_step = 1, or her_strategy = None")
    return problems


def env_problem(observation_spec, goal_env) -> str | None:
    """Why an env cannot be relabeled (None: it can)."""
    if not isinstance(observation_spec, dict) or not set(GOAL_KEYS) <= set(observation_spec):
        return ("HER needs a dict observation with 'observation', 'achieved_goal' and "
                "'desired_goal' (a goal-conditioned env such as panda-gym's)")
    achieved, desired = observation_spec["achieved_goal"], observation_spec["desired_goal"]
    if achieved.shape != desired.shape:
        return (f"HER needs achieved_goal and desired_goal of one shape, not {achieved.shape} "
                f"and {desired.shape}")
    if goal_env is None:
        return ("HER recomputes rewards with the env's compute_reward(achieved_goal, "
                "desired_goal, info), and this env (through its wrappers) has none")
    return None


def choose_goals(achieved: np.ndarray, settings: HerSettings, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(source transition index of each copy, its goal) for an episode whose achieved
    goals after each step are `achieved` [T, ...]: `settings.goals` copies of every
    transition, in transition order."""
    steps = len(achieved)
    source = np.repeat(np.arange(steps), settings.goals)
    if settings.strategy == "future":
        picked = rng.integers(source, steps)
    elif settings.strategy == "final":
        picked = np.full_like(source, steps - 1)
    else:
        picked = rng.integers(0, steps, size=source.shape)
    return source, achieved[picked]


class GoalFunctions:
    """The env's `compute_reward` (and `compute_terminated` if it has one), applied to a
    batch of transitions (vectorized when the env's function is, as panda-gym's and
    gymnasium-robotics' are)."""

    def __init__(self, goal_env):
        self._env = goal_env
        self._terminated = getattr(goal_env, "compute_terminated", None)

    @staticmethod
    def _batched(function, achieved, goals):
        infos = [{} for _ in range(len(achieved))]
        try:
            values = np.asarray(function(achieved, goals, infos))
            if values.shape == (len(achieved),):
                return values
        except Exception:  # a function of single transitions: call it per transition
            pass
        return np.array([function(a, g, {}) for a, g in zip(achieved, goals)])

    def rewards(self, achieved, goals) -> np.ndarray:
        return self._batched(self._env.compute_reward, achieved, goals).astype(np.float32)

    def terminated(self, achieved, goals) -> np.ndarray | None:
        """Which copies end in a terminal state (None: the env does not say)."""
        if self._terminated is None:
            return None
        return self._batched(self._terminated, achieved, goals).astype(bool)


def relabel_episode(episode: list, settings: HerSettings, functions: GoalFunctions,
                    rng: np.random.Generator) -> list:
    """The relabeled copies of an episode's transitions [(time_step, action_step,
    next_time_step)], as transitions of the same form."""
    achieved = np.stack([np.asarray(n.observation["achieved_goal"]) for _, _, n in episode])
    source, goals = choose_goals(achieved, settings, rng)
    rewards = functions.rewards(achieved[source], goals)
    terminated = functions.terminated(achieved[source], goals)
    copies = []
    for i, t in enumerate(source):
        time_step, action_step, next_time_step = episode[t]
        goal = goals[i].astype(time_step.observation["desired_goal"].dtype)
        discount = next_time_step.discount
        if terminated is not None:
            discount = np.zeros_like(discount) if terminated[i] else np.ones_like(discount)
        copies.append((
            time_step._replace(observation={**time_step.observation, "desired_goal": goal}),
            action_step,
            next_time_step._replace(
                observation={**next_time_step.observation, "desired_goal": goal},
                reward=np.asarray(rewards[i], dtype=np.asarray(next_time_step.reward).dtype),
                discount=discount)))
    return copies


class HindsightWriter:
    """An experience writer (packed layouts) that also writes each finished episode's
    relabeled copies. Originals go to the inner writer as they come, except an
    episode's last, which follows its episode's copies: the inner writer then sends
    the whole episode at its end, as it does without HER."""

    def __init__(self, inner, settings: HerSettings, functions: GoalFunctions,
                 rng: np.random.Generator):
        self._inner = inner
        self._settings = settings
        self._functions = functions
        self._rng = rng
        self._episode: list = []
        self.relabeled = 0

    def add(self, time_step, action_step, next_time_step) -> None:
        self._episode.append((time_step, action_step, next_time_step))
        if next_time_step.step_type != _LAST:
            self._inner.add(time_step, action_step, next_time_step)
            return
        copies = relabel_episode(self._episode, self._settings, self._functions, self._rng)
        self._episode = []
        for copy in copies:
            self._inner.add(*copy, episode_end=False)
        self.relabeled += len(copies)
        self._inner.add(time_step, action_step, next_time_step)

    def close(self) -> None:
        self._episode = []
        self._inner.close()

    def __getattr__(self, name):
        return getattr(self._inner, name)
