"""The demonstrations' store in an experiment, their share of each batch, and the
settings that ask for them."""

from __future__ import annotations

import numpy as np
import pytest

from tfagents_system.core.errors import FatalError
from tfagents_system.params import TrainParamsBase
from tfagents_system.replay import demo_store
from tfagents_system.replay.format import NStep


class Params(TrainParamsBase):
    def env_ctor(self, seed=None, *args, **kwargs):  # never built: settings only
        from tfagents_system.testing_envs import point_mass_reach

        return point_mass_reach(seed)


def problems(config=None, **values):
    params = Params(config)
    for name, value in values.items():
        setattr(params, name, value)
    return params.validate()


def test_store_round_trips_and_refuses_damage(tmp_path):
    rows = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert demo_store.load(tmp_path / "none", 4) is None
    demo_store.store(tmp_path / "d", rows, demo_store.DemoMeta(["a.npz"], 3, 4))
    loaded, meta = demo_store.load(tmp_path / "d", 4)
    np.testing.assert_array_equal(loaded, rows)
    assert meta.files == ["a.npz"]
    with pytest.raises(FatalError, match="rows of 4, this experiment's rows take 5"):
        demo_store.load(tmp_path / "d", 5)
    with open(tmp_path / "d" / demo_store.ROWS_FILE, "ab") as fh:  # a torn extra row
        fh.write(b"\0" * 8)
    with pytest.raises(FatalError, match="holds 14 floats"):
        demo_store.load(tmp_path / "d", 4)


def test_the_share_is_fixed_scheduled_or_proportional():
    assert demo_store.DemoShare(0.25, 100)(5000, 10) == 0.25
    schedule = demo_store.DemoShare(((0, 0.5), (1000, 0.1), (2000, 0.0)), 100)
    assert schedule(0, 0) == 0.5
    assert schedule(500, 0) == pytest.approx(0.3)
    assert schedule(1500, 0) == pytest.approx(0.05)
    assert schedule(10_000, 0) == 0.0
    proportional = demo_store.DemoShare(None, 1000)
    assert proportional(0, 0) == 1.0
    assert proportional(0, 3000) == 0.25


def test_files_come_from_the_config_or_the_params(tmp_path):
    params = Params()
    params.demonstrations = ("demos/a.npz",)
    files = demo_store.requested_files(params, tmp_path / "p" / "params.py",
                                       tmp_path / "c" / "config.json")
    assert files == [(tmp_path / "p" / "demos" / "a.npz").resolve()]
    params = Params({"demonstrations": ["b.h5"]})
    params.demonstrations = ("demos/a.npz",)
    files = demo_store.requested_files(params, tmp_path / "p" / "params.py",
                                       tmp_path / "c" / "config.json")
    assert files == [(tmp_path / "c" / "b.h5").resolve()]
    assert demo_store.requested_files(Params(), tmp_path / "params.py", tmp_path / "c") == []
    with pytest.raises(ValueError, match="is not a list of files"):
        demo_store.requested_files(Params({"demonstrations": 3}), tmp_path / "p", tmp_path / "c")


@pytest.mark.parametrize("values, expected", [
    ({"demo_ratio": 1.5, "demonstrations": ("a.npz",)}, "demo_ratio=1.5: must be None, a share"),
    ({"demo_ratio": ((100, 0.5), (50, 0.1)), "demonstrations": ("a.npz",)},
     "with increasing train steps"),
    ({"demo_ratio": 0.25}, "demo_ratio=0.25 without demonstrations"),
    ({"bc_warm_start_steps": 100}, "bc_warm_start_steps=100 without demonstrations"),
    ({"bc_warm_start_steps": -1, "demonstrations": ("a.npz",)},
     "bc_warm_start_steps=-1: must be an integer >= 0"),
    ({"demonstrations": "a.npz"}, "must be a tuple of demonstration files"),
    ({"n_step": 0}, "n_step=0: must be a positive integer"),
])
def test_bad_settings_name_the_field_and_the_fix(values, expected):
    found = problems(**values)
    assert any(expected in p for p in found), found


def test_good_settings_pass():
    assert problems(demonstrations=("a.npz",), demo_ratio=((0, 0.5), (10_000, 0.1)),
                    bc_warm_start_steps=500, n_step=3) == []
    assert problems({"demonstrations": ["a.npz"]}, demo_ratio=0.25) == []
    # Recurrence combines with n-step returns and the warm start (README, "Recurrent
    # networks"): nothing to refuse.
    assert problems(demonstrations=("a.npz",), bc_warm_start_steps=10, n_step=3,
                    recurrent=True, prior_policy="prior") == []
    assert Params().n_step_returns is None
    params = Params()
    params.n_step, params.discount = 3, 0.95
    assert params.n_step_returns == NStep(3, 0.95)
