"""The curriculum schedule: a pure function of the iteration, and its validation."""

import pytest

from tfagents_system.curriculum import CurriculumError, parse_curriculum


def schedule(**params):
    return parse_curriculum({"curriculum": params})


def test_no_curriculum_is_empty():
    assert not parse_curriculum({"env_id": "x"})
    assert parse_curriculum({}).values_at(100) == {}


def test_float_values_are_linspace_of_range():
    c = schedule(friction={"iters": [0, 10, 20], "range": [0.5, 1.0]})
    assert c.schedules[0].values == (0.5, 0.75, 1.0)
    assert c.values_at(0) == {"friction": 0.5}
    assert c.values_at(9) == {"friction": 0.5}
    assert c.values_at(10) == {"friction": 0.75}
    assert c.values_at(19) == {"friction": 0.75}
    assert c.values_at(20) == {"friction": 1.0}
    assert c.values_at(10_000) == {"friction": 1.0}


def test_int_range_gives_ints():
    c = schedule(length={"iters": [0, 1, 2, 3], "range": [100, 200]})
    values = c.schedules[0].values
    assert values == (100, 133, 167, 200)
    assert all(type(v) is int for v in values)
    mixed = schedule(length={"iters": [0, 1], "range": [100, 200.0]})
    assert all(type(v) is float for v in mixed.schedules[0].values)


def test_before_first_threshold_the_parameter_is_absent():
    c = schedule(a={"iters": [5, 10], "range": [1, 2]}, b={"iters": [0], "range": [3, 3]})
    assert c.values_at(0) == {"b": 3}
    assert c.values_at(4) == {"b": 3}
    assert c.values_at(5) == {"a": 1, "b": 3}


def test_any_iteration_matches_latest_passed_threshold():
    iters = [3, 7, 20, 21]
    c = schedule(p={"iters": iters, "range": [0.0, 3.0]})
    for k in range(30):
        passed = [i for i, t in enumerate(iters) if t <= k]
        expected = {"p": float(passed[-1])} if passed else {}
        assert c.values_at(k) == expected, k


def test_apply_to_roles():
    c = parse_curriculum({"curriculum": {
        "a": {"iters": [0], "range": [1, 1]},
        "b": {"iters": [0], "range": [2, 2], "apply_to": ["collect", "eval"]},
    }})
    assert c.values_at(0, "collect") == {"a": 1, "b": 2}
    assert c.values_at(0, "eval") == {"b": 2}
    assert c.applies_to("eval")
    everywhere = parse_curriculum({"curriculum": {
        "apply_to": ["collect", "eval"], "a": {"iters": [0], "range": [1, 1]}}})
    assert everywhere.values_at(0, "eval") == {"a": 1}
    assert not schedule(a={"iters": [0], "range": [1, 1]}).applies_to("eval")


@pytest.mark.parametrize("spec,message", [
    ({"iters": [0, 10], "range": [0, 1], "step": 2}, "unknown key(s) step"),
    ({"iters": [10, 5], "range": [0, 1]}, "strictly increasing"),
    ({"iters": [0, 0], "range": [0, 1]}, "strictly increasing"),
    ({"iters": [-1, 5], "range": [0, 1]}, "non-negative integers"),
    ({"iters": [0, 1.5], "range": [0, 1]}, "non-negative integers"),
    ({"iters": [], "range": [0, 1]}, "non-empty list"),
    ({"range": [0, 1]}, "non-empty list"),
    ({"iters": [0], "range": [0, 1, 2]}, "two numbers"),
    ({"iters": [0], "range": ["a", 1]}, "two numbers"),
    ({"iters": [0], "range": 1}, "two numbers"),
    ({"iters": [0], "range": [0, 1], "apply_to": ["eval"]}, "apply_to"),
    ({"iters": [0], "range": [0, 1], "apply_to": ["collect", "test"]}, "apply_to"),
    ([0, 1], "must be an object"),
])
def test_validation_names_parameter_and_fix(spec, message):
    with pytest.raises(CurriculumError) as err:
        parse_curriculum({"curriculum": {"mass": spec}}, "config file c.json")
    text = str(err.value)
    assert text.startswith('config file c.json: curriculum parameter "mass"'), text
    assert message in text


def test_curriculum_must_be_an_object():
    with pytest.raises(CurriculumError, match="must be an object"):
        parse_curriculum({"curriculum": [1, 2]})
