"""The learning benchmark's variants (benchmarks/learning.py `--variants`), without
training: experiment names that read back with their variant, launch files carrying
the variant's settings, and a report with a column group, targets and a curve per
variant."""

import json

import pytest
from test_learning_benchmark_tasks import MACHINE, _cells, _run

from benchmarks import learning
from tfagents_system.core import constants as C


@pytest.mark.parametrize("task, variant, budget", [
    ("HalfCheetahBulletEnv-v0", "sac", "300k"), ("HalfCheetahBulletEnv-v0", "sac_gsde", "50k"),
    ("PandaReach-v3", "sac_gsde", "20k"), ("Ant-v5", "sac", "1M")])
def test_names_read_back_with_their_variant(task, variant, budget):
    steps = learning.parse_budget(budget) if budget != "1M" else 1_000_000
    name = C.task_experiment_name(learning.experiment_name(task, steps, variant), 3)
    if variant == "sac":  # the default variant's names are as before variants
        assert name == f"{task}_{learning.budget_label(steps)}_task_3"
    match = learning.EXP_PATTERN.match(name)
    assert (match["task"], match["variant"] or "sac", learning.parse_budget(match["budget"]),
            match["seed"]) == (task, variant, steps, "3")


def test_a_variants_launch_files_carry_its_settings_and_overrides_win(tmp_path):
    variables = learning.write_launch_files(tmp_path, "HopperBulletEnv-v0", 50_000, 2,
                                            {"n_eval_episodes": 2, "sde_sample_freq": 8},
                                            "sac_gsde")
    text = variables.read_text()
    assert "SAC_EXP_NAME=HopperBulletEnv-v0__sac_gsde_50k\n" in text
    sweep = json.loads((tmp_path / "launch" / "HopperBulletEnv-v0__sac_gsde_50k.sweep.json"
                        ).read_text())
    grid = sweep["grid"]
    assert grid["params.use_sde"] == [True] and grid["params.sde_log_std_init"] == [-3.0]
    assert grid["params.sde_sample_freq"] == [8] and grid["params.n_eval_episodes"] == [2]
    assert grid["params.num_iter"] == [40]  # 10k warm-up, then 40 x 1000 steps
    config = tmp_path / "launch" / "HopperBulletEnv-v0__sac_gsde.json"
    assert json.loads(config.read_text()) == {"env_id": "HopperBulletEnv-v0"}
    params = learning.preset_params({}, "HopperBulletEnv-v0", "sac_gsde")
    assert params.use_sde is True and params.validate() == []


def test_an_unknown_variant_is_one_line():
    with pytest.raises(learning.BenchmarkError, match="--variants crossqq: unknown; known: sac"):
        learning.preset_params({}, "HopperBulletEnv-v0", "crossqq")


def test_the_report_has_a_column_group_targets_and_a_curve_per_variant(tmp_path):
    """HalfCheetah: sac seeds 0 and 1 (x/200, x/250), sac_gsde seed 0 (x/100) that
    reaches 300k twice as fast per env step; Hopper: sac only."""
    task = "HalfCheetahBulletEnv-v0"
    gsde = _run(task, 0, 300_000, 10_000, lambda x: x / 100, seconds_per_step=0.02)
    gsde.variant, gsde.name = "sac_gsde", f"{task}__sac_gsde_300k_task_0"
    runs = [_run(task, 0, 300_000, 10_000, lambda x: x / 200),
            _run(task, 1, 300_000, 10_000, lambda x: x / 250), gsde,
            _run("HopperBulletEnv-v0", 0, 300_000, 10_000, lambda x: x / 100)]
    out = tmp_path / "learning.md"
    learning.write_report(out, runs, {}, MACHINE, "./benchmarks/run.sh learning --variants x")
    text = out.read_text()
    heading = f"## {task}"
    lines = text.splitlines()
    header = next(line for line in lines[lines.index(heading):]
                  if line.startswith("| env steps |"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "env steps", "zoo reference", "ours sac: mean ± sd (seeds)", "ours sac per seed",
        "ours sac_gsde: mean ± sd (seeds)", "ours sac_gsde per seed",
        "ours sac wall clock, min", "ours sac_gsde wall clock, min", "SB3 here: return",
        "SB3 wall clock, min (training only)", "wall clock ours sac / SB3"]
    row = _cells(text, "100k", heading)
    assert row[2:6] == ["450 ± 71 (2)", "500 (s0), 400 (s1)", "1000 ± 0 (1)", "1000 (s0)"]
    assert row[6:8] == ["16.7", "33.3"]
    # Hopper has one variant: its columns are as before variants
    assert _cells(text, "300k", "## HopperBulletEnv-v0")[2] == "3000 ± 0 (1)"
    targets = text.split("## Targets", 1)[1]
    assert f"| {task} (sac) | 1174 | 1350 | 2 | yes |" in targets
    assert f"| {task} (sac_gsde) | 1174 | 3000 | 1 | yes |" in targets
    assert "| HopperBulletEnv-v0 | 1713 | 3000 | 1 | yes |" in targets
    assert (tmp_path / "learning.png").stat().st_size > 10_000


def test_the_crossq_variant_is_the_configs_agent(tmp_path):
    learning.write_launch_files(tmp_path, "AntBulletEnv-v0", 50_000, 1, {}, "crossq")
    config = json.loads((tmp_path / "launch" / "AntBulletEnv-v0__crossq.json").read_text())
    assert config == {"env_id": "AntBulletEnv-v0", "agent": "crossq"}
    params = learning.preset_params({}, "AntBulletEnv-v0", "crossq")
    assert params.agent == "crossq" and params.crossq_settings().critic_layers == (1024, 1024)


def test_the_crossq_peer_is_sb3_contribs_crossq_with_its_defaults(tmp_path):
    from benchmarks import sb3_peer

    peer = sb3_peer.peer_settings("HalfCheetahBulletEnv-v0", "crossq")
    assert peer["algo"] == "crossq" and peer["sac"] == {} and peer["time_feature"]
    assert sb3_peer.peer_settings("HalfCheetahBulletEnv-v0")["sac"]["use_sde"]
    assert learning.sb3_algo("crossq") == "crossq" and learning.sb3_algo("sac_gsde") == "sac"
    with pytest.raises(ValueError, match="--algo td3"):
        sb3_peer.peer_settings("HalfCheetahBulletEnv-v0", "td3")
    # the records of both peers read back apart
    for algo, wall in (("sac", 400.0), ("crossq", 800.0)):
        path = learning.sb3_path(tmp_path, "HalfCheetahBulletEnv-v0", 50_000, 0, algo)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"env_steps": 50_000, "wall_s": wall, "eval_s": 0.0,
                                    "mean_return": wall}) + "\n"
                        + json.dumps({"done": True}) + "\n")
    found = learning.collect_sb3(tmp_path)["HalfCheetahBulletEnv-v0"]
    assert sorted((r["algo"], r["returns"][0]) for r in found) == [("crossq", 800.0),
                                                                 ("sac", 400.0)]
    # the table compares our crossq variant's wall clock with the CrossQ peer's
    task = "HalfCheetahBulletEnv-v0"
    ours = _run(task, 0, 50_000, 10_000, lambda x: x / 100, seconds_per_step=0.004)
    crossq = _run(task, 0, 50_000, 10_000, lambda x: x / 50, seconds_per_step=0.008)
    crossq.variant = "crossq"
    lines, _ = learning.task_table(task, [ours, crossq], found)
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[-6:] == [
        "SB3 here: return", "SB3 wall clock, min (training only)", "wall clock ours sac / SB3",
        "sb3-contrib CrossQ here: return",
        "sb3-contrib CrossQ wall clock, min (training only)",
        "wall clock ours crossq / sb3-contrib CrossQ"]
    row = [c.strip() for c in lines[-1].strip("|").split("|")]
    assert row[0] == "50k" and row[-6:] == ["400 (1)", "6.7 (6.7)", "0.50 (0.50)",
                                            "800 (1)", "13.3 (13.3)", "0.50 (0.50)"]


def test_the_width_variants_are_crossq_with_narrower_critics(tmp_path):
    learning.write_launch_files(tmp_path, "HopperBulletEnv-v0", 50_000, 1, {}, "crossq_w256")
    sweep = json.loads((tmp_path / "launch" / "HopperBulletEnv-v0__crossq_w256_50k.sweep.json"
                        ).read_text())
    assert sweep["grid"]["params.crossq_critic_layers"] == [[256, 256]]
    params = learning.preset_params({}, "HopperBulletEnv-v0", "crossq_w256")
    assert params.crossq_settings().critic_layers == (256, 256) and params.validate() == []
    assert learning.sb3_algo("crossq_w256") == "crossq"


def test_the_crossq_peers_critic_width_is_for_crossq_only(tmp_path, capsys):
    from benchmarks import sb3_peer

    with pytest.raises(SystemExit) as exit_:
        sb3_peer.main(["--env_id", "HalfCheetahBulletEnv-v0", "--env_steps", "10",
                       "--critic_layers", "256", "256", "--output", str(tmp_path / "x")])
    assert exit_.value.code == 2 and "--critic_layers is for --algo crossq" in \
        capsys.readouterr().err
    assert not (tmp_path / "x").exists()
