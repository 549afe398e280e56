"""Stable-Baselines3 SAC with RL Baselines3 Zoo's settings for the task (or, with
`--algo crossq`, sb3-contrib's CrossQ with its defaults): the peer of
`benchmarks/learning.py`.

Runs in its own virtual environment (torch, gymnasium, stable-baselines3,
sb3-contrib, pybullet_envs_gymnasium, mujoco, panda-gym), which
`benchmarks/learning.py --with-sb3` builds; it must not import anything from the
project's environment (nothing but the standard library at the top, so that
`zoo_settings` can be read from there).

    python benchmarks/sb3_peer.py --env_id HalfCheetahBulletEnv-v0 --env_steps 50000 \
        --seed 0 --eval_episodes 10 --output run.jsonl [--algo crossq [--critic_layers 256 256]]

The settings (`zoo_settings`), by kind of task:

- PyBullet (`*BulletEnv-v0`): the zoo's hyperparams/sac.yml, as recorded with its
  reference runs in rl-trained-agents: gamma 0.98, tau 0.02, learning rate 7.3e-4
  (HopperBulletEnv-v0: linear decay to 0 over the zoo's 1M steps), batch 256,
  buffer 300k, 10k random warm-up steps, 64 gradient steps every 64 env steps,
  networks [400, 300], gSDE with log_std_init -3, sb3-contrib's
  TimeFeatureWrapper, entropy coefficient tuned.
- panda-gym 3 (`PandaReach-v3`, `PandaPush-v3`): the zoo's PandaReach-v2 /
  PandaPush-v2 config (benchmarks/reference/zoo/README.md): SAC + HerReplayBuffer
  (`future` strategy, 4 sampled goals), gamma 0.95, learning rate 1e-3,
  TimeFeatureWrapper, MultiInputPolicy. PandaReach: batch 256, networks [64, 64]
  with one critic, 1000 random warm-up steps, observations (and rewards)
  normalized by VecNormalize (gamma 0.95), tau SB3's 0.005. PandaPush: batch 2048,
  networks [512, 512, 512] with two critics, tau 0.05, SB3's warm-up (100 steps).
  Buffer 1M. Evaluations every 5k env steps.
- Every other task (gymnasium MuJoCo `HalfCheetah-v4`, `Hopper-v4`, `Ant-v4`, ...):
  the zoo's MuJoCo setting, SB3's SAC defaults (gamma 0.99, tau 0.005, learning rate
  3e-4, batch 256, buffer 1M, [256, 256], no gSDE) with 10k random warm-up steps;
  no time feature.

The run is cut at `--env_steps` while a learning-rate schedule follows the zoo's
run length.

Every `--eval_every` env steps (default: the task's, above; and at the end) it
evaluates the greedy policy for `--eval_episodes` episodes on a separate env and
appends a JSON line: env steps, wall-clock seconds since the start (before this
evaluation), seconds spent in the evaluations before it, the returns and, where the
env reports `is_success` (panda-gym), the success rate: the share of episodes whose
final step's info says `is_success`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

LINEAR_LR_TASKS = {"HopperBulletEnv-v0"}
HER = {"goal_selection_strategy": "future", "n_sampled_goal": 4}
# The zoo's panda-gym 2 configs (sac/<EnvId>_1/config.yml), for panda-gym 3's -v3 ids.
PANDA = {
    "PandaReach": {
        "sac": {"batch_size": 256, "buffer_size": 1_000_000, "ent_coef": "auto",
                "gamma": 0.95, "learning_rate": 1e-3, "learning_starts": 1000,
                "policy_kwargs": {"net_arch": [64, 64], "n_critics": 1}},
        "normalize": {"gamma": 0.95}, "zoo_timesteps": 20_000},
    "PandaPush": {
        "sac": {"batch_size": 2048, "buffer_size": 1_000_000, "gamma": 0.95,
                "learning_rate": 1e-3, "tau": 0.05,
                "policy_kwargs": {"net_arch": [512, 512, 512], "n_critics": 2}},
        "normalize": None, "zoo_timesteps": 1_000_000},
}
PANDA_ID = re.compile(r"^(?P<task>Panda[A-Za-z]+)-v3$")


def zoo_settings(env_id: str) -> dict:
    """The zoo's settings for `env_id` as plain data (module docstring): `kind`,
    `policy`, `sac` (SAC keyword arguments), `her` (HerReplayBuffer keyword arguments
    or None), `time_feature`, `normalize` (VecNormalize keyword arguments or None),
    `linear_lr`, `zoo_timesteps` and `eval_every`. ValueError for a panda-gym task
    the zoo has no settings for."""
    if "BulletEnv" in env_id:
        return {"kind": "pybullet", "policy": "MlpPolicy",
                "sac": {"learning_rate": 7.3e-4, "buffer_size": 300_000, "batch_size": 256,
                        "ent_coef": "auto", "gamma": 0.98, "tau": 0.02, "train_freq": 64,
                        "gradient_steps": 64, "learning_starts": 10_000, "use_sde": True,
                        "policy_kwargs": {"log_std_init": -3, "net_arch": [400, 300]}},
                "her": None, "time_feature": True, "normalize": None,
                "linear_lr": env_id in LINEAR_LR_TASKS, "zoo_timesteps": 1_000_000,
                "eval_every": 10_000}
    if env_id.startswith("Panda"):
        match = PANDA_ID.match(env_id)
        zoo = PANDA.get(match["task"]) if match else None
        if zoo is None:
            raise ValueError(f"{env_id}: the SB3 peer has the zoo's panda-gym settings for "
                             f"{', '.join(f'{t}-v3' for t in PANDA)} only")
        return {"kind": "panda", "policy": "MultiInputPolicy", "sac": dict(zoo["sac"]),
                "her": dict(HER), "time_feature": True, "normalize": zoo["normalize"],
                "linear_lr": False, "zoo_timesteps": zoo["zoo_timesteps"],
                "eval_every": 5_000}
    return {"kind": "mujoco", "policy": "MlpPolicy", "sac": {"learning_starts": 10_000},
            "her": None, "time_feature": False, "normalize": None, "linear_lr": False,
            "zoo_timesteps": 1_000_000, "eval_every": 10_000}


ALGOS = ("sac", "crossq")


def peer_settings(env_id: str, algo: str = "sac") -> dict:
    """The peer's settings: `zoo_settings` for SAC; for sb3-contrib's CrossQ its own
    defaults (`sac` empty: CrossQ's keyword arguments) on the same env (time feature as
    the zoo's task has it), evaluated as often; `algo` says which."""
    settings = zoo_settings(env_id)
    if algo == "crossq":
        settings.update(sac={}, her=None, normalize=None, linear_lr=False)
    elif algo != "sac":
        raise ValueError(f"--algo {algo}: one of {', '.join(ALGOS)}")
    return {**settings, "algo": algo}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env_id", required=True)
    parser.add_argument("--algo", choices=ALGOS, default="sac",
                        help="sac: SB3 SAC with the zoo's settings; crossq: sb3-contrib's "
                             "CrossQ with its defaults")
    parser.add_argument("--env_steps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval_every", type=int, help="default: the task's (docstring)")
    parser.add_argument("--eval_episodes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--output", required=True)
    parser.add_argument("--critic_layers", type=int, nargs="+",
                        help="--algo crossq only: the critics' hidden layers instead of "
                             "sb3-contrib's [1024, 1024] (the same width as ours, to "
                             "compare implementations rather than settings)")
    args = parser.parse_args(argv)
    settings = peer_settings(args.env_id, args.algo)
    if args.critic_layers:
        if args.algo != "crossq":
            parser.error("--critic_layers is for --algo crossq")
        # sb3-contrib's CrossQ actor keeps its default [256, 256]
        settings["sac"] = {"policy_kwargs": {"net_arch": {"pi": [256, 256],
                                                          "qf": list(args.critic_layers)}}}
    eval_every = args.eval_every or settings["eval_every"]

    start = time.time()
    import gymnasium as gym
    import numpy as np
    import stable_baselines3
    import torch
    from stable_baselines3 import SAC, HerReplayBuffer
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    if settings["kind"] == "pybullet":
        import pybullet_envs_gymnasium  # noqa: F401  (registers the *BulletEnv-v0 ids)
    elif settings["kind"] == "panda":
        import panda_gym  # noqa: F401  (registers the Panda*-v3 ids)
    if settings["time_feature"]:
        from sb3_contrib.common.wrappers import TimeFeatureWrapper

    torch.set_num_threads(args.threads)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("")

    def make_env(seed: int):
        env = gym.make(args.env_id)
        if settings["time_feature"]:
            env = TimeFeatureWrapper(env)
        env.reset(seed=seed)
        env.action_space.seed(seed)
        return env

    eval_env = make_env(args.seed + 10_000)
    spent = {"eval": 0.0}

    def evaluate(model, env_steps: int) -> None:
        began = time.time()
        wall = began - start
        # Observations normalized as in training (PandaReach), statistics not updated.
        normalizer = model.get_vec_normalize_env()
        returns, lengths, successes = [], [], []
        for _ in range(args.eval_episodes):
            obs, info = eval_env.reset()
            total, length, done = 0.0, 0, False
            while not done:
                action, _ = model.predict(
                    normalizer.normalize_obs(obs) if normalizer is not None else obs,
                    deterministic=True)
                obs, reward, terminated, truncated, info = eval_env.step(action)
                total += float(reward)
                length += 1
                done = terminated or truncated
            returns.append(total)
            lengths.append(length)
            successes.append(bool(info["is_success"]) if "is_success" in info else None)
        record = {"env_steps": env_steps, "wall_s": wall, "eval_s": spent["eval"],
                  "mean_return": float(np.mean(returns)), "returns": returns,
                  "mean_length": float(np.mean(lengths))}
        if successes and None not in successes:  # the final step's info["is_success"]
            record["success_rate"] = float(np.mean(successes))
        spent["eval"] += time.time() - began
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps({k: v for k, v in record.items() if k != "returns"}), flush=True)

    class Schedule(BaseCallback):
        def _on_step(self) -> bool:
            steps = self.model.num_timesteps
            if steps % eval_every == 0 or steps >= args.env_steps:
                evaluate(self.model, steps)
            return steps < args.env_steps

    kwargs = dict(settings["sac"])
    if settings["linear_lr"]:
        lr = kwargs["learning_rate"]
        kwargs["learning_rate"] = lambda progress: progress * lr
    if settings["her"] is not None:
        kwargs.update(replay_buffer_class=HerReplayBuffer,
                      replay_buffer_kwargs=dict(settings["her"]))
    env = DummyVecEnv([lambda: make_env(args.seed)])
    if settings["normalize"] is not None:
        env = VecNormalize(env, **settings["normalize"])
    if settings["algo"] == "crossq":
        from sb3_contrib import CrossQ as Algorithm
    else:
        Algorithm = SAC
    model = Algorithm(settings["policy"], env, seed=args.seed, verbose=0, **kwargs)
    model.learn(total_timesteps=max(settings["zoo_timesteps"], args.env_steps),
                callback=Schedule())
    with out.open("a") as f:
        f.write(json.dumps({"done": True, "env_steps": int(model.num_timesteps),
                            "wall_s": time.time() - start, "eval_s": spent["eval"],
                            "threads": args.threads, "torch": torch.__version__,
                            "stable_baselines3": stable_baselines3.__version__,
                            "gymnasium": gym.__version__, "eval_every": eval_every,
                            "settings": settings}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
