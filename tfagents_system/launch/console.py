"""What a launch shows: its plan, the live progress line fed from the programs' status
records, the summary of a finished run, and the final video and learning curves; and
the launcher's `main`."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import tfagents_system.launch as launch_package
from tfagents_system.cli import progress_bar
from tfagents_system.core import constants as C
from tfagents_system.core.progress import Snapshot, progress, success_text
from tfagents_system.core.records import EvalSummary
from tfagents_system.launch.errors import AlreadyFinished
from tfagents_system.launch.experiment import REPO_ROOT, lock_experiment
from tfagents_system.launch.plan import BAD_INPUT, Plan, prepare
from tfagents_system.launch.processes import program_env, run


class Progress:
    """The live progress line, fed from the programs' status files."""

    def __init__(self, plan: Plan, interactive: bool):
        self._plan = plan
        self._interactive = interactive
        self._last_print = 0.0
        self._bar = None
        if interactive:
            self._bar = progress_bar(total=plan.params.total_train_steps, unit="step",
                                     desc="train steps")

    def snapshot(self) -> Snapshot:
        """The experiment's progress now."""
        return progress(self._plan.paths, self._plan.num_workers)

    def update(self) -> None:
        """Redraw the bar (a terminal) or print a line every 30 s."""
        snap = self.snapshot()
        eval_text = "n/a" if snap.eval_return is None else f"{snap.eval_return:.1f}"
        success = success_text(snap)
        success_field = "" if success is None else f"success {success}, "
        fields = (f"env steps {snap.env_steps}, eval return {eval_text}, {success_field}"
                  f"{snap.grad_steps_per_sec:.0f} grad steps/s, "
                  f"{snap.env_steps_per_sec:.0f} env steps/s")
        if self._bar is not None:
            self._bar.n = snap.train_step
            self._bar.set_postfix_str(fields, refresh=True)
        elif time.monotonic() - self._last_print > 30:
            self._last_print = time.monotonic()
            print(f"train step {snap.train_step}/{self._plan.params.total_train_steps}, "
                  f"{fields}", flush=True)

    def close(self) -> None:
        """The last update, and the bar closed."""
        if self._bar is not None:
            self.update()
            self._bar.close()


def summary(plan: Plan) -> str:
    """What a finished run leaves behind, for the user's terminal."""
    paths = plan.paths
    snap = Progress(plan, interactive=False).snapshot()
    eval_text = "n/a" if snap.eval_return is None else f"{snap.eval_return:.1f}"
    if snap.eval_success_rate is not None:
        eval_text += f", success rate {100 * snap.eval_success_rate:.0f}%"
    return "\n".join([
        f"training complete: {snap.train_step} train steps, {snap.env_steps} env steps, "
        f"final eval return {eval_text}",
        f"  experiment   {paths.root}",
        f"  checkpoints  {paths.checkpoints}",
        f"  policies     {paths.policies / C.FINAL_POLICY_DIR} "
        f"({C.GREEDY_POLICY}, {C.COLLECT_POLICY})",
        f"  tensorboard  tensorboard --logdir {paths.root}",
        f"  process logs {paths.process_logs}",
    ])


def render_results(plan: Plan, env: dict | None = None) -> list[str]:
    """After training: one video of the final greedy policy and the learning curves.

    Returns the lines to print last. A failure here does not fail the run (the
    training itself succeeded); it is reported instead.
    """
    exp = str(plan.paths.root)
    env = env or dict(os.environ, **program_env())
    lines = []
    video_dir = plan.paths.evaluation(C.FINAL_EVALUATION, 0)
    curves = plan.paths.learning_curves
    jobs = [("video", ["tfagents_system.run", "--exp_dir", exp, "--num_episodes", "1",
                       "--output", str(video_dir)]),
            ("learning curves", ["tfagents_system.plot", exp, "--output", str(curves)])]
    for label, args in jobs:
        result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                                env=env, cwd=str(REPO_ROOT), stdin=subprocess.DEVNULL,
                                check=False)
        if result.returncode != 0:
            error = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            lines.append(f"  {label:<15} not made: {error}")
        elif label == "video":
            evaluation = EvalSummary.read(video_dir / C.EVAL_SUMMARY_FILE)
            lines.append(f"  {label:<15} {evaluation.videos[0]} "
                         f"(return {evaluation.returns[0]:.1f})")
        else:
            lines.append(f"  {label:<15} {curves}")
    return lines


def show_plan(plan: Plan, mode: str = "") -> None:
    """The lines a launch starts with: the experiment, notes, warnings, the replay format,
    and (supervised) where each program runs."""
    print(f"{'resuming' if plan.resuming else 'starting'} experiment {plan.paths.root}{mode}",
          flush=True)
    variant = plan.inputs.variant_record
    if variant is not None:
        print(f"task {variant.task_id}: {variant.label}")
    for note in plan.inputs.notes:
        print(f"note: {note}")
    for warning in plan.inputs.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(plan.replay_line)


def show_placement(plan: Plan) -> None:
    """Where each program of a supervised launch runs, and who can reach its replay port."""
    print(plan.layout.describe(plan.worker_indices))
    for node in plan.remote:
        print(f"  node {node.name} ({node.cpus} CPUs): "
              + ", ".join(C.worker_name(i) for i in node.worker_indices))
    print(f"replay server {plan.address}; process logs in {plan.paths.process_logs}")
    print(plan.placement.exposure.describe(plan.port), flush=True)


def prepared(variables_file: str, supervised: bool = False) -> tuple[Plan, object] | int:
    """(the launch's plan, the experiment's lock, held), or the exit code of a launch
    that ends here: a finished experiment (0) or bad input (one `error:` line, 2).
    `supervised`: its programs will be processes (`plan.prepare`), not threads."""
    try:
        plan = prepare(variables_file, supervised)
        lock = lock_experiment(plan.paths)
        if plan.derived_format is not None:
            plan.derived_format.write(plan.paths.layout)
        return plan, lock
    except AlreadyFinished as done:
        print(f"experiment {done.exp_dir} is already finished "
              f"(see {done.exp_dir / C.COMPLETE_FILE}); nothing to do")
        return 0
    except BAD_INPUT as exc:
        print(f"error: {exc}", file=sys.stderr)
        return C.EXIT_BAD_INPUT


def main(argv=None) -> int:
    """The launcher: validate, start the programs under supervisord, watch them."""
    parser = argparse.ArgumentParser(prog="python -m tfagents_system.launch",
                                     description=launch_package.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("training_variables", help="training variables .sh file")
    args = parser.parse_args(argv)
    launch = prepared(args.training_variables, supervised=True)
    if isinstance(launch, int):
        return launch
    plan, lock = launch
    show_plan(plan)
    show_placement(plan)
    try:
        code = run(plan, Progress(plan, interactive=sys.stdout.isatty()), lock)
    finally:
        lock.close()
    if code == 0:
        print(summary(plan), flush=True)
        if plan.variables.final_video:
            print("rendering a video of the final greedy policy and the learning curves...",
                  flush=True)
            print("\n".join(render_results(plan)))
    return code
