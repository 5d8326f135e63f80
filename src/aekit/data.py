"""Data in: IDX files (raw or gzip), MNIST (local or verified download), user arrays (.npy, .npz; CSV in csvdata).

Nothing here unpickles, and every size a file declares is checked against the
file (or a cap) before memory is allocated for it.
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import os
import struct
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal, overload

import numpy as np

from aekit._utils import FLOAT32_MAX, DataFormatError, InputError, as_float32, first_beyond_float32, not_a_file
from aekit.csvdata import COMPRESSIONS, is_csv, read_csv_rows
from aekit.sources import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- IDX

_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
DEFAULT_MAX_BYTES = 2**32  # 4 GiB: larger declared payloads are refused before reading
_CHUNK = 2**24  # large reads go in 16 MiB steps, so memory follows the bytes actually there


def _open_maybe_gzip(path: Path) -> BinaryIO:
    fh = open(path, "rb")
    head = fh.read(2)
    fh.seek(0)
    if head == b"\x1f\x8b":
        fh.close()
        return gzip.GzipFile(path, mode="rb")  # type: ignore[return-value]  # owns (and closes) its file
    return fh


def _read_exact(stream: BinaryIO, n: int, what: str, source: str) -> bytes:
    chunks: list[bytes] = []
    left = n
    try:
        while left > 0:  # a gzip stream's size is unknown: never ask for more than a chunk at once
            chunk = stream.read(min(left, _CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except (OSError, EOFError, zlib_error()) as exc:
        raise DataFormatError(
            f"{source}: the file is corrupted or truncated while reading {what} ({exc}); "
            "re-download or re-export the file"
        ) from exc
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if len(data) != n:
        raise DataFormatError(
            f"{source}: truncated {what}: expected {n} bytes, found {len(data)}; re-download or re-export the file"
        )
    return data


def _read_array(
    stream: BinaryIO, shape: tuple[int, ...], dtype: np.dtype, what: str, source: str, *, sized: bool
) -> np.ndarray:
    """An array of ``shape`` read from ``stream`` in chunks straight into its memory (no bytes copy beside it).

    ``sized``: the stream is known to hold the bytes (a raw file checked against its size), so the array is
    allocated at once. Otherwise (gzip, zip) a tiny file may declare gigabytes: the buffer starts at one
    chunk and doubles as data arrive (``resize`` reallocates in place where it can), so memory follows the
    bytes actually there.
    """
    n = math.prod(shape) * dtype.itemsize
    buf = np.empty(n if sized else min(n, _CHUNK), dtype=np.uint8)
    done = 0
    try:
        while done < n:
            if done == len(buf):
                buf.resize(min(n, 2 * len(buf)), refcheck=False)
            end = min(len(buf), done + _CHUNK)  # never ask a gzip/zip stream for more than a chunk at once
            with buf.data as whole, whole[done:end] as view:
                got = stream.readinto(view)  # type: ignore[attr-defined]
            if not got:
                break
            done += got
    except (OSError, EOFError, zlib_error()) as exc:
        raise DataFormatError(
            f"{source}: the file is corrupted or truncated while reading {what} ({exc}); "
            "re-download or re-export the file"
        ) from exc
    if done != n:
        raise DataFormatError(
            f"{source}: truncated {what}: expected {n} bytes, found {done}; re-download or re-export the file"
        )
    return buf.view(dtype).reshape(shape)


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


def _parse_idx(stream: BinaryIO, source: str, *, raw_size: int | None, max_bytes: int) -> np.ndarray:
    magic = _read_exact(stream, 4, "header", source)
    if magic[:2] == b"\x1f\x8b":
        raise DataFormatError(
            f"{source}: expected raw IDX bytes (starting 0x00 0x00), found gzip-compressed data (0x1f 0x8b); "
            "decompress them first, or pass the file's path to read_idx, which reads .gz directly"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise DataFormatError(
            f"{source}: not an IDX file: the first two bytes must be 0x00 0x00, found "
            f"0x{magic[0]:02x} 0x{magic[1]:02x}; pass an IDX file (raw or .gz)"
        )
    type_code, ndim = magic[2], magic[3]
    if type_code not in _IDX_TYPES:
        raise DataFormatError(
            f"{source}: unknown IDX type code 0x{type_code:02x}; expected one of "
            + ", ".join(f"0x{c:02x}" for c in _IDX_TYPES)
            + "; the file is not IDX or is corrupted"
        )
    if not 1 <= ndim <= 8:
        raise DataFormatError(
            f"{source}: IDX header declares {ndim} dimensions; expected 1 to 8; the file is not IDX or is corrupted"
        )
    dims = struct.unpack(f">{ndim}I", _read_exact(stream, 4 * ndim, "dimensions", source))
    dtype = _IDX_TYPES[type_code]
    n_bytes = math.prod(dims) * dtype.itemsize
    if n_bytes > max_bytes:
        raise DataFormatError(
            f"{source}: IDX header declares shape {dims} ({n_bytes:,} bytes), more than the "
            f"limit of {max_bytes:,} bytes; raise max_bytes if the file is genuine"
        )
    header = 4 + 4 * ndim
    if raw_size is not None and raw_size != header + n_bytes:
        raise DataFormatError(
            f"{source}: IDX header declares shape {dims} = {n_bytes:,} payload bytes, "
            f"but the file holds {raw_size - header:,}; the file is truncated or not IDX"
        )
    out = _read_array(stream, dims, dtype, "payload", source, sized=raw_size is not None)
    try:
        extra = stream.read(1)
    except (OSError, EOFError, zlib_error()) as exc:
        raise DataFormatError(f"{source}: the file is corrupted after its payload ({exc})") from exc
    if extra:
        raise DataFormatError(
            f"{source}: trailing bytes after the {n_bytes:,}-byte payload declared by the header; "
            "the file is corrupted or not IDX, re-download or re-export it"
        )
    if not dtype.isnative:  # IDX is big-endian: swap in place, no second copy
        out = out.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return out


def read_idx(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a native-endian array.

    The header (magic, type code, dimensions, payload length) is validated before
    the payload is read.

    Raises
    ------
    DataFormatError
        The file is not IDX, is truncated or has trailing bytes.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    with _open_maybe_gzip(p) as stream:
        raw_size = None if isinstance(stream, gzip.GzipFile) else p.stat().st_size
        return _parse_idx(stream, str(p), raw_size=raw_size, max_bytes=max_bytes)


def parse_idx_bytes(data: bytes, source: str = "<bytes>", *, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Parse the (decompressed) bytes of an IDX file."""
    return _parse_idx(io.BytesIO(data), source, raw_size=len(data), max_bytes=max_bytes)


def _check_pair(
    images: np.ndarray, labels: np.ndarray, images_src: str, labels_src: str, n_classes: int | None, scale: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, ...)`` and labels ``(n,)`` that belong together, as ``X (n, features)``, ``y`` int64."""
    if images.ndim < 2:
        raise DataFormatError(
            f"{images_src}: expected images of shape (n, rows, cols) or (n, features), found shape {images.shape}; "
            "is this a labels file? pass the images file first"
        )
    if labels.ndim != 1:
        raise DataFormatError(
            f"{labels_src}: expected 1-D labels of shape (n,), found shape {labels.shape}; "
            "is this an images file? pass the labels file second"
        )
    if labels.dtype.kind not in "iu":
        raise DataFormatError(
            f"{labels_src}: expected integer class labels, found dtype {labels.dtype}; pass a labels file"
        )
    if len(images) != len(labels):
        raise DataFormatError(
            f"{len(images)} images but {len(labels)} labels: {images_src} and {labels_src} do not belong together; "
            "pass the matching pair (e.g. t10k-images with t10k-labels)"
        )
    y = labels.astype(np.int64)
    high = n_classes if n_classes is not None else np.iinfo(np.int64).max
    bad = np.flatnonzero((y < 0) | (y >= high))
    if bad.size:
        raise DataFormatError(
            f"{labels_src}: label {y[bad[0]]} at index {bad[0]} is outside 0 to {high - 1} "
            f"({bad.size} such labels); pass n_classes=... if the data set has more classes"
        )
    X = images.reshape(len(images), math.prod(images.shape[1:]))
    if scale:  # images by the file's format: uint8 is 0-255 pixels whatever its largest value
        X = as_float32(X, pixels=X.dtype == np.uint8)
    return X, y


def load_idx_pair(
    images_path: str | os.PathLike[str],
    labels_path: str | os.PathLike[str],
    *,
    n_classes: int | None = 10,
    scale: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """Read an images IDX file and its labels IDX file (raw or .gz), e.g. Fashion-MNIST.

    Checks that the images are ``(n, ...)``, the labels ``(n,)`` integers in
    ``0 .. n_classes-1`` (any non-negative integer if ``n_classes`` is None), and
    that the counts match.

    Returns
    -------
    X : ndarray of shape (n, features)
        float32 (uint8 pixels divided by 255) if ``scale``, else as stored.
    y : ndarray of shape (n,), int64
    """
    images = read_idx(images_path, max_bytes=max_bytes)
    labels = read_idx(labels_path, max_bytes=max_bytes)
    return _check_pair(images, labels, str(images_path), str(labels_path), n_classes, scale)


# ----------------------------------------------------------------------------- user files

MAX_ARRAY_BYTES = 2**33  # 8 GiB: larger declared arrays are refused before allocating
_X_KEYS = ("X", "x", "data", "features", "images")
_Y_KEYS = ("y", "labels", "label", "target", "targets")


def _check_numeric(arr: np.ndarray, source: str) -> np.ndarray:
    if arr.dtype.kind not in "biuf":
        raise DataFormatError(f"{source}: array dtype {arr.dtype} is not numeric; expected integer or float data")
    return arr


_NPY_VERSIONS = ((1, 0), (2, 0), (3, 0))
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    struct.error,
)


_NPY_MAX_HEADER = 10_000  # numpy's own max_header_size: numpy.save writes headers of ~128 bytes


def _npy_header_bytes(fh: BinaryIO, source: str) -> io.BytesIO:
    """Magic, length and header of a .npy file, read only after the declared length is checked."""
    start = fh.read(8)
    if len(start) < 8 or start[:6] != b"\x93NUMPY":
        raise DataFormatError(
            f"{source}: not a .npy array (no '\\x93NUMPY' magic bytes); save the array with numpy.save"
        )
    if (start[6], start[7]) not in _NPY_VERSIONS:
        raise DataFormatError(
            f"{source}: .npy format version {(start[6], start[7])}, expected one of {_NPY_VERSIONS}; "
            "re-save it with numpy.save"
        )
    width = 2 if start[6] == 1 else 4
    size_bytes = fh.read(width)
    if len(size_bytes) < width:
        raise DataFormatError(f"{source}: truncated .npy header; the file is corrupted, re-export it")
    length = int.from_bytes(size_bytes, "little")
    if length > _NPY_MAX_HEADER:
        raise DataFormatError(
            f"{source}: .npy header of {length:,} bytes, above the {_NPY_MAX_HEADER:,}-byte limit (numpy.save writes "
            "about 128); the file is corrupted or crafted, re-export the array with numpy.save"
        )
    return io.BytesIO(start + size_bytes + fh.read(length))


def _npy_header(
    fh: BinaryIO, size: int, source: str, max_bytes: float = MAX_ARRAY_BYTES
) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Validate a .npy header at the start of ``fh`` (``size`` bytes long) before anything is allocated.

    Returns the shape, whether the data are in Fortran order, and the dtype; ``fh`` is left at the data.
    """
    import tokenize

    header = _npy_header_bytes(fh, source)
    try:
        version = np.lib.format.read_magic(header)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(header)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(header)
    except (
        ValueError,
        OSError,
        SyntaxError,
        TypeError,
        struct.error,
        tokenize.TokenError,
        RecursionError,
        MemoryError,
    ) as exc:
        raise DataFormatError(f"{source}: not a valid .npy array ({exc}); save the array with numpy.save") from exc
    if dtype.hasobject:
        raise DataFormatError(
            f"{source}: holds Python objects (dtype {dtype}); aekit never unpickles, save a numeric array"
        )
    if any(type(d) is not int or d < 0 for d in shape):  # bool passes numpy's own check
        raise DataFormatError(
            f"{source}: declares shape {shape}; expected non-negative integers, the file is corrupted, re-export it"
        )
    n_bytes = math.prod(shape) * dtype.itemsize
    if n_bytes > max_bytes or math.prod(max(d, 1) for d in shape) > max_bytes:
        raise DataFormatError(
            f"{source}: declares shape {shape} ({n_bytes:,} bytes), above the {max_bytes:,}-byte limit; "
            "split the data into smaller files"
        )
    remaining = size - len(header.getvalue())
    if remaining < n_bytes:
        raise DataFormatError(
            f"{source}: declares shape {shape} ({n_bytes:,} bytes) but holds {remaining:,}; "
            "the file is truncated, re-export it"
        )
    return shape, bool(fortran), dtype


def _read_npy(fh: BinaryIO, size: int, source: str, *, sized: bool = True) -> np.ndarray:
    """A checked .npy array streamed from ``fh`` (``size`` bytes; ``sized``: really there); never unpickles."""
    shape, fortran, dtype = _npy_header(fh, size, source)
    if dtype.itemsize == 0:  # e.g. an empty string dtype: nothing to read; refused as not numeric later
        return np.empty(shape, dtype=dtype)
    out = _read_array(fh, shape[::-1] if fortran else shape, dtype, "the array data", source, sized=sized)
    return out.T if fortran else out


def memmap_npy(path: str | os.PathLike[str]) -> np.ndarray:
    """A ``.npy`` file memory-mapped read-only (``np.memmap``), its header checked first.

    Shape, dtype (numeric, no objects) and the file's size against the declared shape are checked, so a
    truncated file fails here, naming it, rather than at the first read. Nothing is read into memory: rows
    are read when used. (No size limit: mapping allocates nothing.)
    """
    p = Path(path)
    with open(p, "rb") as fh:
        shape, fortran, dtype = _npy_header(fh, p.stat().st_size, str(p), max_bytes=math.inf)
        offset = fh.tell()
    _check_numeric(np.empty(0, dtype=dtype), str(p))
    if math.prod(shape) == 0:
        return np.empty(shape, dtype=dtype)
    return np.memmap(p, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def _first_nonfinite(X: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first NaN/inf of a float array, in blocks of rows (no full-size mask of a memmap)."""
    rows = max(1, (1 << 22) // max(1, math.prod(X.shape[1:])))
    for start in range(0, len(X), rows):
        block = np.asarray(X[start : start + rows])
        if not np.isfinite(block).all():
            bad = np.argwhere(~np.isfinite(block))[0]
            return start + int(bad[0]), int(bad[1])
    return None


def _load_npz(path: Path, labels: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        zf = zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        raise DataFormatError(f"{path}: not a valid .npz (zip) file ({exc}); save the arrays with numpy.savez") from exc
    with zf:
        members = [i for i in zf.infolist() if i.filename.endswith(".npy")]
        infos = {Path(i.filename).stem: i for i in members}
        if len(infos) != len(members):  # numpy.load would take the last of them: a guess, not a choice
            names = [Path(i.filename).stem for i in members]
            dup = next(n for n in names if names.count(n) > 1)
            raise DataFormatError(
                f"{path}: holds {names.count(dup)} arrays named {dup!r} "
                f"({', '.join(i.filename for i in members if Path(i.filename).stem == dup)}); "
                "expected one of each name, re-save the file with numpy.savez"
            )
        if not infos:
            raise DataFormatError(
                f"{path}: holds no arrays; expected .npy members such as X.npy, save with numpy.savez(path, X=X, y=y)"
            )
        total = sum(i.file_size for i in infos.values())
        if total > MAX_ARRAY_BYTES:
            raise DataFormatError(
                f"{path}: declares {total:,} uncompressed bytes, above the {MAX_ARRAY_BYTES:,}-byte limit; "
                "split the data into smaller files"
            )
        if labels is not None and labels not in infos:
            raise DataFormatError(
                f"{path}: has no array {labels!r} for the labels ({{label_column}}); it holds {sorted(infos)}",
                param="label_column",
                values={"label_column": labels},
            )

        def read(key: str) -> np.ndarray:
            info = infos[key]
            source = f"{path}: member {info.filename}"
            try:
                with zf.open(info) as member:  # streamed into the array: memory stays the array's size
                    arr = _read_npy(member, info.file_size, source, sized=False)  # type: ignore[arg-type]
                    while member.read(_CHUNK):  # to the member's end, in steps, so that zipfile checks its CRC
                        pass
            except (*_ZIP_ERRORS, zlib_error()) as exc:
                raise DataFormatError(
                    f"{source}: corrupted zip data ({exc}); re-save the file with numpy.savez"
                ) from exc
            return arr

        if {"format", "shape", "data"} <= set(infos) and labels is None:  # scipy.sparse.save_npz's layout
            return _sparse_npz(path, read, set(infos)), None
        features = [k for k in infos if k != labels]
        x_key = next((k for k in _X_KEYS if k in features), None)
        if x_key is None:
            if len(features) != 1:
                raise DataFormatError(f"{path}: holds arrays {sorted(infos)}; name the features one of {list(_X_KEYS)}")
            x_key = features[0]
        y_key = labels if labels is not None else next((k for k in _Y_KEYS if k in infos), None)
        return read(x_key), (read(y_key) if y_key else None)


#: the bytes a sparse .npz may take made dense (as the estimators take a SciPy sparse matrix: base.DENSE_LIMIT)
SPARSE_DENSE_LIMIT = 2 * 2**30


def _sparse_npz(path: Path, read: Callable[[str], np.ndarray], names: set[str]) -> np.ndarray:
    """A sparse matrix written by ``scipy.sparse.save_npz`` (CSR, CSC or COO), checked and made dense: a trial's
    CSR file of counts was read as its 1-D ``data`` member. Its members are read as plain arrays (no pickle)."""
    import scipy.sparse

    fix = "re-save it with scipy.sparse.save_npz, or save X.toarray() with numpy.save"
    try:
        stored = np.asarray(read("format")).item()  # bytes as save_npz writes it; a str array load_npz takes too
        fmt = stored.decode("ascii") if isinstance(stored, bytes) else str(stored)
        shape = tuple(int(v) for v in np.asarray(read("shape")).reshape(-1))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: a sparse matrix with an unreadable format or shape ({exc}); {fix}") from exc
    members = {"csr": ("indices", "indptr"), "csc": ("indices", "indptr"), "coo": ("row", "col")}.get(fmt)
    if members is None or len(shape) != 2 or not set(members) <= names:
        raise DataFormatError(
            f"{path}: a {fmt!r} sparse matrix of shape {shape} holding {sorted(names)}; aekit reads CSR, CSC and COO "
            f"matrices of two dimensions: {fix}"
        )
    n, d = shape
    if n * d * 4 > SPARSE_DENSE_LIMIT:
        raise DataFormatError(
            f"{path}: a sparse {n:,} x {d:,} matrix; aekit's networks read dense rows, and dense it would take "
            f"{n * d * 4 / 2**30:.1f} GiB (the limit is {SPARSE_DENSE_LIMIT / 2**30:.0f} GiB): reduce the features "
            "first (e.g. TruncatedSVD to a few hundred) and save the result with numpy.save"
        )
    data, first, second = read("data"), read(members[0]), read(members[1])
    try:
        if fmt == "coo":
            matrix = scipy.sparse.coo_matrix((data, (first, second)), shape=shape)
        else:
            matrix = (scipy.sparse.csr_matrix if fmt == "csr" else scipy.sparse.csc_matrix)(
                (data, first, second), shape=shape
            )
            matrix.check_format(full_check=True)  # indices within the shape before any is used
        return matrix.astype(np.float32).toarray()  # float32 as the estimators read it: within the limit above
    except (ValueError, TypeError, IndexError) as exc:
        raise DataFormatError(f"{path}: a damaged {fmt} sparse matrix ({exc}); {fix}") from exc


def load_array(
    path: str | os.PathLike[str], *, label_column: str | int | None = None, id_column: str | int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load a user's data: ``.npy``, ``.npz`` (keys ``X``/``y``), ``.csv``, or an HDF5 file, a zarr store or a
    folder of images read whole (``aekit.sources.open_path`` reads those a chunk at a time).

    Parameters
    ----------
    path : path
        The file or folder. ``.npy`` holds ``X``; ``.npz`` holds ``X`` (or a single array)
        and optionally ``y``; ``.csv`` holds numbers, optionally a header row
        (read by pandas: see :func:`aekit.csvdata.read_csv`); HDF5, zarr and image folders as
        ``aekit.sources.open_path`` reads them (``file.h5:NAME`` names a dataset; a folder's labels
        are its sub-folders' names).
    label_column : str or int, optional
        For CSV: the column (name or index) holding labels; for ``.npz``, HDF5 and zarr: the array's
        name (default ``y``, ``labels``, ...).
    id_column : str or int, optional
        For CSV: a column (name or index) of row ids, left out of ``X`` (``load_rows`` returns them).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features) or as stored
        For ``.npy``, a read-only ``np.memmap``: rows are read from the file when used.
    y : ndarray of shape (n_samples,) or None
    """
    X, y, _ = load_rows(path, label_column=label_column, id_column=id_column)
    return X, y


def _read_file(
    p: Path,
    label_column: str | int | None,
    id_column: str | int | None,
    keep: Sequence[str] | None,
    max_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, list[str] | None]:
    """An .npy (memory-mapped), .npz or CSV file: rows, labels, a CSV's ids and its features' names (a CSV's
    first ``max_rows`` rows only; other files are cut by the caller)."""
    if not p.is_file():
        raise InputError(not_a_file(p))
    suffix = p.suffix.lower()
    _check_csv_only(p, label_column=label_column, id_column=id_column)
    if suffix == ".npy":
        return memmap_npy(p), None, None, None  # read when used: training streams it if too large for memory
    if suffix == ".npz":
        X, y = _load_npz(p, None if label_column is None else str(label_column))
        return X, y, None, None
    if is_csv(p):
        return read_csv_rows(
            p, label_column, max_bytes=MAX_ARRAY_BYTES, id_column=id_column, keep=keep, max_rows=max_rows
        )
    raise _not_data(p, suffix)


def check_whole_read(
    source: Any, fix: str = "open it with aekit.sources.open_path and read it a chunk at a time"
) -> None:
    """Refuse to read ``source`` (a ``sources`` source) whole when its declared size is above ``MAX_ARRAY_BYTES``:
    before anything is allocated, as for every other file."""
    total = int(source.n_samples) * int(source.n_features) * np.dtype(source.dtype).itemsize
    if total > MAX_ARRAY_BYTES:
        raise DataFormatError(
            f"{source.name}: declares {total:,} bytes ({source.n_samples:,} rows of {source.n_features:,} values), "
            f"above the {MAX_ARRAY_BYTES:,}-byte limit of a read into memory; {fix}"
        )


def _read_source(
    path: str | os.PathLike[str], label_column: str | int | None, id_column: str | int | None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """An HDF5 dataset, a zarr array or a folder of images read whole: rows, labels, and a folder's files
    (relative to it) as the rows' ids. ``aekit.sources.open_path`` reads them a chunk at a time instead."""
    from aekit.sources import open_path

    if id_column is not None:
        raise InputError(
            f"{{id_column}} names a CSV column; {os.fspath(path)} has no columns (a folder's ids are its files)",
            param="id_column",
            values={"id_column": id_column},
        )
    source, y = open_path(path, labels=None if label_column is None else str(label_column))
    check_whole_read(source)
    ids = source.file_ids() if hasattr(source, "file_ids") else None  # a folder's images: their files
    return source.read(0, source.n_samples), y, ids


def _check_csv_only(p: Path, **columns: str | int | None) -> None:
    """Column options (``label_column``, ``id_column``) given for an .npy/.npz file: refused, not ignored (an
    .npz's ``label_column`` names the array of labels)."""
    suffix = p.suffix.lower()
    for name, column in columns.items():
        if name == "label_column" and suffix == ".npz":
            continue
        if column is not None and suffix in (".npy", ".npz"):  # ignoring it would guess what the caller meant
            what = (
                "one array: save X and y together in an .npz (its labels array is named by this option)"
                if name == "label_column"
                else "row ids are its row numbers"
            )
            raise InputError(
                f"{{{name}}} applies to CSV files only; {p} is a {suffix} file, whose {what}; "
                f"drop the {name.replace('_', ' ')} option",
                param=name,
                values={name: column},
            )


_Rows = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


def _not_data(p: Path, suffix: str) -> InputError:
    """The error for a file aekit does not read as data, naming what it likely is."""
    if suffix == ".safetensors":  # a model or checkpoint where data belong: the arguments' order, likely
        return InputError(
            f"{p}: an aekit model or checkpoint file, given where data were expected; the commands that run a "
            "model take the model first, then the data (aekit embed MODEL DATA)"
        )
    if suffix in IMAGE_SUFFIXES:
        return InputError(f"{p}: a single image; aekit reads images from a folder: put it in one and pass the folder")
    if suffix in COMPRESSIONS:  # compressed, but not a CSV
        return InputError(
            f"{p}: a compressed {Path(p.stem).suffix or 'file'}; only CSVs are read compressed (.csv.gz, .tsv.bz2, "
            "...): decompress it first"
        )
    if suffix in _TABLE_FORMATS:  # a table aekit does not parse: pandas converts it in one line
        return InputError(
            f"{p}: {suffix} files are not read; convert it with pandas, e.g. "
            f"pd.{_TABLE_FORMATS[suffix]}({str(p)!r}).to_csv('data.csv', index=False), then pass data.csv"
        )
    return InputError(
        f"{p}: unsupported file type {suffix!r}; use .npy, .npz, .csv (.tsv, .txt; also .gz, .bz2, .xz), "
        ".h5/.hdf5, a .zarr store or a folder of images"
    )


#: tables in formats pandas reads (with its own optional libraries) that aekit does not: the reader to convert with
_TABLE_FORMATS = {
    ".parquet": "read_parquet",
    ".feather": "read_feather",
    ".xlsx": "read_excel",
    ".xls": "read_excel",
    ".json": "read_json",
}


@overload
def load_rows(
    path: str | os.PathLike[str],
    *,
    label_column: str | int | None = ...,
    id_column: str | int | None = ...,
    with_names: Literal[False] = ...,
    keep: Sequence[str] | None = ...,
    max_rows: int | None = ...,
) -> _Rows: ...


@overload
def load_rows(
    path: str | os.PathLike[str],
    *,
    label_column: str | int | None = ...,
    id_column: str | int | None = ...,
    with_names: Literal[True],
    keep: Sequence[str] | None = ...,
    max_rows: int | None = ...,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, list[str] | None]: ...


def load_rows(
    path: str | os.PathLike[str],
    *,
    label_column: str | int | None = None,
    id_column: str | int | None = None,
    with_names: bool = False,
    keep: Sequence[str] | None = None,
    max_rows: int | None = None,
) -> _Rows | tuple[np.ndarray, np.ndarray | None, np.ndarray | None, list[str] | None]:
    """``load_array`` plus the rows' ids ``(n_samples,)``: a CSV's ``id_column`` (name or index, not a
    feature) or its pandas index column, a folder's image files (relative to it); None for other files and
    CSVs without one.

    ``with_names=True`` adds a fourth item, the features' names from a CSV's header (None where the file
    names none). ``keep``: feature names (a model's); a CSV whose header names any of them is read for those
    columns only, the others left out with a warning (a text column the model never used is no error).
    ``max_rows``: at most that many rows; a CSV's others are never parsed."""
    from aekit.sources import streamable

    p = Path(path)
    suffix = p.suffix.lower()
    y: np.ndarray | None = None
    ids: np.ndarray | None = None
    names: list[str] | None = None
    if suffix != ".npy" and streamable(path):  # HDF5, zarr, a folder of images: the source's rows, read whole
        X, y, ids = _read_source(path, label_column, id_column)
    else:
        X, y, ids, names = _read_file(p, label_column, id_column, keep, max_rows)
    if max_rows is not None:  # checked below on these rows only (a CSV's others were never parsed)
        X, y, ids = X[:max_rows], None if y is None else y[:max_rows], None if ids is None else ids[:max_rows]
    _check_numeric(X, str(p))
    if X.ndim < 2:
        raise DataFormatError(
            f"{p}: holds a {X.ndim}-D array of shape {X.shape}; expected (n_samples, n_features), reshape it"
        )
    if X.shape[0] == 0 or math.prod(X.shape[1:]) == 0:
        raise DataFormatError(
            f"{p}: holds an empty array of shape {X.shape}; expected at least one sample and one feature"
        )
    if X.ndim > 2:
        X = X.reshape(X.shape[0], -1)
    bad = _first_nonfinite(X) if X.dtype.kind == "f" else None
    if bad is not None:
        raise DataFormatError(
            f"{p}: non-finite value (NaN or inf) at row {bad[0]}, column {bad[1]}; clean or impute it"
        )
    beyond = first_beyond_float32(X)
    if beyond is not None:
        raise DataFormatError(
            f"{p}: value {X[beyond]:.4g} at row {beyond[0]}, column {beyond[1]} is beyond float32's range "
            f"(|x| <= {FLOAT32_MAX:.4g}), the precision aekit trains in; scale or clip the data"
        )
    if y is not None:
        _check_labels(y, len(X), p)
    return (X, y, ids, names) if with_names else (X, y, ids)


def _check_labels(y: np.ndarray, n: int, p: Path) -> None:
    """Labels ``(n,)``, finite, and whole numbers only where an integer class can hold them."""
    if y.ndim != 1 or len(y) != n:
        raise DataFormatError(
            f"{p}: expected labels of shape ({n},), one per sample, found shape {y.shape}; fix or drop the labels"
        )
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise DataFormatError(
            f"{p}: non-finite label (NaN or inf) at row {np.flatnonzero(~np.isfinite(y))[0]}; give every sample a label"
        )
    if y.dtype.kind == "f":
        whole = y == np.round(y)
        if np.any(whole):  # whole numbers are classes: one an int64 cannot hold would be a wrong class
            big = np.flatnonzero(whole & (np.abs(y) >= 2.0**63))
            if big.size:
                raise DataFormatError(
                    f"{p}: label {y[big[0]]:.4g} at row {big[0]} is too large for an integer class "
                    "(|label| < 2**63); encode the classes as 0..k-1 (e.g. LabelEncoder)"
                )
