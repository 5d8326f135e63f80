"""Did a fit learn anything? Cheap checks of a trained model, as one-sentence warnings.

A run can finish without an error and still have failed: the classifier head at chance,
a reconstruction no better than the data's mean, every code on a corner of the code
activation's box, a t-SNE map no better than one spot. ``fit`` runs ``check_fit`` on a sample
of its training data (at most ``SAMPLE_ROWS`` rows), stores the sentences as ``fit_warnings_``
and raises each once as a ``TrainingWarning``. The checks take arrays and names, never an estimator.
"""

from __future__ import annotations

import numpy as np
import torch

from aekit.metrics import code_bounds, saturated_fraction
from aekit.objectives import reconstruction_loss

SAMPLE_ROWS = 2000  # rows of the training data the checks look at: a few forward passes
PRIOR_DRAWS = 1000  # a variational model's prior samples decoded to look for inverted images
#: a head whose training accuracy recovers less than this fraction of the way from the majority-class rate
#: to 100% is at chance
CHANCE_GAIN = 0.1
#: a reconstruction that recovers less than this fraction of the way from the mean's loss to the best possible
#: has not left its starting plateau
PLATEAU_GAIN = 0.05
CORNER_FRACTION = 0.5  # "most codes" on a corner of the code activation's box
#: data with more zeros than this are "sparse" (TF-IDF rows: over 99%; MNIST's pixels: about 81%)
SPARSE_ZEROS = 0.9


def head_at_chance(y_true: np.ndarray, y_pred: np.ndarray) -> str | None:
    """A warning if predictions of labelled samples (``y_true >= 0``) are no better than the majority class."""
    labelled = y_true >= 0
    if labelled.sum() < 2:
        return None
    y_true, y_pred = y_true[labelled], y_pred[labelled]
    accuracy = float(np.mean(y_true == y_pred))
    majority = float(np.bincount(y_true).max() / len(y_true))
    if majority >= 1.0 or accuracy - majority >= CHANCE_GAIN * (1.0 - majority):
        return None
    return (
        f"the classifier head stays at chance: training accuracy {accuracy:.1%}, always predicting the most "
        f"common class gives {majority:.1%}; train longer (more epochs), raise classification_weight "
        "or try another random_state"
    )


def _loss(logits: np.ndarray, X: np.ndarray, loss: str, output_activation: str) -> float:
    return float(reconstruction_loss(torch.from_numpy(logits), torch.from_numpy(X), loss, output_activation))


def _as_logits(values: np.ndarray, output_activation: str) -> np.ndarray:
    """Decoder logits whose output is ``values`` (clipped inside (0, 1) for a sigmoid)."""
    if output_activation != "sigmoid":
        return values.astype(np.float32)
    p = np.clip(values.astype(np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p)).astype(np.float32)


def reconstruction_plateau(
    X: np.ndarray,
    recon_logits: np.ndarray,
    loss: str,
    output_activation: str,
    optimizer: str | None = None,
    *,
    n_components: int | None = None,
    scale: str | None = None,
) -> str | None:
    """A warning if reconstructing ``X`` (n, d) is hardly better than reconstructing every row as the mean row.

    The gain is measured between the mean's loss and the loss of a perfect reconstruction (not 0 for
    cross-entropy on values between 0 and 1). With ``n_components`` (the code's size), a small gain is no
    plateau when PCA with as many components gains hardly more (``PCA_SHARE``): noisy data (counts, a
    few thousand features) hold little that so few numbers can reconstruct, and their codes may still be
    good. ``optimizer``, ``scale``: the fit's, for the advice.
    """
    X = np.asarray(X, dtype=np.float32)
    if len(X) < 2:
        return None
    mean = np.broadcast_to(X.mean(axis=0, keepdims=True), X.shape)
    baseline = _loss(_as_logits(mean, output_activation), X, loss, output_activation)
    best = _loss(_as_logits(X, output_activation), X, loss, output_activation)
    got = _loss(np.asarray(recon_logits, dtype=np.float32), X, loss, output_activation)
    if not baseline - best > 1e-6 * max(abs(baseline), 1e-12) or got - best < (1 - PLATEAU_GAIN) * (baseline - best):
        return None  # constant data (nothing to learn), or a reconstruction that learned something
    if n_components is not None:
        linear = _loss(_as_logits(_pca_reconstruction(X, n_components), output_activation), X, loss, output_activation)
        if baseline - got >= PCA_SHARE * (baseline - linear):
            return None  # as far from the mean as a linear map of the code's size gets: nothing stuck
    stalls = optimizer == "rmsprop" and float(np.mean(X == 0)) > SPARSE_ZEROS
    other = {"minmax": "standard", "standard": "minmax"}.get(str(scale), "minmax")  # not the scale in use
    scaling = f"e.g. scale={other!r}"
    return (
        f"the reconstruction has not left its starting plateau: training loss {got:.4g}, reconstructing every "
        f"sample as the mean sample gives {baseline:.4g}; train longer (more epochs), "
        # measured on TF-IDF rows: RMSprop stayed on the plateau at any learning rate, Adam left it
        + ("try optimizer='adam' (RMSprop can stall on sparse data such as these), " if stalls else "")
        + f"check the data's scaling ({scaling}) or try another random_state"
    )


#: a reconstruction that gains at least this share of what PCA with the code's size gains over the mean has
#: left its plateau, however small both gains are
PCA_SHARE = 0.5


def _pca_reconstruction(X: np.ndarray, n_components: int) -> np.ndarray:
    """``X`` (n, d) reconstructed from its first ``n_components`` principal components (randomized SVD: cheap
    on wide data), clipped into [0, 1] where ``X`` lies there (a sigmoid's outputs)."""
    from sklearn.utils.extmath import randomized_svd

    mean = X.mean(axis=0, keepdims=True)
    k = max(1, min(n_components, *X.shape))
    _, _, vt = randomized_svd(X - mean, k, n_iter=4, random_state=0)
    recon = mean + (X - mean) @ vt.T @ vt
    if X.min() >= 0 and X.max() <= 1:
        recon = np.clip(recon, 0.0, 1.0)
    return recon.astype(np.float32)


def rows_alike(X: np.ndarray) -> str | None:
    """A warning if every row of ``X`` (n, d) is the same (every feature constant): nothing to learn, every code
    one point, and no other check says so (the plateau check has no gain to measure)."""
    X = np.asarray(X)
    if len(X) < 2 or not np.all(X == X[:1]):
        return None
    return (
        f"all {len(X):,} training rows checked are the same (every feature constant): there is nothing to learn "
        "and every code is one point; check that X holds the columns meant (a constant column, or ids read as data)"
    )


def codes_on_corners(Z: np.ndarray, code_activation: str | None, scale: str | None = None) -> str | None:
    """A warning if most codes ``Z`` (n, d) sit on a corner of the code activation's box (every coordinate on a
    bound): such codes say little more than which corner."""
    bounds = code_bounds(code_activation)
    if bounds is None or not len(Z):
        return None
    frac = saturated_fraction(Z, bounds, every=True)
    if frac <= CORNER_FRACTION:
        return None
    return (
        f"{frac:.0%} of the codes sit on a corner of the {code_activation} code's range "
        f"{tuple(float(b) for b in bounds)} (saturated: they tell little more than which corner); "
        + ("" if scale == "standard" else "standardise the data with scale='standard', ")
        + "lower learning_rate, or try another random_state"
    )


def map_no_better_than_a_point(history: dict[str, list[float]]) -> str | None:
    """A warning if a t-SNE map's last epoch ended with its loss (KL up to a constant, without exaggeration)
    at or above 0: the loss of the map that puts every point on one spot, which has learned nothing.
    A diverged map (too high a learning rate) ends far above it."""
    if not history.get("attraction") or not history.get("repulsion"):
        return None
    kl = history["attraction"][-1] + history["repulsion"][-1]
    if not kl >= 0:  # below the one-spot map (NaN: the loop has already stopped on it)
        return None
    return (
        f"the t-SNE loss (attraction + repulsion) ended at {kl:.3g}, no lower than the 0 of a map that puts "
        "every point on one spot: the map has not learned the data's neighbours; lower learning_rate, train "
        "longer (more epochs) or check the data's scaling"
    )


#: a map whose t-SNE loss stayed within this band (absolute, or a fraction of its first epoch's) learned nothing
MAP_MIN_CHANGE = (0.05, 0.02)


def map_did_not_move(history: dict[str, list[float]]) -> str | None:
    """A warning if a t-SNE map's loss (without exaggeration) stayed in a narrow band over all its epochs: an
    untrained network's map (too low a learning rate) keeps its first epoch's loss, while training moves it
    (down, or first up after the early exaggeration). A loss at 0 or above is ``map_no_better_than_a_point``'s."""
    attraction, repulsion = history.get("attraction") or [], history.get("repulsion") or []
    if len(attraction) < 2 or len(repulsion) < 2:
        return None
    kl = [a + r for a, r in zip(attraction, repulsion, strict=False)]
    band = max(MAP_MIN_CHANGE[0], MAP_MIN_CHANGE[1] * abs(kl[0]))
    if not (kl[-1] < 0 and max(kl) - min(kl) < band):  # (NaN: the loop stopped already)
        return None
    return (
        f"the t-SNE loss (attraction + repulsion) stayed between {min(kl):.3g} and {max(kl):.3g} over "
        f"{len(kl)} epochs: the map has hardly moved from the untrained network's; raise learning_rate, "
        "or train longer (more epochs)"
    )


#: a variational model whose prior samples decode inverted this often is warned of (a trial: 22-33% after 5 epochs)
INVERTED_SHARE = 0.05


def samples_inverted(X: np.ndarray, decoded: np.ndarray) -> str | None:
    """A warning if many of a VAE's prior samples ``decoded`` (in [0, 1]) are brighter on average than every
    training row of ``X``: images decoded inverted (a white background), prior mass the encoder has not taught
    the decoder yet."""
    if not decoded.size or not X.size:
        return None
    means = X.mean(axis=1)
    if float(means.std()) < 0.01:  # rows of one brightness (one-hot tables): "brighter" says nothing
        return None
    # a margin over the brightest sampled row (a quarter of the way to white): a sample of 2,000 rows has a
    # lower maximum than the whole set, and inverted images are far brighter (a white background)
    share = float(np.mean(decoded.mean(axis=1) > means.max() + 0.25 * (1.0 - means.max())))
    if share < INVERTED_SHARE:
        return None
    return (
        f"{share:.0%} of samples drawn from the prior decode far brighter than every one of {len(X):,} training "
        "images (inverted, e.g. a white background): the decoder has not learned the whole prior yet; train "
        "longer (more epochs, or epochs='auto')"
    )


def check_fit(
    X: np.ndarray,
    Z: np.ndarray,
    recon_logits: np.ndarray | None,
    *,
    loss: str,
    output_activation: str,
    code_activation: str | None,
    y_true: np.ndarray | None = None,
    y_pred: np.ndarray | None = None,
    history: dict[str, list[float]] | None = None,
    optimizer: str | None = None,
    scale: str | None = None,
    prior_decoded: np.ndarray | None = None,
) -> list[str]:
    """The warnings about a fit, from a sample of its training data.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Training rows, as the model was trained on them.
    Z : ndarray of shape (n_samples, n_components)
        Their codes (``None`` as ``code_activation`` for codes without bounds).
    recon_logits : ndarray of shape (n_samples, n_features)
        The decoder's output before the output activation; None for a network without a decoder.
    y_true, y_pred : ndarray of shape (n_samples,), optional
        Class indices (-1: unlabelled) and the head's predictions, for a supervised model.
    history : dict of str to list of float, optional
        The fit's ``history_``: a t-SNE map's loss terms are judged from it.
    optimizer, scale : str, optional
        The fit's optimizer and ``scale``, for the advice.
    prior_decoded : ndarray of shape (n_draws, n_features), optional
        A variational model's decoded prior samples, for images in [0, 1].
    """
    plateau = None
    if recon_logits is not None:
        plateau = reconstruction_plateau(
            X, recon_logits, loss, output_activation, optimizer, n_components=Z.shape[1], scale=scale
        )
    found = [
        head_at_chance(y_true, y_pred) if y_true is not None and y_pred is not None else None,
        plateau,
        rows_alike(X),
        codes_on_corners(Z, code_activation, scale),
        None if history is None else map_no_better_than_a_point(history),
        None if history is None else map_did_not_move(history),
        None if prior_decoded is None else samples_inverted(X, prior_decoded),
    ]
    return [w for w in found if w is not None]
