"""The rules a params file's settings must follow: one problem per bad setting, naming
it and what a valid value is (`hyperparameter_problems`)."""

from __future__ import annotations

from collections.abc import Mapping

from tfagents_system import hindsight
from tfagents_system.agents.settings import AGENTS
from tfagents_system.core.values import is_number


def hyperparameter_problems(params) -> list[str]:
    """All problems with a params object's settings, each naming the field and the fix."""
    problems = [f"{name}={getattr(params, name)!r}: {what}"
                for names, valid, what in _RULES for name in names
                if not valid(getattr(params, name))]
    if (isinstance(params.min_replay_size, int) and isinstance(params.replay_capacity, int)
            and params.min_replay_size > params.replay_capacity):
        problems.append(
            f"min_replay_size={params.min_replay_size} exceeds replay_capacity="
            f"{params.replay_capacity}: lower min_replay_size or raise the capacity"
        )
    if not any(p.startswith(("conv_", "encoder_features")) for p in problems):
        problems += params.conv_settings().problems()
    problems += _demonstration_problems(params)
    problems += _sde_problems(params)
    problems += _crossq_problems(params)
    problems += hindsight.settings_problems(params)
    spi, slack = params.samples_per_insert, params.samples_per_insert_error_buffer
    if is_number(spi) and is_number(slack) and slack < max(1.0, spi):
        problems.append(
            f"samples_per_insert_error_buffer={slack!r} is below max(1, "
            f"samples_per_insert={spi!r}), the least Reverb's limiter takes: raise it "
            "(it is in sampled items: a few batches' worth) or set it to None")
    return problems


def _demonstration_problems(params) -> list[str]:
    """Settings that need demonstrations, given none."""
    given = params.env_config.get("demonstrations") or params.demonstrations
    problems = []
    for name, default in (("demo_ratio", None), ("bc_warm_start_steps", 0)):
        if not given and getattr(params, name) != default:
            problems.append(f"{name}={getattr(params, name)!r} without demonstrations: "
                            f"list the files in demonstrations, or set {name} = {default}")
    return problems


def _sde_problems(params) -> list[str]:
    """gSDE needs the workers' numpy actor: feed-forward layers on vector observations."""
    if params.use_sde is not True:
        return []
    why = ("recurrent = True" if params.recurrent is True
           else "image observations (the config's \"pixels\")" if params.env_config.get(
               "pixels") not in (None, False)
           else "actor_fc_layers=()" if params.actor_fc_layers == () else None)
    if why is None:
        return []
    return [f"use_sde=True with {why}: gSDE draws its noise from the actor's last hidden "
            "layer in the workers' numpy actor, which needs feed-forward actor_fc_layers on "
            "vector observations; set use_sde = False"]


def _crossq_problems(params) -> list[str]:
    """CrossQ's networks are feed-forward on vector (or dict) observations, its actor
    SAC's head."""
    if params.agent != "crossq":
        return []
    why = ("recurrent = True" if params.recurrent is True
           else "image observations (the config's \"pixels\")" if params.env_config.get(
               "pixels") not in (None, False)
           else "use_sde = True" if params.use_sde is True else None)
    if why is None:
        return []
    return [f"agent='crossq' with {why}: CrossQ's batch-renormalized networks are "
            "feed-forward on vector observations with SAC's white-noise head; use "
            "agent = 'sac' for this"]


def _layer_sizes(value) -> bool:
    return isinstance(value, (tuple, list)) and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)


def _int_at_least(minimum: int):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def _number_above(bound: float):
    return lambda v: is_number(v) and v > bound


def _normalization(value) -> bool:
    """{leaf path: (mean, std)} with numbers or lists of numbers, every std > 0."""
    def numbers(v, positive=False):
        items = v if isinstance(v, (list, tuple)) else [v]
        return len(items) > 0 and all(is_number(x) and (x > 0 or not positive) for x in items)

    return isinstance(value, Mapping) and all(
        isinstance(key, str) and isinstance(pair, (list, tuple)) and len(pair) == 2
        and numbers(pair[0]) and numbers(pair[1], positive=True)
        for key, pair in value.items())


def _share(value) -> bool:
    return is_number(value) and 0 <= value <= 1


def _demo_ratio(value) -> bool:
    """None, a share in [0, 1], or ((train step, share), ...) with increasing steps."""
    if value is None or _share(value):
        return True
    if not isinstance(value, (tuple, list)) or not value:
        return False
    points = [p for p in value if isinstance(p, (tuple, list)) and len(p) == 2
              and _int_at_least(0)(p[0]) and _share(p[1])]
    return len(points) == len(value) and all(
        a[0] < b[0] for a, b in zip(points, points[1:]))


def _files(value) -> bool:
    return isinstance(value, (tuple, list)) and all(
        isinstance(v, str) and v.strip() for v in value)


def _or_none(valid):
    return lambda v: v is None or valid(v)


# (hyperparameters, valid(value), what a valid value is), in the order reported.
_RULES = (
    (("batch_size", "num_iter", "num_steps_per_iter", "replay_capacity", "min_replay_size",
      "n_train_episodes_per_iter", "num_envs_per_worker", "eval_period_itrs",
      "log_period_itrs", "checkpoint_period_itrs", "checkpoints_to_keep",
      "target_update_period", "recurrent_sequence_length", "n_step"), _int_at_least(1),
     "must be a positive integer"),
    (("encoder_features",), _int_at_least(1), "must be a positive integer"),
    (("n_buffer_init_episodes", "n_eval_episodes", "seed", "recurrent_burn_in",
      "image_shift"),
     _int_at_least(0),
     "must be an integer >= 0"),
    (("n_buffer_init_steps",), _or_none(_int_at_least(0)), "must be an integer >= 0 or None"),
    (("n_episodes_in_buffer",), _or_none(_int_at_least(1)),
     "must be a positive integer or None"),
    (("actor_learning_rate", "critic_learning_rate", "alpha_learning_rate",
      "target_update_tau", "reward_scale_factor"), _number_above(0),
     "must be a positive number"),
    (("discount",), lambda v: is_number(v) and 0 < v <= 1, "must be a number in (0, 1]"),
    (("samples_per_insert", "samples_per_insert_error_buffer"), _or_none(_number_above(0)),
     "must be a number > 0 or None"),
    (("initial_log_alpha", "sde_log_std_init"), is_number, "must be a finite number"),
    (("agent",), lambda v: v in AGENTS,
     f"must be one of {', '.join(map(repr, AGENTS))} (in the params or the config)"),
    (("crossq_policy_delay",), _int_at_least(1), "must be a positive integer"),
    (("crossq_renorm_warmup_steps",), _int_at_least(0), "must be an integer >= 0"),
    (("crossq_batch_norm_momentum", "crossq_adam_beta1"), lambda v: is_number(v) and 0 <= v < 1,
     "must be a number in [0, 1)"),
    (("sde_clip_mean",), lambda v: is_number(v) and v >= 0, "must be a number >= 0 (0: none)"),
    (("sde_sample_freq",), lambda v: isinstance(v, int) and not isinstance(v, bool),
     "must be an integer (<= 0: draw the noise at episode starts only)"),
    (("target_entropy",), _or_none(is_number),
     "must be a finite number or None (None: -dim(action space) / 2)"),
    (("actor_fc_layers", "critic_joint_fc_layers", "lstm_size", "recurrent_output_fc_layers",
      "conv_channels", "conv_kernels", "conv_strides", "crossq_critic_layers"),
     _layer_sizes,
     "must be a tuple of positive integers (hidden layer sizes), e.g. (256, 256)"),
    (("learner_keeps_replay", "recurrent", "init_from_optimizers", "init_from_alpha",
      "init_from_replay", "use_sde"),
     lambda v: isinstance(v, bool), "must be True or False"),
    (("init_from",), _or_none(lambda v: isinstance(v, str) and v.strip() != ""),
     "must be None or a source experiment's directory, e.g. 'logs/pendulum'"),
    (("observation_normalization",), _or_none(_normalization),
     "must be None or a dict {leaf path: (mean, std)}, each a number or a list of numbers "
     "with every std > 0, e.g. {'velocity': (0.0, 2.0)}"),
    (("demonstrations",), _files,
     "must be a tuple of demonstration files, e.g. ('demos/pendulum.npz',), or ()"),
    (("demo_ratio",), _demo_ratio,
     "must be None, a share in [0, 1], or a schedule ((train step, share), ...) with "
     "increasing train steps, e.g. ((0, 0.5), (10000, 0.1))"),
    (("bc_warm_start_steps",), _int_at_least(0), "must be an integer >= 0"),
    (("prior_policy",), _or_none(lambda v: isinstance(v, str) and v.strip() != ""),
     "must be None or a SavedModel policy's directory, e.g. "
     "'../logs/pendulum/policies/final/collect_policy'"),
    (("target_divergence",), _or_none(is_number),
     "must be a finite number or None (None: 0.5 per action dimension)"),
    (("prior_std",), _number_above(0), "must be a positive number"),
    (("init_from_step",), _or_none(_int_at_least(0)),
     "must be None (the latest checkpoint) or a train step of the source's checkpoints"),
)
