import warnings

import numpy as np
import pytest
import torch

from aekit import SupervisedAutoencoder
from aekit._utils import InputError
from aekit.objectives import add_noise, classification_loss, corrupt

from .conftest import SMALL


def test_fit_predict_string_labels(blobs):
    X, y = blobs
    names = np.array(["cat", "dog", "eel"])[y]
    sae = SupervisedAutoencoder(**{**SMALL, "epochs": 30}).fit(X, names)
    assert list(sae.classes_) == ["cat", "dog", "eel"]
    assert sae.predict(X).dtype == names.dtype
    assert sae.score(X, names) > 0.9  # separable blobs
    proba = sae.predict_proba(X)
    assert proba.shape == (180, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert sae.transform(X).shape == (180, 2)
    assert {"reconstruction", "classification", "loss"} <= set(sae.history_)


def test_semi_supervised_unlabelled_train_only_reconstruction(blobs):
    X, y = blobs
    y_partial = y.copy()
    y_partial[::2] = -1  # half unlabelled
    sae = SupervisedAutoencoder(**{**SMALL, "epochs": 30}).fit(X, y_partial)
    assert list(sae.classes_) == [0, 1, 2]  # -1 is not a class
    assert sae.score(X, y) > 0.9
    # the classification term ignores unlabelled rows entirely
    logits = torch.tensor([[5.0, 0.0], [0.0, 5.0]])
    assert float(classification_loss(logits, torch.tensor([0, -1]))) == pytest.approx(
        float(classification_loss(logits[:1], torch.tensor([0])))
    )
    assert float(classification_loss(logits, torch.tensor([-1, -1]))) == 0.0


def test_unlabelled_samples_are_left_out_of_accuracies(blobs):
    """score and evaluate_model count a -1 neither right nor wrong; all -1 is an error, not a zero."""
    from aekit.metrics import evaluate_model

    X, y = blobs
    sae = SupervisedAutoencoder(**{**SMALL, "epochs": 30}).fit(X, y)
    semi = np.where(np.arange(len(y)) % 3 == 0, -1, y)
    labelled = semi != -1
    right = sae.predict(X) == y
    assert sae.score(X, semi) == pytest.approx(right[labelled].mean())
    assert sae.score(X, semi) != pytest.approx(right.mean() * labelled.mean())  # not counting -1 as wrong
    text = np.array(["a", "b", "c"])[y]
    named = SupervisedAutoencoder(**SMALL).fit(X, text)
    named_right = named.predict(X) == text
    assert named.score(X, np.where(labelled, text, "-1")) == pytest.approx(named_right[labelled].mean())
    weight = np.where(np.arange(len(y)) % 2 == 0, 2.0, 1.0)  # sample_weight follows the kept samples
    kept = labelled.astype(float) * weight
    assert sae.score(X, semi, sample_weight=weight) == pytest.approx((right * kept).sum() / kept.sum())
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        sae.score(X, semi[:50])
    m = evaluate_model(sae, X, semi, X, semi)
    assert evaluate_model(sae, X, semi[:, None], X, semi[:, None]) == m  # a column of labels reads the same
    assert m["head_accuracy"] == pytest.approx(right[labelled].mean())
    full = evaluate_model(sae, X[labelled], y[labelled], X[labelled], y[labelled])
    assert m["knn5_cv_accuracy"] == pytest.approx(full["knn5_cv_accuracy"])  # -1 is no class of the code classifiers
    assert m["logistic_cv_accuracy"] == pytest.approx(full["logistic_cv_accuracy"])
    with pytest.raises(InputError, match="all 180 samples are unlabelled"):
        sae.score(X, np.full(len(y), -1))


def test_weights_control_the_loss_terms(blobs):
    X, y = blobs
    only_rec = SupervisedAutoencoder(**SMALL, classification_weight=0.0).fit(X, y)
    assert only_rec.history_["loss"] == pytest.approx(only_rec.history_["reconstruction"])


def test_head_dropout_is_in_the_head_only():
    sae = SupervisedAutoencoder(**{**SMALL, "head_dropout": 0.5}).fit(
        np.random.default_rng(0).uniform(size=(40, 6)).astype(np.float32), np.arange(40) % 2
    )
    assert any(isinstance(m, torch.nn.Dropout) for m in sae.net_.head.modules())
    assert not any(isinstance(m, torch.nn.Dropout) for m in sae.net_.encoder.modules())


@pytest.mark.parametrize(
    "y, match",
    [
        (np.arange(10) % 2, "y has 10 labels but X has 180 samples"),
        (np.zeros(180), "only one class"),
        (np.where(np.arange(180) == 3, np.nan, 1.0), "NaN"),
        (np.full(180, -1), "no labelled samples"),
        (np.linspace(0, 1, 180), "Unknown label type"),
        (None, "requires y to be passed"),
    ],
)
def test_bad_labels(blobs, y, match):
    X, _ = blobs
    with pytest.raises(InputError, match=match):
        SupervisedAutoencoder(**SMALL).fit(X, y)


def test_unknown_labels_at_score_time_count_as_errors(blobs):
    X, y = blobs
    sae = SupervisedAutoencoder(**{**SMALL, "epochs": 30}).fit(X, y)
    assert sae.score(X, np.full(180, 7)) == 0.0  # documented: labels never seen cannot be predicted


@pytest.mark.parametrize("kind", ["gaussian", "masking", "salt_pepper"])
def test_corruption_kinds(kind):
    X = np.full((50, 40), 0.5, np.float32)
    a = add_noise(X, kind, 0.3, random_state=0)
    assert np.array_equal(a, add_noise(X, kind, 0.3, random_state=0))  # deterministic
    assert not np.array_equal(a, add_noise(X, kind, 0.3, random_state=1))
    assert a.min() >= 0 and a.max() <= 1 and not np.array_equal(a, X)
    if kind != "gaussian":
        changed = np.mean(a != X)
        assert 0.2 < changed < 0.4  # factor 0.3 of the values hit
    t = torch.full((4, 4), 0.5)
    assert torch.equal(corrupt(t, kind, 0.0), t) or kind == "gaussian"


def test_label_minus_one_is_named_in_errors_and_warned_about(blobs):
    X, y = blobs
    with pytest.raises(InputError, match=r"only one class .*60 samples labelled -1 count as unlabelled; if -1 is a "):
        SupervisedAutoencoder(**SMALL).fit(X, np.where(y > 0, 1, -1))  # {-1, +1}: the fix is named
    with pytest.warns(UserWarning, match="negative labels besides -1"):
        est = SupervisedAutoencoder(**{**SMALL, "epochs": 1}).fit(X, y - 2)  # -2, -1, 0: -1 is "unlabelled"
    assert list(est.classes_) == [-2, 0]


def test_minus_one_as_common_as_a_class_is_warned_about_once(blobs, recwarn):
    X, y = blobs  # three classes of 60
    with pytest.warns(UserWarning, match=r"y: 60 samples have y == -1, no more than the largest class.*LabelEncoder"):
        SupervisedAutoencoder(**{**SMALL, "epochs": 1}).fit(X, y - 1)  # -1, 0, 1 (sentiment): -1 left out
    recwarn.clear()
    SupervisedAutoencoder(**{**SMALL, "epochs": 1}).fit(X, y - 1)  # once per process: not in every CV fold
    assert not [w for w in recwarn if "y == -1" in str(w.message)]
    few = np.where(np.arange(len(y)) % 10 == 0, -1, y)  # semi-supervised: most samples unlabelled
    many = np.where(np.arange(len(y)) % 10 == 0, y, -1)
    from aekit._utils import _WARNED

    _WARNED.clear()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="y: .* samples have y == -1")
        SupervisedAutoencoder(**{**SMALL, "epochs": 1}).fit(X, many)  # 162 unlabelled > 20 per class: silent
    with pytest.warns(UserWarning, match="y: 18 samples have y == -1"):
        SupervisedAutoencoder(**{**SMALL, "epochs": 1}).fit(X, few)


def test_a_classifier_alone_is_no_reconstruction_failure_and_no_loss_is_refused(blobs):
    X, y = blobs
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*reconstruction has not left")  # its decoder is off on purpose
        SupervisedAutoencoder(**{**SMALL, "epochs": 1, "reconstruction_weight": 0.0}).fit(X, y)
    with pytest.raises(InputError, match=r"reconstruction_weight=0.0 and classification_weight=0.0 are both 0"):
        SupervisedAutoencoder(**{**SMALL, "reconstruction_weight": 0.0, "classification_weight": 0.0}).fit(X, y)


def test_training_warnings_point_at_the_users_line_through_scikit_learn(blobs):
    from sklearn.model_selection import cross_val_score

    X, y = blobs
    with pytest.warns(Warning) as record:
        cross_val_score(SupervisedAutoencoder(**{**SMALL, "epochs": 1}), X, y - 1, cv=2)
    assert record and all(w.filename == __file__ for w in record), {w.filename for w in record}


def test_missing_text_labels_are_a_clear_error(blobs):
    X, y = blobs
    labels = np.array([f"c{v}" for v in y], dtype=object)
    labels[5] = None
    with pytest.raises(InputError, match="missing labels .* position 5"):
        SupervisedAutoencoder(**SMALL).fit(X, labels)
    labels[5] = float("nan")
    with pytest.raises(InputError, match="missing labels"):
        SupervisedAutoencoder(**SMALL).fit(X, labels)
    pd = pytest.importorskip("pandas")
    text = pd.Series([f"c{v}" for v in y], dtype="string")  # pandas' string column: pd.NA where a label is missing
    text[7] = pd.NA  # was "y mixes text and other values (NAType, str)"
    with pytest.raises(InputError, match="missing labels .* position 7; mark unlabelled samples with -1") as info:
        SupervisedAutoencoder(**SMALL).fit(X, text)
    fix = 'y.astype(object).fillna("-1")'  # the message's own fix works (a category column too)
    assert fix in str(info.value)
    for column in (text, text.astype("category")):
        sae = SupervisedAutoencoder(**{**SMALL, "epochs": 1}).fit(X, column.astype(object).fillna("-1"))
        assert list(sae.classes_) == ["c0", "c1", "c2"]
    numbers = pd.Series(y, dtype=float)
    numbers[3] = np.nan
    with pytest.raises(InputError, match=r"NaN or inf; .*y\.fillna\(-1\) in pandas"):
        SupervisedAutoencoder(**SMALL).fit(X, numbers)
    assert list(SupervisedAutoencoder(**{**SMALL, "epochs": 1}).fit(X, numbers.fillna(-1)).classes_) == [0, 1, 2]


@pytest.mark.parametrize("dtype", [str, object])
def test_text_minus_one_marks_unlabelled_samples_among_text_labels(blobs, dtype):
    """A CSV's text label column cannot hold the number -1: its text "-1" means unlabelled there too."""
    X, y = blobs
    names = np.array(["cat", "dog", "eel"])[y].astype(dtype)
    names[::2] = " -1" if dtype is object else "-1"
    sae = SupervisedAutoencoder(**{**SMALL, "epochs": 2}).fit(X, names)
    assert list(sae.classes_) == ["cat", "dog", "eel"]
    assert "-1" not in set(sae.predict(X))


def test_a_continuous_target_as_labels_is_told():
    """Nearly one class per sample (a regression target such as load_diabetes'): said once, not refused."""
    rng = np.random.default_rng(0)
    X = rng.random((60, 5)).astype(np.float32)
    y = np.arange(60) % 40  # 40 classes for 60 samples
    with pytest.warns(UserWarning, match="y holds 40 classes among 60 labelled samples, fewer than two per class"):
        SupervisedAutoencoder(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X, y)


def test_labels_of_numbers_beside_the_text_minus_one_and_mixed_labels():
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(0).random((6, 3)).astype(np.float32)
    est = SupervisedAutoencoder(hidden_layer_sizes=(2,), epochs=1, random_state=0)
    est.fit(X, pd.Series([0, 1, "-1", 1, 0, "-1"], dtype=object))  # '-1' marks unlabelled, the rest are numbers
    assert est.classes_.tolist() == [0, 1] and est.classes_.dtype.kind == "i"
    with pytest.raises(InputError, match=r"y mixes text and other values \(int, str\); give the labels one type"):
        est.fit(X, pd.Series([0, "a", "-1", 1, 0, "b"], dtype=object))


def test_minus_one_among_classes_named_by_words_is_not_asked_about(blobs):
    """A CSV's empty label cells become '-1' beside text classes: no class -1 to suspect (a trial's noise)."""
    from aekit._utils import _WARNED

    X, y = blobs
    words = np.array(["alpha", "beta", "gamma"], dtype=object)[y]
    words[::10] = "-1"
    _WARNED.clear()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="y: .* samples have y == -1")
        est = SupervisedAutoencoder(**{**SMALL, "epochs": 1}).fit(X, words)
    assert list(est.classes_) == ["alpha", "beta", "gamma"]
    digits = np.array(["0", "1", "2"], dtype=object)[y]  # numbers as text: -1 may be one of them
    digits[::10] = "-1"
    with pytest.warns(UserWarning, match="y: 18 samples have y == -1"):
        SupervisedAutoencoder(**{**SMALL, "epochs": 1}).fit(X, digits)


def test_a_label_that_usually_means_no_label_is_warned_of():
    """A trial's "unknown" rows became an 11th class that every test row was predicted as, with only a
    head-at-chance warning; only -1 marks an unlabelled row, and that is now said."""
    from aekit import SupervisedAutoencoder

    rng = np.random.default_rng(0)
    X = rng.random((60, 6)).astype(np.float32)
    y = np.array(["a", "b", "unknown"], dtype=object)[np.arange(60) % 3]
    with pytest.warns(UserWarning, match=r"20 samples are labelled 'unknown', learnt as a class; if that marks"):
        est = SupervisedAutoencoder(hidden_layer_sizes=(4,), epochs=1, random_state=7).fit(X, y)
    assert "unknown" in est.classes_


def test_minus_one_rows_apart_from_the_labelled_are_warned_about(blobs):
    """A trial: sentiment labels -1/0/1 with -1 the largest class lost that class without a word (score 0.90
    for an accuracy of 0.47): more -1 rows than any class, so the count rule above was silent."""
    from aekit import ParametricTSNE
    from aekit._utils import _WARNED

    X, y = blobs  # three separated classes of 60
    big = np.concatenate([X, X[y == 0] + 0.01])  # class 0 twice: 120 rows, the largest, labelled -1
    labels = np.concatenate([y, y[y == 0]]) - 1
    _WARNED.clear()
    with pytest.warns(UserWarning, match=r"y: the 120 samples with y == -1 sit apart from the labelled ones: 100%"):
        SupervisedAutoencoder(**{**SMALL, "epochs": 1}).fit(big, labels)
    _WARNED.clear()
    with pytest.warns(UserWarning, match="sit apart from the labelled ones"):
        ParametricTSNE(n_components=2, hidden_layer_sizes=(8,), epochs=1, perplexity=5, random_state=0).fit(big, labels)
    semi = np.where(np.arange(len(y)) % 10 == 0, y, -1)  # unlabelled at random: silent
    _WARNED.clear()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*sit apart")
        SupervisedAutoencoder(**{**SMALL, "epochs": 1}).fit(X, semi)
