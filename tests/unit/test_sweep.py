"""Sweep files: variants, task ids, overrides and their errors."""

import json

import pytest

from tfagents_system import sweep
from tfagents_system.params import GymTrainParams, ParamsError, load_params


def write(tmp_path, data, name="sweep.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_grid_times_seeds_in_order_seeds_fastest(tmp_path):
    path = write(tmp_path, {"grid": {"params.target_update_tau": [0.005, 0.02],
                                     "config.domain_randomization": [False, True]},
                            "seeds": [3, 4]})
    variants = sweep.load_sweep(path)
    assert len(variants) == 8
    assert [v.task_id for v in variants] == list(range(8))
    assert variants[0].params == {"target_update_tau": 0.005}
    assert variants[0].config == {"domain_randomization": False}
    assert [v.seed for v in variants[:4]] == [3, 4, 3, 4]
    assert variants[1].config == {"domain_randomization": False}
    assert variants[2].config == {"domain_randomization": True}
    assert variants[5].params_overrides() == {"target_update_tau": 0.02, "seed": 4}
    assert variants[5].label() == "domain_randomization=False target_update_tau=0.02 seed=4"
    assert sweep.variant_for_task(path, 7).seed == 4


def test_seeds_only_and_grid_only(tmp_path):
    assert [v.seed for v in sweep.load_sweep(write(tmp_path, {"seeds": [0, 1, 2]}))] == [0, 1, 2]
    variants = sweep.load_sweep(write(tmp_path, {"grid": {"params.batch_size": [64, 128]}}))
    assert [v.seed for v in variants] == [None, None]
    assert variants[1].params_overrides() == {"batch_size": 128}


@pytest.mark.parametrize("data, words", [
    ("{nope", "not valid JSON"),
    ([1, 2], "must hold a JSON object"),
    ({"grid": {"lr": [1]}}, 'must start with "params."'),
    ({"grid": {"params.a.b": [1]}}, "not nested"),
    ({"grid": {"params.seed": [1]}}, 'list seeds under "seeds"'),
    ({"grid": {"params.batch_size": []}}, "non-empty list"),
    ({"seeds": [0, 0]}, "twice"),
    ({"seeds": [-1]}, "integers >= 0"),
    ({"seeds": "0-3"}, "integers >= 0"),
    ({}, "nothing to sweep"),
    ({"grid": {}, "seed": [1]}, "unknown key(s) seed"),
    ('{"grid": {"params.actor_learning_rate": [NaN]}}', "NaN is not a number JSON allows"),
    ('{"grid": {"params.discount": [Infinity]}}', "Infinity is not a number JSON allows"),
])
def test_bad_sweep_files_name_the_file_and_the_fix(tmp_path, data, words):
    path = write(tmp_path, data)
    with pytest.raises(sweep.SweepError) as err:
        sweep.load_sweep(path)
    assert str(path) in str(err.value) and words in str(err.value)


def test_missing_file_and_task_out_of_range(tmp_path):
    with pytest.raises(sweep.SweepError, match="not found; set SAC_SWEEP"):
        sweep.load_sweep(tmp_path / "missing.json")
    path = write(tmp_path, {"seeds": [0, 1]})
    with pytest.raises(sweep.SweepError, match=r"task id 2 is out of range.*--array=0-1"):
        sweep.variant_for_task(path, 2)


def test_config_overrides_reach_into_objects_and_copy():
    config = {"env_id": "X", "gym_kwargs": {"a": 1}}
    out = sweep.apply_config_overrides(config, {"gym_kwargs.b": 2, "max_episode_steps": 5,
                                                "new.deep": True})
    assert out == {"env_id": "X", "gym_kwargs": {"a": 1, "b": 2}, "max_episode_steps": 5,
                   "new": {"deep": True}}
    assert config == {"env_id": "X", "gym_kwargs": {"a": 1}}
    with pytest.raises(sweep.SweepError, match='"env_id" is not an object'):
        sweep.apply_config_overrides(config, {"env_id.x": 1})


def test_cli_prints_variants_and_array_range(tmp_path, capsys):
    path = write(tmp_path, {"grid": {"params.batch_size": [64, 128]}, "seeds": [0, 1, 2]})
    assert sweep.main([str(path), "--array"]) == 0
    assert capsys.readouterr().out.strip() == "0-5"
    assert sweep.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "task   5  batch_size=128 seed=2" in out and "--array=0-5" in out
    assert sweep.main([str(tmp_path / "none.json")]) == 2


def params_file(tmp_path):
    path = tmp_path / "p.py"
    path.write_text("from tfagents_system.params import GymTrainParams\n"
                    "class TrainParams(GymTrainParams):\n    batch_size = 32\n")
    return path


def test_params_overrides_apply_and_are_validated(tmp_path):
    path = params_file(tmp_path)
    params = load_params(path, {}, {"batch_size": 64, "actor_fc_layers": [8, 8], "seed": 7})
    assert isinstance(params, GymTrainParams)
    assert (params.batch_size, params.actor_fc_layers, params.seed) == (64, (8, 8), 7)
    assert type(params).batch_size == 32  # the class is untouched
    with pytest.raises(ParamsError, match=r"sweep file s.json: params.btach_size is not a "
                                          "hyperparameter"):
        load_params(path, {}, {"btach_size": 1}, "sweep file s.json")
    with pytest.raises(ParamsError, match="params.env_ctor is not a hyperparameter"):
        load_params(path, {}, {"env_ctor": 1})
    with pytest.raises(ParamsError, match=r"with sweep file s.json: batch_size=0"):
        load_params(path, {}, {"batch_size": 0}, "sweep file s.json")
