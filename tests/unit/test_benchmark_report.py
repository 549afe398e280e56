"""The benchmark's report (benchmarks/run.py) from synthetic results: the table's
ratios and verdicts, and a complete docs/performance.md-style document."""

import pytest

from benchmarks import run


def _result(runs: dict, **extra) -> dict:
    rates = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}
    return {"runs": runs, "rates": rates, **extra}


@pytest.fixture
def results():
    learner = _result({"in_memory": [200.0, 100.0, 210.0], "stock": [50.0, 25.0, 52.0],
                       "ours": [150.0, 75.0, 140.0]},
                      threads=1, cpus=[1], layout="packed_transition", steps=100, repeats=3,
                      cpu_ms_per_step={"in_memory": 5.0, "ours": 7.0, "stock": 17.0},
                      gpus=[])
    worker = _result({"raw": [2700.0, 1300.0, 2600.0], "ours": [2200.0, 1100.0, 2000.0],
                      "perturbed": [2090.0, 1045.0, 1900.0]},
                     cpus=[1], layout="packed_transition", actor="NumpyActor",
                     num_envs_per_worker=1, steps=1000, repeats=3)
    scaling = {"cpus": [0, 1], "rates": {"1": 2000.0, "2": 3700.0},
               "runs": {"1": [2000.0, 2000.0], "2": [3700.0, 3700.0]},
               "staleness_s": [0.2, 0.4, float("nan"), 0.6], "staleness_workers": 2}
    return learner, worker, scaling


@pytest.fixture
def ideas():
    """The alternatives, measured in their own processes against references there."""
    learner = _result({"in_memory": [190.0, 200.0], "ours": [170.0, 180.0],
                       "sampling_only": [400.0, 380.0], "idea_xla_in_memory": [95.0, 100.0]},
                      cpu_ms_per_step={"in_memory": 5.0, "ours": 7.0, "sampling_only": 2.0,
                                       "idea_xla_in_memory": 6.0})
    worker = _result({"raw": [2700.0, 2600.0], "idea_chunk_1": [1300.0, 1300.0]})
    return {"learner": learner, "worker": worker}


def test_rows_use_ratios_of_the_same_round(results):
    rows = {row["figure"]: row for row in run.build_rows(*results)}
    inmem = rows["learner grad steps/s: ours vs in-memory"]
    assert inmem["ratio"] == pytest.approx(0.75)  # 150/200, 75/100, 140/210 -> median
    assert not inmem["pass"]
    assert rows["learner grad steps/s: ours vs stock TF-Agents"]["pass"]
    worker = rows["worker env steps/s: ours vs raw env stepping"]
    assert worker["ratio"] == pytest.approx(2200 / 2700)  # rounds: 0.81, 0.85, 0.77
    assert worker["pass"]
    perturbed = rows["worker env steps/s: all perturbations on vs none"]
    assert perturbed["ratio"] == pytest.approx(0.95) and perturbed["pass"]  # 0.95 in each round
    assert rows["2 workers vs 1 worker, env steps/s"]["ratio"] == pytest.approx(1.85)
    assert rows["2 workers vs 1 worker, env steps/s"]["pass"]


def test_document_has_machine_table_and_staleness(results, ideas, tmp_path):
    machine = run.describe_machine()
    machine["load_after"] = machine["load_before"]
    rows = run.build_rows(*results)
    path = tmp_path / "docs" / "performance.md"
    settings = {"prefill": 5000, "feed_rate": 2000, "learner_server_cpus": [0],
                "worker_server_cpus": [0], "ideas_repeats": 2}
    run.write_document(path, machine, settings, True, rows, *results, ideas, elapsed_s=100)
    text = path.read_text()
    assert machine["cpu_model"] in text and "tensorflow 2." in text
    assert run.format_table(rows) in text
    assert "median 0.40 s, max 0.60 s over 3 publications" in text
    assert "Quick run" in text
    # Alternatives: each row is its ratio to the reference measured in its own process.
    xla = next(line for line in text.splitlines()
               if line.startswith("| learner: XLA-compiled train step"))
    assert "| in_memory 200.0 | 0.50 |" in xla
    chunk_1 = next(line for line in text.splitlines()
                   if line.startswith("| worker: one packed item per env step, chunks of 1 |"))
    assert "| raw 2700.0 | 0.49 |" in chunk_1
    # An alternative that was not measured gets no row.
    assert "chunks of 16" not in text
    assert "medians of 2 rounds" in text
    assert "Reverb's sampling alone 2.00 ms of CPU per batch" in text


def test_the_ab_table_takes_each_runs_round_ratios_and_skips_what_a_checkout_lacks():
    from benchmarks import ab

    runs = {"raw": [2000.0, 1000.0, 2000.0], "ours": [1800.0, 950.0, 1600.0]}
    assert ab.ratio(runs, "ours", "raw") == pytest.approx(0.9)  # of 0.9, 0.95, 0.8
    assert ab.ratio(runs, "ours_dict", "ours") is None


def test_the_ab_command_refuses_a_directory_that_is_no_checkout(tmp_path, capsys):
    from benchmarks import ab

    with pytest.raises(SystemExit) as stop:
        ab.main(["--part", "worker", "--before", str(tmp_path)])
    assert stop.value.code == 2
    assert "not a checkout of this project" in capsys.readouterr().err
