"""The README documents what the code has: every variable, every metric."""

from pathlib import Path

from tfagents_system.core import constants as C
from tfagents_system.settings import VARIABLES

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_every_training_variable_is_documented():
    for name in VARIABLES:
        assert f"`{name}`" in README, name


def test_training_variables_file_only_uses_known_names():
    text = (REPO / "training_variables.sh").read_text()
    assigned = {line.split("=", 1)[0].strip() for line in text.splitlines()
                if "=" in line and not line.lstrip().startswith("#")}
    assert assigned <= set(VARIABLES)


def test_every_metric_is_documented():
    prefixes = [v for k, v in vars(C).items() if k.startswith("M_") and k.endswith("PREFIX")]
    metrics = [v for k, v in vars(C).items() if k.startswith("M_") and not k.endswith("PREFIX")]
    assert len(metrics) >= 10
    for metric in metrics:
        assert f"`{metric}`" in README, metric
    for prefix in prefixes:
        assert f"`{prefix}<name>`" in README, prefix


def test_readme_commands_exist():
    for script in ("run_script.sh", "tests/run.sh", "train_script.sh"):
        assert f"./{script}" in README or script in README
        assert (REPO / script).stat().st_mode & 0o111, f"{script} is not executable"
    assert "./tests/run.sh" in (REPO / ".ci" / "run").read_text()


def test_readme_evaluation_commands_parse():
    """Every tfagents_system.run command the README shows takes only flags the command has,
    and names sweep files that load."""
    import shlex

    from tfagents_system import run
    from tfagents_system.tools import condition_sweep

    commands = [line.split("#")[0] for line in README.splitlines()
                if line.startswith("python -m tfagents_system.run ")]
    assert len(commands) >= 6
    parser = run.build_parser()
    for command in commands:
        args = parser.parse_args(shlex.split(command)[3:])
        if args.sweep_config:
            assert condition_sweep.load_sweep(REPO / args.sweep_config).conditions


def test_readme_sweep_file_examples_load(tmp_path):
    import re

    from tfagents_system.tools import condition_sweep

    blocks = [b for b in re.findall(r"```json\n(.*?)```", README, re.S)
              if '"values"' in b or '"conditions"' in b]
    assert len(blocks) == 2
    for i, block in enumerate(blocks):
        (tmp_path / f"{i}.json").write_text(block)
        assert condition_sweep.load_sweep(tmp_path / f"{i}.json").conditions
