"""Data that need not fit in memory: row sources read as contiguous slices.

A *source* is anything with ``name``, ``n_samples``, ``n_features``, ``dtype``, ``row_shape``,
``block_rows`` and ``read(start, stop) -> ndarray (stop - start, n_features)`` in its stored dtype.
Two kinds cover every input:

- ``ArraySource``: a numpy array, a ``np.memmap`` or ``np.load(..., mmap_mode="r")``, an h5py
  dataset or a zarr array (the optional ``hdf5`` and ``zarr`` extras): all of them slice rows
  without reading the rest;
- ``ImageFolder``: PNG/JPEG/... files under a folder, decoded through Pillow, grayscale or RGB,
  resized to one shape, flattened channel first (``C x H x W``, as the conv body reads them);
  labels are the names of first-level sub-folders.

``open_path`` opens a file or folder by its name (``.npy`` memory-mapped, ``.h5``/``.hdf5``
with an optional ``:dataset``, a ``.zarr`` store, a folder of images). Every read error names
the file and says what to do.
"""

from __future__ import annotations

import logging
import math
import mmap
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from aekit._utils import DataFormatError, InputError, not_a_file

log = logging.getLogger(__name__)

__all__ = [
    "IMAGE_SUFFIXES",
    "ArraySource",
    "ImageFolder",
    "Source",
    "as_source",
    "is_out_of_core",
    "open_path",
]

#: rows per contiguous read of an array source: about this many bytes (whole rows, at least one)
BLOCK_BYTES = 2**20
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
_X_KEYS = ("X", "x", "data", "features", "images")
_Y_KEYS = ("y", "labels", "label", "target", "targets")


@runtime_checkable
class Source(Protocol):
    """Rows ``(n_samples, n_features)`` read as contiguous slices."""

    name: str  # what error messages call it (a file name)
    n_samples: int
    n_features: int
    dtype: np.dtype  # of what ``read`` returns (uint8 images are scaled to [0, 1] by the reader's caller)
    row_shape: tuple[int, ...]  # one row as stored: (n_features,), (H, W) or (C, H, W)
    block_rows: int  # rows per read that make reading efficient (1 for files read one by one)

    def read(self, start: int, stop: int) -> np.ndarray: ...


def _numeric(dtype: np.dtype, name: str) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf":
        raise DataFormatError(f"{name}: array dtype {dtype} is not numeric; expected integer or float data")
    return dtype


class ArraySource:
    """Rows of an array-like that slices without reading the rest (ndarray, memmap, h5py, zarr).

    Arrays of more than 2 dimensions are images ``(n, H, W)`` or ``(n, C, H, W)``: one row per image.
    """

    def __init__(self, array: Any, name: str | None = None) -> None:
        self.array = array
        self.name = name or _describe(array)
        shape = tuple(int(d) for d in array.shape)
        if len(shape) < 2:
            raise DataFormatError(
                f"{self.name}: holds a {len(shape)}-D array of shape {shape}; expected (n_samples, n_features), "
                "reshape it"
            )
        self.dtype = _numeric(array.dtype, self.name)
        self.n_samples, self.row_shape = shape[0], shape[1:]
        self.n_features = math.prod(self.row_shape)
        if self.n_samples == 0 or self.n_features == 0:
            raise DataFormatError(
                f"{self.name}: holds an empty array of shape {shape}; expected at least one sample and one feature"
            )
        self.block_rows = max(1, BLOCK_BYTES // (self.n_features * self.dtype.itemsize))

        self._file = _file_rows(array)

    def read(self, start: int, stop: int) -> np.ndarray:
        if self._file is not None:
            return self._pread(start, stop)
        try:
            rows = np.asarray(self.array[start:stop])
        except (OSError, ValueError, RuntimeError, KeyError) as exc:  # h5py/zarr: damaged chunks, a vanished file
            raise DataFormatError(
                f"{self.name}: could not read rows {start} to {stop} ({exc}); the file is damaged or truncated, "
                "re-export it"
            ) from exc
        return rows.reshape(stop - start, self.n_features)

    def _pread(self, start: int, stop: int) -> np.ndarray:
        """Rows of a memory-mapped file read with ``pread``: the pages stay in the kernel's cache, not in this
        process (mapped pages that were read count in the process's resident memory until the kernel takes
        them back, so reading a large memmap through its mapping grows RSS towards the file's size)."""
        path, first, row_bytes = self._file  # type: ignore[misc]
        out = np.empty((stop - start, self.n_features), dtype=self.dtype)
        want, done = out.nbytes, 0
        if want == 0:
            return out
        with out.data.cast("B") as view, open(path, "rb", buffering=0) as fh:
            fd = fh.fileno()
            while done < want:
                got = os.preadv(fd, [view[done:]], first + start * row_bytes + done)
                if got <= 0:
                    raise DataFormatError(
                        f"{self.name}: the file ends before row {stop} (it was truncated after it was opened); "
                        "re-export it"
                    )
                done += got
        return out

    def __len__(self) -> int:
        return self.n_samples

    def __repr__(self) -> str:
        return f"ArraySource({self.name!r}, shape=({self.n_samples}, {self.n_features}), dtype={self.dtype})"


def _file_rows(array: Any) -> tuple[str, int, int] | None:
    """(file, byte offset of row 0, bytes per row) of a C-ordered memmap (or a row slice of one); else None."""
    if not hasattr(os, "preadv") or not isinstance(array, np.ndarray):
        return None
    root: Any = array
    while isinstance(root, np.ndarray) and not isinstance(root.base, mmap.mmap):
        root = root.base
    if not isinstance(root, np.memmap) or not root.filename:
        return None
    row_bytes = math.prod(array.shape[1:]) * array.itemsize
    inner = array.reshape(len(array), -1) if array.flags.c_contiguous else None
    if inner is None or (len(array) > 1 and array.strides[0] != row_bytes):
        return None
    first = int(root.offset) + (array.ctypes.data - root.ctypes.data)
    return str(root.filename), first, row_bytes


def _describe(array: Any) -> str:
    if isinstance(array, np.memmap) and array.filename:
        return str(array.filename)
    file = getattr(array, "file", None)  # an h5py dataset
    if file is not None and getattr(array, "name", None):
        return f"{getattr(file, 'filename', 'hdf5')}:{array.name}"
    store = getattr(array, "store", None)  # a zarr array
    if store is not None:
        return str(getattr(store, "root", None) or getattr(store, "path", None) or "zarr array")
    return "X"


# ----------------------------------------------------------------------------- image folders


class ImageFolder:
    """Image files under ``root`` as rows ``C*H*W`` (uint8, channel first), labels from sub-folder names.

    Parameters
    ----------
    root : path
        The folder. Images directly in it are unlabelled; images in a first-level sub-folder are
        labelled with that folder's name (deeper folders count for their first-level one).
    image_shape : (H, W) or (C, H, W), optional
        What every image is turned into: C=1 grayscale, C=3 RGB; (H, W) means grayscale. Default:
        the first image's size, grayscale if it is grayscale, else RGB.

    Attributes
    ----------
    files : list of Path
        The images, sorted (row ``i`` is ``files[i]``).
    labels : ndarray of str, shape (n_samples,), or None
        The sub-folder name of each image ("-1", unlabelled, for images directly in ``root``);
        None when no image is in a sub-folder.
    """

    block_rows: int = 1  # each image is its own file: reading one at a time costs nothing extra, so shuffle fully

    def __init__(self, root: str | os.PathLike[str], image_shape: Sequence[int] | None = None) -> None:
        self.root = Path(root)
        self.name = str(self.root)
        if not self.root.is_dir():
            raise InputError(f"{self.root}: no such folder")
        files = sorted(
            p
            for p in _files_under(self.root)
            if p.suffix.lower() in IMAGE_SUFFIXES
            # hidden names are no data: .ipynb_checkpoints copies, macOS ._x.png resource files
            and not any(part.startswith(".") for part in p.relative_to(self.root).parts)
            and p.is_file()
        )
        if not files:
            raise DataFormatError(
                f"{self.root}: holds no images ({', '.join(IMAGE_SUFFIXES)}); pass a folder of images "
                "(one sub-folder per class for labels)"
            )
        self.files = files
        self.n_samples = len(files)
        self.dtype = np.dtype(np.uint8)
        self.row_shape: tuple[int, ...] = self._shape(image_shape)
        self.n_features = math.prod(self.row_shape)
        folders = [p.relative_to(self.root).parts[0] if len(p.relative_to(self.root).parts) > 1 else "" for p in files]
        self.labels: np.ndarray | None = None
        if any(folders):
            self.labels = np.array([f or "-1" for f in folders])

    def _shape(self, image_shape: Sequence[int] | None) -> tuple[int, ...]:
        if image_shape is not None:
            shape = tuple(int(s) for s in image_shape)
            if len(shape) == 2:
                shape = (1, *shape)
            if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
                raise InputError(
                    f"image_shape={tuple(image_shape)} must be (height, width) or (channels, height, width) "
                    "with 1 (grayscale) or 3 (RGB) channels"
                )
            return shape
        first = self._open(self.files[0])
        channels = 1 if first.mode in ("1", "L", "LA", "I", "I;16", "F", "P") and _is_gray(first) else 3
        return (channels, first.height, first.width)

    def _open(self, path: Path) -> Any:
        from PIL import Image, ImageOps, UnidentifiedImageError

        try:
            stored = Image.open(path)
            stored.load()
            img = ImageOps.exif_transpose(stored)  # as a viewer shows it: a phone's EXIF orientation applied
        except Image.DecompressionBombError as exc:  # Pillow's guard against images that fill the memory
            raise DataFormatError(
                f"{path}: {exc.args[0].split(' could be')[0]}; shrink the image, or raise the limit "
                "(PIL.Image.MAX_IMAGE_PIXELS) if you trust the file"
            ) from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise DataFormatError(
                f"{path}: cannot decode the image ({exc}); remove or re-save the file (PNG or JPEG)"
            ) from exc
        return img

    def read(self, start: int, stop: int) -> np.ndarray:
        from PIL import Image

        c, h, w = self.row_shape
        out = np.empty((stop - start, c, h, w), dtype=np.uint8)
        for i, path in enumerate(self.files[start:stop]):
            img = _eight_bit(self._open(path)).convert("L" if c == 1 else "RGB")
            if img.size != (w, h):
                img = img.resize((w, h), Image.Resampling.BILINEAR)
            pixels = np.asarray(img, dtype=np.uint8)
            out[i] = pixels[None] if c == 1 else pixels.transpose(2, 0, 1)  # (H, W, 3) -> (3, H, W)
        return out.reshape(stop - start, self.n_features)

    def __len__(self) -> int:
        return self.n_samples

    def file_ids(self) -> np.ndarray:
        """Each row's id: its image file, relative to ``root`` (``"cat/1.png"``)."""
        return np.array([p.relative_to(self.root).as_posix() for p in self.files])

    def __repr__(self) -> str:
        return f"ImageFolder({self.name!r}, {self.n_samples} images of {self.row_shape})"


def _eight_bit(img: Any) -> Any:
    """16-bit grey (PNG's I;16; 32-bit "I" holding 16-bit values) scaled to 8 bits; Pillow's own conversion
    clips at 255, which turns most of a 16-bit image white."""
    from PIL import Image

    if not (img.mode.startswith("I;16") or img.mode == "I"):
        return img
    values = np.asarray(img, dtype=np.float64)
    if img.mode == "I" and not 255 < values.max() <= 65535:  # 8-bit values, or a range not 16-bit: as Pillow
        return img
    return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L")


def _is_gray(img: Any) -> bool:
    if img.mode != "P":
        return True
    return img.convert("RGB").convert("L").convert("RGB").tobytes() == img.convert("RGB").tobytes()


# ----------------------------------------------------------------------------- opening by name


def _pick(keys: Sequence[str], path: str, what: str) -> tuple[str, str | None]:
    """The features' key and the labels' key among a file's arrays (the names ``.npz`` files use)."""
    x_key = next((k for k in _X_KEYS if k in keys), None)
    if x_key is None:
        if len(keys) != 1:
            raise DataFormatError(
                f"{path}: holds {what} {sorted(keys)}; name the features one of {list(_X_KEYS)}, "
                f"or name the {what[:-1]} after the file, as {path}{'/' if path.endswith('.zarr') else ':'}NAME"
            )
        x_key = keys[0]
    return x_key, next((k for k in _Y_KEYS if k in keys), None)


def _named_labels(path: Path, name: str, found: Sequence[str], what: str) -> DataFormatError:
    """No labels under ``name`` (``label_column``): what the file holds instead."""
    return DataFormatError(
        f"{path}: has no {what} {name!r} for the labels ({{label_column}}); it holds {sorted(found)[:10]}",
        param="label_column",
        values={"label_column": name},
    )


def _files_under(root: Path) -> Iterator[Path]:
    """Every file below ``root``, following linked folders (a class folder linked from elsewhere is common;
    ``Path.rglob`` skipped them) but never one folder twice (a link back up would loop)."""
    seen: set[tuple[int, int]] = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in seen:
            dirs.clear()
            continue
        seen.add((info.st_dev, info.st_ino))
        dirs.sort()
        yield from (Path(folder) / name for name in names)


def _open_hdf5(path: Path, key: str | None, labels: str | None = None) -> tuple[Source, Any]:
    try:
        import h5py
    except ImportError as exc:
        raise InputError(f"{path}: reading HDF5 needs h5py; pip install 'aekit[hdf5]'") from exc
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataFormatError(f"{path}: not a readable HDF5 file ({exc}); re-export it") from exc
    if key is None:
        names = _datasets_in(f)
        if not names:
            raise DataFormatError(f"{path}: holds no dataset at its top level; name one as {path}:GROUP/DATASET")
        key, y_key = _pick([n for n in names if n != labels], str(path), "datasets")
    else:
        y_key = None
    _inside_the_file(f, key, path)
    if key in f and isinstance(f[key], h5py.Group):  # a group named where a dataset belongs: what it holds
        inside = sorted(f[key].keys())
        raise DataFormatError(f"{path}: {key!r} is a group holding {inside[:10]}; name a dataset as {path}:{key}/NAME")
    if key not in f or not isinstance(f[key], h5py.Dataset):
        found = sorted(_datasets_in(f))
        raise DataFormatError(f"{path}: has no dataset {key!r} (top-level datasets: {found}); name one as {path}:NAME")
    if labels is not None:  # named: beside the dataset (a relative name), or from the file's root ("/grp/y")
        group = f[key].parent
        y_key = labels if labels.startswith("/") else f"{group.name.rstrip('/')}/{labels}"
        _inside_the_file(f, y_key, path)
        if not isinstance(f.get(y_key), h5py.Dataset):
            raise _named_labels(path, labels, _datasets_in(group), "dataset")
    elif y_key is None:  # a named dataset's labels: beside it, under one of the labels' names, one per row
        group = f[key].parent
        y_key = next(
            (
                f"{group.name.rstrip('/')}/{k}"
                for k in _Y_KEYS
                if k in _datasets_in(group) and len(group[k]) == len(f[key])
            ),
            None,
        )
    if y_key is None and labels is None:
        _note_linked_labels(f[key].parent, path)
    if y_key is not None:
        _inside_the_file(f, y_key, path)
    return ArraySource(f[key], f"{path}:{key}"), (f[y_key] if y_key is not None else None)  # read in _matched


def _note_linked_labels(group: Any, path: Path) -> None:
    """Say so where a dataset's labels would be found but are a link into another file (not read): an attack
    found them dropped without a word."""
    import h5py

    linked = [k for k in _Y_KEYS if isinstance(group.get(k, getlink=True), h5py.ExternalLink)]
    if linked:
        log.warning(
            "%s: its labels %r are a link into another file, which aekit does not read: read without labels "
            "(copy them into the file for labels)",
            path,
            linked[0],
        )


def _no_links_out(store: Path) -> None:
    """Refuse a zarr directory holding a symbolic link that leads out of it: its target's bytes would be
    read as a chunk (as HDF5's external storage, ``_inside_the_file``). A store named below its root
    (``s.zarr/pix``) is checked from that root: ``pix`` may be the link."""
    if not store.is_dir():
        return
    parts = store.absolute().parts
    top = next((i for i, part in enumerate(parts) if part.lower().endswith(".zarr")), len(parts) - 1)
    for i in range(top + 1, len(parts)):  # the store's own folders on the way to the array named
        if Path(*parts[: i + 1]).is_symlink():
            _link_out(store, Path(*parts[: i + 1]), Path(*parts[: top + 1]).resolve())
    root = store.resolve()
    pending = [store]
    while pending:  # os.scandir: whether an entry is a link comes with the listing, no call per chunk
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_symlink():
                    _link_out(store, Path(entry.path), root)
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))


def _link_out(store: Path, link: Path, root: Path) -> None:
    if not link.resolve().is_relative_to(root):
        raise DataFormatError(
            f"{store}: {link} is a link to {os.readlink(link)!r}, outside the store; aekit reads only data "
            "inside the store it is given: copy the data in"
        )


def _datasets_in(group: Any) -> list[str]:
    """The names of the datasets in an HDF5 group that live in its file (no link leads into another)."""
    import h5py

    names = []
    for k in group:
        if isinstance(group.get(k, getlink=True), h5py.ExternalLink):
            continue
        try:
            obj = group.get(k)
        except (KeyError, OSError):  # a soft link to nothing, or through a link to a file that is not there
            continue
        if isinstance(obj, h5py.Dataset) and _same_file(obj, group):
            names.append(k)
    return names


def _same_file(obj: Any, f: Any) -> bool:
    return bool(obj.file.id == f.file.id)


def _inside_the_file(f: Any, name: str, path: Path) -> None:
    """Refuse an HDF5 object whose data may live outside ``path``: reached through a link into another file
    (external links, and soft links through them), kept in external storage, or a virtual dataset (its
    sources, even in the same file, may be external storage or links in turn). Such a file, mailed or
    downloaded, would read any file of this machine into aekit's outputs (codes, an explore page's
    thumbnails)."""
    import h5py

    fix = "aekit reads only data inside the file it is given: open that file itself, or copy the data in"
    here = f
    for part in [p for p in name.split("/") if p]:  # an external link on the way: named in the message
        link = here.get(part, getlink=True)
        if link is None:
            return  # missing: the caller says what the file holds
        if isinstance(link, h5py.ExternalLink):
            raise DataFormatError(f"{path}: {name!r} is a link to {link.filename!r}, another file; {fix}")
        try:
            here = here[part]
        except (KeyError, OSError):
            return  # a dangling soft link: missing, as above
        if not _same_file(here, f):
            raise DataFormatError(f"{path}: {name!r} leads through a link into {here.file.filename!r}; {fix}")
        if not isinstance(here, h5py.Group):
            break
    if not isinstance(here, h5py.Dataset):
        return
    if here.external:
        kept = "keeps its data outside the file (external storage)"
    elif here.is_virtual:  # even of its own file: a source there may itself be external storage or a link
        kept = "is a virtual dataset, whose sources may lie outside the file"
    else:
        return
    raise DataFormatError(
        f"{path}: {name!r} {kept}; aekit reads only data stored in the file it is given: copy the data "
        "in, e.g. with h5py: f2.create_dataset(name, data=f[name][...])"
    )


def _open_zarr(path: Path, labels: str | None = None) -> tuple[Source, Any]:
    try:
        import zarr
    except ImportError as exc:
        raise InputError(f"{path}: reading zarr needs zarr; pip install 'aekit[zarr]'") from exc
    _no_links_out(path)
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises many kinds (missing metadata, bad JSON, codec errors)
        raise DataFormatError(f"{path}: not a readable zarr store ({exc}); re-export it") from exc
    if isinstance(node, zarr.Array):
        if labels is not None:
            raise _named_labels(path, labels, [], "array (a zarr array holds no labels; a group holds X and y)")
        return ArraySource(node, str(path)), None
    names = [k for k, _ in node.arrays()]
    if not names:
        raise DataFormatError(f"{path}: the zarr group holds no arrays; expected X (and y)")
    x_key, y_key = _pick([k for k in names if k != labels], str(path), "arrays")
    if labels is not None:
        if labels not in names:
            raise _named_labels(path, labels, names, "array")
        y_key = labels
    return ArraySource(node[x_key], f"{path}/{x_key}"), (node[y_key] if y_key is not None else None)


def _matched(source: Source, labels: Any, path: Path) -> tuple[Source, np.ndarray | None]:
    """Features and labels that belong together (one label per row); ``labels`` an array, an HDF5 dataset or a
    zarr array, its shape checked before it is read (a declared 2**40 labels are never allocated)."""
    if labels is None:
        return source, None
    shape = tuple(labels.shape)
    if len(shape) != 1 or shape[0] != source.n_samples:
        raise DataFormatError(
            f"{path}: {source.name} has {source.n_samples} rows but its labels have shape {shape}; "
            "store one label per row (or remove the labels)"
        )
    dtype = np.dtype(labels.dtype)
    width = dtype.itemsize // 4 if dtype.kind == "U" else dtype.itemsize
    if dtype.kind in "SU" and width > LABEL_CHARS:  # fixed-width text: every label takes that room
        raise DataFormatError(
            f"{path}: labels of {dtype} (room for {width:,} characters each, at most {LABEL_CHARS:,}); "
            "store shorter labels, or class numbers"
        )
    y = _label_values(_read_labels(labels, path), path)
    from aekit.data import _check_labels  # finite, whole numbers within int64: as labels from any other file

    _check_labels(y, source.n_samples, path)
    return source, y


#: the longest label a file's labels may hold (class names; memory is rows x the longest)
LABEL_CHARS = 1024


def _read_labels(labels: Any, path: Path, chunk: int = 1_024) -> np.ndarray:
    """Labels as an array: in one read where the dtype sizes them; variable-length text (sized only once read)
    in chunks, checked one by one, so that compressed labels of a megabyte each stop at the first chunk
    instead of filling the memory."""
    if isinstance(labels, np.ndarray) or np.dtype(labels.dtype).kind != "O":
        return np.asarray(labels)
    parts = []
    for start in range(0, int(labels.shape[0]), chunk):  # zarr arrays have no len()
        part = np.asarray(labels[start : start + chunk])
        longest = max((len(v) for v in part.tolist() if isinstance(v, (str, bytes))), default=0)
        if longest > LABEL_CHARS:
            raise DataFormatError(
                f"{path}: a label of {longest:,} characters, at most {LABEL_CHARS:,}; store shorter labels, "
                "or class numbers"
            )
        parts.append(part)
    return np.concatenate(parts) if parts else np.asarray(labels[:0])


def _label_values(y: np.ndarray, path: Path) -> np.ndarray:
    """Labels as numbers or text (HDF5's variable-length strings come as bytes objects); other kinds refused."""
    if y.dtype.kind in "biuf" or y.dtype.kind == "U":
        return y
    values = y.tolist()
    if y.dtype.kind == "S" or (y.dtype.kind == "O" and all(isinstance(v, (str, bytes)) for v in values)):
        try:
            return np.array([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)
        except UnicodeDecodeError as exc:
            raise DataFormatError(f"{path}: labels hold bytes that are not UTF-8 text ({exc}); store text") from exc
    raise DataFormatError(
        f"{path}: labels of dtype {y.dtype} ({type(values[0]).__name__ if values else 'empty'} values); expected "
        "numbers or text, one per row"
    )


def _split_hdf5(text: str) -> tuple[Path, str | None] | None:
    """``file.h5`` or ``file.h5:dataset`` -> (file, dataset); None for anything else."""
    for suffix in HDF5_SUFFIXES:
        low = text.lower()
        if low.endswith(suffix):
            return Path(text), None
        marker = low.rfind(suffix + ":")
        if marker >= 0:
            cut = marker + len(suffix)
            return Path(text[:cut]), text[cut + 1 :] or None
    return None


def is_zarr(p: Path) -> bool:
    """Is the folder ``p`` a zarr store (by its suffix or its metadata file) rather than a folder of images?"""
    return p.suffix.lower() == ".zarr" or (p / "zarr.json").is_file() or (p / ".zarray").is_file()


def image_folder(path: str | os.PathLike[str]) -> bool:
    """Does ``path`` name a folder of images (``open_path`` reads it as an ``ImageFolder``)?"""
    p = Path(path)
    return p.is_dir() and not is_zarr(p)


def streamable(path: str | os.PathLike[str]) -> bool:
    """Whether ``open_path`` reads ``path`` (else it is a file that ``data.load_array`` reads into memory)."""
    text = os.fspath(path)
    p = Path(text)
    return p.suffix.lower() == ".npy" or _split_hdf5(text) is not None or p.is_dir()


def open_path(
    path: str | os.PathLike[str], *, image_shape: Sequence[int] | None = None, labels: str | None = None
) -> tuple[Source, np.ndarray | None]:
    """A file or folder opened as a source, and its labels (None when it has none).

    ``.npy``: memory-mapped; ``.h5``/``.hdf5`` (``file.h5:dataset`` names the dataset, else ``X``,
    ``data``, ... or the only one; labels from ``y``/``labels``); a ``.zarr`` store (an array, or a
    group with ``X`` and ``y``); any other folder: images (``image_shape`` as in ``ImageFolder``).
    ``labels`` names the dataset or array of an HDF5 file or zarr group that holds the labels
    (an HDF5 name is taken beside the features' dataset unless it starts with "/").
    """
    text = os.fspath(path)
    hdf5 = _split_hdf5(text)
    if hdf5 is not None:
        file, key = hdf5
        if not file.is_file():
            raise InputError(f"{file}: no such file")
        return _matched(*_open_hdf5(file, key, labels), file)
    p = Path(text)
    if p.is_dir():
        if is_zarr(p):
            return _matched(*_open_zarr(p, labels), p)
        if labels is not None:
            raise _no_named_labels(p, labels, "a folder of images takes its labels from its subfolders")
        folder = ImageFolder(p, image_shape)
        return folder, folder.labels
    if not p.is_file():
        raise InputError(not_a_file(p))
    if p.suffix.lower() != ".npy":
        raise InputError(f"{p}: only .npy, .h5/.hdf5, .zarr and image folders stream; read {p.suffix} files whole")
    if labels is not None:
        raise _no_named_labels(p, labels, "a .npy file holds one array; save X and y together with numpy.savez")
    from aekit.data import memmap_npy

    return ArraySource(memmap_npy(p), str(p)), None


def _no_named_labels(path: Path, labels: str, why: str) -> InputError:
    return InputError(
        f"{{label_column}} names labels, but {why} ({path}); drop it",
        param="label_column",
        values={"label_column": labels},
    )


class Head:
    """The first ``n`` rows of a source (``--limit``)."""

    def __init__(self, source: Source, n: int) -> None:
        self.source = source
        self.name, self.dtype, self.row_shape = source.name, source.dtype, source.row_shape
        self.n_features, self.block_rows = source.n_features, source.block_rows
        self.n_samples = min(n, source.n_samples)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.source.read(start, min(stop, self.n_samples))

    def __len__(self) -> int:
        return self.n_samples


def is_out_of_core(X: Any) -> bool:
    """Whether ``X`` lives on disk (memmap, h5py, zarr, a source) rather than in memory."""
    if isinstance(X, Head):
        return is_out_of_core(X.source)
    if isinstance(X, np.memmap) or isinstance(X, (ArraySource, ImageFolder)):
        return not (isinstance(X, ArraySource) and type(X.array) is np.ndarray)
    if isinstance(X, np.ndarray):
        return isinstance(X.base, np.memmap) or type(X.base).__name__ == "mmap"
    module = type(X).__module__.split(".")[0]
    return module in ("h5py", "zarr")


def as_source(X: Any) -> Source | None:
    """``X`` as a source: a source itself, a memmap, an h5py dataset or a zarr array; None otherwise."""
    if isinstance(X, Source) and not isinstance(X, np.ndarray):
        return X
    if is_out_of_core(X):
        return ArraySource(X)
    return None
