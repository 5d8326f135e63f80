"""Leaf helpers: shared types, errors, devices, seeding, array/tensor conversion, atomic writes.

Imports nothing from the package, so every other module may import it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: ``loss_fn(batch, training) -> {"loss": total, **named terms}``
LossFn = Callable[[tuple[torch.Tensor, ...], bool], dict[str, torch.Tensor]]
#: one training step on a batch (forward, backward, optimizer update) -> the loss terms
Step = Callable[[tuple[torch.Tensor, ...]], dict[str, torch.Tensor]]
#: ``callback(epoch, logs) -> bool | None``; returning True stops training.
Callback = Callable[[int, dict[str, float]], Any]


class AekitError(Exception):
    """Base class of every error aekit raises on purpose."""


class InputError(AekitError, ValueError):
    """An argument or a file's content is not what aekit expects."""


class DataFormatError(InputError):
    """A data file is malformed (bad header, truncated, wrong type, ...)."""


class ModelFileError(InputError):
    """A model or checkpoint file cannot be loaded safely."""


class DownloadError(AekitError, OSError):
    """No mirror delivered a file whose checksum matched."""


class TrainingDivergedError(AekitError, FloatingPointError):
    """The training loss became NaN or infinite."""


class CudaGraphError(AekitError, RuntimeError):
    """A failed CUDA graph capture left the GPU's random-number generator unusable in this process."""


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn ``"auto"`` into the best available device; check anything else.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``...
    """
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise InputError(f"device={device!r} must be a string such as 'auto', 'cpu' or 'cuda'")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"device={device!r} is not a device name; use 'auto', 'cpu' or 'cuda'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device={device!r} was asked for but CUDA is not available; use device='auto' or 'cpu'")
    return dev


#: how far outside [0, 1] data may stray and still count as [0, 1] data (float rounding: MinMaxScaler gives 1.0000001)
UNIT_TOL = 1e-6


def in_unit_range(lo: float, hi: float) -> bool:
    """Whether values from ``lo`` to ``hi`` lie in [0, 1], up to float rounding (NaN: False)."""
    return bool(lo >= -UNIT_TOL and hi <= 1 + UNIT_TOL)


def is_uint8(X: Any) -> bool:
    """uint8 data (an array, or a DataFrame whose every column is uint8): 0-255 pixels that aekit scales to [0, 1]."""
    dtypes = getattr(X, "dtypes", None)  # a DataFrame: one dtype per column
    return getattr(X, "dtype", None) == np.uint8 or (dtypes is not None and len(dtypes) > 0 and all(d == np.uint8 for d in dtypes))


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, paths and tuples turned into JSON types (recursively)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def seed_from(random_state: int | np.random.RandomState | None) -> int:
    """An integer seed drawn from a scikit-learn style ``random_state``."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise InputError(f"random_state={random_state} must be >= 0 or None")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise InputError(
        f"random_state={random_state!r} must be an int, a numpy RandomState or None"
    )


@contextlib.contextmanager
def isolated_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch inside a fork of its global RNG, leaving the caller's state untouched."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def capturing() -> bool:
    """Whether a CUDA graph is being captured on the current stream (False without CUDA)."""
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def to_tensor(X: np.ndarray, device: torch.device) -> torch.Tensor:
    """float32 tensor on ``device`` sharing memory with ``X`` where possible."""
    return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(device)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu").numpy()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    A crash or exception never leaves a half-written file under the final name,
    and the previous file stays intact until the new one is complete.
    """
    final = Path(path)
    if final.is_dir():
        raise InputError(f"{final} is a folder; expected a file name to write")
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        # the permissions a plain open() would give, not mkstemp's 0600 (set after writing: some
        # writers, e.g. safetensors, replace the temporary file with their own)
        os.chmod(tmp_path, 0o666 & ~umask)
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def read_safetensors(path: str | os.PathLike[str], what: str, fix: str) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
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
