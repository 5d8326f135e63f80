"""Pictures from arrays: latent scatter, image grids, training curves, latent manifold.

Every function takes ``ax=None`` (or builds its own figure) and returns the Axes
or Figure; ``save`` writes it in the format its suffix names.

The user's matplotlib backend is never changed. Figures are made with pyplot, so
``plt.show()`` and notebooks show them, and matplotlib itself falls back to Agg
where there is no display. Programs that only write files (the CLI, the demo)
draw inside ``offscreen()``: plain ``Figure`` objects outside pyplot, which need
no display and never import a GUI toolkit.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import LogFormatter

from aekit._utils import InputError, atomic_path, square_shape, unlabelled
from aekit.explore import UNLABELLED_NAME, explore  # noqa: F401 - the interactive HTML map, beside the static plots (bokeh imported on use)
from aekit.metrics import CODE_BOUNDS, SATURATION_TOL, code_bounds, saturated_fraction  # noqa: F401 - plots' API

_OFFSCREEN: contextvars.ContextVar[bool] = contextvars.ContextVar("aekit_plots_offscreen", default=False)


@contextlib.contextmanager
def offscreen() -> Iterator[None]:
    """Make the figures created inside plain ``matplotlib.figure.Figure`` objects, outside pyplot.

    For code that only saves files: nothing needs a display, no GUI toolkit is
    imported and pyplot's list of open figures is left alone.
    """
    token = _OFFSCREEN.set(True)
    try:
        yield
    finally:
        _OFFSCREEN.reset(token)


def subplots(
    nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] = (6, 5), squeeze: bool = True
) -> tuple[Any, Any]:
    """``(figure, axes)`` like ``plt.subplots``: a pyplot figure, or a plain Figure inside ``offscreen()``."""
    if _OFFSCREEN.get():
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        return fig, fig.subplots(nrows, ncols, squeeze=squeeze)
    import matplotlib.pyplot as plt  # the backend stays the user's (or matplotlib's own headless fallback)

    return plt.subplots(nrows, ncols, figsize=figsize, squeeze=squeeze)


def _root_figure(fig: Any) -> Any:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    if isinstance(fig, np.ndarray) and fig.size and isinstance(fig.flat[0], Axes):
        fig = fig.flat[0]  # the axes array of subplots()
    if isinstance(fig, Axes | SubFigure):
        fig = fig.get_figure(root=True)
    if not isinstance(fig, Figure):
        raise InputError(
            f"save(fig=...) takes a matplotlib Figure or Axes, found {type(fig).__name__}; "
            "pass ax.figure or the Figure a plot returned"
        )
    return fig


def save(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Write a figure atomically in the format its suffix names (.png, .pdf, .svg, ...) and close it.

    Parameters
    ----------
    fig : matplotlib Figure or Axes
        What a plot function returned; an Axes (or array of Axes) saves its whole figure.
    path : str or PathLike
        The file to write; its suffix chooses the format.
    dpi : int, default=120
        Resolution of raster formats.

    Returns
    -------
    Path
        ``path``.
    """
    figure = _root_figure(fig)
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    from matplotlib.backend_bases import FigureCanvasBase

    supported = FigureCanvasBase.get_supported_filetypes()  # every format: savefig switches canvas as needed
    if fmt not in supported:
        raise InputError(
            f"{p}: cannot write a figure as {p.suffix or 'a file without suffix'!r}; "
            f"use one of {', '.join('.' + f for f in sorted(supported))}"
        )
    with atomic_path(p) as tmp:
        figure.savefig(tmp, dpi=dpi, bbox_inches="tight", format=fmt)
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:  # a pyplot figure is released; a plain Figure is just garbage
        plt.close(figure)
    return p


def marker_style(n: int) -> tuple[float, float]:
    """Marker area (points²) and alpha for a scatter of ``n`` points on a ~6×5 inch Axes.

    ``s = clip(300 / sqrt(n), 0.5, 30)`` and ``alpha = clip(0.9 * (1000 / n) ** 0.3, 0.2, 0.9)``:
    a few hundred points get large opaque markers, tens of thousands small translucent
    ones, so that dense regions stay readable instead of merging into one blob.
    """
    n = max(int(n), 1)
    return float(np.clip(300.0 / np.sqrt(n), 0.5, 30.0)), float(np.clip(0.9 * (1000.0 / n) ** 0.3, 0.2, 0.9))


def _one_line(label: Any) -> str:
    """A label as drawable text: tabs, newlines and other control characters (no glyph in any font) as spaces."""
    return "".join(" " if ch.isspace() or not ch.isprintable() else ch for ch in str(label))


def latent_scatter(
    Z: np.ndarray,
    y: np.ndarray | None = None,
    *,
    ax: Any = None,
    title: str = "",
    s: float | None = None,
    alpha: float | None = None,
    colorbar: bool = True,
    bounds: tuple[float, float] | None = None,
    axis_labels: tuple[str, str] = ("z1", "z2"),
) -> Any:
    """Scatter the first two code dimensions, coloured by label, with a colour bar.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_components >= 2)
        Codes or an embedding.
    y : ndarray of shape (n_samples,), optional
        Labels (any values) for the colours; -1 (or the text "-1") marks an unlabelled sample, drawn grey
        beneath the classes, as everywhere in aekit (a class -1 of ±1 labels too: encode it 0..k-1).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    title : str
        The Axes title.
    s, alpha : float, optional
        Marker area (points²) and opacity; by default they follow the number of points
        (``marker_style``).
    colorbar : bool, default=True
        Draw a colour bar naming the labels.
    bounds : (float, float), optional
        The code activation's range (``code_bounds("tanh")`` = ``(-1, 1)``). When most
        codes sit on it (saturated), the title says so.
    axis_labels : (str, str), default=("z1", "z2")
        The axes' names (e.g. ("t-SNE 1", "t-SNE 2") for a t-SNE map).

    Returns
    -------
    matplotlib Axes
    """
    Z = np.asarray(Z)
    if Z.ndim != 2 or Z.shape[1] < 2:
        raise InputError(f"latent_scatter needs codes of shape (n, >=2), found {Z.shape}")
    if y is not None and len(np.asarray(y).reshape(-1)) != len(Z):
        raise InputError(f"y has {len(np.asarray(y).reshape(-1))} labels for {len(Z)} codes; pass one label per code")
    if ax is None:
        _, ax = subplots(figsize=(6, 5))
    auto_s, auto_alpha = marker_style(len(Z))
    style = {"s": auto_s if s is None else s, "alpha": auto_alpha if alpha is None else alpha, "linewidths": 0}
    if y is None:
        ax.scatter(Z[:, 0], Z[:, 1], **style)
    else:
        labels = np.asarray(y).reshape(-1)
        if labels.dtype == object:  # mixed kinds (text beside None or NaN) do not sort: as the text they show
            labels = np.array([str(v) for v in labels], dtype=object)
        none = unlabelled(labels)  # -1 (or "-1"): no class of its own, grey beneath the classes
        if none.any():
            grey = ax.scatter(Z[none, 0], Z[none, 1], color="0.8", zorder=0, **style)
            ax.legend([grey], [UNLABELLED_NAME], loc="upper right", fontsize="small", markerscale=2, frameon=False)
        classes, codes = np.unique(labels[~none], return_inverse=True)
        cmap = _label_colours(max(1, len(classes)))
        kept = Z[~none]
        sc = ax.scatter(kept[:, 0], kept[:, 1], c=codes, cmap=cmap, vmin=-0.5, vmax=len(classes) - 0.5, **style)
        if colorbar and len(classes):
            cb = ax.figure.colorbar(sc, ax=ax, ticks=range(len(classes)))
            cb.ax.set_yticklabels([_one_line(c) for c in classes])
            cb.set_label("label")
            cb.solids.set_alpha(1)  # the legend's colours at full strength, whatever the markers' alpha
    ax.set_title(_saturation_title(title, Z[:, :2], bounds))
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    return ax


def train_test_maps(
    Z_train: np.ndarray,
    y_train: np.ndarray | None,
    Z_test: np.ndarray,
    y_test: np.ndarray | None,
    *,
    titles: tuple[str, str] = ("training points", "new points"),
) -> Any:
    """The map of the points a model was fitted on beside the map of new points, in the same frame.

    For parametric maps (``ParametricTSNE``, an autoencoder's 2-D code): both panels share
    their axis limits, so a new point lands where the training map puts its kind.

    Parameters
    ----------
    Z_train : ndarray of shape (n_train, >=2)
    y_train : ndarray of shape (n_train,), optional
    Z_test : ndarray of shape (n_test, >=2)
    y_test : ndarray of shape (n_test,), optional
        Labels colour the points (one colour bar, on the right).
    titles : (str, str)
        The two panels' titles.

    Returns
    -------
    matplotlib Figure
    """
    fig, axes = subplots(1, 2, figsize=(12, 5))
    latent_scatter(Z_train, y_train, ax=axes[0], colorbar=False, title=titles[0])
    latent_scatter(Z_test, y_test, ax=axes[1], title=titles[1])
    both = np.concatenate([np.asarray(Z_train)[:, :2], np.asarray(Z_test)[:, :2]])
    lo, hi = both.min(axis=0), both.max(axis=0)
    pad = 0.03 * np.where(hi > lo, hi - lo, 1.0)
    for ax in axes:
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    fig.tight_layout()
    return fig


def _label_colours(k: int) -> Any:
    """The first ``k`` colours of tab10 (k <= 10: neighbours in the list differ most), else tab20 resampled."""
    import matplotlib
    from matplotlib.colors import ListedColormap

    if k <= 10:
        return ListedColormap(matplotlib.color_sequences["tab10"][: max(k, 1)])
    return matplotlib.colormaps["tab20"].resampled(k)


def _saturation_title(title: str, Z: np.ndarray, bounds: tuple[float, float] | None) -> str:
    if bounds is None:
        return title
    frac = saturated_fraction(Z, bounds)
    if frac <= 0.5:
        return title
    note = f"saturated: {100 * frac:.0f}% of codes on the activation's bounds {tuple(float(b) for b in bounds)}"
    return f"{title}\n{note}" if title else note


def _shape_of(a: np.ndarray, image_shape: Sequence[int] | None) -> tuple[int, ...]:
    """The image shape to draw ``a`` ``(n, ...)`` with: ``image_shape``, checked against the images' size, or
    (None) their own ``(H, W)`` / ``(C, H, W)``, else a square of one or three channels."""
    size = int(np.prod(a.shape[1:]))
    if image_shape is not None:
        shape = tuple(int(v) for v in image_shape)
        if math.prod(shape) != size:
            raise InputError(
                f"image_shape {shape} holds {math.prod(shape)} values but each image has {size}; pass the images' "
                "shape (a fitted model's image_shape_), or leave image_shape=None for square images"
            )
        return shape
    if a.ndim in (3, 4):
        return tuple(int(v) for v in a.shape[1:])
    square = square_shape(size)
    if square is None:
        raise InputError(f"images of {size} values are no square; pass image_shape, e.g. a fitted model's image_shape_")
    return square


def for_display(images: Any, image_shape: Sequence[int] | None = None) -> np.ndarray:
    """Images ``(n, n_features)`` as ``imshow`` draws them in [0, 1]: ``(n, H, W)`` grey or ``(n, H, W, 3)``
    colour. uint8 pixels are divided by 255; other values outside [0, 1] (0-255 floats, standardised data)
    are stretched from their own minimum to maximum, rather than drawn white or black. ``image_shape``
    ``(H, W)`` or ``(C, H, W)``; None: the images' own, or a square."""
    a = np.asarray(images)
    if image_shape is None and a.ndim == 4 and a.shape[-1] in (1, 3) and a.shape[1] not in (1, 3):
        a = a.transpose(0, 3, 1, 2)  # channels last (n, H, W, C), as matplotlib and PIL hold images
    image_shape = _shape_of(a, image_shape)
    a = a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)
    finite = a[np.isfinite(a)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        lo, hi = float(finite.min()), float(finite.max())
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    shape = tuple(int(v) for v in image_shape)
    a = a.reshape(len(a), *shape)
    if len(shape) == 3:  # (C, H, W): one channel is grey, three are colour, drawn as (H, W, C)
        a = a[:, 0] if shape[0] == 1 else a.transpose(0, 2, 3, 1)
    return a


def image_grid(
    rows: Sequence[np.ndarray],
    row_labels: Sequence[str],
    image_shape: Sequence[int] | None = None,
    n: int = 10,
    title: str = "",
) -> Any:
    """A figure with one row of ``n`` images per array in ``rows`` (e.g. original / reconstruction).

    ``image_shape`` ``(H, W)`` or ``(C, H, W)`` (a fitted model's ``image_shape_``); None: the images' own
    shape, or a square of one or three channels (784 values: MNIST's 28 x 28)."""
    if len(rows) != len(row_labels):
        raise InputError(f"{len(rows)} rows but {len(row_labels)} row labels")
    n = min(n, *(len(r) for r in rows))
    fig, axes = subplots(len(rows), n, figsize=(1.2 * n, 1.3 * len(rows)), squeeze=False)
    for i, (imgs, label) in enumerate(zip(rows, row_labels, strict=True)):
        shown = for_display(np.asarray(imgs)[:n], image_shape)
        for j in range(n):
            ax = axes[i, j]
            ax.imshow(shown[j], cmap="gray" if shown.ndim == 3 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


# what training_curves leaves out (not losses) and which terms are cross-entropies per sample
_NOT_LOSSES = ("lr", "time")
_PER_SAMPLE = ("classification",)
_COLOURS = {"loss": "black", "reconstruction": "C0", "kl": "C1", "classification": "C2"}


def _curve_series(history: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    """The loss series to draw, without a total ``loss`` that only repeats ``reconstruction``."""
    series = {
        k: np.asarray(v, dtype=np.float64)
        for k, v in history.items()
        if k not in _NOT_LOSSES and "accuracy" not in k and len(v)
    }
    for prefix in ("", "val_"):
        total, rec = series.get(prefix + "loss"), series.get(prefix + "reconstruction")
        if (
            total is not None
            and rec is not None
            and total.shape == rec.shape
            and np.allclose(total, rec, rtol=1e-6, atol=0)
        ):
            del series[prefix + "loss"]  # drawn once, as reconstruction, labelled "(= loss)"
    return series


def training_curves(history: Any, *, ax: Any = None, title: str = "training") -> Any:
    """Per-epoch curves of every loss term in ``history``.

    Each term has one colour: training solid, validation (``val_*``) dashed. A total
    ``loss`` equal to ``reconstruction`` is drawn once. Reconstruction and KL are means
    per element (left axis); a classification cross-entropy is a mean per labelled
    sample, on its own right axis. Epochs are whole numbers from 1.

    Parameters
    ----------
    history : mapping of str to sequence of float, or a fitted estimator
        An estimator's ``history_`` (``loss``, ``reconstruction``, ``val_*``, ``lr``, ...), or the estimator.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    title : str
        The Axes title.

    Returns
    -------
    matplotlib Axes
        The left (per-element) Axes; ``ax.figure`` is the whole picture.
    """
    from matplotlib.ticker import MaxNLocator

    history = getattr(history, "history_", history)  # an estimator stands for its history
    if not isinstance(history, Mapping):
        raise InputError(
            f"training_curves takes an estimator's history_ (a mapping of per-epoch lists) or a fitted estimator, "
            f"not {type(history).__name__}"
        )
    if ax is None:
        _, ax = subplots(figsize=(6, 4))
    series = _curve_series(history)
    per_sample = {k: v for k, v in series.items() if k.removeprefix("val_") in _PER_SAMPLE}
    per_element = {k: v for k, v in series.items() if k not in per_sample}
    # with a classification term the total adds a per-sample cross-entropy to per-element terms
    mixed = bool(per_sample) and any(k.removeprefix("val_") == "loss" for k in per_element)
    others = [b for b in dict.fromkeys(k.removeprefix("val_") for k in series) if b not in _COLOURS]
    colours = {**_COLOURS, **{b: f"C{3 + i % 7}" for i, b in enumerate(others)}}  # a term and its val_ share one colour
    handles = _draw(ax, per_element, history, mixed, colours)
    ax.set_ylabel("reconstruction (mean per element), weighted total" if mixed else "loss (mean per element)")
    top = ax
    if per_sample:
        top = ax.twinx()
        handles += _draw(top, per_sample, history, mixed, colours)
        top.set_ylabel("cross-entropy (mean per labelled sample)")
    if max((len(v) for v in series.values()), default=0) < 2:
        ax.set_xlim(0.5, 1.5)  # one epoch: a range of 1 around it, so that its tick is the whole number 1
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10], min_n_ticks=1))
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if handles:
        order = list(
            dict.fromkeys(h.get_label().removeprefix("val_") for h in handles)
        )  # each term, its validation next
        handles.sort(key=lambda h: (order.index(h.get_label().removeprefix("val_")), h.get_label().startswith("val_")))
        top.legend(handles, [h.get_label() for h in handles], fontsize=8)
    return ax


def _draw(
    ax: Any,
    series: Mapping[str, np.ndarray],
    history: Mapping[str, Sequence[float]],
    mixed: bool,
    colours: Mapping[str, str],
) -> list[Any]:
    lines = []
    for key, values in series.items():
        base = key.removeprefix("val_")
        label = key
        if (
            base == "reconstruction"
            and key.replace("reconstruction", "loss") in history
            and key.replace("reconstruction", "loss") not in series
        ):
            label += " (= loss)"
        elif base == "loss" and mixed:
            label += " (weighted total)"
        epochs = np.arange(1, len(values) + 1)
        lines += ax.plot(
            epochs,
            values,
            "--" if key.startswith("val_") else "-",
            color=colours[base],
            label=label,
            marker="." if len(values) < 30 else None,
            linewidth=1.0 if base == "loss" else 1.5,
        )
    if series and all(np.all(v > 0) for v in series.values()):
        ax.set_yscale("log")  # losses fall over decades; a term at or below 0 keeps a linear axis
        ax.yaxis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False))
    return lines


class _PlainLogFormatter(LogFormatter):
    """matplotlib's choice of which log ticks to label, written as plain numbers (0.3, not 3×10⁻¹)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:g}" if super().__call__(x, pos) else ""


def latent_manifold(
    decode: Callable[[np.ndarray], np.ndarray],
    lo: Sequence[float],
    hi: Sequence[float],
    *,
    n: int = 15,
    image_shape: Sequence[int] | None = None,
    title: str = "latent manifold",
) -> Any:
    """Decode an ``n × n`` grid of 2-D codes spanning ``lo``..``hi`` into one mosaic (``image_shape`` as in
    ``image_grid``): the plane of a model with a 2-D code, e.g. ``decode=model.inverse_transform``."""
    xs = np.linspace(lo[0], hi[0], n)
    ys = np.linspace(hi[1], lo[1], n)
    grid = np.array([[x, y] for y in ys for x in xs], dtype=np.float32)
    try:
        decoded = decode(grid)
    except InputError as exc:  # a model of wider codes: its message is about the codes' shape, not the plot's
        if "expects codes of shape" not in str(exc):
            raise
        raise InputError(
            f"latent_manifold decodes a grid of 2-D codes, but this decoder takes other codes ({exc}); draw a model "
            "with n_components=2, or decode codes of its own width yourself"
        ) from exc
    imgs = for_display(decoded, image_shape)  # (n*n, H, W) or (n*n, H, W, 3)
    h, w = imgs.shape[1], imgs.shape[2]
    mosaic = imgs.reshape(n, n, h, w, -1).transpose(0, 2, 1, 3, 4).reshape(n * h, n * w, -1)
    fig, ax = subplots(figsize=(7, 7))
    grey = mosaic.shape[-1] == 1
    ax.imshow(
        mosaic[..., 0] if grey else mosaic,
        cmap="gray" if grey else None,
        vmin=0,
        vmax=1,
        extent=(lo[0], hi[0], lo[1], hi[1]),
        aspect="auto",
    )
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(title)
    return fig
