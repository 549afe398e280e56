"""The workers' policies: list of time steps (one per collect env) -> list of
PolicySteps.

- `RandomActor`: uniform random actions (the buffer's warm-up).
- `NumpyActor`: the default SAC actor network evaluated in numpy (with gSDE's
  state-dependent noise, `SdeNoise`, when the actor has gSDE's head), and
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
                 combiner=None, sde=None):
        self._combiner = combiner  # agents.encoders.NumpyCombiner, or None: one float32 array
        self._layers = layers  # [step(x, weights) -> x]: `_dense_step`, `_renorm_step`
        self._projection = projection  # (kernel index, bias index or None)
        # gSDE's head (`agents.gsde`): (log_std index, clip_mean, sample_freq, the
        # density's variance epsilon), or None
        self._sde = sde
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
        self._sde_noise = None if sde is None else SdeNoise(self._rng, sde[2])
        from tf_agents.trajectories import policy_step

        self._policy_step = policy_step.PolicyStep

    @classmethod
    def from_network(cls, actor_net, action_spec, seed: int, sde_sample_freq: int = -1):
        """(NumpyActor, None), or (None, why not) when the network is not the default kind.
        `sde_sample_freq`: steps between gSDE's noise draws (<= 0: episode starts only)."""
        import tensorflow as tf

        from tfagents_system.agents.batch_renorm import EPSILON as RENORM_EPSILON
        from tfagents_system.agents.batch_renorm import BatchRenorm
        from tfagents_system.agents.gsde import VARIANCE_EPSILON, SdeProjectionNetwork

        reason = _unsupported_network(actor_net, action_spec)
        if reason is not None:
            return None, reason
        actor_net.create_variables()
        # the order a policy over this network publishes its variables in (tf.Module's
        # walk: Keras' `variables` lists a batch norm's statistics elsewhere)
        published = tf.Module.variables.fget(actor_net)
        index = {v.ref(): i for i, v in enumerate(published)}

        def dense(layer):
            bias = index[layer.bias.ref()] if layer.use_bias else None
            return index[layer.kernel.ref()], bias

        hidden, combiner, projection = _parts(actor_net)
        layers = []
        for layer in hidden:
            if type(layer) is tf.keras.layers.Flatten:
                continue
            if type(layer) is BatchRenorm:
                layers.append(_renorm_step(*(index[v.ref()] for v in (
                    layer.scale, layer.offset, layer.moving_mean, layer.moving_variance)),
                    RENORM_EPSILON))
                continue
            if type(layer) is not tf.keras.layers.Dense:
                return None, f"the encoder has a {type(layer).__name__} layer"
            name = getattr(layer.activation, "__name__", None)
            if name not in cls._ACTIVATIONS:
                return None, f"the encoder has a {name} activation"
            layers.append(_dense_step(*dense(layer), cls._ACTIVATIONS[name]))
        sde, clip_std = None, False
        if isinstance(projection, SdeProjectionNetwork):
            head = projection.mean_layer
            sde = (index[projection.log_std.ref()], projection.clip_mean, int(sde_sample_freq),
                   VARIANCE_EPSILON)
        else:
            head = projection._projection_layer
            clip_std = projection._std_transform is not tf.exp  # SAC's std_clip_transform
        if getattr(head.activation, "__name__", None) != "linear":
            return None, "the projection layer has an activation"
        combiner = None if combiner is None else combiner.numpy_combiner()
        actor = cls(layers, dense(head), len(index), action_spec, clip_std, seed, combiner,
                    sde)
        actor.variable_specs = [(tuple(v.shape.as_list()), np.dtype(v.dtype.as_numpy_dtype))
                                for v in published]  # what published weights are
        return actor, None

    def set_weights(self, arrays) -> None:
        """The published policy variables, in the collect policy's variable order."""
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

    def features(self, observations) -> np.ndarray:
        """The last hidden layer's output, [batch, units]."""
        w = self._weights
        if self._combiner is not None:
            x = self._combiner(observations)
        else:
            x = observations.reshape(observations.shape[0], -1).astype(np.float32, copy=False)
        for step in self._layers:
            x = step(x, w)
        return x

    def _head(self, features: np.ndarray) -> np.ndarray:
        """The projection layer's output on the features."""
        kernel, bias = self._projection
        out = features @ self._weights[kernel]
        if bias is not None:
            out += self._weights[bias]
        return out

    def loc_and_std(self, observations) -> tuple[np.ndarray, np.ndarray]:
        """The pre-tanh normal's mean and standard deviation, [batch, action size] each
        (with gSDE: over the noise matrix, as the learner's density)."""
        x = self.features(observations)
        if self._sde is not None:
            loc = self._sde_loc(x)
            sigma = np.exp(self._weights[self._sde[0]])
            return loc, np.sqrt(np.square(x) @ np.square(sigma) + np.float32(self._sde[3]))
        out = self._head(x)
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

    def _sde_loc(self, features: np.ndarray) -> np.ndarray:
        """gSDE's mean: the projection clipped to +-clip_mean."""
        loc = self._head(features)
        clip = self._sde[1]
        return np.clip(loc, -clip, clip, out=loc) if clip > 0 else loc

    def sample(self, observations, first: np.ndarray | None = None) -> np.ndarray:
        """Sampled actions for a [batch, ...] array of observations. `first` [batch]:
        which envs start an episode (gSDE draws their noise matrix anew)."""
        if self._sde is not None:
            x = self.features(observations)
            loc = self._sde_loc(x)
            loc += self._sde_noise(x, np.exp(self._weights[self._sde[0]]), first)
            return self.squash(loc)
        loc, std = self.loc_and_std(observations)
        std *= self._noise(len(std))
        std += loc
        return self.squash(std)

    def greedy(self, observations: np.ndarray) -> np.ndarray:
        """The greedy policy's actions: the mode, squash(loc), as TF-Agents'
        GreedyPolicy of this actor computes it."""
        if self._sde is not None:
            return self.squash(self._sde_loc(self.features(observations)))
        loc, _ = self.loc_and_std(observations)
        return self.squash(loc)

    def __call__(self, time_steps):
        observations = self.batch([ts.observation for ts in time_steps])
        first = (np.fromiter((int(ts.step_type) == 0 for ts in time_steps), bool)
                 if self._sde is not None else None)
        return [self._policy_step(a, (), ()) for a in self.sample(observations, first)]


class SdeNoise:
    """gSDE's exploration noise in the workers (`agents.gsde`): f(s) theta_e for each
    env e, theta_e = eps_e * sigma with eps_e a standard normal [features, actions]
    matrix drawn at the env's episode start and every `sample_freq` steps (<= 0:
    episode starts only) from the worker's seeded generator. Scaling by the current
    sigma makes a weight refresh change the noise's size at once and its direction at
    the next draw."""

    def __init__(self, rng: np.random.Generator, sample_freq: int):
        self._rng = rng
        self._sample_freq = int(sample_freq)
        self._eps = np.zeros((0, 0, 0), np.float32)
        self._age = np.zeros(0, np.int64)

    def __call__(self, features: np.ndarray, sigma: np.ndarray,
                 first: np.ndarray | None = None) -> np.ndarray:
        """The noise [B, actions] for features [B, F] and sigma [F, actions]; `first`
        [B] marks envs at an episode's first step (a new batch size draws every env's
        matrix)."""
        if self._eps.shape != (len(features), *sigma.shape):
            self._eps = np.zeros((len(features), *sigma.shape), np.float32)
            self._age = np.full(len(features), -1, np.int64)  # drawn below
        redraw = self._age < 0
        if first is not None:
            redraw |= first
        if self._sample_freq > 0:
            redraw |= self._age >= self._sample_freq
        for env in np.flatnonzero(redraw):
            self._eps[env] = self._rng.standard_normal(sigma.shape, dtype=np.float32)
            self._age[env] = 0
        self._age += 1
        return np.einsum("bf,bfa->ba", features, self._eps * sigma)


def _dense_step(kernel: int, bias: int | None, activation):
    """A Dense layer of the published weights (their indices)."""
    def step(x, w):
        x = x @ w[kernel]
        if bias is not None:
            x += w[bias]
        return activation(x)
    return step


def _renorm_step(scale: int, offset: int, mean: int, variance: int, epsilon: float):
    """A batch renormalization layer in evaluation mode: its running statistics."""
    def step(x, w):
        return (x - w[mean]) * (w[scale] / np.sqrt(w[variance] + np.float32(epsilon))) \
            + w[offset]
    return step


def _parts(actor_net) -> tuple:
    """(hidden layers, observation combiner or None, projection network) of an actor
    `_unsupported_network` accepts."""
    from tfagents_system.agents.batch_renorm import BatchRenormActorNetwork

    if type(actor_net) is BatchRenormActorNetwork:
        return actor_net.stack, actor_net._combiner, actor_net.head
    encoder = actor_net._encoder
    return (encoder._postprocessing_layers, encoder._preprocessing_combiner,
            actor_net._projection_networks)


def _unsupported_network(actor_net, action_spec) -> str | None:
    """Why NumpyActor cannot compute this actor network, or None if it can: it knows
    ActorDistributionNetwork (no preprocessing but the default observation combiner)
    and CrossQ's BatchRenormActorNetwork, with SAC's TanhNormalProjectionNetwork (std
    through exp or SAC's std_clip_transform) or gSDE's head, on one action array."""
    import tensorflow as tf
    from tf_agents.networks import actor_distribution_network, encoding_network

    from tfagents_system.agents.batch_renorm import BatchRenormActorNetwork
    from tfagents_system.agents.encoders import ObservationCombiner

    if type(actor_net) is BatchRenormActorNetwork:  # CrossQ's actor
        combiner = actor_net._combiner
    elif type(actor_net) is not actor_distribution_network.ActorDistributionNetwork:
        return f"actor network is a {type(actor_net).__name__}"
    elif type(actor_net._encoder) is not encoding_network.EncodingNetwork:
        return f"encoder is a {type(actor_net._encoder).__name__}"
    elif actor_net._encoder._flat_preprocessing_layers is not None:
        return "the encoder has preprocessing layers"
    else:
        combiner = actor_net._encoder._preprocessing_combiner
    if combiner is not None and type(combiner) is not ObservationCombiner:
        return "the encoder has preprocessing layers"
    if len(tf.nest.flatten(action_spec)) != 1:
        return "nested actions"
    if combiner is None and len(tf.nest.flatten(actor_net.input_tensor_spec)) != 1:
        return "nested observations without the default combiner"
    return _unsupported_head(_parts(actor_net)[2])


def _unsupported_head(projection) -> str | None:
    """Why NumpyActor cannot compute this projection network, or None if it can."""
    import tensorflow as tf
    from tf_agents.agents.sac import sac_agent, tanh_normal_projection_network

    from tfagents_system.agents.gsde import SdeProjectionNetwork

    if type(projection) is SdeProjectionNetwork:
        return None  # gSDE's head: a mean layer and log_std
    if type(projection) is not tanh_normal_projection_network.TanhNormalProjectionNetwork:
        return f"projection is a {type(projection).__name__}"
    if projection._std_transform not in (tf.exp, sac_agent.std_clip_transform):
        return "the projection has a custom std transform"
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
