"""Stable-Baselines3 SAC with RL Baselines3 Zoo's PyBullet hyperparameters: the peer of
`benchmarks/learning.py`.

Runs in its own virtual environment (torch, gymnasium, stable-baselines3,
sb3-contrib, pybullet_envs_gymnasium), which `benchmarks/learning.py --with-sb3`
builds; it must not import anything from the project's environment.

    python benchmarks/sb3_peer.py --env_id HalfCheetahBulletEnv-v0 --env_steps 50000 \
        --seed 0 --eval_episodes 10 --output run.jsonl

The hyperparameters are the zoo's (hyperparams/sac.yml, as recorded with its
reference runs in rl-trained-agents): gamma 0.98, tau 0.02, learning rate 7.3e-4
(HopperBulletEnv-v0: linear decay to 0 over the zoo's 1M steps), batch 256,
buffer 300k, 10k random warm-up steps, 64 gradient steps every 64 env steps,
networks [400, 300], gSDE with log_std_init -3, sb3-contrib's TimeFeatureWrapper,
entropy coefficient tuned. The run is cut at `--env_steps` while the learning-rate
schedule follows the zoo's 1M steps.

Every `--eval_every` env steps (and at the end) it evaluates the greedy policy for
`--eval_episodes` episodes on a separate env and appends a JSON line: env steps,
wall-clock seconds since the start (before this evaluation), seconds spent in the
evaluations before it, and the returns.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ZOO_TIMESTEPS = 1_000_000
LINEAR_LR_TASKS = {"HopperBulletEnv-v0"}


def zoo_hyperparameters(env_id: str) -> dict:
    lr = 7.3e-4
    learning_rate = (lambda progress: progress * lr) if env_id in LINEAR_LR_TASKS else lr
    return {
        "learning_rate": learning_rate, "buffer_size": 300_000, "batch_size": 256,
        "ent_coef": "auto", "gamma": 0.98, "tau": 0.02, "train_freq": 64,
        "gradient_steps": 64, "learning_starts": 10_000, "use_sde": True,
        "policy_kwargs": {"log_std_init": -3, "net_arch": [400, 300]},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env_id", required=True)
    parser.add_argument("--env_steps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval_every", type=int, default=10_000)
    parser.add_argument("--eval_episodes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)

    start = time.time()
    import gymnasium as gym
    import numpy as np
    import pybullet_envs_gymnasium  # noqa: F401  (registers the *BulletEnv-v0 ids)
    import torch
    from sb3_contrib.common.wrappers import TimeFeatureWrapper
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(args.threads)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("")

    def make_env(seed: int):
        env = TimeFeatureWrapper(gym.make(args.env_id))
        env.reset(seed=seed)
        env.action_space.seed(seed)
        return env

    eval_env = make_env(args.seed + 10_000)
    spent = {"eval": 0.0}

    def evaluate(model, env_steps: int) -> None:
        began = time.time()
        wall = began - start
        returns, lengths = [], []
        for _ in range(args.eval_episodes):
            obs, _ = eval_env.reset()
            total, length, done = 0.0, 0, False
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, reward, terminated, truncated, _ = eval_env.step(action)
                total += float(reward)
                length += 1
                done = terminated or truncated
            returns.append(total)
            lengths.append(length)
        record = {"env_steps": env_steps, "wall_s": wall, "eval_s": spent["eval"],
                  "mean_return": float(np.mean(returns)), "returns": returns,
                  "mean_length": float(np.mean(lengths))}
        spent["eval"] += time.time() - began
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps({k: v for k, v in record.items() if k != "returns"}), flush=True)

    class Schedule(BaseCallback):
        def _on_step(self) -> bool:
            steps = self.model.num_timesteps
            if steps % args.eval_every == 0 or steps >= args.env_steps:
                evaluate(self.model, steps)
            return steps < args.env_steps

    model = SAC("MlpPolicy", make_env(args.seed), seed=args.seed, verbose=0,
                **zoo_hyperparameters(args.env_id))
    model.learn(total_timesteps=ZOO_TIMESTEPS, callback=Schedule())
    with out.open("a") as f:
        f.write(json.dumps({"done": True, "env_steps": int(model.num_timesteps),
                            "wall_s": time.time() - start, "eval_s": spent["eval"],
                            "threads": args.threads, "torch": torch.__version__}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
