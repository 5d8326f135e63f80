"""Fuzzing the parsers: any bytes give a valid result or a declared error, never anything else.

Every parser (``read_idx``, ``parse_idx_bytes``, ``load_array`` for ``.npy``,
``.npz`` and ``.csv``) is fed random bytes and mutated valid files. The only
exceptions allowed out are ``InputError`` and its subclass ``DataFormatError``;
a result must be a well-formed array. A smoke run (``SMOKE`` examples per
parser, ``$AEKIT_FUZZ_SMOKE`` to change) is part of the default suite;
``-m slow`` runs ``FULL`` per parser.

Below the fuzzers, targeted tests pin down the hostile cases one by one.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import warnings
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aekit._utils import DataFormatError, InputError
from aekit.data import load_array, load_idx_pair, parse_idx_bytes, read_idx
from aekit.mnist import MNIST_FILES

SMOKE = int(os.environ.get("AEKIT_FUZZ_SMOKE", 60))  # examples per parser in the default suite
FULL = 2000
IDX_CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _idx(arr: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=IDX_CODES[code]).tobytes()


# ----------------------------------------------------------------------------- strategies

small_shapes = st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple)
U32_EDGES = [0, 1, 2, 255, 256, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]


@st.composite
def valid_idx(draw: st.DrawFn) -> bytes:
    code = draw(st.sampled_from(sorted(IDX_CODES)))
    shape = draw(small_shapes)
    arr = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) % 100
    return _idx(arr.astype(IDX_CODES[code]), code)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes], words: bool = True) -> bytes:
    """``base`` with 0-4 edits, biased towards the header."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(
            st.sampled_from(
                ["flip", "set", "u32", "truncate", "insert", "delete", "append"]
                if words
                else ["flip", "set", "truncate", "insert", "delete", "append"]
            )
        )
        pos = draw(st.one_of(st.integers(0, 40), st.integers(0, max(len(data), 1)))) % (len(data) + 1)
        if kind == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif kind == "u32":
            at = 4 * draw(st.integers(0, 4))
            value = draw(st.one_of(st.sampled_from(U32_EDGES), st.integers(0, 2**32 - 1)))
            data[at : at + 4] = struct.pack(">I", value)
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            data += draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


idx_inputs = st.one_of(st.binary(max_size=64), mutated(valid_idx()), valid_idx())

NPY_DTYPES = [
    "<u1",
    "<i2",
    ">i4",
    "<i8",
    "<f2",
    "<f4",
    ">f8",
    "|b1",
    "<c8",
    "<U3",
    "|S2",
    "<M8[s]",
    [("a", "<f4"), ("b", "<i2")],
]


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


@st.composite
def valid_npy(draw: st.DrawFn) -> bytes:
    dtype = np.dtype(draw(st.sampled_from(NPY_DTYPES)))
    shape = draw(st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple))
    arr = np.zeros(shape, dtype=dtype)
    if dtype.kind in "iuf":
        arr = (np.arange(arr.size).reshape(shape) % 7).astype(dtype)
    if draw(st.booleans()) and arr.ndim > 1:
        arr = np.asfortranarray(arr)
    return _npy_bytes(arr)


HEADER_SHAPES = [
    "()",
    "(3,)",
    "(2, 2)",
    "(0, 5)",
    "(5, 0)",
    "(-1, 2)",
    "(2**40,)",
    "(0, 2**70)",
    "(99999999999, 99999999999)",
    "(1.5, 2)",
    "('a',)",
    "[2, 2]",
    "((2,),)",
    "(True, 2)",
    "(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)",
]
HEADER_DESCRS = [
    "'<f4'",
    "'<f8'",
    "'|u1'",
    "'|O'",
    "'x'",
    "'<U0'",
    "'|V0'",
    "'<f0'",
    "[('a', '<f4')]",
    "[('a', '|O')]",
    "3",
    "'<i8'",
    "'>c16'",
    "''",
]


@st.composite
def npy_headers(draw: st.DrawFn) -> bytes:
    """Hand-made headers: odd shapes, dtypes and versions, followed by some payload."""
    shape = draw(
        st.one_of(
            st.sampled_from(HEADER_SHAPES),
            st.lists(st.integers(-3, 2**64), min_size=1, max_size=3).map(lambda s: f"({', '.join(map(str, s))},)"),
        )
    )
    descr = draw(st.sampled_from(HEADER_DESCRS))
    fortran = draw(st.sampled_from(["False", "True", "1", "'x'"]))
    text = draw(
        st.sampled_from(
            [
                "{{'descr': {d}, 'fortran_order': {f}, 'shape': {s}, }}",
                "{{'descr': {d}, 'shape': {s}}}",
                "{{'descr': {d}, 'fortran_order': {f}, 'shape': {s}, 'x': 1}}",
                "[{d}, {f}, {s}]",
                "{{{{{{",
            ]
        )
    )
    header = text.format(d=descr, f=fortran, s=shape).encode("latin1")
    version = draw(st.sampled_from([(1, 0), (2, 0), (3, 0), (0, 0), (9, 9)]))
    size = struct.pack("<H", len(header) + 1) if version[0] < 2 else struct.pack("<I", len(header) + 1)
    payload = draw(st.one_of(st.binary(max_size=64), st.just(b"\x00" * 16)))
    return b"\x93NUMPY" + bytes(version) + size + header + b"\n" + payload


npy_inputs = st.one_of(st.binary(max_size=64), mutated(valid_npy(), words=False), valid_npy(), npy_headers())

NPZ_NAMES = ["X.npy", "y.npy", "data.npy", "labels.npy", "other.npy", "X", "sub/X.npy", "../X.npy", "x.NPY"]


@st.composite
def npz_files(draw: st.DrawFn) -> bytes:
    members = draw(
        st.lists(
            st.tuples(
                st.sampled_from(NPZ_NAMES),
                st.one_of(valid_npy(), npy_headers(), mutated(valid_npy(), words=False), st.binary(max_size=32)),
            ),
            max_size=3,
        )
    )
    if draw(st.booleans()):  # a well-formed X (and sometimes y) so that some files are valid
        n = draw(st.integers(0, 3))
        members.insert(0, ("X.npy", _npy_bytes(np.ones((n, 2), np.float32))))
        if draw(st.booleans()):
            members.append(
                (
                    "y.npy",
                    _npy_bytes(np.arange(draw(st.sampled_from([n, n + 1, 0])) if draw(st.booleans()) else np.int64(3))),
                )
            )
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", compression=draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))) as zf,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", UserWarning)  # duplicate member names are part of the game
        for name, blob in members:
            zf.writestr(name, blob)
    return draw(mutated(st.just(buf.getvalue()), words=False)) if draw(st.booleans()) else buf.getvalue()


npz_inputs = st.one_of(st.binary(max_size=64), npz_files())

CELLS = [
    "0",
    "1",
    "-2.5",
    "1e3",
    "3.",
    ".5",
    "",
    " ",
    "nan",
    "inf",
    "1e999",
    "abc",
    "x1",
    '"1"',
    '"a,b"',
    "label",
    "#",
    "1_0",
    "0x10",
    "\x00",
    "é",
    "1;2",
]


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    delim = draw(st.sampled_from([",", ";", "\t", " ", "|"]))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    rows = draw(
        st.lists(
            st.lists(
                st.one_of(st.sampled_from(CELLS), st.floats(allow_nan=False, width=32).map(repr)),
                min_size=1,
                max_size=4,
            ),
            max_size=5,
        )
    )
    text = eol.join(delim.join(r) for r in rows) + draw(st.sampled_from(["", eol]))
    prefix = draw(st.sampled_from(["", "\ufeff", "a,b,label" + eol]))
    enc = draw(st.sampled_from(["utf-8", "utf-16", "latin-1"]))
    return (prefix + text).encode(enc, errors="replace")


csv_inputs = st.tuples(
    st.one_of(st.binary(max_size=64), csv_files()), st.sampled_from([None, 0, -1, 2, 99, "label", "nope", "1"])
)


# ----------------------------------------------------------------------------- properties


def _attempt(fn, *args, **kwargs):
    """Run a parser; return the result or the (declared) error. Anything else fails the test."""
    try:
        return fn(*args, **kwargs)
    except InputError as exc:  # DataFormatError is a subclass
        assert str(exc), "an error without a message"
        return exc


def _check_idx_result(out: object) -> None:
    if isinstance(out, Exception):
        return
    assert isinstance(out, np.ndarray) and 1 <= out.ndim <= 8
    assert out.dtype.isnative and out.dtype.str[1:] in {c[1:] for c in IDX_CODES.values()}


def _check_array_result(out: object) -> None:
    if isinstance(out, Exception):
        return
    X, y = out
    assert isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[0] >= 1 and X.shape[1] >= 1, getattr(X, "shape", X)
    assert X.dtype.kind in "biuf"
    if X.dtype.kind == "f":
        assert np.isfinite(X).all()
    if y is not None:
        assert isinstance(y, np.ndarray) and y.ndim == 1 and len(y) == len(X)
        assert y.dtype.kind != "f" or np.isfinite(y).all()


class Fuzz:
    """One parser under test: feeds an input through it and keeps score."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.outcomes: Counter[str] = Counter()

    def record(self, out: object) -> None:
        self.outcomes["error" if isinstance(out, Exception) else "ok"] += 1

    def idx(self, data: bytes) -> None:
        from_bytes = _attempt(parse_idx_bytes, data, "fuzz.idx")
        _check_idx_result(from_bytes)
        raw, gz = self.tmp / "f.idx", self.tmp / "f.idx.gz"
        raw.write_bytes(data)
        gz.write_bytes(gzip.compress(data, mtime=0))
        # the three ways in agree: same array, or all three refuse
        for path in (raw, gz):
            out = _attempt(read_idx, path)
            _check_idx_result(out)
            assert isinstance(out, Exception) == isinstance(from_bytes, Exception), (path.name, out, from_bytes)
            if not isinstance(out, Exception):
                assert out.dtype == from_bytes.dtype and np.array_equal(out, from_bytes, equal_nan=True)
        self.record(from_bytes)

    def idx_gzip_damaged(self, data: bytes) -> None:
        """A damaged .gz wrapper (bytes of a valid gzip file mutated)."""
        p = self.tmp / "d.idx.gz"
        p.write_bytes(data)
        out = _attempt(read_idx, p)
        _check_idx_result(out)
        self.record(out)

    def _array(self, name: str, data: bytes, label_column: object = None) -> None:
        p = self.tmp / name
        p.write_bytes(data)
        out = _attempt(load_array, p, label_column=label_column)
        _check_array_result(out)
        self.record(out)

    def npy(self, data: bytes) -> None:
        self._array("f.npy", data)

    def npz(self, data: bytes) -> None:
        self._array("f.npz", data)

    def csv(self, case: tuple[bytes, object]) -> None:
        self._array("f.csv", *case)


gzip_idx_inputs = mutated(valid_idx().map(lambda b: gzip.compress(b, mtime=0)), words=False)

PARSERS = {
    "idx": (idx_inputs, Fuzz.idx),
    "idx_gzip": (gzip_idx_inputs, Fuzz.idx_gzip_damaged),
    "npy": (npy_inputs, Fuzz.npy),
    "npz": (npz_inputs, Fuzz.npz),
    "csv": (csv_inputs, Fuzz.csv),
}


def _fuzz(name: str, n: int, tmp: Path) -> Counter[str]:
    strategy, method = PARSERS[name]
    fuzz = Fuzz(tmp)

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(data: object) -> None:
        method(fuzz, data)

    run()
    return fuzz.outcomes


@pytest.mark.parametrize("name", PARSERS)
def test_fuzz_smoke(name, tmp_path):
    outcomes = _fuzz(name, SMOKE, tmp_path)
    assert sum(outcomes.values()) >= SMOKE
    assert outcomes["error"] > 0  # the inputs do reach the refusals


@pytest.mark.slow
@pytest.mark.parametrize("name", PARSERS)
def test_fuzz_full(name, tmp_path):
    outcomes = _fuzz(name, FULL, tmp_path)
    print(f"{name}: {dict(outcomes)}")
    assert sum(outcomes.values()) >= FULL
    assert outcomes["error"] > 0 and outcomes["ok"] > 0  # both paths exercised


@settings(max_examples=SMOKE, deadline=None, database=None)
@given(
    rows=st.lists(
        st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=3, max_size=3), min_size=1, max_size=6
    ),
    delim=st.sampled_from([",", ";", "\t"]),
    eol=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    header=st.booleans(),
)
def test_csv_well_formed_roundtrip(tmp_path_factory, rows, delim, eol, bom, header):
    """Numbers written with any supported delimiter / line ending / BOM / header come back exactly."""
    expected = np.array(rows, dtype=np.float64)
    text = ("\ufeff" if bom else "") + (delim.join(["a", "b", "c"]) + eol if header else "")
    text += eol.join(delim.join(repr(float(v)) for v in r) for r in rows) + eol
    p = tmp_path_factory.mktemp("csv") / "d.csv"
    p.write_bytes(text.encode())
    X, y = load_array(p)
    assert y is None and X.shape == expected.shape and np.array_equal(X, expected)


# ----------------------------------------------------------------------------- targeted cases: IDX


def test_idx_gzip_bytes_passed_as_raw(tmp_path):
    """Compressed bytes given to the raw parser: refused with a hint to decompress."""
    blob = gzip.compress(_idx(np.zeros((2, 3), np.uint8)))
    with pytest.raises(DataFormatError, match="gzip") as info:
        parse_idx_bytes(blob, "x.idx")
    assert "x.idx" in str(info.value)
    # the same bytes on disk are sniffed and read, whatever the file is called
    (tmp_path / "no-suffix").write_bytes(blob)
    assert read_idx(tmp_path / "no-suffix").shape == (2, 3)


def test_idx_declared_size_larger_than_file_refused_before_reading(tmp_path, monkeypatch):
    """3 GB declared by a 20-byte file: refused from the header alone."""
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 60000, 224, 224)
    p = tmp_path / "big.idx"
    p.write_bytes(header + b"\x00" * 4)
    import aekit.data

    reads: list[str] = []
    real = aekit.data._read_exact
    monkeypatch.setattr(
        aekit.data, "_read_exact", lambda stream, n, what, source: reads.append(what) or real(stream, n, what, source)
    )
    with pytest.raises(DataFormatError, match=r"declares shape \(60000, 224, 224\).*holds 4") as info:
        read_idx(p)
    assert str(p) in str(info.value)
    assert reads == ["header", "dimensions"]  # the payload was never requested
    with pytest.raises(DataFormatError, match="more than the limit"):
        parse_idx_bytes(bytes([0, 0, 0x0E, 2]) + struct.pack(">2I", 2**31, 2**31))


def test_idx_gzip_declaring_huge_payload_reads_only_what_is_there(tmp_path):
    """A tiny .gz claiming 3 GB: the reader stops at the real end of the data (no 3 GB buffer)."""
    import tracemalloc

    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 60000, 224, 224)
    p = tmp_path / "big.idx.gz"
    p.write_bytes(gzip.compress(header + b"\x01" * 1000))
    tracemalloc.start()
    try:
        with pytest.raises(DataFormatError, match="truncated payload"):
            read_idx(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "truncated header"),
        (bytes([0, 0, 0x08, 1]) + struct.pack(">I", 3) + b"\x01\x02\x03\x04", "holds 4"),  # trailing byte
        (bytes([0, 0, 0x08, 9]) + b"\x00" * 36, "9 dimensions"),
        (bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 1) + b"\x00", "holds 1"),  # float32 needs 4 bytes
        (bytes([0, 0, 0x08, 2]) + struct.pack(">I", 3), "truncated dimensions"),
    ],
)
def test_idx_malformed_messages(data, match):
    with pytest.raises(DataFormatError, match=match) as info:
        parse_idx_bytes(data, "m.idx")
    assert "m.idx" in str(info.value)


def _write_pair(tmp: Path, images: np.ndarray, labels: np.ndarray, gz: bool = False) -> tuple[Path, Path]:
    ip, lp = tmp / ("img.idx" + (".gz" if gz else "")), tmp / ("lab.idx" + (".gz" if gz else ""))
    wrap = (lambda b: gzip.compress(b)) if gz else (lambda b: b)
    ip.write_bytes(wrap(_idx(images)))
    lp.write_bytes(wrap(_idx(labels)))
    return ip, lp


def test_idx_pair_valid(tmp_path):
    images = (np.arange(5 * 4 * 3) % 256).astype(np.uint8).reshape(5, 4, 3)
    labels = np.array([0, 9, 3, 3, 1], np.uint8)
    X, y = load_idx_pair(*_write_pair(tmp_path, images, labels, gz=True))
    assert X.shape == (5, 12) and X.dtype == np.float32 and np.array_equal(X, images.reshape(5, 12) / np.float32(255))
    assert y.dtype == np.int64 and list(y) == [0, 9, 3, 3, 1]
    X, _ = load_idx_pair(*_write_pair(tmp_path, images, labels), scale=False)
    assert X.dtype == np.uint8 and np.array_equal(X, images.reshape(5, 12))


def test_idx_pair_count_mismatch(tmp_path):
    ip, lp = _write_pair(tmp_path, np.zeros((5, 4, 4), np.uint8), np.zeros(4, np.uint8))
    with pytest.raises(DataFormatError, match="5 images but 4 labels") as info:
        load_idx_pair(ip, lp)
    assert str(ip) in str(info.value) and str(lp) in str(info.value)


def test_idx_pair_labels_out_of_range(tmp_path):
    ip, lp = _write_pair(tmp_path, np.zeros((3, 2, 2), np.uint8), np.array([1, 10, 2], np.uint8))
    with pytest.raises(DataFormatError, match=r"label 10 at index 1.*0 to 9"):
        load_idx_pair(ip, lp)
    assert list(load_idx_pair(ip, lp, n_classes=11)[1]) == [1, 10, 2]
    ip, lp = _write_pair(tmp_path, np.zeros((2, 2, 2), np.uint8), np.array([[1, 2], [3, 4]], np.uint8))
    with pytest.raises(DataFormatError, match="1-D"):
        load_idx_pair(ip, lp)
    ip, lp = _write_pair(tmp_path, np.zeros(3, np.uint8), np.zeros(3, np.uint8))
    with pytest.raises(DataFormatError, match="images"):
        load_idx_pair(ip, lp)
    # images and labels swapped
    ip, lp = _write_pair(tmp_path, np.zeros((3, 2, 2), np.uint8), np.zeros(3, np.uint8))
    with pytest.raises(DataFormatError):
        load_idx_pair(lp, ip)


def test_mnist_labels_file_as_images_is_refused(tmp_path, mnist_dir):
    with pytest.raises(DataFormatError, match="10000 images but 60000 labels"):
        load_idx_pair(mnist_dir / "t10k-images-idx3-ubyte.gz", mnist_dir / "train-labels-idx1-ubyte.gz")
    X, y = load_idx_pair(mnist_dir / "t10k-images-idx3-ubyte.gz", mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert X.shape == (10000, 784) and y.max() == 9
    assert MNIST_FILES["t10k-images-idx3-ubyte"][0] == 16 + X.size


# ----------------------------------------------------------------------------- targeted cases: npy / npz


def _npy_with_header(header: str, payload: bytes = b"") -> bytes:
    h = header.encode("latin1")
    h += b" " * (-(10 + len(h) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + payload


@pytest.mark.parametrize(
    "shape, match",
    [
        ("(100000, 100000, 100000)", "truncated"),
        ("(0, 2**70)", "shape"),
        ("(-1, 4)", "non-negative integers"),
        ("(True, 2)", "non-negative integers"),
    ],
)
def test_npy_hostile_shapes_refused_before_allocating(tmp_path, monkeypatch, shape, match):
    p = tmp_path / "h.npy"
    p.write_bytes(_npy_with_header(f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}", b"\x00" * 64))
    called = []
    monkeypatch.setattr(np, "load", lambda *a, **k: called.append(a))
    with pytest.raises(DataFormatError, match=match) as info:
        load_array(p)
    assert str(p) in str(info.value)
    assert not called  # nothing was allocated or read past the header


def test_npz_member_declaring_huge_shape_refused(tmp_path):
    p = tmp_path / "h.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr(
            "X.npy", _npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (10**12,), }", b"\x00" * 64)
        )
    with pytest.raises(DataFormatError, match="X.npy"):
        load_array(p)


def test_npz_nested_zip_and_scalar_labels_refused(tmp_path):
    inner = io.BytesIO()
    np.savez(inner, X=np.ones((2, 2)))
    p = tmp_path / "n.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("X.npy", inner.getvalue())
    with pytest.raises(DataFormatError, match="X.npy"):
        load_array(p)
    np.savez(tmp_path / "s.npz", X=np.ones((2, 2)), y=np.int64(3))
    with pytest.raises(DataFormatError, match="labels"):
        load_array(tmp_path / "s.npz")


def test_npy_empty_and_scalar_arrays_refused(tmp_path):
    for name, arr in {
        "zero_rows": np.zeros((0, 3, 3)),
        "zero_cols": np.zeros((3, 0)),
        "scalar": np.float64(1.0),
    }.items():
        np.save(tmp_path / f"{name}.npy", arr)
        with pytest.raises(DataFormatError, match=r"shape") as info:
            load_array(tmp_path / f"{name}.npy")
        assert name in str(info.value)


def test_npz_pickled_member_never_unpickled(tmp_path):
    sentinel = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = _Evil(str(sentinel))
    buf = io.BytesIO()
    np.save(buf, evil, allow_pickle=True)
    with zipfile.ZipFile(tmp_path / "e.npz", "w") as zf:
        zf.writestr("X.npy", buf.getvalue())
    (tmp_path / "e.npy").write_bytes(buf.getvalue())
    for name in ("e.npz", "e.npy"):
        with pytest.raises(DataFormatError, match="unpickle"):
            load_array(tmp_path / name)
    assert not sentinel.exists()


class _Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        import os

        return (os.mkdir, (self.path,))


# ----------------------------------------------------------------------------- targeted cases: CSV


@pytest.mark.parametrize(
    "text, match",
    [
        ("1,2,3\n4,5\n", "number of columns"),
        ("1,2\n3,four\n", "could not convert"),
        ("a,b\n", "no data rows"),
        ("\xff\xfe1\x002\x00", "UTF-8"),
        ("a,b,label\n1,2\n3,4\n", "has 2 cells, the first row 3"),
        ("a,b,label\n1,2,inf\n3,4,1\n", "non-finite label.*row 0"),
    ],
)
def test_csv_bad_files(tmp_path, text, match):
    p = tmp_path / "bad.csv"
    p.write_bytes(text.encode("latin-1"))
    with pytest.raises(DataFormatError, match=match) as info:
        load_array(p, label_column="label" if "label" in text else None)
    assert str(p) in str(info.value)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xef\xbb\xbfa;b;label\r\n0.5;1;2\r\n1.5;2;0\r\n",  # BOM + CRLF + ';' (European Excel)
        b"a\tb\tlabel\n0.5\t1\t2\n1.5\t2\t0\n",
        b"a,b,label\r\n0.5,1,2\r\n1.5,2,0",  # no final newline
        b"a, b, label\n 0.5 , 1 , 2\n1.5,2,0\n",  # spaces around cells
    ],
)
def test_csv_dialects(tmp_path, raw):
    p = tmp_path / "d.csv"
    p.write_bytes(raw)
    X, y = load_array(p, label_column="label")
    assert np.array_equal(X, [[0.5, 1.0], [1.5, 2.0]]) and list(y) == [2, 0] and y.dtype == np.int64
