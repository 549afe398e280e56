"""Demonstrations files: the Recorder's round trip (npz and HDF5, flat and dict
observations), one clear line for every kind of bad file, the transitions a file gives
(never across episodes; truncation keeps discount 1; a file may end mid-episode) and
the replay rows they pack into."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("h5py")

from tfagents_system import demonstrations as D
from tfagents_system.replay import packing
from tfagents_system.replay.format import Window
from tfagents_system.testing_envs import point_mass_reach

EPISODE_STEPS = 4


def make_env(flat: bool = False):
    return point_mass_reach(seed=3, flat=flat, episode_steps=EPISODE_STEPS,
                            counter_dtype=None if flat else "int32")


def specs(flat: bool = False):
    env = make_env(flat)
    return env.time_step_spec(), env.action_spec()


def record(path, flat: bool = False, episodes: int = 2) -> D.Recorder:
    """Play `episodes` episodes of fixed actions through a Recorder and save them."""
    recorder = D.Recorder(path)
    env = recorder.wrap(make_env(flat))
    for episode in range(episodes):
        time_step = env.reset()
        while not time_step.is_last():
            time_step = env.step(np.array([0.5, -0.25 * episode], np.float32))
    recorder.save()
    return recorder


def hand_arrays(lengths=(3, 2), discounts=None, end_with_last=True) -> dict:
    """Dict-observation episodes of the given numbers of steps (transitions); the
    observation's position is (episode, t). `discounts`: each episode's final discount
    (default 0, a termination)."""
    discounts = discounts or [0.0] * len(lengths)
    rows = []
    for e, n in enumerate(lengths):
        for t in range(n + 1):
            kind = D.FIRST if t == 0 else D.LAST if t == n else D.MID
            discount = discounts[e] if kind == D.LAST else 1.0
            rows.append((kind, 0.0 if t == 0 else 10.0 * e + t, discount, (e, t)))
    if not end_with_last:
        rows = rows[:-1]
    step_type, reward, discount, position = zip(*rows)
    count = len(rows)
    return {
        "step_type": np.array(step_type, np.int32),
        "reward": np.array(reward, np.float32),
        "discount": np.array(discount, np.float32),
        "action": np.linspace(-1, 1, 2 * count, dtype=np.float32).reshape(count, 2),
        "observation/position": np.array(position, np.float32),
        "observation/velocity": np.zeros((count, 2), np.float32),
        "observation/goal": np.ones((count, 2), np.float64),  # float64 is cast
        "observation/steps_left": np.arange(count, dtype=np.int64),  # in int32's range
        "observation/near_goal": np.arange(count) % 2 == 0,
    }


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".hdf5"])
@pytest.mark.parametrize("flat", [False, True])
def test_recorded_episodes_read_back_exactly(tmp_path, suffix, flat):
    path = tmp_path / f"demo{suffix}"
    recorder = record(path, flat)
    arrays = D.read_file(path)
    expected = recorder.arrays()
    assert sorted(arrays) == sorted(expected)
    for name, value in expected.items():
        assert arrays[name].dtype == value.dtype and np.array_equal(arrays[name], value), name
    leaves = ["observation"] if flat else [
        "observation/goal", "observation/near_goal", "observation/position",
        "observation/steps_left", "observation/velocity"]
    assert sorted(n for n in arrays if n.startswith("observation")) == leaves
    assert list(arrays["step_type"]) == 2 * [0, 1, 1, 1, 2]
    assert recorder.num_episodes == 2 and recorder.num_steps == 10
    assert not arrays["action"][4].any()  # a LAST step takes no action: zeros
    D.validate(arrays, *specs(flat), path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left


def test_transitions_pair_steps_of_one_episode_only():
    arrays = hand_arrays(lengths=(3, 2), discounts=[1.0, 0.0])  # a truncation, a termination
    time_step_spec, action_spec = specs()
    D.validate(arrays, time_step_spec, action_spec, "hand.npz")
    pairs = list(D.transitions(arrays, time_step_spec, action_spec))
    starts = [(int(t.observation["position"][0]), int(t.observation["position"][1]))
              for t, _, _ in pairs]
    assert starts == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]  # no LAST -> FIRST pair
    assert [int(n.step_type) for _, _, n in pairs] == [1, 1, 2, 1, 2]
    assert [float(n.discount) for _, _, n in pairs] == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert [float(n.reward) for _, _, n in pairs] == [1.0, 2.0, 3.0, 11.0, 12.0]
    time_step, action, next_time_step = pairs[3]
    assert np.array_equal(action, arrays["action"][4])
    assert np.array_equal(next_time_step.observation["position"], [1, 1])
    observation = time_step.observation
    assert observation["steps_left"].dtype == np.int32 and observation["steps_left"] == 4
    assert observation["near_goal"].dtype == np.bool_ and observation["goal"].dtype == np.float32
    assert time_step.step_type.dtype == np.int32 and next_time_step.reward.dtype == np.float32


def test_a_file_ending_mid_episode_gives_the_transitions_it_has(tmp_path):
    arrays = hand_arrays(lengths=(2, 3), end_with_last=False)  # the second episode: 3 of 4 steps
    time_step_spec, action_spec = specs()
    D.validate(arrays, time_step_spec, action_spec, "partial.npz")
    pairs = list(D.transitions(arrays, time_step_spec, action_spec))
    assert len(pairs) == 2 + 2
    assert int(pairs[-1][2].step_type) == D.MID


def test_pack_rows_are_the_packers_rows_of_every_files_transitions(tmp_path):
    time_step_spec, action_spec = specs()
    first, second = hand_arrays((3, 2), end_with_last=False), hand_arrays((1, 4), [1.0, 0.0])
    np.savez(tmp_path / "a.npz", **first)
    import h5py

    with h5py.File(tmp_path / "b.h5", "w") as fh:
        for name, value in second.items():
            fh.create_dataset(name, data=value)
    packer = packing.TransitionPacker(time_step_spec.observation, action_spec)
    rows = D.pack_rows([tmp_path / "a.npz", tmp_path / "b.h5"], time_step_spec, action_spec,
                       packer)
    expected = [packer.pack(*pair) for arrays in (first, second)
                for pair in D.transitions(arrays, time_step_spec, action_spec)]
    assert rows.dtype == np.float32 and rows.shape == (3 + 1 + 1 + 4, packer.size)
    assert np.array_equal(rows, np.stack(expected))


def test_a_files_unfinished_episode_leaves_no_window_for_the_next_file(tmp_path):
    """Replay windows (WindowBuilder) of two files: the first ends mid-episode with
    steps not yet in a window; they are not written, and no window mixes the files."""
    time_step_spec, action_spec = specs()
    np.savez(tmp_path / "a.npz", **hand_arrays((5,), end_with_last=False))  # 4 transitions
    np.savez(tmp_path / "b.npz", **hand_arrays((2,)))
    packer = packing.make_packer(time_step_spec.observation, action_spec, Window(3, 0))
    rows = D.pack_rows([tmp_path / "a.npz", tmp_path / "b.npz"], time_step_spec, action_spec,
                       packer)
    assert len(rows) == 2  # a: one full window of 3 (the 4th step waits), b: its 2 steps
    mask = rows[1][-3:]
    assert list(mask) == [0.0, 1.0, 1.0]


def error_line(arrays, tmp_path, flat: bool = False) -> str:
    """The DemonstrationError of reading and validating these arrays as a file."""
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(D.DemonstrationError) as raised:
        D.validate(D.read_file(path), *specs(flat), path)
    message = str(raised.value)
    assert "\n" not in message and str(path) in message
    return message


def mutate(**changes):
    """hand_arrays() with fields replaced (None: removed) or changed in place."""
    def build():
        arrays = hand_arrays()
        for name, change in changes.items():
            if change is None:
                del arrays[name]
            elif callable(change):
                change(arrays[name])
            else:
                arrays[name] = change
        return arrays
    return build


def set_at(index, value):
    def change(array):
        array[index] = value
    return change


# (arrays, field named, text of the problem); hand_arrays() has steps 0-3 (episode 0)
# and 4-6 (episode 1).
BAD = {
    "missing leaf": (mutate(**{"observation/goal": None}), "observation/goal", "missing"),
    "missing reward": (mutate(reward=None), "reward", "missing"),
    "short field": (mutate(discount=np.ones(5, np.float32)), "discount", "has 5 time steps"),
    "leaf shape": (mutate(**{"observation/velocity": np.zeros((7, 3), np.float32)}),
                   "observation/velocity", "(3,) per step"),
    "float leaf not finite": (mutate(**{"observation/position": set_at((3, 1), np.nan)}),
                              "observation/position", "step 3"),
    "float leaf overflows float32": (
        mutate(**{"observation/goal": set_at((2, 0), 1e300)}), "observation/goal", "step 2"),
    "float leaf of bools": (mutate(**{"observation/velocity": np.zeros((7, 2), bool)}),
                            "observation/velocity", "dtype bool"),
    "integer leaf of floats": (mutate(**{"observation/steps_left": np.zeros(7, np.float32)}),
                               "observation/steps_left", "dtype float32"),
    "integer leaf out of range": (mutate(**{"observation/steps_left": set_at(5, 2**40)}),
                                  "observation/steps_left", "step 5"),
    "bool leaf of 2": (mutate(**{"observation/near_goal": np.array([0, 1, 2, 0, 1, 0, 1])}),
                       "observation/near_goal", "step 2"),
    "action shape": (mutate(action=np.zeros((7, 3), np.float32)), "action", "(3,) per step"),
    "action out of bounds": (mutate(action=set_at((5, 1), 1.01)), "action", "step 5"),
    "action not finite": (mutate(action=set_at((3, 0), np.inf)), "action", "step 3"),
    "reward not finite": (mutate(reward=set_at(6, np.nan)), "reward", "step 6"),
    "reward of strings": (mutate(reward=np.array(["1"] * 7)), "reward", "dtype <U1"),
    "discount above 1": (mutate(discount=set_at(2, 1.5)), "discount", "step 2"),
    "discount below 0": (mutate(discount=set_at(6, -0.1)), "discount", "step 6"),
    "unknown step type": (mutate(step_type=set_at(2, 3)), "step_type", "step 2 is 3"),
    "float step types": (mutate(step_type=np.zeros(7, np.float32)), "step_type", "float32"),
    "starts mid-episode": (mutate(step_type=set_at(0, 1)), "step_type", "step 0 (MID)"),
    "FIRST inside an episode": (mutate(step_type=set_at(2, 0)), "step_type",
                                "step 2 (FIRST) is a FIRST inside an episode"),
    "MID after LAST": (mutate(step_type=set_at(4, 1)), "step_type",
                       "step 4 (MID) follows a LAST"),
    "LAST after LAST": (mutate(step_type=set_at(4, 2)), "step_type",
                        "step 4 (LAST) follows a LAST"),
    "no transition": (lambda: {k: v[:1] for k, v in hand_arrays().items()}, "step_type",
                      "no transition"),
    "no steps": (lambda: {k: v[:0] for k, v in hand_arrays().items()}, "step_type",
                 "no time steps"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_every_bad_file_gives_one_line_naming_the_field_and_index(tmp_path, case):
    build, field, problem = BAD[case]
    message = error_line(build(), tmp_path)
    assert f": {field}: " in message and problem in message, message


def test_a_last_steps_action_is_not_bound_checked(tmp_path):
    arrays = hand_arrays()
    arrays["action"][3] = 7.0  # episode 0's LAST
    D.validate(arrays, *specs(), "ok.npz")


def test_a_dict_file_for_a_flat_env_names_the_observation(tmp_path):
    assert ": observation: missing" in error_line(hand_arrays(), tmp_path, flat=True)


def test_unreadable_files_give_one_line(tmp_path):
    cases = {"absent.npz": "no such file", "demo.csv": "name it .npz, .h5 or .hdf5",
             "torn.npz": "unreadable npz file", "torn.h5": "unreadable hdf5 file",
             "nodiscount.npz": "discount: missing", "noobs.npz": "observation: missing"}
    (tmp_path / "demo.csv").write_text("1,2\n")
    (tmp_path / "torn.npz").write_bytes(b"PK\x03\x04 not a zip")
    (tmp_path / "torn.h5").write_bytes(b"\x89HDF\r\n\x1a\n torn")
    arrays = hand_arrays()
    np.savez(tmp_path / "nodiscount.npz", **{k: v for k, v in arrays.items() if k != "discount"})
    np.savez(tmp_path / "noobs.npz", **{k: v for k, v in arrays.items()
                                        if not k.startswith("observation")})
    for name, problem in cases.items():
        with pytest.raises(D.DemonstrationError) as raised:
            D.read_file(tmp_path / name)
        message = str(raised.value)
        assert "\n" not in message and name in message and problem in message, message


def test_the_recorder_never_overwrites_a_file(tmp_path):
    path = tmp_path / "demo.npz"
    path.write_bytes(b"keep me")
    with pytest.raises(D.DemonstrationError, match="exists; choose another name or delete it"):
        D.Recorder(path)
    with pytest.raises(D.DemonstrationError, match="name it .npz, .h5 or .hdf5"):
        D.Recorder(tmp_path / "demo.txt")
    other = tmp_path / "other.h5"
    recorder = D.Recorder(other)
    env = recorder.wrap(make_env())
    env.reset()
    env.step(np.zeros(2, np.float32))
    other.write_bytes(b"appeared meanwhile")
    with pytest.raises(D.DemonstrationError, match="exists"):
        recorder.save()
    assert other.read_bytes() == b"appeared meanwhile" and path.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.npz", "other.h5"]
