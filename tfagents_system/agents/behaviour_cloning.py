"""Behaviour-cloning warm start: before SAC's first gradient step, the actor is
trained for `bc_warm_start_steps` steps to maximise the log-likelihood of the
demonstrations' actions (`losses.behaviour_cloning`: transitions, or replay windows
through a recurrent actor), so the workers' first episodes already follow them.

It runs once, at an experiment's first start (the learner then checkpoints train
step 0, so a restarted learner does not run it again), with an Adam optimizer of
its own at the actor's learning rate (SAC's optimizers start untouched).
"""

from __future__ import annotations

import tensorflow as tf

from tfagents_system.agents.losses import behaviour_cloning
from tfagents_system.core import constants as C
from tfagents_system.core.batches import SequenceBatch

LOG_EVERY = 100


def make_bc_step(agent, demo_batch, learning_rate: float):
    """`step()`: one behaviour-cloning gradient step on a demonstration batch
    (`demo_batch()`: a Transition, or a SequenceBatch of windows); returns the loss."""
    actor = agent._actor_network
    optimizer = tf.keras.optimizers.Adam(learning_rate)

    @tf.function
    def step():
        batch = demo_batch()
        experience, weights = (batch if isinstance(batch, SequenceBatch) else (batch, None))
        with tf.GradientTape() as tape:
            loss = behaviour_cloning(actor, experience, weights, agent.action_spec)
        grads = tape.gradient(loss, actor.trainable_variables)
        optimizer.apply_gradients(zip(grads, actor.trainable_variables))
        return loss

    return step


def warm_start(agent, demo_batch, steps: int, learning_rate: float, writer, log) -> float:
    """Run `steps` behaviour-cloning steps; log the loss (TensorBoard losses/bc_loss at
    the BC step); return the last loss."""
    step = make_bc_step(agent, demo_batch, learning_rate)
    first = loss = float(step())
    for i in range(1, steps):
        loss = float(step())
        if i % LOG_EVERY == 0 or i == steps - 1:
            with writer.as_default(step=i), tf.summary.record_if(True):
                tf.summary.scalar(C.M_BC_LOSS, loss)
    writer.flush()
    log.info("behaviour cloning warm start: %d steps on the demonstrations, negative "
             "log-likelihood %.4g -> %.4g", steps, first, loss)
    return loss
