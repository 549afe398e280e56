"""Unit tests for the per-worker collect envs: the `num_envs_per_worker`
hyperparameter and the seeds of a worker's envs (no TF, no Reverb)."""

import pytest

from tfagents_system.builder import collect_env_seeds, worker_env_seeds
from tfagents_system.params import TrainParamsBase


class _Params(TrainParamsBase):
    def env_ctor(self, seed=None, *args, **kwargs):
        return None


def _with(**attrs):
    return type("P", (_Params,), attrs)()


def test_default_is_one_env_per_worker():
    """The published setting: one collect env per worker."""
    assert _Params.num_envs_per_worker == 1
    assert not _Params().validate()


@pytest.mark.parametrize("value", [0, -2, 1.5, True, "4", None])
def test_num_envs_per_worker_must_be_a_positive_int(value):
    problems = _with(num_envs_per_worker=value).validate()
    assert any(p.startswith("num_envs_per_worker=") and "positive integer" in p
               for p in problems), problems


def test_one_env_keeps_the_worker_collect_seed():
    """With one env per worker the collect env is seeded exactly as before."""
    params = _Params()
    for worker in range(4):
        assert collect_env_seeds(params, worker) == [worker_env_seeds(params, worker)[0]]


def test_env_seeds_distinct_and_reproducible():
    """Every env of every worker gets its own seed, never an eval seed, and the
    same seeds on every run."""
    params = _with(num_envs_per_worker=5, seed=3)
    seeds = [s for worker in range(6) for s in collect_env_seeds(params, worker)]
    evals = [worker_env_seeds(params, worker)[1] for worker in range(6)]
    assert len(seeds) == 30 and len(set(seeds)) == 30
    assert not set(seeds) & set(evals)
    assert seeds == [s for worker in range(6) for s in collect_env_seeds(params, worker)]
    assert collect_env_seeds(params, 2)[0] == worker_env_seeds(params, 2)[0]
