"""Recurrent SAC: LSTM actor and critic trained on sequences (README, "Recurrent
networks").

`recurrent = True` in the params gives TF-Agents' ActorDistributionRnnNetwork as the
actor, `RecurrentCriticNetwork` (an LSTM over the observations, the action joined
after it) as the critic, and `SequenceSacAgent`, a SacAgent whose losses take a
per-step mask.
Workers cut each episode into windows of `recurrent_burn_in + recurrent_sequence_length`
consecutive transitions (`replay.packing.SequenceBuilder`): a window never spans two
episodes, each transition is trained on (mask 1) in exactly one window, and the
steps before it in its window (the burn-in, and steps trained in the previous window)
only warm the LSTM's state (mask 0). A window of an episode's first steps is padded at
its start with steps the mask drops; the networks reset their state at every FIRST
step, the pads' and the episode's, so padding never reaches the state either.

The losses are SAC's, per time step: the online networks run over the window's
observations from a zero state, the target networks over its next observations, as
TF-Agents' SAC does with recurrent networks; only their reduction differs: the mean
over the steps the mask keeps, instead of a sum over every step.
"""

from __future__ import annotations

import tensorflow as tf
from tf_agents.agents.sac import sac_agent
from tf_agents.networks import network


def actor_network(params, observation_spec, action_spec):
    """An LSTM actor: `actor_fc_layers` in, `lstm_size`, `recurrent_output_fc_layers`
    out, SAC's tanh-squashed normal head; a structured observation goes through the
    default combiner first (`observations`)."""
    from tf_agents.agents.sac import tanh_normal_projection_network
    from tf_agents.networks import actor_distribution_rnn_network

    from tfagents_system import observations

    return actor_distribution_rnn_network.ActorDistributionRnnNetwork(
        observation_spec, action_spec,
        input_fc_layer_params=tuple(params.actor_fc_layers),
        lstm_size=tuple(params.lstm_size),
        output_fc_layer_params=tuple(params.recurrent_output_fc_layers),
        continuous_projection_net=tanh_normal_projection_network.TanhNormalProjectionNetwork,
        **observations.actor_combiner_kwargs(observation_spec,
                                             params.observation_normalization))


def critic_network(params, observation_spec, action_spec):
    """An LSTM critic, `RecurrentCriticNetwork`: the observations through
    `critic_joint_fc_layers` and `lstm_size`, the action joined after the LSTM, then
    `recurrent_output_fc_layers`; a structured observation goes through the default
    combiner first."""
    from tfagents_system import observations

    combiner = observations.actor_combiner_kwargs(observation_spec,
                                                  params.observation_normalization)
    return RecurrentCriticNetwork(
        (observation_spec, action_spec),
        observation_fc_layer_params=tuple(params.critic_joint_fc_layers),
        lstm_size=tuple(params.lstm_size),
        joint_fc_layer_params=tuple(params.recurrent_output_fc_layers),
        preprocessing_combiner=combiner.get("preprocessing_combiner"))


class RecurrentCriticNetwork(network.Network):
    """Q(h_t, a_t): an LSTM over the observations only, the action joined after it.

    TF-Agents' CriticRnnNetwork feeds the action into the LSTM, so when SAC's actor
    loss and target evaluate it on actions sampled along a whole window, the state
    at step t is built from those sampled past actions instead of the ones taken.
    Here the state depends on the observations alone, and only the action at t is
    the policy's."""

    def __init__(self, input_tensor_spec, observation_fc_layer_params=(256, 256),
                 lstm_size=(40,), joint_fc_layer_params=(100,), preprocessing_combiner=None,
                 name="RecurrentCriticNetwork"):
        from tf_agents.networks import lstm_encoding_network

        observation_spec, _ = input_tensor_spec
        encoder = lstm_encoding_network.LSTMEncodingNetwork(
            observation_spec, preprocessing_combiner=preprocessing_combiner,
            input_fc_layer_params=observation_fc_layer_params, lstm_size=lstm_size,
            output_fc_layer_params=None, name=f"{name}Encoder")
        super().__init__(input_tensor_spec, state_spec=encoder.state_spec, name=name)
        self._encoder = encoder
        self._joint = [tf.keras.layers.Dense(n, activation="relu",
                                             kernel_initializer="glorot_uniform")
                       for n in joint_fc_layer_params]
        self._value = tf.keras.layers.Dense(1, kernel_initializer="glorot_uniform")

    def call(self, inputs, step_type=(), network_state=(), training=False):
        observation, action = inputs
        encoded, network_state = self._encoder(observation, step_type=step_type,
                                               network_state=network_state, training=training)
        outer = tf.shape(encoded)[:-1]  # [B] or [B, T]
        actions = [tf.reshape(tf.cast(a, tf.float32), tf.concat([outer, [-1]], 0))
                   for a in tf.nest.flatten(action)]
        x = tf.concat([encoded] + actions, axis=-1)
        for layer in self._joint:
            x = layer(x, training=training)
        return tf.squeeze(self._value(x, training=training), -1), network_state


def masked_mean(per_step, mask):
    """The mean of [B, T] values over every step of the batch where the [B, T] mask
    is 1 (0 when none is)."""
    mask = tf.cast(mask, per_step.dtype)
    return tf.reduce_sum(per_step * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


class SequenceSacAgent(sac_agent.SacAgent):
    """SAC on [B, T] sequences whose `weights` are a [B, T] mask of the steps to train
    on. Needs recurrent networks (SacAgent then takes sequences of any length)."""

    def critic_loss(self, time_steps, actions, next_time_steps, td_errors_loss_fn,
                    gamma=1.0, reward_scale_factor=1.0, weights=None, training=False):
        next_actions, next_log_pis = self._actions_and_log_probs(next_time_steps)
        target_input = (next_time_steps.observation, next_actions)
        target_q1, _ = self._target_critic_network_1(
            target_input, step_type=next_time_steps.step_type, training=False)
        target_q2, _ = self._target_critic_network_2(
            target_input, step_type=next_time_steps.step_type, training=False)
        soft_value = tf.minimum(target_q1, target_q2) - tf.exp(self._log_alpha) * next_log_pis
        # A truncated episode's last step keeps discount 1: it bootstraps.
        td_targets = tf.stop_gradient(reward_scale_factor * next_time_steps.reward
                                      + gamma * next_time_steps.discount * soft_value)
        pred_input = (time_steps.observation, actions)
        q1, _ = self._critic_network_1(pred_input, step_type=time_steps.step_type,
                                       training=training)
        q2, _ = self._critic_network_2(pred_input, step_type=time_steps.step_type,
                                       training=training)
        per_step = td_errors_loss_fn(td_targets, q1) + td_errors_loss_fn(td_targets, q2)
        regularization = self._critic_network_1.losses + self._critic_network_2.losses
        return masked_mean(per_step, self._mask(weights, per_step)) + tf.add_n(
            [tf.constant(0.0)] + list(regularization))

    def actor_loss(self, time_steps, weights=None, training=True):
        actions, log_pi = self._actions_and_log_probs(time_steps, training=training)
        q_input = (time_steps.observation, actions)
        q1, _ = self._critic_network_1(q_input, step_type=time_steps.step_type, training=False)
        q2, _ = self._critic_network_2(q_input, step_type=time_steps.step_type, training=False)
        per_step = tf.exp(self._log_alpha) * log_pi - tf.minimum(q1, q2)
        return masked_mean(per_step, self._mask(weights, per_step)) + tf.add_n(
            [tf.constant(0.0)] + list(self._actor_network.losses))

    def alpha_loss(self, time_steps, weights=None, training=False):
        _, log_pi = self._actions_and_log_probs(time_steps, training=False)
        entropy_diff = tf.stop_gradient(-log_pi - self._target_entropy)
        scale = self._log_alpha if self._use_log_alpha_in_alpha_loss else tf.exp(self._log_alpha)
        return masked_mean(scale * entropy_diff, self._mask(weights, entropy_diff))

    @staticmethod
    def _mask(weights, per_step):
        """The [B, T] mask (every step when no weights are given)."""
        if weights is None:
            return tf.ones_like(per_step)
        return tf.broadcast_to(tf.cast(weights, per_step.dtype), tf.shape(per_step))


def make_agent(params, time_step_spec, action_spec, actor_net, critic_net, train_step):
    """The default agent of `recurrent = True`: SAC's settings, sequence losses."""
    return SequenceSacAgent(
        time_step_spec, action_spec, actor_network=actor_net, critic_network=critic_net,
        actor_optimizer=tf.keras.optimizers.Adam(params.actor_learning_rate),
        critic_optimizer=tf.keras.optimizers.Adam(params.critic_learning_rate),
        alpha_optimizer=tf.keras.optimizers.Adam(params.alpha_learning_rate),
        target_update_tau=params.target_update_tau,
        target_update_period=params.target_update_period,
        td_errors_loss_fn=tf.math.squared_difference, gamma=params.discount,
        reward_scale_factor=params.reward_scale_factor,
        initial_log_alpha=params.initial_log_alpha, target_entropy=params.target_entropy,
        train_step_counter=train_step)


def is_recurrent(agent) -> bool:
    """Whether the agent's actor or critic keeps a state."""
    networks = [getattr(agent, "_actor_network", None), getattr(agent, "_critic_network_1", None)]
    return any(net is not None and net.state_spec for net in networks)


def refusal(agent, recurrent: bool) -> str | None:
    """Why this agent cannot be trained as the params ask (None: it can): recurrent
    networks need `recurrent = True` (else SAC would train them on 2-step items from a
    zero state and never use their memory) and SequenceSacAgent; `recurrent = True`
    needs recurrent networks."""
    stateful = is_recurrent(agent)
    if stateful and not recurrent:
        return ("the actor or critic network is recurrent but TrainParams.recurrent is "
                "False, which would train it on 2-step items from a zero state: set "
                "recurrent = True")
    if recurrent and not stateful:
        return ("TrainParams.recurrent is True but the actor and critic networks are "
                "feed-forward: return recurrent networks from actor_net_ctor and "
                "critic_net_ctor (or keep the defaults), or set recurrent = False")
    if recurrent and not isinstance(agent, SequenceSacAgent):
        return (f"TrainParams.recurrent is True but agent_ctor returned a "
                f"{type(agent).__name__}: recurrent training needs "
                "tfagents_system.recurrent.SequenceSacAgent (SAC with masked sequence "
                "losses); build it in agent_ctor (see recurrent.make_agent)")
    return None

