"""Pictures from arrays: latent scatter, image grids, training curves, latent manifold.

Every function takes ``ax=None`` (or builds its own figure) and returns the Axes
or Figure; ``save`` writes a PNG with the Agg backend, no display needed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aekit._utils import InputError, atomic_path
from aekit.explore import explore  # noqa: F401 - the interactive HTML map, beside the static plots (bokeh imported on use)


def _plt() -> Any:
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Write ``fig`` atomically in the format its suffix names (.png, .pdf, .svg, ...) and close it."""
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise InputError(f"{p}: cannot write a figure as {p.suffix or 'a file without suffix'!r}; use one of {', '.join('.' + f for f in sorted(supported))}")
    with atomic_path(p) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=fmt)
    _plt().close(fig)
    return p


def latent_scatter(Z: np.ndarray, y: np.ndarray | None = None, *, ax: Any = None, title: str = "", s: float = 2.0, colorbar: bool = True) -> Any:
    """Scatter the first two code dimensions, coloured by label, with a colour bar."""
    plt = _plt()
    Z = np.asarray(Z)
    if Z.ndim != 2 or Z.shape[1] < 2:
        raise InputError(f"latent_scatter needs codes of shape (n, >=2), found {Z.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    if y is None:
        ax.scatter(Z[:, 0], Z[:, 1], s=s, alpha=0.6, linewidths=0)
    else:
        y = np.asarray(y)
        classes, codes = np.unique(y, return_inverse=True)
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20", len(classes))
        sc = ax.scatter(Z[:, 0], Z[:, 1], c=codes, cmap=cmap, s=s, alpha=0.7, linewidths=0, vmin=-0.5, vmax=len(classes) - 0.5)
        if colorbar:
            cb = ax.figure.colorbar(sc, ax=ax, ticks=range(len(classes)))
            cb.ax.set_yticklabels([str(c) for c in classes])
            cb.set_label("label")
    ax.set_title(title)
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    return ax


def image_grid(rows: Sequence[np.ndarray], row_labels: Sequence[str], image_shape: Sequence[int] = (28, 28), n: int = 10, title: str = "") -> Any:
    """A figure with one row of ``n`` images per array in ``rows`` (e.g. original / reconstruction)."""
    plt = _plt()
    if len(rows) != len(row_labels):
        raise InputError(f"{len(rows)} rows but {len(row_labels)} row labels")
    n = min(n, *(len(r) for r in rows))
    fig, axes = plt.subplots(len(rows), n, figsize=(1.2 * n, 1.3 * len(rows)), squeeze=False)
    for i, (imgs, label) in enumerate(zip(rows, row_labels, strict=True)):
        for j in range(n):
            ax = axes[i, j]
            ax.imshow(np.asarray(imgs[j]).reshape(image_shape), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def training_curves(history: Mapping[str, Sequence[float]], *, ax: Any = None, title: str = "training") -> Any:
    """Per-epoch curves of every ``*loss``-like series in ``history`` (train solid, validation dashed)."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    skip = {"lr", "time"}
    for key, values in history.items():
        if key in skip or "accuracy" in key or not len(values):
            continue
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, values, "--" if key.startswith("val_") else "-", label=key, marker="." if len(values) < 30 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean per element)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return ax


def latent_manifold(decode: Callable[[np.ndarray], np.ndarray], lo: Sequence[float], hi: Sequence[float], *, n: int = 15, image_shape: Sequence[int] = (28, 28), title: str = "latent manifold") -> Any:
    """Decode an ``n × n`` grid of 2-D codes spanning ``lo``..``hi`` into one mosaic."""
    plt = _plt()
    xs = np.linspace(lo[0], hi[0], n)
    ys = np.linspace(hi[1], lo[1], n)
    grid = np.array([[x, y] for y in ys for x in xs], dtype=np.float32)
    imgs = np.asarray(decode(grid))
    h, w = image_shape[-2], image_shape[-1]
    mosaic = imgs.reshape(n, n, h, w).transpose(0, 2, 1, 3).reshape(n * h, n * w)
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.imshow(mosaic, cmap="gray", extent=(lo[0], hi[0], lo[1], hi[1]), aspect="auto")
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(title)
    return fig

