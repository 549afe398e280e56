"""Sweeps: a grid of config and hyperparameter overrides times seeds, one variant per task.

A sweep file is JSON:

    {"grid": {"params.target_update_tau": [0.005, 0.02],
              "config.domain_randomization": [false, true]},
     "seeds": [0, 1, 2]}

`params.<name>` overrides a `TrainParams` attribute, `config.<key>` a config key
(dots reach into nested objects: `config.gym_kwargs.render`). Variants are the
grid's cartesian product in the file's key order with the seeds varying fastest;
task id i runs variant i. Set `SAC_SWEEP` in the training variables file and
submit an array job (`--array` printed by this command), or run one variant on a
workstation with `SAC_TASK_ID=i ./run_script.sh VARS`.

    python -m tfagents_system.sweep SWEEP.json [--array]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfagents_system.core import constants as C
from tfagents_system.core.records import VariantRecord
from tfagents_system.settings import load_json_object

PREFIXES = ("params.", "config.")


class SweepError(ValueError):
    """A sweep file or task id is unusable; the message names the file and the fix."""


@dataclass(frozen=True)
class Variant:
    """What one task changes: config keys (dotted), params attributes and the seed."""

    task_id: int
    config: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None

    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in {**self.config, **self.params}.items()]
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        return " ".join(parts) or "base"

    def params_overrides(self) -> dict[str, Any]:
        return {**self.params, **({} if self.seed is None else {"seed": self.seed})}

    def record(self, sweep_file: Path | None = None) -> VariantRecord:
        """The variant as the experiment records it (variant.json)."""
        return VariantRecord(self.task_id, self.label(), dict(self.config),
                             self.params_overrides(),
                             None if sweep_file is None else str(sweep_file))


def load_sweep(path: str | Path) -> list[Variant]:
    """Every variant of a sweep file, in task id order."""
    path = Path(path)
    where = f"sweep file {path}"
    data = _read_object(path, where)
    grid = data.get("grid", {})
    seeds = data.get("seeds")
    _check_grid(grid, where)
    if seeds is not None:
        _check_seeds(seeds, where)
    if not grid and seeds is None:
        raise SweepError(f'{where}: has neither "grid" nor "seeds"; nothing to sweep')
    keys = list(grid)
    variants = []
    for values in itertools.product(*(grid[k] for k in keys)):
        chosen = dict(zip(keys, values))
        config = {k[len("config."):]: v for k, v in chosen.items() if k.startswith("config.")}
        params = {k[len("params."):]: v for k, v in chosen.items() if k.startswith("params.")}
        for seed in seeds if seeds is not None else [None]:
            variants.append(Variant(len(variants), config, params, seed))
    return variants


def _read_object(path: Path, where: str) -> dict:
    """The sweep file's JSON object, with only the keys "grid" and "seeds"."""
    data = load_json_object(path, where, SweepError, "set SAC_SWEEP to an existing JSON file",
                            'like {"grid": {...}, "seeds": [...]}')
    unknown = sorted(set(data) - {"grid", "seeds"})
    if unknown:
        raise SweepError(f"{where}: unknown key(s) {', '.join(unknown)}; use \"grid\" and "
                         "\"seeds\"")
    return data


def _check_grid(grid, where: str) -> None:
    if not isinstance(grid, dict):
        raise SweepError(f'{where}: "grid" must be an object of key -> list of values')
    for key, values in grid.items():
        if not key.startswith(PREFIXES) or len(key.split(".", 1)[1]) == 0:
            raise SweepError(f'{where}: grid key "{key}" must start with "params." (a '
                             'TrainParams attribute) or "config." (a config key)')
        if key.startswith("params.") and "." in key[len("params."):]:
            raise SweepError(f'{where}: grid key "{key}": params attributes are not nested')
        if key == "params.seed":
            raise SweepError(f'{where}: grid key "params.seed": list seeds under "seeds"')
        if not isinstance(values, list) or not values:
            raise SweepError(f'{where}: grid key "{key}" must map to a non-empty list of '
                             'values')


def _check_seeds(seeds, where: str) -> None:
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                       for s in seeds)):
        raise SweepError(f'{where}: "seeds" must be a non-empty list of integers >= 0')
    if len(set(seeds)) != len(seeds):
        raise SweepError(f'{where}: "seeds" lists a seed twice; each must be unique')


def variant_for_task(path: str | Path, task_id: int) -> Variant:
    """The variant task `task_id` trains; SweepError if out of range."""
    variants = load_sweep(path)
    if not 0 <= task_id < len(variants):
        raise SweepError(f"sweep file {path}: task id {task_id} is out of range: it has "
                         f"{len(variants)} variant(s); submit with --array=0-{len(variants) - 1}")
    return variants[task_id]


def check_sweep_config_keys(config: dict, dotted_keys, sweep_file: Path | None,
                            config_file: Path) -> None:
    """A sweep's `config.<key>` must name a key of the config, or one the framework reads
    (C.CONFIG_KEYS, anything below `gym_kwargs`): a typo would train the base config."""
    for dotted in dotted_keys:
        parts = dotted.split(".")
        if parts[0] in C.CONFIG_KEYS:
            continue
        node = config
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                known = ", ".join(sorted(set(config) | set(C.CONFIG_KEYS)))
                raise SweepError(f"sweep file {sweep_file}: config.{dotted} names no key of "
                                 f"config file {config_file} (keys: {known}); fix the "
                                 "spelling, or add the key to the config with its default")
            node = node[part]


def apply_config_overrides(config: dict, overrides: dict[str, Any]) -> dict:
    """A copy of `config` with dotted keys set (`gym_kwargs.render` reaches into objects)."""
    out = json.loads(json.dumps(config))
    for dotted, value in overrides.items():
        node = out
        *parents, last = dotted.split(".")
        for i, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SweepError(f'config override "{dotted}": config key '
                                 f'"{".".join(parents[:i + 1])}" is not an object')
            node = child
        node[last] = value
    return out


def main(argv=None) -> int:
    """The sweep command: list variants, or print the --array range."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_file", type=Path)
    parser.add_argument("--array", action="store_true",
                        help="print only the --array range (for scripts)")
    args = parser.parse_args(argv)
    try:
        variants = load_sweep(args.sweep_file)
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return C.EXIT_BAD_INPUT
    array = f"0-{len(variants) - 1}"
    if args.array:
        print(array)
        return 0
    for v in variants:
        print(f"task {v.task_id:>3}  {v.label()}")
    print(f"{len(variants)} variant(s); submit with: sbatch --array={array} slurm/train.sbatch "
          f"TRAINING_VARIABLES.sh  (the file must set SAC_SWEEP={args.sweep_file})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
