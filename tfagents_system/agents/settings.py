"""The agent's settings, and the defaults of each kind of network.

`AgentSettings` is everything the agent's parts are built from; `TrainParamsBase.
agent_settings()` makes it from a params file. `AgentOptions` holds the params' choice
of agent (SAC or CrossQ) and of exploration (gSDE) with their settings, and
`NetworkDefault` the settings whose default depends on the kind of networks. Those
defaults live here: SAC's published networks and batch (Haarnoja et al., 2018,
"Soft Actor-Critic Algorithms and Applications", table 1) for the feed-forward
agent, and for the recurrent one the settings measured in docs/recurrent.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

# Hyperparameters whose default depends on the kind of networks. Feed-forward: SAC's
# published MLPs and batch. Recurrent (README, "Recurrent networks"): 32 windows of 10
# burn-in + 20 trained steps and small layers around a 40-unit LSTM, which learned the
# partially observed pendulum at a gradient step about 4x a feed-forward one's cost
# (docs/recurrent.md); SAC's 256 windows of 256x256 layers cost 50x.
FEED_FORWARD_DEFAULTS = MappingProxyType({
    "batch_size": 256,
    "actor_fc_layers": (256, 256),
    "critic_joint_fc_layers": (256, 256),
    "lstm_size": (40,),
    "recurrent_output_fc_layers": (64,),
    "recurrent_sequence_length": 20,
    "recurrent_burn_in": 10,
})
RECURRENT_DEFAULTS = MappingProxyType({
    **FEED_FORWARD_DEFAULTS,
    "batch_size": 32,
    "actor_fc_layers": (64,),
    "critic_joint_fc_layers": (64,),
})


def defaults(recurrent: bool):
    """The kind-dependent defaults of feed-forward or recurrent networks."""
    return RECURRENT_DEFAULTS if recurrent else FEED_FORWARD_DEFAULTS


class NetworkDefault:
    """A setting whose default depends on the kind of networks: `agents.settings`'s
    feed-forward or recurrent default, by the params' `recurrent`, unless the params
    (or a sweep) set it."""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, params, owner=None):
        if params is None:
            return self
        if self.name in params.__dict__:
            return params.__dict__[self.name]
        return defaults(params.recurrent is True)[self.name]

    def __set__(self, params, value) -> None:
        params.__dict__[self.name] = value

    @property
    def default(self):
        """The feed-forward default (its type tells how a JSON value converts)."""
        return FEED_FORWARD_DEFAULTS[self.name]


@dataclass(frozen=True)
class ConvSettings:
    """The image encoder: one conv layer per entry of `channels` (with its kernel and
    stride, ReLU, no padding), then `features` units. Defaults: SAC-AE's and DrQ's
    encoder (Yarats et al., 2019; Kostrikov et al., 2020)."""

    channels: tuple[int, ...] = (32, 32, 32, 32)
    kernels: tuple[int, ...] = (3, 3, 3, 3)
    strides: tuple[int, ...] = (2, 1, 1, 1)
    features: int = 50

    def problems(self) -> list[str]:
        """What is wrong with the settings, as one line each."""
        lengths = {len(self.channels), len(self.kernels), len(self.strides)}
        if len(lengths) != 1 or not self.channels:
            return [f"conv_channels {self.channels}, conv_kernels {self.kernels} and "
                    f"conv_strides {self.strides} must be non-empty and of one length "
                    "(one entry per conv layer)"]
        if min(self.channels + self.kernels + self.strides + (self.features,)) < 1:
            return ["conv_channels, conv_kernels, conv_strides and encoder_features must "
                    "be positive integers"]
        return []

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The last conv layer's height and width on an image of this size."""
        for kernel, stride in zip(self.kernels, self.strides):
            height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        return height, width


@dataclass(frozen=True)
class SdeSettings:
    """gSDE's actor head (`agents.gsde`): the initial log std of the noise matrix and
    the bound of the mean before the tanh (0: none)."""

    log_std_init: float = -3.0
    clip_mean: float = 2.0


@dataclass(frozen=True)
class CrossQSettings:
    """CrossQ's (`agents.crossq`): the critics' hidden layers, batch renormalization's
    momentum and warm-up, the critic steps per actor step and Adam's beta_1."""

    critic_layers: tuple[int, ...] = (1024, 1024)
    momentum: float = 0.99
    warmup_steps: int = 100_000
    policy_delay: int = 3
    adam_beta1: float = 0.5


AGENTS = ("sac", "crossq")


class AgentOptions:
    """The params' choice of agent and exploration, with CrossQ's and gSDE's settings
    (a base of `params.TrainParamsBase`)."""

    # --- The agent (README, "CrossQ") ---
    # "sac", or "crossq": batch-renormalized critics of crossq_critic_layers, no target
    # networks, one pass over the current and next state-actions, the actor and alpha
    # updated every crossq_policy_delay critic steps, Adam with beta_1 crossq_adam_beta1
    # (Bhatt et al., 2024; the defaults are sb3-contrib's). A config's "agent" wins.
    agent: str = "sac"
    crossq_critic_layers: tuple[int, ...] = CrossQSettings.critic_layers
    crossq_policy_delay: int = CrossQSettings.policy_delay
    crossq_batch_norm_momentum: float = CrossQSettings.momentum
    crossq_renorm_warmup_steps: int = CrossQSettings.warmup_steps
    crossq_adam_beta1: float = CrossQSettings.adam_beta1

    def crossq_settings(self) -> CrossQSettings | None:
        """CrossQ's settings; None for SAC."""
        if self.agent != "crossq":
            return None
        return CrossQSettings(tuple(self.crossq_critic_layers),
                              float(self.crossq_batch_norm_momentum),
                              int(self.crossq_renorm_warmup_steps),
                              int(self.crossq_policy_delay), float(self.crossq_adam_beta1))

    # --- gSDE, state-dependent exploration (README, "State-dependent exploration") ---
    # True: the actor explores with noise f(s) theta, a linear function of its last
    # hidden features whose matrix theta is drawn at each episode start and every
    # sde_sample_freq steps (<= 0: episode starts only), instead of white noise on
    # every step (Raffin et al., 2021). Needs the default feed-forward actor on vector
    # observations (the workers draw the noise in numpy).
    use_sde: bool = False
    sde_sample_freq: int = -1
    sde_log_std_init: float = SdeSettings.log_std_init  # log of the noise's initial scale
    sde_clip_mean: float = SdeSettings.clip_mean  # |pre-tanh mean| bound; 0: none

    def sde_settings(self) -> SdeSettings | None:
        """gSDE's head settings; None when `use_sde` is off."""
        if self.use_sde is not True:
            return None
        return SdeSettings(float(self.sde_log_std_init), float(self.sde_clip_mean))


@dataclass(frozen=True)
class NetworkSettings:
    """The actor's and critics' layers. With `lstm_size` the networks are recurrent:
    `actor_layers` / `critic_layers` -> LSTM -> `output_layers`. An observation with
    image leaves goes through `conv` first (`encoders.ImageEncoder`). With `sde` the
    actor's head is gSDE's (`agents.gsde`)."""

    actor_layers: tuple[int, ...]
    critic_layers: tuple[int, ...]
    observation_normalization: dict | None = None
    lstm_size: tuple[int, ...] | None = None
    output_layers: tuple[int, ...] = ()
    conv: ConvSettings = field(default_factory=ConvSettings)
    sde: SdeSettings | None = None
    crossq: CrossQSettings | None = None  # CrossQ's batch-renormalized networks

    @property
    def recurrent(self) -> bool:
        """Whether the networks keep a state."""
        return self.lstm_size is not None


@dataclass(frozen=True)
class PriorSettings:
    """A prior policy the agent is regularized toward (`prior`): its SavedModel, the
    divergence it may take (None: 0.5 nats per action dimension) and the scale of a
    greedy prior's normal."""

    directory: str
    target_divergence: float | None
    std: float


@dataclass(frozen=True)
class AgentSettings:
    """SAC's hyperparameters (their published defaults: `TrainParamsBase`) and the parts
    the agent is built from."""

    networks: NetworkSettings
    discount: float
    actor_learning_rate: float
    critic_learning_rate: float
    alpha_learning_rate: float
    target_update_tau: float
    target_update_period: int
    initial_log_alpha: float
    target_entropy: float | None  # None: TF-Agents' default, -dim(actions) / 2
    reward_scale_factor: float
    prior: PriorSettings | None = None
    # DrQ's random shift of image observations by up to this many pixels (0: none).
    image_shift: int = 0
    crossq: CrossQSettings | None = None  # None: SAC
