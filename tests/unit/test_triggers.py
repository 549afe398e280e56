"""IntervalTrigger: periodic work that carries its action."""

import pytest

from tfagents_system.core.triggers import IntervalTrigger


def test_fires_when_a_multiple_is_crossed_after_the_start():
    calls = []
    trigger = IntervalTrigger(10, calls.append, start_iteration=23)  # a resumed learner
    fired = [trigger(i, i) for i in (24, 29, 30, 31, 39, 50)]
    assert fired == [False, False, True, False, False, True] and calls == [30, 50]


def test_without_a_start_the_first_call_fires():
    calls = []
    trigger = IntervalTrigger(5, lambda: calls.append("eval"))  # a worker's first round
    assert [trigger(i) for i in (3, 4, 5, 7, 10)] == [True, False, True, False, True]


def test_an_action_that_raises_is_due_again():
    """A worker's evaluation broken by a lost replay server is retried next round."""
    attempts = []

    def evaluate():
        attempts.append(len(attempts))
        if len(attempts) == 1:
            raise ConnectionError("server gone")

    trigger = IntervalTrigger(10, evaluate, start_iteration=0)
    with pytest.raises(ConnectionError):
        trigger(10)
    assert trigger(10) and attempts == [0, 1]
    assert not trigger(11)
