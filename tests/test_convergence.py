"""Training that fits the data and says when it failed: epochs="auto", the decoder's start at the data's
mean on small data, and the fit warnings of aekit.health (fit_warnings_, the CLI, the demo report)."""

import math
import warnings

import numpy as np
import pytest
import torch

from aekit import Autoencoder, SupervisedAutoencoder, TrainingWarning, health, load
from aekit import base as base_module
from aekit.metrics import saturated_fraction
from aekit.modules import build_net, start_at_mean_
from aekit.training import AUTO_EPOCHS, AUTO_MAX_EPOCHS, AUTO_MIN_STEPS, auto_epochs, small_data

from .conftest import ROOT

TINY = dict(hidden_layer_sizes=(16,), random_state=0, device="cpu")
TINY_SAE = dict(TINY, head_layer_sizes=(8,))


def _digits(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X[:n] / 16).astype(np.float32), y[:n]


# ----------------------------------------------------------------------------- epochs="auto"


def test_auto_epochs_keep_the_reference_length_on_mnist_sized_data():
    assert auto_epochs(60_000, 128) == AUTO_EPOCHS == 20  # the reference recipe: 9,380 steps
    assert auto_epochs(54_000, 128) == 20  # MNIST with a 10% validation split
    assert not small_data(60_000, 128) and not small_data(54_000, 128)
    assert 20 * math.ceil(54_000 / 128) >= AUTO_MIN_STEPS  # why: the floor lies below the reference's steps


def test_auto_epochs_give_small_data_a_floor_of_steps():
    epochs = auto_epochs(1257, 128)  # digits' training split: 10 steps per epoch
    assert epochs > 20 and epochs * 10 >= AUTO_MIN_STEPS
    assert (epochs - 1) * 10 < AUTO_MIN_STEPS  # no more than the floor needs
    assert auto_epochs(105, 128) == AUTO_MAX_EPOCHS  # one step per epoch: capped
    assert auto_epochs(1257, 1) == 20  # batch 1: 25,140 steps in 20 epochs
    assert small_data(1257, 128) and not small_data(1257, 1)


def test_fit_resolves_auto_and_keeps_explicit_epochs(capsys):
    X, _ = _digits(200)
    est = Autoencoder(**TINY, batch_size=200, verbose=2).fit(X)  # one step per epoch
    assert est.epochs == "auto" and est.epochs_ == auto_epochs(200, 200) == est.n_iter_
    assert len(est.history_["loss"]) == est.epochs_
    assert f"epoch 1/{est.epochs_} " in capsys.readouterr().err  # the verbose lines count to the resolved length
    assert Autoencoder(**TINY, epochs=3).fit(X).epochs_ == 3


def test_the_plan_counts_the_resolved_steps(monkeypatch):
    seen = {}
    original = base_module.plan

    def spy(**kwargs):
        seen.update(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(base_module, "plan", spy)
    X, _ = _digits(200)
    est = Autoencoder(**TINY, batch_size=100, callbacks=[lambda epoch, logs: True]).fit(X)  # plans, then stops
    assert est.n_iter_ == 1 and seen["steps"] == est.epochs_ * 2 == auto_epochs(200, 100) * 2


def test_auto_epochs_resume_from_a_checkpoint_and_round_trip_a_model_file(tmp_path):
    X, _ = _digits(200)
    ck = tmp_path / "ck.safetensors"
    stop = Autoencoder(**TINY, batch_size=200, checkpoint_path=str(ck), callbacks=[lambda epoch, logs: epoch == 1])
    stop.fit(X)
    assert stop.n_iter_ == 2 and stop.stop_reason_ == "callback"
    resumed = Autoencoder(**TINY, batch_size=200).fit(X, resume_from=ck)
    assert resumed.n_iter_ == resumed.epochs_ == auto_epochs(200, 200)
    resumed.save(tmp_path / "m.safetensors")
    loaded = load(tmp_path / "m.safetensors")
    assert loaded.epochs == "auto" and loaded.epochs_ == resumed.epochs_
    assert loaded.fit_warnings_ == resumed.fit_warnings_


def test_golden_model_files_get_epochs_from_their_parameters():
    for path in sorted((ROOT / "tests" / "golden").glob("*.safetensors")):
        if "checkpoint" in path.name:
            continue
        est = load(path)
        assert est.epochs_ == est.epochs and isinstance(est.epochs, int), path.name


def test_the_cli_flag_takes_auto():
    from aekit.cli import build_parser

    train = build_parser()
    assert train.parse_args(["train", "--out", "o", "--epochs", "auto"]).epochs == "auto"
    assert train.parse_args(["train", "--out", "o", "--epochs", "7"]).epochs == 7
    with pytest.raises(SystemExit):
        train.parse_args(["train", "--out", "o", "--epochs", "many"])


# ----------------------------------------------------------------------------- the start at the mean


@pytest.mark.parametrize("output_activation", ["sigmoid", "linear"])
def test_start_at_mean_makes_the_untrained_decoder_output_the_mean(output_activation):
    mean = torch.linspace(0.05, 0.95, 12)
    torch.manual_seed(0)
    net = build_net(n_features=12, hidden_layer_sizes=(8,), output_activation=output_activation)
    start_at_mean_(net, mean)
    # a zero code goes through tanh layers with zero biases as zeros: the output is the output bias
    torch.testing.assert_close(net.decode(torch.zeros(1, 2))[0], mean)


def test_start_at_mean_of_a_conv_decoder_is_per_channel():
    torch.manual_seed(0)
    net = build_net(n_features=2 * 8 * 8, architecture="conv", n_components=None, image_shape=(2, 8, 8))
    start_at_mean_(net, torch.cat([torch.full((64,), 0.2), torch.full((64,), 0.7)]))
    assert torch.sigmoid(net.decoder[-2].bias).tolist() == pytest.approx([0.2, 0.7])


def test_only_small_data_starts_at_the_mean(monkeypatch):
    """The MNIST reference recipe keeps Keras' zero output biases: its seeded numbers do not change."""
    calls = []
    monkeypatch.setattr(base_module, "start_at_mean_", lambda net, mean: calls.append(mean.shape))
    largest_small = (math.ceil(AUTO_MIN_STEPS / AUTO_EPOCHS) - 1) * 128
    stop_at_once = [lambda epoch, logs: True]
    X = np.random.default_rng(0).uniform(size=(largest_small + 1, 4)).astype(np.float32)
    params = dict(hidden_layer_sizes=(4,), epochs=1, batch_size=128, callbacks=stop_at_once, device="cpu")
    Autoencoder(**params).fit(X[:largest_small])
    assert calls == [(4,)]
    Autoencoder(**params).fit(X)
    assert calls == [(4,)]  # not small: no call


@pytest.mark.parametrize("seed", [1, 3])
def test_small_data_codes_do_not_run_into_a_corner(seed):
    """The cause of the chance-level SAE seeds: with zero output biases, RMSprop's first steps drive every
    code of these seeds into one corner of the tanh box within a few steps (the codes never leave it)."""
    X, y = _digits()
    sae = SupervisedAutoencoder(epochs=2, random_state=seed, device="cpu").fit(X[:1280], y[:1280])  # 20 steps
    Z = sae.transform(X)
    assert saturated_fraction(Z, (-1.0, 1.0), every=True) < 0.5
    assert Z.std(axis=0).min() > 0.05


@pytest.mark.slow
def test_defaults_converge_on_every_seed_of_small_data():
    from sklearn.model_selection import train_test_split

    X, y = _digits()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    for seed in range(10):
        sae = SupervisedAutoencoder(random_state=seed, device="cpu").fit(Xtr, ytr)
        assert sae.score(Xte, yte) > 0.85 and sae.fit_warnings_ == [], seed


# ----------------------------------------------------------------------------- the warnings


def test_head_at_chance():
    y = np.arange(100) % 4
    assert "stays at chance" in health.head_at_chance(y, np.zeros(100, dtype=int))
    assert health.head_at_chance(y, y) is None
    assert health.head_at_chance(np.full(10, -1), np.zeros(10, dtype=int)) is None  # nothing labelled


def _tfidf_like(n: int = 300, vocabulary: int = 400) -> np.ndarray:
    """Rows of three topics' word counts weighted by inverse document frequency, unit length: sparse, in [0, 1]."""
    rng = np.random.default_rng(0)
    X = np.zeros((n, vocabulary), np.float32)
    topic_words = vocabulary * 3 // 10
    for i in range(n):
        t = i % 3
        words = rng.choice(np.r_[t * topic_words : (t + 1) * topic_words, 3 * topic_words : vocabulary], size=20)
        np.add.at(X[i], words, 1.0)
    X *= np.log(n / (1 + (X > 0).sum(0)))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_sparse_data_that_stall_rmsprop_get_advice_that_works():
    # a user's TF-IDF rows: the reference recipe's RMSprop stayed on the plateau (at any learning rate tried),
    # and the warning's advice then was only "train longer"; Adam leaves it
    X = _tfidf_like()
    common = {"random_state": 0, "hidden_layer_sizes": (64, 16), "epochs": 60}
    with pytest.warns(TrainingWarning, match=r"starting plateau.*try optimizer='adam' \(RMSprop can stall on sparse"):
        Autoencoder(**common).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)
        assert Autoencoder(**common, optimizer="adam").fit(X).fit_warnings_ == []
    dense = health.reconstruction_plateau(
        np.full((4, 3), 0.5, np.float32) + np.eye(4, 3, dtype=np.float32) * 0.1,
        np.zeros((4, 3), np.float32),
        "bce",
        "sigmoid",
        "rmsprop",
    )
    assert "starting plateau" in dense and "adam" not in dense  # not sparse data: Adam is not the advice


def test_training_warnings_are_shown_by_the_writing_rank_only(monkeypatch):
    # under torchrun every rank judged its fit and printed the same warning once per rank
    X = _tfidf_like()
    monkeypatch.setattr("aekit.distributed.is_writer", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)
        est = Autoencoder(random_state=0, hidden_layer_sizes=(64, 16), epochs=60).fit(X)
    assert any("starting plateau" in w for w in est.fit_warnings_)  # still judged and kept on every rank


@pytest.mark.parametrize("loss, output_activation", [("bce", "sigmoid"), ("mse", "linear"), ("l1", "sigmoid")])
def test_reconstruction_plateau(loss, output_activation):
    X = np.random.default_rng(0).uniform(size=(50, 6)).astype(np.float32)
    as_logits = health._as_logits
    mean = np.broadcast_to(X.mean(0), X.shape)
    assert "starting plateau" in health.reconstruction_plateau(
        X, as_logits(mean, output_activation), loss, output_activation
    )
    halfway = as_logits((X + mean) / 2, output_activation)
    assert health.reconstruction_plateau(X, halfway, loss, output_activation) is None
    constant = np.ones((5, 3), np.float32) * 0.5  # nothing to learn: no warning
    assert (
        health.reconstruction_plateau(constant, as_logits(constant, output_activation), loss, output_activation) is None
    )


def test_codes_on_corners():
    rng = np.random.default_rng(0)
    corners = np.sign(rng.normal(size=(100, 2)))
    assert "corner of the tanh code" in health.codes_on_corners(corners, "tanh")
    assert health.codes_on_corners(rng.uniform(-0.9, 0.9, size=(100, 2)), "tanh") is None
    edges = np.column_stack([np.sign(rng.normal(size=100)), rng.uniform(-0.9, 0.9, size=100)])
    assert health.codes_on_corners(edges, "tanh") is None  # on an edge, one coordinate still varies
    assert health.codes_on_corners(corners, None) is None  # unbounded (VAE means, linear codes)
    assert "sigmoid" in health.codes_on_corners((corners + 1) / 2, "sigmoid")


def test_a_failed_fit_warns_once_per_kind_and_stores_the_warnings(tmp_path):
    X, y = _digits(300)
    with pytest.warns(TrainingWarning) as caught:
        sae = SupervisedAutoencoder(**TINY_SAE, epochs=1, learning_rate=1e-7).fit(X, y)
    messages = [str(w.message) for w in caught if w.category is TrainingWarning]
    assert len(messages) == len(set(messages)) == len(sae.fit_warnings_) == 2
    assert "stays at chance" in messages[0] and "starting plateau" in messages[1]
    assert caught[0].filename == __file__  # points at the caller's fit
    sae.save(tmp_path / "m.safetensors")
    assert load(tmp_path / "m.safetensors").fit_warnings_ == sae.fit_warnings_


def test_a_healthy_fit_is_silent():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=300)
    centres = rng.uniform(0.1, 0.9, size=(3, 10))
    X = np.clip(centres[y] + rng.normal(scale=0.05, size=(300, 10)), 0, 1).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)
        sae = SupervisedAutoencoder(**TINY_SAE, batch_size=300).fit(X, y)
    assert sae.fit_warnings_ == []


def test_the_cli_shows_aekit_warnings_as_one_line(monkeypatch):
    from aekit import cli

    restore = cli._one_line_warnings()
    try:
        inside = str(ROOT / "src" / "aekit" / "commands.py")
        text = warnings.formatwarning("the head stays at chance", TrainingWarning, inside, 12, "est.fit(X, y)")
        assert text == "aekit: warning: the head stays at chance\n"
        other = warnings.formatwarning("deprecated", DeprecationWarning, inside, 12)
        assert other.startswith(inside)  # other kinds keep Python's format
    finally:
        restore()
    assert warnings.formatwarning("x", TrainingWarning, __file__, 1, "").startswith(__file__)


def test_the_demo_report_lists_the_warnings():
    from aekit.demo import _warnings_note

    assert _warnings_note([]) == ""
    note = _warnings_note(["dense AE: the reconstruction has not left its starting plateau"])
    assert "**Training warnings**" in note and "> - dense AE: the reconstruction" in note


def test_rows_that_are_all_alike_are_told():
    # a model of one constant column trained without a word; every code was one point
    with pytest.warns(TrainingWarning, match=r"all 40 training rows checked are the same"):
        Autoencoder(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(np.full((40, 1), 3.0, np.float32))
    assert health.rows_alike(np.eye(3, dtype=np.float32)) is None


def test_a_small_gain_is_no_plateau_where_pca_of_the_code_s_size_gains_no_more():
    # count-like data: two numbers reconstruct little of 300 noisy features, yet codes that gain what PCA(2)
    # gains were good (k-NN 99.9% in a trial); the warning fired on every such fit, whatever the scale
    rng = np.random.default_rng(0)
    X = np.clip(0.5 + 0.05 * rng.standard_normal((400, 300)) + 0.005 * rng.standard_normal((400, 1)), 0, 1)
    X = X.astype(np.float32)
    linear = health._pca_reconstruction(X, 2)
    mean = np.broadcast_to(X.mean(0), X.shape)
    logits = health._as_logits
    assert "starting plateau" in health.reconstruction_plateau(X, logits(linear, "sigmoid"), "bce", "sigmoid")
    assert health.reconstruction_plateau(X, logits(linear, "sigmoid"), "bce", "sigmoid", n_components=2) is None
    stuck = health.reconstruction_plateau(X, logits(mean, "sigmoid"), "bce", "sigmoid", n_components=2, scale="minmax")
    assert "starting plateau" in stuck and "scale='standard'" in stuck  # not the scale already in use
    corners = np.sign(rng.normal(size=(100, 2)))
    assert "scale='standard'" in health.codes_on_corners(corners, "tanh", None)
    assert "standardise" not in health.codes_on_corners(corners, "tanh", "standard")


def test_a_vae_whose_prior_samples_decode_inverted_is_told(monkeypatch):
    """A trial's VAE after 5 epochs decoded 22-33% of its prior samples with a white background, unsaid."""
    rng = np.random.default_rng(0)
    dark = rng.random((50, 16)) * 0.3  # training images: dark backgrounds
    assert health.samples_inverted(dark, rng.random((100, 16)) * 0.3) is None
    bright = np.vstack([rng.random((90, 16)) * 0.3, 0.9 + rng.random((10, 16)) * 0.1])
    note = health.samples_inverted(dark, bright)
    assert note is not None and note.startswith("10% of samples drawn from the prior decode far brighter than every")
    seen = []
    real = health.samples_inverted
    monkeypatch.setattr(health, "samples_inverted", lambda X, d: seen.append(d.shape) or real(X, d))
    X = rng.random((64, 64)).astype(np.float32)  # 8 x 8 images
    vae = {"variational": True, "hidden_layer_sizes": (8,), "n_components": 2, "epochs": 1, "random_state": 0}
    Autoencoder(**vae).fit(X)
    assert seen == [(health.PRIOR_DRAWS, 64)]  # a VAE of images in [0, 1] decodes its prior samples
    Autoencoder(hidden_layer_sizes=(8,), n_components=2, epochs=1, random_state=0).fit(X)
    Autoencoder(**vae).fit(X[:, :20])  # rows that are no images (a review: one-hot tables were told "inverted")
    assert len(seen) == 1
    one_hot = np.eye(5)[rng.integers(0, 5, 200)]  # every row equally bright: brightness says nothing
    assert health.samples_inverted(one_hot, rng.random((100, 5))) is None
