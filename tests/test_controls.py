"""Training controls (issue 21): min_delta, restore_best_weights, best_epoch_, verbose, huber/l1,
plateau + early stopping, checkpoints of finished runs, a fast --version, warnings once, the demo's labels."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import aekit
from aekit import Autoencoder, SupervisedAutoencoder
from aekit._utils import InputError
from aekit.cli import main
from aekit.objectives import RECONSTRUCTION_LOSSES, reconstruction_loss
from aekit.training import LoopState, TrainConfig, epoch_line, train

from .conftest import SMALL

# ----------------------------------------------------------------------------- estimator parameters


def test_min_delta_and_restore_best_weights_reach_the_loop():
    est = Autoencoder(min_delta=0.01, restore_best_weights=False, verbose=2)
    config = est._train_config(20)
    assert config.min_delta == 0.01 and config.restore_best_weights is False and config.progress is False
    assert Autoencoder(verbose=1)._train_config(20).progress is True
    assert SupervisedAutoencoder(min_delta=0.5)._train_config(20).min_delta == 0.5


def test_min_delta_is_validated():
    with pytest.raises(ValueError, match=r"min_delta=-1.0 must be a finite number >= 0"):
        Autoencoder(min_delta=-1.0).fit(np.zeros((8, 3), np.float32))


def test_a_large_min_delta_stops_after_patience_and_best_epoch_is_the_first(blobs):
    X, _ = blobs
    est = Autoencoder(**{**SMALL, "epochs": 30}, early_stopping=True, patience=2, min_delta=10.0).fit(X)
    # no decrease of 10 ever counts: epoch 1 stays the best, two more epochs without improvement stop the run
    assert est.stop_reason_ == "early_stopping" and est.n_iter_ == 3 and est.best_epoch_ == 1


def test_restore_best_weights_false_keeps_the_last_epoch(blobs):
    X, _ = blobs
    common = {**SMALL, "epochs": 30, "early_stopping": True, "patience": 2, "min_delta": 10.0}
    best = Autoencoder(**common).fit(X)
    last = Autoencoder(**common, restore_best_weights=False).fit(X)
    assert best.n_iter_ == last.n_iter_ == 3
    assert best.history_["loss"] == last.history_["loss"]  # the same run ...
    # ... ending with different weights: epoch 1's (restored) and epoch 3's
    assert not np.allclose(best.transform(X), last.transform(X))
    assert np.isclose(best.reconstruction_error(X), best.history_["loss"][0], rtol=0.3)


def test_best_epoch_is_the_lowest_monitored_loss_and_survives_save_load(blobs, tmp_path):
    X, _ = blobs
    est = Autoencoder(**{**SMALL, "epochs": 6}, validation_fraction=0.25).fit(X)
    assert est.best_epoch_ == int(np.argmin(est.history_["val_loss"])) + 1
    est.save(tmp_path / "m.safetensors")
    assert aekit.load(tmp_path / "m.safetensors").best_epoch_ == est.best_epoch_


def test_a_model_file_without_best_epoch_loads(blobs, tmp_path):
    """Files written before best_epoch_ existed: it is derived from their history (they had no min_delta)."""
    from aekit.files import read_model, save_model

    X, _ = blobs
    est = Autoencoder(**SMALL).fit(X)
    est.save(tmp_path / "m.safetensors")
    model = read_model(tmp_path / "m.safetensors")
    from aekit.files import fitted_section

    fitted = fitted_section(est)
    del fitted["best_epoch_"]
    fitted["history_"]["loss"] = [0.5, 0.3, 0.4]
    save_model(tmp_path / "old.safetensors", est.net_, "Autoencoder", est._json_params(), fitted)
    old = aekit.load(tmp_path / "old.safetensors")
    assert old.best_epoch_ == 2 and model.fitted["best_epoch_"] == est.best_epoch_
    np.testing.assert_array_equal(old.transform(X), est.transform(X))


# ----------------------------------------------------------------------------- verbose


def test_verbose_2_prints_one_line_per_epoch_without_logging_setup(blobs, capsys):
    X, _ = blobs
    Autoencoder(**SMALL, validation_fraction=0.2, verbose=2).fit(X)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    for k, line in enumerate(lines, 1):
        assert line.startswith(f"epoch {k}/3 ")
        for key in (" loss=", "reconstruction=", "val_loss=", "val_reconstruction=", "lr=0.002", "time="):
            assert key in line, (key, line)


def test_verbose_0_is_silent_and_verbose_1_shows_the_epoch_in_the_bar(blobs, capsys):
    X, _ = blobs
    Autoencoder(**SMALL).fit(X)
    assert capsys.readouterr().err == ""
    Autoencoder(**SMALL, verbose=1).fit(X)
    err = capsys.readouterr().err
    assert "epoch 3/3" in err and "epoch 3/3 loss=" not in err  # the bar, not the lines


def test_epoch_line_format():
    line = epoch_line(2, 10, {"loss": 0.123456, "val_loss": 0.2, "lr": 0.00025, "time": 1.234})
    assert line == "epoch 2/10 loss=0.1235 val_loss=0.2 lr=0.00025 time=1.23s"


# ----------------------------------------------------------------------------- losses


def test_huber_and_l1_are_the_torch_losses_on_the_output():
    g = torch.Generator().manual_seed(0)
    logits, target = 3 * torch.randn(6, 5, generator=g), 2 * torch.randn(6, 5, generator=g)
    assert {"huber", "l1"} <= set(RECONSTRUCTION_LOSSES)
    d = (logits - target).abs()
    huber = torch.where(d < 1, 0.5 * d**2, d - 0.5).mean()
    torch.testing.assert_close(reconstruction_loss(logits, target, "huber", "linear"), huber)
    torch.testing.assert_close(reconstruction_loss(logits, target, "l1", "linear"), d.mean())
    on_sigmoid = (torch.sigmoid(logits) - target).abs().mean()
    torch.testing.assert_close(reconstruction_loss(logits, target, "l1", "sigmoid"), on_sigmoid)


@pytest.mark.parametrize("loss", ["huber", "l1"])
def test_huber_and_l1_train_on_unbounded_data(loss, blobs):
    X, _ = blobs
    X = 40 * X - 20  # outside [0, 1]
    est = Autoencoder(**{**SMALL, "epochs": 5}, loss=loss, output_activation="linear").fit(X)
    assert est.history_["loss"][-1] < est.history_["loss"][0]
    assert np.isclose(est.score(X), -np.mean((est.reconstruct(X) - X) ** 2), rtol=1e-5)  # MSE, even for l1
    with pytest.raises(ValueError, match="loss='bce' needs output_activation='sigmoid'"):
        Autoencoder(loss="bce", output_activation="linear").fit(X)


# ----------------------------------------------------------------------------- plateau + early stopping


class _Scripted(torch.nn.Module):
    """A module whose 'loss' per epoch comes from a script (one step per epoch); the lr only matters as data."""

    def __init__(self, losses: list[float]) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.losses = losses
        self.calls = 0

    def loss_fn(self, batch, training):
        value = self.losses[min(self.calls, len(self.losses) - 1)]
        self.calls += int(training)
        return {"loss": self.w.sum() * 0 + value}


def _scripted_run(losses: list[float], **config) -> tuple[LoopState, list[float]]:
    m = _Scripted(losses)
    opt = torch.optim.SGD(m.parameters(), lr=1.0)
    data = (torch.zeros(4, 1),)
    state = train(m, m.loss_fn, opt, data, TrainConfig(epochs=len(losses), batch_size=4, **config))
    return state, state.history["lr"]


def test_plateau_with_early_stopping_ends_though_each_halving_brings_a_tiny_gain():
    # the pattern of issue 21: the loss flattens, each lr halving buys a gain too small to matter
    losses = [1.0, 0.5, 0.4]
    for _ in range(60):
        losses += [losses[-1], losses[-1], losses[-1] * (1 - 1e-6)]
    state, lrs = _scripted_run(losses, early_stopping=True, patience=5, lr_schedule="plateau")
    assert state.stop_reason in ("early_stopping", "lr_floor")
    assert state.epoch < 40 and lrs[-1] >= 1.0 / 1000


def test_plateau_alone_keeps_its_schedule():
    """Without early stopping the plateau schedule runs every epoch, halving after 2 flat epochs."""
    losses = [1.0, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8]
    state, lrs = _scripted_run(losses, lr_schedule="plateau")
    assert state.stop_reason == "completed" and state.epoch == len(losses)
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]  # an epoch's lr is the one it trained with


def test_early_stopping_without_plateau_counts_patience_as_before():
    losses = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.1]
    state, _ = _scripted_run(losses, early_stopping=True, patience=3)
    assert state.stop_reason == "early_stopping" and state.epoch == 5 and state.best_epoch == 1


# ----------------------------------------------------------------------------- command line


def _npy(tmp_path):
    X = np.random.default_rng(0).uniform(size=(48, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    return str(tmp_path / "x.npy")


TINY = ["--epochs", "2", "--hidden-layer-sizes", "4", "--batch-size", "16", "--random-state", "0"]


def test_a_finished_run_deletes_its_checkpoint_unless_asked(tmp_path, capsys):
    data = _npy(tmp_path)
    assert main(["train", data, "--out", str(tmp_path / "a"), *TINY]) == 0
    assert (tmp_path / "a" / "model.safetensors").exists() and not (tmp_path / "a" / "checkpoint.safetensors").exists()
    assert main(["train", data, "--out", str(tmp_path / "b"), *TINY, "--keep-checkpoint"]) == 0
    assert (tmp_path / "b" / "checkpoint.safetensors").exists()
    # the kept checkpoint continues the run
    assert main(["train", data, "--out", str(tmp_path / "b"), *TINY[2:], "--epochs", "3", "--resume"]) == 0
    assert aekit.load(tmp_path / "b" / "model.safetensors").n_iter_ == 3
    assert not (tmp_path / "b" / "checkpoint.safetensors").exists()  # that run finished too


def test_resuming_without_epochs_continues_the_run_and_a_shorter_run_is_refused(tmp_path, capsys):
    """Resuming, epochs="auto" (no --epochs) is the checkpoint's run's length; a length its epochs already
    reached is refused with the fix, and the checkpoint is kept for it (it once ended "completed" and was deleted)."""
    data, out = _npy(tmp_path), str(tmp_path / "b")
    assert main(["train", data, "--out", out, *TINY[2:], "--epochs", "3", "--keep-checkpoint"]) == 0
    ck = tmp_path / "b" / "checkpoint.safetensors"
    kept = ck.read_bytes()
    capsys.readouterr()
    assert main(["train", data, "--out", out, *TINY[2:], "--epochs", "2", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "its run has done 3 epochs, and --epochs 2 ends it there; pass --epochs 4 or more" in err
    assert ck.read_bytes() == kept
    # a run stopped after one of its 3 epochs: resumed without --epochs, it runs to 3 ("auto" would be more)
    stop = aekit.Autoencoder(
        epochs=3,
        hidden_layer_sizes=(4,),
        batch_size=16,
        random_state=0,
        checkpoint_path=str(tmp_path / "c.safetensors"),
        callbacks=[lambda e, logs: True],
    )
    stop.fit(np.load(data))
    assert stop.n_iter_ == 1
    resumed = aekit.Autoencoder(
        hidden_layer_sizes=(4,), batch_size=16, random_state=0, checkpoint_path=str(tmp_path / "c.safetensors")
    )
    resumed.fit(np.load(data), resume_from=tmp_path / "c.safetensors")
    assert resumed.epochs_ == 3 and resumed.n_iter_ == 3
    with pytest.raises(InputError, match=r"its run has done 3 epochs, and epochs=3 ends it there; pass epochs=4 or"):
        aekit.Autoencoder(hidden_layer_sizes=(4,), batch_size=16, random_state=0, epochs=3).fit(
            np.load(data), resume_from=tmp_path / "c.safetensors"
        )


def test_an_interrupted_run_keeps_its_checkpoint(tmp_path, monkeypatch, capsys):
    import aekit.estimators as est_mod

    fit = est_mod.Autoencoder.fit

    def stop_after_one_epoch(self, *args, **kwargs):
        def ctrl_c(epoch, logs):  # Ctrl-C after the second epoch; the first one's checkpoint is written
            if epoch == 1:
                raise KeyboardInterrupt

        self.callbacks = [ctrl_c]
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(est_mod.Autoencoder, "fit", stop_after_one_epoch)
    assert main(["train", _npy(tmp_path), "--out", str(tmp_path / "r"), *TINY]) == 130
    assert (tmp_path / "r" / "checkpoint.safetensors").exists() and "--resume" in capsys.readouterr().err


def test_library_leaves_its_checkpoint_path(blobs, tmp_path):
    X, _ = blobs
    Autoencoder(**SMALL, checkpoint_path=tmp_path / "ck.safetensors").fit(X)
    assert (tmp_path / "ck.safetensors").exists()


def test_version_imports_neither_torch_nor_sklearn():
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "aekit", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == f"aekit {aekit.__version__}\n"
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "aekit" in imported and not {"torch", "sklearn", "numpy"} & imported


def test_the_public_names_still_import():
    assert aekit.Autoencoder is Autoencoder and callable(aekit.load) and "dense" in aekit.PRESETS
    assert {"Autoencoder", "load", "metrics"} <= set(dir(aekit))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        aekit.nothing  # noqa: B018


# ----------------------------------------------------------------------------- warnings once


def test_the_range_warning_comes_once_and_points_at_the_caller(blobs):  # conftest clears the registry each test
    X, y = blobs
    est = Autoencoder(**SMALL).fit(X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # even so: the registry holds the repeats back
        for scale in (2, 3, 4):  # different ranges, as in the folds of a cross-validation
            est.transform(X * scale)
        est.transform(X)  # in range: nothing to say
        est.reconstruct(X * 2)  # another method: the same advice, not said again (aekit evaluate calls both)
        est.reconstruct(X * 5)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert messages[0].startswith("X holds values outside [0, 1] as the model reads it (values in [0")
    assert "MinMaxScaler" in messages[0] and "scale='minmax'" in messages[0]
    # transform runs inside scikit-learn's set_output wrapper: the warning still points at the caller's line
    assert caught[0].filename == __file__


def test_cross_val_score_warns_once(blobs):
    from sklearn.model_selection import cross_val_score

    X, y = blobs
    X = X.copy()
    X[::7] *= 1.5  # some rows outside [0, 1]: every test fold holds some
    fitted = Autoencoder(**SMALL).fit(np.clip(X, 0, 1))

    class Prefitted(Autoencoder):
        def fit(self, X, y=None):
            self.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
            return self

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cross_val_score(Prefitted(**SMALL), X, cv=5)
    assert len([w for w in caught if "outside [0, 1]" in str(w.message)]) == 1


# ----------------------------------------------------------------------------- the demo's labels


def test_demo_tsne_section_names_the_points_it_scores(tmp_path, monkeypatch):
    from aekit import demo, visualize
    from aekit.mnist import MNIST

    n_test = 200
    rng = np.random.default_rng(0)
    data = MNIST(rng.uniform(size=(50, 4)), np.zeros(50), rng.uniform(size=(n_test, 4)), np.zeros(n_test))
    route = {
        "embedding": np.zeros((n_test, 2)),
        "knn5_cv": 0.5,
        "trustworthiness": 0.9,
        "ae_seconds": 1.0,
        "tsne_seconds": 1.0,
        "trust_points": n_test,  # compare_routes says how many points it scored
    }
    names = ("AE → 2-D", "t-SNE from raw", "AE(20) → t-SNE", "SAE(20) → t-SNE")
    monkeypatch.setattr(demo, "_fit_timed", lambda est, *a: 0.0)
    monkeypatch.setattr(demo, "_dense_ae", lambda ctx: None)
    monkeypatch.setattr(demo, "_explore_page", lambda ctx, emb: "")
    monkeypatch.setattr(visualize, "compare_routes", lambda *a, **k: {n: dict(route) for n in names})
    monkeypatch.setattr(visualize, "plot_routes", lambda *a, **k: None)
    monkeypatch.setattr(demo.plots, "save", lambda *a, **k: None)
    monkeypatch.setattr(demo.plots, "latent_scatter", lambda *a, **k: type("Ax", (), {"figure": None})())
    ctx = demo.Context(out=tmp_path, data=data, quick=True, epochs=1, progress=False)
    ctx.fit_seconds["dense"] = 1.0
    text = demo.section_tsne(ctx)
    assert f"on {n_test:,} points" in text and "3,000 points" not in text
    json.dumps(ctx.results["tsne"], default=float)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_the_progress_bar_draws_on_a_terminal_of_no_size(monkeypatch):
    # a fresh pseudo-terminal reports 0 columns and 0 rows; tqdm's own rules drew an empty line there
    from aekit.training import _progress_bar

    main, side = os.openpty()
    with os.fdopen(side, "w") as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        bar = _progress_bar(True, total=3, initial=0)
        bar.update(3)
        bar.close()
    chunks = []
    while select.select([main], [], [], 0.5)[0]:  # a pseudo-terminal hands its bytes over in pieces
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the other side closed: everything was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    drawn = b"".join(chunks).decode()
    assert "3/3" in drawn and "100%" in drawn
