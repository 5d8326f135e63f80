"""The data-range switch: the input scaler (``scale=...``), what ``"auto"`` loss and output mean, and advice.

An autoencoder trains well when its inputs are small numbers on similar scales, and when the
reconstruction's output activation and loss fit the data's range: a sigmoid and cross-entropy
for data in [0, 1] (images), a linear output and squared error otherwise. ``scale`` brings the
data there (fitted in ``fit``, applied by ``transform``, undone by ``inverse_transform``), and
``loss="auto"`` / ``output_activation="auto"`` follow the range of the data as the model sees it.
``advice`` names the mismatches it can see, once per fit. The uint8 pixel rule is
``_utils.uint8_pixels``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from aekit._utils import in_unit_range

#: ``scale`` choices besides None: per feature to [0, 1]; per feature to mean 0 and std 1; 0-255 pixels / 255
SCALES = ("minmax", "standard", "pixels")
AUTO = "auto"
#: features whose ranges (max - min) differ by more than this factor are on "wildly different scales"
#: (8-bit images in [0, 1] stay within 255: the narrowest range of a pixel is 1/255)
SPREAD_LIMIT = 1e3
#: data whose magnitude exceeds this saturates tanh units from the first layer (tanh(10) = 1 - 4e-9)
MAGNITUDE_LIMIT = 10.0
#: standardised values beyond this many standard deviations are heavy tails or outliers, not noise (the
#: largest of a million Gaussian draws is about 5)
TAIL_LIMIT = 20.0
_CHUNK_CELLS = 2**20  # values per pass of a statistic over X: a float64 chunk of 8 MiB, however wide the rows


def chunk_rows(width: int) -> int:
    """Rows of ``width`` values per chunk of ``_CHUNK_CELLS`` (a trial's 20,000 genes made 65,536-row chunks
    10 GB)."""
    return max(1, _CHUNK_CELLS // max(1, width))


def fit_scaler(X: np.ndarray, scale: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The per-feature ``(offset, factor)`` of ``scale`` on ``X`` ``(n_samples, n_features)``: the model
    reads ``(X - offset) / factor``. None for ``scale=None``. Both are float32 ``(n_features,)``.

    A constant feature (no spread beyond float32 rounding) keeps factor 1: it becomes 0 (minmax,
    standard), never a division by zero.
    """
    if scale is None:
        return None
    n_features = X.shape[1]
    if scale == "pixels":
        return np.zeros(n_features, np.float32), np.full(n_features, 255.0, np.float32)
    low, high = X.min(axis=0).astype(np.float64), X.max(axis=0).astype(np.float64)  # exact: no float64 copy of X
    if scale == "minmax":
        offset, factor = low, high - low
    elif scale == "standard":
        offset, factor = X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64)
    else:
        raise ValueError(f"scale={scale!r}; expected one of {SCALES} or None")  # validated before: a bug
    return _finish(offset, factor, low, high)


def _finish(offset: np.ndarray, factor: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``(offset, factor)``; constant features keep factor 1."""
    factor = np.array(factor, dtype=np.float64)
    # spread at the level of float32's rounding of the feature's values is no spread (e.g. a constant 1e6)
    constant = factor <= 4 * np.finfo(np.float32).eps * np.maximum(np.abs(low), np.abs(high))
    factor[constant | (factor == 0)] = 1.0
    return np.asarray(offset).astype(np.float32), factor.astype(np.float32)


@dataclass(frozen=True)
class RangeStats:
    """Per-feature statistics of data read in chunks (data larger than memory): what ``fit`` needs to scale
    them and to choose the loss, from one pass. All ``(n_features,)`` float64."""

    low: np.ndarray
    high: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of_chunks(cls, chunks: Iterable[np.ndarray]) -> RangeStats:
        """Min, max, mean and (population) standard deviation over row chunks ``(rows, n_features)``.

        Chunks are combined with Chan et al.'s pairwise update, so the result does not drift with the
        number of rows as a running sum of squares would.
        """
        n, low, high, mean, m2 = 0, None, None, None, None
        for chunk in chunks:
            x = np.asarray(chunk, dtype=np.float64)
            if not len(x):
                continue
            k, m = len(x), x.mean(axis=0)
            c2 = ((x - m) ** 2).sum(axis=0)
            if low is None or high is None or mean is None or m2 is None:
                low, high, mean, m2 = x.min(axis=0), x.max(axis=0), m, c2
            else:
                low, high = np.minimum(low, x.min(axis=0)), np.maximum(high, x.max(axis=0))
                delta = m - mean
                m2 = m2 + c2 + delta**2 * n * k / (n + k)
                mean = mean + delta * k / (n + k)
            n += k
        if low is None or high is None or mean is None or m2 is None:
            raise ValueError("no rows")  # sources have at least one row: a bug
        return cls(low, high, mean, np.sqrt(m2 / n))

    def scaled(self, scaler: tuple[np.ndarray, np.ndarray] | None) -> RangeStats:
        """The statistics of the data as the model reads them (``apply``: an affine map with factor > 0)."""
        if scaler is None:
            return self
        offset, factor = (np.asarray(a, dtype=np.float64) for a in scaler)
        return RangeStats(
            (self.low - offset) / factor,
            (self.high - offset) / factor,
            (self.mean - offset) / factor,
            self.std / factor,
        )

    def divided(self, by: float) -> RangeStats:
        return RangeStats(self.low / by, self.high / by, self.mean / by, self.std / by)


def scaler_from_stats(stats: RangeStats, scale: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``fit_scaler`` from chunked statistics (data read from disk); the same rules."""
    if scale is None:
        return None
    n_features = len(stats.low)
    if scale == "pixels":
        return np.zeros(n_features, np.float32), np.full(n_features, 255.0, np.float32)
    if scale == "minmax":
        return _finish(stats.low, stats.high - stats.low, stats.low, stats.high)
    if scale == "standard":
        return _finish(stats.mean, stats.std, stats.low, stats.high)
    raise ValueError(f"scale={scale!r}; expected one of {SCALES} or None")


def apply(X: np.ndarray, scaler: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """``X`` as the model reads it (float32)."""
    if scaler is None:
        return X
    offset, factor = scaler
    return ((X - offset) / factor).astype(np.float32, copy=False)


def undo(X: np.ndarray, scaler: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Model-space ``X`` back in the user's units (float32)."""
    if scaler is None:
        return X
    offset, factor = scaler
    return (X * factor + offset).astype(np.float32, copy=False)


def resolve(loss: str, output_activation: str, unit: bool) -> tuple[str, str]:
    """``(loss, output_activation)`` with "auto" resolved for training data in [0, 1] (``unit``) or not.

    The output: a sigmoid for data in [0, 1] (and always for cross-entropy), else linear. The loss:
    cross-entropy on a sigmoid for data in [0, 1] (the MNIST reference), else squared error.
    """
    out = output_activation
    if out == AUTO:
        out = "sigmoid" if (unit or loss == "bce") else "linear"
    if loss == AUTO:
        loss = "bce" if (out == "sigmoid" and unit) else "mse"
    return loss, out


def advice(
    X: np.ndarray,
    scale: str | None,
    loss: str,
    output_activation: str,
    saturating: bool = True,
    *,
    names: Sequence[str] | None = None,
) -> list[str]:
    """What does not fit: warnings for training data ``X`` (as the model sees it) and the resolved choices.

    Worded for tabular data and images alike; each names the one switch that fixes it (``names``: the
    features', to name the worst one).
    """
    if X.size == 0:
        return []
    low, high = X.min(axis=0), X.max(axis=0)
    standardised = scale == "standard"
    counts = count_zeros(X) if may_be_counts(low, high, scale, saturating) else None
    if scale is None and saturating and max(abs(float(low.min())), abs(float(high.max()))) > MAGNITUDE_LIMIT:
        # scaled already (a StandardScaler in a Pipeline)? then scale='standard' would change nothing
        step = chunk_rows(int(np.prod(X.shape[1:])))
        stats = RangeStats.of_chunks(X[i : i + step] for i in range(0, len(X), step))  # no float64 copy of X
        standardised = bool(np.all(np.abs(stats.mean) < 0.1) and np.all((stats.std > 0.5) & (stats.std < 2.0)))
    return range_advice(
        low, high, scale, loss, output_activation, saturating, standardised=standardised, names=names, counts=counts
    )


#: whole numbers from 0 with at least this share of zeros are counts (genes, words, events), not measurements
COUNT_ZEROS = 0.3


def may_be_counts(low: np.ndarray, high: np.ndarray, scale: str | None, saturating: bool) -> bool:
    """Whether data of these per-feature minima and maxima get the counts advice if they are counts: unscaled,
    from 0, beyond the magnitude that saturates tanh units (``count_zeros`` reads them only then)."""
    return scale is None and saturating and float(low.min()) >= 0 and float(high.max()) > MAGNITUDE_LIMIT


def count_zeros(X: np.ndarray) -> float | None:
    """The share of zeros if ``X`` (non-negative) looks like counts, else None: whole numbers, and its features
    that go beyond ``MAGNITUDE_LIMIT`` mostly 0 (their median share of zeros at least ``COUNT_ZEROS``). A table of
    one-hot columns beside age and income is no counts: its wide features are seldom 0 (a review). Read from
    its first rows, ``_CHUNK_CELLS`` values: whole numbers or not shows there."""
    head = np.asarray(X[: chunk_rows(int(np.prod(X.shape[1:])))])
    head = head.reshape(len(head), -1)
    if not head.size or not np.all(head == np.round(head)):
        return None
    wide = head.max(axis=0) > MAGNITUDE_LIMIT
    if not wide.any() or float(np.median(np.mean(head[:, wide] == 0, axis=0))) < COUNT_ZEROS:
        return None
    return float(np.mean(head == 0))


def range_advice(
    low: np.ndarray,
    high: np.ndarray,
    scale: str | None,
    loss: str,
    output_activation: str,
    saturating: bool = True,
    *,
    standardised: bool | None = None,
    names: Sequence[str] | None = None,
    counts: float | None = None,
) -> list[str]:
    """``advice`` from the per-feature minima and maxima ``(n_features,)`` of the data as the model sees it.

    ``saturating``: whether the network has bounded units (tanh, sigmoid) that large inputs pin to their
    bounds; a relu body with a linear code (a parametric t-SNE map) has none, and rescaling each feature
    would change the distances a map keeps. ``standardised``: whether each feature has mean 0 and
    standard deviation 1 as the model sees it (None: with ``scale="standard"``), where values far out are
    heavy tails that another scale cannot mend. ``counts``: the share of zeros of count data (``count_zeros``),
    which standardising made worse in a trial (single-cell counts: 5-fold k-NN of the 2-D codes 36.5% -> 28.9%
    under the reference recipe, 93.7% -> 83.3% under the ``tabular`` preset, which reads them as they are)."""
    lo, hi = float(low.min()), float(high.max())
    notes = []
    if standardised is None:
        standardised = scale == "standard"
    far = np.maximum(np.abs(low.astype(np.float64)), np.abs(high))
    if standardised and saturating and float(far.max()) > TAIL_LIMIT:
        worst = int(np.argmax(far))
        how = "after scale='standard'" if scale == "standard" else "standardised"
        notes.append(
            f"X, {how}, holds values up to {float(far.max()):.3g} standard deviations from a feature's mean "
            f"(feature {worst if names is None else repr(str(names[worst]))}; {int(np.sum(far > TAIL_LIMIT))} of "
            f"{far.size} features beyond {TAIL_LIMIT:g}): "
            "heavy tails or outliers, which saturate tanh units and rule the loss. Transform such features first, "
            "e.g. np.log1p for counts and amounts, or scikit-learn's QuantileTransformer or PowerTransformer"
            + (
                "; images read better with scale='pixels' (0-255 pixels) or no scale (pixels in [0, 1])"
                if scale == "standard" and names is None
                else ""
            )
        )
    if output_activation == "sigmoid" and loss != "bce" and not in_unit_range(lo, hi):
        notes.append(
            f"output_activation='sigmoid' bounds reconstructions to [0, 1], but X holds values in "
            f"[{lo:.3g}, {hi:.3g}]: the {loss} loss cannot reach them. Use output_activation='auto' "
            "(linear for such data), or scale='minmax' to bring X into [0, 1]"
        )
    if counts is not None and may_be_counts(low, high, scale, saturating):
        tabular = (
            "train with **aekit.PRESETS['tabular'] (Adam, ReLU units, a linear code), which reads counts as they "
            "are, or take np.log1p of them first"
        )
        if hi <= 255:  # 0-255 images as floats look alike: pixels first
            notes.append(
                f"X holds whole numbers from 0 to {hi:.3g}, {counts:.0%} of them 0, on which this network's tanh "
                f"units saturate: 0-255 pixels? pass scale='pixels'; counts? {tabular}"
            )
        else:
            notes.append(
                f"X holds counts up to {hi:.3g} (whole numbers from 0, {counts:.0%} of them 0): this network's tanh "
                f"units saturate on them and codes stick at their bounds. For counts {tabular}"
            )
    elif scale is None and counts is None and not standardised:  # standardised already: 'standard' changes nothing
        ranges = high.astype(np.float64) - low  # not the std: sparse pixels keep a wide range
        moving = ranges[ranges > 0]
        spread = float(moving.max() / moving.min()) if moving.size else 1.0
        if spread > SPREAD_LIMIT:
            notes.append(
                f"X's features are on very different scales (ranges from {moving.min():.2g} to {moving.max():.2g}, "
                f"a factor of 10^{math.floor(math.log10(spread))}): the widest dominate the loss and the narrow "
                "ones are lost. Pass scale='standard'"
            )
        elif saturating and max(abs(lo), abs(hi)) > MAGNITUDE_LIMIT:
            # 0-255 images as floats: standardising each pixel made a trial's denoiser far worse than 'pixels'
            pixels = " (a table), or scale='pixels' if they are 0-255 pixels" if lo >= 0 and hi <= 255 else ""
            notes.append(
                f"X holds values up to {max(abs(lo), abs(hi)):.3g} in magnitude, far beyond the few units where "
                "a network's inputs train well: tanh units saturate and codes stick at their bounds. "
                f"Pass scale='standard'{pixels}"
            )
    return notes
