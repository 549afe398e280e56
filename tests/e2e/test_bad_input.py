"""Bad input to ./run_script.sh: one clear line, non-zero exit, no process
started, and an existing experiment left exactly as it was."""

from __future__ import annotations

import pytest
from launch_helpers import REPO, programs_of, run_script, write_params, write_variables

pytestmark = pytest.mark.e2e

GOOD_CONFIG = REPO / "config" / "default.json"


def _snapshot(root):
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture
def existing(tmp_path):
    """A directory holding another (fake but well-formed) experiment to protect."""
    other = tmp_path / "logs" / "tiny"
    other.mkdir(parents=True)
    (other / "settings.json").write_text("{}")
    (other / "config.json").write_text('{"env_id": "InvertedPendulumBulletEnv-v0"}')
    (other / "params.py").write_text("# placeholder experiment\n")
    return tmp_path


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def _new(t, **variables):
    """The variables file of a new experiment "new" in `t`."""
    return write_variables(t / "v.sh", SAC_EXP_NAME="new", **variables)


def _with(**variables):
    return lambda t: _new(t, **variables)


def _with_config(name, text):
    return lambda t: _new(t, SAC_CONFIG=_write(t, name, text))


def _with_params_file(name, text, **variables):
    return lambda t: _new(t, SAC_PARAMS=_write(t, name, text), **variables)


def _with_params(name, **fields):
    return lambda t: _new(t, SAC_PARAMS=write_params(t / name, **fields))


def _stray_dir(tmp_path):
    """A user's own directory where the experiment would go."""
    stray = tmp_path / "logs" / "stray"
    stray.mkdir(parents=True)
    (stray / "notes.txt").write_text("user file")
    return stray


# A Pendulum whose wrapper breaks what SAC needs of an environment ({body}).
BROKEN_ENV = """
import numpy as np
from tf_agents.environments import wrappers
from tf_agents.specs import array_spec
from tfagents_system.envs import load_gym_env
from tfagents_system.params import TrainParamsBase


class Broken(wrappers.PyEnvironmentBaseWrapper):
{body}


class TrainParams(TrainParamsBase):
    num_iter = 2
    num_steps_per_iter = 10
{params}
    def env_ctor(self, seed=None, *args, **kwargs):
        return Broken(load_gym_env("Pendulum-v1", seed=seed, **kwargs))
"""


def _broken(t, body, params="", limit=None, **variables):
    text = BROKEN_ENV.format(body=body, params=params)
    if limit is not None:
        text = text.replace("seed=seed, **kwargs", f"seed=seed, max_episode_steps={limit}")
    return _new(t, SAC_PARAMS=_write(t, "broken.py", text), **variables)


CASES = {
    "missing variables file": (lambda t: t / "nope.sh", "training variables file"),
    "unknown variable": (
        _with(SAC_NUM_COLLECT_WORKER=2),
        "unknown variable(s) SAC_NUM_COLLECT_WORKER"),
    "missing config": (
        _with(SAC_CONFIG="missing.json"),
        "missing.json: not found"),
    "malformed config": (
        _with_config("bad.json", '{"env_id": }'),
        "bad.json: not valid JSON (line 1"),
    "config not an object": (
        _with_config("list.json", "[1, 2]"),
        "must hold a JSON object"),
    "params missing": (
        _with(SAC_PARAMS="gone.py"),
        "gone.py: not found"),
    "params without TrainParams": (
        _with_params_file("empty.py", "x = 1\n"),
        "defines no class TrainParams"),
    "env_ctor raises": (
        _with_params_file(
            "raises.py",
            "from tfagents_system.params import TrainParamsBase\n"
            "class TrainParams(TrainParamsBase):\n"
            "    def env_ctor(self, seed=None):\n"
            "        raise RuntimeError('no robot attached')\n"),
        "env_ctor raised RuntimeError building the collect env: no robot attached"),
    "unknown gym id": (
        _with_config("gym.json", '{"env_id": "NoSuchEnvBulletEnv-v0"}'),
        "unknown env id 'NoSuchEnvBulletEnv-v0': neither gym 0.23 nor gymnasium has it"),
    "unknown dm_control task": (
        _with_config("dmc.json", '{"env_id": "dm_control/cartpole-swingupp", "pixels": {}}'),
        "no dm_control suite task 'cartpole' 'swingupp'; cartpole has: "),
    "bad pixels setting": (
        _with_config("pix.json", '{"env_id": "Pendulum-v1", "pixels": {"frames": 3}}'),
        'config "pixels": unknown key(s) frames; known: size, camera, frame_stack, '
        "action_repeat"),
    "zero workers": (
        _with(SAC_NUM_COLLECT_WORKERS=0),
        "SAC_NUM_COLLECT_WORKERS='0' must be a positive integer or auto"),
    "negative cpus": (
        _with(SAC_TRAIN_CPUS=-1),
        "SAC_TRAIN_CPUS='-1' must be a positive integer"),
    "zero iterations": (
        _with_params("zero.py", num_iter=0),
        "num_iter=0: must be a positive integer"),
    "too many cpus": (
        _with(SAC_TRAIN_CPUS=4096),
        "SAC_TRAIN_CPUS=4096 need 4096 CPUs but this launch may use"),
    "sweep without a task id": (
        lambda t: _new(t, SAC_SWEEP=_write(t, "sweep.json", '{"seeds": [0, 1]}')),
        "SAC_SWEEP is set but this launch has no task id"),
    "sweep with a bad key": (
        lambda t: _new(t, SAC_SWEEP=_write(t, "sweep.json", '{"grid": {"tau": [0.1]}}')),
        'grid key "tau" must start with "params."'),
    "NaN learning rate": (
        _with_params("nan.py", extra="actor_learning_rate = float('nan')"),
        "actor_learning_rate=nan: must be a positive number"),
    "NaN in the config": (
        _with_config("nan.json", '{"env_id": "InvertedPendulumBulletEnv-v0", "scale": NaN}'),
        "nan.json: NaN is not a number JSON allows"),
    "episodes in the buffer without a step limit": (
        lambda t: _broken(t, "    pass", "    n_episodes_in_buffer = 2\n", limit=0),
        "n_episodes_in_buffer=2 needs the env's step limit"),
    "buffer smaller than the warm-up": (
        _with_params("small.py", extra="n_episodes_in_buffer = 1\nmin_replay_size = 5000"),
        "the replay buffer would hold 1000 transitions (n_episodes_in_buffer=1 x 1000 steps), "
        "fewer than min_replay_size=5000"),
    "observation not as its spec says": (
        lambda t: _broken(t, "    def observation_spec(self):\n"
                             "        return array_spec.ArraySpec((5,), np.float32, 'obs')\n"),
        "reset() returned arrays of shapes and dtypes"),
    "NaN observation": (
        lambda t: _broken(t, "    def _step(self, action):\n"
                             "        ts = self._env.step(action)\n"
                             "        return ts._replace(observation=ts.observation * np.nan)\n"),
        "step() returned a non-finite observation"),
    "unbounded actions": (
        lambda t: _broken(t, "    def action_spec(self):\n"
                             "        return array_spec.ArraySpec((1,), np.float32, 'a')\n"),
        "has unbounded actions"),
    "eval env unlike the collect env": (
        _with_params_file(
            "evaldiff.py",
            "from tfagents_system.envs import load_gym_env\n"
            "from tfagents_system.params import TrainParamsBase\n"
            "from tfagents_system.time_feature import TimeFeature\n"
            "class TrainParams(TrainParamsBase):\n"
            "    def env_ctor(self, seed=None, timed=False):\n"
            "        env = load_gym_env('Pendulum-v1', seed=seed)\n"
            "        return TimeFeature(env) if timed else env\n"
            "    def eval_env_args_kwargs(self):\n"
            "        return (), {'timed': True}\n"),
        "the collect and eval envs differ in time_step_spec"),
    "recurrent networks without recurrent = True": (
        _with_params("lstm.py", extra="""
            def lstm(self):
                from tfagents_system.agents.settings import NetworkSettings
                return NetworkSettings((32,), (32,), lstm_size=(8,), output_layers=(8,))

            def actor_net_ctor(self, observation_spec, action_spec):
                from tfagents_system.agents import networks
                return networks.actor_network(self.lstm(), observation_spec, action_spec)

            def critic_net_ctor(self, observation_spec, action_spec):
                from tfagents_system.agents import networks
                return networks.critic_network(self.lstm(), observation_spec, action_spec)
            """),
        "the actor or critic network is recurrent but TrainParams.recurrent is False"),
    "recurrent = True with feed-forward networks": (
        _with_params("ff.py", extra="""
            recurrent = True

            def actor_net_ctor(self, observation_spec, action_spec):  # the feed-forward one
                self.recurrent = False
                try:
                    return super().actor_net_ctor(observation_spec, action_spec)
                finally:
                    self.recurrent = True

            def critic_net_ctor(self, observation_spec, action_spec):  # the feed-forward one
                self.recurrent = False
                try:
                    return super().critic_net_ctor(observation_spec, action_spec)
                finally:
                    self.recurrent = True
            """),
        "TrainParams.recurrent is True but the actor and critic networks are feed-forward"),
    "a demonstrations file that does not exist": (
        _with_params("demos.py", extra="demonstrations = ('demos/nope.npz',)\n"),
        "demos/nope.npz: no such file; check the path"),
    "env_ctor hangs": (
        _with_params_file(
            "hangs.py",
            "import time\n"
            "from tfagents_system.params import TrainParamsBase\n"
            "class TrainParams(TrainParamsBase):\n"
            "    def env_ctor(self, seed=None):\n"
            "        time.sleep(3600)\n", SAC_LAUNCH_TIMEOUT=20),
        "TrainParams.env_ctor building the collect env"),
    "logs directory that cannot be made": (
        lambda t: _write(t, "a_file", "not a directory") and _new(
            t, SAC_LOGS_DIR=t / "a_file" / "logs"),
        "cannot create experiment directory"),
    "logs directory in a read-only filesystem": (
        _with(SAC_LOGS_DIR="/proc/sac_test_logs"),
        "cannot create experiment directory /proc/sac_test_logs/new"),
    "damaged settings of an experiment to resume": (
        lambda t: _write(t / "logs" / "tiny", "settings.json", '{"exp_na') and write_variables(
            t / "v.sh"),
        "settings.json is damaged"),
    "not an experiment dir": (
        lambda t: _stray_dir(t) and write_variables(t / "v.sh", SAC_EXP_NAME="stray"),
        "not an experiment of this tool"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_line(existing, case):
    make_variables, expected = CASES[case]
    write_params(existing / "params.py")
    variables = make_variables(existing)
    before = _snapshot(existing / "logs")
    result = run_script(variables, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert expected in errors[0], errors[0]
    assert _snapshot(existing / "logs") == before
    assert not (existing / "logs" / "new").exists()
    assert not programs_of(existing)


def test_a_group_writable_experiment_is_not_resumed(existing):
    """Someone of the group could have planted the params file every program imports:
    the relaunch refuses, naming the directory and the fix, and changes nothing."""
    exp = existing / "logs" / "tiny"
    exp.chmod(0o775)  # chmod g+w on an experiment made before owner-only directories
    write_params(existing / "params.py")
    variables = write_variables(existing / "v.sh")
    before = {str(p): (p.lstat().st_mode, p.read_bytes()) for p in exp.rglob("*")}
    result = run_script(variables, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: experiment directory {exp} is writable by group (mode 0775): "
                      "any of them could plant the params file its programs import; check "
                      f"its files, then chmod 700 {exp}"], result.stderr
    assert {str(p): (p.lstat().st_mode, p.read_bytes()) for p in exp.rglob("*")} == before
    assert exp.stat().st_mode & 0o777 == 0o775
    assert not programs_of(existing)
