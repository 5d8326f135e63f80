"""Arrays in, numbers out: how good is a reconstruction, how good is an embedding.

Reductions are stated: reconstruction BCE/MSE are the mean over samples and
features ("mean per pixel"); PSNR uses that MSE over the whole set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import trustworthiness as _sk_trustworthiness
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aekit._utils import InputError, as_float32, in_unit_range, is_uint8, looks_like_pixels, unlabelled
from aekit.scaling import apply as apply_scaler

_EPS = 1e-7  # Keras' clipping epsilon for BCE on probabilities

# the range of a saturating code activation: codes pressed against it carry little information
CODE_BOUNDS: dict[str, tuple[float, float]] = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
SATURATION_TOL = 0.01  # a coordinate within 1% of the half-range of a bound sits on it (tanh: |z| > 0.99)


def _pair(X: np.ndarray, X_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64. uint8 pixels (uint8 reaching 128, the estimators' rule) against values in [0, 1] (a
    model's reconstruction of them) or against pixels are compared in [0, 1], as the estimators read them (a
    trial's gave a PSNR of -38 dB); otherwise values as they are (a scale='pixels' model rebuilds 0-255, small
    uint8 numbers are numbers)."""
    a, b = np.asarray(X), np.asarray(X_hat)
    if looks_like_pixels(a) and looks_like_pixels(b):  # two sets of images: in [0, 1]
        a, b = a / 255.0, b / 255.0
    elif looks_like_pixels(a) != looks_like_pixels(b) and (is_uint8(a) != is_uint8(b)):
        other = b if is_uint8(a) else a
        if other.size and in_unit_range(float(np.nanmin(other)), float(np.nanmax(other))):
            a, b = (v / 255.0 if looks_like_pixels(v) else v for v in (a, b))
    X, X_hat = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if X.shape != X_hat.shape:
        raise InputError(f"X has shape {X.shape} but its reconstruction has shape {X_hat.shape}")
    return X, X_hat


def reconstruction_bce(X: np.ndarray, X_hat: np.ndarray) -> float:
    """Binary cross-entropy, mean per element; ``X_hat`` clipped to [1e-7, 1-1e-7] as Keras.

    Defined for targets ``X`` in [0, 1] only (an error otherwise: use ``reconstruction_mse``).
    """
    X, X_hat = _pair(X, X_hat)
    if X.size and not in_unit_range(X.min(), X.max()):  # NaN fails too
        raise InputError(
            f"reconstruction_bce needs X in [0, 1], found values in [{X.min():.4g}, {X.max():.4g}]; "
            "use reconstruction_mse (or psnr) for data on another scale"
        )
    p = np.clip(X_hat, _EPS, 1 - _EPS)
    return float(-np.mean(X * np.log(p) + (1 - X) * np.log(1 - p)))


def reconstruction_mse(X: np.ndarray, X_hat: np.ndarray) -> float:
    """Mean squared error, mean per element (uint8 pixels against values in [0, 1]: in [0, 1], see ``_pair``)."""
    X, X_hat = _pair(X, X_hat)
    return float(np.mean((X - X_hat) ** 2))


def neg_reconstruction_mse(estimator: Any, X: Any, y: Any = None) -> float:
    """Minus the mean squared error of ``estimator.reconstruct(X)``, in ``X``'s own units: a scorer.

    ``Autoencoder.score``, and so scikit-learn's default scoring of one; as ``scoring=`` it also
    scores a ``SupervisedAutoencoder`` or a map with a decoder by its reconstruction (their own
    ``score`` is accuracy). Every candidate is measured the same way, whatever its ``loss``,
    ``scale`` or ``beta`` (the reconstruction only: a VAE's KL term is left out, so it favours a small
    ``beta``). uint8 images are compared in [0, 1], whichever ``scale`` reads them. ``X`` is
    reconstructed ``SCORE_ROWS`` rows at a time, so it may be a file read in chunks (a memmap, HDF5, zarr).
    The mean of ``reconstruction_errors``.
    """
    return -float(reconstruction_errors(estimator, X).mean())


def neg_denoising_mse(
    noise: str = "gaussian", noise_factor: float = 0.4, random_state: int = 0
) -> Callable[..., float]:
    """A scorer that chooses denoisers by what they are for: minus the mean squared error between the clean
    ``X`` and the reconstruction of a noisy copy of it.

    ``scoring=neg_denoising_mse()`` in ``GridSearchCV``: the default score rebuilds clean inputs, so it
    prefers the least training noise (a trial's search over ``noise_factor`` picked 0, the worst denoiser).
    The noisy copy is the same for every candidate (``objectives.add_noise`` with these arguments and
    ``random_state``), made in ``X``'s units, uint8 images in [0, 1] as the estimators read them;
    for data far from [0, 1] give ``noise_factor`` in those units.
    """
    from aekit.objectives import add_noise

    def scorer(estimator: Any, X: Any, y: Any = None) -> float:
        from aekit.base import plain_numbers

        X = plain_numbers(X)  # a sparse matrix made dense; a DataFrame keeps its names for the estimator
        values = np.asarray(X)
        pixels = looks_like_pixels(values)  # uint8 images; small uint8 numbers stay numbers, as fit reads them
        clean = as_float32(values, pixels=True) if pixels else np.asarray(values, dtype=np.float32)
        noisy = add_noise(clean, noise, noise_factor, random_state=random_state)
        # uint8 images: a model that reads them as pixels takes [0, 1]; one that scales them (scale='pixels',
        # 'minmax', 'standard') reads and rebuilds 0-255
        unit = 255.0 if pixels and not getattr(estimator, "pixels_", True) else 1.0
        given: Any = noisy * unit
        if hasattr(X, "iloc"):  # pandas
            given = type(X)(given, columns=X.columns, index=X.index)
        rebuilt = np.asarray(estimator.reconstruct(given), dtype=np.float64).reshape(clean.shape) / unit
        return -float(np.mean((rebuilt - clean.astype(np.float64)) ** 2))

    return scorer


def reconstruction_errors(estimator: Any, X: Any) -> np.ndarray:
    """Each sample's mean squared reconstruction error in ``X``'s own units, shape ``(n_samples,)`` float64.

    Measured as ``neg_reconstruction_mse`` measures their mean (uint8 images in [0, 1]; ``X`` read
    ``SCORE_ROWS`` rows at a time). ``score_samples`` measures the same in the model's units (after
    ``scale``), where no feature outweighs the rest by its unit alone.
    """
    from aekit.base import _dense, _named_columns
    from aekit.sources import ArraySource, as_source

    source = as_source(X)  # a file (memmap, HDF5, zarr, folder of images): read a chunk at a time
    if source is None:
        X = _dense(X)  # a SciPy sparse X (np.asarray would make it one object)
    n = len(X) if source is None else source.n_samples
    if n == 0:  # no rows, no error to average: the estimator's own refusal of empty X, else ours
        estimator.reconstruct(X)
        raise InputError("X has 0 samples; the reconstruction error needs at least one")
    errors = np.empty(n, dtype=np.float64)
    for start in range(0, n, SCORE_ROWS):  # by chunks: no float64 copy of X and of its reconstruction
        stop = min(start + SCORE_ROWS, n)
        if source is not None:
            X_in = source.read(start, stop)
            part: Any = ArraySource(X_in, source.name)
        else:
            part = X.iloc[start:stop] if hasattr(X, "iloc") else X[start:stop]  # a DataFrame keeps its names
            X_in = np.asarray(part)
        X_hat = np.asarray(estimator.reconstruct(part), dtype=np.float64)
        # images compared in [0, 1] whoever scales them (scale=None, "pixels" or "minmax" alike); a table's named
        # uint8 columns are numbers, compared in their units
        if is_uint8(X_in) and not _named_columns(part):
            if not getattr(estimator, "pixels_", False):  # reconstructed in 0-255
                X_hat /= 255.0
            target = as_float32(X_in, pixels=True)
        else:
            target = X_in
        diff = np.asarray(target, dtype=np.float64).reshape(X_hat.shape) - X_hat
        errors[start:stop] = np.square(diff).reshape(stop - start, -1).mean(axis=1)
    return errors


#: rows of X reconstructed at a time by ``reconstruction_errors`` (a multiple of the encoder's batch of 4096)
SCORE_ROWS = 16384


def unit_range(X: np.ndarray) -> bool:
    """Whether every value of ``X`` lies in [0, 1] (images, min-max scaled data): BCE applies, PSNR's peak is 1."""
    X = np.asarray(X)
    return bool(X.size == 0 or in_unit_range(X.min(), X.max()))


def psnr(X: np.ndarray, X_hat: np.ndarray, data_range: float | str | None = "auto") -> float:
    """Peak signal-to-noise ratio in dB, from the MSE over the whole set.

    ``data_range``: the signal's peak-to-peak range. "auto": 255 for uint8 pixels ``X`` against a reconstruction
    in 0-255 (a ``scale='pixels'`` model's), else 1 (data in [0, 1], and uint8 pixels against a reconstruction
    in [0, 1], compared in [0, 1]); None takes ``X``'s own (its largest magnitude for constant data, 1 for zeros).
    """
    mse = reconstruction_mse(X, X_hat)
    if data_range == "auto":
        compared_in_0_255 = looks_like_pixels(X) and float(_pair(X, X_hat)[0].max(initial=0.0)) > 1.0
        data_range = 255.0 if compared_in_0_255 else 1.0
    if data_range is None:  # the data's range, as compared; for constant data its magnitude (or 1)
        Xa = _pair(X, X_hat)[0]
        data_range = float(np.ptp(Xa) or np.abs(Xa).max() or 1.0) if Xa.size else 1.0
    return float("inf") if mse == 0 else float(10 * np.log10(float(data_range) ** 2 / mse))


def knn_accuracy(Z_train: np.ndarray, y_train: np.ndarray, Z_test: np.ndarray, y_test: np.ndarray, k: int = 5) -> float:
    """Accuracy of a k-NN classifier fitted on train codes and scored on test codes."""
    return float(KNeighborsClassifier(n_neighbors=k).fit(Z_train, y_train).score(Z_test, y_test))


def linear_accuracy(Z_train: np.ndarray, y_train: np.ndarray, Z_test: np.ndarray, y_test: np.ndarray) -> float:
    """Accuracy of a (standardised) logistic regression fitted on train codes, scored on test codes."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(clf.fit(Z_train, y_train).score(Z_test, y_test))


def knn_cv_accuracy(Z: np.ndarray, y: np.ndarray, k: int = 5, folds: int = 5, random_state: int = 0) -> float:
    """Mean k-fold cross-validated k-NN accuracy, for embeddings without out-of-sample codes (t-SNE)."""
    return _cv_accuracy(KNeighborsClassifier(n_neighbors=k), Z, y, folds, random_state)


def linear_cv_accuracy(Z: np.ndarray, y: np.ndarray, folds: int = 5, random_state: int = 0) -> float:
    """Mean k-fold cross-validated accuracy of ``linear_accuracy``'s (standardised) logistic regression."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return _cv_accuracy(clf, Z, y, folds, random_state)


def _cv_accuracy(clf: Any, Z: np.ndarray, y: np.ndarray, folds: int, random_state: int) -> float:
    from sklearn.model_selection import StratifiedKFold

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    return float(np.mean(cross_val_score(clf, Z, y, cv=cv)))


def trustworthiness(
    X: np.ndarray, Z: np.ndarray, n_neighbors: int = 5, max_samples: int = 5000, random_state: int = 0
) -> float:
    """scikit-learn's trustworthiness of ``Z`` w.r.t. ``X`` on at most ``max_samples`` points.

    The exact computation is quadratic in memory, so larger sets are subsampled
    (the same subset for every embedding given the same ``random_state``).
    """
    X, Z = (np.asarray(a.detach().cpu() if hasattr(a, "detach") else a) for a in (X, Z))  # tensors needing grad too
    if len(X) != len(Z):
        raise InputError(f"X has {len(X)} samples but Z has {len(Z)}")
    if len(X) > max_samples:
        idx = np.random.default_rng(random_state).choice(len(X), max_samples, replace=False)
        X, Z = X[idx], Z[idx]
    # scikit-learn returns float32 inputs' distances in float32: squares of values this large overflow it
    # (inf distances, and its RuntimeWarning); such data are measured in float64, all other data as they are
    X, Z = (A.astype(np.float64) if A.dtype == np.float32 and A.size and np.abs(A).max() > 1e15 else A for A in (X, Z))
    return float(_sk_trustworthiness(X, Z, n_neighbors=n_neighbors))


def evaluate_model(
    est: object,
    X_test: np.ndarray,
    y_test: np.ndarray | None = None,
    X_train: np.ndarray | None = None,
    y_train: np.ndarray | None = None,
    *,
    trust_samples: int = 2000,
) -> dict[str, float]:
    """The standard numbers for a fitted aekit estimator, through its public methods only.

    Reconstruction BCE and PSNR (peak 1) for data in [0, 1] (images; PSNR says nothing of other data,
    counts say) and MSE (mean per element) on ``X_test``, for a model with a decoder, and the
    trustworthiness below, all measured as the model reads the data (after its fitted ``scale``,
    as training measures its loss: one wide feature does not rule them); with labels,
    k-NN(5) and logistic accuracy of codes (fit on train codes, score on test codes; k-NN from 5
    training samples on), or, when the training rows and labels are the test ones, both cross-validated
    within them (``knn5_cv_accuracy``, ``logistic_cv_accuracy``, ``cv_folds`` folds: a k-NN scored on its
    own points would find each point itself); trustworthiness of the codes on ``trust_samples`` test points (from
    11 on); the head's accuracy for a model with a head; the parameter count. Samples labelled -1
    (unlabelled) are left out of every accuracy.
    """
    from aekit.summary import count_parameters

    # arrays, whatever set_output asks of the estimator; transform first: its checks of X name what is wrong
    Z_test = np.asarray(est.transform(X_test))  # type: ignore[attr-defined]
    decoder = est.net_.has_decoder  # type: ignore[attr-defined]  # a t-SNE map without one reconstructs nothing
    X_hat = np.asarray(est.reconstruct(X_test)) if decoder else None  # type: ignore[attr-defined]
    X_raw = np.asarray(X_test)
    X_ref = as_float32(X_raw, pixels=is_uint8(X_raw) and bool(getattr(est, "pixels_", True)))  # as the model reads it
    X_ref = X_ref.reshape(len(X_ref), -1)  # images (n, H, W) / (n, C, H, W): compared flat
    offset, factor = getattr(est, "input_offset_", None), getattr(est, "input_scale_", None)
    if offset is not None and factor is not None:  # a fitted scale: measured in its units, as training measures
        X_ref = apply_scaler(X_ref, (offset, factor))
        X_hat = None if X_hat is None else apply_scaler(X_hat.reshape(len(X_hat), -1), (offset, factor))
    out: dict[str, float] = {"parameters": int(count_parameters(est.net_))}  # type: ignore[attr-defined]
    if X_hat is not None:
        unit = unit_range(X_ref)
        if unit:  # BCE is defined for targets in [0, 1] only
            out["reconstruction_bce"] = reconstruction_bce(X_ref, X_hat)
        out["reconstruction_mse"] = reconstruction_mse(X_ref, X_hat)
        if unit:
            out["psnr_db"] = psnr(X_ref, X_hat, 1.0)
    n = min(trust_samples, len(X_ref))
    if n > 10:  # trustworthiness with 5 neighbours needs more than 10 points
        out["trustworthiness"] = trustworthiness(X_ref[:n], Z_test[:n], max_samples=n)
    if y_test is None:
        return out
    y_test = np.asarray(y_test).reshape(-1)  # a column of labels (n, 1) reads as (n,)
    test = ~unlabelled(y_test)  # unlabelled samples (-1) are neither right nor wrong: left out of accuracies
    if X_train is not None and y_train is not None:
        out.update(_code_accuracies(est, Z_test, y_test, test, X_test, X_train, y_train))
    if hasattr(est, "predict") and test.any():  # a ParametricTSNE has predict when fitted with labels
        out["head_accuracy"] = float(np.mean(est.predict(X_test)[test] == y_test[test]))
    return out


def _code_accuracies(
    est: Any,
    Z_test: np.ndarray,
    y_test: np.ndarray,
    test: np.ndarray,
    X_test: Any,
    X_train: Any,
    y_train: Any,
) -> dict[str, float]:
    """``evaluate_model``'s k-NN and logistic accuracy of the codes (``test``: the labelled test rows)."""
    out: dict[str, float] = {}
    y_train = np.asarray(y_train).reshape(-1)
    if _same_rows(X_train, X_test) and _same_rows(y_train, y_test):
        Z, labels = Z_test[test], y_test[test]
        folds = cv_folds(labels)
        if folds:
            out["knn5_cv_accuracy"] = knn_cv_accuracy(Z, labels, folds=folds)
            out["logistic_cv_accuracy"] = linear_cv_accuracy(Z, labels, folds=folds)
        return out
    if not test.any():
        return out
    train = ~unlabelled(y_train)
    if train.any():
        _check_shared_classes(y_train[train], y_test[test])
    Z_train, y_train = np.asarray(est.transform(X_train))[train], y_train[train]
    if len(Z_train) >= 5:  # k-NN(5) needs 5 training codes
        out["knn5_accuracy"] = knn_accuracy(Z_train, y_train, Z_test[test], y_test[test])
    if len(np.unique(y_train)) >= 2:  # a classifier needs two classes to learn
        out["logistic_accuracy"] = linear_accuracy(Z_train, y_train, Z_test[test], y_test[test])
    return out


def cv_folds(labels: np.ndarray, most: int = 5, neighbours: int = 5) -> int:
    """The stratified folds ``evaluate_model`` cross-validates ``labels`` (the labelled ones) in: ``most``, fewer
    for a class of fewer samples (each fold needs one of each); 0 when no two folds can be made (a class of
    one sample, or a single class) or when a fold's training part would hold fewer than ``neighbours``
    samples (k-NN's k)."""
    counts = np.unique(labels, return_counts=True)[1] if len(labels) else np.zeros(0, dtype=np.int64)
    fewest = int(counts.min()) if len(counts) >= 2 else 0
    folds = min(most, fewest) if fewest >= 2 else 0
    return folds if folds and len(labels) - math.ceil(len(labels) / folds) >= neighbours else 0  # (a fold held out)


def _same_rows(A: Any, B: Any) -> bool:
    """Whether ``A`` and ``B`` hold the same rows (the same object, or equal arrays)."""
    if A is B:
        return True
    a, b = np.asarray(A), np.asarray(B)
    return a.shape == b.shape and a.dtype.kind == b.dtype.kind and bool(np.array_equal(a, b))


def _check_shared_classes(y_train: np.ndarray, y_test: np.ndarray) -> None:
    """Refuse training labels that share no class with the test labels (another scheme, or text against numbers):
    every answer of the codes' classifiers would be wrong, or scikit-learn would refuse the mix."""
    numbers = (y_train.dtype.kind in "biuf", y_test.dtype.kind in "biuf")
    if numbers[0] != numbers[1]:
        kinds = ("numbers" if numbers[0] else "text", "numbers" if numbers[1] else "text")
        raise InputError(
            f"y_train holds {kinds[0]} ({_some(y_train)}) but y_test {kinds[1]} ({_some(y_test)}); give both "
            "the same kind of labels (e.g. read both from CSV label columns)"
        )
    if all(numbers):
        shared = len(np.intersect1d(y_train, y_test)) > 0  # 1 and 1.0 are one class
    else:
        shared = bool({str(v) for v in y_train.tolist()} & {str(v) for v in y_test.tolist()})
    if not shared:
        raise InputError(
            f"y_train and y_test share no class (train: {_some(y_train)}; test: {_some(y_test)}); "
            "the codes' k-NN and logistic accuracy need training labels of the test set's classes"
        )


def _some(labels: np.ndarray) -> str:
    """The first few distinct labels, for a message."""
    values = sorted({str(v) for v in labels.tolist()})
    return ", ".join(repr(v) for v in values[:4]) + (", ..." if len(values) > 4 else "")


def code_bounds(activation: str | None) -> tuple[float, float] | None:
    """The bounds of a saturating code activation (``"tanh"`` → ``(-1, 1)``), else None."""
    return CODE_BOUNDS.get(activation) if activation else None


def saturated_fraction(Z: np.ndarray, bounds: tuple[float, float], *, every: bool = False) -> float:
    """Fraction of rows of ``Z`` (n, d) with a coordinate on ``bounds`` (``every``: all coordinates, a corner).

    On a bound means within ``SATURATION_TOL`` of the half-range.
    """
    lo, hi = bounds
    tol = SATURATION_TOL * (hi - lo) / 2
    Z = np.asarray(Z, dtype=np.float64)
    on_bound = (Z <= lo + tol) | (Z >= hi - tol)  # (n, d)
    if not len(Z):
        return 0.0
    return float((on_bound.all(axis=1) if every else on_bound.any(axis=1)).mean())
