"""CrossQ (chosen by the config's "agent") and gSDE (a params setting) through the real
launch: a tiny InvertedPendulum run stopped after its first checkpoint and resumed to
the end. The workers act with the numpy actor (gSDE's noise in it), and CrossQ's batch
renormalization statistics survive the resume: its critics' layers count every
training call across both launches."""

from __future__ import annotations

import json

import launch_helpers as lh
import pytest

tf = pytest.importorskip("tensorflow")

pytestmark = pytest.mark.e2e

CASES = {
    "crossq": ({"env_id": "InvertedPendulumBulletEnv-v0", "agent": "crossq"},
               "crossq_critic_layers = (32, 32)\n", "collect policy: the SAC actor network in "
               "numpy\n"),
    "gsde": ({"env_id": "InvertedPendulumBulletEnv-v0"},
             "use_sde = True\nsde_sample_freq = 8\nsde_log_std_init = -1.0\n",
             "collect policy: the SAC actor network in numpy with gSDE's noise"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_agent_option_trains_stops_and_resumes(workdir, case):
    config, extra, collect_line = CASES[case]
    (workdir / "config.json").write_text(json.dumps(config))
    # paced by collection (one gradient step per 40 env steps) so the stop comes first
    lh.write_params(workdir / "params.py", num_iter=6, steps=100, ckpt=1,
                    extra=extra + "samples_per_insert = 0.8\n")
    variables = lh.write_variables(workdir / "vars.sh", SAC_CONFIG=workdir / "config.json")
    exp = workdir / "logs" / "tiny"
    stopped_at = lh.interrupt_after_first_checkpoint(variables, exp, workdir / "first.log")
    assert 0 < stopped_at < 600
    result = lh.run_script(variables)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not lh.programs_of(exp)
    assert (exp / "TRAINING_COMPLETE.json").is_file()
    learner_log = (exp / "process_logs" / "learner.log").read_text()
    assert f"resumed at train step {stopped_at} of 600" in learner_log
    assert collect_line in (exp / "process_logs" / "worker_0.log").read_text()
    settings = json.loads((exp / "settings.json").read_text())["hyperparameters"]
    checkpoint = tf.train.latest_checkpoint(str(exp / "checkpoints"))
    names = dict(tf.train.list_variables(checkpoint))
    if case == "crossq":
        assert settings["agent"] == "crossq"
        # the first layer of each critic normalized every critic step; the actor's
        # every third (the policy delay)
        critic = "agent/_critic_network_1/_critics/{}/0/steps/.ATTRIBUTES/VARIABLE_VALUE"
        actor = "agent/_actor_network/stack/0/steps/.ATTRIBUTES/VARIABLE_VALUE"
        assert [int(tf.train.load_variable(checkpoint, critic.format(i))) for i in (0, 1)] \
            == [600, 600]
        assert int(tf.train.load_variable(checkpoint, actor)) == 200
        assert not any("target_critic" in n.lower() for n in names)
    else:
        assert settings["use_sde"] is True
        assert any("log_std" in n for n in names)
