"""Parametric t-SNE's input side: perplexity-calibrated neighbour affinities and the drawing of neighbour pairs.

t-SNE's input affinities come from openTSNE's ``PerplexityBasedNN``: each point's
``3 * perplexity`` nearest neighbours (an exact search for small inputs, Annoy above, as
openTSNE chooses) and a Gaussian whose width gives the perplexity. They are kept
*conditional*, p(j | i) along each row: drawing i uniformly and then j from p(j | i) draws
unordered pairs from t-SNE's symmetrised P, since the loss of a pair is symmetric
(``objectives.tsne_loss``). So the training loop's data are just the points' row numbers;
the loss draws each batch's neighbours from the ``NeighbourGraph``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from aekit._utils import InputError

log = logging.getLogger(__name__)


@dataclass
class NeighbourGraph:
    """The training data of parametric t-SNE, on the training device.

    Rows ``0 .. n_train - 1`` are the training points, the rest validation points; every
    neighbour is a training point.
    """

    X: torch.Tensor  # (n, n_features) float32: the inputs, training rows first
    neighbours: torch.Tensor  # (n, k) int64: row numbers in X of each point's k nearest training points
    cumulative: torch.Tensor  # (n, k) float32: running sums of p(j | i) along each row (the last is 1)
    y: torch.Tensor | None  # (n,) int64 class indices, -1 unlabelled; None without labels
    exaggeration: torch.Tensor  # () float32: the attraction's multiplier now (changed between epochs)

    def draw(self, rows: torch.Tensor) -> torch.Tensor:
        """One neighbour of each of ``rows`` ``(B,)``, drawn with probability p(j | i): row numbers ``(B,)``."""
        cum = self.cumulative[rows]  # (B, k)
        u = torch.rand((rows.shape[0], 1), device=cum.device, dtype=cum.dtype)
        pick = torch.searchsorted(cum, u).clamp_(max=cum.shape[1] - 1)  # (B, 1)
        return self.neighbours[rows].gather(1, pick).squeeze(1)


def neighbours_needed(perplexity: float) -> int:
    """How many neighbours t-SNE's affinities use for ``perplexity`` (openTSNE's rule: three times it)."""
    return max(1, int(3 * perplexity))


def check_inputs(X: np.ndarray, perplexity: float, n_train: int, validation_fraction: float) -> None:
    """The errors of data that t-SNE's affinities cannot be computed on, each naming the parameter and a fix."""
    k = neighbours_needed(perplexity)
    if n_train <= k:
        most = (n_train - 1) // 3  # the largest whole perplexity these samples allow (3 * it < n_train)
        if validation_fraction and X.shape[0] > k:
            raise InputError(
                f"{{validation_fraction}} leaves {n_train} training samples, not more than the {k} neighbours "
                f"perplexity={perplexity:g} needs; lower validation_fraction or perplexity",
                param="validation_fraction",
                values={"validation_fraction": validation_fraction},
            )
        fix = f"lower it, to at most {{perplexity={most}}}, or pass more samples" if most >= 1 else "pass more samples"
        raise InputError(
            f"{{perplexity}} needs more than {k} samples (3 * perplexity neighbours each), found {n_train}; {fix}",
            param="perplexity",
            values={"perplexity": perplexity},
        )
    if X.shape[0] and bool(np.all(X == X[:1])):
        raise InputError(
            f"X: all {X.shape[0]} samples are identical; t-SNE places points by their distances, "
            "so it needs distinct samples (check the data loading, or that X is not a repeated row)"
        )


def conditional_affinities(
    X_train: np.ndarray, X_val: np.ndarray, perplexity: float, random_state: int, n_jobs: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """Each point's neighbours among ``X_train`` and p(j | i): ``(neighbours, probabilities)``, both ``(n, k)``.

    Rows follow ``X_train`` then ``X_val``; probabilities sum to 1 along each row.
    """
    try:
        from openTSNE.affinity import PerplexityBasedNN
    except ImportError as exc:  # an optional extra
        raise InputError("ParametricTSNE needs openTSNE for its affinities: pip install 'aekit[plot]'") from exc

    k = neighbours_needed(perplexity)
    aff = PerplexityBasedNN(
        np.asarray(X_train, dtype=np.float32),
        perplexity=perplexity,
        symmetrize=False,
        n_jobs=n_jobs,
        random_state=random_state,
        k_neighbors=k,
    )
    rows = [_rows(aff.P, k)]
    if len(X_val):
        rows.append(_rows(aff.to_new(np.asarray(X_val, dtype=np.float32), k_neighbors=k), k))
    neighbours = np.concatenate([r[0] for r in rows])
    probs = np.concatenate([r[1] for r in rows])
    if not np.all(np.isfinite(probs)):
        raise InputError("X: t-SNE's affinities are not finite; check X for huge or duplicated values")
    return neighbours, probs


def _rows(affinities: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A CSR matrix of k entries per row as ``(columns (n, k) int64, row-normalised values (n, k) float32)``."""
    import scipy.sparse as sp

    P = sp.csr_matrix(affinities)
    n = P.shape[0]
    counts = np.diff(P.indptr)
    if np.all(counts == k):
        cols, vals = P.indices.reshape(n, k), P.data.reshape(n, k)
    else:  # rows of fewer entries (zeros dropped): padded with zero probabilities
        cols, vals = np.zeros((n, k), dtype=np.int64), np.zeros((n, k))
        for i in range(n):
            a, b = P.indptr[i], P.indptr[i + 1]
            cols[i, : b - a], vals[i, : b - a] = P.indices[a:b], P.data[a:b]
    vals = np.asarray(vals, dtype=np.float64)
    total = vals.sum(1, keepdims=True)
    vals = np.where(total > 0, vals / np.where(total > 0, total, 1.0), 1.0 / k)
    return cols.astype(np.int64), vals.astype(np.float32)


def label_affinities(neighbours: np.ndarray, probs: np.ndarray, y: np.ndarray, target_weight: float) -> np.ndarray:
    """p(j | i) with the labels' say: pairs of labelled points of different classes keep ``1 - target_weight``.

    ``neighbours``, ``probs`` ``(n, k)`` as from ``conditional_affinities``; ``y`` ``(n,)`` class
    indices, -1 unlabelled (a pair with an unlabelled point is left alone). Rows are normalised
    again; a row whose every neighbour lost its affinity keeps its own (there is nothing else to
    draw). The role of UMAP's ``target_weight``: the map's own loss pulls the classes apart, not
    only the head's gradient.
    """
    yi, yj = y[:, None], y[neighbours]  # (n, 1), (n, k)
    across = (yi >= 0) & (yj >= 0) & (yi != yj)
    scaled = np.where(across, probs * (1.0 - target_weight), probs)
    total = scaled.sum(1, keepdims=True)
    return np.where(total > 0, scaled / np.where(total > 0, total, 1.0), probs).astype(np.float32)


def cumulative(probs: np.ndarray) -> np.ndarray:
    """Running sums along rows, the last set to exactly 1 (so that every uniform draw finds an entry)."""
    cum = np.cumsum(probs, axis=1, dtype=np.float64)
    cum[:, -1] = 1.0
    return cum.astype(np.float32)
