"""Leaf helpers: shared types, errors, devices, seeding, array/tensor conversion, atomic writes.

Imports nothing from the package, so every other module may import it.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping
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


#: a parameter named in an InputError message: ``{name}`` (its value from ``values``) or ``{name=shown}``
_NAMED = re.compile(r"\{(\w+)(?:=([^{}]*))?\}")


def as_keyword(name: str, shown: str) -> str:
    """How the library names a parameter in a message: ``n_components=0``."""
    return f"{name}={shown}"


class InputError(AekitError, ValueError):
    """An argument or a file's content is not what aekit expects.

    ``param`` names the estimator parameter at fault, as data (None for data and file
    errors). With ``values``, ``message`` is a template naming parameters as ``{name}``
    (shown with ``values[name]``) or ``{name=shown}``: ``str(exc)`` reads
    ``n_components=0 must be ...`` and ``render`` shows the names another way (the CLI:
    ``--n-components 0 must be ...``), so no caller parses message text.
    """

    def __init__(self, message: str, *, param: str | None = None, values: Mapping[str, Any] | None = None) -> None:
        self.param = param
        self.template = None if values is None else message
        self.values = dict(values or {})
        super().__init__(message if self.template is None else self.render())

    def render(self, style: Callable[[str, str], str] = as_keyword) -> str:
        """The message with each named parameter shown as ``style(name, repr_of_value)``."""
        if self.template is None:
            return str(self.args[0]) if self.args else ""

        def show(m: re.Match[str]) -> str:
            name, shown = m.group(1), m.group(2)
            if shown is None:
                if name not in self.values:
                    return m.group(0)
                shown = repr(self.values[name])
            return style(name, shown)

        return _NAMED.sub(show, self.template)


class DataFormatError(InputError):
    """A data file is malformed (bad header, truncated, wrong type, ...)."""


class ModelFileError(InputError):
    """A model or checkpoint file cannot be loaded safely."""


class DownloadError(AekitError, OSError):
    """No mirror delivered a file whose checksum matched."""


class TrainingDivergedError(AekitError, FloatingPointError):
    """The training loss became NaN or infinite."""


class TrainingWarning(UserWarning):
    """A fit that ran but looks like it failed to learn (see ``aekit.health``); filter by this category."""


class CudaGraphError(AekitError, RuntimeError):
    """A failed CUDA graph capture left the GPU's random-number generator unusable in this process."""


def available_devices() -> list[str]:
    """The device names this machine can train on: ``auto``, ``cpu``, and each CUDA / MPS / XPU device present."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        names += ["xpu", *(f"xpu:{i}" for i in range(xpu.device_count()))]
    return names


def _device_present(dev: torch.device) -> bool:
    if dev.type == "cpu":
        return dev.index in (None, 0)
    names = available_devices()
    return str(dev) in names or (dev.index is None and dev.type in names)


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn ``"auto"`` into the best available device; check anything else against this machine.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``...

    Raises
    ------
    InputError
        ``param="device"``: not a device name, or a device this machine does not have (``meta``,
        ``xla``, ``cuda`` without CUDA...); the message lists the ones it has.
    """
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise InputError(
            "{device} must be a string such as 'auto', 'cpu' or 'cuda'",
            param="device",
            values={"device": device},
        )
    choices = ", ".join(repr(n) for n in available_devices())
    try:
        dev = device if isinstance(device, torch.device) else torch.device(device)
    except RuntimeError as exc:
        raise InputError(
            f"{{device}} is not a device name; expected one of this machine's: {choices}",
            param="device",
            values={"device": device},
        ) from exc
    if not _device_present(dev):
        raise InputError(
            f"{{device}} is not available on this machine; expected one of {choices}",
            param="device",
            values={"device": str(device)},
        )
    return dev


#: the largest magnitude a float32 holds; data beyond it would become inf in training
FLOAT32_MAX = float(np.finfo(np.float32).max)


def first_beyond_float32(X: np.ndarray) -> tuple[int, ...] | None:
    """The index of the first value of a float array whose magnitude float32 cannot hold (None: all fit).

    Checked in blocks of rows, so a large array needs no full-size temporary mask.
    """
    if X.dtype.kind != "f" or X.dtype.itemsize <= 4 or X.size == 0:
        return None
    rows = max(1, (1 << 22) // max(1, X.size // max(1, len(X))))
    for start in range(0, len(X), rows):
        block = X[start : start + rows]
        if np.abs(block).max() > FLOAT32_MAX:
            bad = np.argwhere(np.abs(block) > FLOAT32_MAX)[0]
            return (start + int(bad[0]), *(int(i) for i in bad[1:]))
    return None


#: how far outside [0, 1] data may stray and still count as [0, 1] data (float rounding: MinMaxScaler gives 1.0000001)
UNIT_TOL = 1e-6


def in_unit_range(lo: float, hi: float) -> bool:
    """Whether values from ``lo`` to ``hi`` lie in [0, 1], up to float rounding (NaN: False)."""
    return bool(lo >= -UNIT_TOL and hi <= 1 + UNIT_TOL)


#: the keys ``warn_once`` has warned about in this process
_WARNED: set[Hashable] = set()


#: the packages between a user's line and aekit's warning: scikit-learn's meta-estimators, joblib's workers
_NOT_USERS = ("aekit", "sklearn", "joblib")
#: aekit's own callers of the estimators: a warning points at them (the CLI shows those as one line)
_USERS_IN_AEKIT = ("aekit.cli", "aekit.commands", "aekit.demo", "aekit.__main__")


def outside_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` in the calling function that points at the first frame
    outside aekit, scikit-learn and joblib: the user's line, also when ``fit_transform``, a Pipeline or a
    cross-validation called aekit."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None:
        module = frame.f_globals.get("__name__", "")
        if module.split(".")[0] not in _NOT_USERS or module in _USERS_IN_AEKIT:
            break
        frame, level = frame.f_back, level + 1
    return level


def own_ids(ids: Any) -> np.ndarray | None:
    """``ids`` if they are the rows' own ids (a CSV's id column, an image's file), None for no ids or for the
    row numbers 0..n-1 that stand in for them (integer ids of the user's that are not those are kept)."""
    if ids is None:
        return None
    a = np.asarray(ids)
    return None if a.dtype.kind in "iu" and np.array_equal(a, np.arange(len(a))) else a


def warn_once(key: Hashable, message: str, category: type[Warning] = UserWarning, stacklevel: int = 1) -> None:
    """``warnings.warn`` the first time ``key`` comes in this process, then never again.

    For advice about the data that would otherwise repeat for every fold of a
    cross-validation (the messages differ, so the ``warnings`` module's own once-per-text
    rule does not hold them back). ``stacklevel`` counts from the caller, as in ``warnings.warn``.
    """
    if key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(message, category, stacklevel=stacklevel + 1)


def attribute(X: Any, name: str, default: Any = None) -> Any:
    """``getattr(X, name, default)``, but a DataFrame's column named ``name`` (which ``X.dtype`` or
    ``X.row_shape`` would return) is no attribute of the data: ``default`` then."""
    if hasattr(X, "columns") and not hasattr(type(X), name):
        return default
    return getattr(X, name, default)


def is_uint8(X: Any) -> bool:
    """uint8 data: an array, or a DataFrame whose every column is uint8."""
    dtypes = attribute(X, "dtypes")  # a DataFrame: one dtype per column
    return attribute(X, "dtype") == np.uint8 or (
        dtypes is not None and len(dtypes) > 0 and all(d == np.uint8 for d in dtypes)
    )


#: uint8 data whose largest value reaches this are 0-255 pixels (see ``uint8_pixels``)
PIXEL_THRESHOLD = 128


def uint8_pixels(X: Any, stacklevel: int = 1) -> bool | None:
    """Whether uint8 ``X`` holds 0-255 pixels (True) or numbers (False); None when ``X`` is not uint8.

    aekit's one pixel rule: uint8 whose largest value is at least ``PIXEL_THRESHOLD`` (128) is
    read as images. Any set of 8-bit images reaches the upper half of 0-255 somewhere, while
    small numbers stored as uint8 (counts, ratings, scikit-learn's 0-16 digits) stay below it.
    The two mistakes are not alike: numbers up to 255 read as pixels are only divided by a
    constant and still fill most of [0, 1], while 0-16 divided by 255 would crowd into
    [0, 0.07] and train badly. uint8 read as numbers is said once per process (``stacklevel``
    counts from the caller, as in ``warnings.warn``).
    """
    if not is_uint8(X):
        return None
    return pixels_from_max(int(np.asarray(X).max()) if np.asarray(X).size else 0, stacklevel + 1)


def square_shape(n_features: int) -> tuple[int, ...] | None:
    """The square image ``n_features`` values hold: ``(side, side)`` grey or ``(3, side, side)`` colour; None."""
    for channels in (1, 3):
        side = math.isqrt(n_features // channels)
        if side and channels * side * side == n_features:
            return (side, side) if channels == 1 else (3, side, side)
    return None


def looks_like_pixels(X: Any) -> bool:
    """``uint8_pixels``' rule without its warning: uint8 reaching ``PIXEL_THRESHOLD`` (the metrics and
    ``add_noise`` follow it, as the estimators read such data)."""
    a = np.asarray(X)
    return a.dtype == np.uint8 and a.size > 0 and int(a.max()) >= PIXEL_THRESHOLD


def pixels_from_max(top: int, stacklevel: int = 1) -> bool:
    """``uint8_pixels`` from the data's largest value ``top`` (e.g. found in a pass over a file)."""
    if top >= PIXEL_THRESHOLD:
        return True
    warn_once(
        ("uint8-numbers",),
        f"X is uint8 with values up to {top} (below {PIXEL_THRESHOLD}): read as numbers, not as 0-255 pixels. "
        "For images pass scale='pixels' or X / 255; "
        "for numbers, scale='minmax' or scale='standard' scales them. Shown once per process",
        stacklevel=stacklevel + 1,
    )
    return False


def not_a_file(p: Path) -> str:
    """Why ``p`` cannot be read as a data file: it does not exist, is a folder, or a device, a pipe or a socket."""
    if not p.exists():
        return f"{p}: no such file or folder"
    if p.is_dir():
        return f"{p} is a folder, not a data file of this kind; pass the file, or a folder of images"
    return f"{p} is not a regular file (a device, a pipe or a socket); pass a data file or a folder of images"


#: a text cell starting with one of these is a formula to a spreadsheet (OWASP's list; "'" to stay invertible)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def spreadsheet_safe(text: str) -> str:
    """A text cell that a spreadsheet shows as text, never runs: one that would start a formula (an id
    ``=cmd|' /C calc'!A0``, a label ``+SUM(1)``) gets a leading ``'``, as OWASP advises for CSV files.
    Numbers (``-1.5``) stay as they are; a cell starting with ``'`` gets one more, so that ``from_spreadsheet_safe``
    gives the text back exactly."""
    if not text.startswith(FORMULA_STARTS) or _NUMBER.fullmatch(text):  # a number is no formula, and stays one
        return text
    return "'" + text


#: a plain decimal number (the explore page's script uses the same pattern for its saved selections)
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def from_spreadsheet_safe(text: str) -> str:
    """The text ``spreadsheet_safe`` was given (a cell without its mark is returned as it is)."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text


#: how text outputs (CSV, TSV, HTML) write a name that is not valid UTF-8 (a file name's undecodable bytes, as
#: Python holds them): as backslash escapes (bad\udcff.png), instead of failing
UNDECODABLE = "backslashreplace"


#: the label of an unlabelled sample (semi-supervised fits); the text "-1" among text labels
UNLABELLED = -1


def unlabelled(y: np.ndarray) -> np.ndarray:
    """Which samples are unlabelled: -1 among numbers, the text "-1" among text labels (a CSV's label column)."""
    if y.dtype.kind in "iuf":
        return y == UNLABELLED
    if y.dtype.kind == "O":
        missing = [
            i
            for i, v in enumerate(y)
            if v is None or (isinstance(v, float) and not np.isfinite(v)) or type(v).__name__ in ("NAType", "NaTType")
        ]  # (pandas' pd.NA and pd.NaT, as a "string" or "category" column holds a missing value)
        if missing:
            words = any(isinstance(v, str) for v in y)  # text classes: their unlabelled mark is the text "-1"
            fix = 'y.astype(object).fillna("-1") for a pandas column of text' if words else "y.fillna(-1) in pandas"
            raise InputError(
                f"y has {len(missing)} missing labels (None, NaN or NA), the first at position {missing[0]}; "
                f"mark unlabelled samples with -1 instead (e.g. {fix})"
            )
        return np.array(
            [
                (isinstance(v, (int, np.integer)) and v == UNLABELLED) or (isinstance(v, str) and v.strip() == "-1")
                for v in y
            ],
            dtype=bool,
        )
    if y.dtype.kind in "US":
        return np.char.strip(y.astype(str)) == "-1"
    return np.zeros(y.shape[0], dtype=bool)


def as_float32(X: Any, *, pixels: bool | None = None) -> np.ndarray:
    """``X`` as a float32 array, 0-255 pixels divided by 255 into [0, 1]: aekit's one pixel rule.

    ``pixels`` says whether to divide by 255 (decided already, e.g. before ``X`` was converted
    from uint8); None: decide by ``uint8_pixels`` (uint8 reaching 128 is images). Other data are
    converted, not scaled; an array that is float32 already is not copied.
    """
    scale = bool(uint8_pixels(X, stacklevel=2)) if pixels is None else pixels
    X = np.asarray(X, dtype=np.float32)
    return X / np.float32(255.0) if scale else X


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
            raise InputError(
                "{random_state} must be >= 0 or None", param="random_state", values={"random_state": random_state}
            )
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise InputError(
        "{random_state} must be an int, a numpy RandomState or None",
        param="random_state",
        values={"random_state": random_state},
    )


#: held while aekit computes with torch (a fit, an inference pass): calls from threads of one process (joblib's
#: threading backend, a web server) take turns. A fit seeds torch's one random generator per process, and torch
#: work running beside it in another thread changed its numbers (5 of 32 threaded fits, a trial); each call already
#: uses every core. Processes (joblib's default) run side by side.
COMPUTE_LOCK = threading.RLock()


@contextlib.contextmanager
def isolated_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch inside a fork of its global RNG, leaving the caller's state untouched (hold ``COMPUTE_LOCK``)."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def capturing() -> bool:
    """Whether a CUDA graph is being captured on the current stream (False without CUDA)."""
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


# PyTorch warns when a read-only array (a memory map, a pandas frame's values) becomes a tensor; aekit's
# inference loops only read their input, so the warning is silenced for calls made from aekit's modules alone
# (one filter at import: a catch_warnings per batch would reset the once-per-place registry of other warnings)
warnings.filterwarnings(
    "ignore", message="The given NumPy array is not writable", category=UserWarning, module=r"aekit(\.|$)"
)


def batch_tensor(rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """A batch of rows as a tensor on ``device``; read-only rows (a memory map's, a pandas frame's) are copied
    first, a batch at a time: PyTorch warns about sharing them, and a user's own warning filters can show it."""
    return torch.from_numpy(rows if rows.flags.writeable else np.array(rows)).to(device)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A CPU array; bfloat16 and float16 results (inference in ``precision="bfloat16"``) come back as float32."""
    t = t.detach().to("cpu")
    return (t.float() if t.dtype in (torch.bfloat16, torch.float16) else t).numpy()


def check_parents(path: str | os.PathLike[str], what: str = "") -> None:
    """Refuse a path below an existing file (``X.npy/sub.npy``), which no folder can be created for."""
    final = Path(path)
    for parent in reversed(final.parents):
        if parent.exists() and not parent.is_dir():
            raise InputError(
                f"{what}{final}: {parent} is a file, not a folder, so nothing can be written below it; "
                "choose a path whose folders are folders"
            )


def caused_by_interrupt(exc: BaseException) -> bool:
    """Whether Ctrl-C or SIGTERM caused ``exc``, a fast path's failure: a KeyboardInterrupt in its chain.

    Inside a ``torch.compile``d call an interrupt can surface as the compiler's own error; a fallback to
    the eager path must not take it for a compilation problem, swallow it and train on.
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


#: signals whose delivery ``deferred_signals`` holds back until a write is complete
DEFERRED_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM") if hasattr(signal, n))
_deferring = threading.local()


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the block, then deliver them to the handlers they had.

    A save that a signal cut short would leave a temporary file and no result; deferred, the save
    completes and the signal then acts as it would have (Ctrl-C raises ``KeyboardInterrupt``, a
    default SIGTERM ends the process). Only the main thread can change handlers: elsewhere, and
    inside an enclosing block, this does nothing.
    """
    if getattr(_deferring, "active", False) or threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[int, Any] = {}
    for sig in DEFERRED_SIGNALS:
        # None: a handler not set from Python; it is given back as the default
        previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum)) or signal.SIG_DFL
    _deferring.active = True
    try:
        yield
    finally:
        _deferring.active = False
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):  # each signal once, in the order they came
            handler = previous[sig]
            if callable(handler):
                handler(sig, None)  # e.g. Python's SIGINT handler: raises KeyboardInterrupt here
            elif handler == signal.SIG_DFL:
                signal.raise_signal(sig)  # the default action (SIGTERM: the process ends)


#: the read end of the wakeup socket while a training holds it (``signal_record``)
_SIGNAL_RECORD: list[socket.socket] = []


@contextlib.contextmanager
def signal_record() -> Iterator[None]:
    """Record SIGINT and SIGTERM below Python for the block; ``raise_if_signalled`` acts on the record.

    Their KeyboardInterrupt is raised wherever the main thread happens to be, library code included, and
    some of it swallows it: a CLI training went on after SIGTERM in about one of forty runs on a loaded
    machine. Python's C-level handler writes each signal's number to the wakeup fd before any Python code
    runs, so the record survives. Main thread only; nothing where the wakeup fd is taken (an asyncio loop's
    signal handlers read it) or inside another record.
    """
    if threading.current_thread() is not threading.main_thread() or _SIGNAL_RECORD:
        yield
        return
    try:
        read, write = socket.socketpair()
    except OSError:  # e.g. no descriptors left: train without the record
        yield
        return
    with read, write:
        for end in (read, write):
            end.setblocking(False)
        try:
            previous: int | None = signal.set_wakeup_fd(write.fileno(), warn_on_full_buffer=False)
        except (ValueError, OSError):  # e.g. an interpreter without signal support
            previous = None
        if previous != -1:  # not set, or someone else's record: theirs to keep
            if previous is not None:
                signal.set_wakeup_fd(previous)
            yield
            return
        _SIGNAL_RECORD.append(read)
        try:
            yield
        finally:
            _SIGNAL_RECORD.clear()
            signal.set_wakeup_fd(-1)


def raise_if_signalled() -> None:
    """Raise KeyboardInterrupt if SIGINT or SIGTERM came since the last call and its interrupt was lost.

    Cheap (one non-blocking read) when nothing came; a no-op outside ``signal_record`` and off the main
    thread. Only signals whose handler is Python's interrupt (``signal.default_int_handler``) count: a
    handler of the user's that chose not to raise stays obeyed. A handler that has not run yet runs here
    first (the usual interrupt, late), so nothing is raised twice.
    """
    record = _SIGNAL_RECORD[0] if _SIGNAL_RECORD else None
    if record is None or threading.current_thread() is not threading.main_thread():
        return
    try:
        received = record.recv(256)
    except OSError:  # nothing came (BlockingIOError), or the record is closed
        return
    came = [s for s in DEFERRED_SIGNALS if int(s) in received and signal.getsignal(s) is signal.default_int_handler]
    for sig in came:
        signal.signal(sig, signal.default_int_handler)  # setting a handler first runs those of pending signals
    if came:
        raise KeyboardInterrupt


def place(src: Path, final: Path, *, overwrite: bool) -> None:
    """Rename the finished file ``src`` onto ``final``; without ``overwrite`` never replace a file there.

    The no-replace rename is a hard link (atomic: it fails if ``final`` exists, whoever made it)
    followed by removing ``src``; a file system without hard links gets a check and a rename.
    """
    if overwrite:
        os.replace(src, final)
        return
    try:
        os.link(src, final)
    except FileExistsError:
        raise FileExistsError(f"{final} appeared while aekit was writing it; pass --overwrite to replace it") from None
    except OSError:  # no hard links here (e.g. FAT, some network file systems)
        if final.exists():
            raise FileExistsError(f"{final} exists; pass --overwrite to replace it") from None
        os.replace(src, final)
        return
    src.unlink()


def new_folders(folder: Path) -> list[Path]:
    """The folders that creating ``folder`` (with its parents) would create, outermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing[::-1]


def remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (outermost first, as ``new_folders`` gives them), innermost first, while empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:  # not empty, or gone: leave it and everything above it
            return


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    A crash or exception never leaves a half-written file under the final name,
    and the previous file stays intact until the new one is complete. The temporary
    file is removed on every exit but SIGKILL: SIGINT and SIGTERM wait until the file is in
    place or removed (``deferred_signals``). Folders created for it are removed if the write fails.
    Without ``overwrite`` a file that exists at ``path`` when the write ends is never
    replaced (``FileExistsError``).
    """
    final = Path(path)
    if final.is_dir():
        raise InputError(f"{final} is a folder; expected a file name to write")
    check_parents(final)
    with deferred_signals():
        created = new_folders(final.parent)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
        tmp_path, done = Path(tmp), False
        try:
            yield tmp_path
            umask = os.umask(0)
            os.umask(umask)
            # the permissions a plain open() would give, not mkstemp's 0600 (set after writing: some
            # writers, e.g. safetensors, replace the temporary file with their own)
            os.chmod(tmp_path, 0o666 & ~umask)
            with open(tmp_path, "rb") as fh:
                os.fsync(fh.fileno())
            place(tmp_path, final, overwrite=overwrite)
            done = True
        finally:
            tmp_path.unlink(missing_ok=True)
            if not done:
                remove_empty(created)
