"""The threading policy (aekit.threads): how many threads, how they wait, and that neither changes results."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import aekit
from aekit import threads
from aekit._utils import InputError

from .conftest import ROOT


@pytest.mark.parametrize(
    ("environ", "torch_loaded", "busy", "expected"),
    [
        ({}, False, True, {"GOMP_SPINCOUNT": str(threads.SPINCOUNT)}),
        ({}, False, False, {}),  # an idle machine keeps libgomp's default: threads stay hot between regions
        ({}, True, True, {}),  # too late: libgomp read its environment when torch loaded
        ({"OMP_WAIT_POLICY": "PASSIVE"}, False, True, {}),  # the user's choice stays
        ({"GOMP_SPINCOUNT": "5"}, False, True, {}),
        ({"AEKIT_OMP_SPIN": "0"}, False, True, {}),
        ({"AEKIT_OMP_SPIN": "1"}, False, False, {"GOMP_SPINCOUNT": str(threads.SPINCOUNT)}),
        ({"AEKIT_OMP_SPIN": "auto"}, False, False, {}),
    ],
)
def test_openmp_env_bounds_the_spin_when_busy_unless_set_or_too_late(environ, torch_loaded, busy, expected):
    assert threads.openmp_env(environ, torch_loaded, lambda: busy) == expected


def test_others_runnable_counts_the_tasks_runnable_now_besides_this_one(tmp_path):
    f = tmp_path / "loadavg"
    f.write_text("0.20 0.30 0.40 3/345 999\n")  # two others runnable now, a low average (they just started)
    assert threads.others_runnable(1.5, f, window_s=0.01, own=lambda: 1) == 2.0
    f.write_text("1.50 0.30 0.40 1/345 999\n")  # only this process: the average is the minute that has passed
    assert threads.others_runnable(1.5, f, own=lambda: 1) == 0.0
    assert threads.others_runnable(1.5, tmp_path / "missing") is None


def test_others_runnable_leaves_out_this_process_s_own_threads(tmp_path):
    """A contention benchmark's worker saw numpy's BLAS thread, busy right after ``import numpy``, as another task."""
    f = tmp_path / "loadavg"
    f.write_text("0.20 0.30 0.40 2/345 999\n")  # this process's two running threads, nothing else
    assert threads.others_runnable(0.5, f, own=lambda: 2) == 0.0
    assert threads.others_runnable(0.5, f, own=lambda: 1, window_s=0.01) == 1.0
    tasks = tmp_path / "task"
    for tid, state in (("1", "R"), ("2", "S"), ("3", "R")):
        (tasks / tid).mkdir(parents=True)
        (tasks / tid / "stat").write_text(f"{tid} (py (thread) x) {state} 1 2 3\n")  # a name may hold ")"
    assert threads.own_runnable(tasks) == 2
    assert threads.own_runnable(tmp_path / "missing") == 1


def test_others_runnable_takes_the_fewest_over_its_window(tmp_path, monkeypatch):
    """A task that passed during the first read does not make the machine busy; one read suffices when idle."""
    reads = iter(["0 0 0 4/9 1", "0 0 0 1/9 1", "0 0 0 4/9 1"])
    seen = []

    class Fake:
        def read_text(self):
            seen.append(1)
            return next(reads)

    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    assert threads.others_runnable(1.5, Fake(), window_s=10, own=lambda: 1) == 0.0
    assert len(seen) == 2  # stopped at the first idle read


@pytest.mark.parametrize(
    ("load", "omp", "busy"), [(0.0, None, False), (0.4, None, False), (1.0, None, True), (1.0, "1", False)]
)
def test_machine_busy_when_others_reach_the_cores_its_threads_use(monkeypatch, load, omp, busy):
    monkeypatch.setattr(threads, "others_runnable", lambda at_least: load)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    environ = {} if omp is None else {"OMP_NUM_THREADS": omp}  # one thread on two cores leaves one spare
    assert threads.machine_busy(environ) is busy


def _cgroup(tmp_path, files):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return threads.cgroup_cpus(tmp_path, tmp_path / "self_cgroup")


def test_cgroup_quota_v2_own_group_first_then_root_then_v1(tmp_path):
    assert _cgroup(tmp_path / "a", {"cpu.max": "150000 100000\n"}) == 1.5
    assert _cgroup(tmp_path / "b", {"cpu.max": "max 100000\n"}) is None
    own = {"self_cgroup": "0::/job/7\n", "job/7/cpu.max": "200000 100000\n", "cpu.max": "max 100000\n"}
    assert _cgroup(tmp_path / "c", own) == 2.0
    v1 = {"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}
    assert _cgroup(tmp_path / "d", v1) == 3.0
    assert _cgroup(tmp_path / "e", {**v1, "cpu/cpu.cfs_quota_us": "-1\n"}) is None
    assert _cgroup(tmp_path / "f", {}) is None


def test_available_cores_is_capped_by_the_quota(monkeypatch):
    monkeypatch.setattr(threads, "cgroup_cpus", lambda: 1.5)
    assert threads.available_cores() == 1
    monkeypatch.setattr(threads, "cgroup_cpus", lambda: None)
    assert threads.available_cores() == len(os.sched_getaffinity(0))


def test_choose_threads():
    assert threads.choose_threads(64, 2) == 2  # a container's quota on a big host
    assert threads.choose_threads(1, 2) == 1  # joblib's / the user's limit is kept
    assert threads.choose_threads(64, 2, "torch") is None
    assert threads.choose_threads(1, 2, " 3 ") == 3
    for bad in ("many", "0", "\u00b2", "100000000000000000000"):  # "²" is a digit to str.isdigit; torch overflows
        with pytest.raises(InputError, match=r"AEKIT_THREADS=.* must be 'auto', 'torch' or an integer in \[1, 4096\]"):
            threads.choose_threads(2, 2, bad)


def test_using_threads_restores_the_count():
    before = torch.get_num_threads()
    with threads.using_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with threads.using_threads(None):
        assert torch.get_num_threads() == before


def _weights(est):
    return torch.cat([p.detach().flatten() for p in est.net_.parameters()]).numpy()


def test_policy_fits_with_its_count_and_changes_no_numbers(monkeypatch):
    """A fit under the policy equals a plain fit at the thread count it chose, and leaves torch's count as it was."""
    X = np.random.default_rng(0).random((300, 20), dtype=np.float32)
    kw = {"hidden_layer_sizes": (16,), "n_components": 2, "epochs": 2, "batch_size": 64, "random_state": 0}
    before = torch.get_num_threads()
    seen = []
    monkeypatch.setattr(threads, "available_cores", lambda: 1)
    policy = aekit.Autoencoder(**kw, callbacks=[lambda e, logs: seen.append(torch.get_num_threads())]).fit(X)
    assert seen == [1, 1] and torch.get_num_threads() == before
    monkeypatch.setenv("AEKIT_THREADS", "torch")
    with threads.using_threads(1):
        plain = aekit.Autoencoder(**kw).fit(X)
    np.testing.assert_array_equal(_weights(policy), _weights(plain))
    np.testing.assert_array_equal(policy.transform(X), plain.transform(X))


_CHILD = """
import json, os, numpy as np, aekit, torch
X = np.random.default_rng(0).random((400, 30), dtype=np.float32)
est = aekit.Autoencoder(hidden_layer_sizes=(32, 16), epochs=2, batch_size=32, random_state=0, device="cpu").fit(X)
w = torch.cat([p.detach().flatten() for p in est.net_.parameters()]).numpy()
print(json.dumps({"spin": os.environ.get("GOMP_SPINCOUNT"), "threads": torch.get_num_threads(), "w": w.tolist()}))
"""


def test_bounded_spin_changes_no_numbers():
    """Fresh processes (libgomp reads its environment once): bounded spin vs libgomp's default, same weights."""
    runs = []
    for extra in ({"AEKIT_OMP_SPIN": "1"}, {"AEKIT_OMP_SPIN": "0"}):
        env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "AEKIT_OMP_SPIN")}
        env = {**env, **extra, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "2"}
        out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert runs[0]["spin"] == str(threads.SPINCOUNT) and runs[1]["spin"] is None
    assert runs[0]["threads"] == runs[1]["threads"] == min(2, threads.available_cores())
    assert runs[0]["w"] == runs[1]["w"]


def test_numerics_names_cpu_kernels_and_this_runs_threads(monkeypatch):
    import torch

    from aekit.threads import cpu_model, numerics

    monkeypatch.setenv("AEKIT_THREADS", "1")
    text = numerics()
    assert text.startswith(cpu_model() + ", ") and cpu_model()
    assert f"{torch.backends.cpu.get_cpu_capability()} kernels" in text and text.endswith(", 1 thread")
