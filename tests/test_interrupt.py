"""Interruption and resume: Ctrl-C / SIGTERM / SIGKILL during training, then ``resume_from``.

* On CPU, a run interrupted at any epoch and resumed from its checkpoint ends
  bitwise identical to an uninterrupted run (weights, codes, history).
* ``aekit train`` killed with SIGKILL at random moments always leaves a
  checkpoint that loads and resumes (``KILLS_FAST`` kills by default,
  ``KILLS_SLOW`` with ``-m slow``).
* SIGTERM makes ``aekit train`` stop cleanly: exit 130, a one-line message,
  a usable model and checkpoint; ``--resume`` finishes the job.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import safe_open

import aekit
from aekit._utils import ModelFileError
from aekit.cli import main
from aekit.estimators import Autoencoder, SupervisedAutoencoder
from aekit.files import load_checkpoint
from aekit.modules import build_net
from aekit.optim import make_optimizer

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

KILLS_FAST = 3
KILLS_SLOW = 20
BASE = dict(hidden_layer_sizes=(8,), n_components=2, epochs=6, batch_size=32, random_state=0, device="cpu")
CONFIGS = {
    "rmsprop": {},
    "adam-val-dropout-noise-cosine": dict(
        optimizer="adam", validation_fraction=0.2, dropout=0.2, noise="gaussian", lr_schedule="cosine"
    ),
    "vae-earlystop-plateau-batchnorm": dict(
        variational=True,
        early_stopping=True,
        validation_fraction=0.2,
        patience=4,
        lr_schedule="plateau",
        batchnorm=True,
        optimizer="adamw",
    ),
    "supervised-sgd-masking": dict(optimizer="sgd", momentum=0.9, learning_rate=0.05, noise="masking", supervised=True),
    # bfloat16 through the optimizer's working copies; early stopping restores weights under them
    "bf16-rmsprop-val-earlystop-dropout": dict(
        precision="bfloat16", validation_fraction=0.2, early_stopping=True, patience=2, dropout=0.2
    ),
}


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).uniform(size=(200, 12)).astype(np.float32)


def _est(config: dict, **kw):
    params = {**BASE, **config, **kw}
    cls = SupervisedAutoencoder if params.pop("supervised", False) else Autoencoder
    return cls(**params)


def _fit(est, X, **kw):
    y = np.arange(len(X)) % 3 if isinstance(est, SupervisedAutoencoder) else None
    return est.fit(X, y, **kw) if y is not None else est.fit(X, **kw)


def _assert_identical(a, b, X) -> None:
    sa, sb = a.net_.state_dict(), b.net_.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert np.array_equal(a.transform(X), b.transform(X))
    assert a.n_iter_ == b.n_iter_
    assert {k: v for k, v in a.history_.items() if k != "time"} == {k: v for k, v in b.history_.items() if k != "time"}


def _stop_at(epoch: int, how: str):
    def callback(e, logs):
        if e == epoch:
            if how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)  # the estimator turns it into a clean stop
            raise KeyboardInterrupt

    return callback


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupted_then_resumed_is_bitwise_identical(tmp_path, X, config, how):
    cfg = CONFIGS[config]
    full = _fit(_est(cfg), X)
    ck = tmp_path / "ck.safetensors"
    k = 2 if how == "ctrl-c" else 4
    part = _fit(_est(cfg, checkpoint_path=str(ck), callbacks=[_stop_at(k, how)]), X)
    assert part.stop_reason_ == "interrupted"
    with safe_open(str(ck), framework="pt") as f:
        assert (
            json.loads(f.metadata()["loop"])["epoch"] == k
        )  # the checkpoint of the last epoch whose callbacks all ran
    resumed = _fit(_est(cfg, checkpoint_path=str(ck)), X, resume_from=ck)
    assert resumed.stop_reason_ == full.stop_reason_
    _assert_identical(resumed, full, X)


def test_interrupt_mid_epoch_keeps_last_epoch_and_resumes_identically(tmp_path, X):
    """Ctrl-C in the middle of a batch loop: the model is the previous epoch's, and the resume is exact."""
    ck = tmp_path / "ck.safetensors"
    est = _est({}, checkpoint_path=str(ck))
    calls = {"n": 0}

    def arm(epoch, logs):  # from epoch 3 on, the 3rd forward pass raises
        if epoch == 1:

            def hook(module, inputs):
                calls["n"] += 1
                if calls["n"] == 3:
                    raise KeyboardInterrupt

            est.net_.register_forward_pre_hook(hook)

    est.set_params(callbacks=[arm])
    _fit(est, X)
    assert est.stop_reason_ == "interrupted" and est.n_iter_ == 2
    _assert_identical(est, _fit(_est({}, epochs=2), X), X)
    resumed = _fit(_est({}), X, resume_from=ck)
    _assert_identical(resumed, _fit(_est({}), X), X)


def test_interrupt_in_the_first_epoch_says_no_epoch_completed(X, caplog):
    """No "keeping that model" for a model that trained no epoch (the CLI writes none)."""
    import torch

    def ctrl_c(module, inputs):
        raise KeyboardInterrupt

    handle = torch.nn.modules.module.register_module_forward_pre_hook(ctrl_c)  # the first forward pass of epoch 1
    try:
        est = _fit(_est({}), X)
    finally:
        handle.remove()
    assert est.stop_reason_ == "interrupted" and est.n_iter_ == 0
    assert "interrupted in its first epoch; no epoch completed" in caplog.text
    assert "keeping that model" not in caplog.text


def test_interrupt_in_callback_keeps_the_weights_n_iter_counts(X):
    """Ctrl-C in an epoch-end callback (e.g. SIGTERM while the checkpoint is written): the epoch counts and is kept."""
    part = _fit(_est({}, callbacks=[_stop_at(2, "ctrl-c")]), X)
    assert part.n_iter_ == 3
    _assert_identical(part, _fit(_est({}, epochs=part.n_iter_), X), X)


def test_sigterm_is_handled_by_a_builtin_while_training(X):
    """The lost SIGTERM: a handler written in Python runs as a frame of its own inside whatever the main thread
    runs; inside the compiled RMSprop step torch.compile traced that frame and the interrupt was lost (about one
    SIGTERM in fifteen, the run trained on). While fitting, SIGTERM's handler is Python's builtin SIGINT handler,
    which has no frame; before and after, the caller's."""
    seen = []
    before = signal.getsignal(signal.SIGTERM)
    est = _fit(_est({}, epochs=2, callbacks=[lambda epoch, logs: seen.append(signal.getsignal(signal.SIGTERM))]), X)
    assert seen == [signal.default_int_handler] * 2 and est.stop_reason_ == "completed"
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_whose_interrupt_was_swallowed_still_stops_training(X, sig):
    """The interrupt lands wherever the main thread is, library code included, and some of it swallows it
    (a CLI run trained on after SIGTERM about once in forty on a loaded machine). The signal's record stops
    the loop at the next step: the epoch in which it came is the last kept."""
    swallowed = []

    def library_code(epoch, logs):
        if epoch == 1:
            try:
                os.kill(os.getpid(), sig)
                for _ in range(10**7):  # the interrupt lands here...
                    pass
            except KeyboardInterrupt:  # ...and is swallowed
                swallowed.append(epoch)

    handler = signal.signal(signal.SIGINT, signal.default_int_handler)  # pytest's own would not raise
    try:
        est = _fit(_est({}, epochs=6, callbacks=[library_code]), X)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert swallowed == [1]
    assert est.stop_reason_ == "interrupted" and est.n_iter_ == 2
    from aekit._utils import _SIGNAL_RECORD

    assert not _SIGNAL_RECORD  # the record is gone with the fit


def test_a_handler_that_chose_not_to_raise_is_obeyed(X):
    """The record acts for Python's interrupt handler only: a user's handler that notes the signal and lets the
    epoch finish (a graceful shutdown) is not overruled."""
    noted = []

    def send(epoch, logs):
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)

    handler = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    try:
        est = _fit(_est({}, epochs=4, callbacks=[send]), X)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert noted == [signal.SIGINT] and est.stop_reason_ == "completed" and est.n_iter_ == 4


def test_a_wakeup_fd_of_someone_elses_is_left_alone(X):
    """An asyncio loop's signal handlers read the wakeup fd: a fit must not take their signals."""
    import socket

    read, write = socket.socketpair()
    for end in (read, write):
        end.setblocking(False)
    previous = signal.set_wakeup_fd(write.fileno())
    handler = signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    try:
        _fit(_est({}, epochs=2, callbacks=[lambda epoch, logs: os.kill(os.getpid(), signal.SIGUSR1)]), X)
        assert int(signal.SIGUSR1) in read.recv(16)
        assert signal.set_wakeup_fd(previous) == write.fileno()
    finally:
        signal.signal(signal.SIGUSR1, handler)
        read.close()
        write.close()


def test_a_swallowed_interrupt_in_the_last_epoch_still_stops(X):
    """The last epoch's callbacks (the checkpoint's write) come after the last step's check."""

    def library_code(epoch, logs):
        if epoch == 2:
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(10**7):
                    pass
            except KeyboardInterrupt:
                pass

    est = _fit(_est({}, epochs=3, callbacks=[library_code]), X)
    assert est.stop_reason_ == "interrupted" and est.n_iter_ == 3


def test_a_compiled_step_failing_from_an_interrupt_stops_training(X, monkeypatch):
    """A compiled step whose failure carries the KeyboardInterrupt in its chain (the compiler's own error)
    is the interrupt, not a reason to fall back to the eager step and train on."""
    from aekit import optim

    def traced(*args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("InternalTorchDynamoError: KeyboardInterrupt") from exc

    monkeypatch.setattr(optim, "_compiled_rmsprop", lambda: traced)
    est = _est({}, epochs=3)
    est._plan_overrides = {"fused": True}  # the compiled step ("auto" compiles it on long runs only)
    _fit(est, X)
    assert est.stop_reason_ == "interrupted" and est.n_iter_ == 0


def test_caused_by_interrupt_reads_the_chain():
    from aekit._utils import caused_by_interrupt

    assert not caused_by_interrupt(RuntimeError("no compiler"))  # a real compilation problem: the caller falls back
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as wrapped:
        assert caused_by_interrupt(wrapped)


def test_resume_refuses_other_parameters(tmp_path, X):
    ck = tmp_path / "ck.safetensors"
    _fit(_est({}, checkpoint_path=str(ck), epochs=2), X)
    with pytest.raises(ModelFileError, match="different parameters.*learning_rate"):
        _fit(_est({}, learning_rate=0.1), X, resume_from=ck)
    more = _fit(_est({}, epochs=4), X, resume_from=ck)  # more epochs is allowed
    assert more.n_iter_ == 4


# ----------------------------------------------------------------------------- the CLI, killed


TRAIN_FLAGS = [
    "--hidden-layer-sizes",
    "4",
    "--n-components",
    "2",
    "--batch-size",
    "16",
    "--random-state",
    "0",
    "--device",
    "cpu",
]


@pytest.fixture
def npy(tmp_path):
    p = tmp_path / "d.npy"
    np.save(p, np.random.default_rng(0).uniform(size=(64, 8)).astype(np.float32))
    return p


def _spawn(npy: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "aekit",
        "train",
        str(npy),
        "--out",
        str(out),
        "--epochs",
        "1000000",
        *TRAIN_FLAGS,
        *extra,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=out.parent)


def _file_id(p: Path) -> tuple[int, int] | None:
    try:
        st = p.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _wait_for_new_checkpoint(proc: subprocess.Popen, ck: Path, before: tuple[int, int] | None) -> None:
    """Block until this run has written a checkpoint of its own (i.e. it is training)."""
    deadline = time.monotonic() + 90
    while _file_id(ck) in (None, before):
        if proc.poll() is not None:
            raise AssertionError(f"aekit train exited early ({proc.returncode}): {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("aekit train wrote no checkpoint within 90 s")
        time.sleep(0.005)


def _load_ck(ck: Path):
    """load_checkpoint into a fresh net and optimizer built from the checkpoint's own parameters."""
    with safe_open(str(ck), framework="pt") as f:
        params = json.loads(f.metadata()["params"])
    est = Autoencoder(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})
    net = build_net(**est._net_kwargs(8, None))
    opt = make_optimizer(est.optimizer, net.parameters(), est.learning_rate, est.momentum)
    state = load_checkpoint(ck, net, opt, expected_params=est._json_params())
    assert all(bool(torch.isfinite(v).all()) for v in net.state_dict().values() if v.is_floating_point())
    assert all(len(v) == state.epoch for v in state.history.values())
    return state


def _kill_repeatedly(npy: Path, out: Path, kills: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    ck = out / "checkpoint.safetensors"
    last_epoch, stray = 0, 0
    for _ in range(kills):
        before = _file_id(ck)
        proc = _spawn(npy, out, *(["--resume"] if before else []))
        _wait_for_new_checkpoint(proc, ck, before)
        time.sleep(rng.uniform(0.3, 2.0))  # kill at a random moment of training: mid-batch, mid-write, anywhere
        proc.kill()
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        state = _load_ck(ck)  # the last checkpoint always loads ...
        assert state.epoch > last_epoch  # ... and the runs make progress, never lose a checkpoint
        last_epoch = state.epoch
        names = os.listdir(out)
        final = {n for n in names if not n.startswith(".")}
        assert final <= {"checkpoint.safetensors", "model.safetensors", "history.json", "training_curve.png"}, final
        # besides final names, only hidden temporary files: atomic_path's ".NAME.*.tmp" and
        # the safetensors writer's own ".tmp*"
        temp = set(names) - final
        assert all(n.endswith(".tmp") or n.startswith(".tmp") for n in temp), temp
        stray = len(temp)
        if "model.safetensors" in final:
            aekit.load(out / "model.safetensors")
    # after all that, resuming finishes the job
    rc = main(["train", str(npy), "--out", str(out), "--epochs", str(last_epoch + 2), *TRAIN_FLAGS, "--resume"])
    assert rc == 0
    model = aekit.load(out / "model.safetensors")
    assert model.n_iter_ == last_epoch + 2 and len(model.history_["loss"]) == last_epoch + 2
    return {"kills": kills, "epochs": last_epoch, "stray_tmp_files": stray}


def test_sigkill_at_random_times_leaves_a_loadable_checkpoint(tmp_path, npy):
    report = _kill_repeatedly(npy, tmp_path / "run", KILLS_FAST, seed=1)
    assert report["kills"] == KILLS_FAST


@pytest.mark.slow
def test_sigkill_many_times(tmp_path, npy):
    report = _kill_repeatedly(npy, tmp_path / "run", KILLS_SLOW, seed=int(time.time()))
    print(report)
    assert report["kills"] == KILLS_SLOW


def test_sigterm_stops_cleanly_and_resume_finishes(tmp_path, npy):
    out = tmp_path / "run"
    proc = _spawn(npy, out)
    _wait_for_new_checkpoint(proc, out / "checkpoint.safetensors", None)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr
    assert "interrupted: resume with the same command plus --resume" in stderr
    assert "interrupted)" in stdout  # "model: ... (N epochs, interrupted)"
    model = aekit.load(out / "model.safetensors")
    assert model.stop_reason_ == "interrupted" and model.n_iter_ >= 1
    assert np.isfinite(model.transform(np.load(npy))).all()
    state = _load_ck(out / "checkpoint.safetensors")
    assert state.epoch >= 1
    # the model is the last complete epoch; the checkpoint is that one, or the one before if SIGTERM hit its writing
    assert model.n_iter_ in (state.epoch, state.epoch + 1)
    if model.n_iter_ == state.epoch:
        with safe_open(str(out / "checkpoint.safetensors"), framework="pt") as f:
            for k, v in model.net_.state_dict().items():
                assert torch.equal(f.get_tensor(f"net.{k}"), v), k
    # without --resume (or --overwrite) the finished model is not replaced
    assert main(["train", str(npy), "--out", str(out), "--epochs", "3", *TRAIN_FLAGS]) == 2
    rc = main(["train", str(npy), "--out", str(out), "--epochs", str(state.epoch + 3), *TRAIN_FLAGS, "--resume"])
    assert rc == 0
    done = aekit.load(out / "model.safetensors")
    assert done.n_iter_ == state.epoch + 3 and done.stop_reason_ == "completed"
    assert len(done.history_["loss"]) == state.epoch + 3


def test_checkpoint_resume_keeps_this_runs_optimizer_implementation(tmp_path):
    """A checkpoint from a fused (e.g. GPU) Adam resumes into a foreach Adam: the flags follow the
    resuming optimizer, the hyperparameters and state come from the file."""
    from torch import nn

    from aekit.files import save_checkpoint
    from aekit.training import LoopState

    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.005, fused=True)
    net(torch.rand(4, 3)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "ck.safetensors", net, opt, LoopState(epoch=1), {})
    net2 = nn.Linear(3, 2)
    opt2 = torch.optim.Adam(net2.parameters(), lr=0.1, foreach=True)
    load_checkpoint(tmp_path / "ck.safetensors", net2, opt2)
    g = opt2.param_groups[0]
    assert g["lr"] == 0.005 and not g["fused"] and g["foreach"]
    torch.testing.assert_close(opt2.state[net2.weight]["exp_avg"], opt.state[net.weight]["exp_avg"])
    net2(torch.rand(4, 3)).sum().backward()
    opt2.step()  # the restored state works with this implementation


def test_fit_stage_stops_a_longer_job_and_keeps_the_model(X):
    """Inside a job (AE → t-SNE, the demo) an interrupted training stops the job: no t-SNE of a half-trained model."""
    from aekit.estimators import fit_stage
    from aekit.visualize import AETSNE

    est = _est({}, callbacks=[_stop_at(1, "ctrl-c")])
    with pytest.raises(KeyboardInterrupt, match="after 2 complete epochs"):
        fit_stage(est, X)
    assert est.n_iter_ == 2 and est.transform(X).shape == (len(X), 2)  # the model is kept
    assert fit_stage(_est({}, epochs=1), X).n_iter_ == 1  # an uninterrupted one returns the estimator
    vis = AETSNE(_est({}, callbacks=[_stop_at(0, "ctrl-c")]), perplexity=5)
    with pytest.raises(KeyboardInterrupt):
        vis.fit(X)
    assert not hasattr(vis, "embedding_")


def test_a_callback_that_stops_training_does_not_skip_the_checkpoint(tmp_path, X):
    ck = tmp_path / "ck.safetensors"
    est = _fit(_est({}, checkpoint_path=str(ck), callbacks=[lambda e, logs: e == 1]), X)
    assert est.n_iter_ == 2 and est.stop_reason_ == "callback"
    net = build_net(**est._net_kwargs(X.shape[1], None))
    state = load_checkpoint(ck, net, make_optimizer("rmsprop", net.parameters(), 0.001, est.momentum))
    assert state.epoch == 2  # the checkpoint of the epoch the callback stopped at


@pytest.mark.parametrize("random_state", [None, "RandomState"])
def test_resume_without_an_int_seed_continues_the_same_run(tmp_path, X, random_state):
    """random_state=None (the CLI default) or a RandomState: the resumed run reuses the seed the checkpoint
    stored, so it holds out the same validation samples and ends as the uninterrupted run would."""
    ck = tmp_path / "ck.safetensors"
    shared = np.random.RandomState(7)  # one generator: each fit draws another seed from it
    rs = (lambda: shared) if random_state else (lambda: None)
    cfg = dict(validation_fraction=0.2, checkpoint_path=str(ck))
    part = _fit(_est(cfg, random_state=rs(), epochs=2), X)
    resumed = _fit(_est(cfg, random_state=rs(), epochs=4), X, resume_from=ck)
    assert resumed.seed_ == part.seed_
    _assert_identical(resumed, _fit(_est({"validation_fraction": 0.2}, random_state=part.seed_, epochs=4), X), X)


def _without_seed_entry(path: Path) -> None:
    """Rewrite a checkpoint as the previous aekit wrote it: no "seed" metadata entry."""
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = {k: v for k, v in (f.metadata() or {}).items() if k != "seed"}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    save_file(tensors, str(path), metadata=meta)


def test_resume_of_an_older_checkpoint_without_a_stored_seed(tmp_path, X):
    ck = tmp_path / "ck.safetensors"
    cfg = dict(validation_fraction=0.2, checkpoint_path=str(ck))
    shared = np.random.RandomState(3)
    part = _fit(_est(cfg, random_state=shared, epochs=2), X)  # a RandomState: the params hold the int seed it gave
    _without_seed_entry(ck)
    resumed = _fit(_est(cfg, random_state=shared, epochs=4), X, resume_from=ck)
    assert resumed.seed_ == part.seed_
    part = _fit(_est(cfg, random_state=None, epochs=2), X)
    _without_seed_entry(ck)
    with pytest.warns(UserWarning, match="stores no seed.*new validation split"):
        _fit(_est(cfg, random_state=None, epochs=3), X, resume_from=ck)


def test_cli_resume_takes_the_first_runs_seed_without_random_state(tmp_path, capsys):
    X = np.random.default_rng(0).uniform(size=(64, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    args = [
        "train",
        str(tmp_path / "x.npy"),
        "--out",
        str(tmp_path / "r"),
        "--hidden-layer-sizes",
        "4",
        "--validation-fraction",
        "0.25",
    ]
    assert (
        main([*args, "--epochs", "1", "--random-state", "5", "--keep-checkpoint"]) == 0
    )  # a finished run keeps it only so
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    resumed = aekit.load(tmp_path / "r" / "model.safetensors")
    assert resumed.seed_ == 5 and resumed.n_iter_ == 2
