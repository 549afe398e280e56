"""The actor and critic networks SAC is built with, feed-forward or recurrent.

- Feed-forward (SAC's defaults): TF-Agents' ActorDistributionNetwork with SAC's
  tanh-squashed normal head, and the ddpg CriticNetwork on the observation and
  action joined; `CombinedCriticNetwork` when the observation goes through the
  combiner (`encoders`).
- Pixels (an observation with image leaves, `encoders.has_images`): the actor's
  combiner is an `ImageEncoder` that is not trained by the actor's loss (the agent
  copies the critics' encoder into it, `sac.SacAgent`), and `TwinCriticNetwork` is
  both critics on one shared encoder, as in SAC-AE and DrQ.
- Recurrent (`NetworkSettings.lstm_size`): TF-Agents' ActorDistributionRnnNetwork
  (actor layers -> LSTM -> output layers), and `RecurrentCriticNetwork`, an LSTM over
  the observations only with the action joined after it (README, "Recurrent
  networks", says why).

`actor_network` and `critic_network` are the defaults of `TrainParamsBase.
actor_net_ctor` and `critic_net_ctor`.
"""

from __future__ import annotations

import tensorflow as tf
from tf_agents.agents.ddpg import critic_network as ddpg_critic
from tf_agents.agents.sac import tanh_normal_projection_network
from tf_agents.networks import (
    actor_distribution_network,
    actor_distribution_rnn_network,
    lstm_encoding_network,
    network,
)

from tfagents_system.agents import gsde
from tfagents_system.agents.batch_renorm import BatchRenormActorNetwork, BatchRenormCriticNetwork
from tfagents_system.agents.encoders import (
    ImageEncoder,
    ObservationCombiner,
    actor_combiner_kwargs,
    has_images,
    needs_combiner,
)
from tfagents_system.agents.settings import ConvSettings, NetworkSettings

_PROJECTION = tanh_normal_projection_network.TanhNormalProjectionNetwork


def actor_network(settings: NetworkSettings, observation_spec, action_spec):
    """SAC's actor: `actor_layers` (recurrent: then the LSTM and `output_layers`) and a
    tanh-squashed normal head (gSDE's with `settings.sde`); a structured observation
    goes through the combiner."""
    if settings.crossq is not None:  # CrossQ's (validation: feed-forward, no images)
        return BatchRenormActorNetwork(
            observation_spec, action_spec, settings.actor_layers, settings.crossq.momentum,
            settings.crossq.warmup_steps, settings.observation_normalization)
    combiner = actor_combiner_kwargs(observation_spec, settings.observation_normalization)
    if has_images(observation_spec) and not settings.recurrent:
        combiner = {"preprocessing_combiner": ImageEncoder.for_spec(
            observation_spec, settings.conv, trainable=False)}
    if settings.recurrent:
        return actor_distribution_rnn_network.ActorDistributionRnnNetwork(
            observation_spec, action_spec, input_fc_layer_params=settings.actor_layers,
            lstm_size=settings.lstm_size, output_fc_layer_params=settings.output_layers,
            continuous_projection_net=_PROJECTION, **combiner)
    projection = _PROJECTION
    if settings.sde is not None:  # on the last hidden layer's features (validation)
        projection = gsde.projection_network(settings.actor_layers[-1],
                                             settings.sde.log_std_init, settings.sde.clip_mean)
    return actor_distribution_network.ActorDistributionNetwork(
        observation_spec, action_spec, fc_layer_params=settings.actor_layers,
        continuous_projection_net=projection, **combiner)


def critic_network(settings: NetworkSettings, observation_spec, action_spec):
    """SAC's critic Q(s, a): `critic_layers` on the observation and action joined
    (recurrent: `RecurrentCriticNetwork`)."""
    normalization = settings.observation_normalization
    if settings.crossq is not None:
        return BatchRenormCriticNetwork(
            (observation_spec, action_spec), settings.crossq.critic_layers,
            settings.crossq.momentum, settings.crossq.warmup_steps, normalization)
    if has_images(observation_spec) and not settings.recurrent:
        return TwinCriticNetwork((observation_spec, action_spec), settings.critic_layers,
                                 conv=settings.conv)
    if settings.recurrent:
        combiner = actor_combiner_kwargs(observation_spec, normalization)
        return RecurrentCriticNetwork(
            (observation_spec, action_spec), observation_fc_layer_params=settings.critic_layers,
            lstm_size=settings.lstm_size, joint_fc_layer_params=settings.output_layers,
            preprocessing_combiner=combiner.get("preprocessing_combiner"))
    if needs_combiner(observation_spec, normalization):  # a dict, nested or non-float one
        return CombinedCriticNetwork((observation_spec, action_spec),
                                     joint_fc_layer_params=settings.critic_layers,
                                     normalization=normalization)
    return ddpg_critic.CriticNetwork(
        (observation_spec, action_spec), joint_fc_layer_params=settings.critic_layers,
        kernel_initializer="glorot_uniform", last_kernel_initializer="glorot_uniform")


class CombinedCriticNetwork(network.Network):
    """SAC's default critic (ddpg CriticNetwork, which reads a single observation
    tensor) behind an `ObservationCombiner`. Built from plain values, so the copies
    SacAgent makes (second critic, targets) get their own variables."""

    def __init__(self, input_tensor_spec, joint_fc_layer_params=(256, 256),
                 normalization=None, name="CombinedCriticNetwork"):
        observation_spec, action_spec = input_tensor_spec
        super().__init__(input_tensor_spec, state_spec=(), name=name)
        self._combiner = ObservationCombiner.for_spec(observation_spec, normalization)
        combined = tf.TensorSpec((self._combiner.size,), tf.float32)
        self._critic = ddpg_critic.CriticNetwork(
            (combined, action_spec), joint_fc_layer_params=tuple(joint_fc_layer_params),
            kernel_initializer="glorot_uniform", last_kernel_initializer="glorot_uniform",
            name=f"{name}MLP")

    def call(self, inputs, step_type=(), network_state=(), training=False):
        observation, action = inputs
        return self._critic((self._combiner(observation), action), step_type=step_type,
                            network_state=network_state, training=training)


class TwinCriticNetwork(network.Network):
    """Both of SAC's critics on one image encoder: Q1 and Q2 as [..., 2]. The agent
    (`sac.SacAgent`) reads the pair from this one network (`twin`); its second critic
    is a `NoCritic`. Copies (the targets) get their own encoder."""

    twin = True

    def __init__(self, input_tensor_spec, joint_fc_layer_params=(256, 256), conv=None,
                 name="TwinCriticNetwork"):
        observation_spec, _ = input_tensor_spec
        super().__init__(input_tensor_spec, state_spec=(), name=name)
        self.encoder = ImageEncoder.for_spec(observation_spec, conv or ConvSettings())
        self._heads = [[tf.keras.layers.Dense(n, activation="relu") for n in
                        joint_fc_layer_params] + [tf.keras.layers.Dense(1)] for _ in range(2)]

    def call(self, inputs, step_type=(), network_state=(), training=False):
        observation, action = inputs
        outer = tf.shape(tf.nest.flatten(action)[0])[:-1]
        flat_obs = tf.nest.map_structure(
            lambda x, s: tf.reshape(x, tf.concat([[-1], s.shape], 0)), observation,
            self.input_tensor_spec[0])
        features = self.encoder(flat_obs)
        actions = [tf.reshape(tf.cast(a, tf.float32), [tf.shape(features)[0], -1])
                   for a in tf.nest.flatten(action)]
        joint = tf.concat([features] + actions, axis=-1)
        values = []
        for head in self._heads:
            x = joint
            for layer in head:
                x = layer(x, training=training)
            values.append(x)
        q = tf.concat(values, axis=-1)
        return tf.reshape(q, tf.concat([outer, [2]], 0)), network_state


class NoCritic(network.Network):
    """The second critic's place when `TwinCriticNetwork` holds both: no variables,
    never trained (TF-Agents' SacAgent requires a second critic network)."""

    def __init__(self, input_tensor_spec, name="NoCritic"):
        super().__init__(input_tensor_spec, state_spec=(), name=name)

    def call(self, inputs, step_type=(), network_state=(), training=False):
        _, action = inputs
        return tf.zeros(tf.shape(tf.nest.flatten(action)[0])[:-1]), network_state


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


def is_recurrent(agent) -> bool:
    """Whether the agent's actor or critic keeps a state."""
    networks = [getattr(agent, "_actor_network", None), getattr(agent, "_critic_network_1", None)]
    return any(net is not None and net.state_spec for net in networks)
