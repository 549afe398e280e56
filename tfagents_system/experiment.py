"""An existing experiment as the programs and commands open it: its paths, the
settings record written at its creation, and the params it trains with (its own
copies of the params file and config, a sweep task's overrides applied, the
network defaults it was created with kept)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfagents_system.core.files import read_json
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.records import ExperimentSettings, VariantRecord
from tfagents_system.params import TrainParamsBase, load_params


@dataclass(frozen=True)
class Experiment:
    """A prepared experiment directory: paths, settings record and params."""

    paths: ExperimentPaths
    params: TrainParamsBase
    settings: ExperimentSettings


def variant(paths: ExperimentPaths) -> VariantRecord | None:
    """A sweep task's variant record (None for a plain experiment)."""
    return VariantRecord.read(paths.variant) if paths.variant.is_file() else None


def params_overrides(paths: ExperimentPaths) -> dict:
    """The hyperparameters a sweep task overrides ({} for a plain experiment)."""
    record = variant(paths)
    return {} if record is None else dict(record.params_overrides)


def load_params_of(paths: ExperimentPaths, config: dict, settings: ExperimentSettings,
                   params_file: Path | None = None) -> TrainParamsBase:
    """The experiment's params with `config`: its own params file (or `params_file`,
    whose class then takes no sweep overrides), as it was created."""
    overrides = {} if params_file else params_overrides(paths)
    return load_params(params_file or paths.params, config, overrides, str(paths.variant),
                       recorded=settings.hyperparameters)


def load_experiment(exp_dir: str | Path) -> Experiment:
    """The experiment at `exp_dir` (its settings.json must exist)."""
    paths = ExperimentPaths(Path(exp_dir))
    settings = ExperimentSettings.read(paths.settings)
    return Experiment(paths, load_params_of(paths, read_json(paths.config), settings), settings)
