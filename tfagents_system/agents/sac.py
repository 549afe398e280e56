"""One SAC, its losses assembled from terms (`losses`), for every kind of network and
replay format.

`SacAgent` is TF-Agents' SacAgent with its three losses built from the same parts:
the TD target, a penalty on the policy weighted by alpha (SAC's entropy by default,
or the divergence from a prior policy), and the reduction over a batch of transitions
or over replay windows' masked steps (chosen by the batch's rank). So feed-forward and
recurrent networks, one-step and n-step rows, entropy and prior all combine, and a new
term is a new part rather than another fork of SAC. Pixels add two parts: both critics
in one `networks.TwinCriticNetwork` on a shared image encoder, which the agent copies
into the actor's (untrained) encoder before each step, so the actor sees the critics'
features without its loss reaching them; and DrQ's random shift of the observations
and next observations of each batch (`image_shift`). On feed-forward transitions with
the entropy penalty its losses are TF-Agents' own, operation for operation.
"""

from __future__ import annotations

import tensorflow as tf
from tf_agents.agents.sac import sac_agent

from tfagents_system.agents import prior as prior_module
from tfagents_system.agents.encoders import ImageEncoder, random_shift
from tfagents_system.agents.losses import Entropy, PriorDivergence, reduce, td_targets
from tfagents_system.agents.networks import NoCritic, is_recurrent
from tfagents_system.agents.settings import AgentSettings
from tfagents_system.core import constants as C
from tfagents_system.core.batches import SequenceBatch


class SacAgent(sac_agent.SacAgent):
    """SAC whose losses are assembled from terms (module docstring). `penalty`: the
    policy's penalty (`losses.Entropy` of the agent's target entropy when None);
    `image_shift`: pixels each image observation is randomly shifted by in training
    (0: none)."""

    def __init__(self, time_step_spec, action_spec, *, penalty=None, image_shift=0,
                 **sac_settings):
        if getattr(sac_settings.get("critic_network"), "twin", False):
            sac_settings.setdefault("critic_network_2", NoCritic(
                sac_settings["critic_network"].input_tensor_spec))
        super().__init__(time_step_spec, action_spec, **sac_settings)
        self._image_shift = int(image_shift)
        self._tied_encoders = _tied_encoders(self._critic_network_1, self._actor_network)
        self._penalty = penalty if penalty is not None else Entropy(self._target_entropy)
        # The penalty's batch mean, read back by _train for the learner's summaries.
        self._divergence = (None if self._penalty.metric is None
                            else tf.Variable(0.0, trainable=False, name="penalty_mean"))

    def _critic_pair(self, critics, observation, actions, step_type, training):
        first, second = critics
        if getattr(first, "twin", False):
            q, _ = first((observation, actions), step_type=step_type, training=training)
            return q[..., 0], q[..., 1]
        q1, _ = first((observation, actions), step_type=step_type, training=training)
        q2, _ = second((observation, actions), step_type=step_type, training=training)
        return q1, q2

    def critic_loss(self, time_steps, actions, next_time_steps, td_errors_loss_fn,
                    gamma=1.0, reward_scale_factor=1.0, weights=None, training=False):
        """Both critics' squared TD errors toward r + gamma d (min Q_targ(s', a') -
        alpha penalty(s', a')), a' ~ pi."""
        next_actions, next_log_pis = self._actions_and_log_probs(next_time_steps,
                                                                 training=False)
        next_penalty = self._penalty(next_time_steps, next_actions, next_log_pis)
        target_q1, target_q2 = self._critic_pair(
            (self._target_critic_network_1, self._target_critic_network_2),
            next_time_steps.observation, next_actions, next_time_steps.step_type, False)
        soft_value = tf.minimum(target_q1, target_q2) - tf.exp(self._log_alpha) * next_penalty
        targets = td_targets(next_time_steps, soft_value, gamma, reward_scale_factor)
        q1, q2 = self._critic_pair((self._critic_network_1, self._critic_network_2),
                                   time_steps.observation, actions, time_steps.step_type,
                                   training)
        per_example = td_errors_loss_fn(targets, q1) + td_errors_loss_fn(targets, q2)
        return reduce(per_example, weights,
                      self._critic_network_1.losses + self._critic_network_2.losses)

    def actor_loss(self, time_steps, weights=None, training=True):
        """alpha penalty(s, a) - min Q(s, a), a ~ pi reparameterized."""
        actions, log_pi = self._actions_and_log_probs(time_steps, training=training)
        penalty = self._penalty(time_steps, actions, log_pi)
        q1, q2 = self._critic_pair((self._critic_network_1, self._critic_network_2),
                                   time_steps.observation, actions, time_steps.step_type,
                                   False)
        per_example = tf.exp(self._log_alpha) * penalty - tf.minimum(q1, q2)
        return reduce(per_example, weights, self._actor_network.losses)

    def alpha_loss(self, time_steps, weights=None, training=False):
        """-log_alpha (penalty - budget): alpha grows while the penalty exceeds its budget
        (the entropy is below its target, or the divergence above its target)."""
        actions, log_pi = self._actions_and_log_probs(time_steps, training=False)
        return self.alpha_loss_of_penalty(self._penalty(time_steps, actions, log_pi), weights)

    def alpha_loss_of_penalty(self, penalty, weights=None):
        """The alpha loss of per-example penalties already computed (CrossQ reuses its
        actor step's); records the mean divergence when the penalty is one."""
        if self._divergence is not None:
            self._divergence.assign(reduce(penalty, weights))
        excess = tf.stop_gradient(penalty - self._penalty.budget)
        scale = self._log_alpha if self._use_log_alpha_in_alpha_loss else tf.exp(
            self._log_alpha)
        return reduce(-scale * excess, weights)

    def _train(self, experience, weights):
        """SAC's gradient steps; the loss info also carries what the penalty logs."""
        for source, copy in self._tied_encoders:
            copy.assign(source)
        if self._image_shift:
            experience = shift_images(experience, self._image_shift)
        loss_info = super()._train(experience, weights)
        return loss_info._replace(extra=self._penalty.loss_info(loss_info.extra,
                                                                self._divergence))


def _tied_encoders(critic, actor) -> list[tuple]:
    """(critic variable, actor variable) pairs of the critics' image encoder and the
    actor's untrained copy of it (`networks.actor_network` for pixels); none for other
    networks."""
    combiner = getattr(getattr(actor, "_encoder", None), "_preprocessing_combiner", None)
    source = getattr(critic, "encoder", None)
    if not isinstance(combiner, ImageEncoder) or combiner.trainable or source is None:
        return []
    if [v.shape for v in source.variables] != [v.shape for v in combiner.variables]:
        raise ValueError("the actor's image encoder differs from the critics'; build both "
                         "from the same NetworkSettings")
    return list(zip(source.variables, combiner.variables))


def shift_images(experience, pad: int):
    """`experience` with every image observation (uint8 [..., H, W, C]) of its time
    steps randomly shifted by up to `pad` pixels, each image on its own (DrQ)."""

    def shift(x):
        if x.dtype != tf.uint8 or x.shape.rank < 4:
            return x
        shape = tf.shape(x)
        flat = tf.reshape(x, tf.concat([[-1], shape[-3:]], 0))
        return tf.reshape(random_shift(flat, pad), shape)

    if hasattr(experience, "next_time_step"):  # a Transition
        time_step, action_step, next_time_step = experience
        return experience._replace(
            time_step=time_step._replace(observation=tf.nest.map_structure(
                shift, time_step.observation)),
            next_time_step=next_time_step._replace(observation=tf.nest.map_structure(
                shift, next_time_step.observation)))
    return experience._replace(observation=tf.nest.map_structure(shift,
                                                                 experience.observation))


def penalty_of(settings: AgentSettings, action_spec):
    """The policy's penalty the settings ask for: the divergence from their prior policy,
    or None (SAC's entropy)."""
    if settings.prior is None:
        return None
    prior = prior_module.load(settings.prior.directory, action_spec, settings.prior.std)
    target = settings.prior.target_divergence
    return PriorDivergence(prior, prior_module.default_target_divergence(action_spec)
                           if target is None else target)


def make_agent(settings: AgentSettings, time_step_spec, action_spec, actor_net, critic_net,
               train_step) -> SacAgent:
    """The default agent: SAC with the settings' optimizers and targets, regularized
    toward the settings' prior policy when it has one."""
    return SacAgent(
        time_step_spec, action_spec, penalty=penalty_of(settings, action_spec),
        actor_network=actor_net,
        critic_network=critic_net,
        actor_optimizer=tf.keras.optimizers.Adam(settings.actor_learning_rate),
        critic_optimizer=tf.keras.optimizers.Adam(settings.critic_learning_rate),
        alpha_optimizer=tf.keras.optimizers.Adam(settings.alpha_learning_rate),
        target_update_tau=settings.target_update_tau,
        target_update_period=settings.target_update_period,
        td_errors_loss_fn=tf.math.squared_difference, gamma=settings.discount,
        reward_scale_factor=settings.reward_scale_factor,
        initial_log_alpha=settings.initial_log_alpha, target_entropy=settings.target_entropy,
        train_step_counter=train_step, image_shift=settings.image_shift)


def train(agent, batch):
    """One gradient step on a sampled batch: replay windows train with their mask as
    the per-step weights."""
    if isinstance(batch, SequenceBatch):
        return agent.train(batch.experience, weights=batch.mask)
    return agent.train(batch)


def loss_scalars(agent, loss_info) -> dict[str, float]:
    """A train step's losses, alpha and the penalty's metric, for the learner's
    summaries (any SacAgent's)."""
    extra = loss_info.extra
    values = {C.M_ACTOR_LOSS: float(extra.actor_loss), C.M_CRITIC_LOSS: float(extra.critic_loss),
              C.M_ALPHA_LOSS: float(extra.alpha_loss),
              C.M_ALPHA: float(tf.exp(agent._log_alpha))}
    penalty = getattr(agent, "_penalty", None)
    if penalty is not None and penalty.metric is not None:
        values[penalty.metric] = float(extra.divergence)
    return values


def entropy_estimate(agent):
    """`entropy(time_steps)`: the policy's entropy, estimated as the mean -log pi of
    actions sampled on a batch (SAC's own sampling, compiled)."""

    @tf.function
    def entropy(time_steps):
        _, log_pi = agent._actions_and_log_probs(time_steps, training=False)
        return -tf.reduce_mean(log_pi)

    return entropy


def training_problem(agent, recurrent: bool) -> str | None:
    """Why this agent cannot be trained as the params ask (None: it can): recurrent
    networks need `recurrent = True` (else SAC would train them on transitions from a
    zero state and never use their memory), and `recurrent = True` needs recurrent
    networks and an agent whose losses take the windows' mask."""
    stateful = is_recurrent(agent)
    if stateful and not recurrent:
        return ("the actor or critic network is recurrent but TrainParams.recurrent is "
                "False, which would train it on transitions from a zero state: set "
                "recurrent = True")
    if recurrent and not stateful:
        return ("TrainParams.recurrent is True but the actor and critic networks are "
                "feed-forward: return recurrent networks from actor_net_ctor and "
                "critic_net_ctor (or keep the defaults), or set recurrent = False")
    if recurrent and not isinstance(agent, SacAgent):
        return (f"TrainParams.recurrent is True but agent_ctor returned a "
                f"{type(agent).__module__}.{type(agent).__qualname__}: recurrent training needs "
                "tfagents_system.agents.sac.SacAgent (SAC whose losses take the replay "
                "windows' mask); build it with agents.sac.make_agent")
    return None
