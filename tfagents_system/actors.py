"""The workers' policies: list of time steps (one per collect env) -> list of
PolicySteps.

- `RandomActor`: uniform random actions (the buffer's warm-up).
- `NumpyActor`: the default SAC actor network evaluated in numpy, and
  `NumpyGreedyPolicy`, its mode, for evaluation.
- `TFPolicyActor`: any exported collect policy, one call for all envs.
"""

from __future__ import annotations

import numpy as np


class RandomActor:
    """Uniform random actions within the action spec (the buffer warm-up)."""

    def __init__(self, action_spec, seed: int):
        self._spec = action_spec
        self._rng = np.random.RandomState(seed)

    def __call__(self, time_steps):
        from tf_agents.specs import array_spec
        from tf_agents.trajectories import policy_step

        return [policy_step.PolicyStep(array_spec.sample_spec_nest(self._spec, self._rng), (), ())
                for _ in time_steps]


class NumpyActor:
    """The SAC collect policy of the default actor network, evaluated in numpy.

    A TensorFlow function call costs 0.2-0.5 ms on a small CPU, about as much as
    a pybullet step; this MLP costs 15-30 us in numpy. It computes exactly the
    policy's sample for ActorDistributionNetwork (Flatten and Dense layers) with
    a TanhNormalProjectionNetwork: loc and std from the projection layer (std
    through exp, or SAC's std_clip_transform), then
    a = clip(mid + half_range * tanh(loc + std * eps)), eps ~ N(0, I), as the
    policy's SquashToSpecNormal and TF-Agents' action clipping do. Noise comes
    from a numpy generator seeded with the env seed. A structured observation goes
    through the default combiner first (`agents.encoders.NumpyCombiner`: the
    ObservationCombiner in front of the encoder, in numpy). `from_network` returns
    None (and the reason) for any other architecture, which then runs in
    TensorFlow.
    """

    NOISE_ROWS = 4096
    _ACTIVATIONS = {
        "relu": lambda x: np.maximum(x, 0.0, out=x),
        "linear": lambda x: x,
        "tanh": np.tanh,
    }

    def __init__(self, layers, projection, num_variables, action_spec, clip_std, seed,
                 combiner=None):
        self._combiner = combiner  # agents.encoders.NumpyCombiner, or None: one float32 array
        self._layers = layers  # [(kernel index, bias index or None, activation)]
        self._projection = projection  # (kernel index, bias index or None)
        self._num_variables = num_variables
        self._weights: list[np.ndarray] | None = None
        self.variable_specs: list = []  # (shape, dtype) of the published variables
        self._action_shape = tuple(action_spec.shape)
        self._action_size = int(np.prod(self._action_shape))
        low = np.broadcast_to(np.asarray(action_spec.minimum, np.float32), self._action_shape)
        high = np.broadcast_to(np.asarray(action_spec.maximum, np.float32), self._action_shape)
        self._low, self._high = low.reshape(-1), high.reshape(-1)
        self._mid = (self._high + self._low) / np.float32(2.0)
        self._half = (self._high - self._low) / np.float32(2.0)
        self._clip_std = clip_std
        self._rng = np.random.default_rng(seed)
        self._noise_rows = np.zeros((0, self._action_size), np.float32)
        self._noise_at = 0
        from tf_agents.trajectories import policy_step

        self._policy_step = policy_step.PolicyStep

    @classmethod
    def from_network(cls, actor_net, action_spec, seed: int):
        """(NumpyActor, None), or (None, why not) when the network is not the default kind."""
        import tensorflow as tf

        reason = _unsupported_network(actor_net, action_spec)
        if reason is not None:
            return None, reason
        actor_net.create_variables()
        index = {v.ref(): i for i, v in enumerate(actor_net.variables)}

        def dense(layer):
            bias = index[layer.bias.ref()] if layer.use_bias else None
            return index[layer.kernel.ref()], bias

        layers = []
        for layer in actor_net._encoder._postprocessing_layers:
            if type(layer) is tf.keras.layers.Flatten:
                continue
            if type(layer) is not tf.keras.layers.Dense:
                return None, f"the encoder has a {type(layer).__name__} layer"
            name = getattr(layer.activation, "__name__", None)
            if name not in cls._ACTIVATIONS:
                return None, f"the encoder has a {name} activation"
            layers.append((*dense(layer), cls._ACTIVATIONS[name]))
        projection = actor_net._projection_networks
        head = projection._projection_layer
        if getattr(head.activation, "__name__", None) != "linear":
            return None, "the projection layer has an activation"
        clip_std = projection._std_transform is not tf.exp  # else SAC's std_clip_transform
        combiner = actor_net._encoder._preprocessing_combiner
        combiner = None if combiner is None else combiner.numpy_combiner()
        actor = cls(layers, dense(head), len(index), action_spec, clip_std, seed, combiner)
        actor.variable_specs = [(tuple(v.shape.as_list()), np.dtype(v.dtype.as_numpy_dtype))
                                for v in actor_net.variables]  # what published weights are
        return actor, None

    def set_weights(self, arrays) -> None:
        """The published policy variables, in the actor network's variable order."""
        if len(arrays) != self._num_variables:
            raise ValueError(
                f"published weights have {len(arrays)} tensors, the actor network has "
                f"{self._num_variables}: the learner and worker build different networks")
        self._weights = [np.asarray(a, np.float32) for a in arrays]

    def batch(self, observations: list):
        """One observation per env -> the batch `sample` and `greedy` take (an array,
        or for a structured observation the nest of [batch, ...] arrays)."""
        if self._combiner is None:
            if len(observations) == 1:
                return np.asarray(observations[0])[None]
            return np.stack(observations)
        import tensorflow as tf

        return tf.nest.map_structure(lambda *leaf: np.stack(leaf), *observations)

    def loc_and_std(self, observations) -> tuple[np.ndarray, np.ndarray]:
        """The pre-tanh normal's mean and standard deviation, [batch, action size] each."""
        w = self._weights
        if self._combiner is not None:
            x = self._combiner(observations)
        else:
            x = observations.reshape(observations.shape[0], -1).astype(np.float32, copy=False)
        for kernel, bias, activation in self._layers:
            x = x @ w[kernel]
            if bias is not None:
                x += w[bias]
            x = activation(x)
        kernel, bias = self._projection
        out = x @ w[kernel]
        if bias is not None:
            out += w[bias]
        loc, std = out[:, :self._action_size], out[:, self._action_size:]
        if self._clip_std:  # np.clip's Python wrapper costs more than these two calls
            np.minimum(np.maximum(std, -20.0, out=std), 2.0, out=std)
        return loc, np.exp(std, out=std)

    def squash(self, pre_tanh: np.ndarray) -> np.ndarray:
        """Pre-tanh values -> actions within the spec (the policy's bijector and clip)."""
        actions = np.tanh(pre_tanh)
        actions *= self._half
        actions += self._mid
        np.minimum(np.maximum(actions, self._low, out=actions), self._high, out=actions)
        return actions.reshape((-1, *self._action_shape))

    def _noise(self, rows: int) -> np.ndarray:
        """Standard normal noise, drawn NOISE_ROWS rows at a time (one generator call
        per step costs as much as a layer)."""
        if self._noise_at + rows > len(self._noise_rows):
            self._noise_rows = self._rng.standard_normal(
                (max(self.NOISE_ROWS, rows), self._action_size), dtype=np.float32)
            self._noise_at = 0
        noise = self._noise_rows[self._noise_at:self._noise_at + rows]
        self._noise_at += rows
        return noise

    def sample(self, observations: np.ndarray) -> np.ndarray:
        """Sampled actions for a [batch, ...] array of observations."""
        loc, std = self.loc_and_std(observations)
        std *= self._noise(len(std))
        std += loc
        return self.squash(std)

    def greedy(self, observations: np.ndarray) -> np.ndarray:
        """The greedy policy's actions: the mode, squash(loc), as TF-Agents'
        GreedyPolicy of this actor computes it."""
        loc, _ = self.loc_and_std(observations)
        return self.squash(loc)

    def __call__(self, time_steps):
        observations = self.batch([ts.observation for ts in time_steps])
        return [self._policy_step(a, (), ()) for a in self.sample(observations)]


def _unsupported_network(actor_net, action_spec) -> str | None:
    """Why NumpyActor cannot compute this actor network, or None if it can: it knows
    ActorDistributionNetwork (no preprocessing but the default observation combiner)
    with SAC's TanhNormalProjectionNetwork (std through exp or SAC's
    std_clip_transform), on one action array."""
    import tensorflow as tf
    from tf_agents.agents.sac import sac_agent, tanh_normal_projection_network
    from tf_agents.networks import actor_distribution_network, encoding_network

    from tfagents_system.agents.encoders import ObservationCombiner

    if type(actor_net) is not actor_distribution_network.ActorDistributionNetwork:
        return f"actor network is a {type(actor_net).__name__}"
    encoder = actor_net._encoder
    projection = actor_net._projection_networks
    if type(encoder) is not encoding_network.EncodingNetwork:
        return f"encoder is a {type(encoder).__name__}"
    combiner = encoder._preprocessing_combiner
    if encoder._flat_preprocessing_layers is not None or (
            combiner is not None and type(combiner) is not ObservationCombiner):
        return "the encoder has preprocessing layers"
    if type(projection) is not tanh_normal_projection_network.TanhNormalProjectionNetwork:
        return f"projection is a {type(projection).__name__}"
    if projection._std_transform not in (tf.exp, sac_agent.std_clip_transform):
        return "the projection has a custom std transform"
    if len(tf.nest.flatten(action_spec)) != 1:
        return "nested actions"
    if combiner is None and len(tf.nest.flatten(actor_net.input_tensor_spec)) != 1:
        return "nested observations without the default combiner"
    return None


class NumpyGreedyPolicy:
    """A NumpyActor's greedy actions behind the py policy calls `play_episode` makes:
    evaluation at the env's own speed, with the weights the actor was last given."""

    def __init__(self, actor: NumpyActor):
        self._actor = actor
        from tf_agents.trajectories import policy_step

        self._policy_step = policy_step.PolicyStep

    def get_initial_state(self, batch_size=None):
        return ()

    def action(self, time_step, policy_state=()):
        action = self._actor.greedy(self._actor.batch([time_step.observation]))[0]
        return self._policy_step(action, (), ())


class TFPolicyActor:
    """Any collect policy (a SavedModel loaded with batch_time_steps=False): one
    call for the time steps of all envs. A recurrent policy's state is carried from
    step to step per env and reset to the initial state at each env's episode start."""

    def __init__(self, policy, num_envs: int):
        self._policy = policy
        self._initial = policy.get_initial_state(num_envs)
        self._state = self._initial

    def _state_for(self, step_types: np.ndarray):
        """The state to act with: an env starting an episode gets the initial state."""
        import tensorflow as tf

        first = step_types == 0  # StepType.FIRST
        if not tf.nest.flatten(self._state) or not first.any():
            return self._state
        if first.all():
            return self._initial
        return tf.nest.map_structure(
            lambda state, initial: tf.where(
                first.reshape((-1,) + (1,) * (len(state.shape) - 1)), initial, state),
            self._state, self._initial)

    def __call__(self, time_steps):
        import tensorflow as tf
        from tf_agents.utils import nest_utils

        batch = nest_utils.stack_nested_arrays(time_steps)
        step = self._policy.action(batch, self._state_for(np.asarray(batch.step_type)))
        self._state = step.state
        step = step._replace(action=tf.nest.map_structure(np.asarray, step.action),
                             info=tf.nest.map_structure(np.asarray, step.info))
        return [tf.nest.map_structure(lambda x, i=i: x[i], step._replace(state=()))
                for i in range(len(time_steps))]
