"""Unit tests for the pure helpers of tfagents_system.builder (no TF, no Reverb)."""

import itertools

import pytest

from tfagents_system.builder import (
    derive_seed,
    warmup_for_worker,
    worker_env_seeds,
    worker_share,
)
from tfagents_system.launch.checks import replay_capacity
from tfagents_system.params import TrainParamsBase


class _Params(TrainParamsBase):
    def env_ctor(self, seed=None, *args, **kwargs):
        return None


# --- derive_seed ---

def test_derive_seed_is_deterministic():
    """Same inputs, same seed (also across calls, so across processes)."""
    assert derive_seed(0, 1, 2) == derive_seed(0, 1, 2)
    assert derive_seed(123) == derive_seed(123)


def test_derive_seed_distinct_per_keys():
    """Different base seeds or keys (of one length, as callers use) give different seeds."""
    seeds = [derive_seed(base, *keys)
             for base in range(4)
             for keys in itertools.product(range(5), range(3))]
    assert len(set(seeds)) == len(seeds)
    assert derive_seed(0, 1, 2) != derive_seed(0, 2, 1)  # order matters


def test_derive_seed_not_identity():
    """The derived seed is mixed, not the base seed passed through."""
    assert [derive_seed(b) for b in range(5)] != list(range(5))


def test_derive_seed_trailing_zero_key_differs():
    """Adding a key of 0 gives a different seed."""
    assert derive_seed(5, 0) != derive_seed(5)
    assert derive_seed(0, 1, 0) != derive_seed(0, 1)


# --- worker_share ---

@pytest.mark.parametrize("total", [0, 1, 7, 10, 64, 101])
@pytest.mark.parametrize("workers", [1, 2, 3, 8, 11])
def test_init_episode_shares(total, workers):
    """Shares sum to the total and differ by at most one."""
    shares = [worker_share(total, workers, i) for i in range(workers)]
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1
    assert min(shares) >= 0


def test_init_episode_shares_example():
    """10 episodes over 4 workers: the first two do one extra."""
    assert [worker_share(10, 4, i) for i in range(4)] == [3, 3, 2, 2]


# --- worker_env_seeds ---

def test_worker_env_seeds_distinct_per_worker_and_role():
    """Collect and eval seeds differ from each other and between workers."""
    params = _Params()
    seeds = [s for i in range(16) for s in worker_env_seeds(params, i)]
    assert len(set(seeds)) == len(seeds)


def test_worker_env_seeds_follow_params_seed():
    """Changing TrainParams.seed changes every worker's seeds; same seed repeats them."""
    params_a, params_b = _Params(), _Params()
    params_b.seed = 1
    assert worker_env_seeds(params_a, 0) == worker_env_seeds(_Params(), 0)
    for i in range(4):
        assert set(worker_env_seeds(params_a, i)).isdisjoint(worker_env_seeds(params_b, i))


# --- replay_capacity ---

def test_replay_capacity_default():
    """Without n_episodes_in_buffer the configured capacity is used."""
    params = _Params()
    params.replay_capacity = 12_345
    assert replay_capacity(params, 200) == 12_345
    assert replay_capacity(params, None) == 12_345


def test_replay_capacity_episodes_win():
    """n_episodes_in_buffer * max_episode_steps overrides replay_capacity."""
    params = _Params()
    params.replay_capacity = 12_345
    params.n_episodes_in_buffer = 10
    assert replay_capacity(params, 200) == 2000
    assert replay_capacity(params, 1000) == 10_000


def test_replay_capacity_episodes_without_limit_falls_back():
    """An env with no step limit cannot size by episodes: capacity is used."""
    params = _Params()
    params.replay_capacity = 500
    params.n_episodes_in_buffer = 10
    assert replay_capacity(params, None) == 500
    assert replay_capacity(params, 0) == 500


# --- warmup_for_worker ---

def test_warmup_in_episodes_by_default():
    """Without n_buffer_init_steps each worker takes its share of the episodes."""
    params = _Params()
    params.n_buffer_init_episodes = 5
    assert [warmup_for_worker(params, 2, i) for i in range(2)] == [
        {"episodes": 3, "steps": None}, {"episodes": 2, "steps": None}]


def test_warmup_in_steps_replaces_episodes():
    """n_buffer_init_steps splits steps across workers and ignores the episode count."""
    params = _Params()
    params.n_buffer_init_steps = 10_001
    shares = [warmup_for_worker(params, 3, i) for i in range(3)]
    assert [s["steps"] for s in shares] == [3334, 3334, 3333]
    assert all(s["episodes"] is None for s in shares)
