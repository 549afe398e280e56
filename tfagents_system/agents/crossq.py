"""CrossQ (Bhatt et al., ICLR 2024): SAC with batch-renormalized critics and no target
networks, built on `sac.SacAgent`'s parts.

What differs from SAC, and where:
- The critics (`batch_renorm.BatchRenormCriticNetwork`) normalize their inputs and
  hidden layers with batch renormalization, and the TD target comes from the same
  critics, not from target copies: one forward pass of the current and the next
  state-actions joined into a batch of 2B in training mode, so the normalization sees
  both distributions (the point of CrossQ), then the next half's values, without
  gradient, give the target.
- The next actions come from the actor in evaluation mode (its running statistics);
  the actor's loss runs it in training mode and the critics in evaluation mode.
- The actor and alpha are updated every `policy_delay` critic steps (3), alpha from
  the actor step's own log-probabilities.
- The agent has no target networks: TF-Agents' SAC makes copies of the critics, which
  the agent drops at once; their places hold `networks.NoCritic`, which has no
  variables.
The penalty (entropy or a prior's divergence), the reduction over a batch and the TD
target's handling of time limits are SAC's (`losses`).
"""

from __future__ import annotations

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.agents.sac import sac_agent

from tfagents_system.agents import sac
from tfagents_system.agents.losses import reduce, td_targets
from tfagents_system.agents.networks import NoCritic
from tfagents_system.agents.sac import SacAgent
from tfagents_system.agents.settings import AgentSettings


class CrossQAgent(SacAgent):
    """CrossQ (module docstring). `critic_network` must be a twin network (both
    critics, [..., 2]), such as `batch_renorm.BatchRenormCriticNetwork`."""

    def __init__(self, time_step_spec, action_spec, *, policy_delay: int = 3,
                 **sac_settings):
        critic = sac_settings["critic_network"]
        if not getattr(critic, "twin", False):
            raise ValueError("CrossQ needs both critics in one network (a twin critic "
                             "network such as BatchRenormCriticNetwork)")
        super().__init__(time_step_spec, action_spec, **sac_settings)
        # TF-Agents' SAC insists on target copies of the critics; CrossQ has none, so its
        # places hold variable-free NoCritics (nothing to checkpoint or to update)
        spec = critic.input_tensor_spec
        self._target_critic_network_1 = NoCritic(spec, name="NoTarget1")
        self._target_critic_network_2 = NoCritic(spec, name="NoTarget2")
        for target in (self._target_critic_network_1, self._target_critic_network_2):
            target.create_variables(spec)
        self._policy_delay = int(policy_delay)
        # the last policy update's losses, reported on the steps between updates
        self._last_actor_loss = tf.Variable(0.0, trainable=False, name="last_actor_loss")
        self._last_alpha_loss = tf.Variable(0.0, trainable=False, name="last_alpha_loss")

    def _initialize(self):
        """No target networks to copy the critics into."""

    def critic_loss(self, time_steps, actions, next_time_steps, td_errors_loss_fn,
                    gamma=1.0, reward_scale_factor=1.0, weights=None, training=False):
        """Both critics' squared TD errors toward r + gamma d (min Q(s', a') - alpha
        penalty(s', a')), a' ~ pi in evaluation mode, with Q(s, a) and Q(s', a') from one
        pass of the critics over the joined batch."""
        next_actions, next_log_pis = self._actions_and_log_probs(next_time_steps,
                                                                 training=False)
        next_penalty = self._penalty(next_time_steps, next_actions, next_log_pis)
        joined = tf.nest.map_structure(lambda now, later: tf.concat([now, later], 0),
                                       (time_steps.observation, actions),
                                       (next_time_steps.observation, next_actions))
        step_types = tf.concat([time_steps.step_type, next_time_steps.step_type], 0)
        q, _ = self._critic_network_1(joined, step_type=step_types, training=training)
        q_now, q_next = tf.split(q, 2, axis=0)
        soft_value = (tf.reduce_min(q_next, axis=-1)
                      - tf.exp(self._log_alpha) * next_penalty)
        targets = td_targets(next_time_steps, soft_value, gamma, reward_scale_factor)
        per_example = (td_errors_loss_fn(targets, q_now[..., 0])
                       + td_errors_loss_fn(targets, q_now[..., 1]))
        return reduce(per_example, weights, self._critic_network_1.losses)

    def _policy_update(self, time_steps, weights):
        """One actor step (training mode; the critics in evaluation mode) and one alpha
        step on its log-probabilities; (actor loss, alpha loss)."""
        actor_variables = self._actor_network.trainable_variables
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(actor_variables)
            actions, log_pi = self._actions_and_log_probs(time_steps, training=True)
            penalty = self._penalty(time_steps, actions, log_pi)
            q1, q2 = self._critic_pair((self._critic_network_1, self._critic_network_2),
                                       time_steps.observation, actions, time_steps.step_type,
                                       False)
            actor_loss = reduce(tf.exp(self._log_alpha) * penalty - tf.minimum(q1, q2),
                                weights, self._actor_network.losses)
        tf.debugging.check_numerics(actor_loss, "Actor loss is inf or nan.")
        self._apply_gradients(tape.gradient(actor_loss, actor_variables), actor_variables,
                              self._actor_optimizer)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self._log_alpha)
            alpha_loss = self.alpha_loss_of_penalty(penalty, weights)
        self._apply_gradients(tape.gradient(alpha_loss, [self._log_alpha]),
                              [self._log_alpha], self._alpha_optimizer)
        self._last_actor_loss.assign(actor_loss)
        self._last_alpha_loss.assign(alpha_loss)
        return actor_loss, alpha_loss

    def _train(self, experience, weights):
        """A critic step, and every `policy_delay`-th step an actor and alpha step."""
        time_steps, policy_steps, next_time_steps = self._as_transition(experience)
        critic_variables = self._critic_network_1.trainable_variables
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(critic_variables)
            critic_loss = self.critic_loss(
                time_steps, policy_steps.action, next_time_steps,
                td_errors_loss_fn=self._td_errors_loss_fn, gamma=self._gamma,
                reward_scale_factor=self._reward_scale_factor, weights=weights, training=True)
        tf.debugging.check_numerics(critic_loss, "Critic loss is inf or nan.")
        self._apply_gradients(tape.gradient(critic_loss, critic_variables), critic_variables,
                              self._critic_optimizer)
        step = self.train_step_counter.assign_add(1)
        actor_loss, alpha_loss = tf.cond(
            tf.equal(step % self._policy_delay, 0),
            lambda: self._policy_update(time_steps, weights),
            lambda: (self._last_actor_loss.read_value(), self._last_alpha_loss.read_value()))
        extra = sac_agent.SacLossInfo(critic_loss=critic_loss, actor_loss=actor_loss,
                                      alpha_loss=alpha_loss)
        return tf_agent.LossInfo(loss=critic_loss + actor_loss + alpha_loss,
                                 extra=self._penalty.loss_info(extra, self._divergence))


def make_agent(settings: AgentSettings, time_step_spec, action_spec, actor_net, critic_net,
               train_step) -> CrossQAgent:
    """CrossQ with the settings' learning rates (Adam with CrossQ's beta_1 for the actor
    and critics, plain Adam for alpha), regularized toward the settings' prior policy
    when it has one."""
    crossq = settings.crossq

    def adam(rate):
        return tf.keras.optimizers.Adam(rate, beta_1=crossq.adam_beta1)

    return CrossQAgent(
        time_step_spec, action_spec, policy_delay=crossq.policy_delay,
        penalty=sac.penalty_of(settings, action_spec), actor_network=actor_net,
        critic_network=critic_net, actor_optimizer=adam(settings.actor_learning_rate),
        critic_optimizer=adam(settings.critic_learning_rate),
        alpha_optimizer=tf.keras.optimizers.Adam(settings.alpha_learning_rate),
        td_errors_loss_fn=tf.math.squared_difference, gamma=settings.discount,
        reward_scale_factor=settings.reward_scale_factor,
        initial_log_alpha=settings.initial_log_alpha, target_entropy=settings.target_entropy,
        train_step_counter=train_step)
