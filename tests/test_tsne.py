"""ParametricTSNE and its pieces (aekit.tsne, objectives.tsne_loss): small data, seconds each."""

import inspect
import json
import re
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.manifold import trustworthiness

import aekit
from aekit import ParametricTSNE, TrainingWarning, load
from aekit._utils import InputError, ModelFileError
from aekit.cli import main
from aekit.metrics import evaluate_model
from aekit.objectives import student_t_log_kernel, tsne_loss
from aekit.params import NOT_TSNE, PARAMS, TSNE_DEFAULTS, tsne_params, validate
from aekit.tsne import NeighbourGraph, conditional_affinities, cumulative, label_affinities

FAST = dict(
    hidden_layer_sizes=(32,),
    epochs=8,
    batch_size=64,
    perplexity=10.0,
    early_exaggeration_epochs=2,
    learning_rate=0.01,
    random_state=0,
    device="cpu",
)


@pytest.fixture
def clusters():
    """Five well separated Gaussian clusters in 20-D, 300 points (values unscaled: t-SNE takes any range)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 6, size=(5, 20))
    y = np.repeat(np.arange(5), 60)
    X = (centers[y] + rng.standard_normal((300, 20))).astype(np.float32)
    return X, y


# ---------------------------------------------------------------- the parameter table


def _doc_params(cls: type) -> dict[str, str]:
    doc = inspect.cleandoc(cls.__doc__)
    section = re.search(r"^Parameters\n-+\n(.*?)(?=^\w[^\n]*\n-+\n|\Z)", doc, re.M | re.S)
    assert section is not None
    return {m[1]: m[2] for m in re.finditer(r"^(\w+) : (.*)$", section.group(1), re.M)}


def test_signature_docstring_and_table_agree():
    signature = inspect.signature(ParametricTSNE.__init__).parameters
    assert sorted(set(signature) - {"self"}) == sorted(tsne_params())
    assert not set(NOT_TSNE) & set(signature)
    for name in tsne_params():  # the table's default, or the t-SNE recipe's where it differs
        assert signature[name].default == TSNE_DEFAULTS.get(name, PARAMS[name].default), name
    documented = _doc_params(ParametricTSNE)
    # its own parameters and the defaults that differ from Autoencoder's are documented here
    assert {p.name for p in PARAMS.values() if p.tsne} | set(TSNE_DEFAULTS) <= set(documented)
    for name, spec in documented.items():
        default = spec.partition(", default=")[2]
        assert default and eval(default) == signature[name].default, name
    assert "all other parameters as in ``Autoencoder``" in ParametricTSNE.__doc__
    validate(ParametricTSNE().get_params())
    assert "perplexity" not in aekit.Autoencoder().get_params()


@pytest.mark.parametrize(
    "params, param",
    [
        ({"perplexity": 0}, "perplexity"),
        ({"dof": -1.0}, "dof"),
        ({"early_exaggeration": 0.5}, "early_exaggeration"),
        ({"early_exaggeration_epochs": -1}, "early_exaggeration_epochs"),
        ({"exaggeration": float("nan")}, "exaggeration"),
    ],
)
def test_bad_parameters_name_themselves(clusters, params, param):
    with pytest.raises(InputError) as info:
        ParametricTSNE(**{**FAST, **params}).fit(clusters[0])
    assert info.value.param == param


# ---------------------------------------------------------------- pieces


def test_kernel_and_loss():
    d2 = torch.tensor([0.0, 1.0, 4.0])
    assert torch.allclose(student_t_log_kernel(d2, 1.0), -torch.log1p(d2))  # t-SNE's Cauchy kernel
    z = torch.randn(64, 2)
    near, far = tsne_loss(z, z + 0.01, 1.0), tsne_loss(z, z + 5.0, 1.0)
    assert near["attraction"] < far["attraction"]
    spread = tsne_loss(10 * z, 10 * z + 0.01, 1.0)
    assert spread["repulsion"] < near["repulsion"]  # points far apart repel less
    ex = tsne_loss(z, z + 1.0, 1.0, exaggeration=4.0)
    assert torch.allclose(ex["loss"], 4 * ex["attraction"] + ex["repulsion"])
    one = tsne_loss(z[:1], z[:1] + 1, 1.0)
    assert torch.isfinite(one["loss"])


def test_affinities_and_draws_follow_p(clusters):
    X, y = clusters
    order = np.argsort(np.arange(300) % 6 == 0, kind="stable")  # every 6th point validates: training rows first
    X, y = X[order], y[order]
    nbrs, probs = conditional_affinities(X[:250], X[250:], 10.0, random_state=0)
    assert nbrs.shape == probs.shape == (300, 30)
    assert np.allclose(probs.sum(1), 1, atol=1e-5) and nbrs.max() < 250  # neighbours are training points
    assert np.mean(y[nbrs] == y[:, None]) > 0.95  # from the same cluster
    graph = NeighbourGraph(
        torch.from_numpy(X),
        torch.from_numpy(nbrs),
        torch.from_numpy(cumulative(probs)),
        None,
        torch.tensor(1.0),
    )
    rows = torch.zeros(20000, dtype=torch.int64)  # point 0, drawn many times
    counts = np.bincount(graph.draw(rows).numpy(), minlength=250)[nbrs[0]]
    assert np.allclose(counts / 20000, probs[0], atol=0.02)


def test_label_affinities_remove_pairs_across_classes():
    neighbours = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])
    probs = np.array([[0.5, 0.3, 0.2], [0.6, 0.2, 0.2], [0.4, 0.4, 0.2], [1 / 3, 1 / 3, 1 / 3]], dtype=np.float32)
    y = np.array([0, 0, 1, -1])  # point 3 unlabelled
    full = label_affinities(neighbours, probs, y, 1.0)
    assert np.allclose(full.sum(1), 1)
    assert np.allclose(full[0], [0.5 / 0.7, 0, 0.2 / 0.7])  # 0 -> 2 crosses classes; 0 -> 3 is unlabelled
    assert np.allclose(full[2], [0, 0, 1])  # only the unlabelled neighbour is left
    assert np.allclose(full[3], probs[3])  # an unlabelled point's pairs are left alone
    half = label_affinities(neighbours, probs, y, 0.5)
    assert np.allclose(half[0], np.array([0.5, 0.15, 0.2]) / 0.85)
    assert np.allclose(label_affinities(neighbours, probs, y, 0.0), probs)
    alone = label_affinities(np.array([[1], [0]]), np.ones((2, 1), np.float32), np.array([0, 1]), 1.0)
    assert np.allclose(alone, 1)  # every neighbour of another class: the row keeps its own (nothing else to draw)


# ---------------------------------------------------------------- the estimator


def test_fit_transform_shapes_and_the_loss_falls(clusters):
    X, y = clusters
    m = ParametricTSNE(**FAST).fit(X)
    Z = m.transform(X)
    assert Z.shape == (300, 2) and Z.dtype == np.float32
    assert np.allclose(m.fit_transform(X), ParametricTSNE(**FAST).fit(X).transform(X))  # same seed, same map
    kl = [a + r for a, r in zip(m.history_["attraction"], m.history_["repulsion"], strict=True)]
    assert kl[-1] < min(kl[0], kl[FAST["early_exaggeration_epochs"]] - 0.03)  # t-SNE's KL (up to a constant) falls
    assert m.history_["loss"][-1] == pytest.approx(kl[-1])  # no exaggeration at the end
    assert list(m.get_feature_names_out()) == ["parametrictsne0", "parametrictsne1"]
    assert not m.net_.has_decoder
    with pytest.raises(AttributeError, match="reconstruction_weight"):
        m.inverse_transform(Z)


def test_neighbours_preserved_better_than_random(clusters):
    X, y = clusters
    Z = ParametricTSNE(**FAST).fit(X).transform(X)
    random = np.random.default_rng(0).standard_normal((300, 2))
    assert trustworthiness(X, Z, n_neighbors=5) > trustworthiness(X, random, n_neighbors=5) + 0.2
    from aekit.metrics import knn_cv_accuracy

    assert knn_cv_accuracy(Z, y) > 0.9


def test_reconstruction_and_labels(clusters, tmp_path):
    X, y = clusters
    X = (X - X.min()) / (X.max() - X.min())
    semi = np.where(np.arange(300) % 5 == 0, y, -1)  # 20% labelled
    m = ParametricTSNE(**{**FAST, "reconstruction_weight": 1.0, "validation_fraction": 0.2}).fit(X, semi)
    assert {"reconstruction", "classification", "val_loss", "val_accuracy"} <= set(m.history_)
    assert list(m.classes_) == [0, 1, 2, 3, 4]
    assert m.inverse_transform(m.transform(X[:4])).shape == (4, 20)
    metrics = evaluate_model(m, X, y, X, y)
    assert "reconstruction_mse" in metrics and "trustworthiness" in metrics
    path = m.save(tmp_path / "m.safetensors")
    back = load(path)
    assert type(back) is ParametricTSNE and back.get_params() == {**m.get_params(), "device": "cpu"}
    assert np.array_equal(back.transform(X), m.transform(X)) and list(back.classes_) == list(m.classes_)
    assert np.allclose(back.inverse_transform(back.transform(X[:3])), m.reconstruct(X[:3]), atol=1e-6)
    # the head predicts; score and the metrics leave the unlabelled samples out
    assert back.predict(X[:5]).shape == (5,) and back.predict_proba(X[:5]).shape == (5, 5)
    labelled = semi != -1
    head = float(np.mean(m.predict(X)[labelled] == semi[labelled]))
    assert m.score(X, semi) == pytest.approx(head)
    assert evaluate_model(m, X, semi)["head_accuracy"] == pytest.approx(head)
    # refitted without labels: no head, no classes, no predict (the reason in the message)
    m2 = clone(m).set_params(reconstruction_weight=0.0, validation_fraction=0.0).fit(X)
    assert not hasattr(m2, "classes_") and m2.net_.head is None
    assert not hasattr(m2, "predict") and "head_accuracy" not in evaluate_model(m2, X, y)
    with pytest.raises(AttributeError) as raised:
        m2.predict(X)
    assert "fitted without labels; fit(X, y)" in str(raised.value)  # the reason and the fix, on top
    # and no decoder: inverse_transform and its kin are absent (a trial: they existed and raised InputError)
    for name in ("inverse_transform", "reconstruct", "score_samples", "reconstruction_error"):
        assert hasattr(m, name) and not hasattr(m2, name)
    with pytest.raises(AttributeError, match="fitted with reconstruction_weight=0; fit it with reconstruction_weight"):
        m2.inverse_transform(m2.transform(X[:2]))
    assert not hasattr(ParametricTSNE(reconstruction_weight="a"), "inverse_transform")  # fit names the bad value
    with pytest.raises(InputError):  # a labelled refit that fails before training leaves no head to predict with
        clone(m2).set_params(reconstruction_weight=1.0, loss="bce").fit(X * 10, y)
    failed = m2.set_params(reconstruction_weight=1.0, loss="bce")
    with pytest.raises(InputError):
        failed.fit(X * 10, y)
    assert not hasattr(failed, "predict")


@pytest.mark.filterwarnings("ignore::aekit.TrainingWarning")  # no head weight: the head stays at chance
def test_target_weight_separates_labels_the_neighbours_mix():
    rng = np.random.default_rng(0)
    y = np.arange(300) % 2
    X = rng.standard_normal((300, 20)).astype(np.float32)
    X[:, 1] += 2 * y - 1  # the labels' direction is one of twenty: many input neighbours mix them
    from aekit.metrics import knn_cv_accuracy

    def separation(target_weight: float) -> float:
        params = {**FAST, "epochs": 40, "classification_weight": 0.0, "target_weight": target_weight}
        m = ParametricTSNE(**params).fit(X, y)
        return knn_cv_accuracy(m.transform(X), y)

    assert separation(1.0) > separation(0.0) + 0.05


def test_encoder_only_map_saves_and_loads(clusters, tmp_path):
    X, _ = clusters
    m = ParametricTSNE(**FAST).fit(X)
    back = load(m.save(tmp_path / "m.safetensors"))
    assert np.array_equal(back.transform(X), m.transform(X))
    assert "reconstruction_mse" not in evaluate_model(back, X)


def test_unbounded_input_is_fine_without_a_decoder(clusters):
    X, _ = clusters
    assert X.min() < 0 and X.max() > 1  # BCE's [0, 1] rule applies to a decoder only
    ParametricTSNE(**{**FAST, "epochs": 1}).fit(X)
    with pytest.raises(InputError, match=r"needs X in \[0, 1\]"):
        ParametricTSNE(**{**FAST, "epochs": 1, "reconstruction_weight": 1.0, "loss": "bce"}).fit(X)
    m = ParametricTSNE(**{**FAST, "epochs": 1, "reconstruction_weight": 1.0}).fit(X)  # "auto": MSE on a linear output
    assert (m.loss_, m.output_activation_) == ("mse", "linear")
    assert m.inverse_transform(m.transform(X[:5])).shape == (5, X.shape[1])


def test_scale_standard_reaches_the_map_and_the_reconstruction(clusters):
    X, _ = clusters
    shifted = X * 1000 + 5  # the same points in other units: the standardised map is the same
    a = ParametricTSNE(**{**FAST, "epochs": 1, "reconstruction_weight": 1.0, "scale": "standard"})
    b = ParametricTSNE(**{**FAST, "epochs": 1, "reconstruction_weight": 1.0, "scale": "standard"})
    np.testing.assert_allclose(a.fit_transform(X), b.fit_transform(shifted), rtol=1e-3, atol=1e-3)
    assert abs(b.reconstruct(shifted).mean() - shifted.mean()) < 0.5 * shifted.std()  # in the user's units


def test_exaggeration_schedule_reaches_the_loss(clusters):
    X, _ = clusters
    seen = []
    m = ParametricTSNE(**{**FAST, "epochs": 4, "early_exaggeration": 6.0, "early_exaggeration_epochs": 2})
    m.set_params(callbacks=[lambda epoch, logs: seen.append(logs["loss"] - logs["repulsion"] - logs["attraction"])])
    m.fit(X)
    a = m.history_["attraction"]
    assert seen == pytest.approx([5 * a[0], 5 * a[1], 0.0, 0.0], abs=1e-4)


# ---------------------------------------------------------------- bad input


def test_bad_inputs_are_clear_errors(clusters):
    X, _ = clusters
    with pytest.raises(
        InputError, match=r"perplexity=30.0 needs more than 90 samples.*lower it, to at most perplexity=16, or"
    ) as info:
        ParametricTSNE(**{**FAST, "perplexity": 30.0}).fit(X[:50])
    assert info.value.param == "perplexity"
    with pytest.raises(InputError, match="validation_fraction=0.9 leaves 30 training samples") as info:
        ParametricTSNE(**{**FAST, "validation_fraction": 0.9}).fit(X)
    assert info.value.param == "validation_fraction"
    with pytest.raises(InputError, match="found 3; pass more samples"):
        ParametricTSNE(**{**FAST, "perplexity": 1.0}).fit(X[:3])
    with pytest.raises(InputError, match="all 300 samples are identical"):
        ParametricTSNE(**FAST).fit(np.ones((300, 20), dtype=np.float32))
    bad = X.copy()
    bad[3, 4] = np.nan
    with pytest.raises(InputError, match=r"^X contains NaN \(1 value; the first at row 3, column 4\); .*SimpleImputer"):
        ParametricTSNE(**FAST).fit(bad)  # one line: not scikit-learn's paragraph
    with pytest.raises(InputError, match=r"no labelled samples \(all -1\); fit\(X\) without y"):
        ParametricTSNE(**FAST).fit(X, np.full(300, -1))


# ---------------------------------------------------------------- command line


def test_cli_train_embed_evaluate(tmp_path, clusters, capsys):
    X, y = clusters
    np.savez(tmp_path / "d.npz", X=X, y=y)
    out = tmp_path / "run"
    args = ["--epochs", "3", "--hidden-layer-sizes", "16", "--batch-size", "64", "--perplexity", "10"]
    assert main(["train", str(tmp_path / "d.npz"), "--out", str(out), "--method", "tsne", *args]) == 0
    assert len(json.loads((out / "history.json").read_text())["attraction"]) == 3
    model = str(out / "model.safetensors")
    assert type(load(model)) is ParametricTSNE and load(model).perplexity == 10.0
    assert main(["embed", model, str(tmp_path / "d.npz"), "--out", str(tmp_path / "z.npy")]) == 0
    assert np.allclose(np.load(tmp_path / "z.npy"), load(model).transform(X), atol=1e-5)
    d = str(tmp_path / "d.npz")
    assert main(["evaluate", model, d, "--train-data", d]) == 0
    assert "knn5_cv_accuracy" in capsys.readouterr().out  # the training file itself: cross-validated
    # visualize draws the map itself (it ran openTSNE on top of it: a trial's picture was 41 units off the map)
    assert main(["visualize", d, "--model", model, "--out", str(tmp_path / "v")]) == 0
    assert np.allclose(np.load(tmp_path / "v" / "embedding.npy"), load(model).transform(X), atol=1e-5)
    assert "parametric t-SNE, " in (tmp_path / "v" / "explore.html").read_text()
    assert "note:" not in capsys.readouterr().err
    # t-SNE flags that cannot act on a map are said to be unused (--compare's t-SNE from raw takes --perplexity)
    assert main(["visualize", d, "--model", model, "--out", str(tmp_path / "u"), "--perplexity", "5"]) == 0
    err = capsys.readouterr().err
    assert "note: --perplexity not used: " in err and "fitted with perplexity=10, and is drawn as it is" in err
    # the flag's default value, given: unused all the same (the map was fitted with perplexity 10)
    assert (
        main(["visualize", d, "--model", model, "--out", str(tmp_path / "u"), "--overwrite", "--perplexity", "30"]) == 0
    )
    assert "note: --perplexity not used: " in capsys.readouterr().err
    flags = ["--perplexity", "5", "--distances", "code", "--compare"]
    assert main(["visualize", d, "--model", model, "--out", str(tmp_path / "u"), "--overwrite", *flags]) == 0
    assert "note: --distances not used: " in capsys.readouterr().err
    assert main(["visualize", d, "--model", model, "--out", str(tmp_path / "w"), "--save-map"]) == 2
    assert "is a parametric t-SNE map already" in capsys.readouterr().err and not (tmp_path / "w").exists()
    sup = tmp_path / "sup"
    assert main(["train", d, "--out", str(sup), "--method", "tsne", "--supervised", *args]) == 0
    assert list(load(sup / "model.safetensors").classes_) == [0, 1, 2, 3, 4]
    capsys.readouterr()
    assert main(["train", d, "--out", str(tmp_path / "x"), "--perplexity", "5"]) == 2
    assert "only apply to --method tsne" in capsys.readouterr().err
    assert main(["train", d, "--out", str(tmp_path / "y"), "--method", "tsne", "--perplexity", "200"]) == 2
    assert "--perplexity 200.0 needs more than 600 samples" in capsys.readouterr().err


def _without_param(path, name: str) -> None:
    """Rewrite an aekit file as an earlier aekit wrote it: without the parameter ``name``."""
    from safetensors.torch import load_file, safe_open, save_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    params = json.loads(meta["params"])
    del params[name]
    save_file(load_file(str(path)), str(path), metadata={**meta, "params": json.dumps(params)})


def test_a_map_saved_before_target_weight_existed_loads_with_its_training_behaviour(clusters, tmp_path):
    X, y = clusters
    path = ParametricTSNE(**{**FAST, "epochs": 1}).fit(X, y).save(tmp_path / "m.safetensors")
    _without_param(path, "target_weight")
    assert load(path).target_weight == 0.0  # labels did not touch its affinities
    assert load(ParametricTSNE(**{**FAST, "epochs": 1}).fit(X, y).save(tmp_path / "n.safetensors")).target_weight == 1

    # a checkpoint of such a run resumes with the value its run had, not the new default
    ck = tmp_path / "ck.safetensors"
    stop = [lambda epoch, logs: epoch == 0]
    ParametricTSNE(**{**FAST, "epochs": 3}, checkpoint_path=str(ck), callbacks=stop).fit(X, y)
    _without_param(ck, "target_weight")
    with pytest.raises(ModelFileError, match="target_weight"):
        ParametricTSNE(**{**FAST, "epochs": 3}).fit(X, y, resume_from=ck)
    assert ParametricTSNE(**{**FAST, "epochs": 3}, target_weight=0.0).fit(X, y, resume_from=ck).n_iter_ == 3


def test_a_diverged_map_is_told():
    """A learning rate far too high blows the map up without an error: its t-SNE loss ends above the 0 of a
    map that puts every point on one spot, and the fit says so; a sound fit says nothing."""
    X = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    X[:100] += 4.0  # two groups: neighbours to learn
    small = dict(hidden_layer_sizes=(16,), perplexity=10, epochs=3, random_state=0)
    with pytest.warns(
        TrainingWarning, match=r"the t-SNE loss \(attraction \+ repulsion\) ended at [0-9.e+]+, no lower"
    ):
        bad = ParametricTSNE(**small, learning_rate=10.0).fit(X)
    assert any("learning_rate" in w for w in bad.fit_warnings_)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)
        good = ParametricTSNE(**small).fit(X)
    assert good.fit_warnings_ == [] and good.history_["attraction"][-1] + good.history_["repulsion"][-1] < 0


def test_an_untrained_map_is_told():
    """A learning rate far too low leaves the network's first map: its loss is below 0 (no divergence) but
    stays where the first epoch left it; a trained map's moves far more (a sound fit says nothing)."""
    from sklearn.datasets import load_digits

    X = (load_digits().data[:600] / 16).astype(np.float32)
    small = dict(hidden_layer_sizes=(16,), perplexity=10, epochs=20, random_state=0)
    with pytest.warns(TrainingWarning, match=r"stayed between -[0-9.]+ and -[0-9.]+ over 20 epochs: the map has"):
        still = ParametricTSNE(**small, learning_rate=1e-9).fit(X)
    assert len(still.fit_warnings_) == 1 and "raise learning_rate" in still.fit_warnings_[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)
        assert ParametricTSNE(**small).fit(X).fit_warnings_ == []


def test_a_map_fits_on_a_folder_of_images_and_keeps_their_shape(tmp_path):
    """ParametricTSNE.fit read a source (a folder of images) as an array and failed with a TypeError."""
    Image = pytest.importorskip("PIL.Image")
    from aekit.sources import ImageFolder

    rng = np.random.default_rng(0)
    for c in "ab":
        (tmp_path / c).mkdir()
        for i in range(30):
            Image.fromarray((rng.random((6, 10, 3)) * 255).astype(np.uint8)).save(tmp_path / c / f"{i}.png")
    folder = ImageFolder(tmp_path)
    tsne = ParametricTSNE(**{**FAST, "perplexity": 5.0}).fit(folder, folder.labels)
    assert tsne.image_shape_ == (3, 6, 10) and tsne.transform(folder).shape == (60, 2)


def test_augment_gives_a_supervised_map_new_images_of_its_points(clusters):
    X, y = clusters  # 20 features read as 4 x 5 images
    fit = [
        ParametricTSNE(**{**FAST, "augment": a, "image_shape": (4, 5)}).fit(X, y).transform(X)
        for a in ("affine", "affine", None)
    ]
    np.testing.assert_array_equal(fit[0], fit[1])  # same seed, same map
    assert not np.allclose(fit[0], fit[2])
    with pytest.raises(InputError, match="no square image"):
        ParametricTSNE(**{**FAST, "augment": "affine"}).fit(X, y)
