"""Training variables (the `.sh` file given to run_script.sh) and the JSON config.

Both are read and validated once, here, before any program starts. Every
problem is reported as one line naming the file or variable and the fix.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """Bad training variables or config; the message says the fix."""


# name -> documentation (README.md repeats these; tests check they agree).
VARIABLES = {
    "SAC_PARAMS": "params .py file defining class TrainParams(TrainParamsBase)",
    "SAC_CONFIG": "JSON config file (an object); becomes TrainParams.env_config",
    "SAC_EXP_NAME": "experiment name: logs go to $SAC_LOGS_DIR/$SAC_EXP_NAME",
    "SAC_LOGS_DIR": "directory holding experiments (default: logs)",
    "SAC_NUM_COLLECT_WORKERS": "number of collect/eval workers, or auto",
    "SAC_REVERB_CPUS": "CPUs for the replay server, or auto",
    "SAC_TRAIN_CPUS": "CPUs for the learner, or auto",
    "SAC_COLLECT_WORKER_CPUS": "CPUs for each worker, or auto",
    "SAC_HANG_TIMEOUT": "seconds without progress before a program is restarted (default 600)",
    "SAC_MAX_RESTARTS": "restarts of one program within 10 minutes before the run stops "
                        "(default 5)",
    "SAC_FINAL_VIDEO": "1 (default): render a video of the final policy and the learning "
                       "curves when training completes; 0: don't",
    "SAC_SWEEP": "sweep JSON file (grid of overrides x seeds); each array task (or "
                 "SAC_TASK_ID) runs one variant (default: none)",
    "SAC_PRIVATE_NETWORK": "auto (default): a one-node run's programs share a private "
                           "network namespace where the host allows it, so no one outside "
                           "the run reaches the replay port; 0: they use this host's network "
                           "(then SAC_ALLOW_PUBLIC_REPLAY applies)",
    "SAC_ALLOW_PUBLIC_REPLAY": "1: start a one-node run whose replay port is reachable from "
                               "other hosts (no private network namespace, and the host has "
                               "an address other than loopback; see README, Security); "
                               "0 (default): refuse",
    "SAC_LAUNCH_TIMEOUT": "seconds the launch checks may take running your code (params "
                          "import, env_ctor, first env steps) before the launch stops "
                          "(default 300)",
    "SAC_INIT_FROM": "experiment directory a new experiment starts from (fine-tuning; "
                     "overrides TrainParams.init_from; default: none; ignored on resume)",
}
REQUIRED = ("SAC_PARAMS", "SAC_CONFIG", "SAC_EXP_NAME")
COUNTS = ("SAC_NUM_COLLECT_WORKERS", "SAC_REVERB_CPUS", "SAC_TRAIN_CPUS",
          "SAC_COLLECT_WORKER_CPUS")
EXP_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Variables bash itself defines while sourcing a file.
_BASH_OWN = {"PWD", "OLDPWD", "SHLVL", "_", "BASH_EXECUTION_STRING"}


@dataclass(frozen=True)
class TrainingVariables:
    """The validated training variables of a launch."""

    source: str
    params: Path
    config: Path
    exp_name: str
    logs_dir: Path
    num_workers: int | None
    reverb_cpus: int | None
    train_cpus: int | None
    worker_cpus: int | None
    hang_timeout_s: float = 600.0
    max_restarts: int = 5
    final_video: bool = True
    sweep: Path | None = None
    launch_timeout_s: float = 300.0
    private_network: bool = True  # SAC_PRIVATE_NETWORK=auto: where the host allows it
    allow_public_replay: bool = False
    init_from: Path | None = None

    @property
    def exp_dir(self) -> Path:
        return self.logs_dir / self.exp_name

    def as_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def _source_variables(path: Path) -> dict[str, str]:
    """The variables a bash file assigns, read by sourcing it in an empty environment."""
    script = 'set -a; source "$1" >/dev/null || exit 97; env -0'
    inherited = {k: os.environ[k] for k in ("PATH", "HOME", "USER") if k in os.environ}
    result = subprocess.run(
        ["bash", "-c", script, "bash", str(path.resolve())],
        env=inherited,
        capture_output=True, cwd=path.parent, check=False,
    )
    if result.returncode != 0:
        err = result.stderr.decode(errors="replace").strip().splitlines()
        raise SettingsError(
            f"training variables file {path}: sourcing it failed"
            + (f" ({err[-1]})" if err else "") + "; fix the shell syntax"
        )
    pairs = (item.split("=", 1) for item in result.stdout.decode().split("\0") if "=" in item)
    return {k: v for k, v in pairs if k not in _BASH_OWN and inherited.get(k) != v}


def _count(name: str, raw: str, path: Path) -> int | None:
    value = raw.strip()
    if value in ("", "auto"):
        return None
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number <= 0:
        raise SettingsError(
            f"training variables file {path}: {name}={raw!r} must be a positive integer or auto"
        )
    return number


# A program's start (TensorFlow, the env, the agent) may take this long before its first
# heartbeat of progress on a slow machine.
MIN_HANG_TIMEOUT_S = 30


def _hang_timeout(raw: str, path: Path) -> float:
    seconds = _count("SAC_HANG_TIMEOUT", raw, path) or 600
    if seconds < MIN_HANG_TIMEOUT_S:
        raise SettingsError(
            f"training variables file {path}: SAC_HANG_TIMEOUT={raw.strip()} is below "
            f"{MIN_HANG_TIMEOUT_S} seconds: a program's start alone can take that long, and "
            "it would be killed in a loop; set at least 30")
    return float(seconds)


def _flag(name: str, raw: str, path: Path) -> bool:
    if raw.strip() not in ("0", "1"):
        raise SettingsError(f"training variables file {path}: {name}={raw!r} must be 1 or 0")
    return raw.strip() == "1"


def _auto_or_off(name: str, raw: str, path: Path) -> bool:
    """auto: True (the feature where the host allows it); 0: False."""
    if raw.strip() not in ("auto", "0"):
        raise SettingsError(f"training variables file {path}: {name}={raw!r} must be auto "
                            "or 0")
    return raw.strip() == "auto"


def load_training_variables(path: str | Path) -> TrainingVariables:
    """Read and validate a training variables file; SettingsError names the problem."""
    path = Path(path)
    if not path.is_file():
        raise SettingsError(
            f"training variables file {path}: not found; pass an existing file, "
            "e.g. ./run_script.sh training_variables.sh"
        )
    values = _source_variables(path)
    unknown = sorted(set(values) - set(VARIABLES))
    if unknown:
        raise SettingsError(
            f"training variables file {path}: unknown variable(s) {', '.join(unknown)}; "
            f"known: {', '.join(VARIABLES)}"
        )
    missing = [name for name in REQUIRED if not values.get(name)]
    if missing:
        raise SettingsError(
            f"training variables file {path}: {', '.join(missing)} not set; add e.g. "
            f"{missing[0]}=..."
        )
    base = path.parent.resolve()

    def resolve(raw: str) -> Path:
        p = Path(os.path.expanduser(raw))
        return p if p.is_absolute() else base / p

    exp_name = values["SAC_EXP_NAME"]
    if not EXP_NAME_RE.fullmatch(exp_name):
        raise SettingsError(
            f"training variables file {path}: SAC_EXP_NAME={exp_name!r} must be a plain name "
            "(letters, digits, '.', '_', '-')"
        )
    return TrainingVariables(
        source=str(path.resolve()),
        params=resolve(values["SAC_PARAMS"]),
        config=resolve(values["SAC_CONFIG"]),
        exp_name=exp_name,
        logs_dir=resolve(values.get("SAC_LOGS_DIR") or "logs"),
        num_workers=_count("SAC_NUM_COLLECT_WORKERS",
                           values.get("SAC_NUM_COLLECT_WORKERS", "auto"), path),
        reverb_cpus=_count("SAC_REVERB_CPUS", values.get("SAC_REVERB_CPUS", "auto"), path),
        train_cpus=_count("SAC_TRAIN_CPUS", values.get("SAC_TRAIN_CPUS", "auto"), path),
        worker_cpus=_count("SAC_COLLECT_WORKER_CPUS",
                           values.get("SAC_COLLECT_WORKER_CPUS", "auto"), path),
        hang_timeout_s=_hang_timeout(values.get("SAC_HANG_TIMEOUT", ""), path),
        max_restarts=_count("SAC_MAX_RESTARTS", values.get("SAC_MAX_RESTARTS", ""), path) or 5,
        final_video=_flag("SAC_FINAL_VIDEO", values.get("SAC_FINAL_VIDEO", "1"), path),
        sweep=resolve(values["SAC_SWEEP"]) if values.get("SAC_SWEEP") else None,
        private_network=_auto_or_off("SAC_PRIVATE_NETWORK",
                                     values.get("SAC_PRIVATE_NETWORK") or "auto", path),
        allow_public_replay=_flag("SAC_ALLOW_PUBLIC_REPLAY",
                                  values.get("SAC_ALLOW_PUBLIC_REPLAY", "0"), path),
        launch_timeout_s=float(_count("SAC_LAUNCH_TIMEOUT",
                                      values.get("SAC_LAUNCH_TIMEOUT", ""), path) or 300),
        init_from=resolve(values["SAC_INIT_FROM"]) if values.get("SAC_INIT_FROM") else None,
    )


class NonFiniteJSON(ValueError):
    """A JSON text holds NaN or Infinity (Python's json reads them; the standard does not)."""


def _refuse_constant(name: str):
    raise NonFiniteJSON(f"{name} is not a number JSON allows; write a finite number")


def loads_finite(text: str) -> Any:
    """json.loads, refusing NaN, Infinity and -Infinity (NonFiniteJSON)."""
    return json.loads(text, parse_constant=_refuse_constant)


def load_json_object(path: Path, where: str, error: type[Exception], not_found: str,
                     example: str) -> dict:
    """A JSON file that must exist, parse, hold only finite numbers and be an object;
    `error` (one line starting with `where`) otherwise. `not_found` says the fix for a
    missing file, `example` what an object of the file looks like."""
    if not path.is_file():
        raise error(f"{where}: not found; {not_found}")
    try:
        data = loads_finite(path.read_text())
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not valid JSON (line {exc.lineno} column {exc.colno}: "
                    f"{exc.msg}); fix the syntax") from None
    except NonFiniteJSON as exc:
        raise error(f"{where}: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"{where}: must hold a JSON object {example}, not {type(data).__name__}")
    return data


def load_config(path: str | Path) -> dict[str, Any]:
    """The JSON config: must exist, parse, and be an object."""
    path = Path(path)
    return load_json_object(path, f"config file {path}", SettingsError,
                            "set SAC_CONFIG to a JSON file", "({...})")
