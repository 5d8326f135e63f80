"""Model files and training checkpoints: one safetensors format, one tensor check, format versions.

Both kinds are one ``.safetensors`` file: tensors plus string metadata holding JSON.
Nothing is unpickled when reading, and files are written under a temporary name and
renamed, so a crash never leaves a half-written file under the final name.

- A model file (``aekit_format`` = ``MODEL_FORMAT``) holds the network's weights, the
  estimator's class name, its parameters, its fitted attributes and the library versions.
  This module knows the format, not the estimators: ``estimators.load`` rebuilds one.
- A checkpoint (``aekit_checkpoint`` = ``CHECKPOINT_FORMAT``) holds weights, optimizer
  state, the loop state and torch's CPU RNG, written after every epoch; on CPU a run
  interrupted and resumed from it ends bitwise identical to an uninterrupted one (tested).

Files of these format versions, written by aekit 0.1.0, are kept in ``tests/golden/`` and
loaded by ``tests/test_files.py``: a change that cannot read them is a format change.
"""

from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from aekit._utils import ModelFileError, atomic_path
from aekit.training import LoopState

MODEL_FORMAT = 1
CHECKPOINT_FORMAT = 1

# parameters a resumed run may change: how it runs, not what it learns
_RESUMABLE_CHANGES = ("epochs", "verbose", "device", "compile", "precision", "checkpoint_path")
_MODEL_FIX = "check the path; models are written by Autoencoder.save or `aekit train`"
_CHECKPOINT_FIX = (
    "train with checkpoint_path=... first (the CLI writes --out/checkpoint.safetensors), or train from the start"
)


# ----------------------------------------------------------------------------- shared


def _versions() -> dict[str, str]:
    """The versions that wrote a file, stored in model files for bug reports."""
    import sklearn

    from aekit import __version__

    return {"aekit": __version__, "torch": torch.__version__, "numpy": np.__version__, "sklearn": sklearn.__version__,
            "python": platform.python_version()}


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


def read_safetensors(
    path: str | os.PathLike[str], what: str, fix: str
) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Metadata and CPU tensors of a safetensors file; never runs code from it.

    ``what`` names the expected kind of file and ``fix`` the remedy, for the errors.
    """
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{p}: no such {what}; {fix}")
    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{p}: not a valid {what} (safetensors: {exc}); {fix}") from exc
    return meta, tensors


def check_tensors(
    path: Path, tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], *,
    prefix: str = "", fix: str, corrupt: str,
) -> None:
    """Refuse a file's tensors unless they fit a network and are finite.

    The tensors named ``prefix + name`` must be exactly ``expected``'s (a state dict; on the
    meta device is enough): the same names, shapes and dtypes. Every floating-point tensor
    in ``tensors`` (the whole file) must be finite. ``fix`` ends the message for tensors
    that do not fit, ``corrupt`` the one for NaN or inf values.
    """
    found = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    wrong = [
        f"tensor {k} has shape {tuple(found[k].shape)} {found[k].dtype}, expected {tuple(v.shape)} {v.dtype}"
        for k, v in expected.items() if k in found and (found[k].shape != v.shape or found[k].dtype != v.dtype)
    ]
    if missing or extra or wrong:
        problems = [f"missing {missing[:5]}"] if missing else []
        problems += ([f"unexpected {extra[:5]}"] if extra else []) + wrong[:3]
        raise ModelFileError(f"{path}: weights do not fit this model: {'; '.join(problems)}; {fix}")
    for k, v in tensors.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ModelFileError(f"{path}: tensor {k} holds NaN or inf values; {corrupt}")


@contextmanager
def corrupted_metadata(path: Path, what: str, fix: str = "") -> Iterator[None]:
    """Turn the errors of decoding a file's JSON metadata into one ``ModelFileError`` naming the file."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:  # JSONDecodeError is a ValueError
        raise ModelFileError(f"{path}: corrupted {what} ({exc}){'; ' + fix if fix else ''}") from exc


# ----------------------------------------------------------------------------- model files


class ModelFile(NamedTuple):
    """A model file's content, decoded: what ``estimators.load`` rebuilds an estimator from."""

    estimator: str  # class name, e.g. "Autoencoder"
    params: dict[str, Any]  # get_params(), sequences as tuples
    fitted: dict[str, Any]  # fitted attributes by name (n_features_in_, history_, classes_, ...), decoded
    tensors: dict[str, torch.Tensor]  # the network's state dict, on the CPU


def fitted_section(est: Any) -> dict[str, Any]:
    """An estimator's fitted attributes as the JSON values of a model file's ``fitted`` entry."""
    fitted: dict[str, Any] = {
        "n_features_in_": int(est.n_features_in_),
        "history_": est.history_,
        "n_iter_": int(est.n_iter_),
        "seed_": int(est.seed_),
        "stop_reason_": getattr(est, "stop_reason_", ""),
    }
    if hasattr(est, "feature_names_in_"):
        fitted["feature_names_in_"] = [str(n) for n in est.feature_names_in_]
    if hasattr(est, "classes_"):  # the dtype too: text labels come back as text, integers as integers
        fitted["classes_"] = est.classes_.tolist()
        fitted["classes_dtype"] = est.classes_.dtype.str
    return fitted


def _decode_fitted(fitted: Any) -> dict[str, Any]:
    n_features = int(fitted["n_features_in_"])
    attrs: dict[str, Any] = {
        "n_features_in_": n_features,
        "history_": fitted.get("history_", {}),
        "n_iter_": int(fitted.get("n_iter_", 0)),
        "seed_": int(fitted.get("seed_", 0)),
        "stop_reason_": fitted.get("stop_reason_", ""),
    }
    if "classes_" in fitted:
        attrs["classes_"] = np.asarray(fitted["classes_"], dtype=np.dtype(fitted["classes_dtype"]))
    names = fitted.get("feature_names_in_")
    if isinstance(names, list) and len(names) == n_features:
        attrs["feature_names_in_"] = np.asarray(names, dtype=object)
    return attrs


def save_model(
    path: str | os.PathLike[str], net: nn.Module, estimator: str, params: dict[str, Any], fitted: dict[str, Any],
    *, overwrite: bool = True,
) -> Path:
    """Write a model file: ``net``'s weights, the estimator's class name, JSON ``params`` and ``fitted``."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; pass overwrite=True (CLI: --overwrite) or choose another path")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    metadata = {
        "aekit_format": str(MODEL_FORMAT),
        "estimator": estimator,
        "params": json.dumps(params),
        "fitted": json.dumps(fitted),
        "versions": json.dumps(_versions()),
    }
    _write(p, tensors, metadata)
    return p


def read_model(path: str | os.PathLike[str]) -> ModelFile:
    """Read and decode a model file; its tensors are checked against a network by ``check_tensors``."""
    p = Path(path)
    meta, tensors = read_safetensors(p, "aekit model file", _MODEL_FIX)
    if "aekit_format" not in meta:
        if "aekit_checkpoint" in meta:
            raise ModelFileError(
                f"{p}: a training checkpoint, not a model; resume it with fit(X, resume_from=...) (CLI: --resume) "
                "or load model.safetensors"
            )
        raise ModelFileError(f"{p}: a safetensors file without aekit metadata; save models with Autoencoder.save")
    if meta["aekit_format"] != str(MODEL_FORMAT):
        raise ModelFileError(
            f"{p}: model format {meta['aekit_format']}, this aekit reads format {MODEL_FORMAT}; upgrade aekit"
        )
    with corrupted_metadata(p, "model metadata"):
        params = json.loads(meta["params"])
        if not isinstance(params, dict):
            raise TypeError(f"params is a {type(params).__name__}, expected an object")
        # JSON has no tuples: aekit's sequence parameters (hidden_layer_sizes, ...) are tuples
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        fitted = _decode_fitted(json.loads(meta["fitted"]))
    return ModelFile(meta.get("estimator", ""), params, fitted, tensors)


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    path: str | os.PathLike[str], net: nn.Module, optimizer: torch.optim.Optimizer, state: LoopState,
    params: dict[str, Any], seed: int | None = None,
) -> None:
    """Write a checkpoint of a run: weights, optimizer state, loop state and torch's CPU RNG.

    ``seed``: the integer seed the run drew (from ``random_state=None`` too): a resumed run reuses it,
    so that its validation split is the same one.
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


def _read_checkpoint(p: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    meta, tensors = read_safetensors(p, "checkpoint", _CHECKPOINT_FIX)
    fmt = meta.get("aekit_checkpoint")
    if fmt is None:
        what = "a model file (load it with aekit.load)" if "aekit_format" in meta else (
            "a safetensors file without aekit checkpoint metadata"
        )
        raise ModelFileError(
            f"{p}: expected an aekit training checkpoint, found {what}; "
            "pass the checkpoint.safetensors written during training"
        )
    if fmt != str(CHECKPOINT_FORMAT):
        raise ModelFileError(
            f"{p}: checkpoint format {fmt!r}, this aekit reads format {CHECKPOINT_FORMAT}; "
            "resume with the aekit that wrote it, or train from the start"
        )
    return meta, tensors


def _loop_state(loop: dict[str, Any]) -> LoopState:
    inf = float("inf")
    return LoopState(
        epoch=int(loop["epoch"]),
        history={k: list(v) for k, v in loop["history"].items()},
        best_score=inf if loop["best_score"] is None else float(loop["best_score"]),
        best_epoch=int(loop["best_epoch"]),
        wait=int(loop["wait"]),
        plateau_wait=int(loop["plateau_wait"]),
        plateau_best=inf if loop["plateau_best"] is None else float(loop["plateau_best"]),
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
    for group, current in zip(groups, saved_opt["param_groups"], strict=False):
        # how the update is computed follows this run's optimizer, not the writer's (a GPU run's fused or
        # capturable Adam resumed on a CPU); the hyperparameters and state come from the checkpoint
        for key in ("fused", "foreach", "capturable", "differentiable"):
            if isinstance(group, dict) and key in current:
                group[key] = current[key]
    try:
        optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        optimizer.load_state_dict(saved_opt)
        raise ModelFileError(
            f"{p}: optimizer state does not fit this model ({exc}); resume with the same optimizer settings"
        ) from exc


def load_checkpoint(
    path: str | os.PathLike[str], net: nn.Module, optimizer: torch.optim.Optimizer, *,
    expected_params: dict[str, Any] | None = None,
) -> LoopState:
    """Restore ``net``, ``optimizer`` and torch's CPU RNG in place; return the loop state.

    ``expected_params``: the resuming run's parameters; the checkpoint must have been written with
    the same ones, except those that change how a run runs, not what it learns (epochs, device, ...).
    """
    p = Path(path)
    meta, tensors = _read_checkpoint(p)
    with corrupted_metadata(p, "checkpoint metadata", "delete it and train from the start"):
        params = json.loads(meta["params"])
        groups = json.loads(meta["param_groups"])
        state = _loop_state(json.loads(meta["loop"]))
        opt_state = _optimizer_state(tensors, set(json.loads(meta["scalar_keys"])))
        if not isinstance(params, dict) or not isinstance(groups, list) or state.epoch < 0:
            raise ValueError("params, param_groups or the epoch count have the wrong type")
    if expected_params is not None:
        changed = {k for k in expected_params if k not in _RESUMABLE_CHANGES and params.get(k) != expected_params[k]}
        if changed:
            raise ModelFileError(
                f"{p}: checkpoint was written with different parameters {sorted(changed)}; "
                "resume with the same settings"
            )
    # everything is checked before anything is changed: a bad file leaves net, optimizer and RNG as they were
    rng = tensors.get("rng.cpu")
    if rng is None or rng.dtype != torch.uint8 or rng.shape != torch.get_rng_state().shape:
        raise ModelFileError(
            f"{p}: missing or malformed random-number state; the checkpoint is corrupted, train from the start"
        )
    check_tensors(p, tensors, net.state_dict(), prefix="net.", fix="resume with the parameters that wrote it",
                  corrupt="the checkpoint is corrupted, train from the start")
    _load_optimizer(p, optimizer, groups, opt_state)
    net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    device = next(net.parameters()).device
    state.best_weights = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")} or None
    torch.set_rng_state(rng)
    return state


def checkpoint_seed(path: str | os.PathLike[str]) -> tuple[int | None, Any]:
    """``(seed, random_state)`` of the run that wrote a checkpoint: the integer seed it drew (stored since
    checkpoints have a "seed" entry; before, known only when its random_state was an int) and its
    ``random_state`` parameter as stored. ``(None, None)`` for a file that is not a readable checkpoint:
    ``load_checkpoint`` reports what is wrong with it."""
    from safetensors.torch import safe_open

    def seed_or_none(v: Any) -> int | None:
        return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
        random_state = json.loads(meta.get("params", "{}")).get("random_state")
        seed = seed_or_none(json.loads(meta.get("seed", "null")))
    except Exception:  # noqa: BLE001 - any unreadable file: load_checkpoint says why
        return None, None
    return (seed_or_none(random_state) if seed is None else seed), random_state


def checkpoint_callback(
    path: str | os.PathLike[str], net: nn.Module, optimizer: torch.optim.Optimizer, get_state: Callable[[], LoopState],
    params: dict[str, Any], seed: int | None = None,
) -> Callable[[int, dict[str, float]], None]:
    """A training callback that writes a checkpoint at the end of every epoch."""

    def callback(epoch: int, logs: dict[str, float]) -> None:
        save_checkpoint(path, net, optimizer, get_state(), params, seed)

    return callback
