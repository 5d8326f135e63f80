"""Model files and training checkpoints: one safetensors format, one tensor check, format versions.

Both kinds are one ``.safetensors`` file: tensors plus string metadata holding JSON.
Nothing is unpickled when reading, and files are written under a temporary name and
renamed, so a crash never leaves a half-written file under the final name.

- A model file (``aekit_format`` = ``MODEL_FORMAT``) holds the network's weights, the
  estimator's class name, its parameters, its fitted attributes and the library versions.
  Fitted attributes with one value per feature (the scaler, the feature names) are tensors
  ``fitted.*`` since format 2: as JSON they outgrew the metadata's bound on wide data.
  This module knows the format, not the estimators: ``estimators.load`` rebuilds one.
- A checkpoint (``aekit_checkpoint`` = ``CHECKPOINT_FORMAT``) holds weights, optimizer
  state, the loop state and torch's CPU RNG, written after every epoch; on CPU a run
  interrupted and resumed from it ends bitwise identical to an uninterrupted one (tested).

Reading validates before it builds: the metadata, from the header alone, against the schemas of
``aekit.schema``; then every tensor's name, shape, dtype and finiteness (a checkpoint's optimizer
state against this run's optimizer, its RNG state against torch). Anything wrong is one
``ModelFileError`` naming the file, what was expected and the fix (``tests/test_tampered_files.py``).

Files of these format versions, written by aekit 0.1.0, are kept in ``tests/golden/`` and
loaded by ``tests/test_files.py``: a change that cannot read them is a format change.
"""

from __future__ import annotations

import json
import os
import platform
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from aekit import schema
from aekit._utils import ModelFileError, atomic_path, jsonable, outside_stacklevel
from aekit.params import PARAMS, Sizes, sizes
from aekit.schema import SchemaError, check, parse
from aekit.training import LoopState

MODEL_FORMAT = 2
#: the model formats this aekit reads: 1 kept per-feature attributes in the JSON metadata
READABLE_MODEL_FORMATS = ("1", "2")
CHECKPOINT_FORMAT = 1

# parameters a resumed run may change: how it runs, not what it learns
_RESUMABLE_CHANGES = ("epochs", "verbose", "device", "compile", "precision", "checkpoint_path")
_MODEL_FIX = "check the path; models are written by Autoencoder.save or `aekit train`"
_CHECKPOINT_FIX = (
    "train with checkpoint_path=... first (the CLI writes --out/checkpoint.safetensors), or train from the start"
)
# the fixes for a file that opens but whose content breaks its schema: damaged, or edited by hand
MODEL_DAMAGED = "the file is damaged or was edited; save the model again (Autoencoder.save or `aekit train`)"
CHECKPOINT_DAMAGED = "the checkpoint is damaged or was edited; delete it and train from the start"


# ----------------------------------------------------------------------------- shared


def _versions() -> dict[str, str]:
    """The versions that wrote a file, stored in model files for bug reports."""
    import sklearn

    from aekit import __version__

    return {
        "aekit": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
    }


def _write(path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as exc:  # its I/O errors as OSError: "(os error 28)" -> ENOSPC
            code = re.search(r"(?:os error|code:) (\d+)", str(exc))
            if code is None:
                raise OSError(f"could not write {path}: {exc}") from exc
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from exc


def _safetensors(p: Path, what: str, fix: str, tensors: bool) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    if p.is_dir():  # a run folder: name the file in it that was likely meant
        if (p / "tsne.safetensors").is_file():
            raise ModelFileError(
                f"{p} is a saved AE -> t-SNE map (AETSNE.save, aekit visualize --save-map); `aekit embed` and "
                f"aekit.visualize.AETSNE.load read it, or pass its autoencoder, {p / 'autoencoder.safetensors'}"
            )
        if (p / "autoencoder.safetensors").is_file():
            raise ModelFileError(
                f"{p} holds an AE -> t-SNE map's autoencoder.safetensors without its tsne.safetensors: the map is "
                "incomplete; save it again (aekit visualize --save-map, AETSNE.save), or pass its autoencoder, "
                f"{p / 'autoencoder.safetensors'}"
            )
        name = "checkpoint.safetensors" if what == "checkpoint" else "model.safetensors"
        raise ModelFileError(f"{p} is a folder; " + (f"pass {p / name}" if (p / name).is_file() else fix))
    if not p.is_file():
        there = p.exists() or p.is_symlink()  # a FIFO, a device, a dangling link: there, but no file to read
        raise ModelFileError(f"{p}: {'not a regular file' if there else 'no such ' + what}; {fix}")
    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            data = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{p}: not a valid {what} (safetensors: {exc}); {fix}") from exc
    return meta, data


def read_metadata(path: str | os.PathLike[str], what: str, fix: str) -> dict[str, str]:
    """The string metadata of a safetensors file, read from its header alone; never runs code from it.

    ``what`` names the expected kind of file and ``fix`` the remedy, for the errors.
    """
    return _safetensors(Path(path), what, fix, tensors=False)[0]


def read_tensors(path: str | os.PathLike[str], what: str, fix: str) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, on the CPU: read once its metadata has been validated."""
    return _safetensors(Path(path), what, fix, tensors=True)[1]


def entry(meta: dict[str, str], key: str, max_chars: int = schema.MAX_SMALL_JSON) -> Any:
    """Metadata entry ``key`` decoded from JSON within the size and depth bounds (``SchemaError`` else)."""
    if key not in meta:
        raise SchemaError(key, "a JSON entry", "missing")
    return parse(meta[key], key, max_chars)


def check_tensors(
    path: Path,
    tensors: dict[str, torch.Tensor],
    expected: dict[str, torch.Tensor],
    *,
    prefix: str = "",
    fix: str,
    corrupt: str,
    what: str = "weights",
) -> None:
    """Refuse a file's tensors unless they fit a network and are finite.

    The tensors named ``prefix + name`` must be exactly ``expected``'s (a state dict; on the
    meta device is enough): the same names, shapes and dtypes. Every floating-point tensor
    in ``tensors`` (the whole file) must be finite. ``fix`` ends the message for tensors
    that do not fit, ``corrupt`` the one for NaN or inf values; ``what`` names the tensors checked.
    """
    found = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    wrong = [
        f"tensor {k} has shape {tuple(found[k].shape)} {found[k].dtype}, expected {tuple(v.shape)} {v.dtype}"
        for k, v in expected.items()
        if k in found and (found[k].shape != v.shape or found[k].dtype != v.dtype)
    ]
    if missing or extra or wrong:
        problems = [f"missing {missing[:5]}"] if missing else []
        problems += ([f"unexpected {extra[:5]}"] if extra else []) + wrong[:3]
        raise ModelFileError(f"{path}: {what} do not fit this model: {'; '.join(problems)}; {fix}")
    for k, v in tensors.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ModelFileError(f"{path}: tensor {k} holds NaN or inf values; {corrupt}")


@contextmanager
def corrupted_metadata(path: Path, what: str, fix: str = "") -> Iterator[None]:
    """Turn the errors of decoding a file's JSON metadata into one ``ModelFileError`` naming the file."""
    end = f"; {fix}" if fix else ""
    try:
        yield
    except SchemaError as exc:  # names the entry, what was expected and what was found
        raise ModelFileError(f"{path}: {what} {exc}{end}") from None
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:  # JSONDecodeError is a ValueError
        raise ModelFileError(f"{path}: corrupted {what} ({exc}){end}") from exc


# ----------------------------------------------------------------------------- model files


class ModelFile(NamedTuple):
    """A model file's content, decoded: what ``estimators.load`` rebuilds an estimator from."""

    estimator: str  # class name, e.g. "Autoencoder"
    params: dict[str, Any]  # get_params(), sequences as tuples
    fitted: dict[str, Any]  # fitted attributes by name (n_features_in_, history_, classes_, ...), decoded
    tensors: dict[str, torch.Tensor]  # the network's state dict, on the CPU


def fitted_section(est: Any) -> dict[str, Any]:
    """An estimator's fitted attributes as the JSON values of a model file's ``fitted`` entry.

    Those with one value per feature are not among them: ``feature_tensors`` stores them.
    """
    fitted: dict[str, Any] = {
        "n_features_in_": int(est.n_features_in_),
        "history_": est.history_,
        "n_iter_": int(est.n_iter_),
        "seed_": int(est.seed_),
        "stop_reason_": getattr(est, "stop_reason_", ""),
    }
    if hasattr(est, "best_epoch_"):  # absent from models loaded from files written before it existed
        fitted["best_epoch_"] = int(est.best_epoch_)
    # the data-range switch (absent from models loaded from older files: _decode_fitted's defaults hold then)
    for name in ("loss_", "output_activation_"):
        if hasattr(est, name):
            fitted[name] = str(getattr(est, name))
    if getattr(est, "image_shape_", None) is not None:
        fitted["image_shape_"] = [int(v) for v in est.image_shape_]
    if getattr(est, "pixels_", None) is not None:
        fitted["pixels_"] = bool(est.pixels_)
    if hasattr(est, "epochs_"):  # epochs="auto" resolved
        fitted["epochs_"] = int(est.epochs_)
    if getattr(est, "data_columns_", None):  # set by `aekit train` from its --id-column / --label-column
        fitted["data_columns_"] = {str(k): str(v) for k, v in est.data_columns_.items()}
    if hasattr(est, "fit_warnings_"):
        fitted["fit_warnings_"] = [str(w) for w in est.fit_warnings_]
    if hasattr(est, "classes_"):  # the dtype too: text labels come back as text, integers as integers
        fitted["classes_"] = est.classes_.tolist()
        fitted["classes_dtype"] = est.classes_.dtype.str
    output = getattr(est, "_sklearn_output_config", {}).get("transform")
    if output is not None:  # set_output(transform="pandas") is the model's choice as pickle keeps it, so kept too
        fitted["set_output"] = {"transform": str(output)}
    return fitted


#: per-feature fitted attributes as tensors: the scaler (float32) and the names (UTF-8 bytes, and the
#: end of each name in them)
_SCALER = ("fitted.input_offset_", "fitted.input_scale_")
_NAMES = ("fitted.feature_names_in_.utf8", "fitted.feature_names_in_.ends")


def feature_tensors(est: Any) -> dict[str, torch.Tensor]:
    """An estimator's per-feature fitted attributes as the ``fitted.*`` tensors of a model file."""
    tensors: dict[str, torch.Tensor] = {}
    if getattr(est, "input_offset_", None) is not None:
        for key, values in zip(_SCALER, (est.input_offset_, est.input_scale_), strict=True):
            tensors[key] = torch.from_numpy(np.array(values, dtype=np.float32))
    if hasattr(est, "feature_names_in_"):
        tensors.update(_names_tensors(est.feature_names_in_))
    return tensors


def _names_tensors(names: Any) -> dict[str, torch.Tensor]:
    """Feature names as two tensors: their UTF-8 bytes one after another, and where each one ends."""
    # surrogatepass: a name Python holds (a DataFrame column) always encodes, and decodes back as it was
    encoded = [str(n).encode("utf-8", "surrogatepass") for n in names]
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
    ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
    return {_NAMES[0]: torch.from_numpy(blob), _NAMES[1]: torch.from_numpy(ends)}


def _vector(tensors: dict[str, torch.Tensor], key: str, n: int, dtype: torch.dtype) -> torch.Tensor:
    t = tensors[key]
    if t.dtype != dtype or tuple(t.shape) != (n,):
        raise SchemaError(key, f"shape ({n},) {dtype} (n_features_in_)", f"shape {tuple(t.shape)} {t.dtype}")
    return t


def _decode_names(tensors: dict[str, torch.Tensor], n: int) -> np.ndarray:
    """The ``n`` feature names stored by ``_names_tensors``, checked: an object array of str."""
    blob, ends = tensors[_NAMES[0]], _vector(tensors, _NAMES[1], n, torch.int64)
    if blob.dtype != torch.uint8 or blob.dim() != 1:
        raise SchemaError(_NAMES[0], "a 1-D uint8 tensor", f"shape {tuple(blob.shape)} {blob.dtype}")
    stops = ends.numpy()
    starts = np.concatenate([[0], stops[:-1]])
    lengths = stops - starts
    if n and (lengths.min() < 0 or lengths.max() > 4 * schema.MAX_TEXT or stops[-1] != blob.numel()):
        cut = f"ends that cut the {blob.numel()} bytes into names of at most {4 * schema.MAX_TEXT}"
        raise SchemaError(_NAMES[1], cut, "other ends")
    raw = blob.numpy().tobytes()
    names = np.empty(n, dtype=object)
    for i, (a, b) in enumerate(zip(starts.tolist(), stops.tolist(), strict=True)):
        try:
            names[i] = raw[a:b].decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise SchemaError(f"{_NAMES[0]} (name {i})", "UTF-8 text", "other bytes") from None
    return names


def _decode_feature_tensors(tensors: dict[str, torch.Tensor], fitted: dict[str, Any]) -> None:
    """Move a model file's ``fitted.*`` tensors out of ``tensors`` into ``fitted``, checked."""
    mine = {k: tensors.pop(k) for k in [k for k in tensors if k.startswith("fitted.")]}
    stray = sorted(set(mine) - {*_SCALER, *_NAMES})
    if stray:
        raise SchemaError("tensors", f"fitted attributes among {[*_SCALER, *_NAMES]}", f"{stray[:3]}")
    n = int(fitted["n_features_in_"])
    for group in (_SCALER, _NAMES):
        if 0 < sum(k in mine for k in group) < len(group):
            raise SchemaError("tensors", f"{' and '.join(group)} together", "only one of them")
    if _SCALER[0] in mine:
        if fitted.get("input_offset_") is not None:  # a file holds the scaler once: as JSON (format 1) or tensors
            raise SchemaError("tensors", "the scaler once", "both the fitted entry's and tensors")
        offset, factor = (_vector(mine, k, n, torch.float32) for k in _SCALER)
        tiny = float(np.finfo(np.float32).tiny)
        if not (bool(torch.isfinite(offset).all()) and bool(((factor >= tiny) & torch.isfinite(factor)).all())):
            raise SchemaError(" and ".join(_SCALER), "finite offsets and positive finite scales", "other values")
        fitted["input_offset_"], fitted["input_scale_"] = offset.numpy(), factor.numpy()
    if _NAMES[0] in mine:
        if "feature_names_in_" in fitted:
            raise SchemaError("tensors", "the feature names once", "both the fitted entry's and tensors")
        fitted["feature_names_in_"] = _decode_names(mine, n)
    _check_features(fitted)


def _check_features(fitted: dict[str, Any]) -> None:
    """Rules on the per-feature attributes, as tensors (format 2) or JSON (format 1), that each value's own
    range does not catch. (Repeated feature names load: scikit-learn before 1.9 fitted DataFrames with
    repeated column names; reading a CSV by such names is refused, ``csvdata._kept``.)"""
    if fitted.get("input_offset_") is not None:
        # the model reads (X - offset) / scale in float32: where |offset| / scale overflows, X = 0 becomes
        # inf and transform NaN; a fitted scaler keeps it below 1 / float32's eps, or has scale 1
        ratio = np.abs(fitted["input_offset_"].astype(np.float64)) / fitted["input_scale_"].astype(np.float64)
        worst = int(np.argmax(ratio))
        if ratio[worst] > schema.MAX_FLOAT32:
            raise SchemaError(
                "fitted.input_offset_ / fitted.input_scale_",
                f"at most {schema.MAX_FLOAT32:.4g} (float32's range)",
                f"{ratio[worst]:.4g} (feature {worst})",
            )


def _decode_fitted(fitted: dict[str, Any]) -> dict[str, Any]:
    """The fitted attributes of a ``fitted`` entry that passed ``schema.check_fitted``."""
    attrs: dict[str, Any] = {
        "n_features_in_": fitted["n_features_in_"],
        "history_": fitted.get("history_", {}),
        "n_iter_": fitted.get("n_iter_", 0),
        "seed_": fitted.get("seed_", 0),
        "stop_reason_": fitted.get("stop_reason_", ""),
    }
    for name in ("epochs_", "fit_warnings_", "data_columns_"):
        if name in fitted:
            attrs[name] = fitted[name]
    if "best_epoch_" in fitted:
        attrs["best_epoch_"] = int(fitted["best_epoch_"])
    else:  # written before best_epoch_ was stored, when no min_delta existed: the first lowest monitored loss
        monitored = attrs["history_"].get("val_loss") or attrs["history_"].get("loss")
        if monitored:
            attrs["best_epoch_"] = int(np.argmin(monitored)) + 1
    if "classes_" in fitted:  # values and dtype checked: an array of a few bytes per class
        attrs["classes_"] = np.asarray(fitted["classes_"], dtype=np.dtype(fitted["classes_dtype"]))
    if "feature_names_in_" in fitted:
        attrs["feature_names_in_"] = np.asarray(fitted["feature_names_in_"], dtype=object)
    for name in ("loss_", "output_activation_"):  # absent from older files: their parameters were never "auto"
        if name in fitted:
            attrs[name] = fitted[name]
    if "set_output" in fitted:  # scikit-learn's own attribute, which set_output(transform=...) sets
        attrs["_sklearn_output_config"] = dict(fitted["set_output"])
    # older files: None, and the image_shape parameter stands (the data's shape was not learnt then)
    attrs["image_shape_"] = tuple(fitted["image_shape_"]) if "image_shape_" in fitted else None
    attrs["pixels_"] = fitted.get("pixels_", True)  # older files: uint8 input was always 0-255 pixels
    scaler = "input_offset_" in fitted
    attrs["input_offset_"] = np.asarray(fitted["input_offset_"], dtype=np.float32) if scaler else None
    attrs["input_scale_"] = np.asarray(fitted["input_scale_"], dtype=np.float32) if scaler else None
    return attrs


def save_model(
    path: str | os.PathLike[str],
    net: nn.Module,
    estimator: str,
    params: dict[str, Any],
    fitted: dict[str, Any],
    *,
    features: dict[str, torch.Tensor] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a model file: ``net``'s weights, the estimator's class name, JSON ``params`` and ``fitted``,
    and the per-feature ``features`` tensors (``feature_tensors``).

    A file ``read_model`` would refuse is not written (``ValueError``; whatever is at ``path`` is kept).
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True (CLI: --overwrite) or choose another path")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    tensors |= features or {}
    metadata = {
        "aekit_format": str(MODEL_FORMAT),
        "estimator": estimator,
        "params": json.dumps(params),
        "fitted": json.dumps(fitted),
        "versions": json.dumps(_versions()),
    }
    for key, cap in (("params", schema.MAX_SMALL_JSON), ("fitted", schema.MAX_LARGE_JSON)):
        if len(metadata[key]) > cap:
            sizes = {k: len(json.dumps(v)) for k, v in (params if key == "params" else fitted).items()}
            big = max(sizes, key=sizes.__getitem__)
            raise ValueError(
                f"{p}: not written: the model's {key} take {len(metadata[key]):,} characters of JSON, "
                f"most of them {big} ({sizes[big]:,}), and a model file holds at most {cap:,}; "
                "the model is still in memory: save a smaller one (fewer epochs of history_, fewer classes)"
            )
    _write(p, tensors, metadata)
    return p


def _model_kind(p: Path, meta: dict[str, str]) -> None:
    if "aekit_format" not in meta:
        if "aekit_checkpoint" in meta:
            raise ModelFileError(
                f"{p}: a training checkpoint, not a model; resume it with fit(X, resume_from=...) (CLI: --resume) "
                "or load model.safetensors"
            )
        if "aekit_map" in meta:  # visualize --save-map's tsne.safetensors: the map is its folder
            raise ModelFileError(
                f"{p}: the t-SNE part of an AE → t-SNE map, not a model; pass the map's folder ({p.parent}), which "
                "holds it beside its autoencoder"
            )
        raise ModelFileError(f"{p}: a safetensors file without aekit metadata; save models with Autoencoder.save")
    if meta["aekit_format"] not in READABLE_MODEL_FORMATS:
        raise ModelFileError(
            f"{p}: model format {meta['aekit_format'][:20]}, this aekit reads formats "
            f"{' and '.join(READABLE_MODEL_FORMATS)}; upgrade aekit"
        )


#: Parameters whose default is not what a run did before they existed: the value that reproduces it.
#: target_weight: before it, a ParametricTSNE's labels reached the map through the classifier head only.
BEFORE_THEY_EXISTED: dict[str, Any] = {"target_weight": 0.0}


def read_model(path: str | os.PathLike[str]) -> ModelFile:
    """Read and decode a model file; its tensors are checked against a network by ``check_tensors``.

    The metadata is validated against ``schema.MODEL_PARAMS`` and ``schema.MODEL_FITTED`` before the
    tensors are read or anything is built from it.
    """
    p = Path(path)
    meta = read_metadata(p, "aekit model file", _MODEL_FIX)
    _model_kind(p, meta)
    with corrupted_metadata(p, "model metadata", MODEL_DAMAGED):
        estimator = check(schema.Str(64), meta.get("estimator", ""), "estimator")
        params = check(schema.MODEL_PARAMS, entry(meta, "params"), "params")
        fitted = _decode_fitted(schema.check_fitted(entry(meta, "fitted", schema.MAX_LARGE_JSON)))
    # JSON has no tuples: aekit's sequence parameters (hidden_layer_sizes, ...) are tuples
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    if "epochs_" not in fitted and isinstance(params.get("epochs"), int):  # written before epochs="auto" existed
        fitted["epochs_"] = params["epochs"]
    if estimator == "ParametricTSNE":  # parameters younger than the file: what its run did
        params = {**BEFORE_THEY_EXISTED, **params}
    tensors = read_tensors(p, "aekit model file", _MODEL_FIX)
    with corrupted_metadata(p, "model file", MODEL_DAMAGED):
        _decode_feature_tensors(tensors, fitted)
    with corrupted_metadata(p, "model metadata", MODEL_DAMAGED):
        scaled = fitted.get("input_offset_") is not None
        if "scale" in params and (params["scale"] is not None) != scaled:  # else transform ignores what scale says
            found = f"scale={params['scale']!r} " + ("with" if scaled else "without") + " a fitted scaler"
            raise schema.SchemaError("params.scale", "a scale with its fitted scaler, or None without one", found)
    return ModelFile(estimator, params, fitted, tensors)


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    path: str | os.PathLike[str],
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: LoopState,
    params: dict[str, Any],
    seed: int | None = None,
    run: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint of a run: weights, optimizer state, loop state and torch's CPU RNG.

    ``seed``: the integer seed the run drew (from ``random_state=None`` too): a resumed run reuses it,
    so that its validation split is the same one. ``run``: what a resuming run must match beyond the
    parameters (``run_record``).
    """
    tensors: dict[str, torch.Tensor] = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    opt = optimizer.state_dict()
    for idx, st in opt["state"].items():
        for key, value in st.items():
            t = (value if isinstance(value, torch.Tensor) else torch.tensor(value)).detach().cpu()
            # a copy: state may be views of flat buffers or channels-last
            copy = t.reshape(-1).clone() if t.dim() == 0 else t.clone(memory_format=torch.contiguous_format)
            tensors[f"opt.{idx}.{key}"] = copy
    if state.best_weights is not None:
        tensors.update({f"best.{k}": v.cpu().contiguous() for k, v in state.best_weights.items()})
    tensors["rng.cpu"] = torch.get_rng_state()
    scalar_keys = {
        f"opt.{i}.{k}"
        for i, st in opt["state"].items()
        for k, v in st.items()
        if not isinstance(v, torch.Tensor) or v.dim() == 0
    }
    meta = {
        "aekit_checkpoint": str(CHECKPOINT_FORMAT),
        "params": json.dumps(params),
        "seed": json.dumps(seed),
        "run": json.dumps(run or {}),
        "param_groups": json.dumps(opt["param_groups"]),
        "scalar_keys": json.dumps(sorted(scalar_keys)),
        "loop": json.dumps(
            {
                "epoch": state.epoch,
                "history": state.history,
                "best_score": state.best_score if state.best_score != float("inf") else None,
                "best_epoch": state.best_epoch,
                "wait": state.wait,
                "plateau_wait": state.plateau_wait,
                "plateau_best": state.plateau_best if state.plateau_best != float("inf") else None,
            }
        ),
    }
    _write(path, tensors, meta)


class CheckpointMeta(NamedTuple):
    """A checkpoint's metadata, validated against the schemas in ``aekit.schema``."""

    params: dict[str, Any]  # the writing run's parameters (JSON values)
    seed: int | None  # the integer seed it drew; None in files from before checkpoints stored it
    groups: list[dict[str, Any]]  # the optimizer's parameter groups
    scalar_keys: set[str]  # the optimizer tensors that are one-element (0-d) state, e.g. opt.0.step
    loop: dict[str, Any]  # the loop state: epoch, history, early-stopping counters
    run: dict[str, Any]  # estimator class, feature names' digest, training rows; {} in files from before them


def _checkpoint_kind(p: Path, meta: dict[str, str]) -> None:
    fmt = meta.get("aekit_checkpoint")
    if fmt is None:
        what = (
            "a model file (load it with aekit.load)"
            if "aekit_format" in meta
            else ("a safetensors file without aekit checkpoint metadata")
        )
        raise ModelFileError(
            f"{p}: expected an aekit training checkpoint, found {what}; "
            "pass the checkpoint.safetensors written during training"
        )
    if fmt != str(CHECKPOINT_FORMAT):
        raise ModelFileError(
            f"{p}: checkpoint format {fmt[:20]!r}, this aekit reads format {CHECKPOINT_FORMAT}; "
            "resume with the aekit that wrote it, or train from the start"
        )


def read_checkpoint_metadata(path: str | os.PathLike[str]) -> CheckpointMeta:
    """A checkpoint's metadata, read from its header and validated; its tensors are not read."""
    p = Path(path)
    meta = read_metadata(p, "checkpoint", _CHECKPOINT_FIX)
    _checkpoint_kind(p, meta)
    with corrupted_metadata(p, "checkpoint metadata", CHECKPOINT_DAMAGED):
        params = check(schema.CHECKPOINT_PARAMS, entry(meta, "params"), "params")
        seed = check(schema.SEED, entry(meta, "seed"), "seed") if "seed" in meta else None
        groups = check(schema.PARAM_GROUPS, entry(meta, "param_groups"), "param_groups")
        scalar_keys = check(schema.SCALAR_KEYS, entry(meta, "scalar_keys"), "scalar_keys")
        loop = schema.check_loop(entry(meta, "loop", schema.MAX_LARGE_JSON), params.get("epochs", schema.MAX_COUNT))
        run = check(schema.CHECKPOINT_RUN, entry(meta, "run"), "run") if "run" in meta else {}
    return CheckpointMeta(params, seed, groups, set(scalar_keys), loop, run)


def _loop_state(loop: dict[str, Any]) -> LoopState:
    inf = float("inf")
    return LoopState(
        epoch=loop["epoch"],
        history={k: list(v) for k, v in loop["history"].items()},
        best_score=inf if loop["best_score"] is None else float(loop["best_score"]),
        best_epoch=loop["best_epoch"],
        wait=loop["wait"],
        plateau_wait=loop["plateau_wait"],
        plateau_best=inf if loop["plateau_best"] is None else float(loop["plateau_best"]),
    )


# ----------------------------------------------------------------------------- checkpoints: optimizer and RNG

#: the per-parameter state of each optimizer aekit builds: keys shaped like the parameter, keys present
#: when the group's momentum > 0, and one-element keys (Adam's step count, a float32 tensor)
OPTIMIZER_STATE: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "KerasRMSprop": (("velocity",), ("momentum",), ()),
    "SGD": ((), ("momentum_buffer",), ()),
    "Adam": (("exp_avg", "exp_avg_sq"), (), ("step",)),
    "AdamW": (("exp_avg", "exp_avg_sq"), (), ("step",)),
}
# how an update is computed follows this run's optimizer, not the writer's (a GPU run's fused or
# capturable Adam resumed on a CPU); the hyperparameters and state come from the checkpoint
_RUNTIME_KEYS = ("fused", "foreach", "capturable", "differentiable")
# what training changes in a parameter group: the learning rate (the schedules) and the start they keep;
# every other hyperparameter follows from the estimator's parameters, which a resumed run shares
_TRAINED_KEYS = ("params", "lr", "initial_lr")
_OPTIMIZER_FIX = "resume with the optimizer settings that wrote it, or train from the start"


def _group_schema(current: dict[str, Any], max_lr: float) -> schema.Obj:
    """A saved parameter group: this run's parameter indices, each hyperparameter of the type of this run's
    and within its range (``schema.HYPERPARAMETERS``), a learning rate in [0, the run's learning_rate]."""
    lr = schema.Num(0.0, max_lr)
    fields = {k: schema.HYPERPARAMETERS.get(k) or schema.like(v) for k, v in current.items() if k not in _RUNTIME_KEYS}
    fields |= {"params": schema.Const(jsonable(current["params"])), "lr": lr, "initial_lr": lr}
    return schema.Obj(fields, optional=frozenset(fields) - {"params", "lr"}, extra=schema.GROUP_VALUE)


def _checked_groups(p: Path, optimizer: torch.optim.Optimizer, ck: CheckpointMeta, fix: str) -> list[dict[str, Any]]:
    """The saved parameter groups, checked against this run's optimizer and completed from it: the
    hyperparameters are the file's, how the update runs is this run's. ``fix`` ends the message for a
    fixed hyperparameter that differs."""
    current = optimizer.state_dict()["param_groups"]
    rate = ck.params.get("learning_rate")  # schedules only lower it
    max_lr = float(rate) if rate is not None and schema.Num().ok(rate) else schema.MAX_FLOAT
    with corrupted_metadata(p, "checkpoint metadata", _OPTIMIZER_FIX):
        if len(ck.groups) != len(current):
            raise SchemaError(
                "param_groups", f"{len(current)} groups (this run's optimizer)", f"{len(ck.groups)} groups"
            )
        for i, (group, mine) in enumerate(zip(ck.groups, current, strict=True)):
            check(_group_schema(mine, max_lr), group, f"param_groups[{i}]")
    for i, (group, mine) in enumerate(zip(ck.groups, current, strict=True)):
        _check_fixed(p, group, mine, f"param_groups[{i}]", fix)
    return [
        {**mine, **group, **{k: mine[k] for k in _RUNTIME_KEYS if k in mine}}
        for group, mine in zip(ck.groups, current, strict=True)
    ]


def _check_fixed(p: Path, group: dict[str, Any], mine: dict[str, Any], where: str, fix: str) -> None:
    """Refuse a saved group whose fixed hyperparameters (``maximize``, ``amsgrad``, betas, momentum, ...)
    differ from this run's optimizer's: they decide what the resumed run learns. A key the file lacks (an
    older torch) takes this run's value; one this torch does not know is ignored by its optimizer."""
    for k, v in mine.items():
        if k in _TRAINED_KEYS or k in _RUNTIME_KEYS or k not in group or group[k] == jsonable(v):
            continue
        raise ModelFileError(
            f"{p}: checkpoint metadata {where}.{k} is {_value(group[k])}, expected "
            f"{_value(jsonable(v))} (this run's optimizer); {fix}"
        )


def _value(value: Any) -> str:
    """A hyperparameter for a message: short lists (Adam's betas) in full, as the difference is in them."""
    if isinstance(value, list) and len(value) <= 4 and all(isinstance(v, (int, float, bool)) for v in value):
        return schema.shown(value) if len(repr(value)) > 60 else repr(value)
    return schema.shown(value)


def _meta_tensor(shape: tuple[int, ...] | torch.Size, dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


def _expected_state(
    optimizer: torch.optim.Optimizer, groups: list[dict[str, Any]], epoch: int, names: list[str], scalar_keys: set[str]
) -> tuple[dict[str, torch.Tensor], set[str]]:
    """The optimizer tensors (``index.key``, as meta tensors) and the one-element ones (``opt.index.key``)
    that a checkpoint of ``epoch`` completed epochs holds (none before the first step), for this run's
    parameters under the checkpoint's ``groups`` (whose momentum decides whether there is a buffer)."""
    params = [
        (i, g, p)
        for i, (g, p) in enumerate(
            (g, p) for g, mine in zip(groups, optimizer.param_groups, strict=True) for p in mine["params"]
        )
    ]
    known = OPTIMIZER_STATE.get(type(optimizer).__name__)
    if epoch == 0:
        return {}, set()
    if known is None:  # an optimizer the table does not list: the file's keys, each shaped like its parameter
        shapes = {str(i): p for i, _, p in params}
        found = [(n[4:], shapes.get(n.split(".")[1])) for n in names if n.count(".") >= 2]
        return {
            k: _meta_tensor((1,), torch.float32) if f"opt.{k}" in scalar_keys else _meta_tensor(p.shape, p.dtype)
            for k, p in found
            if p is not None
        }, scalar_keys
    shaped, with_momentum, scalars = known
    expected: dict[str, torch.Tensor] = {}
    for i, group, param in params:
        keys = shaped + (with_momentum if group.get("momentum", 0) > 0 else ())
        expected |= {f"{i}.{k}": _meta_tensor(param.shape, param.dtype) for k in keys}
        expected |= {f"{i}.{k}": _meta_tensor((1,), torch.float32) for k in scalars}
    return expected, {f"opt.{i}.{k}" for i, _, _ in params for k in scalars}


def _check_rng(p: Path, rng: torch.Tensor | None) -> None:
    """Refuse a CPU RNG state that torch would not take, before anything is loaded."""
    want = torch.get_rng_state()
    if rng is None:
        problem = "is missing"
    elif rng.dtype != want.dtype or rng.shape != want.shape:
        problem = f"has shape {tuple(rng.shape)} {rng.dtype}, expected {tuple(want.shape)} {want.dtype}"
    else:
        try:
            torch.Generator().set_state(rng)  # a scratch generator: torch's own check, the global RNG untouched
            return
        except RuntimeError as exc:
            problem = f"is not a valid state ({exc})"
    raise ModelFileError(f"{p}: random-number state rng.cpu {problem}; {CHECKPOINT_DAMAGED}")


def _check_checkpoint_tensors(
    p: Path,
    tensors: dict[str, torch.Tensor],
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    groups: list[dict[str, Any]],
    ck: CheckpointMeta,
) -> None:
    """Every tensor of a checkpoint: its name, shape, dtype and finiteness, and the RNG state torch takes."""
    stray = sorted(k for k in tensors if k != "rng.cpu" and not k.startswith(("net.", "best.", "opt.")))
    if stray:
        raise ModelFileError(f"{p}: unexpected tensors {stray[:5]} in a checkpoint; {CHECKPOINT_DAMAGED}")
    _check_rng(p, tensors.get("rng.cpu"))
    weights = net.state_dict()
    check_tensors(
        p,
        tensors,
        weights,
        prefix="net.",
        fix="resume on data of the same features, with the parameters that wrote it",
        corrupt=CHECKPOINT_DAMAGED,
    )
    if any(k.startswith("best.") for k in tensors):  # the best epoch's weights, kept by early stopping
        check_tensors(
            p,
            tensors,
            weights,
            prefix="best.",
            fix=CHECKPOINT_DAMAGED,
            corrupt=CHECKPOINT_DAMAGED,
            what="best-epoch weights best.*",
        )
    names = [k for k in tensors if k.startswith("opt.")]
    expected, scalars = _expected_state(optimizer, groups, ck.loop["epoch"], names, ck.scalar_keys)
    check_tensors(
        p,
        tensors,
        expected,
        prefix="opt.",
        fix=_OPTIMIZER_FIX,
        corrupt=CHECKPOINT_DAMAGED,
        what="optimizer tensors opt.*",
    )
    for k, v in tensors.items():  # Adam divides by 1 - beta**step: a negative or fractional count breaks it
        if k.startswith("opt.") and k.endswith(".step") and v.is_floating_point() and v.numel() == 1:
            step = float(v.reshape(()))
            if step < 0 or step != int(step):
                raise ModelFileError(
                    f"{p}: optimizer tensor {k} is {step:g}, expected a step count (a whole number >= 0); "
                    f"{CHECKPOINT_DAMAGED}"
                )
    if ck.scalar_keys != scalars:
        raise ModelFileError(
            f"{p}: metadata scalar_keys names {sorted(ck.scalar_keys)[:3]}, expected the "
            f"optimizer's one-element state {sorted(scalars)[:3]}; {CHECKPOINT_DAMAGED}"
        )


def _optimizer_state(tensors: dict[str, torch.Tensor], scalar_keys: set[str]) -> dict[int, dict[str, Any]]:
    opt_state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, key = k.split(".", 2)
            opt_state.setdefault(int(idx), {})[key] = v.reshape(()) if k in scalar_keys else v
    return opt_state


def _load_optimizer(
    p: Path, optimizer: torch.optim.Optimizer, groups: list[Any], opt_state: dict[int, dict[str, Any]]
) -> None:
    saved_opt = optimizer.state_dict()
    try:  # checked above; should torch still refuse, the optimizer is put back as it was
        optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        optimizer.load_state_dict(saved_opt)
        raise ModelFileError(f"{p}: optimizer state does not fit this model ({exc}); {_OPTIMIZER_FIX}") from exc


def run_record(estimator: Any, n_train: int | None = None) -> dict[str, Any]:
    """What a checkpoint records of a run beyond its parameters: the estimator class and a digest of the
    feature names in order (when the data named them), which a resuming run must match, and the number of
    training rows, which it is warned about when it differs."""
    import hashlib

    run: dict[str, Any] = {"estimator": type(estimator).__name__}
    if n_train is not None:
        run["n_train"] = int(n_train)
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:  # a digest: the names may be many
        text = json.dumps([str(n) for n in names]).encode("utf-8", "surrogatepass")
        run["feature_names_sha256"] = hashlib.sha256(text).hexdigest()
    if getattr(estimator, "input_offset_", None) is not None:  # the fitted scale: the same data fit the same one
        both = np.concatenate([estimator.input_offset_, estimator.input_scale_]).astype(np.float32)
        run["scaler_sha256"] = hashlib.sha256(both.tobytes()).hexdigest()
    return run


def _check_scaler(p: Path, run: str | None, written: str | None) -> None:
    """Warn of a resumed run whose ``scale`` fitted to other numbers: its data differ from the checkpoint's
    run's (a trial resumed on other data without a word), and the weights learnt on inputs scaled otherwise."""
    if run is not None and written is not None and run != written:
        warnings.warn(
            f"{p}: the data's scale (offset and factor per feature) differs from the one the checkpoint's run "
            "fitted: the run continues on other data, scaled otherwise; resume with the same data to continue "
            "the run as it was",
            UserWarning,
            stacklevel=outside_stacklevel(),
        )


def _check_names(p: Path, run: str | None, written: str | None) -> None:
    """Refuse to resume on columns named otherwise or in another order (training on them would mix features).

    Either side without names (a NumPy array; a checkpoint written before names were kept) is not compared.
    """
    if run is not None and written is not None and run != written:
        raise ModelFileError(
            f"{p}: X's feature names are not those the checkpoint's run was fitted on (other names or another "
            "order); resume with the columns as they were, in the same order, or train from the start"
        )


def _check_rows(p: Path, run: int | None, written: int | None) -> None:
    """Warn of a resumed run on another number of training rows: it continues on other data (a training
    file changed, or another --limit), which may be meant but is more often a slip."""
    if run is not None and written is not None and run != written:
        warnings.warn(
            f"{p}: resuming on {run:,} training rows, but the checkpoint's run trained on {written:,}: it "
            "continues on other data; resume with the same data (and --limit) to continue the run as it was",
            UserWarning,
            stacklevel=outside_stacklevel(),
        )


def _check_estimator(p: Path, run: str | None, written: str | None) -> None:
    """Refuse a checkpoint of another estimator class in one line naming both (not every parameter that
    differs between them). Checkpoints written before the class was kept are compared by parameters alone."""
    if run is not None and written is not None and run != written:
        raise ModelFileError(
            f"{p}: written by {written[:64]}.fit, resumed by {run}.fit; resume with the estimator that wrote it "
            "(aekit train: the same --method and --supervised), or train from the start"
        )


def _same_value(name: str, value: Any) -> Any:
    """A parameter's value as compared on resuming: layer widths as a tuple (``8`` and ``(8,)`` are one
    network; JSON wrote ``[8]``); a value its constraint refuses (a tampered file) as it is."""
    constraint = getattr(PARAMS.get(name), "constraint", None)
    if isinstance(constraint, Sizes) and constraint.one_ok and constraint.ok(value):
        return sizes(value)
    return value


def load_checkpoint(
    path: str | os.PathLike[str],
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    expected_params: dict[str, Any] | None = None,
    expected_run: dict[str, Any] | None = None,
) -> LoopState:
    """Restore ``net``, ``optimizer`` and torch's CPU RNG in place; return the loop state.

    ``expected_params``: the resuming run's parameters; the checkpoint must have been written with
    the same ones, except those that change how a run runs, not what it learns (epochs, device, ...).
    The metadata (``read_checkpoint_metadata``), every tensor's name, shape, dtype and finiteness,
    the optimizer's parameter groups and the RNG state are checked before anything is changed: a bad
    file raises ``ModelFileError`` and leaves ``net``, ``optimizer`` and the RNG as they were.
    """
    p = Path(path)
    ck = read_checkpoint_metadata(p)
    if expected_run is not None:  # either side without an entry (an older file, data without names): not compared
        _check_estimator(p, expected_run.get("estimator"), ck.run.get("estimator"))
        _check_names(p, expected_run.get("feature_names_sha256"), ck.run.get("feature_names_sha256"))
        _check_rows(p, expected_run.get("n_train"), ck.run.get("n_train"))
        if expected_run.get("n_train") == ck.run.get("n_train"):  # other rows: said already
            _check_scaler(p, expected_run.get("scaler_sha256"), ck.run.get("scaler_sha256"))
    if expected_params is not None:
        # a parameter the checkpoint does not name is younger than the file: its run had the default, or
        # what BEFORE_THEY_EXISTED says it did
        written = {
            k: ck.params[k] if k in ck.params else BEFORE_THEY_EXISTED.get(k, getattr(PARAMS.get(k), "default", None))
            for k in expected_params
        }
        changed = {
            k
            for k in expected_params
            if k not in _RESUMABLE_CHANGES and _same_value(k, written[k]) != _same_value(k, expected_params[k])
        }
        changed |= {"epochs"} - set(ck.params)  # every run writes it: the bound of the loop's counters
        if changed:
            raise ModelFileError(
                f"{p}: checkpoint was written with different parameters {sorted(changed)}; "
                "resume with the same settings"
            )
    # the estimator's parameters agree (checked above), and they decide every fixed hyperparameter: one
    # that differs was edited
    groups = _checked_groups(p, optimizer, ck, _OPTIMIZER_FIX if expected_params is None else CHECKPOINT_DAMAGED)
    tensors = read_tensors(p, "checkpoint", _CHECKPOINT_FIX)
    _check_checkpoint_tensors(p, tensors, net, optimizer, groups, ck)
    _load_optimizer(p, optimizer, groups, _optimizer_state(tensors, ck.scalar_keys))
    net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    state = _loop_state(ck.loop)
    device = next(net.parameters()).device
    state.best_weights = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")} or None
    torch.set_rng_state(tensors["rng.cpu"])
    return state


def checkpoint_seed(path: str | os.PathLike[str]) -> tuple[int | None, Any]:
    """``(seed, random_state)`` of the run that wrote a checkpoint: the integer seed it drew (stored since
    checkpoints have a "seed" entry; before, known only when its random_state was an int) and its
    ``random_state`` parameter as stored (None or an int, validated).

    Raises ``ModelFileError`` for a file that is not a valid checkpoint, before a resumed run builds anything.
    """
    ck = read_checkpoint_metadata(path)
    random_state = ck.params.get("random_state")
    return (random_state if ck.seed is None else ck.seed), random_state


def checkpoint_callback(
    path: str | os.PathLike[str],
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    get_state: Callable[[], LoopState],
    params: dict[str, Any],
    seed: int | None = None,
    run: dict[str, Any] | None = None,
) -> Callable[[int, dict[str, float]], None]:
    """A training callback that writes a checkpoint at the end of every epoch."""

    def callback(epoch: int, logs: dict[str, float]) -> None:
        save_checkpoint(path, net, optimizer, get_state(), params, seed, run)

    return callback
