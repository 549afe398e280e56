"""Behaviour-cloning warm start: before SAC's first gradient step, the actor is
trained for `bc_warm_start_steps` steps to maximise the log-likelihood of the
demonstrations' actions, so the workers' first episodes already follow them.

It runs once, at an experiment's first start (the learner then checkpoints train
step 0, so a restarted learner does not run it again), with an Adam optimizer of
its own at the actor's learning rate (SAC's optimizers start untouched).
"""

from __future__ import annotations

# Demonstrated actions are moved this fraction of the action range inside the bounds:
# a tanh-squashed policy gives the bounds themselves a log-likelihood of -inf.
BOUND_MARGIN = 1e-3
LOG_EVERY = 100
# The log-likelihood a demonstrated action counts for at most, per action dimension
# (about that of a Gaussian of std 0.05 at its mean): a deterministic demonstrator
# would otherwise drive the policy's std to zero and its loss to -inf (NaN gradients);
# SAC then starts from a policy that still explores.
LOG_PROB_CAP_PER_DIM = 2.0


def clip_into_bounds(action, action_spec):
    """Actions clipped strictly inside the spec's bounds (BOUND_MARGIN of the range)."""
    import numpy as np
    import tensorflow as tf

    low = np.asarray(action_spec.minimum, np.float32)
    high = np.asarray(action_spec.maximum, np.float32)
    margin = BOUND_MARGIN * (high - low)
    return tf.clip_by_value(action, low + margin, high - margin)


def make_bc_step(agent, demo_batch, learning_rate: float):
    """`step()`: one behaviour-cloning gradient step on a demonstration batch
    (`demo_batch()`, a Transition); returns the mean negative log-likelihood (capped
    per action at LOG_PROB_CAP_PER_DIM per dimension)."""
    import numpy as np
    import tensorflow as tf

    actor = agent._actor_network
    optimizer = tf.keras.optimizers.Adam(learning_rate)
    action_spec = agent.action_spec
    cap = LOG_PROB_CAP_PER_DIM * sum(
        int(np.prod(spec.shape)) for spec in tf.nest.flatten(action_spec))

    @tf.function
    def step():
        batch = demo_batch()
        time_step = batch.time_step
        with tf.GradientTape() as tape:
            distribution, _ = actor(time_step.observation, step_type=time_step.step_type,
                                    network_state=(), training=True)
            actions = clip_into_bounds(batch.action_step.action, action_spec)
            loss = -tf.reduce_mean(tf.minimum(distribution.log_prob(actions), cap))
        grads = tape.gradient(loss, actor.trainable_variables)
        optimizer.apply_gradients(zip(grads, actor.trainable_variables))
        return loss

    return step


def warm_start(agent, demo_batch, steps: int, learning_rate: float, writer, log) -> float:
    """Run `steps` behaviour-cloning steps; log the loss (TensorBoard losses/bc_loss at
    the BC step); return the last loss."""
    import tensorflow as tf

    from tfagents_system import constants as C

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
