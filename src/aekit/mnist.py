"""MNIST: from a local folder (``$AEKIT_MNIST_DIR``), the user cache, or a download whose SHA-256 is verified.

The IDX files are parsed by ``data`` (sizes checked before memory is allocated).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from aekit._utils import DataFormatError, DownloadError, InputError
from aekit.data import _check_pair, _open_maybe_gzip, parse_idx_bytes, zlib_error

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- MNIST

#: SHA-256 of the *decompressed* IDX bytes; the .gz wrappers differ between mirrors.
MNIST_FILES: dict[str, tuple[int, str]] = {
    "train-images-idx3-ubyte": (47_040_016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": (60_008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": (7_840_016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": (10_008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
)
MNIST_ENV = "AEKIT_MNIST_DIR"


class MNIST(NamedTuple):
    """MNIST as arrays: images ``(n, 784)`` and labels ``(n,)``."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def default_cache_dir() -> Path:
    """The per-user cache folder (``$AEKIT_CACHE`` or the platform's cache dir)."""
    env = os.environ.get("AEKIT_CACHE")
    if env:
        return Path(env)
    try:
        import pooch
    except ImportError:  # loading from a local folder needs no download library
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aekit" / "mnist"
    return Path(pooch.os_cache("aekit")) / "mnist"


def _decompressed(path: Path, expected_size: int) -> bytes:
    """The decompressed bytes of ``path`` (raw or gzip), reading at most ``expected_size + 1``."""
    with _open_maybe_gzip(path) as stream:
        try:
            return stream.read(expected_size + 1)
        except (OSError, EOFError, zlib_error()) as exc:
            raise DataFormatError(f"{path}: corrupted or truncated gzip data ({exc})") from exc


def _verified_bytes(path: Path, name: str) -> bytes:
    size, sha = MNIST_FILES[name]
    data = _decompressed(path, size)
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != size or digest != sha:
        raise DataFormatError(
            f"{path}: checksum mismatch for {name}: expected {size:,} bytes with SHA-256 {sha[:12]}..., "
            f"found {len(data):,} bytes with SHA-256 {digest[:12]}...; delete the file to re-download it"
        )
    return data


def _find_local(directory: Path, name: str) -> Path | None:
    for candidate in (name + ".gz", name, name.replace("-idx", ".idx") + ".gz", name.replace("-idx", ".idx")):
        p = directory / candidate
        if p.is_file():
            return p
    return None


def _download(name: str, cache: Path, mirrors: Sequence[str], retries: int, timeout: float) -> Path:
    """Fetch ``name``.gz from the first mirror that delivers bytes with the right checksum."""
    import pooch

    try:
        cache.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # the cache, or a folder above it, is a file
        from_env = bool(os.environ.get("AEKIT_CACHE")) and Path(os.environ["AEKIT_CACHE"]) == cache
        where = f"AEKIT_CACHE={str(cache)!r}" if from_env else f"the cache folder {cache}"
        raise InputError(
            f"{where} is not a folder (a file is in the way), so {name} cannot be downloaded; "
            + ("set AEKIT_CACHE to a folder, or unset it" if from_env else "move that file away, or set AEKIT_CACHE")
            + f"; or name a folder holding the MNIST files (--mnist-dir, data_dir=, or {MNIST_ENV})"
        ) from None
    final = cache / (name + ".gz")
    failures: list[str] = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + name + ".gz"
        for attempt in range(1, retries + 1):
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=cache)
            os.close(fd)
            tmp_path = Path(tmp)
            try:
                log.info("downloading %s (attempt %d)", url, attempt)
                pooch.HTTPDownloader(progressbar=False, timeout=timeout)(url, str(tmp_path), None)
                _verified_bytes(tmp_path, name)
                os.replace(tmp_path, final)
                return final
            except DataFormatError as exc:  # wrong content: another try of this mirror will not help
                failures.append(f"{url}: {exc}")
                break
            except Exception as exc:  # network trouble: retry, then next mirror
                failures.append(f"{url} (attempt {attempt}): {type(exc).__name__}: {exc}")
            finally:
                if tmp_path.exists():
                    tmp_path.unlink()
    raise DownloadError(
        f"could not download {name}.gz from any mirror:\n  "
        + "\n  ".join(failures)
        + f"\nFix: download the four MNIST files by hand into {cache} "
        f"(or any folder, then pass data_dir=... or set {MNIST_ENV})"
    )


def check_folder(data_dir: str | os.PathLike[str]) -> None:
    """Refuse a folder holding not all of the four MNIST files (``InputError``, param ``data_dir``).

    A folder the user names holds the set: an empty or partial one is a mistake to say, not a cue to look
    elsewhere or download the rest.
    """
    held = [name for name in MNIST_FILES if _find_local(Path(data_dir), name) is not None]
    missing = [name for name in MNIST_FILES if name not in held]
    if not held:
        raise InputError(
            f"{{data_dir}} holds none of the 4 MNIST files ({', '.join(MNIST_FILES)}, raw or .gz); pass the "
            "folder holding them, or drop {data_dir} (then $AEKIT_MNIST_DIR, the cache or a verified download)",
            param="data_dir",
            values={"data_dir": str(data_dir)},
        )
    if missing:
        raise InputError(
            f"{{data_dir}} holds {len(held)} of the 4 MNIST files: {', '.join(missing)} (or .gz) "
            f"{'is' if len(missing) == 1 else 'are'} missing; put all four there, or drop {{data_dir}} "
            "(then $AEKIT_MNIST_DIR, the cache or a verified download)",
            param="data_dir",
            values={"data_dir": str(data_dir)},
        )


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    scale: bool = True,
    download: bool = True,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    cache_dir: str | os.PathLike[str] | None = None,
    retries: int = 2,
    timeout: float = 30.0,
) -> MNIST:
    """Load MNIST, verifying the SHA-256 of every file's decompressed bytes.

    Looks in ``data_dir``, then ``$AEKIT_MNIST_DIR``, then the user cache; if a
    file is in none of them and ``download`` is true, fetches it from ``mirrors``
    (in order, with ``retries`` attempts each) into the cache. A download is
    written under a temporary name and renamed only once verified.

    Parameters
    ----------
    data_dir : path, optional
        Folder holding the four IDX files, raw or ``.gz``.
    scale : bool
        If true, images are float32 in [0, 1]; otherwise uint8 0-255.

    Returns
    -------
    MNIST
        ``X_train (60000, 784)``, ``y_train (60000,)``, ``X_test (10000, 784)``, ``y_test (10000,)``.
    """
    if data_dir is not None and not Path(data_dir).is_dir():
        raise InputError(f"data_dir={str(data_dir)!r} is not a folder; pass the folder holding the MNIST IDX files")
    search: list[Path] = []
    if data_dir is not None:
        search.append(Path(data_dir))
    if os.environ.get(MNIST_ENV):
        search.append(Path(os.environ[MNIST_ENV]))
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    search.append(cache)
    if data_dir is not None and Path(data_dir).resolve() != cache.resolve():  # (the cache fills as files come)
        check_folder(data_dir)
    arrays: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for name in MNIST_FILES:
        found = next((p for d in search if (p := _find_local(d, name)) is not None), None)
        if found is not None:
            try:
                data = _verified_bytes(found, name)
            except DataFormatError:
                if found.parent != cache or not download:
                    raise
                log.warning("%s is corrupted; downloading it again", found)
                found.unlink()
                found = None
        if found is None:
            if not download:
                raise InputError(
                    f"MNIST file {name} not found in {', '.join(map(str, search))}; "
                    f"pass data_dir=..., set {MNIST_ENV}, or allow download=True"
                )
            found = _download(name, cache, mirrors, retries, timeout)
            data = _verified_bytes(found, name)
        arrays[name] = parse_idx_bytes(data, str(found))
        sources[name] = str(found)

    pairs = [
        _check_pair(
            arrays[f"{split}-images-idx3-ubyte"],
            arrays[f"{split}-labels-idx1-ubyte"],
            sources[f"{split}-images-idx3-ubyte"],
            sources[f"{split}-labels-idx1-ubyte"],
            10,
            scale,
        )
        for split in ("train", "t10k")
    ]
    return MNIST(pairs[0][0], pairs[0][1], pairs[1][0], pairs[1][1])
