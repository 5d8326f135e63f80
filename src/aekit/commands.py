"""The ``aekit`` subcommands: each ``cmd_*`` reads its arguments, calls the library, writes its files.

Like ``cli``, this module imports only the standard library when loaded (the rest is imported
inside each command, within ``cli.main``'s guard against Ctrl-C). Files are written through
``aekit.outputs``: a locked folder, no file replaced without --overwrite, a run's files put in
place together.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

TYPE_CHECKING = False  # (not typing's: one import less before main's guard; type checkers know the name)
if TYPE_CHECKING:
    from typing import Any, NoReturn

    import numpy as np

    from aekit.outputs import OutputFolder

log = logging.getLogger("aekit")

#: stop reasons of a run that ended on its own: its checkpoint is deleted unless --keep-checkpoint
FINISHED = ("completed", "early_stopping", "lr_floor")


def load_data(args: argparse.Namespace, *, stream: bool = False) -> tuple[Any, np.ndarray | None]:
    """The data a command's arguments name: features ``X`` and labels ``y`` (None when unknown).

    ``.npy`` files are memory-mapped. HDF5 files, zarr stores and folders of images are returned as a
    ``sources`` source with ``stream`` (``train``, ``embed``: read in chunks), else read whole.
    """
    X, y, _ = load_rows(args, stream=stream, with_ids=False)
    return X, y


def training_data(args: argparse.Namespace) -> tuple[Any, np.ndarray | None]:
    """``load_data`` for ``train``: a CSV with a header as a pandas DataFrame, so the model keeps its features'
    names (``feature_names_in_``) and later commands can match a CSV's columns by name."""
    names: list[str] = []
    keep = _resumed_names(args)
    X, y, _ = load_rows(args, stream=True, with_ids=False, names=names, keep=keep)
    if keep is not None and names and set(keep) <= set(names):  # in the interrupted run's order again
        X, names = model_columns(X, names, types.SimpleNamespace(feature_names_in_=keep), args.data), list(keep)
    X = _framed(X, names)
    shape = _file_image_shape(args.data)
    if shape is not None and getattr(X, "ndim", 0) == 2:  # rows read flat: as images again, a view (no copy)
        X = X.reshape(len(X), *shape)  # the estimator learns their shape (image_shape_) and checks their layout
    return X, y


def _resumed_names(args: argparse.Namespace) -> list[str] | None:
    """With --resume, the features' names of the interrupted run's model (kept at its last complete epoch): a CSV
    whose columns were reordered since is read by them, as the commands that run a model read it."""
    model = Path(str(getattr(args, "out", ""))) / "model.safetensors"
    if not getattr(args, "resume", False) or not _is_csv(args.data) or not model.is_file():
        return None
    from aekit._utils import InputError
    from aekit.estimators import load

    try:
        return _feature_names(load(model))
    except (InputError, OSError):  # a damaged file: the checkpoint's own checks speak for the run
        return None


def _remember_columns(args: argparse.Namespace, est: Any) -> None:
    """Keep the CSV columns named as ids and labels in the model (``data_columns_``): the commands that run it
    take them again from a CSV that has them."""
    columns = {k: v for k in ("id_column", "label_column") if isinstance(v := getattr(args, k, None), str)}
    if columns and _is_csv(args.data):
        est.data_columns_ = columns


def _framed(X: Any, names: list[str] | None) -> Any:
    """Rows read from a CSV with a header as a DataFrame of those columns (no copy); other data as they are."""
    if not names:
        return X
    import pandas as pd

    return pd.DataFrame(X, columns=names, copy=False)


def _file_image_shape(data: str) -> tuple[int, ...] | None:
    """The shape of one image of a .npy file of images, ``(n, H, W)`` or ``(n, C, H, W)``; None for rows."""
    import numpy as np

    if not str(data).lower().endswith(".npy") or not Path(data).is_file():
        return None
    try:
        shape = np.load(data, mmap_mode="r").shape  # the header only
    except (OSError, ValueError):
        return None
    from aekit.base import grey_shape

    return grey_shape(tuple(int(v) for v in shape[1:])) if len(shape) in (3, 4) else None  # (H, W, 1): (H, W)


def _note_image_shape(args: argparse.Namespace, folder: Any) -> None:
    """For a folder of images read without --image-shape: the guide's rule (the first file's size and colour),
    said where it acts."""
    if getattr(folder, "files", None) is None or getattr(args, "image_shape", None) is not None:
        return
    first = folder.files[0].relative_to(folder.root).as_posix()
    print(
        f"note: images read as {','.join(map(str, folder.row_shape))} (channels, height, width), the first file's "
        f"({first}); --image-shape sets another",
        file=sys.stderr,
    )


def load_rows(
    args: argparse.Namespace,
    *,
    stream: bool = False,
    with_ids: bool = True,
    names: list[Any] | None = None,
    keep: Sequence[str] | None = None,
) -> tuple[Any, np.ndarray | None, np.ndarray | None]:
    """``load_data`` plus the rows' ids: the CSV's --id-column (or pandas index), an image's file (relative to
    the folder), else the row number from 0 (None for other data read from disk in chunks: their row numbers
    are not held). ``with_ids=False`` skips building an image folder's ids (``load_data``).

    ``names``, a list, receives the features' names from a CSV's header (nothing where the data name none);
    ``keep``: a model's feature names, the only columns of such a CSV that are read (``data.load_rows``)."""
    import numpy as np

    from aekit._utils import InputError
    from aekit.csvdata import warn_named_like_labels
    from aekit.data import load_rows as load_file
    from aekit.mnist import load_mnist
    from aekit.sources import streamable

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit={args.limit} must be >= 1")
    y: np.ndarray | None
    ids: np.ndarray | None = None
    X: Any
    if args.data in ("mnist", "mnist-test"):
        _csv_only(args)
        m = load_mnist(_mnist_dir(args))
        X, y = (m.X_train, m.y_train) if args.data == "mnist" else (m.X_test, m.y_test)
    elif streamable(args.data) and not args.data.lower().endswith(".npy"):  # HDF5, zarr, a folder of images
        return _source_rows(args, stream=stream, with_ids=with_ids)
    else:
        try:
            X, y, ids, found = load_file(
                args.data,
                label_column=getattr(args, "label_column", None),
                id_column=getattr(args, "id_column", None),
                with_names=True,
                keep=keep,
                max_rows=args.limit,  # a CSV's later rows are never parsed (nor their bad cells met)
            )
            if names is not None and found is not None:
                names.extend(found)
            if found is not None and keep is None:  # a model's columns were chosen when it was trained
                given = [f for f in ("--label-column", "--id-column") if getattr(args, f[2:].replace("-", "_"), None)]
                warn_named_like_labels(args.data, found, given)
        except InputError as exc:
            if exc.param not in ("label_column", "id_column"):
                raise
            raise InputError(
                exc.render(
                    lambda name, shown: (
                        f"--{name.replace('_', '-')} {shown}"
                        if name in ("label_column", "id_column")
                        else f"{name}={shown}"
                    )
                )
            ) from exc
    if ids is None:
        ids = np.arange(len(X))
    if args.limit is not None:
        X, y, ids = X[: args.limit], (None if y is None else y[: args.limit]), ids[: args.limit]
    return X, y, ids


def _source_rows(
    args: argparse.Namespace, *, stream: bool, with_ids: bool
) -> tuple[Any, np.ndarray | None, np.ndarray | None]:
    """``load_rows`` of an HDF5 file, a zarr store or a folder of images: a source (``stream``) or its rows."""
    import numpy as np

    from aekit.sources import Head

    _csv_only(args, labels_too=False)  # --label-column names an HDF5 dataset or a zarr array of labels
    X, y = _open_named(args)
    ids: np.ndarray | None = None
    files = getattr(X, "files", None)  # a folder of images: each row's id is its file, relative to the folder
    _note_image_shape(args, X)
    if files is not None:  # the shape its rows were read at: thumbnails show them (_image_shape)
        args.folder_image_shape = tuple(int(v) for v in X.row_shape)
    if files is not None and with_ids:  # (built only when written: a million paths take memory)
        ids = X.file_ids()
    if args.limit is not None:
        X, y = Head(X, args.limit), (None if y is None else y[: args.limit])
        ids = None if ids is None else ids[: args.limit]
    if not stream:
        from aekit.data import check_whole_read

        check_whole_read(X, f"aekit {args.command} reads it whole: pass --limit N for its first N rows")
        return X.read(0, X.n_samples), y, np.arange(X.n_samples) if ids is None else ids
    return X, y, ids


def _csv_only(args: argparse.Namespace, *, labels_too: bool = True) -> None:
    """Refuse --id-column (and, unless ``labels_too`` is False, --label-column) for data that are not a CSV file."""
    from aekit._utils import InputError

    for flag, value in (
        ("--label-column", getattr(args, "label_column", None) if labels_too else None),
        ("--id-column", getattr(args, "id_column", None)),
    ):
        if value is not None:
            raise InputError(f"{flag} {value} applies to CSV files only, not {args.data}; drop it")


def _open_named(args: argparse.Namespace) -> tuple[Any, Any]:
    """``sources.open_path`` of ``args.data``, its labels' dataset named by --label-column (errors say the flag)."""
    from aekit._utils import InputError
    from aekit.sources import open_path

    labels = getattr(args, "label_column", None)
    try:
        return open_path(
            args.data, image_shape=getattr(args, "image_shape", None), labels=None if labels is None else str(labels)
        )
    except InputError as exc:
        if exc.param != "label_column":
            raise
        raise type(exc)(exc.render(lambda name, shown: f"--label-column {shown}")) from exc


def _mnist_dir(args: argparse.Namespace) -> str | None:
    """--mnist-dir, checked here so that its error names the flag."""
    from aekit._utils import InputError

    if args.mnist_dir is not None and not Path(args.mnist_dir).is_dir():
        raise InputError(
            f"--mnist-dir {args.mnist_dir} is not a folder; pass the folder holding the MNIST IDX files "
            "(or drop --mnist-dir: $AEKIT_MNIST_DIR, the cache or a verified download)"
        )
    if args.mnist_dir is not None:
        from aekit.mnist import check_folder

        try:
            check_folder(args.mnist_dir)
        except InputError as exc:
            raise InputError(exc.render(lambda name, shown: f"--mnist-dir {shown}")) from exc
    return str(args.mnist_dir) if args.mnist_dir is not None else None


@contextlib.contextmanager
def _out_dir(args: argparse.Namespace, files: Sequence[str], overwrite: bool | None = None) -> Iterator[OutputFolder]:
    """``--out`` as a locked output folder for the block (``aekit.outputs``); none of ``files`` may be
    replaced without --overwrite."""
    from aekit.outputs import output_folder

    _not_an_input(args, args.out, "--out", folder=True, files=files)
    with output_folder(args.out, files, overwrite=args.overwrite if overwrite is None else overwrite) as out:
        yield out


@contextlib.contextmanager
def _out_file(
    args: argparse.Namespace, path: str, flag: str = "--out", image: bool = False
) -> Iterator[tuple[OutputFolder, str]]:
    """``aekit.outputs.output_file`` for ``flag``'s ``path``, refused first where it is one of the command's inputs
    (``image``: a picture, also refused inside a folder of images the command reads)."""
    from aekit.outputs import output_file

    _not_an_input(args, path, flag, folder=image)
    with output_file(path, args.overwrite, flag) as found:
        yield found


#: the arguments that name what a command reads (a model, data, an embedding)
INPUT_ARGS = ("model", "data", "train_data", "embedding")


def _not_an_input(
    args: argparse.Namespace, path: str, flag: str, folder: bool = False, files: Sequence[str] = ()
) -> None:
    """Refuse an output that is a file the command reads (its model, data or embedding; --overwrite would
    replace it: `evaluate m.safetensors data.csv --json m.safetensors --overwrite` lost the model), a model
    file inside a model's folder, or (``folder``: an output folder) one inside a folder of data it reads, whose
    next reading would take the new files for data."""
    from aekit._utils import InputError

    out = Path(path).resolve()
    for name in INPUT_ARGS:
        given = getattr(args, name, None)
        if not given or (name in ("data", "train_data") and given in ("mnist", "mnist-test")):
            continue
        source = Path(given).resolve()
        role = _INPUT_ROLES[name]
        for target in (out / f for f in files):  # a file the output folder writes, or removes as stale
            # a model file the folder holds (a map's): replaced, or removed as stale; none there, nothing lost
            inside = source.is_dir() and target.is_relative_to(source) and target.suffix == ".safetensors"
            inside = inside and target.exists()
            if target == source or (name == "model" and inside):  # a map folder's model files too
                raise InputError(
                    f"{flag} {path} would replace {target.name}, {role} ({given}); write to another folder"
                )
        if folder and name == "model":  # other outputs beside a model (its run folder) replace no model file
            continue
        if out == source:
            what = "folder" if source.is_dir() else "file"
            raise InputError(
                f"{flag} {path} is {role} ({given}), which the output would replace; write to another {what}"
            )
        if source.is_dir() and out.is_relative_to(source):
            if folder or (name == "model" and out.suffix.lower() == ".safetensors"):
                raise InputError(f"{flag} {path} is inside {given}, {role}; write outside it")


#: how ``_not_an_input`` names each input (the model and the data are positional arguments of most commands)
_INPUT_ROLES = {
    "model": "this command's model",
    "data": "this command's data",
    "train_data": "this command's --train-data",
    "embedding": "this command's --embedding",
}


#: the files codes and reconstructions are written to
CODE_SUFFIXES = (".npy", ".csv")


def check_codes_path(path: str | os.PathLike[str], flag: str = "--out") -> None:
    """Refuse a file name ``write_codes`` cannot write, before any work (the error names the user's path)."""
    from aekit._utils import InputError

    if Path(path).suffix.lower() not in CODE_SUFFIXES:
        raise InputError(f"{flag} {path}: use a .npy or .csv file name")


def write_codes(
    Z: np.ndarray,
    path: str | os.PathLike[str],
    prefix: str = "z",
    *,
    ids: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    names: Sequence[str] | None = None,
    predicted: np.ndarray | None = None,
    errors: np.ndarray | None = None,
) -> Path:
    """Write ``Z (n_samples, n_columns)`` to a .npy or .csv file.

    .npy holds ``Z`` alone, a plain float array (its rows are in the data's order: row ``i`` is sample
    ``i``). A .csv has a header row ``[id,][label,][predicted,][reconstruction_error,]z1,z2,...``: with ``ids``
    an ``id`` column (the input's row ids or row numbers), with ``labels`` a ``label`` column (empty for an
    unlabelled row, as a CSV's labels are read), with ``predicted`` a model's predicted classes, with
    ``errors`` each row's reconstruction error, then the columns of ``Z`` (named ``names`` where given, else
    ``prefix`` and their number).
    """
    import numpy as np

    from aekit._utils import UNDECODABLE, atomic_path

    p = Path(path)
    check_codes_path(p)
    with atomic_path(p) as tmp:
        if p.suffix.lower() == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, Z)
            return p
        with open(tmp, "w", encoding="utf-8", errors=UNDECODABLE) as fh:
            fh.write(
                _csv_header(
                    Z.shape[1],
                    prefix,
                    ids is not None,
                    labels is not None,
                    names,
                    predicted is not None,
                    errors is not None,
                )
            )
            _csv_rows(fh, Z, ids, labels, predicted, errors)
    return p


#: the columns before the codes in a CSV that aekit writes (``read_codes`` leaves them out)
LEADING_COLUMNS = ("id", "label", "predicted", "reconstruction_error")


def _csv_header(
    width: int,
    prefix: str,
    ids: bool,
    labels: bool,
    names: Sequence[str] | None = None,
    predicted: bool = False,
    errors: bool = False,
) -> str:
    columns = [_csv_cell(str(n)) for n in names] if names is not None else [f"{prefix}{i + 1}" for i in range(width)]
    there = (ids, labels, predicted, errors)
    leading = [name for name, present in zip(LEADING_COLUMNS, there, strict=True) if present]
    return ",".join(leading + columns) + "\n"


def _csv_rows(
    fh: Any,
    Z: np.ndarray,
    ids: np.ndarray | None,
    labels: np.ndarray | None,
    predicted: np.ndarray | None = None,
    errors: np.ndarray | None = None,
) -> None:
    """``Z``'s rows as CSV lines after their ``ids``, ``labels``, ``predicted`` and ``errors`` cells (each None:
    no such column). An unlabelled row's label cell is empty, as a CSV's empty label cell is read (not "-1")."""
    import numpy as np

    from aekit._utils import unlabelled

    if labels is not None:
        labels = np.where(unlabelled(np.asarray(labels)), "", np.asarray(labels).astype(str))
    if errors is not None:
        errors = np.char.mod("%.7g", np.asarray(errors, dtype=np.float64))
    columns = (ids, labels, predicted, errors)
    cells = [[_csv_cell(v) for v in np.asarray(col).astype(str).tolist()] for col in columns if col is not None]
    row = ",".join(["%.7g"] * Z.shape[1])
    for i, z in enumerate(np.asarray(Z, dtype=np.float64).tolist()):
        fh.write(",".join([c[i] for c in cells] + [row % tuple(z)]) + "\n")


def _csv_cell(text: str) -> str:
    """A text cell as CSV writes it: never a spreadsheet formula (``spreadsheet_safe``), quoted when it holds a
    delimiter, a quote, a line break or edge blanks."""
    from aekit._utils import spreadsheet_safe

    text = spreadsheet_safe(text)
    if any(ch in text for ch in ',;\t"\r\n') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def read_codes(path: str | os.PathLike[str]) -> np.ndarray:
    """Codes or an embedding as ``write_codes`` wrote them (.npy, or a .csv whose ``id``/``label`` columns are
    left out); any other .npy/.npz/.csv of numbers as it is."""
    return read_codes_and_ids(path)[0]


def read_codes_and_ids(path: str | os.PathLike[str], column: str | None = None) -> tuple[np.ndarray, list[str] | None]:
    """``read_codes``, and the rows' ids as text where the file has an ``id`` column (a CSV ``embed`` wrote).
    ``column``: that one of the leading columns instead of the codes (e.g. ``reconstruction_error``), ``(n, 1)``."""

    from aekit._utils import DataFormatError
    from aekit.csvdata import csv_header, is_csv, reading_own_csv
    from aekit.data import load_rows as load_file

    p = Path(path)
    header = (csv_header(p) or []) if is_csv(p) and p.is_file() else []
    try:
        with reading_own_csv():  # its labels and predictions are not used here
            X, _, ids = load_file(
                p,
                label_column="label" if "label" in header else None,
                id_column="id" if "id" in header else None,
                # embed --predict's and --error's columns are left out as well (a codes file's header names them)
                keep=[column]
                if column is not None
                else [c for c in header if c not in LEADING_COLUMNS]
                if set(header) & set(LEADING_COLUMNS[2:])
                else None,
            )
    except DataFormatError as exc:
        if exc.param != "id_column":
            raise
        # a text column: the data's --id-column/--label-column do not apply to this file
        raise DataFormatError(
            f"{p}: a text column where codes were expected; a codes CSV holds numbers, besides an 'id' and a "
            "'label', a 'predicted' and a 'reconstruction_error' column (as aekit embed and visualize write it): "
            "rename or drop the column"
        ) from exc
    # ids as the data hold them (the CSV reader undoes the spreadsheet mark: "'=x" reads "=x")
    return X, ([str(v) for v in ids] if "id" in header and ids is not None else None)


def aligned_by_id(emb: np.ndarray, emb_ids: list[str] | None, ids: np.ndarray, what: str, data: str) -> np.ndarray:
    """The rows of ``emb`` (``what``: e.g. "--embedding codes.csv") in the order of the data's ``ids``, matched by
    the ``id`` column it was written with: a CSV sorted elsewhere would otherwise pair each point with
    another row. As it is without an ``id`` column."""
    import numpy as np

    from aekit._utils import InputError

    if emb_ids is None:
        return emb
    want = [str(v) for v in ids]
    if emb_ids == want:
        return emb
    where = {v: i for i, v in enumerate(emb_ids)}
    repeated = next((v for i, v in enumerate(emb_ids) if where[v] != i), None)  # a later row of an earlier id
    missing = next((v for v in want if v not in where), None)
    if repeated is not None:  # named first: a repeat in place of a row makes that row seem missing
        why = f"repeats the id {repeated!r}"
    elif missing is not None:
        why = f"has no row of id {missing!r}, a row of {data}"
    elif len(emb_ids) != len(want):
        why = f"has {len(emb_ids)} rows for the {len(want)} samples of {data}"
    else:
        print(f"note: {what}: rows matched to {data} by their ids (the file's order differs)", file=sys.stderr)
        return emb[np.asarray([where[v] for v in want])]
    raise InputError(f"{what} {why}; pass the data it was computed from, with the same --id-column (and --limit)")


# ----------------------------------------------------------------------------- commands


#: every file ``aekit train`` writes into --out; none is replaced without --overwrite (or --resume)
TRAIN_FILES = ("model.safetensors", "checkpoint.safetensors", "history.json", "training_curve.png")


def _estimator(
    args: argparse.Namespace,
    y: np.ndarray | None,
    names: Sequence[str] | None = None,
    *,
    labels_read: bool = True,
    **defaults: Any,
) -> Any:
    """The estimator the flags describe (validated: bad values fail before anything is written).

    ``names``: the estimator flags of this command (default: all of ``params.FLAGS``); ``defaults``: this
    command's own defaults under the preset and the flags (``aekit visualize``: a 20-D code).
    ``labels_read=False``: the flags alone are checked, before the data are read (and --out is opened).
    """
    from aekit._utils import InputError
    from aekit.estimators import Autoencoder, ParametricTSNE, SupervisedAutoencoder
    from aekit.params import FLAGS, PARAMS, PRESETS

    preset, supervised = getattr(args, "preset", None), getattr(args, "supervised", False)
    params = {**defaults, **(PRESETS[preset] if preset else {})}
    params.update({k: v for k, v in vars(args).items() if k in (FLAGS if names is None else names)})
    # A bar on a terminal; elsewhere (a notebook's `!aekit`, a log file) one line per epoch, as Keras' "auto"
    # does, so a long fit is not silent; -v logs those lines itself
    bar = getattr(args, "progress", False) or sys.stderr.isatty()
    params.setdefault("verbose", 1 if bar else 0 if getattr(args, "verbose", False) else 2)
    tsne = getattr(args, "method", "autoencoder") == "tsne"
    cls = ParametricTSNE if tsne else SupervisedAutoencoder if supervised else Autoencoder
    unknown = set(params) - set(cls().get_params())
    if tsne and preset and PRESETS[preset].get("n_components", 2) is None and "n_components" not in vars(args):
        raise InputError(
            f"--preset {preset} is a recipe for autoencoders (a spatial code: --n-components none), not for "
            "--method tsne; drop the preset or --method tsne"
        )
    if unknown and preset and unknown <= set(PRESETS[preset]):
        if tsne:  # a map has neither a variational code nor the autoencoders' other settings
            keys = ", ".join(sorted("--" + u.replace("_", "-") for u in unknown))
            raise InputError(
                f"--preset {preset} is a recipe for autoencoders ({keys}), not for --method tsne; "
                "drop the preset or --method tsne"
            )
        raise InputError(f"--preset {preset} is a recipe for supervised models; add --supervised (and labels)")
    if unknown:
        flags = sorted("--" + u.replace("_", "-") for u in unknown)
        where = "--method autoencoder" if tsne else "--method tsne" if PARAMS[min(unknown)].tsne else "--supervised"
        raise InputError(f"{flags} only apply to {where} models")
    if supervised and y is None and labels_read:
        raise InputError(
            f"{args.data} has no labels; pass --label-column for a CSV, a .npz with 'y', or drop --supervised"
        )
    est = cls(**params)
    est._validate_params()
    return est


def visualize_flags() -> tuple[str, ...]:
    """The estimator flags of ``aekit visualize``: those of an unsupervised AE but random_state (its --seed)."""
    from aekit.params import FLAGS, PARAMS

    return tuple(
        name for name in FLAGS if not (PARAMS[name].supervised or PARAMS[name].tsne) and name != "random_state"
    )


def _keep_trained(out: OutputFolder, est: Any) -> bool | None:
    """Save a model that trained at least one epoch (``save_training``: whether its curve was drawn); None: an
    untrained one, which never replaces a file."""
    from aekit.outputs import save_training

    if getattr(est, "n_iter_", 0) > 0 and hasattr(est, "net_"):
        return save_training(out, est)
    if getattr(est, "stop_reason_", "") in ("interrupted", "diverged"):
        print(f"no epoch completed ({est.stop_reason_}): no model written to {out.path}", file=sys.stderr)
    return None


def _launch(args: argparse.Namespace) -> int:
    """``aekit train --nproc N``: the same command on N processes under ``torch.distributed.run``; its exit code.

    The launcher runs in its own process group, so that Ctrl-C reaches it once, from here: it then
    stops every rank (each keeps or drops its work as one process does) and exits 130.
    """
    import signal
    import subprocess

    from aekit import distributed
    from aekit._utils import InputError
    from aekit.threads import available_cores

    if distributed.from_env(os.environ) is not None:
        raise InputError("--nproc: this command already runs under torchrun; drop --nproc")
    command = distributed.launch_command(args.nproc, distributed.without_flag(args.argv, "--nproc"))
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, available_cores() // args.nproc)))  # cores shared out
    proc = subprocess.Popen(command, env=env, process_group=0)
    interrupts = 0
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (cli.main): ask the launcher to stop the ranks
            interrupts += 1
            proc.send_signal(signal.SIGINT if interrupts == 1 else signal.SIGKILL)


def _train_rank(args: argparse.Namespace) -> int:
    """A data-parallel rank other than 0: trains its part, writes nothing and prints nothing (rank 0 does)."""
    import warnings

    from aekit import distributed

    warnings.simplefilter("ignore")  # rank 0 shows them and logs the run, once
    logging.getLogger("aekit").setLevel(logging.ERROR)
    X, y = training_data(args)
    est = _estimator(args, y)
    resume = str(Path(args.out) / "checkpoint.safetensors") if args.resume else None
    est.fit(X, y, resume_from=resume) if args.supervised else est.fit(X, resume_from=resume)
    if est.stop_reason_ == "interrupted":
        return 130
    distributed.leave_together()  # rank 0 arrives once its files are written
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from aekit import distributed
    from aekit._utils import AekitError, InputError, resolve_device

    _estimator(args, None, labels_read=False)  # a bad flag value: said before --out's files or any rank
    if getattr(args, "nproc", None) not in (None, 1):
        return _launch(args)
    if distributed.from_env(os.environ) is not None:  # under torchrun: every rank joins before any can fail
        distributed.setup(resolve_device(getattr(args, "device", "auto")))
        if not distributed.is_writer():
            return _train_rank(args)
    ck_name = "checkpoint.safetensors"
    # a checkpoint left by a killed run is only replaced on purpose (--overwrite) or continued (--resume)
    with _out_dir(args, TRAIN_FILES, args.overwrite or args.resume) as out:
        if args.resume and not (out.path / ck_name).exists():
            finished = (out.path / "model.safetensors").exists()  # a finished run's: replaced only with --overwrite
            raise InputError(
                f"--resume: {out.path / ck_name} does not exist; a run keeps it when interrupted or with "
                "--keep-checkpoint. Drop --resume to train from the start"
                + (
                    f" (--overwrite replaces the finished run in {args.out}, or choose another --out)"
                    if finished
                    else ""
                )
            )
        X, y = training_data(args)
        if getattr(args, "data_loading", None) == "stream" and _is_csv(args.data):
            print(
                f"note: --data-loading stream: {args.data} is a CSV, parsed whole into memory first (.npy, HDF5, "
                "zarr and folders of images are read from disk in chunks); save it as .npy to stream it",
                file=sys.stderr,
            )
        if y is not None and not args.supervised and getattr(args, "label_column", None) is not None:
            print(
                f"note: --label-column {args.label_column} is read but not trained on (add --supervised to train on "
                "the labels); evaluate and the pictures use it",
                file=sys.stderr,
            )
        est = _estimator(args, y)
        _remember_columns(args, est)
        # the checkpoint is written in place every epoch (a killed run resumes from it), but a previous run's
        # stays until this run's files replace it together
        replacing = (out.path / ck_name).exists() and not args.resume
        est.set_params(checkpoint_path=str(out.staged(ck_name) if replacing else out.in_place(ck_name)))
        resume = str(out.path / ck_name) if args.resume else None
        try:
            est.fit(X, y, resume_from=resume) if args.supervised else est.fit(X, resume_from=resume)
        # e.g. diverged, or (data-parallel) another rank failed, or a signal that came while this rank saw it
        # fail: the model of the last complete epoch is kept, then the error shown
        except (AekitError, KeyboardInterrupt) as exc:
            _keep_then_raise(out, Path(args.out), est, exc)
        curve = _keep_trained(out, est)
        if est.n_iter_ == 0:
            return 130 if est.stop_reason_ == "interrupted" else 2
        if est.stop_reason_ in FINISHED and not args.keep_checkpoint:  # a finished run needs no resuming
            (out.path / ck_name).unlink(missing_ok=True)
    _say_kept(Path(args.out), est, est.stop_reason_, curve=bool(curve))
    if est.stop_reason_ == "interrupted":
        return 130
    distributed.leave_together()  # the other ranks wait here for this one's files
    return 0


def _keep_then_raise(out: OutputFolder, where: Path, est: Any, exc: BaseException) -> NoReturn:
    """A training stopped by an error or a signal (under --nproc: the launcher stopping this rank because another
    failed): keep its model, say where and how to go on, then raise what stopped it."""
    from aekit._utils import TrainingDivergedError

    stopped = exc
    try:
        kept = _keep_trained(out, est)
    except KeyboardInterrupt as late:  # a signal that came while the model was saved: it waited until it was
        kept, stopped = (out.path / "training_curve.png").exists(), late
    if kept is not None:
        how = "diverged" if isinstance(stopped, TrainingDivergedError) else "failed"
        _say_kept(where, est, "interrupted" if isinstance(stopped, KeyboardInterrupt) else how, curve=kept)
    raise stopped


def _say_kept(where: Path, est: Any, how: str, *, curve: bool = False) -> None:
    """The lines that end a training that wrote its model: where it is, and how to go on when it stopped early."""
    print(f"model: {where / 'model.safetensors'} ({est.n_iter_} epoch{'s' if est.n_iter_ != 1 else ''}, {how})")
    if curve:
        print(f"training curve: {where / 'training_curve.png'}")
    ck = where / "checkpoint.safetensors"
    if how in ("interrupted", "failed") and ck.exists():
        print(f"{how}: resume with the same command plus --resume (checkpoint {ck})", file=sys.stderr)


def modelish(path: str | None) -> bool:
    """Whether ``path`` names a model: a model file, a training run's folder or a saved map."""
    return bool(path) and (
        str(path).lower().endswith(".safetensors")
        or any((Path(str(path)) / name).is_file() for name in ("model.safetensors", "tsne.safetensors"))
    )


def load_model(args: argparse.Namespace) -> Any:
    """The model file ``args.model``, its inference arithmetic set by ``--precision`` where given."""
    from aekit._utils import InputError
    from aekit.estimators import load

    data = str(getattr(args, "data", "") or "")
    if modelish(data) and not str(args.model).lower().endswith(".safetensors") and not Path(args.model).is_dir():
        raise InputError(  # `aekit embed data.csv model.safetensors`: the file read as a model is the data
            f"{args.model} is read as the model and {data} as the data; the model comes first: "
            f"aekit {args.command} {shlex.quote(data)} {shlex.quote(str(args.model))} ..."
        )
    est = load(args.model)
    # a saved set_output(transform="pandas") is for Python: the commands work with arrays
    est.set_output(transform="default")
    if getattr(args, "precision", None):
        est.set_params(precision=args.precision)
    return est


def _map_or_model(args: argparse.Namespace) -> Any:
    """``load_model``, or a saved AE → t-SNE map (a folder written by ``visualize --save-map``, ``AETSNE.save``)."""
    folder = Path(args.model)
    if not (folder.is_dir() and (folder / "tsne.safetensors").is_file()):
        return load_model(args)
    from aekit.visualize import AETSNE

    vis = AETSNE.load(folder)
    if getattr(args, "precision", None):
        vis.autoencoder_.set_params(precision=args.precision)
    return vis


def _is_csv(data: str) -> bool:
    from aekit.csvdata import is_csv

    return is_csv(str(data))


def _training_columns(args: argparse.Namespace, model: Any) -> None:
    """The id and label columns ``aekit train`` read (``model.data_columns_``), taken again from a CSV that has
    them where the command's own flags name none; said in one line."""
    from aekit.csvdata import csv_header

    remembered = getattr(model, "data_columns_", None) or {}
    if not remembered or not _is_csv(args.data) or not Path(args.data).is_file():
        return
    header = set(csv_header(Path(args.data)) or ())
    given = {str(getattr(args, key)) for key in ("id_column", "label_column") if getattr(args, key, None) is not None}
    taken = []
    for key, name in remembered.items():
        if hasattr(args, key) and getattr(args, key) is None and name in header and name not in given:
            setattr(args, key, name)
            taken.append(f"--{key.replace('_', '-')} {shlex.quote(name)}")
    if taken:
        print(f"note: {' '.join(taken)}, as the model was trained (name others to change them)", file=sys.stderr)


def model_rows(
    args: argparse.Namespace, model: Any, *, stream: bool = False, with_ids: bool = True
) -> tuple[Any, np.ndarray | None, np.ndarray | None]:
    """``load_rows`` for a trained ``model``: a folder of images is read at the model's image shape unless
    --image-shape says another, and one read at a size the model does not take is refused in one line; a CSV
    has its ids and labels read from the columns training read them from (``_training_columns``)."""
    from aekit._utils import InputError
    from aekit.base import fitted_image_shape
    from aekit.sources import image_folder

    width = int(getattr(model, "n_features_in_", 784))
    if args.data in ("mnist", "mnist-test") and width != 784:  # a trial's CSV model met MNIST's download error
        flag = getattr(args, "data_flag", None)  # evaluate's --train-data
        own_default = args.command_parser.get_default("data") if hasattr(args, "command_parser") else "mnist"
        default = " (the default when no data is named)" if args.data == own_default and not flag else ""
        usage = "DATA.csv --model MODEL" if args.command in ("visualize", "explore") else "MODEL DATA.csv"
        fix = f"pass {flag} DATA.csv" if flag else f"name the rows to use: `aekit {args.command} {usage} ...`"
        raise InputError(
            f"{flag or 'data'} {args.data!r}{default} means MNIST's 784-pixel images, but "
            f"{getattr(args, 'model', None) or 'the model'} takes rows of {width} features; {fix}"
        )
    _training_columns(args, model)

    shape = fitted_image_shape(model)
    if image_folder(args.data) and shape is not None and getattr(args, "image_shape", None) is None:
        args.image_shape = shape  # a folder is resized as the model's training images were
    names: list[str] = []
    X, y, ids = load_rows(args, stream=stream, with_ids=with_ids, names=names, keep=_feature_names(model))
    check_image_size(args, X, model)
    taken = {str(v): f"--{k.replace('_', '-')}" for k in ("id_column", "label_column") if (v := getattr(args, k, None))}
    X = model_columns(X, names, model, args.data, taken)
    check_width(args, X, model)
    return X, y, ids


def _drawable(shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """``shape`` if thumbnails can be drawn at it ((H, W), or (C, H, W) with 1 or 3 channels), else None."""
    return shape if shape is not None and (len(shape) == 2 or (len(shape) == 3 and shape[0] in (1, 3))) else None


def _width(X: Any) -> int:
    """Values per row: of a source read in chunks, or of an array of rows or images."""
    import math

    return int(X.n_features) if hasattr(X, "n_features") else math.prod(X.shape[1:])


def check_width(args: argparse.Namespace, X: Any, model: Any) -> None:
    """Rows of another width than ``model`` takes: one line naming the file, and for a CSV read without
    --label-column or --id-column the flag that leaves such a column out."""

    from aekit._utils import InputError

    n, found = int(model.n_features_in_), _width(X)
    if found == n:
        return
    hint = "; pass data with the features the model was trained on"
    if _is_csv(args.data) and found == n + 1:
        missing = [f for f in ("--label-column", "--id-column") if getattr(args, f[2:].replace("-", "_"), None) is None]
        if missing:  # one column too many: the labels or the ids, read as a feature
            hint = f"; if one column holds labels or row ids, name it: {' or '.join(missing)}"
    raise InputError(f"{args.data}: rows of {found} features, but the model takes {n}{hint}")


def _folder_only(args: argparse.Namespace) -> None:
    """Refuse --image-shape for data that are no folder of images (embed, evaluate, denoise): there it would
    change nothing."""
    from aekit._utils import InputError
    from aekit.sources import image_folder

    if args.image_shape is not None and not image_folder(args.data):
        raise InputError(
            f"--image-shape resizes a folder of images, but {args.data} is none; drop --image-shape (rows are read "
            "as they are stored)"
        )


def _feature_names(model: Any) -> list[str] | None:
    """The names of the features ``model`` was trained on (a CSV's header, a DataFrame's columns), or None."""
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def model_columns(X: Any, names: list[str], model: Any, data: str, taken: dict[str, str] | None = None) -> Any:
    """The columns of ``X`` (a CSV's, named ``names``) that ``model`` was trained on, in its order.

    A model trained on a CSV with a header knows its features' names: a CSV naming them in another order, or
    with more columns, gives those columns; one lacking any is refused naming them (and, from ``taken``, the
    flag that made one of them ids or labels here). Data without names (or a model without them) are taken
    by position.
    """
    from aekit._utils import InputError
    from aekit.csvdata import listed, warn_left_out

    want = _feature_names(model) or []
    if names and not want:  # Python warns here too (scikit-learn: "X has feature names, but ... without")
        log.warning(
            "%s names its columns (%s), but the model has no names for its features: the %d columns are read "
            "by position, in the file's order",
            data,
            listed(names),
            len(names),
        )
    if not want or not names or names == want:
        return X
    position = {name: i for i, name in enumerate(names)}  # (wide CSVs: no list scans)
    missing = [n for n in want if n not in position]
    if missing:
        shown = listed(missing)
        taken = taken or {}
        flags = [f"{taken[n]} {n}" for n in missing if n in taken]  # a feature read as ids or labels here
        fix = "pass data with those columns (in any order)"
        if flags:
            fix = f"drop {', '.join(flags)}: the model was trained with it as a feature"
        raise InputError(f"{data}: lacks the column(s) {shown} of the {len(want)} the model was trained on; {fix}")
    wanted = set(want)
    given = set((taken or {}).values())
    unnamed = [flag for flag in ("--id-column", "--label-column") if flag not in given]
    warn_left_out(data, [n for n in names if n not in wanted], unnamed)  # a CSV too wide for the reader to leave out
    return X[:, [position[n] for n in want]]


def _needs_decoder(args: argparse.Namespace, est: Any, flag: str) -> None:
    """Refuse ``flag`` (it reads reconstructions) for a map fitted without a decoder, with the CLI's fix."""
    from aekit._utils import InputError

    if not est.net_.has_decoder:
        raise InputError(
            f"{flag}: {args.model} is a map without a decoder (reconstruction_weight=0), which rebuilds no rows; "
            f"train one with --reconstruction-weight 1, or drop {flag.split()[0]}"
        )


def _check_columns(args: argparse.Namespace, est: Any) -> None:
    """``embed --predict`` / ``--error``: a model that has what the column holds (a classifier head, a decoder),
    and a CSV to hold it."""
    from aekit._utils import InputError

    asked = {
        "--predict": ("predicted", "places points and predicts no class", "the head's classes"),
        "--error": ("reconstruction_error", "rebuilds no rows", "each row's reconstruction error"),
    }
    for flag, (column, cannot, what) in asked.items():
        if not getattr(args, flag[2:]):
            continue
        if hasattr(est, "autoencoder_"):  # an AE -> t-SNE map places points; its autoencoder may do it
            raise InputError(
                f"{flag}: {args.model} is an AE → t-SNE map, which {cannot}; pass its autoencoder for {what} "
                f"({Path(args.model) / 'autoencoder.safetensors'}), or drop {flag}"
            )
        if flag == "--predict" and not hasattr(est, "classes_"):
            raise InputError(
                f"--predict: {args.model} has no classifier (it was trained without labels); train one with "
                "`aekit train DATA --supervised --label-column NAME`, or drop --predict"
            )
        if flag == "--error":
            _needs_decoder(args, est, flag)
        if Path(args.out).suffix.lower() != ".csv":
            raise InputError(
                f"{flag} adds a `{column}` column to a CSV, but --out {args.out} is a .npy (the codes alone); "
                "pass --out FILE.csv"
            )


def cmd_embed(args: argparse.Namespace) -> int:
    check_codes_path(args.out)
    with _out_file(args, args.out) as (out, name):
        _folder_only(args)
        est = _map_or_model(args)
        # the rows as the model reads them: a map's autoencoder reads them
        _check_columns(args, est)
        X, y, ids = model_rows(args, getattr(est, "autoencoder_", est), stream=True)
        shape = write_codes_of(est, X, out.staged(name), ids=ids, labels=y, predict=args.predict, error=args.error)
        out.commit()
    print(f"codes {shape}: {args.out}")
    return 0


#: rows encoded per chunk when codes are written to a CSV file
CSV_CHUNK = 65536


def write_codes_of(
    est: Any,
    X: Any,
    path: Path,
    *,
    ids: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    predict: bool = False,
    error: bool = False,
) -> tuple[int, int]:
    """``est.transform(X)`` written to ``path`` (.npy or .csv, as ``write_codes``) chunk by chunk; returns the
    codes' shape. ``predict``: a CSV also gets ``est.predict(X)`` (a model fitted with labels); ``error``: each
    row's reconstruction error, as ``score_samples`` measures it (negated; a model with a decoder).

    A ``.npy`` is filled through ``np.lib.format.open_memmap`` and a CSV is appended to, so the codes of
    data larger than memory are never held whole; the file is written under a temporary name and renamed.
    A CSV's ``id`` column holds ``ids``, or the row numbers when ``ids`` is None.
    """
    import numpy as np

    from aekit._utils import UNDECODABLE, atomic_path
    from aekit.sources import ArraySource, as_source

    def encoded(part: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        if predict or error:  # one pass of the encoder for all
            return est._codes_and_more(part, classes=predict, errors=error)
        return est.transform(part), None, None

    check_codes_path(path)
    source = as_source(X)
    if source is not None and not hasattr(est, "net_"):  # an AE → t-SNE map places all its new points at once
        X, source = source.read(0, source.n_samples), None
    if source is None:  # in memory (MNIST, a CSV or .npz input)
        Z, guess, errors = encoded(X)
        prefix = "z" if hasattr(est, "net_") else "tsne"  # a map's coordinates, as visualize's embedding.csv
        rows = np.arange(len(Z)) if ids is None else ids
        write_codes(Z, path, prefix, ids=rows, labels=labels, predicted=guess, errors=errors)
        return Z.shape
    width = int(est.net_.code_size)
    shape = (source.n_samples, width)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".npy":
            codes = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            est.transform(source, out=codes)
            codes.flush()
            del codes
        else:
            with open(tmp, "w", encoding="utf-8", errors=UNDECODABLE) as fh:
                fh.write(_csv_header(width, "z", True, labels is not None, predicted=predict, errors=error))
                for start in range(0, source.n_samples, CSV_CHUNK):
                    stop = min(start + CSV_CHUNK, source.n_samples)
                    chunk = ArraySource(source.read(start, stop), source.name)
                    Z, guess, errors = encoded(chunk)
                    rows = np.arange(start, stop) if ids is None else ids[start:stop]
                    _csv_rows(fh, Z, rows, None if labels is None else labels[start:stop], guess, errors)
    return shape


def cmd_summary(args: argparse.Namespace) -> int:
    from aekit._utils import InputError
    from aekit.estimators import load
    from aekit.modules import build_net
    from aekit.summary import dense_table, format_table, module_table

    if sum(x is not None for x in (args.model, args.layers, args.preset)) > 1:
        raise InputError("summary takes one of: layer sizes, --model or --preset; drop the others")
    if args.model:
        rows = module_table(load(args.model).net_)
    elif args.layers:
        try:
            sizes = [int(s) for s in args.layers.replace(" ", "").split(",")]  # "13,,2" is refused, not 13,2
        except ValueError:
            raise InputError(
                f"layer sizes {args.layers!r} must be comma-separated integers, e.g. 784,100,20,100,784"
            ) from None
        rows = dense_table(sizes)
    else:
        from aekit.estimators import Autoencoder, SupervisedAutoencoder
        from aekit.params import PRESETS, is_supervised

        params = PRESETS[args.preset or "dense"]
        supervised = is_supervised(params)  # a recipe with head parameters
        est = (SupervisedAutoencoder if supervised else Autoencoder)(**params)
        rows = module_table(
            build_net(**est._net_kwargs(784, 10 if supervised else None))
        )  # MNIST: 784 pixels, 10 classes
    print(format_table(rows))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from aekit.demo import run_demo

    mnist_dir = _mnist_dir(args)
    with _out_dir(args, (), overwrite=True) as out:  # locked; run_demo checks its own files (demo.DEMO_FILES)
        report = run_demo(
            out.path,
            mnist_dir=mnist_dir,
            quick=args.quick,
            epochs=args.epochs,
            progress=args.progress or sys.stderr.isatty(),
            only=args.only,
            overwrite=args.overwrite,
        )
    print(f"report: {report}")
    return 0


def _labelled_pair(
    args: argparse.Namespace, model: Any
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Test data from ``args.data``; train data for code classifiers from ``args.train_data``."""
    X, y, _ = model_rows(args, model, with_ids=False)
    X_tr = y_tr = None
    train_data = args.train_data
    if train_data is None and args.data == "mnist-test":  # (on the training split itself k-NN would see its own points)
        train_data = "mnist"
    if y is not None and train_data and _same_data(train_data, args.data):
        X_tr, y_tr = X, y  # its own rows (as --limit cut them): cross-validated by evaluate_model
    elif y is not None and train_data:
        # the CSV flags name the test CSV's columns: training data of another format have none to name
        flags = {} if _is_csv(train_data) else {"label_column": None, "id_column": None}
        ns = argparse.Namespace(
            **{**vars(args), "data": train_data, "data_flag": "--train-data", "limit": None, **flags}
        )
        X_tr, y_tr, _ = model_rows(ns, model, with_ids=False)
        if y_tr is None:
            print(f"note: {train_data} has no labels; k-NN and logistic accuracy of the codes skipped", file=sys.stderr)
    elif y is not None:  # the data's own codes, cross-validated (evaluate_model: the same rows)
        X_tr, y_tr = X, y
    return X, y, X_tr, y_tr


def _same_data(a: str, b: str) -> bool:
    """Whether two data arguments name the same data (the same words, or paths to the same file)."""
    if a == b:
        return True
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _say_cross_validated(args: argparse.Namespace, y: np.ndarray | None, results: dict[str, float]) -> None:
    """``evaluate``'s note on how the codes' accuracies were measured within the data, or why they were not."""
    import numpy as np

    from aekit._utils import unlabelled
    from aekit.metrics import cv_folds

    if y is None or any(k in results for k in ("knn5_accuracy", "logistic_accuracy")):
        return
    folds = cv_folds(np.asarray(y)[~unlabelled(np.asarray(y))])
    if "knn5_cv_accuracy" in results:
        n = int((~unlabelled(np.asarray(y))).sum())
        # a trial's evaluate on the training CSV read 0.99 / 1.00 as if they were test scores
        print(
            f"note: k-NN and logistic accuracy cross-validated within {args.data}'s codes ({folds} folds over {n:,} "
            "labelled rows; on the rows the model was trained on, these and a head's accuracy are no test scores); "
            "--train-data OTHER scores a classifier of OTHER's codes on these",
            file=sys.stderr,
        )
    elif not folds:
        labels = np.asarray(y)[~unlabelled(np.asarray(y))]
        classes = np.unique(labels)
        found = f"found {len(classes)} class{'es' if len(classes) != 1 else ''} in {len(labels):,} labelled rows"
        # --limit takes the first rows: of a folder sorted by class, often one class only (a trial's)
        limit = f", the first {args.limit:,} (--limit)" if getattr(args, "limit", None) else ""
        print(
            f"note: k-NN and logistic accuracy skipped: cross-validating within {args.data} needs two classes of "
            f"at least 2 labelled samples, and 5 in each fold's training part ({found}{limit}); --train-data "
            "OTHER scores a classifier of OTHER's codes on these",
            file=sys.stderr,
        )


def cmd_evaluate(args: argparse.Namespace) -> int:
    from aekit._utils import atomic_path
    from aekit.metrics import evaluate_model

    with (
        _out_file(args, args.json, "--json") if args.json else contextlib.nullcontext((None, "")) as (
            out,
            name,
        )
    ):
        _folder_only(args)
        est = load_model(args)
        X, y, X_tr, y_tr = _labelled_pair(args, est)
        y, y_tr = _as_model_labels(y, est), _as_model_labels(y_tr, est)
        for labels, data in ((y, args.data), (y_tr, args.train_data)):
            _check_classes(labels, data, getattr(args, "label_column", None))
        outlier = None if args.outlier_label is None else _outlier_rows(args, est, y)  # refused before any work
        results = evaluate_model(est, X, y, X_tr, y_tr)
        if outlier is not None:
            results.update(_outlier_metrics(est, X, *outlier))
        _say_cross_validated(args, y, results)
        scale = getattr(getattr(est, "autoencoder_", est), "scale", None)
        if scale in ("minmax", "standard"):  # the numbers of two models of other scales do not compare
            note = f"note: reconstruction and trustworthiness in the model's units (after its scale={scale!r})"
            print(note, file=sys.stderr)
        width = max(map(len, results))
        for k, v in results.items():
            print(f"{k:<{width}}  {v:,.0f}" if k == "parameters" else f"{k:<{width}}  {v:.4f}")
        if out is not None:
            with atomic_path(out.staged(name)) as tmp:
                tmp.write_text(json.dumps({"model": str(args.model), "data": args.data, **results}, indent=1))
            out.commit()
            print(f"metrics: {args.json}")
    return 0


def _as_model_labels(y: np.ndarray | None, est: Any) -> np.ndarray | None:
    """Whole-number labels as text where the model's classes are text: a CSV's labels are text or numbers by
    its own cells, so a model trained on "01", "10" (text, as zero-padded labels are read) met a test file of
    10 and 11 (numbers) and scored 0% (a review)."""
    import numpy as np

    from aekit._utils import unlabelled

    classes = getattr(est, "classes_", None)
    if y is None or classes is None or np.asarray(classes).dtype.kind not in "OU" or np.asarray(y).dtype.kind != "i":
        return y
    if not all(isinstance(c, str) for c in np.asarray(classes).tolist()):
        return y
    text = np.array([str(v) for v in np.asarray(y).tolist()], dtype=object)
    text[unlabelled(np.asarray(y))] = "-1"
    return text


def _check_classes(y: np.ndarray | None, data: str | None, column: str | None) -> None:
    """Refuse labels that are no classes (fractions: 1.5, 2.5) before evaluate's accuracies, which score classes
    (scikit-learn's k-NN raised on them, a traceback)."""
    import numpy as np
    from sklearn.utils.multiclass import type_of_target

    from aekit._utils import InputError, unlabelled

    if y is None or np.asarray(y).dtype.kind != "f":
        return
    known = np.asarray(y)[~unlabelled(np.asarray(y))]
    if known.size and type_of_target(known) == "continuous":
        example = next(v for v in known.tolist() if v != int(v))
        where = f"--label-column {column}" if column else f"the labels of {data}"
        raise InputError(
            f"{where}: {example:g} is no class (the labels are fractions); the accuracies score classes: pass "
            "whole-number or text labels, or drop the labels"
        )


def _outlier_rows(args: argparse.Namespace, est: Any, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``evaluate --outlier-label VALUE``: the labelled rows and which of them are labelled VALUE, checked (a model
    with a decoder, labels, outliers and other rows) before any metric is computed."""
    import numpy as np

    from aekit._utils import InputError, unlabelled
    from aekit.csvdata import listed

    flag = f"--outlier-label {args.outlier_label}"
    _needs_decoder(args, est, flag)
    labels = None if y is None else np.asarray(y)
    known = None if labels is None else ~unlabelled(labels)
    if labels is None or known is None or not known.any():
        raise InputError(
            f"{flag}: {args.data} has no labelled rows; pass data that mark the outliers (a CSV with --label-column "
            "NAME, an .npz with y, an HDF5 file or zarr group with --label-column NAME)"
        )

    def same(v: Any) -> bool:  # as written ("nan", "007"), else as a number ("1" names 1 and 1.0)
        if str(v) == args.outlier_label:
            return True
        try:
            return float(v) == float(args.outlier_label)
        except (TypeError, ValueError):
            return False

    outlier = np.array([same(v) for v in labels.tolist()], dtype=bool)
    n_out, n = int(outlier[known].sum()), int(known.sum())
    if n_out in (0, n):
        seen = listed(sorted({str(v) for v in labels[known].tolist()})[:10])
        more = " (or a larger --limit: these are its first rows)" if n_out and args.limit else ""
        raise InputError(
            f"{flag}: {n_out} of the {n} labelled rows of {args.data} have that label; the scores need outliers and "
            f"other rows (labels seen: {seen}); pass the label that marks the outliers{more}"
        )
    return known, outlier[known]


def _outlier_metrics(est: Any, X: Any, known: np.ndarray, outlier: np.ndarray) -> dict[str, float]:
    """How well each labelled row's reconstruction error (``score_samples``, negated) finds the outliers: their
    share, ROC AUC and average precision."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    errors = -est.score_samples(X)[known]
    return {
        "outlier_share": float(outlier.mean()),
        "outlier_roc_auc": float(roc_auc_score(outlier, errors)),
        "outlier_average_precision": float(average_precision_score(outlier, errors)),
    }


def _picture_shape(args: argparse.Namespace, X: Any, est: Any) -> tuple[int, ...]:
    """``denoise --picture``: the images' shape, checked against the rows before any work (in the flags' words)."""
    import math

    from aekit._utils import InputError

    shape = _image_shape(args, X, est)
    if shape is None:
        raise InputError(
            f"--picture draws images, but {args.data}'s rows are not known to be images; pass --image-shape "
            "[C,]H,W, or drop --picture"
        )
    if math.prod(shape) != _width(X):
        raise InputError(
            f"--image-shape {','.join(map(str, shape))} holds {math.prod(shape)} values but {args.data}'s rows have "
            f"{_width(X)}; pass their shape"
        )
    return shape


def cmd_denoise(args: argparse.Namespace) -> int:
    import numpy as np

    from aekit import metrics
    from aekit._utils import InputError, as_float32, is_uint8
    from aekit.objectives import add_noise
    from aekit.params import check_noise_factor
    from aekit.scaling import apply, undo

    check_codes_path(args.out)  # before any work
    if args.picture and Path(args.picture).suffix.lower() != ".png":
        raise InputError(f"--picture {args.picture}: the picture is a PNG; use a file name ending in .png")
    picture = (
        _out_file(args, args.picture, "--picture", image=True) if args.picture else contextlib.nullcontext((None, ""))
    )
    with _out_file(args, args.out) as (out, name), picture as (pic, pic_name):
        check_noise_factor(args.noise, args.noise_factor)  # the rule of training, too (NaN fails)
        if not 0 <= args.seed < 2**63:
            raise InputError(f"--seed {args.seed} must be in [0, 2**63)")
        if not args.picture:  # with a picture, --image-shape is also the shape of .npy/.csv images (as explore's)
            _folder_only(args)
        est = load_model(args)
        if not est.net_.has_decoder:
            raise InputError(
                f"{args.model} is a map without a decoder (reconstruction_weight=0), which rebuilds no rows: "
                "nothing to denoise; train one with --reconstruction-weight 1"
            )
        X, y, ids = model_rows(args, est)
        shape = _picture_shape(args, X, est) if args.picture else None
        clean = as_float32(X, pixels=is_uint8(X) and bool(est.pixels_))  # as the model reads it
        X_in = clean
        sigmoid = est.output_activation_ == "sigmoid"
        if args.add_noise:  # as in training: in the model's units (after its scale), clipped for a sigmoid model only
            scaler = est._scaler()
            noisy = add_noise(
                apply(clean.reshape(len(clean), -1), scaler),
                args.noise,
                args.noise_factor,
                random_state=args.seed,
                clip=sigmoid,
            )
            X_in = undo(noisy, scaler)
        denoised = est.reconstruct(X_in)
        # reconstructions: the model's feature names (trained on a CSV with a header), else x1, x2, ...; also
        # x1, x2, ... where a name is the id or label column's (the file must read back as data)
        names = _feature_names(est)
        names = None if names is None or {"id", "label"} & set(names) else names
        write_codes(denoised, out.staged(name), prefix="x", ids=ids, labels=y, names=names)
        if pic is not None:
            from aekit import plots

            rows = [clean, X_in, denoised] if args.add_noise else [clean, denoised]
            labels = ["clean", "noisy", "denoised"] if args.add_noise else ["input", "denoised"]
            rows = [np.asarray(r)[:10].reshape(min(10, len(r)), -1) for r in rows]
            with plots.offscreen():  # files only: no display, the user's backend untouched
                plots.save(plots.image_grid(rows, labels, image_shape=shape), pic.staged(pic_name))
        out.commit()
        if pic is not None:
            pic.commit()
    print(f"denoised {denoised.shape}: {args.out}" + (f"; picture: {args.picture}" if args.picture else ""))
    if args.add_noise:
        ref, unit = clean.reshape(denoised.shape), metrics.unit_range(clean)
        noisy_in, out_rows, units = X_in.reshape(denoised.shape), denoised, ""
        scaler = est._scaler()
        if scaler is not None and not unit:  # a table's features in their own units: the widest would rule it
            ref, noisy_in, out_rows = (apply(a, scaler) for a in (ref, noisy_in, out_rows))
            units = f" (in the model's units, after its scale={est.scale!r}, as evaluate)"
        peak = 1.0 if unit else None  # PSNR's peak: 1 for data in [0, 1], else the clean data's range
        line = (
            f"PSNR noisy {metrics.psnr(ref, noisy_in, peak):.2f} dB "
            f"-> denoised {metrics.psnr(ref, out_rows, peak):.2f} dB{units}"
        )
        if unit:
            line += f"; BCE vs clean {metrics.reconstruction_bce(ref, denoised):.4f}"
        print(line)
    return 0


def _note_map_flags(args: argparse.Namespace, model: Any, given: set[str]) -> None:
    """Say which of the given t-SNE flags a parametric map leaves unused: its own perplexity made it (--compare's
    t-SNE from raw still takes --perplexity; no AE → t-SNE route is drawn over a map, so --distances never is)."""
    unused = [
        "--" + name
        for name in ("perplexity", "distances")
        if name in given and not (name == "perplexity" and args.compare)
    ]
    if unused:
        print(
            f"note: {' and '.join(unused)} not used: {args.model} is a parametric t-SNE map, fitted with "
            f"perplexity={model.perplexity:g}, and is drawn as it is"
            + (" (with --compare, --perplexity sets the t-SNE from raw)" if "--perplexity" in unused else ""),
            file=sys.stderr,
        )


def cmd_visualize(args: argparse.Namespace) -> int:
    from aekit import plots
    from aekit._utils import InputError, own_ids
    from aekit.estimators import ParametricTSNE
    from aekit.params import PRESETS
    from aekit.visualize import AETSNE, MAP_FILES, compare_routes, plot_routes

    tsne_given: set[str] = {name for name in ("perplexity", "distances") if name in vars(args)}
    args.perplexity, args.distances = getattr(args, "perplexity", 30.0), getattr(args, "distances", "input")
    # with --model, --precision still sets its passes' arithmetic (load_model) and --image-shape the size a
    # folder of images is read at; the other flags only set up a model trained here
    given = [
        name
        for name in visualize_flags()
        if name in vars(args) and not (args.model and name in ("precision", "image_shape"))
    ] + (["preset"] if getattr(args, "preset", None) else [])  # a recipe for the AE trained here, too
    if args.model and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise InputError(
            f"{flags}: model flags set up the AE that visualize trains, but --model {args.model} is trained "
            f"already; drop {flags}, or drop --model to train one here"
        )
    # the map's files too: a previous run's map is never left beside this run's embedding
    files = ["embedding.npy", "embedding.csv", "tsne.png", "explore.html", *MAP_FILES] + (
        ["comparison.png"] if args.compare else []
    )
    if not args.model:  # a bad flag value: said before --out's files
        _estimator(args, None, visualize_flags(), labels_read=False, **PRESETS["dense20"])
    with _out_dir(args, files) as out:
        model = load_model(args) if args.model else None
        names: list[str] | None = []  # the features' names for the map's hover: the model's, else the CSV's
        if model is not None:
            X, y, ids = model_rows(args, model)
            names = _feature_names(model)
        else:
            X, y, ids = load_rows(args, names=names)
        if args.compare and y is None:
            raise InputError("--compare needs labels (k-NN accuracy); use MNIST or pass --label-column")
        # every AE here is the given model or one of the flags' (no other default model is trained)
        ae: Any = model if model is not None else _estimator(args, y, visualize_flags(), **PRESETS["dense20"])
        if model is None and getattr(args, "folder_image_shape", None) and not getattr(args, "image_shape", None):
            # the AE keeps the size its folder was read at: a saved map reads other folders at it
            ae.set_params(image_shape=args.folder_image_shape)
        if isinstance(model, ParametricTSNE):  # the model is the map: t-SNE on top would redraw it
            if args.save_map:
                raise InputError(
                    f"--save-map: {args.model} is a parametric t-SNE map already, and `aekit embed "
                    f"{shlex.quote(str(args.model))} DATA` places new points in it; drop --save-map"
                )
            emb, route = model.transform(X), "parametric t-SNE"
            _note_map_flags(args, model, tsne_given)
        else:
            vis = AETSNE(ae, perplexity=args.perplexity, distances=args.distances, random_state=args.seed)
            # a CSV's header as a frame's columns: an AE trained here names its features, as `train`'s does, so
            # that a saved map reads other CSVs' columns by name
            rows = _framed(X, names) if model is None else X
            emb, ae = vis.fit_transform(rows, y), vis.autoencoder_
            if model is None:
                _remember_columns(args, ae)  # a saved map's AE takes them again, as a trained model does
            route = f"AE({ae.net_.code_size}) → t-SNE"
        routes = {}
        if args.compare:
            assert y is not None  # checked above
            routes = compare_routes(
                X,
                y,
                **_two_d_route(args, ae, y),
                ae20=ae,
                perplexity=args.perplexity,
                random_state=args.seed,
                distances=args.distances,
            )
        # every file is written into the staging folder, then all are put in place together
        write_codes(emb, out.staged("embedding.npy"))
        write_codes(emb, out.staged("embedding.csv"), "tsne", ids=ids, labels=y)  # t-SNE coordinates, not codes
        with plots.offscreen():  # files only: no display, the user's backend untouched
            ax = plots.latent_scatter(emb, y, title=route, axis_labels=("t-SNE 1", "t-SNE 2"))
            plots.save(ax, out.staged("tsne.png"))
        html = _write_explore(
            out.staged("explore.html"),
            emb,
            X,
            y,
            _image_shape(args, X, ae),
            names,
            title=f"{route}, {args.data}",
            axis_labels=("t-SNE 1", "t-SNE 2"),
            ids=own_ids(ids),
        )
        if routes:
            assert y is not None  # --compare needs labels (checked above)
            with plots.offscreen():
                plots.save(plot_routes(routes, y), out.staged("comparison.png"))
        if args.save_map:
            vis.autoencoder_.set_params(verbose=0)  # the command's display is not the model's (save_training)
            vis.save(out.staging(MAP_FILES))
        # no page, comparison or map of a previous run (--overwrite) beside this embedding
        made = {"explore.html": html, "comparison.png": bool(routes), **dict.fromkeys(MAP_FILES, args.save_map)}
        out.commit(remove=[f for f, written in made.items() if not written])
    _say_visualized(args, emb.shape, html, routes)
    return 0


def _say_visualized(args: argparse.Namespace, shape: tuple[int, ...], html: bool, routes: dict[str, Any]) -> None:
    """What ``visualize`` wrote, and the routes' scores of ``--compare``."""
    from aekit.visualize import knn_shown

    where = Path(args.out)
    print(f"embedding {shape}: {where / 'embedding.npy'}; plot: {where / 'tsne.png'}")
    if html:
        print(f"interactive map: {where / 'explore.html'}")
    if args.save_map:
        print(f"t-SNE map saved: `aekit embed {shlex.quote(str(where))} DATA --out codes.csv` places new points in it")
    for name, r in routes.items():
        # a route's time counts its model's training: a given model's was spent before this run
        before = " before this run" if args.model else ""
        trained = f" (training {r['ae_seconds']:.1f} s{before})" if r.get("ae_seconds") else ""
        print(
            f"{name:<16} k-NN(5) {knn_shown(r['knn5_cv'])}  trustworthiness {r['trustworthiness']:.3f}  "
            f"{r['seconds']:.1f} s{trained}"
        )
    if routes:
        scale = next(iter(routes.values())).get("units_scale")
        if scale is not None:  # the units of the t-SNE from raw and of every trustworthiness
            print(f"routes measured on X after the model's scale={scale!r}, as it reads X (t-SNE from raw too)")
        print(f"comparison: {where / 'comparison.png'}")


def _two_d_route(args: argparse.Namespace, model: Any, y: np.ndarray) -> dict[str, Any]:
    """``compare_routes``' AE → 2-D panel: a given 2-D model's codes, the flags' AE with a 2-D code when no
    model is given, or (a given model with wider codes) no panel, said in one line."""
    from aekit.params import PRESETS

    if not args.model:
        ae2 = _estimator(args, y, visualize_flags(), **PRESETS["dense20"])
        return {"ae2": ae2.set_params(n_components=2, random_state=args.seed)}
    if model.net_.code_size == 2:
        return {"ae2": model}
    print(
        f"note: comparison without the AE → 2-D panel: --model has {model.net_.code_size}-D codes "
        "(a model with 2-D codes fills it, or drop --model to train one)",
        file=sys.stderr,
    )
    return {"ae2": None, "skip_2d": True}


def _image_shape(args: argparse.Namespace, X: np.ndarray, model: Any = None) -> tuple[int, ...] | None:
    """The images' shape for thumbnails: --image-shape, the shape a folder of images was read at, MNIST's 28x28,
    the model's (learnt from its images), or a .npy's images' shape; None: tabular data, or images no thumbnail
    shows (channels last, 2 or 4 channels)."""
    if getattr(args, "image_shape", None):
        return tuple(args.image_shape)
    if getattr(args, "folder_image_shape", None):  # set by load_rows
        return _drawable(args.folder_image_shape)
    if args.data in ("mnist", "mnist-test"):
        return (28, 28)
    from aekit.base import fitted_image_shape

    return _drawable(fitted_image_shape(model)) or _drawable(_file_image_shape(args.data))


def check_image_size(args: argparse.Namespace, X: Any, model: Any) -> None:
    """A folder of images read at a size ``model`` does not take: the --image-shape that it does, in one line."""
    from aekit._utils import InputError, square_shape
    from aekit.base import fitted_image_shape
    from aekit.sources import image_folder

    n, found = int(model.n_features_in_), _width(X)
    if n == found or not image_folder(args.data):
        return
    shape = fitted_image_shape(model) or square_shape(n)  # a dense model: the square grey or RGB images it holds
    fix = f"pass --image-shape {','.join(map(str, shape))} to resize them" if shape else "resize them to match"
    raise InputError(f"{args.data}: its images read as {found} values each, but the model takes {n}; {fix}")


def _write_explore(
    path: Path,
    emb: np.ndarray,
    X: np.ndarray,
    y: np.ndarray | None,
    shape: tuple[int, ...] | None,
    feature_names: Sequence[str] | None = None,
    **kw: Any,
) -> bool:
    """explore.html beside a visualization (``feature_names``: the hover's names of tabular features); False
    (with a note) when the optional packages are missing."""
    from aekit.explore import explore

    try:  # the explore extra is optional: without it visualize still writes its PNG
        import bokeh  # noqa: F401
        import PIL  # noqa: F401
    except ImportError as exc:
        print(f"note: {path.name} skipped ({exc.name} is not installed); pip install 'aekit[explore]'", file=sys.stderr)
        return False
    images, features = (X, None) if shape else (None, X)
    names = None if shape or not feature_names else feature_names
    explore(emb, y, images, path=path, image_shape=shape, features=features, feature_names=names, **kw)
    return True


def cmd_explore(args: argparse.Namespace) -> int:
    from aekit._utils import InputError
    from aekit.explore import check_writable

    if (args.model is None) == (args.embedding is None):
        raise InputError(
            "explore needs exactly one of --model (a trained model) or --embedding (a saved 2-D embedding .npy/.csv)"
        )
    check_writable(args.out, "--out")
    model = load_model(args) if args.model else None
    if args.error and model is not None:
        _needs_decoder(args, model, "--error")  # before any data is read or t-SNE run
    with _out_file(args, args.out) as (out, name):
        emb, X, y, ids, model, axes, names = _explore_points(args, model)
        title = args.title or f"{Path(args.embedding or args.model).name} on {args.data}"
        shape = _image_shape(args, X, model)
        errors = _explore_errors(args, model, X, ids) if args.error else None
        if _write_explore(
            out.staged(name),
            emb,
            X,
            y,
            shape,
            names,
            title=title,
            axis_labels=axes,
            max_thumbnails=args.max_thumbnails,
            ids=ids,
            values=errors,
            value_name="reconstruction error",
        ):
            out.commit()
    print(f"map of {len(emb):,} points: {args.out}")
    return 0


def _explore_errors(args: argparse.Namespace, model: Any, X: np.ndarray, ids: np.ndarray | None) -> np.ndarray:
    """``explore --error``: each row's reconstruction error, from the --model (as ``embed --error`` writes it), or
    the ``reconstruction_error`` column of the --embedding CSV, in the data's row order."""
    import numpy as np

    from aekit._utils import InputError
    from aekit.csvdata import csv_header, is_csv

    if model is not None:
        return -np.asarray(model.score_samples(X), dtype=np.float64)
    p = Path(args.embedding)
    header = (csv_header(p) or []) if is_csv(p) else []
    if "reconstruction_error" not in header:
        raise InputError(
            f"--error: --embedding {p} has no reconstruction_error column; write one with `aekit embed MODEL "
            f"DATA --out {p.with_suffix('.csv').name} --error`, or pass the --model instead of --embedding"
        )
    errors, emb_ids = read_codes_and_ids(p, column="reconstruction_error")
    if ids is not None:
        errors = aligned_by_id(errors, emb_ids, ids, f"--embedding {args.embedding}", args.data)
    return errors.reshape(-1)


def _explore_points(
    args: argparse.Namespace, model: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, Any, tuple[str, str], list[str] | None]:
    """The 2-D points of ``aekit explore``, the data, labels, the rows' ids (None: row numbers), the model (or
    None; ``model``: the --model, loaded), the axes' names and the features' names (None where the data name
    none)."""
    from aekit._utils import InputError, own_ids

    names: list[str] | None
    if args.embedding:
        names = []
        X, y, ids = load_rows(args, names=names)
        emb, emb_ids = read_codes_and_ids(args.embedding)
        if emb.ndim != 2 or emb.shape[1] != 2:
            raise InputError(
                f"--embedding {args.embedding} holds an array of shape {emb.shape}; expected 2-D coordinates "
                "(n, 2), as aekit visualize writes them (embedding.csv); for data or wider codes, pass --model"
            )
        if ids is not None:
            emb = aligned_by_id(emb, emb_ids, ids, f"--embedding {args.embedding}", args.data)
        model, axes = None, ("dim 1", "dim 2")
    else:
        model = model if model is not None else load_model(args)
        X, y, ids = model_rows(args, model)
        names = _feature_names(model)
        emb, axes = model.transform(X), ("z1", "z2")
        if emb.shape[1] != 2:  # a wider code: AE → t-SNE with this model
            from aekit.visualize import AETSNE

            emb, axes = (
                AETSNE(model, perplexity=args.perplexity, random_state=args.seed).fit_transform(X),
                ("t-SNE 1", "t-SNE 2"),
            )
    if len(emb) != len(X):
        raise InputError(
            f"--embedding {args.embedding} has {len(emb)} rows but {args.data} has {len(X)} samples; "
            "pass the data it was computed from (same --limit)"
        )
    return emb, X, y, own_ids(ids), model, axes, names or None  # row numbers: the page counts rows itself


def cmd_export(args: argparse.Namespace) -> int:
    from aekit import export
    from aekit._utils import InputError
    from aekit.estimators import load

    files = export.ONNX_FILES if args.format == "onnx" else export.PROJECTOR_FILES
    if args.format == "onnx" and Path(args.out).suffix.lower() == ".onnx":  # it would become a folder of that name
        raise InputError(
            f"--out {args.out}: --format onnx writes a folder ({', '.join(files)}); pass a folder name, "
            f"e.g. --out {Path(args.out).with_suffix('')}"
        )
    if args.format == "onnx" and args.data != "mnist-test":
        log.warning("--format onnx exports the model alone; %s is not read", args.data)
    with _out_dir(args, files) as out:
        est = load(args.model)
        if args.format == "onnx":
            written = export.onnx_files(est)  # a map without a decoder: the encoder alone
            paths = export.to_onnx(est, out.staging(written))
            out.commit(remove=[name for name in files if name not in written])  # no stale decoder beside it
        else:
            if args.data in ("mnist", "mnist-test") and int(est.n_features_in_) != 28 * 28:
                raise InputError(
                    f"--format projector embeds data: {args.data} (the default) has 784 features, the model "
                    f"takes {int(est.n_features_in_)}; pass the data to embed, e.g. aekit export MODEL data.csv "
                    "--format projector --out DIR"
                )
            X, y, ids = model_rows(args, est)
            shape = _image_shape(args, X, est)
            paths = export.to_projector(
                est.transform(X), out.staging(files), y, X if shape else None, image_shape=shape, ids=ids
            )
            made = {p.name for p in paths.values()}
            out.commit(remove=[name for name in files if name not in made])  # no stale sprite beside it
    print(f"{args.format}: " + ", ".join(str(Path(args.out) / p.name) for p in paths.values()))
    return 0
