"""The machinery every aekit estimator shares: validation, the fit pipeline, inference, saving.

``fit`` reads top to bottom as validate -> plan -> build -> train: the parameters are checked
against the table in ``params``, ``accel.plan`` chooses the fast paths once, ``modules.build_net``
builds the network and ``training.train`` runs the loop. The public estimators
(``Autoencoder``, ``SupervisedAutoencoder``) live in ``estimators``.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any, Self, cast

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from aekit import distributed
from aekit._utils import (
    COMPUTE_LOCK,
    FLOAT32_MAX,
    DataFormatError,
    InputError,
    LossFn,
    TrainingWarning,
    as_float32,
    batch_tensor,
    first_beyond_float32,
    in_unit_range,
    is_uint8,
    isolated_rng,
    jsonable,
    outside_stacklevel,
    pixels_from_max,
    resolve_device,
    seed_from,
    signal_record,
    square_shape,
    to_numpy,
    uint8_pixels,
    warn_once,
)
from aekit.accel import (
    PRECISIONS,
    Plan,
    autocast,
    build_step,
    heap_reuse,
    maybe_compile,
    plan,
    settle,
    threads_for_run,
    using_threads,
    working_forward,
)
from aekit.batches import RowBlocks, StreamBatches, TensorBatches
from aekit.files import feature_tensors, fitted_section, run_record, save_model
from aekit.health import PRIOR_DRAWS, SAMPLE_ROWS, check_fit
from aekit.modules import AutoencoderNet, build_net, start_at_mean_
from aekit.objectives import (
    augment,
    classification_loss,
    corrupt,
    kl_divergence,
    reconstruction_loss,
)
from aekit.optim import make_optimizer
from aekit.params import AFTER_FIT, PARAMS, sizes, validate
from aekit.params import PRESETS as PRESETS  # re-exported: the recipes are data about parameters
from aekit.resources import available_bytes, check_memory
from aekit.scaling import (
    RangeStats,
    advice,
    chunk_rows,
    count_zeros,
    fit_scaler,
    may_be_counts,
    range_advice,
    resolve,
    scaler_from_stats,
)
from aekit.scaling import apply as apply_scaler
from aekit.scaling import undo as undo_scaler
from aekit.sources import ArraySource, ImageFolder, Source, as_source
from aekit.training import (
    AUTO_EPOCHS,
    Callback,
    Data,
    LoopState,
    TrainConfig,
    auto_epochs,
    epoch_printer,
    optimizer_step,
    small_data,
    train,
)

log = logging.getLogger(__name__)

#: data_loading="auto" streams data on disk whose float32 copy would exceed this fraction of the available
#: memory (the memory path holds about three such copies at its peak: the conversion, the split, a shuffle)
STREAM_FRACTION = 0.25


def _read_all(source: Source) -> np.ndarray:
    """Every row of ``source`` in memory, as stored: ``(n_samples, n_features)``."""
    return source.read(0, source.n_samples)


def _too_big(source: Source) -> bool:
    """data_loading="auto": whether the float32 copy of ``source`` would take too much of the free memory."""
    free = available_bytes(torch.device("cpu"))
    return free is not None and 4 * source.n_samples * source.n_features > STREAM_FRACTION * free


def classification_terms(
    terms: dict[str, torch.Tensor], logits: torch.Tensor, y: torch.Tensor, training: bool
) -> torch.Tensor:
    """The head's loss on labels ``y`` (-1: unlabelled) into ``terms``, and when evaluating its accuracy on the
    labelled rows; returns the loss."""
    terms["classification"] = classification_loss(logits, y)
    if not training:
        labelled = (y >= 0).float()
        hits = (logits.argmax(1) == y).float() * labelled
        terms["accuracy"] = hits.sum() / labelled.sum().clamp(min=1.0)
    return terms["classification"]


def _checked_chunks(source: Source) -> Iterator[np.ndarray]:
    """Every row of ``source`` in order, in chunks of about a megabyte, float rows checked for NaN and inf."""
    step = max(source.block_rows, 2**18 // max(1, source.n_features))
    for start in range(0, source.n_samples, step):
        raw = source.read(start, min(start + step, source.n_samples))
        if raw.dtype.kind == "f":
            _check_finite(raw.astype(np.float32, copy=False), raw, np.arange(start, start + len(raw)), source.name)
        yield raw


def _check_finite(x: np.ndarray, raw: np.ndarray, rows: np.ndarray, name: str) -> None:
    """Refuse a chunk ``x`` (float32 of ``raw``, the stored rows ``rows``) holding NaN or inf, naming the row."""
    finite = np.isfinite(x)
    if not finite.all():
        i, j = np.argwhere(~finite)[0]
        raise DataFormatError(
            f"{name}: row {int(rows[i])}, column {int(j)} holds {raw[i, j].item()!r}, not a finite float32 "
            f"(|x| <= {FLOAT32_MAX:.4g}); clean, impute or scale the data"
        )


def _codes_converter(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Codes read from disk for ``inverse_transform``: float32 (never scaled: codes are not pixels), finite."""

    def convert(raw: np.ndarray, rows: np.ndarray) -> np.ndarray:
        z = np.array(raw, dtype=np.float32)
        if not np.isfinite(z).all():
            bad = int(rows[np.flatnonzero(~np.isfinite(z).all(axis=1))[0]])
            raise InputError(f"{name}: inverse_transform expects finite numeric codes; row {bad} is not")
        return z

    return convert


@contextmanager
def _interrupts() -> Iterator[None]:
    """While training, SIGTERM behaves like Ctrl-C: stop and keep the model.

    Its handler is Python's own SIGINT handler, a builtin that raises KeyboardInterrupt: a handler written in
    Python runs as a frame of its own wherever the main thread is, and inside a compiled step torch.compile
    traced that frame and lost the interrupt (the run trained on). A builtin has no frame to trace.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is None:
        yield  # (None: a handler set outside Python, kept)
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with signal_record():  # an interrupt that library code swallowed still stops the loop (raise_if_signalled)
            yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Scaler(torch.nn.Module):
    """A fitted ``scale`` as a module: ``(x - offset) / factor``, or (``undo``) ``x * factor + offset``.

    Part of ``encoder_`` / ``decoder_``, and so of the ONNX files: they read and write the user's units.
    """

    offset: torch.Tensor
    factor: torch.Tensor

    def __init__(self, scaler: tuple[np.ndarray, np.ndarray], *, undo: bool = False) -> None:
        super().__init__()
        self.undo = undo
        self.register_buffer("offset", torch.from_numpy(np.array(scaler[0], dtype=np.float32)))
        self.register_buffer("factor", torch.from_numpy(np.array(scaler[1], dtype=np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, n_features), as scaling.apply / scaling.undo
        return x * self.factor + self.offset if self.undo else (x - self.offset) / self.factor


def _data_error(exc: ValueError, X: Any) -> InputError:
    """scikit-learn's refusal of ``X`` as aekit's ``InputError``, with the fix: a DataFrame's text column named."""
    dtypes: Any = getattr(X, "dtypes", None)  # a DataFrame's, per column (a Series has one)
    text = [c for c, dt in dtypes.items() if getattr(dt, "kind", "O") not in "biuf"] if hasattr(dtypes, "items") else []
    if text and ("convert" in str(exc) or "cast" in str(exc)):
        return InputError(
            f"X's column {str(text[0])!r} holds text or categories ({exc}); aekit takes numbers: drop the "
            "column, or encode it first (e.g. scikit-learn's OneHotEncoder in a Pipeline)"
        )
    if "contains NaN" in str(exc) or "contains infinity" in str(exc):  # sklearn's advice runs over lines
        nan = "NaN" in str(exc)
        what = "NaN" if nan else "infinity"
        with contextlib.suppress(Exception):  # where the first one is, when X reads as numbers
            if hasattr(X, "to_numpy"):  # a DataFrame: pandas' own missing value (pd.NA) counts as NaN
                values = X.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                values = np.asarray(X, dtype=np.float64)
            rows = values.reshape(len(values), -1)
            bad = np.argwhere(np.isnan(rows) if nan else np.isinf(rows))
            if len(bad):
                n = f"{len(bad)} value{'s' if len(bad) > 1 else ''}"
                columns = getattr(X, "columns", None)
                column = repr(str(columns[bad[0][1]])) if columns is not None else bad[0][1]
                what += f" ({n}; the first at row {bad[0][0]}, column {column})"
        fix = (
            "aekit needs complete rows: fill the gaps (e.g. scikit-learn's SimpleImputer in a Pipeline) or drop them"
            if nan
            else "aekit needs finite values: clip or drop them"
        )
        return InputError(f"X contains {what}; {fix}")
    if "Expected 2D array, got 1D array" in str(exc) or "Expected a 2-dimensional container" in str(exc):
        size = int(np.asarray(X, dtype=object).size) if X is not None else 0  # sklearn's text holds every value
        return InputError(
            f"X is 1-D ({size} values); expected rows, shape (n_samples, n_features). Reshape your data: "
            "X.reshape(1, -1) for one sample (or X[i:i + 1]), X.reshape(-1, 1) for one feature"
        )
    hint = ""
    if "features, but" in str(exc):
        hint = " Pass data with the features the model was fitted on"
    elif "minimum of 2 is required" in str(exc):
        hint = " Fit on more samples: a model of one sample learns nothing of the data"
    elif "must be in the same order" in str(exc) and "unseen at fit time" not in str(exc):  # the order alone
        hint = "; select them in the fitted order: X[model.feature_names_in_]"
    said = " ".join(f"{exc}".split())  # scikit-learn's lists run over lines: one line
    return InputError((said.rstrip(".") if hint.startswith(";") else said) + hint)


def _named_columns(X: Any) -> bool:
    """Whether ``X`` is a DataFrame whose columns are named (text, as scikit-learn's feature names are): a table,
    not an array wrapped in a frame (columns 0, 1, ...)."""
    columns = getattr(X, "columns", None)
    return columns is not None and len(columns) > 0 and all(isinstance(c, str) for c in columns)


def _numbers_only(X: Any) -> None:
    """Refuse a DataFrame's category, date and time columns: NumPy reads categories as their values (an order
    nobody chose) and dates as nanoseconds beside numbers, or fails to convert them (a traceback)."""
    dtypes: Any = getattr(X, "dtypes", None)  # a DataFrame's; a NumPy array has none
    for name, dtype in dtypes.items() if hasattr(dtypes, "items") else ():
        if str(dtype) == "category":  # numeric categories read as their values: an order nobody chose
            raise InputError(
                f"X's column {str(name)!r} holds text or categories (category); aekit takes numbers: encode it first "
                "(e.g. scikit-learn's OneHotEncoder in a Pipeline), or .astype(float) if its categories are "
                "numbers meant as such"
            )
        kind = getattr(dtype, "kind", "O")
        if kind in "mM":
            what, fix = (
                ("dates or times", "e.g. days since a start date, the hour or the weekday")
                if kind == "M"
                else ("time spans", "e.g. Series.dt.total_seconds()")
            )
            raise InputError(
                f"X's column {str(name)!r} holds {what} ({dtype}); aekit takes numbers: drop the column, or "
                f"derive numbers from it first ({fix})"
            )


#: the largest sparse X aekit makes dense (in bytes of float32): the networks read dense rows
DENSE_LIMIT = 2 * 2**30


def _dense(X: Any) -> Any:
    """A SciPy sparse matrix or array (e.g. TF-IDF) as a dense float32 array, within ``DENSE_LIMIT``; a tensor
    detached on the CPU (numpy() refuses one that requires grad); other X unchanged."""
    import scipy.sparse

    if isinstance(X, torch.Tensor):
        return X.detach().cpu()
    if not scipy.sparse.issparse(X):
        return X
    n, d = X.shape
    if n * d * 4 > DENSE_LIMIT:
        raise InputError(
            f"X is a sparse {n:,} x {d:,} matrix; aekit's networks read dense rows, and dense it would take "
            f"{n * d * 4 / 2**30:.1f} GiB (the limit is {DENSE_LIMIT / 2**30:.0f} GiB): reduce the features first "
            "(e.g. TruncatedSVD to a few hundred in a Pipeline), or transform fewer rows at a time"
        )
    if X.dtype.kind == "c":
        raise InputError(f"X is a sparse matrix of complex numbers ({X.dtype}); aekit takes real numbers")
    if X.dtype.itemsize <= 4:  # uint8 stays uint8 (the pixel rule reads it), bool and small ints as they are
        return X.toarray()
    values = X.tocsr().data  # every format's stored values (dok and lil have no .data)
    finite = values[np.isfinite(values)]
    if finite.size and float(np.abs(finite).max()) > FLOAT32_MAX:  # as a dense X is refused, not turned into inf
        raise InputError(
            f"X holds {float(finite[np.argmax(np.abs(finite))]):.4g}, beyond float32's range (|x| <= "
            f"{FLOAT32_MAX:.4g}), the precision aekit trains in; scale or clip X (e.g. MaxAbsScaler)"
        )
    return X.astype(np.float32).toarray()


def plain_numbers(X: Any) -> Any:
    """``X`` as the networks read it before validation: a sparse matrix (or a pandas frame of sparse columns)
    made dense, a tensor detached, date columns refused, a file's path refused with what to pass."""
    if isinstance(X, (str, bytes, os.PathLike)):
        raise InputError(
            f"X is a path ({os.fsdecode(X)!r}); the estimators take arrays: pass np.load(path, mmap_mode='r') (a "
            ".npy read in chunks), aekit.load_array(path)[0], or an h5py/zarr dataset"
        )
    if type(X).__module__.startswith("pandas") and hasattr(X, "columns"):
        import pandas as pd

        sparse = {c: t.subtype for c, t in X.dtypes.items() if isinstance(t, pd.SparseDtype)}
        if sparse:  # scikit-learn asks for .toarray(), which a DataFrame has not
            n, d = X.shape
            if n * d * 4 > DENSE_LIMIT:
                raise InputError(
                    f"X is a sparse DataFrame of {n:,} x {d:,}; dense it would take {n * d * 4 / 2**30:.1f} GiB "
                    f"(the limit is {DENSE_LIMIT / 2**30:.0f} GiB): reduce the features first, or pass fewer rows"
                )
            X = X.astype(sparse)  # dense columns, their names kept
    X = _dense(X)
    _numbers_only(X)
    return X


def _frame_rows(X: Any) -> np.ndarray:
    """A DataFrame's rows as one array, numbers kept as they are (uint8 too) and NaN left to the per-chunk check
    that names the row; a text column named, as when the frame is read whole."""
    from sklearn.utils import check_array

    try:
        return check_array(X, dtype="numeric", ensure_all_finite=False, ensure_2d=False)
    except ValueError as exc:
        raise _data_error(exc, X) from exc


def _warn_uint8_frame() -> None:
    """Once per process: named uint8 columns (a DataFrame) are a table's numbers, not pixels."""
    warn_once(
        ("uint8-frame",),
        "X is a DataFrame of named uint8 columns: read as numbers, not as 0-255 pixels (images come as arrays); "
        "for images pass scale='pixels'",
        stacklevel=outside_stacklevel(),
    )


def grey_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """An image shape with a single channel dropped: (1, H, W) and (H, W, 1) are the grey images (H, W)."""
    if len(shape) == 3 and shape[0] == 1:
        return shape[1:]
    if len(shape) == 3 and shape[2] == 1 and shape[0] != 1:
        return shape[:2]
    return shape


def fitted_image_shape(est: Any) -> tuple[int, ...] | None:
    """The images' shape a fitted (or loaded) estimator reads: learnt in fit, else its ``image_shape``; None: rows."""
    shape = getattr(est, "image_shape_", None) or getattr(est, "image_shape", None)
    return tuple(int(v) for v in shape) if shape else None


class _AutoencoderBase(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared machinery; use ``Autoencoder`` or ``SupervisedAutoencoder``."""

    # ------------------------------------------------------------------ validation

    def _validate_params(self) -> None:
        validate(self.get_params(deep=False))  # the table in params.py: types, ranges, choices, rules between them
        if self.early_stopping and not self.validation_fraction:
            log.info("early_stopping without validation_fraction monitors the training loss")

    def _X(self, X: Any, *, reset: bool) -> np.ndarray:
        """Validate X and return it float32 as the model reads it: uint8 pixels divided by 255, then ``scale``d.

        With ``reset`` (fit) the scaler is not applied yet: ``_fit_range`` fits it after validation.
        """
        X = plain_numbers(X)
        pixels = self._reads_pixels(X, reset)
        self._image_rows(tuple(np.shape(X)[1:]) if getattr(X, "ndim", 2) > 2 else (), reset)
        if getattr(X, "ndim", 2) > 2:  # images (n, H, W) or (n, C, H, W): one row per image
            X = np.asarray(X).reshape(X.shape[0], -1)
        try:  # fit: one sample teaches nothing (a scale fitted on it zeroes it); inference: any number
            X = validate_data(self, X, reset=reset, dtype=[np.float32, np.float64], ensure_min_samples=1 + reset)
        except ValueError as exc:  # sklearn's plain ValueError (NaN, inf, no samples, feature count): a user error
            if isinstance(exc, InputError):
                raise
            raise _data_error(exc, X) from exc
        beyond = first_beyond_float32(np.asarray(X))
        if beyond is not None:  # finite in float64, inf once cast: refuse here rather than train on inf
            raise InputError(
                f"X[{', '.join(map(str, beyond))}] = {float(np.asarray(X)[beyond]):.4g} is beyond float32's range "
                f"(|x| <= {FLOAT32_MAX:.4g}), the precision aekit trains in; scale or clip X (e.g. StandardScaler)"
            )
        X = np.asarray(X, dtype=np.float32)
        X = as_float32(X, pixels=pixels)
        if not reset:
            X = apply_scaler(X, self._scaler())
        if not X.flags.writeable or not X.flags.c_contiguous:
            X = np.array(X, dtype=np.float32, order="C")
        if not reset and X.size and self._needs_unit_range() and not in_unit_range(float(X.min()), float(X.max())):
            lo, hi = float(X.min()), float(X.max())
            scaled = "after this model's scale" if self._scaler() is not None else "as the model reads it"
            warn_once(  # once per process and estimator class: evaluate's transform and reconstruct say it once
                ("range", type(self).__name__),
                self._past_minmax("X", lo, hi)
                or f"X holds values outside [0, 1] {scaled} (values in [{lo:.4g}, {hi:.4g}]), "
                "but this model was trained on data in [0, 1] (sigmoid output); its reconstructions cannot reach "
                "them. Pass X in the units it was fitted on (tabular data: scaled the same way, e.g. by the same "
                "fitted MinMaxScaler; images: divide 0-255 pixels by 255, or pass uint8), or fit with "
                "scale='minmax' so that the model scales its input itself. Shown once per process",
                stacklevel=outside_stacklevel(),  # the line that called transform, reconstruct, ...
            )
        return X

    def _image_rows(self, row_shape: tuple[int, ...], reset: bool) -> None:
        """Learn (``fit``) or check (later calls) the images' shape of rows that arrive as images.

        ``fit`` sets ``image_shape_``: the ``image_shape`` parameter, else the shape of the images in X
        (``(n, H, W)``, ``(n, C, H, W)``, a folder of images), else None (rows). The conv body is built
        on it and the model file keeps it, so a conv fit on images needs no parameter. Images of another
        shape with as many values are refused, in ``fit`` against the parameter and later against the
        fitted shape (a transposed stack would be read scrambled). ``(n, H, W, 1)`` is grey ``(H, W)``.
        """
        image = grey_shape(tuple(int(s) for s in row_shape)) if len(row_shape) in (2, 3) else None
        known = self.image_shape if reset else (getattr(self, "image_shape_", None) or self.image_shape)
        if image is not None and len(image) == 3 and image[2] in (3, 4) and image[0] not in (1, 2, 3, 4):
            if known is None and not (reset and (self.architecture == "conv" or self.augment)):
                image = None  # (n, H, W, C), PIL's and TensorFlow's order: a dense body reads rows in any order
            else:
                raise InputError(
                    f"X holds images of shape {image}, channels last; aekit reads (channels, height, width): "
                    "pass X.transpose(0, 3, 1, 2) (a file: save it so)"
                )
        if image is not None and known is not None and image != grey_shape(tuple(int(s) for s in known)):
            fitted = (
                f"{{image_shape={tuple(known)}}}"
                if reset
                else f"the model was fitted on images of shape {tuple(known)}"
            )
            raise InputError(
                f"X holds images of shape {image}, but {fitted}; pass images of that shape (reshape or transpose them)",
                param="image_shape" if reset else None,
                values={},
            )
        if reset:
            self.image_shape_ = tuple(int(s) for s in self.image_shape) if self.image_shape is not None else image

    def _reads_pixels(self, X: Any, reset: bool) -> bool:
        """Whether ``X`` (as passed, before conversion) is 0-255 pixels to divide by 255.

        ``fit`` decides once (``pixels_``): uint8 by ``_utils.uint8_pixels`` unless ``scale`` does the
        scaling; other data leave the decision to ``_fit_range``. Later calls follow it.
        """
        if not reset:
            return bool(is_uint8(X) and getattr(self, "pixels_", True))  # files from before pixels_: always
        self.pixels_: bool | None = None
        if is_uint8(X) and self.scale is None and _named_columns(X):  # a table's columns are numbers
            _warn_uint8_frame()
            self.pixels_ = False
        elif is_uint8(X):
            self.pixels_ = bool(uint8_pixels(X, stacklevel=4)) if self.scale is None else False  # at fit's caller
        return bool(self.pixels_)

    def _scaler(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The fitted ``scale`` as ``(offset, factor)``; None without one (or before fit)."""
        offset, factor = getattr(self, "input_offset_", None), getattr(self, "input_scale_", None)
        return None if offset is None or factor is None else (offset, factor)

    def _past_minmax(self, what: str, lo: float, hi: float) -> str:
        """The range warning for data read in ``[lo, hi]`` outside [0, 1] when this model scales by min/max
        itself (then "pass data in its units" or "fit with scale='minmax'" cannot help); "" otherwise."""
        if self.scale != "minmax":
            return ""
        return (
            f"{what} holds values in [{lo:.4g}, {hi:.4g}] after this model's scale='minmax', which maps the "
            "training data's per-feature min and max to [0, 1]: these go past them (normal for sparse or drifting "
            "data), and the sigmoid output cannot reconstruct past [0, 1], so they come back capped at 0 or 1. "
            "Where such data are expected, fit with scale='standard' and loss='auto', output_activation='auto' "
            "(a linear, unbounded output), or clip the data to the training range (input_offset_ to "
            "input_offset_ + input_scale_). Shown once per process"
        )

    def _fit_range(self, X: np.ndarray) -> np.ndarray:
        """Fit ``scale``, resolve "auto" loss and output, warn about mismatches; ``X`` as the model reads it."""
        scaler = fit_scaler(X, self.scale)
        self.input_offset_: np.ndarray | None = None if scaler is None else scaler[0]
        self.input_scale_: np.ndarray | None = None if scaler is None else scaler[1]
        X = np.ascontiguousarray(apply_scaler(X, scaler))
        lo, hi = (float(X.min()), float(X.max())) if X.size else (0.0, 1.0)  # one pass each: the checks below share it
        unit = in_unit_range(lo, hi)
        uint8 = self.pixels_ is not None  # decided by _reads_pixels for uint8 rows only
        if self.pixels_ is None:  # not uint8: uint8 passed later reads as pixels only for a [0, 1] model
            self.pixels_ = bool(unit and self.scale is None)
        self._check_conv_rows(int(np.prod(X.shape[1:])), uint8)
        self.loss_, self.output_activation_ = resolve(self.loss, self.output_activation, unit)
        self._check_range(X)
        names = getattr(self, "feature_names_in_", None)
        notes = advice(X, self.scale, self.loss_, self.output_activation_, self._saturating(), names=names)
        for note in notes + self._noise_advice(lo, hi):
            warnings.warn(note, UserWarning, stacklevel=outside_stacklevel())  # once per fit, at the user's line
        return X

    def _noise_advice(self, lo: float, hi: float) -> list[str]:
        """Denoising noise made in raw units far from [0, 1] (``scale=None``): a trial's 0-255 images got gaussian
        noise of 0.4 grey levels, invisible, and salt_pepper set pixels to 0 or 1."""
        noise, factor = getattr(self, "noise", None), float(getattr(self, "noise_factor", 0.0) or 0.0)
        if noise not in ("gaussian", "salt_pepper") or self.scale is not None or in_unit_range(lo, hi):
            return []
        share = factor / max(hi - lo, 1e-12)
        if noise == "gaussian" and share >= 0.01:  # noise of a visible size (e.g. standardised data): as meant
            return []
        what = (
            f"noise_factor={factor:g} is {share:.2%} of that range"
            if noise == "gaussian"
            else ("salt_pepper sets values to 0 or 1")
        )
        pixels = (
            "scale='pixels' for 0-255 images (the noise then acts in [0, 1]), " if lo >= 0 and 2 < hi <= 255 else ""
        )
        return [
            f"noise={noise!r} corrupts X in the units the model reads, here values in [{lo:.3g}, {hi:.3g}]: {what}. "
            f"Pass {pixels}scale='standard' for tables (noise in standard deviations), or set noise_factor in X's units"
        ]

    def _fit_source_range(self, source: Source) -> None:
        """``_fit_range`` for data read from disk: the same decisions from one chunked pass over ``source``.

        Folders of images are 0-255 pixels and need no pass; other sources are read once, in order,
        for their per-feature minimum, maximum, mean and standard deviation (``scaling.RangeStats``).
        """
        uint8 = source.dtype == np.uint8
        folder = isinstance(getattr(source, "source", source), ImageFolder)  # a --limit Head keeps its source
        self.input_offset_, self.input_scale_ = None, None
        if folder and self.scale in (None, "pixels"):  # 8-bit images: pixels, in [0, 1] once divided by 255
            self.pixels_ = self.scale is None
            if self.scale == "pixels":
                self.input_offset_ = np.zeros(source.n_features, np.float32)
                self.input_scale_ = np.full(source.n_features, 255.0, np.float32)
            low, high = np.zeros(source.n_features), np.ones(source.n_features)
        else:
            stats = RangeStats.of_chunks(_checked_chunks(source))
            named = getattr(self, "feature_names_in_", None) is not None  # a DataFrame streamed from memory
            if uint8 and self.scale is None and named:  # a table's columns are numbers, as when read whole
                _warn_uint8_frame()
            self.pixels_ = bool(
                uint8 and self.scale is None and not named and pixels_from_max(int(stats.high.max()), stacklevel=5)
            )
            self._check_conv_rows(source.n_features, uint8)
            if self.pixels_:
                stats = stats.divided(255.0)
            scaler = scaler_from_stats(stats, self.scale)
            if scaler is not None:
                self.input_offset_, self.input_scale_ = scaler
            seen = stats.scaled(scaler)
            low, high = seen.low, seen.high
        unit = in_unit_range(float(low.min()), float(high.max()))
        if not uint8 and self.scale is None:  # as _fit_range: floats in [0, 1] are read as images are
            self.pixels_ = bool(unit)
        self.loss_, self.output_activation_ = resolve(self.loss, self.output_activation, unit)
        self._check_range_of(float(low.min()), float(high.max()), f" in {source.name}")
        names = getattr(self, "feature_names_in_", None)
        args = (low, high, self.scale, self.loss_, self.output_activation_, self._saturating())
        counts = None  # counts get other advice than standardising (scaling.count_zeros), read from the first rows
        if not self.pixels_ and may_be_counts(low, high, self.scale, self._saturating()):
            counts = count_zeros(source.read(0, min(source.n_samples, chunk_rows(source.n_features))))
        notes = range_advice(*args, names=names, counts=counts)
        for note in notes + self._noise_advice(float(low.min()), float(high.max())):
            warnings.warn(note, UserWarning, stacklevel=outside_stacklevel())  # once per fit, at the user's line

    def _saturating(self) -> bool:
        """Whether large inputs can pin units to their bounds (tanh or sigmoid hidden units or code)."""
        hidden = self.activation or ("relu" if self.architecture == "conv" else "tanh")  # None: the body's own
        return hidden in ("tanh", "sigmoid") or self.code_activation in ("tanh", "sigmoid")

    def _resolved(self) -> tuple[str, str]:
        """The fitted loss and output activation; before fit, "auto" as for data in [0, 1] (e.g. MNIST)."""
        if hasattr(self, "loss_"):
            return self.loss_, self.output_activation_
        return resolve(self.loss, self.output_activation, unit=True)

    def _needs_unit_range(self) -> bool:
        loss, out = self._resolved()
        return loss == "bce" or (self.noise is not None and out == "sigmoid")

    def _check_range(self, X: np.ndarray) -> None:
        if self._needs_unit_range():
            self._check_range_of(float(X.min()), float(X.max()))

    def _check_range_of(self, lo: float, hi: float, where: str = "") -> None:
        """Refuse training data in ``[lo, hi]`` (as the model reads them) where BCE or noise needs [0, 1]."""
        if self._needs_unit_range():
            if not in_unit_range(lo, hi):
                loss, out = self._resolved()
                bce = loss == "bce"
                why = "{loss}" if bce else "{noise} with a sigmoid output (its noise is clipped to [0, 1])"
                auto = "{loss='auto'}" if bce else "{output_activation='auto'}"
                raise InputError(  # the data is at fault (no param); the message names parameters as the fix
                    f"{why} needs X in [0, 1], found values in [{lo:.4g}, {hi:.4g}]{where}"
                    + (" after scaling" if self.scale is not None else "")
                    + f"; pass {{scale='minmax'}} to scale X into [0, 1], or {auto} "
                    "(a linear output for such data)",
                    values={"loss": self.loss, "noise": self.noise},
                )

    # ------------------------------------------------------------------ large data

    def _train_input(self, X: Any) -> np.ndarray | Source:
        """``X`` for ``fit``: a float32 array (memory path) or a source that streams (see ``data_loading``)."""
        PARAMS["data_loading"].check(self.data_loading)
        source = as_source(X)
        if self.data_loading == "memory" or (source is None and self.data_loading == "auto"):
            return self._in_memory(X, source)
        names = None
        if source is None:  # data_loading="stream" on an array in memory (a DataFrame keeps its columns' names)
            from sklearn.utils.validation import _get_feature_names

            names = _get_feature_names(X)
            source = ArraySource(_frame_rows(X) if hasattr(X, "dtypes") else np.asarray(X))
        if self.data_loading == "auto" and not _too_big(source):
            log.info("data_loading='auto': %s fits in memory, reading it whole", source.name)
            return self._in_memory(X, source)
        log.info(
            "streaming %s (%d rows)%s", source.name, source.n_samples, " from memory" * isinstance(source, ArraySource)
        )
        self._image_rows(tuple(source.row_shape), reset=True)
        self.n_features_in_ = source.n_features
        if names is not None:  # other data are then refused or read by name, as after an in-memory fit
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return source

    def _in_memory(self, X: Any, source: Source | None) -> np.ndarray:
        """``fit``'s X read whole: ``_X`` of the array, or of a source's rows (its images' shape kept)."""
        if source is None or isinstance(X, np.ndarray):
            return self._X(X, reset=True)
        raw = _read_all(source)
        if raw.dtype.kind == "f":  # a bad value named by its file and row, as when streaming
            step = 2**18 // max(1, source.n_features) + 1
            for start in range(0, len(raw), step):
                part, rows = raw[start : start + step], np.arange(start, min(start + step, len(raw)))
                _check_finite(part.astype(np.float32, copy=False), part, rows, source.name)
        rows = self._X(raw, reset=True)
        self._image_rows(tuple(source.row_shape), reset=True)
        return rows

    def _source(self, X: Any) -> Source | None:
        """``X`` as a source for chunked inference (data on disk, or a source), checked against the fit; else None."""
        source = as_source(X)
        if source is not None:
            self._image_rows(tuple(source.row_shape), reset=False)
        if source is not None and source.n_features != self.n_features_in_:
            raise InputError(
                f"{source.name}: X has {source.n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input. Pass data with the features the model was fitted on"
            )
        return source

    def _converter(self, source: Source, *, training: bool) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``convert(raw rows, row ids) -> float32`` as the model reads them: ``_X``'s pixel rule, ``scale``
        and checks, chunk by chunk.

        Runs in the prefetch thread; a bad value fails naming the file and the row.
        """
        uint8 = source.dtype == np.uint8
        pixels = uint8 and bool(getattr(self, "pixels_", True))  # files from before pixels_: uint8 is pixels
        scaler = self._scaler()
        unit = self._needs_unit_range()
        name, caller = source.name, type(self).__name__

        def convert(raw: np.ndarray, rows: np.ndarray) -> np.ndarray:
            x = as_float32(raw, pixels=pixels)
            if np.shares_memory(x, raw):  # a float32 source: a copy, so a queued batch holds no window alive
                x = x.copy()
            if not uint8:
                _check_finite(x, raw, rows, name)
            x = apply_scaler(x, scaler)
            if unit and x.size and not in_unit_range(float(x.min()), float(x.max())):
                lo, hi = float(x.min()), float(x.max())
                if training:  # the pass of _fit_source_range saw other values: the file changed since
                    self._check_range_of(lo, hi, f" in {name} (rows {int(rows.min())} to {int(rows.max())})")
                warn_once(
                    ("range", caller, name),
                    self._past_minmax(name, lo, hi)
                    or f"{name} holds values outside [0, 1] ([{lo:.4g}, {hi:.4g}]) as this model reads them, but it "
                    "was trained on data in [0, 1] (sigmoid output); pass data in the units it was fitted on. "
                    "Shown once per process",
                )
            return x

        return convert

    def _stream_split(
        self, source: Source, y_idx: np.ndarray | None, device: torch.device, seed: int
    ) -> tuple[StreamBatches, StreamBatches | None]:
        """Training batches streamed from ``source``, and validation ones (whole blocks held out)."""
        blocks = RowBlocks.all(source.n_samples, source.block_rows)
        val_blocks = None
        if self.validation_fraction:
            blocks, val_blocks = blocks.split(float(self.validation_fraction), seed)
        common: dict[str, Any] = {"labels": y_idx, "device": device, "seed": seed, **self._stream_options}
        if distributed.is_distributed():  # each rank reads its part of every global batch
            common.update(rank=distributed.rank(), world_size=distributed.world_size())
        train_batches = StreamBatches(
            source,
            self._converter(source, training=True),
            blocks=blocks,
            batch_size=int(self.batch_size),
            min_batch=2 if self.batchnorm else 1,
            **common,
        )
        if val_blocks is None:
            return train_batches, None
        val = StreamBatches(
            source, self._converter(source, training=True), blocks=val_blocks, batch_size=4096, shuffle=False, **common
        )
        return train_batches, val

    #: the length of ``epochs="auto"`` on data that give enough optimizer steps (``training.auto_epochs``)
    _reference_epochs = AUTO_EPOCHS

    #: keyword arguments for ``batches.StreamBatches`` (``window``, ``depth``): set on an instance by tests and
    #: benchmarks; not a parameter
    _stream_options: Mapping[str, Any] = MappingProxyType({})

    # ------------------------------------------------------------------ building

    def _net_kwargs(self, n_features: int, n_classes: int | None) -> dict[str, Any]:
        return {
            "n_features": n_features,
            "architecture": self.architecture,
            "hidden_layer_sizes": sizes(self.hidden_layer_sizes),
            "n_components": self.n_components,
            "activation": self.activation,
            "code_activation": self.code_activation,
            "output_activation": self._resolved()[1],
            "batchnorm": self.batchnorm,
            "dropout": self.dropout,
            "image_shape": fitted_image_shape(self),  # learnt from the data in fit
            "conv_filters": sizes(self.conv_filters),
            "kernel_size": self.kernel_size,
            "variational": self.variational,
            "n_classes": n_classes,
            **self._head_kwargs(),
        }

    def _head_kwargs(self) -> dict[str, Any]:
        return {}

    def _loss_fn(
        self,
        net: AutoencoderNet,
        n_features: int,
        device: torch.device,
        forward: Callable[[torch.Tensor], dict[str, torch.Tensor]] | None = None,
    ) -> Callable[[tuple[torch.Tensor, ...], bool], dict[str, torch.Tensor]]:
        """The training/validation loss; ``forward`` replaces ``net`` *and* autocast (it handles precision itself)."""
        loss_kind, out_act = self._resolved()
        amp = autocast(device, self.precision) if forward is None else contextlib.nullcontext
        forward = net if forward is None else forward
        mixed = self.precision != "float32"
        noise, factor, beta = self.noise, float(self.noise_factor), float(self.beta)
        moves, shape, units = self.augment, self._augment_shape(n_features), self._augment_units(device)
        clip = out_act == "sigmoid"
        w_rec, w_cls = self._loss_weights()

        def loss_fn(batch: tuple[torch.Tensor, ...], training: bool) -> dict[str, torch.Tensor]:
            x = batch[0]  # (B, n_features)
            if moves and shape and training:  # new images: the target too
                x = augment(x, moves, shape, units)
            x_in = corrupt(x, noise, factor, clip=clip) if (noise and training) else x
            with amp():
                out = forward(x_in)
            if mixed:  # losses in float32
                out = {k: v.float() for k, v in out.items()}
            rec = reconstruction_loss(out["recon_logits"], x, loss_kind, out_act)
            terms = {"reconstruction": rec}
            total = w_rec * rec
            if "mu" in out:
                terms["kl"] = kl_divergence(out["mu"], out["logvar"], n_features)
                total = total + beta * terms["kl"]
            if "class_logits" in out:
                total = total + w_cls * classification_terms(terms, out["class_logits"], batch[1], training)
            terms["loss"] = total
            return terms

        return loss_fn

    def _loss_weights(self) -> tuple[float, float]:
        return 1.0, 0.0

    # ------------------------------------------------------------------ fitting

    @contextlib.contextmanager
    def _as_before_if_refused(self) -> Iterator[None]:
        """A refit refused before its network replaced the fitted one leaves the model as it was.

        Validation sets fitted attributes as it goes (the features, the scaler, "auto"'s choices); a review's
        refit with another ``scale``, refused by a later check, left the old network beside a new scaler, which
        transform used and a saved file could not hold. Once training has started the new model is kept
        (an error or Ctrl-C never loses it).
        """
        if not hasattr(self, "net_"):
            yield
            return
        before, net = dict(self.__dict__), self.net_
        try:
            yield
        except BaseException:
            if getattr(self, "net_", None) is net:
                self.__dict__.clear()
                self.__dict__.update(before)
            raise

    def _fit(
        self,
        X: np.ndarray | Source,
        y_idx: np.ndarray | None,
        n_classes: int | None,
        resume_from: str | os.PathLike[str] | None,
    ) -> None:
        """validate -> plan -> build -> train; the fitted attributes exist before training starts.

        ``X`` is a float32 array (memory path) or a source (stream path, see ``_train_input``).
        """
        with COMPUTE_LOCK:  # threads of one process fit one at a time (see COMPUTE_LOCK)
            self._validate_params()
            self._check_conv_hidden()
            self._check_conv_dropout(resume_from)
            if isinstance(X, np.ndarray):
                X = self._fit_range(X)
                n, n_features = X.shape
            else:  # streamed: scaled and checked chunk by chunk as they are read (see _converter)
                self._fit_source_range(X)
                n, n_features = X.n_samples, X.n_features
            self._augment_shape(n_features)  # rows that are no images: refused before any work
            self._check_code_size(n_features)
            device = distributed.setup(resolve_device(self.device))  # under torchrun: joins the launch
            seed, run_random_state = self._run_seed(resume_from)
            data_bytes = X.nbytes if isinstance(X, np.ndarray) else 0
            check_memory(
                self._net_kwargs(n_features, n_classes), int(self.batch_size), n, device, data_bytes
            )  # before allocating
            with isolated_rng(seed, device):
                net = build_net(**self._net_kwargs(n_features, n_classes)).to(device)
                tensors: Data
                val: Data | None
                if isinstance(X, np.ndarray):
                    tensors, val = self._split(X, y_idx, device)
                    n_train = tensors[0].shape[0]
                else:
                    tensors, val = self._stream_split(X, y_idx, device, seed)
                    n_train = sum(tensors.global_sizes)  # every rank's rows
                self.epochs_ = self._resolve_epochs(n_train, resume_from)
                if net.has_decoder and small_data(n_train, int(self.batch_size)):  # MNIST: Keras' zero biases
                    start_at_mean_(net, self._train_mean(tensors))
                fast = self._plan(device, n_train)
                optimizer = make_optimizer(
                    self.optimizer,
                    net.parameters(),
                    float(self.learning_rate),
                    float(self.momentum),
                    fused=fast.fused_optimizer,
                    working_dtype=fast.working_dtype,
                )
                fast = settle(fast, optimizer)  # e.g. no fused Adam on this build: no CUDA graph
                state, callbacks = self._resume(resume_from, net, optimizer, seed, run_random_state, n_train)
                if distributed.is_distributed():  # after _resume: a checkpoint's RNG state draws the order
                    tensors, val = self._shard(tensors, val, seed)
                # fitted attributes exist before training: an error or Ctrl-C never loses the model
                self.net_ = net
                self.device_ = device
                self.seed_ = seed
                self._params_at_fit = self._json_params(seed)  # what save() writes: set_params acts at the next fit
                self.history_ = state.history
                self.n_iter_ = state.epoch
                self.fit_warnings_: list[str] = []
                self._train(fast, net, optimizer, (tensors, val), callbacks, state)
            net.eval()
            self._check_health(X, y_idx)

    def _train_mean(self, data: Data) -> torch.Tensor:
        """The mean training row ``(n_features,)`` as the model reads it (streamed data: one pass; they are small)."""
        if isinstance(data, Sequence):
            return data[0].mean(dim=0)
        total, n = None, 0
        for batch in data.epoch(0):
            part = batch[0].sum(dim=0, dtype=torch.float64)
            total, n = (part if total is None else total + part), n + batch[0].shape[0]
        assert total is not None  # a training split has rows
        if distributed.is_distributed():  # each rank read its part
            both = distributed.all_sum({"total": total, "n": float(n)})
            total, n = both["total"], int(both["n"])
        return (total / n).float()

    def _shard(self, tensors: Data, val: Data | None, seed: int) -> tuple[Data, Data | None]:
        """Data-parallel: in-memory tensors as this rank's part of every global batch (streamed data already is).

        Every rank draws the same permutations: from the seeded RNG, as one process does (and as a
        checkpoint stores it), when nothing else draws from it; with random layers (noise, dropout,
        sampling), which draw on each rank from its own seed, from a copy of the seeded RNG as it stands.
        """
        random_layers = self._draws_in_training()
        if isinstance(tensors, Sequence):
            rank, size = distributed.rank(), distributed.world_size()
            device = tensors[0].device
            generator = None
            if random_layers:
                generator = torch.Generator(device=device)
                default = torch.cuda.default_generators[device.index or 0] if device.type == "cuda" else None
                generator.set_state(torch.get_rng_state() if default is None else default.get_state())
            tensors = TensorBatches(
                tensors,
                int(self.batch_size),
                min_batch=self._train_config(1).min_batch,
                rank=rank,
                world_size=size,
                generator=generator,
            )
            if val is not None and isinstance(val, Sequence):
                val = TensorBatches(val, 4096, shuffle=False, rank=rank, world_size=size)
        if random_layers:  # noise, dropout, sampling: independent across ranks
            torch.manual_seed(seed + 7919 * distributed.rank())
        return tensors, val

    def _draws_in_training(self) -> bool:
        """Whether a training step draws random numbers (noise, augmentation, dropout, a variational code)."""
        return bool(self.noise) or bool(self.augment) or float(self.dropout) > 0 or bool(self.variational)

    def _augment_units(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The fitted scaler as tensors, for ``augment`` to move images in their own units; None without one."""
        scaler = self._scaler() if self.augment else None
        if scaler is None:
            return None
        offset, factor = (torch.as_tensor(np.asarray(v, np.float32), device=device) for v in scaler)
        return offset, factor

    def _augment_shape(self, n_features: int) -> tuple[int, int, int] | None:
        """The ``(C, H, W)`` of the images ``augment`` moves (None without it): the images' shape, else square
        single-channel rows of at least 8 x 8; other rows are refused."""
        if self.augment is None:
            return None
        shape = fitted_image_shape(self)
        if shape is None:
            side = math.isqrt(n_features)
            if side * side != n_features or side < 8:  # a table of 16 features is no 4 x 4 image, unless told
                what = "are no square image" if side * side != n_features else f"would be {side} x {side} images"
                raise InputError(
                    f"{{augment}} moves and turns images, but the {n_features} features of X {what}, and their "
                    "shape is not given; pass {image_shape=(height, width)} for images, or drop {augment} for "
                    "tabular data",
                    param="augment",
                    values={"augment": self.augment},
                )
            shape = (side, side)
        elif math.prod(shape) != n_features:  # a review: trained into a RuntimeError of torch's reshape
            raise InputError(
                f"{{image_shape}} holds {math.prod(shape)} values, but the rows of X have "
                f"{n_features}; pass the images' own shape, or drop {{augment}} for tabular data",
                param="image_shape",
                values={"image_shape": self.image_shape, "augment": self.augment},
            )
        return (1, *shape) if len(shape) == 2 else (shape[0], shape[1], shape[2])

    def _resolve_epochs(self, n_train: int, resume_from: str | os.PathLike[str] | None = None) -> int:
        """This fit's epochs: ``epochs``, or for "auto" the reference's 20 with a floor of optimizer steps.

        Resuming, "auto" continues the checkpoint's run to the length it had; a length that its epochs
        have already reached is refused (``InputError``): the run would end at once as "completed" and
        the CLI would delete the checkpoint that the user meant to continue.
        """
        auto = isinstance(self.epochs, str)  # "auto" (validated)
        epochs = auto_epochs(n_train, int(self.batch_size), self._reference_epochs) if auto else int(self.epochs)
        if resume_from is None:
            return epochs
        from aekit.files import read_checkpoint_metadata

        ck = read_checkpoint_metadata(resume_from)
        planned, done = ck.params.get("epochs"), int(ck.loop["epoch"])
        if planned is None:  # a file without its run's length: load_checkpoint refuses it, naming that
            return epochs
        epochs = int(planned) if auto else epochs
        if epochs <= done:
            more = max(int(planned), done + 1)
            raise InputError(
                f"{resume_from}: its run has done {done} epochs, and {{epochs}} ends it there; "
                f"pass {{epochs={more}}} or more to continue it",
                param="epochs",
                values={"epochs": self.epochs},
            )
        return epochs

    #: whether a code as wide as the input is no reduction (an autoencoder could copy its input); a map is
    #: another thing: a 2-D map of 2-D data still places points by their neighbours
    _code_reduces = True

    def _check_code_size(self, n_features: int) -> None:
        """Warn of a dense code at least as wide as the data: an autoencoder can then learn to copy its input
        (no noise to denoise, no variational code), and the codes reduce nothing."""
        k = self.n_components
        if not self._code_reduces or k is None or self.architecture != "dense" or k < n_features:
            return
        if self.noise is None and not self.variational:
            warnings.warn(
                f"n_components={k} is not below the {n_features} features of X: the code reduces nothing and "
                "the autoencoder can learn to copy its input; pass a smaller n_components (or noise='gaussian' "
                "for an overcomplete denoising autoencoder)",
                UserWarning,
                stacklevel=outside_stacklevel(),
            )

    def _check_conv_rows(self, n_features: int, uint8: bool) -> None:
        """Warn when a conv body reads flat rows that do not look like images (float values outside [0, 1], or
        scaled other than as pixels) as square images: a trial's 64-sample sensor windows became 8 x 8 images
        without a word. uint8 rows are taken for pixels, as the rest of aekit takes them."""
        looks_like_pixels = self.pixels_ or uint8 or self.scale == "pixels"
        if self.architecture != "conv" or fitted_image_shape(self) is not None or looks_like_pixels:
            return
        side = math.isqrt(n_features)
        if side * side != n_features:  # no square: the network's build asks for the shape
            return
        warnings.warn(
            f"architecture='conv' reads each row of {n_features} values as an image of {side} x {side}, but X's "
            "rows are flat and hold values beyond [0, 1] (or are scaled), as series and tables do; for images pass "
            f"image_shape=({side}, {side}) (their shape), for other rows use architecture='dense'",
            UserWarning,
            stacklevel=outside_stacklevel(),
        )

    def _check_conv_hidden(self) -> None:
        """Warn (in ``fit``: a loaded model's choice is past acting on) of ``hidden_layer_sizes`` set beside a conv
        body, which has no dense hidden layers."""
        default = inspect.signature(type(self).__init__).parameters["hidden_layer_sizes"].default
        if self.architecture == "conv" and sizes(self.hidden_layer_sizes) != tuple(default):  # set, and unused
            to_code = ", then one linear layer to the code" if self.n_components is not None else ""
            warn_once(
                ("conv_hidden", type(self).__name__),
                f"hidden_layer_sizes {sizes(self.hidden_layer_sizes)} is not used by a conv encoder: its layers are "
                f"conv_filters {sizes(self.conv_filters)}{to_code}; set conv_filters instead, or use a dense "
                "architecture for hidden layers",
                stacklevel=outside_stacklevel(),
            )

    def _check_conv_dropout(self, resume_from: str | os.PathLike[str] | None) -> None:
        if self.dropout and self.architecture == "conv":
            error = InputError(  # the fixes named as parameters: the CLI shows them as its flags
                "{dropout} applies to dense layers only; {architecture='conv'} has none. Pass {dropout=0.0} "
                "(regularise a conv model with {noise='gaussian'}, {batchnorm=True} or {early_stopping=True})",
                param="dropout",
                values={"dropout": self.dropout},
            )
            if resume_from is None:
                raise error
            warnings.warn(
                f"{error}; resuming a run that was started with it (it has no effect)", UserWarning, stacklevel=4
            )

    def _run_seed(self, resume_from: str | os.PathLike[str] | None) -> tuple[int, Any]:
        """This fit's integer seed, and (resuming without an int seed) the interrupted run's random_state, as stored."""
        seed = seed_from(self.random_state)
        run_random_state: Any = None
        if resume_from is not None and not isinstance(self.random_state, (int, np.integer)):
            from aekit.files import checkpoint_seed

            # random_state=None or a RandomState: continue with the interrupted run's own seed
            # (the same validation split)
            stored, run_random_state = checkpoint_seed(resume_from)
            if stored is not None:
                seed = stored
            elif self.validation_fraction:
                warnings.warn(
                    f"{resume_from} stores no seed (written by an older aekit with random_state=None): the resumed run "
                    "draws a new validation split. Pass the first run's random_state to keep it",
                    UserWarning,
                    stacklevel=4,
                )
        return seed, run_random_state

    def _split(
        self, X: np.ndarray, y_idx: np.ndarray | None, device: torch.device
    ) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...] | None]:
        """The training tensors ``[X (n, n_features), y (n,)?]`` on ``device``, and the validation ones.

        The validation ones are a seeded split of the training data.
        """
        n = X.shape[0]
        tensors: list[torch.Tensor] = [torch.from_numpy(X).to(device)]
        if y_idx is not None:
            tensors.append(torch.from_numpy(y_idx).to(device))
        if not self.validation_fraction:
            return tensors, None
        n_val = max(1, int(round(n * self.validation_fraction)))
        if n - n_val < 1:
            raise InputError(
                f"{{validation_fraction}} leaves no training samples out of {n}; lower it or pass more data",
                param="validation_fraction",
                values={"validation_fraction": self.validation_fraction},
            )
        perm = torch.randperm(n, device=device)
        return [t[perm[n_val:]] for t in tensors], tuple(t[perm[:n_val]] for t in tensors)

    #: keyword arguments for ``accel.plan`` that force a fast path off or on (``cuda_graphs=False``,
    #: ``working_copies=False``, ``fused=True``...): set on an instance by tests and benchmarks that compare a
    #: fast path with the plain one (``est._plan_overrides = {"cuda_graphs": False}``); not a parameter, so
    #: ``get_params``, ``clone`` and saved models ignore it.
    _plan_overrides: Mapping[str, Any] = MappingProxyType({})

    def _plan(self, device: torch.device, n_train: int) -> Plan:
        """The fast paths of this fit (see ``accel.plan``)."""
        return plan(
            device_type=device.type,
            optimizer=self.optimizer,
            compile=self.compile,
            precision=self.precision,
            architecture=self.architecture,
            batchnorm=self.batchnorm,
            variational=self.variational,
            steps=self.epochs_ * math.ceil(n_train / int(self.batch_size)),
            data_parallel=distributed.is_distributed(),
            threads=threads_for_run(),
            **self._plan_overrides,
        )

    def _resume(
        self,
        resume_from: str | os.PathLike[str] | None,
        net: AutoencoderNet,
        optimizer: torch.optim.Optimizer,
        seed: int,
        run_random_state: Any,
        n_train: int,
    ) -> tuple[LoopState, list[Callback]]:
        """The loop state to start from (a checkpoint's, when resuming) and the callbacks.

        The callbacks include the checkpoint writer.
        """
        state = LoopState()
        run_params = self._json_params(seed)
        # what this run learns: "auto" as resolved (a checkpoint of loss="bce" resumes under loss="auto" on [0, 1] data)
        run_params["loss"], run_params["output_activation"] = self._resolved()
        run_params["epochs"] = self.epochs_  # the checkpoint's bound of the loop's counters: this run's length
        run = run_record(self, n_train)  # a resumed run: the same estimator, the columns in the same order
        if (
            run_random_state is not None
        ):  # the checkpoint's own random_state (e.g. 0 from --random-state 0) is this run's
            run_params["random_state"] = run_random_state
        callbacks = list(self.callbacks or [])
        writer = distributed.is_writer()  # data-parallel: rank 0 alone prints and writes checkpoints
        if int(self.verbose) >= 2 and writer:  # first: the line is printed even when a later callback stops training
            callbacks.insert(0, epoch_printer(self.epochs_))
        if resume_from is not None:
            from aekit.files import load_checkpoint

            state = load_checkpoint(resume_from, net, optimizer, expected_params=run_params, expected_run=run)
        if self.checkpoint_path is not None and writer:
            from aekit.files import checkpoint_callback

            # the loop updates this very state object in place
            callbacks.append(
                checkpoint_callback(self.checkpoint_path, net, optimizer, lambda: state, run_params, seed, run)
            )
        return state, callbacks

    def _train_config(self, epochs: int) -> TrainConfig:
        """The loop's knobs for a run of ``epochs`` epochs (``epochs_``, resolved in fit)."""
        return TrainConfig(
            epochs=epochs,
            batch_size=int(self.batch_size),
            early_stopping=bool(self.early_stopping),
            patience=int(self.patience),
            min_delta=float(self.min_delta),
            restore_best_weights=bool(self.restore_best_weights),
            lr_schedule=self.lr_schedule,
            progress=int(self.verbose) == 1 and distributed.is_writer(),  # 2 and more: one line per epoch instead
            min_batch=2 if self.batchnorm else 1,  # BatchNorm cannot normalise a batch of one sample
        )

    def _build_loss(
        self, fast: Plan, net: AutoencoderNet, optimizer: torch.optim.Optimizer, n_features: int, device: torch.device
    ) -> LossFn:
        """The training loss as ``fast`` runs it: through bfloat16 working copies or autocast, maybe compiled."""
        forward = None
        if fast.working_copies:  # bfloat16 working copies of the float32 weights, kept by the optimizer
            autocast(device, self.precision)  # only for its warning on hardware without bfloat16
            forward = working_forward(net, optimizer)
        return maybe_compile(self._loss_fn(net, n_features, device, forward), fast.forward_compile, device)

    def _train(
        self,
        fast: Plan,
        net: AutoencoderNet,
        optimizer: torch.optim.Optimizer,
        data: tuple[Data, Data | None],
        callbacks: list[Callback],
        state: LoopState,
    ) -> None:
        """Run the loop on ``data`` (training, validation); the fitted attributes follow.

        SIGTERM stops it as Ctrl-C does. Data-parallel (``aekit.distributed``), the forward pass goes
        through ``DistributedDataParallel`` and the loop reduces its sums and decisions over the ranks.
        """
        tensors, val = data
        ddp = distributed.is_distributed()
        with _interrupts(), distributed.guard():
            try:
                if ddp:  # the plan holds no CUDA graph, compilation or working copies here (accel.plan)
                    wrapped = cast(AutoencoderNet, distributed.wrap(net, self.device_))  # called as the net is
                    loss_fn = self._loss_fn(wrapped, int(self.n_features_in_), self.device_)
                    step = distributed.ddp_step(loss_fn, optimizer, cast(Any, tensors).global_sizes)
                else:
                    loss_fn = self._build_loss(fast, net, optimizer, int(self.n_features_in_), self.device_)
                    step = build_step(fast, optimizer_step(loss_fn, optimizer), optimizer, int(self.batch_size))
                # reuse freed activation memory instead of page-faulting it in every step; threads: see aekit.threads
                with heap_reuse(), using_threads(fast.threads):
                    state = train(
                        net,
                        loss_fn,
                        optimizer,
                        tensors,
                        self._train_config(self.epochs_),
                        step=step,
                        val_data=val,
                        callbacks=callbacks,
                        state=state,
                        reduce=distributed.all_sum if ddp else None,
                    )
            finally:
                self.history_ = state.history
                self.n_iter_ = state.epoch
                self.best_epoch_ = state.best_epoch + 1  # 1-based, as the epochs of the verbose lines; 0: none yet
                self.stop_reason_ = state.stop_reason or "error"

    def _images(self) -> bool:
        """Whether the model reads images: a known image shape, or flat rows of a square of 8 x 8 or more pixels
        in one or three channels (the prior-sample check speaks of images' brightness)."""
        if fitted_image_shape(self) is not None:
            return True
        square = square_shape(int(self.n_features_in_))
        return square is not None and square[-1] >= 8

    def _check_health(self, data: np.ndarray | Source, y_idx: np.ndarray | None) -> None:
        """``fit_warnings_``: the checks of ``aekit.health`` on a sample of the training data, each warned once."""
        if self.n_iter_ == 0 or self.stop_reason_ == "interrupted":  # nothing, or a part the user chose to stop
            return
        n = data.shape[0] if isinstance(data, np.ndarray) else data.n_samples
        rows = np.arange(n)
        if n > SAMPLE_ROWS:  # a seeded sample: the same warnings for the same fit
            rows = np.sort(np.random.default_rng(self.seed_).choice(n, SAMPLE_ROWS, replace=False))
        if isinstance(data, np.ndarray):
            X = data[rows]
        else:  # from disk: the sample's rows, one read each, as the model reads them
            raw = np.concatenate([data.read(int(r), int(r) + 1) for r in rows])
            X = self._converter(data, training=False)(raw, rows)
        net = self.net_
        bounded = net.mu is None and net.code_size == self.n_components  # a code layer, not a VAE or a feature map

        def outputs(xb: torch.Tensor) -> torch.Tensor:  # (B, d + n_features [+ n_classes]): one encoder pass
            code = net.encode(xb)["code"]
            parts = [code, net.decoder(code)] if net.has_decoder else [code]
            if net.head is not None:
                parts.append(net.head(code))
            return torch.cat([p.flatten(1).float() for p in parts], dim=1)

        out = self._forward_batches(X, outputs)
        d, n_features = int(net.code_size), X.shape[1] if net.has_decoder else 0
        loss, output_activation = self._resolved()
        prior_decoded = None
        if net.mu is not None and net.has_decoder and output_activation == "sigmoid" and self._images():
            z = np.random.default_rng(self.seed_).standard_normal((PRIOR_DRAWS, d)).astype(np.float32)
            prior_decoded = self._forward_batches(z, lambda zb: net.decode(zb).flatten(1).float())
        judged = net.has_decoder and self._loss_weights()[0] > 0  # a decoder left untrained on purpose is no failure
        self.fit_warnings_ = check_fit(
            X,
            out[:, :d],
            out[:, d : d + n_features] if judged else None,
            loss=loss,
            output_activation=output_activation,
            code_activation=self.code_activation if bounded else None,
            y_true=None if y_idx is None else y_idx[rows],
            y_pred=None if net.head is None else out[:, d + n_features :].argmax(axis=1),
            history=self.history_,
            optimizer=self.optimizer,
            scale=self.scale,
            prior_decoded=prior_decoded,
        )
        for message in self.fit_warnings_ if distributed.is_writer() else ():  # once per run, not per rank
            warnings.warn(message, TrainingWarning, stacklevel=outside_stacklevel())  # the user's fit line

    # ------------------------------------------------------------------ inference

    def _batch_size(self) -> int:
        # conv activations are ~30x larger per sample: small batches stay in cache (docs/performance.md)
        return 128 if self.architecture == "conv" else 4096

    def _inference_precision(self) -> contextlib.AbstractContextManager[Any]:
        """transform, predict, inverse_transform run in ``precision`` too (results returned as float32):
        bfloat16 products are faster where the hardware has them (measured: benchmarks/results/tsne.md).
        ``set_params(precision="bfloat16")`` after fitting gives a float32-trained model fast inference."""
        if self.precision not in PRECISIONS:  # set_params after fit is not validated until the next fit
            raise InputError(f"precision={self.precision!r} must be one of {list(PRECISIONS)}")
        if self.precision == "bfloat16":
            return torch.autocast(self.device_.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _forward_batches(
        self,
        X: np.ndarray,
        fn: Callable[[torch.Tensor], torch.Tensor],
        batch_size: int | None = None,
        out: np.ndarray | None = None,
        post: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> np.ndarray:
        """``fn`` over the rows of ``X`` in batches, then ``post`` on each result (e.g. ``_undo``); into ``out``.

        Each batch's result is copied into one array at once, not kept: batches' results kept alive (small
        tensors) split the heap's freed activation blocks, and glibc grew the heap by a block per batch
        (about 8 kB per row for a 2,000-wide layer, a trial's 4 GB for 500,000 rows).
        """
        batch_size = batch_size or self._batch_size()
        net = self.net_
        net.eval()
        with COMPUTE_LOCK, torch.inference_mode(), using_threads(threads_for_run()), self._inference_precision():
            for start in range(0, X.shape[0], batch_size):
                xb = batch_tensor(X[start : start + batch_size], self.device_)
                result = to_numpy(fn(xb)) if post is None else post(to_numpy(fn(xb)))
                if out is None:
                    out = np.empty((X.shape[0], *result.shape[1:]), dtype=result.dtype)
                out[start : start + len(result)] = result
                del xb, result
            if out is None:  # no samples: the output's width from one dummy row
                out = to_numpy(fn(torch.zeros((1, *X.shape[1:]), dtype=torch.float32, device=self.device_)))[:0]
        return out

    def _forward_source(
        self,
        source: Source,
        fn: Callable[[torch.Tensor], torch.Tensor],
        out: np.ndarray | None = None,
        convert: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        post: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> np.ndarray:
        """``fn`` over every row of ``source``, read in order as contiguous slices by the prefetch thread.

        Results go into ``out`` (e.g. a memory-mapped ``.npy``) chunk by chunk; without ``out`` they are
        gathered in memory.
        """
        batches = StreamBatches(
            source,
            convert or self._converter(source, training=False),
            blocks=RowBlocks.all(source.n_samples, max(source.block_rows, self._batch_size())),
            batch_size=self._batch_size(),
            seed=0,
            device=self.device_,
            shuffle=False,
        )
        net = self.net_
        net.eval()
        start = 0
        with COMPUTE_LOCK, torch.inference_mode(), using_threads(threads_for_run()), self._inference_precision():
            for (xb,) in batches.epoch(0):
                z = to_numpy(fn(xb)) if post is None else post(to_numpy(fn(xb)))
                if out is None:  # float32, but for a result of float64 (``_codes_and_more``'s errors)
                    out = np.empty(
                        (source.n_samples, z.shape[1]), dtype=np.float64 if z.dtype == np.float64 else np.float32
                    )
                out[start : start + len(z)] = z
                start += len(z)
        assert out is not None  # a source has at least one row
        return out

    def _check_out(self, out: np.ndarray | None, n: int, width: int) -> None:
        if out is not None and (getattr(out, "shape", None) != (n, width) or out.dtype != np.float32):
            raise InputError(
                f"out must be a float32 array of shape ({n}, {width}), found "
                f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}; "
                "create it with np.lib.format.open_memmap(path, 'w+', np.float32, shape)"
            )

    def _apply(
        self,
        X: Any,
        fn: Callable[[torch.Tensor], torch.Tensor],
        width: int,
        out: np.ndarray | None,
        post: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> Any:
        """``fn`` over ``X``: chunk by chunk from disk for data on disk, else through ``_X`` in memory."""
        source = self._source(X)
        if source is not None:
            self._check_out(out, source.n_samples, width)
            return self._forward_source(source, fn, out, post=post)
        Xv = self._X(X, reset=False)
        self._check_out(out, Xv.shape[0], width)
        return self._forward_batches(Xv, fn, out=out, post=post)

    def _undo(self, X: np.ndarray) -> np.ndarray:
        """Model-space outputs (reconstructions) back in the user's units: ``scale`` undone."""
        return undo_scaler(X, self._scaler())

    def transform(self, X: Any, *, out: np.ndarray | None = None) -> np.ndarray:
        """Encode ``X`` ``(n_samples, n_features)`` to codes ``(n_samples, n_components)``.

        For a variational model the code is the posterior mean (deterministic). ``X`` may live
        on disk (a memory-mapped ``.npy``, an h5py dataset, a zarr array, an
        ``aekit.sources.ImageFolder``): it is then read in chunks. ``out``, a float32 array
        ``(n_samples, n_components)`` (e.g. ``np.lib.format.open_memmap``), receives the codes
        chunk by chunk, so codes larger than memory are never held whole; it is returned.
        """
        check_is_fitted(self, "net_")
        return self._apply(X, lambda xb: self.net_.encode(xb)["code"], self._n_features_out, out)

    def inverse_transform(self, X: Any, *, out: np.ndarray | None = None) -> np.ndarray:
        """Decode codes ``(n_samples, n_components)`` back to data space ``(n_samples, n_features)``.

        Codes on disk are read in chunks; ``out`` as in ``transform``. With ``set_output(transform="pandas")``
        a DataFrame with the features' names (and the codes' index).
        """
        check_is_fitted(self, "net_")
        X = _dense(X)  # a tensor of codes that requires grad: numpy() refuses it
        source = as_source(X)
        if source is not None:
            if source.n_features != self._n_features_out or source.dtype.kind not in "biuf":
                raise InputError(
                    f"inverse_transform expects codes of shape (n_samples, {self._n_features_out}), found "
                    f"{source.name} with {source.n_features} columns; pass the output of transform"
                )
            self._check_out(out, source.n_samples, int(self.n_features_in_))
            return self._forward_source(source, self.net_.decode, out, _codes_converter(source.name), post=self._undo)
        Z = np.asarray(X)
        if Z.ndim != 2 or Z.shape[1] != self._n_features_out:
            raise InputError(
                f"inverse_transform expects codes of shape (n_samples, {self._n_features_out}), found {Z.shape}; "
                "pass the output of transform"
            )
        names = [str(c) for c in getattr(X, "columns", ())]  # a DataFrame of codes (set_output(transform="pandas"))
        expected = [str(c) for c in self.get_feature_names_out()]
        if names and names != expected and sorted(names) == sorted(expected):  # reordered: decoded scrambled
            i = next(i for i, (a, b) in enumerate(zip(names, expected, strict=True)) if a != b)
            raise InputError(
                f"inverse_transform: the codes' column {i} is {names[i]!r}, but this model's code {i} is "
                f"{expected[i]!r}; pass the columns in transform's order (codes[model.get_feature_names_out()])"
            )
        if Z.dtype.kind not in "biuf" or not np.all(np.isfinite(Z)):
            raise InputError("inverse_transform expects finite numeric codes")
        Z = np.ascontiguousarray(Z, dtype=np.float32)
        self._check_out(out, Z.shape[0], int(self.n_features_in_))
        decoded = self._forward_batches(Z, self.net_.decode, out=out, post=self._undo)
        return decoded if out is not None else self._in_data_space(decoded, X)

    def reconstruct(self, X: Any, *, out: np.ndarray | None = None) -> np.ndarray:
        """``inverse_transform(transform(X))`` in one pass, ``(n_samples, n_features)``; ``out`` as in ``transform``;
        a DataFrame as ``inverse_transform``'s."""
        check_is_fitted(self, "net_")
        fn = lambda xb: self.net_.decode(self.net_.encode(xb)["code"])  # noqa: E731
        rebuilt = self._apply(X, fn, int(self.n_features_in_), out, post=self._undo)
        return rebuilt if out is not None or as_source(X) is not None else self._in_data_space(rebuilt, X)

    def score_samples(self, X: Any) -> np.ndarray:
        """Minus each sample's mean squared reconstruction error, ``(n_samples,)``: an outlier score.

        Higher: rebuilt better. A model trained on typical rows rebuilds unusual ones worse, so the lowest
        scores flag outliers (scikit-learn's sign, as ``IsolationForest.score_samples``). Measured in the
        units the model was fitted in (after ``scale``; uint8 images in [0, 1]), so that on a table of
        mixed units no feature outweighs the rest by its unit alone; ``score`` measures in ``X``'s own
        units instead, so that candidates with another ``scale`` compare like with like (without
        ``scale``, on float data, the two agree: ``score`` is then their mean). ``X`` may be a file read in
        chunks.
        """
        errors = self._codes_and_more(X, errors=True)[2]
        assert errors is not None  # asked for
        return -errors.astype(np.float64)

    def _codes_and_more(
        self, X: Any, *, classes: bool = False, errors: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``transform(X)``, and from the same pass of the encoder (``aekit embed --predict --error``) the head's
        classes (a model fitted with labels) and each row's mean squared reconstruction error in the model's
        units (``score_samples``, negated); None for what was not asked."""
        check_is_fitted(self, "net_")
        net, k = self.net_, int(self.net_.code_size)
        head = net.head if classes else None
        if classes and head is None:
            raise InputError(f"{type(self).__name__} was fitted without labels: it has no classes to predict")
        if errors and not net.has_decoder:
            net.decode(torch.zeros(1, k))  # NoDecoder's error, with its fix

        def passes(xb: torch.Tensor) -> torch.Tensor:
            # with errors, everything travels in float64 (the codes exactly): a row's squared error may pass
            # float32's range (a value of 1e20 in a row gave -inf scores); MPS has no float64
            wide = torch.float64 if errors and xb.device.type != "mps" else torch.float32
            code = net.encode(xb)["code"]
            parts = [code.flatten(1).to(wide)]
            if head is not None:
                parts.append(head(code).argmax(dim=1, keepdim=True).to(wide))
            if errors:
                diff = net.decode(code).to(wide) - xb.to(wide)
                parts.append(diff.pow(2).flatten(1).mean(dim=1, keepdim=True))
            return torch.cat(parts, dim=1)

        out = np.asarray(self._apply(X, passes, k + int(head is not None) + int(errors), None))
        guess = self.classes_[out[:, k].astype(np.int64)] if head is not None else None
        errs = out[:, -1].astype(np.float64) if errors else None
        return np.ascontiguousarray(out[:, :k], dtype=np.float32), guess, errs

    def _in_data_space(self, values: np.ndarray, X: Any) -> Any:
        """Rows in the data's space as ``set_output(transform="pandas")`` asks (scikit-learn covers ``transform``
        only): a DataFrame with the features' names and ``X``'s index; else ``values`` as they are."""
        import sklearn

        config = getattr(self, "_sklearn_output_config", {}).get("transform") or sklearn.get_config().get(
            "transform_output", "default"
        )
        if config != "pandas" or values.ndim != 2:
            return values
        import pandas as pd

        names = getattr(self, "feature_names_in_", None)
        index = getattr(X, "index", None)
        return pd.DataFrame(values, columns=None if names is None else list(names), index=index)

    def reconstruction_error(self, X: Any) -> float:
        """Mean-per-element reconstruction loss (the training ``loss``, ``loss_``) of ``X``.

        Measured as the model reads ``X``: after ``scale``, as in training.
        """
        check_is_fitted(self, "net_")
        Xv = self._X(X, reset=False)
        total = 0.0
        net = self.net_
        net.eval()
        with COMPUTE_LOCK, torch.inference_mode():
            for start in range(0, Xv.shape[0], 4096):
                xb = batch_tensor(Xv[start : start + 4096], self.device_)
                logits = net.decoder(net.encode(xb)["code"])
                total += float(reconstruction_loss(logits, xb, *self._resolved())) * xb.shape[0]
        return total / Xv.shape[0]

    @property
    def _n_features_out(self) -> int:
        check_is_fitted(self, "net_")
        return int(self.net_.code_size)

    @property
    def encoder_(self) -> torch.nn.Module:
        """The fitted encoder as a plain ``nn.Module``.

        It maps ``(B, n_features)`` float32 as ``transform`` reads it (uint8 pixels divided by 255;
        a fitted ``scale`` is part of the module) → codes ``(B, n_components)``.

        Shares its weights with the model (the mean of a variational model, as ``transform``).
        """
        check_is_fitted(self, "net_")
        net = self.net_
        layers = [net.encoder] if net.mu is None else [net.encoder, net.mu]
        scaler = self._scaler()
        if scaler is not None:
            layers.insert(0, _Scaler(scaler).to(self.device_))
        return layers[0] if len(layers) == 1 else torch.nn.Sequential(*layers).train(net.training)

    @property
    def decoder_(self) -> torch.nn.Module:
        """The fitted decoder as a plain ``nn.Module``.

        It maps codes ``(B, n_components)`` → ``(B, n_features)``, as ``inverse_transform``
        (the output activation, ``output_activation_``, and the undoing of ``scale`` included).
        """
        check_is_fitted(self, "net_")
        net = self.net_
        layers = [net.decoder] + ([] if net.output_activation == "linear" else [torch.nn.Sigmoid()])
        scaler = self._scaler()
        if scaler is not None:
            layers.append(_Scaler(scaler, undo=True).to(self.device_))
        return layers[0] if len(layers) == 1 else torch.nn.Sequential(*layers).train(net.training)

    def __sklearn_tags__(self) -> Any:  # sklearn.utils.Tags
        tags = super().__sklearn_tags__()
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = self.random_state is None
        tags.input_tags.sparse = True  # made dense (``_dense``)
        return tags

    # ------------------------------------------------------------------ persistence

    def _json_params(self, seed: int | None = None) -> dict[str, Any]:
        """get_params() as JSON values (numpy scalars and tuples become numbers and lists)."""
        params = self.get_params(deep=False)
        params.pop("callbacks", None)
        if isinstance(params.get("random_state"), np.random.RandomState):  # not JSON: the seed it gave this fit
            params["random_state"] = getattr(self, "seed_", None) if seed is None else seed
        return {k: jsonable(v) for k, v in params.items()}

    def _fitted_params(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """The parameters to write beside the weights: those the network was fitted with, but for the ones that
        act on inference and may change after fit (``AFTER_FIT``). A parameter set after fit acts at the next
        fit, as in scikit-learn: the file must describe the network it holds (else load() builds another one)."""
        params, at_fit = self._json_params(), getattr(self, "_params_at_fit", None)
        if at_fit is None:  # a model fitted before the snapshot existed (an old pickle)
            return params
        changed = [k for k, v in params.items() if k not in AFTER_FIT and k in at_fit and v != at_fit[k]]
        if changed:
            log.warning(
                "%s: saved with the parameters the model was fitted with; %s, set after fit, act at the next fit",
                path,
                ", ".join(f"{k}={params[k]!r} (fitted: {at_fit[k]!r})" for k in changed),  # both as JSON values
            )
        return {**params, **{k: at_fit[k] for k in changed}}

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
        """Write the fitted model to one ``.safetensors`` file (weights + JSON metadata, see ``aekit.files``).

        The file is written under a temporary name and renamed, so a crash never
        leaves a half-written file and never harms the previous one. In a data-parallel run
        (``aekit.distributed``) only rank 0 writes; the other ranks return ``path`` unwritten.
        """
        check_is_fitted(self, "net_")
        if not distributed.is_writer():  # data-parallel: rank 0 writes the model its ranks share (and says so)
            return Path(path)
        params = self._fitted_params(path)
        fitted, features = fitted_section(self), feature_tensors(self)
        return save_model(path, self.net_, type(self).__name__, params, fitted, features=features, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str = "cpu") -> Self:
        """A model file written by ``save``, when it holds this class (``aekit.load`` reads any estimator's)."""
        from aekit.estimators import load  # the estimators' module imports this one

        est = load(path, device=device)
        if not isinstance(est, cls):
            name = type(est).__name__
            fix = f"load it with {name}.load or aekit.load"
            raise InputError(f"{path}: the file holds {name}, not {cls.__name__}; {fix}", param="path")
        return est
