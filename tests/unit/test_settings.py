"""Unit tests for tfagents_system.settings (training variables file and JSON config)."""

import json
from pathlib import Path

import pytest

from tfagents_system.settings import (
    VARIABLES,
    SettingsError,
    load_config,
    load_training_variables,
)

VALID = """\
# comment lines and blank lines are fine

SAC_PARAMS=examples/params.py
SAC_CONFIG=config/env.json
SAC_EXP_NAME=run-1.a_b
SAC_NUM_COLLECT_WORKERS=3
SAC_REVERB_CPUS=auto
SAC_TRAIN_CPUS=" 2 "
SAC_COLLECT_WORKER_CPUS=
"""

REQUIRED_ONLY = "SAC_PARAMS=p.py\nSAC_CONFIG=c.json\nSAC_EXP_NAME=exp\n"


def _write(tmp_path: Path, text: str, name: str = "vars.sh") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- load_training_variables ---

def test_valid_file(tmp_path):
    """Paths resolve against the file's directory, auto/empty -> None, ints parsed."""
    sub = tmp_path / "sub"
    sub.mkdir()
    path = _write(sub, VALID)
    tv = load_training_variables(path)
    base = sub.resolve()
    assert tv.source == str(path.resolve())
    assert tv.params == base / "examples/params.py"
    assert tv.config == base / "config/env.json"
    assert tv.exp_name == "run-1.a_b"
    assert tv.logs_dir == base / "logs"  # default
    assert tv.exp_dir == base / "logs" / "run-1.a_b"
    assert tv.num_workers == 3
    assert tv.reverb_cpus is None
    assert tv.train_cpus == 2
    assert tv.worker_cpus is None


def test_file_in_cwd_given_by_bare_name(tmp_path, monkeypatch):
    """A bare file name (the usual ./run_script.sh vars.sh) resolves against the cwd."""
    _write(tmp_path, REQUIRED_ONLY)
    monkeypatch.chdir(tmp_path)
    tv = load_training_variables("vars.sh")
    assert tv.params == tmp_path.resolve() / "p.py"
    assert tv.source == str(tmp_path.resolve() / "vars.sh")


def test_relative_paths_do_not_depend_on_cwd(tmp_path, monkeypatch):
    """A file given as a relative path with a directory part (a/b/vars.sh) loads."""
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    _write(sub, REQUIRED_ONLY + "SAC_LOGS_DIR=../out\n")
    monkeypatch.chdir(tmp_path)
    tv = load_training_variables(Path("a/b/vars.sh"))
    assert tv.params == sub.resolve() / "p.py"
    assert tv.logs_dir == sub.resolve() / "../out"
    assert tv.params.is_absolute()


def test_absolute_paths_kept_and_all_counts_default_to_auto(tmp_path):
    """Absolute paths are used as given; unset counts are auto (None)."""
    path = _write(tmp_path, f"SAC_PARAMS=/abs/p.py\nSAC_CONFIG={tmp_path}/c.json\n"
                            "SAC_EXP_NAME=e\nSAC_LOGS_DIR=/abs/logs\n")
    tv = load_training_variables(path)
    assert tv.params == Path("/abs/p.py")
    assert tv.config == tmp_path / "c.json"
    assert tv.logs_dir == Path("/abs/logs")
    assert (tv.num_workers, tv.reverb_cpus, tv.train_cpus, tv.worker_cpus) == (None,) * 4


def test_shell_expansion_works(tmp_path):
    """The file is real bash: variables can be built from others."""
    path = _write(tmp_path, 'SAC_EXP_NAME=exp\nSAC_PARAMS="$SAC_EXP_NAME.py"\nSAC_CONFIG=c.json\n')
    tv = load_training_variables(path)
    assert tv.params.name == "exp.py"


def test_as_dict_is_json_serialisable(tmp_path):
    """as_dict() turns paths into strings so settings.json can be written."""
    tv = load_training_variables(_write(tmp_path, VALID))
    data = json.loads(json.dumps(tv.as_dict()))
    assert data["exp_name"] == "run-1.a_b"
    assert data["params"] == str(tv.params)
    assert data["num_workers"] == 3


@pytest.mark.parametrize("load, name, hint", [(load_training_variables, "nope.sh", "not found"),
                                               (load_config, "none.json", "SAC_CONFIG")])
def test_missing_file(tmp_path, load, name, hint):
    """A missing variables file or config is reported with its path (and a config with
    the variable that names it)."""
    missing = tmp_path / name
    with pytest.raises(SettingsError, match=hint) as info:
        load(missing)
    assert str(missing) in str(info.value)


def test_directory_is_not_a_file(tmp_path):
    """A directory is not accepted as the variables file."""
    with pytest.raises(SettingsError, match="not found"):
        load_training_variables(tmp_path)


def test_unknown_variable_typo(tmp_path):
    """A typo such as SAC_NUM_COLLECT_WORKER is named, with the known names listed."""
    path = _write(tmp_path, REQUIRED_ONLY + "SAC_NUM_COLLECT_WORKER=4\n")
    with pytest.raises(SettingsError) as info:
        load_training_variables(path)
    message = str(info.value)
    assert "unknown variable(s) SAC_NUM_COLLECT_WORKER;" in message
    assert str(path) in message
    assert "SAC_NUM_COLLECT_WORKERS" in message  # the known list


def test_unknown_variables_all_named(tmp_path):
    """Several unknown variables are all reported."""
    path = _write(tmp_path, REQUIRED_ONLY + "FOO=1\nSAC_TRAIN_CPU=2\n")
    with pytest.raises(SettingsError, match="FOO, SAC_TRAIN_CPU"):
        load_training_variables(path)


@pytest.mark.parametrize("name", ["SAC_PARAMS", "SAC_CONFIG", "SAC_EXP_NAME"])
def test_missing_required_variable(tmp_path, name):
    """Each required variable, when absent, is named in the error."""
    lines = [line for line in REQUIRED_ONLY.splitlines() if not line.startswith(name + "=")]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(SettingsError) as info:
        load_training_variables(path)
    assert f"{name} not set" in str(info.value)
    assert str(path) in str(info.value)


def test_required_variable_empty_counts_as_missing(tmp_path):
    """An empty required value is as bad as an absent one."""
    path = _write(tmp_path, "SAC_PARAMS=\nSAC_CONFIG=c.json\nSAC_EXP_NAME=e\n")
    with pytest.raises(SettingsError, match="SAC_PARAMS not set"):
        load_training_variables(path)


@pytest.mark.parametrize("name", ["SAC_NUM_COLLECT_WORKERS", "SAC_REVERB_CPUS",
                                  "SAC_TRAIN_CPUS", "SAC_COLLECT_WORKER_CPUS"])
@pytest.mark.parametrize("raw", ["0", "-2", "two", "1.5"])
def test_bad_counts(tmp_path, name, raw):
    """Zero, negative and non-integer counts are rejected, naming variable and value."""
    path = _write(tmp_path, REQUIRED_ONLY + f"{name}={raw}\n")
    with pytest.raises(SettingsError) as info:
        load_training_variables(path)
    message = str(info.value)
    assert f"{name}={raw!r}" in message
    assert "positive integer or auto" in message
    assert str(path) in message


@pytest.mark.parametrize("bad", ["../x", "a/b", ".hidden", "-dash", "has space"])
def test_bad_exp_name(tmp_path, bad):
    """Experiment names that could escape the logs dir or confuse shells are rejected."""
    path = _write(tmp_path, f"SAC_PARAMS=p.py\nSAC_CONFIG=c.json\nSAC_EXP_NAME='{bad}'\n")
    with pytest.raises(SettingsError) as info:
        load_training_variables(path)
    assert f"SAC_EXP_NAME={bad!r}" in str(info.value)


def test_exp_name_with_trailing_newline_rejected(tmp_path):
    """A name ending in a newline is not a plain name."""
    path = _write(tmp_path, "SAC_PARAMS=p.py\nSAC_CONFIG=c.json\nSAC_EXP_NAME=$'exp\\n'\n")
    with pytest.raises(SettingsError, match="SAC_EXP_NAME"):
        load_training_variables(path)


@pytest.mark.parametrize("text", [
    "SAC_PARAMS=p.py\nif [ 1 ]; then\nSAC_CONFIG=c.json\n",  # missing fi
    "SAC_PARAMS=(p.py\n",  # unclosed array
])
def test_shell_syntax_error(tmp_path, text):
    """A file bash cannot source is reported with its path and a hint."""
    path = _write(tmp_path, text)
    with pytest.raises(SettingsError) as info:
        load_training_variables(path)
    message = str(info.value)
    assert "sourcing it failed" in message
    assert "syntax" in message
    assert str(path) in message


def test_failing_command_in_file(tmp_path):
    """A file whose last command fails is reported rather than half-read."""
    path = _write(tmp_path, REQUIRED_ONLY + "false\n")
    with pytest.raises(SettingsError, match="sourcing it failed"):
        load_training_variables(path)


def test_caller_environment_does_not_leak(tmp_path, monkeypatch):
    """SAC_* variables exported in the caller's shell are not read (the file decides)."""
    monkeypatch.setenv("SAC_TRAIN_CPUS", "7")
    monkeypatch.setenv("SOME_OTHER_VAR", "x")
    tv = load_training_variables(_write(tmp_path, REQUIRED_ONLY))
    assert tv.train_cpus is None


def test_known_variables_documented():
    """Every variable has a non-empty description."""
    assert set(VARIABLES) >= {"SAC_PARAMS", "SAC_CONFIG", "SAC_EXP_NAME", "SAC_LOGS_DIR",
                              "SAC_NUM_COLLECT_WORKERS", "SAC_REVERB_CPUS", "SAC_TRAIN_CPUS",
                              "SAC_COLLECT_WORKER_CPUS"}
    assert all(VARIABLES.values())


# --- load_config ---

def test_config_valid_object(tmp_path):
    """A JSON object is returned as a dict."""
    path = _write(tmp_path, json.dumps({"env_id": "Pendulum-v1", "steps": 5}), "c.json")
    assert load_config(path) == {"env_id": "Pendulum-v1", "steps": 5}


def test_config_malformed_reports_line_and_column(tmp_path):
    """Bad JSON is reported with the file, line and column."""
    path = _write(tmp_path, '{\n  "a": 1,\n  "b": ,\n}\n', "c.json")
    with pytest.raises(SettingsError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "not valid JSON" in message
    assert "line 3 column 8" in message


@pytest.mark.parametrize(("text", "kind"), [("[1, 2]", "list"), ('"s"', "str"), ("3", "int"),
                                        ("null", "NoneType")])
def test_config_not_an_object(tmp_path, text, kind):
    """JSON that is not an object (e.g. a list) is rejected, naming the type."""
    path = _write(tmp_path, text, "c.json")
    with pytest.raises(SettingsError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert f"not {kind}" in str(info.value)


@pytest.mark.parametrize("text", ['{"env_id": "X", "scale": NaN}', '{"a": [1, -Infinity]}'])
def test_config_with_non_finite_numbers_is_refused(tmp_path, text):
    """Python's json reads NaN and Infinity; a config holding them is named at launch."""
    path = _write(tmp_path, text, "c.json")
    with pytest.raises(SettingsError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "is not a number JSON allows" in str(info.value)


@pytest.mark.parametrize("raw", ["5", "29"])
def test_a_hang_timeout_below_the_minimum_is_refused(tmp_path, raw):
    path = _write(tmp_path, REQUIRED_ONLY + f"SAC_HANG_TIMEOUT={raw}\n")
    with pytest.raises(SettingsError, match=f"SAC_HANG_TIMEOUT={raw} is below 30 seconds"):
        load_training_variables(path)
    path = _write(tmp_path, REQUIRED_ONLY + "SAC_HANG_TIMEOUT=30\n")
    assert load_training_variables(path).hang_timeout_s == 30
