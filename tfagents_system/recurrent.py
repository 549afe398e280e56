"""The names params files written before the agents package import for recurrent
agents of their own (`from tfagents_system.recurrent import ...`, as the README once
showed). One SAC serves every case now (`agents.sac.SacAgent`, which takes the
windows' mask); new code imports from `agents`."""

from tfagents_system.agents import networks, sac
from tfagents_system.agents.networks import RecurrentCriticNetwork

SequenceSacAgent = sac.SacAgent

__all__ = ["RecurrentCriticNetwork", "SequenceSacAgent", "actor_network", "critic_network",
           "make_agent"]


def actor_network(params, observation_spec, action_spec):
    """The params' LSTM actor (`agents.networks.actor_network`)."""
    return networks.actor_network(params.agent_settings().networks, observation_spec,
                                  action_spec)


def critic_network(params, observation_spec, action_spec):
    """The params' LSTM critic (`agents.networks.critic_network`)."""
    return networks.critic_network(params.agent_settings().networks, observation_spec,
                                   action_spec)


def make_agent(params, time_step_spec, action_spec, actor_net, critic_net, train_step):
    """The params' agent (`agents.sac.make_agent`)."""
    return sac.make_agent(params.agent_settings(), time_step_spec, action_spec, actor_net,
                          critic_net, train_step)
