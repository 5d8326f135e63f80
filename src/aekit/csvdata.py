"""CSV tables in: pandas parses the cells; aekit decides what the first row and columns mean.

aekit reads the first line on its own (to choose the delimiter and whether that line is a header),
hands the rest of the open file to pandas' C parser, and reads the file again only on error paths,
to name the line of a bad row. Quoted cells may hold the delimiter; nothing is evaluated or unpickled.
"""

from __future__ import annotations

import bz2
import contextlib
import contextvars
import csv
import gzip
import io
import itertools
import logging
import lzma
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO

import numpy as np

from aekit._utils import UNLABELLED, DataFormatError, InputError, from_spreadsheet_safe

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: what a CSV file's name ends with, and the compressions read as it is read (Python's own modules)
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
COMPRESSIONS: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}

_DELIMITERS = (",", ";", "\t")  # the first line's most frequent one; none of them: runs of blanks
_MISSING_LABELS = ("na", "n/a", "null", "none")  # words that may mean a missing label, or name a class
_INDEX = re.compile(r"-?[0-9]+")  # a column index; str.isdigit() would also take "²", which int() refuses


def is_csv(path: str | Path) -> bool:
    """Whether aekit reads ``path`` as a CSV table: a .csv, .tsv or .txt name, perhaps then .gz, .bz2 or .xz."""
    suffixes = [x.lower() for x in Path(path).suffixes[-2:]]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in CSV_SUFFIXES


class TooLarge(DataFormatError):
    """A CSV's content ran past the byte limit while it was read (raised as is, never taken for a parse error)."""


class _Capped(io.RawIOBase):
    """A file that refuses to be read past ``limit`` bytes of content: a small compressed file may hold a huge
    one, and one row of a large plain file may be huge (pandas would read it whole, also for ``nrows``)."""

    def __init__(self, fh: Any, path: Path, limit: int, compressed: bool) -> None:
        self._fh, self._path, self._limit, self._compressed = fh, path, limit, compressed

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = int(self._fh.readinto(buffer))
        if self._fh.tell() > self._limit:
            raise TooLarge(
                f"{self._path}: holds more than {self._limit:,} bytes of CSV"
                + (" once decompressed" if self._compressed else " before the rows asked for")
                + ", above the limit; convert it to .npy in parts"
            )
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return int(self._fh.seek(offset, whence))

    def tell(self) -> int:
        return int(self._fh.tell())

    def close(self) -> None:
        self._fh.close()
        super().close()


@contextlib.contextmanager
def open_text(path: Path, max_bytes: int | None = None) -> Iterator[TextIO]:
    """A CSV file as text (UTF-8, a byte-order mark dropped), decompressed as its last suffix says; its content
    is held to ``max_bytes`` as it is read (``TooLarge``), where it could hold more."""
    opener = COMPRESSIONS.get(path.suffix.lower())
    if opener is None and (max_bytes is None or path.stat().st_size <= max_bytes):
        with open(path, encoding="utf-8-sig", newline="") as fh:
            yield fh
        return
    raw: Any = (opener or open)(path, "rb")
    if max_bytes is not None:
        raw = _Capped(raw, path, max_bytes, compressed=opener is not None)
    try:
        with io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8-sig", newline="") as fh:
            yield fh
    except (OSError, EOFError, lzma.LZMAError) as exc:  # a damaged archive: one line naming the file
        if isinstance(exc, FileNotFoundError):
            raise
        why = f"the file is damaged or not {path.suffix}"
        raise DataFormatError(f"{path}: cannot decompress it ({exc}); {why}") from exc


def _some(names: list[str], k: int = 8) -> str:
    """The first ``k`` names and a count, for messages about wide tables."""
    shown = ", ".join(repr(n) for n in names[:k])
    return f"{shown}, ... ({len(names)} in all)" if len(names) > k else shown


def _floats(cells: np.ndarray | list[str] | str) -> np.ndarray | None:
    """Text cells as float64 (as numpy parses '1e3', ' 2 ', 'nan', 'inf'), or None if one is not a number."""
    try:  # through objects: a fixed-width text array takes its longest cell's size for every row
        return np.asarray(cells, dtype=object).astype(np.float64)
    except (ValueError, TypeError):
        return None


def _is_index_header(cells: list[str]) -> bool:
    """A first row ``0,1,2,...,n-1`` (n >= 3): column numbers, as pandas writes a frame's header, not data."""
    return len(cells) >= 3 and all(c.isdigit() for c in cells) and [int(c) for c in cells] == list(range(len(cells)))


def _first_row(path: Path, line: str) -> tuple[str | None, list[str] | None, int]:
    """The delimiter (None: runs of blanks), the header (None if the first row is data) and the column count."""
    line = line.strip("\r\n")
    if not line.strip():
        raise DataFormatError(
            f"{path}: the CSV file is empty or starts with a blank line; expected numbers, optionally a header row"
        )
    sep = max(_DELIMITERS, key=line.count) if any(d in line for d in _DELIMITERS) else None
    try:
        raw = line.split() if sep is None else next(csv.reader([line], delimiter=sep, skipinitialspace=True))
    except csv.Error as exc:
        raise DataFormatError(f"{path}: cannot read the first row ({exc}); check its quoting") from exc
    cells = [c.strip().strip('"') for c in raw]
    if _floats(cells) is not None and not _is_index_header(cells):  # the first row is data
        return sep, None, len(cells)
    # names as written before aekit's outputs marked formula-like ones ("'=c"): its CSVs read back as data
    return sep, [from_spreadsheet_safe(c) for c in cells], len(cells)


def _label_index(
    path: Path,
    label_column: str | int | None,
    header: list[str] | None,
    n_cols: int,
    param: str = "label_column",
) -> int | None:
    """A column's position (the label's, or ``param``'s), from its name or a (negative) index, e.g. "label", 0, -1
    or "-1"."""
    if label_column is None:
        return None
    values = {param: label_column}
    if isinstance(label_column, str) and _INDEX.fullmatch(label_column.strip()) is None:  # a name ("²" too)
        if header is None or label_column not in header:
            raise InputError(
                f"{{{param}}} is not a column of {path}; expected "
                + ("one of " + _some(header) if header else f"an index from 0 to {n_cols - 1} (no header row)"),
                param=param,
                values=values,
            )
        return header.index(label_column)
    if not isinstance(label_column, (str, int)) or isinstance(label_column, bool):
        raise InputError(f"{{{param}}} must be a column name or index", param=param, values=values)
    index = int(label_column)
    if not -n_cols <= index < n_cols:
        raise InputError(
            f"{{{param}}} is out of range for {n_cols} columns in {path}; expected -{n_cols} to {n_cols - 1}",
            param=param,
            values=values,
        )
    return index % n_cols


def _check_unique(path: Path, header: list[str]) -> None:
    """Refuse a header naming two columns alike: which one is the label (or a feature) would be a guess."""
    seen: dict[str, int] = {}
    for j, name in enumerate(header):
        if name and name in seen:
            raise DataFormatError(
                f"{path}: the header names columns {seen[name]} and {j} (counted from 0) both {name!r}; "
                "expected unique column names, rename one of them"
            )
        seen.setdefault(name, j)


class _Source(NamedTuple):
    """A CSV file as aekit reads it; rescanned on error paths only, to name a bad row's line."""

    path: Path
    sep: str | None  # None: runs of blanks
    header: list[str] | None  # None: the first row is data
    n_cols: int  # the first row's cell count
    max_rows: int | None = None  # the data rows read (None: all)
    max_bytes: int | None = None  # the content read at most (rescans on error paths stop there too)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number, cells) of each non-blank data row read, as pandas counts them."""
        try:
            with open_text(self.path, self.max_bytes) as fh:
                reader = csv.reader(fh, delimiter=self.sep or " ", skipinitialspace=True)
                data = 0
                for cells in itertools.islice(reader, 1 if self.header else 0, None):
                    if self.sep is None:
                        cells = [c for c in cells if c.strip()]  # runs of blanks delimit, as pandas' sep=r"\s+"
                    if cells and (len(cells) > 1 or cells[0].strip()):  # pandas skips blank lines
                        if self.max_rows is not None and data >= self.max_rows:
                            return
                        data += 1
                        yield reader.line_num, cells
        except (csv.Error, UnicodeDecodeError, DataFormatError):
            return

    def where(self, row: int) -> str:
        """'data row 3 (counted from 0; line 5)': a table row and, where it can be counted, its line."""
        line = next(itertools.islice(self.rows(), row, None), (None,))[0]
        return f"data row {row} (counted from 0{f'; line {line}' if line else ''})"

    def check_ragged(self) -> None:
        """Refuse a row with a cell count other than the first row's (pandas pads short rows with empty cells)."""
        for row, (line, cells) in enumerate(self.rows()):
            if len(cells) != self.n_cols:
                raise DataFormatError(
                    f"{self.path}: data row {row} (counted from 0; line {line}) has {len(cells)} cells, the first row "
                    f"{self.n_cols}: the number of columns changed; give every row the same number of cells"
                )


def _parse(src: _Source, fh: TextIO, text: Sequence[int] = (), max_rows: int | None = None) -> pd.DataFrame:
    """The data rows as pandas reads them (the first ``max_rows``, None: all): numbers where a whole column
    parses, text elsewhere and in the columns ``text`` (ids and labels: "007" is no 7)."""
    import pandas as pd  # here, not at the top: importing pandas takes seconds that .npy users need not wait

    # pandas before 3.1 rounds some floats (e.g. subnormals) off unless asked for its round-trip converter
    precision = "round_trip" if tuple(map(int, pd.__version__.split(".")[:2])) < (3, 1) else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)  # a column of mixed chunks is text: refused below
            table = pd.read_csv(
                fh,
                sep=src.sep or r"\s+",
                header=None,
                na_filter=False,
                skipinitialspace=True,
                engine="c",
                float_precision=precision,
                dtype=dict.fromkeys(text, str) or None,
                nrows=max_rows,
            )
    except pd.errors.EmptyDataError as exc:
        raise DataFormatError(f"{src.path}: no data rows; expected numbers below the header row") from exc
    except (UnicodeDecodeError, TooLarge):
        raise
    except (ValueError, OverflowError) as exc:  # pandas' ParserError: one line naming the file, not its traceback
        src.check_ragged()
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise DataFormatError(
            f"{src.path}: cannot parse the CSV ({detail.removeprefix('Error tokenizing data. C error: ')}); "
            "check its quoting and that every row has the same number of cells"
        ) from exc
    if table.shape[1] != src.n_cols:
        src.check_ragged()
        raise DataFormatError(
            f"{src.path}: the first row has {src.n_cols} cells, the others {table.shape[1]}; "
            "give every row the same number of cells"
        )
    return table


#: tables wider than this are parsed by numpy first: pandas keeps ~1 kB per column, so a 6M-cell row took ~1 GB
WIDE = 4096


def _parse_wide(
    src: _Source, fh: TextIO, label_idx: int | None, max_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A wide all-number table through ``numpy.loadtxt`` (row by row into one array, memory ~ the data);
    None for anything it does not read plainly (a text cell, odd quoting, a pandas index): pandas' path then
    reads it as before, with its messages."""
    import pandas as pd

    if src.header is not None and src.header[0] in ("", "Unnamed: 0"):
        return None
    start = fh.tell()
    columns = None if label_idx is None else [j for j in range(src.n_cols) if j != label_idx]
    options: dict[str, Any] = {
        "delimiter": src.sep,
        "comments": None,
        "quotechar": '"',
        "ndmin": 2,
        "max_rows": max_rows,
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": pandas' path says it better
            X = np.loadtxt(fh, dtype=np.float64, usecols=columns, **options)
            if label_idx is not None:
                fh.seek(start)
                # objects: a fixed-width text array would take the longest label's size for every row
                labels = np.loadtxt(fh, dtype=object, usecols=[label_idx], **options).reshape(-1)
    except TooLarge:
        raise
    except (ValueError, IndexError):
        fh.seek(start)
        return None
    if X.shape[0] == 0 or X.shape[1] != src.n_cols - (label_idx is not None):
        fh.seek(start)
        return None
    return np.ascontiguousarray(X), None if label_idx is None else _labels(src, pd.Series(labels, dtype=object))


def _is_pandas_index(table: pd.DataFrame, header: list[str] | None, label_idx: int | None) -> bool:
    """Is the first column the index ``DataFrame.to_csv()`` writes by default (``index=True``)?

    pandas leaves that column's header cell empty ("Unnamed: 0" once read back and written again) and names
    the others (or numbers them 0, 1, 2, ...); its values are row numbers, other integers, or text (names,
    dates). A nameless first column of other numbers (0.5, 1.25) is data and kept.
    """
    if header is None or len(header) < 2 or header[0] not in ("", "Unnamed: 0") or label_idx == 0:
        return False
    rest = header[1:]
    if _floats(rest) is not None and not _is_index_header(rest):  # a first row of data, not pandas' header
        return False
    first = table[0]
    if first.dtype.kind in "iu":
        return True
    values = first.to_numpy(np.float64) if first.dtype.kind == "f" else _floats(first.to_numpy(object))
    return values is None or bool(np.all(values == np.round(values)))  # None: text, such as names or dates


def _features(src: _Source, table: pd.DataFrame, columns: list[int], label_given: bool = True) -> np.ndarray:
    """The feature columns as C-ordered float64 ``(n_samples, len(columns))``; a text cell is refused with its place.

    A column of text alone (row ids, names, the labels) gets the fix that names it: ``id_column`` or
    ``label_column`` (the latter only while no label column is given).
    """
    X = np.empty((len(table), len(columns)))
    for k, j in enumerate(columns):
        column = table[j]
        values = column.to_numpy(np.float64) if column.dtype.kind in "biuf" else _floats(column.to_numpy(object))
        if values is None:
            cells = column.astype(str).to_numpy(object)
            row = next(i for i, c in enumerate(cells) if _floats(c) is None)
            if not cells[row].strip():
                src.check_ragged()  # pandas pads a short row with empty cells
            name = f" ({src.header[j]!r})" if src.header else ""
            cell = str(cells[row])
            what = f"could not convert string {cell!r} to a number" if cell.strip() else "an empty cell"
            where = f"{src.path}: {what} at {src.where(row)}, column {j}{name} (counted from 0); "
            if _DECIMAL_COMMA.fullmatch(cell.strip()):  # e.g. a CSV written with sep=";", decimal=","
                if src.sep in (";", "\t"):
                    sep = "\\t" if src.sep == "\t" else src.sep
                    fix = (
                        "if the comma is a decimal comma, re-save the CSV with '.' decimals (pandas: "
                        f"pd.read_csv(path, sep='{sep}', decimal=',').to_csv(new_path, index=False))"
                    )
                else:  # in a comma CSV the cell was quoted: a thousands separator as likely as a decimal comma
                    fix = "write the numbers without commas (no thousands separators, '.' for decimals)"
                raise DataFormatError(
                    where + f"{cell.strip()!r} is a number with a comma (a decimal comma or a thousands "
                    f"separator); aekit reads plain numbers: {fix}"
                )
            if any(_floats(c) is not None for c in cells[:1000]):  # a number column with a stray cell
                fix = (
                    "fill the missing values (e.g. pandas' fillna, or scikit-learn's SimpleImputer) or drop those rows"
                    if not cell.strip()
                    else "the CSV must hold numbers only besides the id and label columns (one header row allowed)"
                )
                raise DataFormatError(where + fix)
            header = src.header[j] if src.header else None
            shown = repr(header) if header is not None and not set("{}") & set(header) else str(j)  # braces: index
            fix = f"if it holds row ids, pass {{id_column={shown}}}"
            if not label_given:
                fix += f"; if it holds the labels, {{label_column={shown}}}"
            raise DataFormatError(
                where + f"a text column is no feature: {fix}; else drop it or encode it as numbers",
                param="id_column",
                values={"id_column": None, "label_column": None},
            )
        X[:, k] = values
    return X


def _labels(src: _Source, column: pd.Series) -> np.ndarray:
    """Integer labels as int64, other numbers as float64, text labels as strings (the estimators encode them).

    An empty cell (or NaN) is an unlabelled sample, -1, said once: new rows to embed, and rows awaiting a
    label in semi-supervised training, usually have none. NA, null, none are refused: a class's name or a
    missing label, the user says which."""
    if column.dtype.kind in "iuf":
        y = column.to_numpy(np.float64)
        missing = np.flatnonzero(np.isnan(y))
        if missing.size:
            src.check_ragged()  # pandas pads a short row with empty cells
            _say_unlabelled(src, missing)
            y[missing] = UNLABELLED
    else:
        # text as Python strings (objects): a fixed-width array would take the longest cell's size per row
        text = column.astype(str).str.strip()
        raw, lower = text.to_numpy(object), text.str.lower()
        missing = np.flatnonzero(lower.isin(_MISSING_LABELS).to_numpy())
        if missing.size:  # (a class named "none" or "NA" is not guessed to be missing: said, with the fix)
            src.check_ragged()  # pandas pads a short row with empty cells
            raise DataFormatError(
                f"{src.path}: label {raw[missing[0]]!r} at {src.where(int(missing[0]))}: a missing label? write -1 "
                "(or leave the cell empty) for an unlabelled row, or name the class otherwise"
            )
        empty = np.flatnonzero(lower.isin(("", "nan")).to_numpy())
        if empty.size:
            src.check_ragged()  # pandas pads a short row with empty cells
            _say_unlabelled(src, empty)
            raw[empty] = str(UNLABELLED)
        # zero-padded class numbers ("007", "01") are names: as numbers "007" and "7" would be one class, and
        # predictions would come back as 7
        parsed = None if text.str.fullmatch(r"[+-]?0\d.*").any() else _floats(raw)
        if parsed is None:  # text labels ("cat", "c5"), as written before an output marked formula-like ones
            return np.array([from_spreadsheet_safe(v) for v in raw], dtype=object)
        y = parsed
    integral = np.all(np.isfinite(y)) and np.all(y == np.round(y)) and np.all(np.abs(y) < 2**63)  # (1e300: float)
    return y.astype(np.int64) if integral else y


#: True inside ``reading_own_csv``: a CSV aekit wrote itself (codes) is read without notes meant for data
_OWN_CSV = contextvars.ContextVar("own_csv", default=False)


@contextlib.contextmanager
def reading_own_csv() -> Iterator[None]:
    """Read a CSV that aekit wrote (``embed``'s codes) without the notes on empty label cells and columns
    left out: its labels and predictions are not used where codes are read, and the user wrote neither."""
    token = _OWN_CSV.set(True)
    try:
        yield
    finally:
        _OWN_CSV.reset(token)


def _say_unlabelled(src: _Source, missing: np.ndarray) -> None:
    if _OWN_CSV.get():
        return
    log.warning(
        "%s: %d row%s without a label read as unlabelled (-1), the first at %s",
        src.path,
        missing.size,
        "" if missing.size == 1 else "s",
        src.where(int(missing[0])),
    )


def read_csv(path: Path, label_column: str | int | None, *, max_bytes: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A CSV file's features ``X (n_samples, n_features)`` float64 and labels ``y (n_samples,)`` or None.

    The delimiter is the first line's most frequent of ``,`` ``;`` tab (none: blanks); a first row that is
    not all numbers, or is pandas' column numbers ``0,1,2,...``, is a header; a nameless first column of
    integers or text (pandas' index) is dropped with a warning; ``label_column`` (name or index) is taken
    out as ``y``: int64 if every label is an integer, else float64, else text.
    """
    X, y, _, _ = read_csv_rows(path, label_column, max_bytes=max_bytes)
    return X, y


#: the most of a CSV read to find its header row (its first line)
HEADER_BYTES = 1 << 26


def csv_header(path: Path) -> list[str] | None:
    """The header row's names of a CSV file as ``read_csv_rows`` reads it; None without one (or unreadable)."""
    try:
        with open_text(path, HEADER_BYTES) as fh:
            return _first_row(path, fh.readline())[1]
    except (OSError, UnicodeDecodeError, InputError):
        return None


def read_csv_rows(
    path: Path,
    label_column: str | int | None,
    *,
    max_bytes: int,
    id_column: str | int | None = None,
    keep: Sequence[str] | None = None,
    max_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, list[str] | None]:
    """``read_csv`` plus the rows' ids ``(n_samples,)`` and the features' names.

    Ids: the ``id_column`` (name or index; not a feature), else a pandas index column, else None; int64 when
    they all are integers, else text. Names: the header's cells of the feature columns, None without a header
    or with pandas' column numbers ``0,1,2,...`` (no names). ``keep``: names of the only feature columns to read,
    when the header names any of them (a model's features: other columns, text ones too, are left out).
    ``max_rows``: read the first data rows only (the rest of the file is never parsed). A name ending in .gz,
    .bz2 or .xz is decompressed as it is read."""
    size = path.stat().st_size
    if size > max_bytes and max_rows is None and path.suffix.lower() not in COMPRESSIONS:  # said before any read
        raise DataFormatError(
            f"{path}: {size:,} bytes of CSV, above the {max_bytes:,}-byte limit; convert it to .npy in parts"
        )
    try:
        with open_text(path, max_bytes) as fh:
            src = _Source(path, *_first_row(path, fh.readline()), max_rows, max_bytes)
            if src.header is not None:
                _check_unique(path, src.header)
            label_idx = _label_index(path, label_column, src.header, src.n_cols)
            id_idx = _label_index(path, id_column, src.header, src.n_cols, param="id_column")
            if id_idx is not None and id_idx == label_idx:
                raise InputError(
                    f"{{id_column}} and {{label_column}} name the same column of {path}; "
                    "ids and labels are different columns",
                    param="id_column",
                    values={"id_column": id_column, "label_column": label_column},
                )
            if src.header is None:
                fh.seek(0)  # the first row is data
            wide = _parse_wide(src, fh, label_idx, max_rows) if src.n_cols > WIDE and id_idx is None else None
            if wide is not None:
                return (*wide, None, _names(src.header, [j for j in range(src.n_cols) if j != label_idx]))
            text = tuple(j for j in (id_idx, label_idx) if j is not None)
            table = _parse(src, fh, text=text, max_rows=max_rows)
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"{path}: expected UTF-8 text, found undecodable bytes ({exc}); save the CSV as UTF-8"
        ) from exc
    index_col = 0 if id_idx != 0 and _is_pandas_index(table, src.header, label_idx) else None
    if index_col is not None and keep is None:  # (a model that names its features: no feature is lost here)
        log.warning(
            "%s: its first column has no name and holds integers or text (a pandas index, as DataFrame.to_csv() "
            "writes by default); it is not used as a feature%s (write the CSV with to_csv(index=False) to avoid this)",
            path,
            "" if id_idx is not None else " but as the rows' ids",
        )
    columns = [j for j in range(src.n_cols) if j not in (label_idx, index_col, id_idx)]
    ids_from = id_idx if id_idx is not None else index_col
    unnamed = [flag for flag, idx in (("--id-column", ids_from), ("--label-column", label_idx)) if idx is None]
    columns = _kept(path, src.header, columns, keep, unnamed)
    X = _features(src, table, columns, label_idx is not None)
    y = None if label_idx is None else _labels(src, table[label_idx])
    return X, y, None if ids_from is None else _ids(table[ids_from]), _names(src.header, columns)


def _kept(
    path: Path, header: list[str] | None, columns: list[int], keep: Sequence[str] | None, unnamed: Sequence[str] = ()
) -> list[int]:
    """The ``columns`` whose header names are in ``keep``, the others said to be left out; all of them when the
    file names none of ``keep`` (data read by position)."""
    names = _names(header, columns)
    if keep is not None and names is not None and len(set(keep)) < len(keep) and set(keep) & set(names):
        repeated = next(n for n, count in Counter(keep).items() if count > 1)
        raise DataFormatError(
            f"{path}: the model names its feature {repeated!r} more than once, so its columns cannot be picked from "
            "this file by name; pass the columns in the model's order in a file without a header row"
        )
    if keep is not None and names is None and len(columns) == len(keep):
        log.warning(
            "%s %s: its %d columns are read by position as the model's features %s",
            path,
            "has no header row" if header is None else "names its columns by number (pandas' 0,1,2,...)",
            len(columns),
            listed(list(keep)),
        )
    if keep is None or names is None or not set(keep) & set(names):
        return columns
    wanted = set(keep)
    warn_left_out(path, [n for n in names if n not in wanted], unnamed)
    return [j for j, n in zip(columns, names, strict=True) if n in wanted]


def listed(names: Sequence[str]) -> str:
    """Column names for a message: the first five, quoted, and how many more."""
    return ", ".join(repr(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def warn_left_out(where: str | Path, extra: Sequence[str], unnamed: Sequence[str] = ()) -> None:
    """Say which columns of ``where`` are not the model's features and are not read; ``unnamed``: the flags
    (``--id-column``, ``--label-column``) not given, which would keep such a column of ids or labels."""
    if extra and not _OWN_CSV.get():
        kept_as = {"--id-column": "ids", "--label-column": "labels"}
        hint = f"; {' or '.join(unnamed)} NAME keeps one as the rows' {' or '.join(kept_as[f] for f in unnamed)}"
        log.warning(
            "%s: column(s) %s are not among the model's features and are left out%s",
            where,
            listed(extra),
            hint if unnamed else "",
        )


#: column names that say labels (lower case, exact: "y" or "is_member" are as often features)
LABEL_NAMES = frozenset(
    {"label", "labels", "target", "targets", "class", "outcome", "anomaly", "outlier", "is_anomaly", "is_outlier"}
    | {"fraud", "is_fraud"}
)


def warn_named_like_labels(where: str | Path, names: Sequence[str], given: Sequence[str]) -> None:
    """Say which feature columns of ``where`` are named as labels or row ids, when ``given`` (the flags passed of
    ``--label-column``, ``--id-column``) leaves that flag out: a trial trained on its own labels and ids."""
    import shlex

    if _OWN_CSV.get():
        return
    flags = {
        "--label-column": [n for n in names if n.lower() in LABEL_NAMES],
        "--id-column": [n for n in names if n.lower() == "id" or n.lower().endswith(("_id", "-id", " id"))],
    }
    for flag, found in flags.items():
        if found and flag not in given:
            what = "labels" if flag == "--label-column" else "ids"
            log.warning(
                "%s: %s read as %s, but %s; pass %s %s to read %s as the rows' %s (or rename %s to keep %s)",
                where,
                f"column {listed(found)} is" if len(found) == 1 else f"columns {listed(found)} are",
                "a feature" if len(found) == 1 else "features",
                f"the name says {what}" if len(found) == 1 else f"the names say {what}",
                flag,
                shlex.quote(found[0]),
                "it" if len(found) == 1 else "one",
                what,
                "it" if len(found) == 1 else "them",
                "it a feature" if len(found) == 1 else "them features",
            )


def _names(header: list[str] | None, columns: list[int]) -> list[str] | None:
    """The header's names of ``columns``; None where the file names none (no header, pandas' 0,1,2,...)."""
    if header is None or _is_index_header(header) or _is_index_header(header[1:]):
        return None
    return [header[j] for j in columns]


def _ids(column: pd.Series) -> np.ndarray:
    """Row ids as int64 when every one is an integer written as such (no leading zeros, within int64), else
    as text, as written in the file: "007" and "7" stay two ids, a 20-digit id keeps its digits."""
    if column.dtype.kind in "iu":  # a pandas index column, parsed as numbers
        return column.to_numpy(np.int64)
    text = column.astype(str).str.strip()
    if text.str.fullmatch(_INTEGER.pattern).all() and text.str.len().max() <= 18:  # 18 digits: within int64
        return text.to_numpy(np.int64)
    # Python strings (a fixed-width array takes the longest id's size per row), unmarked as _labels' are
    return np.array([from_spreadsheet_safe(v) for v in text.to_numpy(object)], dtype=object)


_DECIMAL_COMMA = re.compile(r"[-+]?[0-9]*,[0-9]+([eE][-+]?[0-9]+)?")
_INTEGER = re.compile(r"0|-?[1-9][0-9]*")  # an integer as str(int) writes it
