"""Unit tests for tfagents_system.params (loading a user's params file, validation)."""

import textwrap

import pytest

from tfagents_system.params import (
    ParamsError,
    TrainParamsBase,
    load_params,
    load_params_class,
)

HEADER = "from tfagents_system.params import TrainParamsBase\n\n"
MINIMAL = HEADER + textwrap.dedent("""\
    class TrainParams(TrainParamsBase):
        def env_ctor(self, seed=None, *args, **kwargs):
            return None
""")


def _write(tmp_path, body, name="my_params.py"):
    path = tmp_path / name
    path.write_text(body)
    return path


def _params_with(tmp_path, **overrides):
    """A params file whose TrainParams sets the given class attributes."""
    lines = "".join(f"    {k} = {v!r}\n" for k, v in overrides.items())
    return _write(tmp_path, MINIMAL + lines)


class _Concrete(TrainParamsBase):
    def env_ctor(self, seed=None, *args, **kwargs):
        return None


# --- loading ---

def test_load_valid_file(tmp_path):
    """A valid file gives its TrainParams, a TrainParamsBase subclass."""
    cls = load_params_class(_write(tmp_path, MINIMAL))
    assert cls.__name__ == "TrainParams"
    assert issubclass(cls, TrainParamsBase)


def test_missing_file(tmp_path):
    """A missing params file is named, with a hint at SAC_PARAMS."""
    missing = tmp_path / "absent.py"
    with pytest.raises(ParamsError) as info:
        load_params_class(missing)
    assert str(missing) in str(info.value)
    assert "not found" in str(info.value)
    assert "SAC_PARAMS" in str(info.value)


def test_file_without_train_params(tmp_path):
    """A file that defines no TrainParams says what to add."""
    path = _write(tmp_path, HEADER + "class Params(TrainParamsBase):\n    pass\n")
    with pytest.raises(ParamsError) as info:
        load_params_class(path)
    assert "defines no class TrainParams" in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("body", [
    "class TrainParams:\n    discount = 0.9\n",
    "TrainParams = 3\n",
    "def TrainParams():\n    return None\n",
])
def test_train_params_not_subclassing_base(tmp_path, body):
    """TrainParams that is not a TrainParamsBase subclass is rejected."""
    path = _write(tmp_path, body)
    with pytest.raises(ParamsError, match=r"must subclass .*params\.TrainParamsBase"):
        load_params_class(path)


def test_file_raising_on_import(tmp_path):
    """An exception in the user's module is reported with its type and text."""
    path = _write(tmp_path, "import sys\nraise RuntimeError('boom from params')\n")
    with pytest.raises(ParamsError) as info:
        load_params_class(path)
    message = str(info.value)
    assert "RuntimeError: boom from params" in message
    assert str(path) in message
    assert isinstance(info.value.__cause__, RuntimeError)


def test_file_with_syntax_error(tmp_path):
    """A SyntaxError in the params file is a ParamsError too."""
    path = _write(tmp_path, "class TrainParams(:\n")
    with pytest.raises(ParamsError, match="SyntaxError"):
        load_params_class(path)


def test_failed_import_leaves_no_module_behind(tmp_path):
    """A module that failed to import is removed from sys.modules."""
    import sys

    before = set(sys.modules)
    with pytest.raises(ParamsError):
        load_params_class(_write(tmp_path, "raise ValueError('x')\n"))
    assert not {m for m in set(sys.modules) - before if m.startswith("sac_user_params_")}


def test_train_params_without_env_ctor_is_abstract(tmp_path):
    """Forgetting env_ctor is reported when instantiating, naming env_ctor."""
    path = _write(tmp_path, HEADER + "class TrainParams(TrainParamsBase):\n    pass\n")
    assert load_params_class(path).__name__ == "TrainParams"  # the class itself loads
    with pytest.raises(ParamsError) as info:
        load_params(path, {})
    assert "TrainParams(env_config) failed" in str(info.value)
    assert "env_ctor" in str(info.value)


def test_two_files_load_independently(tmp_path):
    """Params files in different places do not overwrite each other's class."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cls_a = load_params_class(_params_with(tmp_path / "a", batch_size=32))
    cls_b = load_params_class(_params_with(tmp_path / "b", batch_size=64))
    assert (cls_a.batch_size, cls_b.batch_size) == (32, 64)


# --- validation ---

@pytest.mark.parametrize(("field", "value", "hint"), [
    ("num_iter", 0, "must be a positive integer"),
    ("batch_size", -1, "must be a positive integer"),
    ("discount", 1.5, "must be a number in (0, 1]"),
    ("discount", 0.0, "must be a number in (0, 1]"),
    ("target_update_period", 0, "must be a positive integer"),
    ("batch_size", 2.5, "must be a positive integer"),
    ("batch_size", True, "must be a positive integer"),
    ("actor_learning_rate", 0.0, "must be a positive number"),
    ("target_update_tau", -0.1, "must be a positive number"),
    ("n_eval_episodes", -1, "must be an integer >= 0"),
    ("n_episodes_in_buffer", 0, "must be a positive integer or None"),
    ("samples_per_insert", 0.0, "must be a number > 0 or None"),
    ("learner_keeps_replay", "no", "must be True or False"),
])
def test_invalid_hyperparameter_named(tmp_path, field, value, hint):
    """A bad hyperparameter gives a ParamsError naming the field, its value and the rule."""
    path = _params_with(tmp_path, **{field: value})
    with pytest.raises(ParamsError) as info:
        load_params(path, {})
    message = str(info.value)
    assert f"{field}={value!r}" in message
    assert hint in message
    assert str(path) in message


@pytest.mark.parametrize(("field", "value"), [
    ("discount", "0.99"),
    ("samples_per_insert", "2"),
    ("replay_capacity", None),
])
def test_wrong_type_hyperparameter_named(tmp_path, field, value):
    """A hyperparameter of the wrong type is a ParamsError naming it, not a crash."""
    path = _params_with(tmp_path, **{field: value})
    with pytest.raises(ParamsError, match=field):
        load_params(path, {})


@pytest.mark.parametrize(("line", "named", "hint"), [
    ("actor_learning_rate = float('nan')", "actor_learning_rate=nan", "must be a positive number"),
    ("target_update_tau = float('inf')", "target_update_tau=inf", "must be a positive number"),
    ("reward_scale_factor = float('nan')", "reward_scale_factor=nan", "positive number"),
    ("discount = float('nan')", "discount=nan", "must be a number in (0, 1]"),
    ("samples_per_insert = float('inf')", "samples_per_insert=inf", "a number > 0 or None"),
    ("samples_per_insert_error_buffer = float('nan')", "samples_per_insert_error_buffer=nan",
     "a number > 0 or None"),
    ("initial_log_alpha = float('nan')", "initial_log_alpha=nan", "must be a finite number"),
    ("target_entropy = float('-inf')", "target_entropy=-inf", "a finite number or None"),
    ("actor_fc_layers = (256, 0)", "actor_fc_layers=(256, 0)", "tuple of positive integers"),
    ("critic_joint_fc_layers = 256", "critic_joint_fc_layers=256", "positive integers"),
    ("actor_fc_layers = (256.0, 256)", "actor_fc_layers=(256.0, 256)", "positive integers"),
])
def test_non_finite_values_and_bad_layer_sizes_stop_at_launch(tmp_path, line, named, hint):
    """NaN or infinite hyperparameters passed the launch checks and crash-looped the learner
    on NaN losses; now they are named at load time, as are layer sizes that are not
    positive integers."""
    path = _write(tmp_path, MINIMAL + f"    {line}\n")
    with pytest.raises(ParamsError) as info:
        load_params(path, {})
    assert named in str(info.value) and hint in str(info.value)


def test_a_slack_too_small_for_reverbs_limiter_is_named(tmp_path):
    """Reverb's SampleToInsertRatio refuses an error buffer below max(1, samples_per_insert):
    the replay server would crash at start, every restart."""
    path = _params_with(tmp_path, samples_per_insert=256.0, samples_per_insert_error_buffer=100.0)
    with pytest.raises(ParamsError, match=r"samples_per_insert_error_buffer=100.0 is below max"):
        load_params(path, {})
    ok = _params_with(tmp_path, samples_per_insert=256.0, samples_per_insert_error_buffer=256.0)
    assert load_params(ok, {}).samples_per_insert_error_buffer == 256.0


def test_all_problems_reported_together(tmp_path):
    """Several bad fields are all listed in one error."""
    path = _params_with(tmp_path, num_iter=0, batch_size=-1, discount=1.5)
    with pytest.raises(ParamsError) as info:
        load_params(path, {})
    message = str(info.value)
    for text in ("num_iter=0", "batch_size=-1", "discount=1.5"):
        assert text in message


def test_min_replay_size_above_capacity(tmp_path):
    """The warm-up size cannot exceed the buffer."""
    path = _params_with(tmp_path, replay_capacity=100, min_replay_size=101)
    with pytest.raises(ParamsError, match="min_replay_size=101 exceeds replay_capacity=100"):
        load_params(path, {})


def test_zero_is_fine_where_allowed(tmp_path):
    """Zero warm-up episodes, zero eval episodes and seed 0 are valid; discount 1 too."""
    path = _params_with(tmp_path, n_buffer_init_episodes=0, n_eval_episodes=0, seed=0,
                        discount=1.0)
    params = load_params(path, {})
    assert params.n_buffer_init_episodes == 0
    assert params.discount == 1.0


# --- defaults and derived values ---

def test_defaults_follow_published_sac():
    """Defaults are the SAC paper's (Haarnoja et al. 2018, table 1) and validate cleanly."""
    params = _Concrete()
    assert params.discount == 0.99
    assert params.actor_learning_rate == 3e-4
    assert params.critic_learning_rate == 3e-4
    assert params.alpha_learning_rate == 3e-4
    assert params.target_update_tau == 0.005
    assert params.target_update_period == 1
    assert tuple(params.actor_fc_layers) == (256, 256)
    assert tuple(params.critic_joint_fc_layers) == (256, 256)
    assert params.batch_size == 256
    assert params.replay_capacity == 1_000_000
    assert params.target_entropy is None
    assert params.validate() == []


def test_env_config_is_the_dict_passed(tmp_path):
    """load_params hands the config dict to TrainParams as env_config (a copy)."""
    config = {"env_id": "Pendulum-v1", "max_episode_steps": 5}
    params = load_params(_write(tmp_path, MINIMAL), config)
    assert params.env_config == config
    config["env_id"] = "changed"
    assert params.env_config["env_id"] == "Pendulum-v1"


def test_env_config_defaults_to_empty_dict():
    """No config gives an empty dict, not None."""
    assert _Concrete().env_config == {}
    assert _Concrete(None).env_config == {}


def test_total_train_steps(tmp_path):
    """total_train_steps is num_iter * num_steps_per_iter."""
    params = load_params(_params_with(tmp_path, num_iter=7, num_steps_per_iter=13), {})
    assert params.total_train_steps == 91
    assert _Concrete().total_train_steps == 1000 * 1000


def test_collect_and_eval_kwargs_default_empty():
    """Without overrides env_ctor gets no extra arguments."""
    params = _Concrete()
    assert params.collect_env_args_kwargs() == ((), {})
    assert params.eval_env_args_kwargs() == ((), {})
