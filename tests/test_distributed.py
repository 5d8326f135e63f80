"""Data-parallel training (aekit.distributed): pure helpers, and real 2-process gloo runs under torchrun."""

from __future__ import annotations

import json
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from aekit import distributed
from aekit.accel import plan
from aekit.batches import TensorBatches
from aekit.cli import main as cli_main

from .conftest import ROOT

needs_gloo = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed with gloo is not available in this build",
)
#: a rank that waits for a dead one would wait this long: the tests pass only if failures are noticed sooner
NO_TIMEOUT = {"AEKIT_DDP_TIMEOUT": "600"}
HANG_GUARD = 240  # seconds; a run that hangs fails the test instead of the suite


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env.update(NO_TIMEOUT, **extra)
    return env


def _torchrun(script: Path, *args: str, launcher: bool = False) -> subprocess.CompletedProcess[str]:
    head = (
        [sys.executable, "-c", "from aekit.distributed import launcher_main; launcher_main()"]
        if launcher
        else [sys.executable, "-m", "torch.distributed.run"]
    )
    command = [*head, "--standalone", "--nproc-per-node=2", str(script), *args]
    return subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=HANG_GUARD)


# ----------------------------------------------------------------------------- pure helpers


def test_from_env_reads_torchrun_variables() -> None:
    launch = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    assert distributed.from_env(launch) == distributed.Env(rank=1, world_size=2, local_rank=1)
    assert distributed.from_env({}) is None
    assert distributed.from_env({**launch, "RANK": "0", "WORLD_SIZE": "1"}) is None  # one process: not parallel
    assert distributed.from_env({"RANK": "1", "WORLD_SIZE": "2"}) is None  # not torchrun's: no rendezvous address


@pytest.mark.parametrize(
    "bad",
    [{"RANK": "x"}, {"RANK": "2"}, {"LOCAL_RANK": "-1"}, {"WORLD_SIZE": "0"}],
)
def test_from_env_refuses_what_no_launcher_writes(bad: dict[str, str | None]) -> None:
    launch = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    launch.update(bad)  # type: ignore[arg-type]
    env = {k: v for k, v in launch.items() if v is not None}
    with pytest.raises(distributed.InputError, match="torchrun"):
        distributed.from_env(env)


def test_one_process_helpers_are_plain() -> None:
    assert not distributed.is_distributed()
    assert (distributed.rank(), distributed.world_size(), distributed.is_writer()) == (0, 1, True)
    sums = distributed.all_sum({"loss": torch.tensor(2.5), "n": 3.0, "v": torch.tensor([1.0, 2.0])})
    assert float(sums["loss"]) == 2.5 and float(sums["n"]) == 3.0 and sums["v"].tolist() == [1.0, 2.0]
    assert sums["v"].dtype == torch.float64
    distributed.barrier()  # nothing to wait for


def test_the_launcher_names_the_rank_that_failed_first(monkeypatch, capsys) -> None:
    """A CI run: rank 1 exited with code 3, rank 0 was aborted at teardown (SIGABRT) in the same second, and the
    launcher named rank 0 (torchrun's first failure: times in whole seconds, ties to the lowest rank)."""
    import signal

    import torch.distributed.run
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    from aekit.distributed import launcher_main

    def fail(argv):
        failures = {r: ProcessFailure(r, 100 + r, code, "/nonexistent") for r, code in ((0, -signal.SIGABRT), (1, 3))}
        failures[0].timestamp = failures[1].timestamp  # the same second
        raise ChildFailedError("aekit", failures)

    monkeypatch.setattr(torch.distributed.run, "main", fail)
    with pytest.raises(SystemExit) as stop:
        launcher_main([])
    assert stop.value.code == 3 and "aekit: error: rank 1 failed (exit code 3)" in capsys.readouterr().err

    def killed(argv):  # a rank killed on its own (the out-of-memory killer) stays the one named
        failures = {r: ProcessFailure(r, 100 + r, code, "/nonexistent") for r, code in ((0, -signal.SIGKILL), (1, 2))}
        failures[1].timestamp = failures[0].timestamp + 1
        raise ChildFailedError("aekit", failures)

    monkeypatch.setattr(torch.distributed.run, "main", killed)
    with pytest.raises(SystemExit):
        launcher_main([])
    assert "aekit: error: rank 0 was killed by SIGKILL" in capsys.readouterr().err


def test_without_flag_and_launch_command() -> None:
    argv = ["-v", "train", "x.npy", "--nproc", "2", "--out", "o", "--nproc=3", "--npr", "4", "--n-components", "2"]
    assert distributed.without_flag(argv, "--nproc") == ["-v", "train", "x.npy", "--out", "o", "--n-components", "2"]
    command = distributed.launch_command(2, ["train", "x.npy"])
    assert command[0] == sys.executable
    assert command[3:] == ["--standalone", "--nproc-per-node=2", "-m", "aekit", "train", "x.npy"]


def test_plan_falls_back_to_eager_under_ddp() -> None:
    common = dict(optimizer="adam", compile="auto", precision="float32", architecture="dense")
    fast = plan(device_type="cuda", batchnorm=False, variational=False, steps=10**6, **common)
    assert fast.cuda_graph  # the single-process fast path on CUDA
    ddp = plan(device_type="cuda", batchnorm=False, variational=False, steps=10**6, data_parallel=True, **common)
    assert not ddp.cuda_graph and ddp.forward_compile is False and not ddp.working_copies


def test_generator_copy_draws_the_default_rngs_permutations() -> None:
    torch.manual_seed(3)
    generator = torch.Generator()
    generator.set_state(torch.get_rng_state())
    X = torch.arange(50, dtype=torch.float32)[:, None]
    plain = [b[0] for e in range(2) for b in TensorBatches([X], 8).epoch(e)]
    torch.manual_seed(3)
    parts = [TensorBatches([X], 8, rank=r, world_size=2, generator=generator) for r in range(2)]
    torch.manual_seed(99)  # the default RNG no longer matters
    for e in range(2):
        torch_state = generator.get_state()
        rank0 = list(parts[0].epoch(e))
        generator.set_state(torch_state)  # both ranks draw the same permutation
        rank1 = list(parts[1].epoch(e))
        for i, (a, b) in enumerate(zip(rank0, rank1, strict=True)):
            assert torch.equal(torch.cat([a[0], b[0]]), plain[e * len(rank0) + i])
    assert parts[0].global_sizes == [8] * 6 + [2]


def test_ddp_step_is_the_plain_step_in_one_process() -> None:
    """World size 1: each batch's weight ``part * 1 / global batch`` is 1, so the update is optimizer_step's."""
    from aekit.training import optimizer_step

    torch.manual_seed(0)
    nets = [torch.nn.Linear(3, 1) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [torch.optim.SGD(n.parameters(), lr=0.1) for n in nets]

    def loss_of(net: torch.nn.Module):  # noqa: ANN202
        return lambda b, training: {"loss": net(b[0]).pow(2).mean()}

    steps = [distributed.ddp_step(loss_of(nets[0]), opts[0], [4, 2]), optimizer_step(loss_of(nets[1]), opts[1])]
    for batch in (torch.ones(4, 3), torch.full((2, 3), 2.0)):
        for step in steps:
            step((batch,))
    assert torch.equal(nets[0].weight, nets[1].weight) and not torch.equal(nets[0].weight, torch.zeros(1, 3))


@pytest.mark.parametrize("value", ["0", "x", "-2", "100000"])
def test_bad_nproc_is_one_line(value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main(["train", str(tmp_path / "x.npy"), "--out", str(tmp_path / "o"), "--nproc", value])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--nproc must be a whole number" in err


# ----------------------------------------------------------------------------- two gloo processes

FIT_SCRIPT = """
import json, os, sys
import numpy as np
from aekit import Autoencoder

out = sys.argv[1]
rank = os.environ.get("RANK", "single")
X = np.load(os.path.join(out, "X.npy"))
for loading in ("memory", "stream"):
    X_in = np.load(os.path.join(out, "X.npy"), mmap_mode="r") if loading == "stream" else X
    est = Autoencoder(
        hidden_layer_sizes=(16,), n_components=3, epochs=3, batch_size=32, random_state=0, device="cpu",
        validation_fraction=0.2, data_loading=loading,
        checkpoint_path=os.path.join(out, f"checkpoint_{loading}_{rank}.safetensors"),
    )
    est.fit(X_in)
    np.save(os.path.join(out, f"codes_{loading}_{rank}.npy"), est.transform(X))
    with open(os.path.join(out, f"history_{loading}_{rank}.json"), "w") as f:
        json.dump({k: v for k, v in est.history_.items() if k != "time"}, f)
    est.save(os.path.join(out, f"model_{loading}_{rank}.safetensors"))
"""


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    # 204 rows: 41 held out, 163 train = 5 batches of 32 and a last one of 3, split 1 + 2 between the ranks
    np.save(out / "X.npy", np.random.default_rng(0).random((204, 12), dtype=np.float32))
    (out / "fit.py").write_text(FIT_SCRIPT)
    done = _torchrun(out / "fit.py", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    argv = sys.argv
    sys.argv = [str(out / "fit.py"), str(out)]
    try:  # the single process: this one (no torchrun variables here)
        runpy.run_path(str(out / "fit.py"), run_name="__main__")
    finally:
        sys.argv = argv
    return out


@needs_gloo
@pytest.mark.parametrize("loading", ["memory", "stream"])
def test_two_ranks_match_one_process(two_rank_run: Path, loading: str) -> None:
    out = two_rank_run
    single = np.load(out / f"codes_{loading}_single.npy")
    rank0, rank1 = (np.load(out / f"codes_{loading}_{r}.npy") for r in (0, 1))
    np.testing.assert_array_equal(rank0, rank1)  # one model, the same on every rank
    np.testing.assert_allclose(rank0, single, atol=1e-5)
    h_single, h0, h1 = (json.loads((out / f"history_{loading}_{r}.json").read_text()) for r in ("single", 0, 1))
    assert h0 == h1  # reduced over the ranks
    assert set(h0) == set(h_single)
    for k in h_single:
        np.testing.assert_allclose(h0[k], h_single[k], rtol=1e-5)


@needs_gloo
def test_only_rank_0_writes(two_rank_run: Path) -> None:
    out = two_rank_run
    for loading in ("memory", "stream"):
        assert (out / f"model_{loading}_0.safetensors").exists()
        assert (out / f"checkpoint_{loading}_0.safetensors").exists()
        assert not (out / f"model_{loading}_1.safetensors").exists()
        assert not (out / f"checkpoint_{loading}_1.safetensors").exists()
    from aekit import load

    est = load(out / "model_memory_0.safetensors")
    X = np.load(out / "X.npy")
    np.testing.assert_allclose(est.transform(X), np.load(out / "codes_memory_0.npy"), atol=1e-6)


CRASH_SCRIPT = """
import os, sys
import numpy as np
from aekit import Autoencoder

def crash(epoch, logs):
    if os.environ["RANK"] == "1" and epoch == 1:
        os._exit(3)  # a rank that dies without a word

X = np.random.default_rng(0).random((204, 12), dtype=np.float32)
est = Autoencoder(
    hidden_layer_sizes=(16,), n_components=3, epochs=500, batch_size=32, random_state=0, callbacks=[crash]
)
try:
    est.fit(X)
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(2)
est.save(os.path.join(sys.argv[1], "model.safetensors"))
"""


@needs_gloo
def test_a_dead_rank_stops_the_others(tmp_path: Path) -> None:
    (tmp_path / "crash.py").write_text(CRASH_SCRIPT)
    done = _torchrun(tmp_path / "crash.py", str(tmp_path), launcher=True)  # AEKIT_DDP_TIMEOUT=600: not a timeout
    assert done.returncode != 0
    # rank 0 sees its peer gone at its next step; on a busy machine the launcher's SIGTERM may reach it first,
    # and it stops as interrupted (keeping its last complete epoch, which this script then saves)
    stopped = "DistributedError: rank 0 of 2 stopped: another rank failed" in done.stderr
    interrupted = "training interrupted after" in done.stderr
    assert stopped or interrupted, done.stderr[-3000:]
    assert "Traceback" not in done.stderr  # the launcher's ChildFailedError became one line
    assert "aekit: error: rank 1 failed (exit code 3)" in done.stderr
    assert interrupted or not (tmp_path / "model.safetensors").exists()


LATE_WRITER_SCRIPT = """
import atexit, os, sys, time
import numpy as np
from aekit import Autoencoder

out = sys.argv[1]
written = os.path.join(out, "model.safetensors")
# registered before fit joins the group, so it runs after aekit's exit handler (atexit: last in, first out)
atexit.register(lambda: open(os.path.join(out, f"left_{os.environ['RANK']}"), "w").write(str(os.path.exists(written))))
est = Autoencoder(hidden_layer_sizes=(8,), n_components=2, epochs=1, batch_size=32, random_state=0)
est.fit(np.random.default_rng(0).random((64, 6), dtype=np.float32))
if os.environ["RANK"] == "0":
    time.sleep(3)  # rank 0 is slower to save than rank 1 is to reach the end of the script
    est.save(written)
"""


@needs_gloo
def test_a_script_s_ranks_leave_the_group_together(tmp_path: Path) -> None:
    # a rank that left while rank 0 still used the group was, rarely, aborted by gloo at exit after a good run
    (tmp_path / "late.py").write_text(LATE_WRITER_SCRIPT)
    done = _torchrun(tmp_path / "late.py", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "left_1").read_text() == "True"  # rank 1 left after rank 0 had written its file


# ----------------------------------------------------------------------------- the command line


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(c) for c in text]
    return out


def _rank_of(pid: int) -> str | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    found = [e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"RANK=")]
    return found[0] if found else None


def _cli_nproc_run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "aekit", "train", str(tmp_path / "X.npy"), "--out", str(tmp_path / "run")]
    command += [*CLI_FLAGS, *extra]
    return subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=HANG_GUARD)


CLI_FLAGS = ["--hidden-layer-sizes", "16", "--n-components", "3", "--random-state", "0", "--batch-size", "32"]


@needs_gloo
def test_cli_nproc_trains(tmp_path: Path) -> None:
    np.save(tmp_path / "X.npy", np.random.default_rng(0).random((204, 12), dtype=np.float32))
    first = _cli_nproc_run(tmp_path, "--nproc", "2", "--epochs", "2", "--keep-checkpoint")
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("model: ") == 1  # rank 0 alone reports
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "checkpoint.safetensors",
        "history.json",
        "model.safetensors",
        "training_curve.png",
    ]


@needs_gloo
@pytest.mark.slow
def test_cli_nproc_resumes_where_one_process_would_be(tmp_path: Path) -> None:
    np.save(tmp_path / "X.npy", np.random.default_rng(0).random((204, 12), dtype=np.float32))
    first = _cli_nproc_run(tmp_path, "--nproc", "2", "--epochs", "2", "--keep-checkpoint")
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = _cli_nproc_run(tmp_path, "--nproc=2", "--epochs", "3", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "(3 epochs, completed)" in resumed.stdout
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["loss"]) == 3
    # the same 3 epochs by one process, uninterrupted: the resumed run continued the same order
    one_process = ["train", str(tmp_path / "X.npy"), "--out", str(tmp_path / "one"), *CLI_FLAGS, "--epochs", "3"]
    assert cli_main(one_process) == 0
    one = json.loads((tmp_path / "one" / "history.json").read_text())
    np.testing.assert_allclose(history["loss"], one["loss"], rtol=1e-5)


@needs_gloo
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the ranks through /proc (Linux)")
def test_cli_killed_rank_ends_the_run(tmp_path: Path) -> None:
    np.save(tmp_path / "X.npy", np.random.default_rng(0).random((204, 12), dtype=np.float32))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "aekit", "train", str(tmp_path / "X.npy"), "--out", str(out), "--nproc", "2"]
    command += ["--hidden-layer-sizes", "16", "--n-components", "3", "--epochs", "100000", "--batch-size", "32"]
    proc = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + HANG_GUARD
        while not (out / "checkpoint.safetensors").exists():  # training has started
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        launcher = _children(proc.pid)[0]
        rank1 = next(p for p in _children(launcher) if _rank_of(p) == "1")
        os.kill(rank1, signal.SIGKILL)
        _, err = proc.communicate(timeout=HANG_GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode not in (0, None)
    assert "Traceback" not in err, err[-3000:]
    assert err.rstrip().endswith(
        "aekit: error: rank 1 was killed by SIGKILL; the system's out-of-memory killer sends SIGKILL"
    )
    assert "Sending process" not in err and "exitcode" not in err  # torchrun's own log lines would repeat it
    leftovers = [p.name for p in out.iterdir() if p.name not in ("model.safetensors", "checkpoint.safetensors")]
    assert all(not name.startswith(".") and "tmp" not in name for name in leftovers), leftovers
    if (out / "model.safetensors").exists():  # rank 0 kept the last complete epoch's model: a whole file
        from aekit import load

        load(out / "model.safetensors")
        assert "resume with the same command plus --resume" in err  # and said how to go on
