"""Unit tests for tfagents_system.cpu_layout (pure, no processes started)."""

import pytest

from tfagents_system.cpu_layout import LayoutError, format_cpus, plan_layout


def _programs(layout):
    """Every program's CPU tuple: replay server, learner, then each worker."""
    return [layout.replay_server, layout.learner, *layout.workers]


def _all_cpus(layout):
    return [cpu for cpus in _programs(layout) for cpu in cpus]


def _assert_sane(layout, available):
    """Every program has >= 1 CPU, all from `available`; no overlap unless shared."""
    assert layout.available == tuple(available)
    for cpus in _programs(layout):
        assert len(cpus) >= 1
        assert set(cpus) <= set(available)
    if not layout.shared:
        used = _all_cpus(layout)
        assert len(used) == len(set(used)), f"CPU used twice: {layout.describe()}"


# --- format_cpus ---

@pytest.mark.parametrize(
    ("cpus", "expected"),
    [
        ([0, 1, 2, 5], "0-2,5"),
        ([5, 2, 0, 1], "0-2,5"),  # order does not matter
        ([3], "3"),
        ([], ""),
        ([0, 2, 4], "0,2,4"),
        ([2, 3, 7, 8], "2-3,7-8"),
        (range(64), "0-63"),
    ],
)
def test_format_cpus(cpus, expected):
    """Ranges are collapsed in taskset -c syntax."""
    assert format_cpus(cpus) == expected


# --- auto layouts ---

def test_auto_one_cpu_everyone_shares_it():
    """On one CPU every program runs on that CPU, and the layout says it is shared."""
    layout = plan_layout([0])
    _assert_sane(layout, [0])
    assert layout.shared
    assert len(layout.workers) == 1
    assert set(_all_cpus(layout)) == {0}


def test_auto_two_cpus_learner_keeps_its_own():
    """On two CPUs the learner has one to itself; replay server and worker share the other,
    which the learner (on auto) may use too."""
    layout = plan_layout([0, 1])
    _assert_sane(layout, [0, 1])
    assert layout.shared
    assert len(layout.workers) == 1
    other = set(layout.replay_server) | set(layout.workers[0])
    assert len(other) == 1
    assert layout.replay_server == layout.workers[0]
    assert set(layout.learner) == {0, 1}  # its own CPU and the shared one


def test_two_cpus_explicit_learner_cpus_are_its_own():
    """SAC_TRAIN_CPUS=1 on two CPUs: the learner gets exactly one, nobody else's."""
    layout = plan_layout([0, 1], train_cpus=1)
    assert layout.shared
    assert len(layout.learner) == 1
    assert not set(layout.learner) & (set(layout.replay_server) | set(layout.workers[0]))


@pytest.mark.parametrize(("cpus", "pools"), [(1, (1, 1)), (2, (1, 2)), (4, (2, 2)),
                                            (8, (4, 2))])
def test_thread_pools_two_streams_of_half_the_cpus(cpus, pools):
    """Two inter-op threads (SAC's critics and actor at once), each op on half the CPUs."""
    from tfagents_system.process import thread_pools

    assert thread_pools(cpus) == pools


def test_auto_four_cpus_one_each():
    """Four CPUs: replay server, learner and two workers, one CPU each, none shared."""
    layout = plan_layout([0, 1, 2, 3])
    _assert_sane(layout, [0, 1, 2, 3])
    assert not layout.shared
    assert len(layout.workers) == 2
    assert sorted(_all_cpus(layout)) == [0, 1, 2, 3]


def test_auto_sixteen_cpus_uses_all_without_sharing():
    """Sixteen CPUs: learner gets several CPUs, workers fill the rest, nothing shared."""
    available = list(range(16))
    layout = plan_layout(available)
    _assert_sane(layout, available)
    assert not layout.shared
    assert len(layout.learner) > 1
    assert len(layout.workers) >= 8
    assert sorted(_all_cpus(layout)) == available


def test_auto_sixty_four_cpus_scales_out():
    """64 CPUs: many workers, learner capped, every CPU used exactly once."""
    available = list(range(64))
    layout = plan_layout(available)
    _assert_sane(layout, available)
    assert not layout.shared
    assert len(layout.workers) >= 40
    assert 1 < len(layout.learner) <= 8
    assert sorted(_all_cpus(layout)) == available


# --- explicit requests ---

def test_explicit_request_that_fits_exactly():
    """All four values given and summing to the CPUs: honoured exactly, not shared."""
    available = list(range(16))
    layout = plan_layout(available, num_workers=5, reverb_cpus=2, train_cpus=4, worker_cpus=2)
    _assert_sane(layout, available)
    assert not layout.shared
    assert len(layout.replay_server) == 2
    assert len(layout.learner) == 4
    assert len(layout.workers) == 5
    assert all(len(w) == 2 for w in layout.workers)
    assert sorted(_all_cpus(layout)) == available


def test_explicit_worker_count_with_auto_rest():
    """An explicit worker count is kept; auto values fill around it."""
    available = list(range(16))
    layout = plan_layout(available, num_workers=3)
    _assert_sane(layout, available)
    assert not layout.shared
    assert len(layout.workers) == 3


def test_explicit_worker_cpus_sets_slice_size():
    """SAC_COLLECT_WORKER_CPUS sets each worker's slice; the count follows from what is left."""
    available = list(range(16))
    layout = plan_layout(available, worker_cpus=3)
    _assert_sane(layout, available)
    assert not layout.shared
    assert all(len(w) == 3 for w in layout.workers)
    assert len(layout.workers) >= 2


@pytest.mark.parametrize(
    ("kwargs", "requested", "shown"),
    [
        ({"reverb_cpus": 2, "train_cpus": 3}, 5, ["SAC_REVERB_CPUS=2", "SAC_TRAIN_CPUS=3"]),
        ({"num_workers": 4, "worker_cpus": 2}, 8,
         ["SAC_NUM_COLLECT_WORKERS=4", "SAC_COLLECT_WORKER_CPUS=2"]),
        ({"num_workers": 5}, 5, ["SAC_NUM_COLLECT_WORKERS=5"]),
        ({"train_cpus": 1, "worker_cpus": 4}, 5,
         ["SAC_TRAIN_CPUS=1", "SAC_COLLECT_WORKER_CPUS=4"]),
    ],
)
def test_explicit_request_too_big_raises(kwargs, requested, shown):
    """Requests over the available CPUs raise LayoutError naming values, total and available."""
    with pytest.raises(LayoutError) as info:
        plan_layout([0, 1, 2, 3], **kwargs)
    message = str(info.value)
    for text in shown:
        assert text in message
    assert f"need {requested} CPUs" in message
    assert "may use 4" in message
    assert "0-3" in message


def test_layout_error_is_value_error():
    """Callers catching ValueError also catch layout problems."""
    assert issubclass(LayoutError, ValueError)


# --- non-contiguous CPU sets (cgroup / SLURM / taskset) ---

def test_noncontiguous_cpus_are_respected():
    """Only the CPUs of the allocation are handed out, each once."""
    available = [2, 3, 7, 8]
    layout = plan_layout(available)
    _assert_sane(layout, available)
    assert not layout.shared
    assert sorted(_all_cpus(layout)) == available


def test_noncontiguous_cpus_shared_case():
    """With two scattered CPUs the shared layout still only uses those two."""
    available = [5, 11]
    layout = plan_layout(available)
    _assert_sane(layout, available)
    assert layout.shared
    assert set(_all_cpus(layout)) == {5, 11}
    assert set(layout.replay_server) == set(layout.workers[0]) and len(layout.replay_server) == 1
    assert set(layout.learner) == {5, 11}


def test_noncontiguous_explicit_too_big_names_the_cpus():
    """The error lists the allocation's own CPUs."""
    with pytest.raises(LayoutError, match=r"may use 4 \(CPUs 2-3,7-8\)"):
        plan_layout([2, 3, 7, 8], reverb_cpus=1, train_cpus=2, num_workers=2)


def test_describe_and_as_dict_agree_with_layout():
    """describe() names every program; as_dict() round-trips the tuples."""
    layout = plan_layout([2, 3, 7, 8])
    text = layout.describe()
    assert "replay_server" in text
    assert "learner" in text
    assert "worker_0" in text
    assert "worker_1" in text
    assert "2-3,7-8" in text
    data = layout.as_dict()
    assert data["workers"] == [list(w) for w in layout.workers]
    assert data["available"] == [2, 3, 7, 8]
    assert data["shared"] is False


@pytest.mark.parametrize("n", range(1, 70))
def test_auto_layout_invariants_for_every_size(n):
    """Any machine size: sane layout, and sharing only below three CPUs."""
    available = list(range(100, 100 + n))
    layout = plan_layout(available)
    _assert_sane(layout, available)
    assert layout.shared == (n < 3)
    if not layout.shared:
        assert sorted(_all_cpus(layout)) == available
