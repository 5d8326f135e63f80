"""A run's outputs as one unit: a locked --out folder, no file replaced without --overwrite, full disks,
signals during the final save, cleanup of folders a failed run made, Ctrl-C from the first instant.

Subprocess tests run ``python -m aekit`` (the command as users start it); the others call
``aekit.cli.main`` in this process.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import aekit
from aekit._utils import atomic_path, deferred_signals
from aekit.cli import TRAIN_FILES, main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and flock")

FLAGS = [
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
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def npy(tmp_path):
    p = tmp_path / "d.npy"
    np.save(p, np.random.default_rng(0).uniform(size=(64, 8)).astype(np.float32))
    return p


def _train(npy: Path, out: Path, *extra: str) -> int:
    return main(["train", str(npy), "--out", str(out), "--epochs", "1", *FLAGS, *extra])


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_error_line(err: str) -> str:
    """The one error line, after at most the progress lines of the training that ran first (off a terminal: one
    per epoch)."""
    lines = [line for line in err.strip().splitlines() if not re.match(r"epoch \d+/\d+ \w+=", line)]
    assert len(lines) == 1 and lines[0].startswith("aekit: error:"), err
    return lines[0]


def _stacks(dump: str) -> str:
    """faulthandler's dump, short: each thread's innermost frames (where it waits), the main thread's last."""
    blocks = [b for b in dump.split("\n\n") if "(most recent call first)" in b]
    blocks.sort(key=lambda b: "in <module>" in b)  # CI logs keep the end of a message
    return "\n".join("\n".join(b.strip().splitlines()[:8]) for b in blocks) or dump[-3000:]


# ----------------------------------------------------------------------------- two runs, one folder


def test_a_second_run_on_a_locked_folder_refuses_and_names_the_first(tmp_path, npy, capsys):
    out = tmp_path / "run"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running aekit holds it
    try:
        assert _train(npy, out) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "in use by another aekit run" in line and f"pid {os.getpid()}" in line, line
        assert list(out.iterdir()) == []  # nothing written, and the folder (not this run's) is still there
    finally:
        os.close(fd)  # the lock goes with the descriptor, as with a killed process
    assert _train(npy, out) == 0
    assert (out / "model.safetensors").exists()


def test_two_concurrent_trainings_the_second_refuses(tmp_path, npy):
    """The reported case: a second `aekit train` on the folder of a running one exited 0 and claimed
    the first run's model as its own."""
    out = tmp_path / "shared"
    cmd = [sys.executable, "-m", "aekit", "train", str(npy), "--out", str(out), "--epochs", "1000000", *FLAGS]
    # -X faulthandler: a first run that does not stop (seen once, in a full CI run) shows its threads' stacks
    first = subprocess.Popen(
        [cmd[0], "-X", "faulthandler", *cmd[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.safetensors").exists():  # training: the lock is held
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run wrote no checkpoint within 120 s"
            time.sleep(0.01)
        second = subprocess.run(
            [*cmd[: -len(FLAGS) - 2], "--epochs", "1", *FLAGS, "--overwrite"],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=300,
        )
        assert second.returncode == 2, second
        line = _one_error_line(second.stderr)
        assert f"pid {first.pid}" in line and "train" in line, line
        assert "model:" not in second.stdout
    finally:
        first.send_signal(signal.SIGTERM)
        try:
            first.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            first.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack, then the process ends
            _, err = first.communicate(timeout=60)
            pytest.fail(f"the first run did not stop within 120 s of SIGTERM; its threads: {_stacks(err)}")
    assert first.returncode == 130
    assert aekit.load(out / "model.safetensors").n_iter_ >= 1


# ----------------------------------------------------------------------------- no file replaced without --overwrite


@pytest.mark.parametrize("name", TRAIN_FILES)
def test_train_never_replaces_a_users_file(tmp_path, npy, capsys, name):
    out = tmp_path / "run"
    out.mkdir()
    (out / name).write_bytes(b"mine")
    assert _train(npy, out) == 2
    assert f"{name} exists; pass --overwrite" in _one_error_line(capsys.readouterr().err)
    assert _snapshot(out) == {name: b"mine"}


def test_a_dangling_link_where_a_file_goes_is_found_at_the_start(tmp_path, npy, capsys):
    # it was found only when the model was put in place ("appeared while aekit was writing it")
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.safetensors").symlink_to(tmp_path / "nowhere")
    assert _train(npy, out) == 2
    err = capsys.readouterr().err
    assert "model.safetensors exists; pass --overwrite" in _one_error_line(err) and "epoch" not in err
    assert not (tmp_path / "nowhere").exists()


def test_a_folder_where_a_file_goes_is_refused_before_training(tmp_path, npy, capsys):
    # it was found only when the trained model was put in place ("Is a directory")
    out = tmp_path / "run"
    (out / "model.safetensors").mkdir(parents=True)
    (out / "model.safetensors" / "notes.txt").write_bytes(b"mine")
    assert _train(npy, out, "--overwrite") == 2
    err = capsys.readouterr().err
    assert "model.safetensors is a folder where this run writes a file" in _one_error_line(err)
    assert "epoch" not in err and _snapshot(out) == {"model.safetensors/notes.txt": b"mine"}


def test_a_file_that_appears_during_the_run_is_not_replaced(tmp_path, npy, capsys, monkeypatch):
    """The check is made again when the files are put in place, and the run's files go in together or not at all."""
    from aekit.estimators import Autoencoder

    out = tmp_path / "run"
    fit = Autoencoder.fit

    def fit_then_user_writes(self, *args, **kwargs):
        result = fit(self, *args, **kwargs)
        (out / "history.json").write_text("the user's")
        return result

    monkeypatch.setattr(Autoencoder, "fit", fit_then_user_writes)
    assert _train(npy, out) == 2
    assert "history.json appeared while aekit was writing it" in _one_error_line(capsys.readouterr().err)
    assert _snapshot(out) == {"history.json": b"the user's"}  # no model, checkpoint or curve of the failed run


@pytest.mark.parametrize("command", ["embed", "denoise"])
def test_single_file_outputs_are_not_replaced(tmp_path, npy, capsys, command):
    assert _train(npy, tmp_path / "run") == 0
    target = tmp_path / "codes.npy"
    target.write_bytes(b"mine")
    args = [command, str(tmp_path / "run" / "model.safetensors"), str(npy), "--out", str(target)]
    assert main(args) == 2
    assert "exists; pass --overwrite" in _one_error_line(capsys.readouterr().err)
    assert target.read_bytes() == b"mine"
    assert main([*args, "--overwrite"]) == 0
    assert np.load(target).shape[0] == 64


def test_an_output_that_is_an_input_is_refused_even_with_overwrite(tmp_path, npy, capsys):
    """An attack: `evaluate m.safetensors d.npy --json m.safetensors --overwrite` replaced the model with JSON,
    `embed`/`denoise` their own data with codes; an output folder inside a folder of images became images."""
    from PIL import Image

    assert _train(npy, tmp_path / "run") == 0
    model = tmp_path / "run" / "model.safetensors"
    kept = {p: p.read_bytes() for p in (model, npy)}
    cases = [
        (["evaluate", str(model), str(npy), "--json", str(model)], "is this command's model ("),
        (["evaluate", str(tmp_path / "run"), str(npy), "--json", str(model)], "inside"),  # a run folder as model
        (["evaluate", str(model), str(npy), "--json", str(npy)], "is this command's data ("),
        (["embed", str(model), str(npy), "--out", str(npy)], "is this command's data"),
        (["denoise", str(model), str(npy), "--out", str(npy)], "is this command's data"),
    ]
    for argv, words in cases:
        assert main([*argv, "--overwrite"]) == 2, argv
        line = _one_error_line(capsys.readouterr().err)
        assert words in line and "write " in line, line
    assert {p: p.read_bytes() for p in kept} == kept
    # a folder of images: an output folder in it would be read as images (a class) next time
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((4, 4), 40 * i, np.uint8)).save(tmp_path / "imgs" / "a" / f"{i}.png")
    assert main(["train", str(tmp_path / "imgs"), "--out", str(tmp_path / "imgs" / "run"), "--epochs", "1"]) == 2
    assert "is inside" in _one_error_line(capsys.readouterr().err) and not (tmp_path / "imgs" / "run").exists()
    assert main(["train", str(tmp_path / "imgs"), "--out", str(tmp_path / "irun"), "--epochs", "1"]) == 0
    imodel = str(tmp_path / "irun" / "model.safetensors")
    capsys.readouterr()
    picture = ["--out", str(tmp_path / "den.npy"), "--picture", str(tmp_path / "imgs" / "den.png")]
    assert main(["denoise", imodel, str(tmp_path / "imgs"), *picture]) == 2  # a picture would become an image
    assert "is inside" in _one_error_line(capsys.readouterr().err) and not (tmp_path / "imgs" / "den.png").exists()
    # outputs beside a model are no threat to it: a folder of outputs may be the model's run folder (a review:
    # `visualize x.npy --model run --out run` was refused, with --model run/model.safetensors accepted)
    import argparse

    from aekit.commands import _not_an_input
    from aekit.visualize import MAP_FILES

    args = argparse.Namespace(model=str(tmp_path / "irun"), data=str(npy))
    visualize_files = ["embedding.npy", "embedding.csv", "tsne.png", "explore.html", "comparison.png", *MAP_FILES]
    _not_an_input(args, str(tmp_path / "irun"), "--out", folder=True, files=visualize_files)  # no map there
    # ... unless the folder's files include the model: a docs run's visualize --model repro/autoencoder.safetensors
    # --out repro --overwrite deleted the model it had read (a map's files are removed when not saved again)
    (tmp_path / "repro").mkdir()
    saved = tmp_path / "repro" / "autoencoder.safetensors"
    saved.write_bytes(model.read_bytes())
    argv = ["visualize", str(npy), "--model", str(saved), "--out", str(tmp_path / "repro"), "--overwrite"]
    assert main(argv) == 2 and saved.read_bytes() == model.read_bytes()
    assert "would replace autoencoder.safetensors, this command's model" in _one_error_line(capsys.readouterr().err)
    with pytest.raises(aekit._utils.InputError, match="would replace tsne.safetensors, this command's model"):
        (tmp_path / "repro" / "tsne.safetensors").write_bytes(b"a map")
        map_args = argparse.Namespace(model=str(tmp_path / "repro"), data=str(npy))  # a map's folder as the model
        _not_an_input(map_args, str(tmp_path / "repro"), "--out", folder=True, files=["tsne.safetensors"])
    # a file name denoise cannot write is refused before any work, in the user's words
    assert main(["denoise", str(model), str(npy), "--out", str(tmp_path / "den.csv.gz")]) == 2
    assert f"--out {tmp_path / 'den.csv.gz'}: use a .npy or .csv" in _one_error_line(capsys.readouterr().err)


# ----------------------------------------------------------------------------- full disks


def _enospc(kind: str):
    """A safetensors writer that fails like a full disk for checkpoints or for model files."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    def writer(tensors, filename, metadata=None):
        if f"aekit_{kind}" in (metadata or {}):
            if kind == "format":  # the writer's own error type, as on a real full disk
                raise SafetensorError(
                    f"Error while serializing: I/O error: No space left on device (os error 28) at path {filename!r}"
                )
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)
        return save_file(tensors, filename, metadata=metadata)

    return writer


@pytest.mark.parametrize("kind", ["checkpoint", "format"])  # the checkpoint during training; the final model file
def test_a_full_disk_leaves_the_previous_run_exactly_as_it_was(tmp_path, npy, capsys, monkeypatch, kind):
    out = tmp_path / "run"
    assert _train(npy, out, "--keep-checkpoint") == 0  # a previous run with every file a run can leave
    before = _snapshot(out)
    assert set(before) == set(TRAIN_FILES)
    capsys.readouterr()
    monkeypatch.setattr("safetensors.torch.save_file", _enospc(kind))
    assert main(["train", str(npy), "--out", str(out), "--epochs", "2", *FLAGS, "--overwrite"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "No space left on device" in line and "as it was before this run" in line, line
    assert _snapshot(out) == before  # same names (no temporary file left), same bytes


def test_a_full_disk_on_a_fresh_run_leaves_nothing(tmp_path, npy, capsys, monkeypatch):
    monkeypatch.setattr("safetensors.torch.save_file", _enospc("format"))
    assert _train(npy, tmp_path / "nest" / "a" / "b") == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "No space left on device" in line and "nothing was written" in line, line
    assert not (tmp_path / "nest").exists()


# ----------------------------------------------------------------------------- folders a failed run made


def test_a_failed_run_removes_the_folders_it_made(tmp_path, npy, capsys):
    assert main(["train", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "nest" / "a" / "b"), *FLAGS]) == 2
    assert not (tmp_path / "nest").exists()
    (tmp_path / "nest").mkdir()
    assert main(["train", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "nest" / "a" / "b"), *FLAGS]) == 2
    assert list((tmp_path / "nest").iterdir()) == []  # the folder that was there stays; a/b are gone
    model = tmp_path / "m.safetensors"
    assert main(["embed", str(model), str(npy), "--out", str(tmp_path / "new" / "codes.npy")]) == 2
    assert not (tmp_path / "new").exists()
    capsys.readouterr()


# ----------------------------------------------------------------------------- signals during saves


SAVE_SIGNAL = textwrap.dedent("""
    import os, signal, sys
    import safetensors.torch as st
    from aekit.cli import main

    save_file, sig, kind = st.save_file, getattr(signal, sys.argv[1]), sys.argv[2]

    def signalled(tensors, filename, metadata=None):  # the signal arrives while the file is being written
        if kind in (metadata or {}):
            os.kill(os.getpid(), sig)
        return save_file(tensors, filename, metadata=metadata)

    st.save_file = signalled
    sys.exit(main(sys.argv[3:]))
""")


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("kind", ["aekit_format", "aekit_checkpoint"])  # the final model save; a checkpoint
def test_a_signal_during_a_save_waits_for_it(tmp_path, npy, sig, kind):
    """Reported: SIGTERM while the model was being written killed aekit with no model and a 0-byte
    temporary file left. Now the save completes, then the signal stops the run (exit 130)."""
    out = tmp_path / "run"
    args = ["train", str(npy), "--out", str(out), "--epochs", "3", *FLAGS]
    proc = subprocess.run(
        [sys.executable, "-c", SAVE_SIGNAL, sig, kind, *args], capture_output=True, text=True, env=ENV, timeout=300
    )
    assert proc.returncode == 130, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    # after the final save: "aekit: interrupted"; after a checkpoint, training stops and keeps its model
    last = "aekit: interrupted" if kind == "aekit_format" else "interrupted: resume with the same command plus --resume"
    assert proc.stderr.strip().splitlines()[-1].startswith(last), proc.stderr
    names = _snapshot(out)
    assert [n for n in names if n.startswith(".") or ".tmp" in n] == []  # no temporary file or staging folder
    model = aekit.load(out / "model.safetensors")
    # the final save: the whole run; a checkpoint: the interrupted epoch's end (the checkpoint is written first)
    assert model.n_iter_ == (3 if kind == "aekit_format" else 1)


def test_deferred_signals_hold_ctrl_c_until_the_block_ends():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            reached.append(True)  # not interrupted in the block
    assert reached == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_atomic_path_leaves_no_temporary_file_on_any_exception(tmp_path):
    target = tmp_path / "new" / "f.txt"
    for exc in (KeyboardInterrupt, OSError, ValueError):
        with pytest.raises(exc), atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise exc
        assert not (tmp_path / "new").exists()  # nor the folder made for it
    (tmp_path / "f.txt").write_text("mine")
    with pytest.raises(FileExistsError), atomic_path(tmp_path / "f.txt", overwrite=False) as tmp:
        tmp.write_text("theirs")
    assert os.listdir(tmp_path) == ["f.txt"] and (tmp_path / "f.txt").read_text() == "mine"


# ----------------------------------------------------------------------------- Ctrl-C from the first instant


def _has_numpy(pid: int) -> bool:
    """Whether the process has mapped numpy's core module: it is inside aekit's main (only main imports it)."""
    try:
        with open(f"/proc/{pid}/maps") as fh:
            return "_multiarray_umath" in fh.read()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
@pytest.mark.parametrize("delay", [0.0, 0.2, 0.6, 1.5, 4.0])
def test_ctrl_c_at_any_moment_gives_exit_130_and_one_line(tmp_path, npy, delay):
    """While numpy and torch load (the first two delays), parsing, loading data, training: exit 130 and
    'aekit: interrupted' (with, once training runs, the line saying what was kept, or that nothing was),
    never a traceback."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "aekit", "train", str(npy), "--out", str(out), "--epochs", "1000000", *FLAGS]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 60
    while not _has_numpy(proc.pid):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.001)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    kept = ("interrupted: resume with", "no epoch completed (interrupted): no model written")  # after / in epoch 1
    assert last == "aekit: interrupted" or last.startswith(kept), err
    if delay == 0.0:
        assert err == "aekit: interrupted\n"  # torch was still loading
    if out.exists():  # a folder is left only with a model to resume
        assert (out / "model.safetensors").exists(), os.listdir(out)
        assert json.loads((out / "history.json").read_text())["loss"]


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="names the holder from /proc (Linux)")
def test_the_lock_holders_command_line_reaches_the_terminal_as_text(tmp_path):
    # another user's process could put terminal escapes in its arguments (clear the screen, fake a message)
    from aekit.outputs import _holder

    code = "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); "
    code += "print('held', flush=True); time.sleep(60)"
    argv = [sys.executable, "-c", code, str(tmp_path), "\x1b[2J\x1b[31mFAKE"]
    holder = subprocess.Popen(argv, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        named = _holder(tmp_path)
        assert f"pid {holder.pid}" in named and "?[2J?[31mFAKE" in named and "\x1b" not in named
    finally:
        holder.kill()
        holder.wait()


def test_a_model_path_that_is_no_regular_file_says_so(tmp_path):
    from aekit._utils import ModelFileError

    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)  # it said "no such aekit model file"
    with pytest.raises(ModelFileError, match=r"model\.safetensors: not a regular file"):
        aekit.load(fifo)


def test_resume_of_a_finished_run_names_both_ways_on(tmp_path, npy, capsys):
    """A docs run: --resume on a finished run said "Drop --resume", and the command without it then failed on the
    finished run's files (--overwrite); the first message names both."""
    assert _train(npy, tmp_path / "run") == 0
    capsys.readouterr()
    assert _train(npy, tmp_path / "run", "--resume") == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "Drop --resume to train from the start (--overwrite replaces the finished run in" in line
    assert _train(npy, tmp_path / "run", "--overwrite") == 0
