import gzip
import hashlib
import logging
import struct
import zipfile

import numpy as np
import pytest

from aekit import load_array, load_mnist, read_idx
from aekit._utils import DataFormatError, InputError
from aekit.data import load_rows, parse_idx_bytes
from aekit.mnist import MNIST_FILES


def _idx(arr: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def test_idx_roundtrip_raw_and_gzip(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(_idx(arr))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(_idx(arr)))
    assert np.array_equal(read_idx(tmp_path / "a.idx"), arr)
    assert np.array_equal(read_idx(tmp_path / "a.idx.gz"), arr)
    f = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(parse_idx_bytes(_idx(f, 0x0D)), f)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x00\x00", "truncated header"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x00", "not an IDX file"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x00", "declares shape \\(5,\\)"),
        (b"\x00\x00\x08\x02\xff\xff\xff\xff\xff\xff\xff\xff", "more than the limit"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
    ],
)
def test_idx_bad_headers(tmp_path, data, match):
    p = tmp_path / "bad.idx"
    p.write_bytes(data)
    with pytest.raises(DataFormatError, match=match):
        read_idx(p)


def test_idx_truncated_gzip(tmp_path):
    arr = np.zeros((100, 28, 28), dtype=np.uint8)
    blob = gzip.compress(_idx(arr))
    p = tmp_path / "t.gz"
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataFormatError, match="truncated|corrupted"):
        read_idx(p)


def test_load_mnist_shapes_and_counts(mnist):
    assert mnist.X_train.shape == (60000, 784) and mnist.X_test.shape == (10000, 784)
    assert mnist.X_train.dtype == np.float32 and 0 <= mnist.X_train.min() and mnist.X_train.max() == 1
    assert list(np.bincount(mnist.y_test)) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_load_mnist_rejects_tampered_copy(tmp_path, mnist_dir):
    for name in MNIST_FILES:
        (tmp_path / f"{name}.gz").write_bytes((mnist_dir / f"{name}.gz").read_bytes())
    raw = bytearray(gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataFormatError, match="checksum mismatch for t10k-labels"):
        load_mnist(tmp_path, download=False, cache_dir=tmp_path / "cache")


def test_load_mnist_missing_without_download(tmp_path, monkeypatch):
    monkeypatch.delenv("AEKIT_MNIST_DIR", raising=False)
    with pytest.raises(InputError, match="not found"):
        load_mnist(None, download=False, cache_dir=tmp_path / "cache")
    with pytest.raises(InputError, match="holds none of the 4 MNIST files"):  # a named folder, empty: no fallback
        load_mnist(tmp_path, download=False, cache_dir=tmp_path / "cache")
    with pytest.raises(InputError, match="is not a folder"):
        load_mnist(tmp_path / "nope")


def test_a_named_folder_with_part_of_mnist_is_refused_not_completed_by_download(
    tmp_path, mnist_dir, monkeypatch, capsys
):
    from aekit import cli

    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):  # the test split alone
        (tmp_path / f"{name}.gz").write_bytes((mnist_dir / f"{name}.gz").read_bytes())
    monkeypatch.setattr("aekit.mnist._download", lambda *a: pytest.fail("downloaded the missing files"))
    with pytest.raises(InputError, match=r"holds 2 of the 4 MNIST files: train-images-idx3-ubyte, train-labels"):
        load_mnist(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--mnist-dir", str(tmp_path), "--epochs", "1", "--out", "o"]) == 2
    assert "error: --mnist-dir '" in capsys.readouterr().err


def test_mnist_checksums_are_the_readme_ones():
    assert MNIST_FILES["t10k-labels-idx1-ubyte"][1].startswith("ff7bcfd4")
    assert len({sha for _, sha in MNIST_FILES.values()}) == 4
    assert hashlib.sha256(b"").hexdigest() not in {sha for _, sha in MNIST_FILES.values()}


# ---------------------------------------------------------------- user files


def test_npy_and_npz(tmp_path):
    X = np.random.default_rng(0).uniform(size=(10, 4))
    np.save(tmp_path / "x.npy", X)
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(10))
    assert np.array_equal(load_array(tmp_path / "x.npy")[0], X)
    X2, y2 = load_array(tmp_path / "d.npz")
    assert np.array_equal(X2, X) and list(y2) == list(range(10))
    imgs = np.zeros((5, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "imgs.npy", imgs)
    assert load_array(tmp_path / "imgs.npy")[0].shape == (5, 784)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_a_sparse_npz_is_read_dense(tmp_path, fmt):
    """A trial: scipy.sparse.save_npz's CSR file was read as its 1-D data member ("reshape it")."""
    import scipy.sparse

    X = scipy.sparse.random(12, 7, density=0.3, format=fmt, random_state=0, dtype=np.float32)
    scipy.sparse.save_npz(tmp_path / "s.npz", X)
    got, y = load_array(tmp_path / "s.npz")
    assert y is None and got.shape == (12, 7) and np.array_equal(got, X.toarray())
    scipy.sparse.save_npz(tmp_path / "b.npz", scipy.sparse.bsr_matrix(X))
    with pytest.raises(DataFormatError, match="aekit reads CSR, CSC and COO matrices"):
        load_array(tmp_path / "b.npz")


def test_a_sparse_npz_with_indices_beyond_its_shape_is_refused(tmp_path):
    import scipy.sparse

    X = scipy.sparse.csr_matrix(np.eye(4, dtype=np.float32))
    np.savez(
        tmp_path / "t.npz", data=X.data, indices=X.indices + 10, indptr=X.indptr, format=b"csr", shape=(4, 4)
    )  # written as save_npz writes, the column indices past the shape
    with pytest.raises(DataFormatError, match="a damaged csr sparse matrix"):
        load_array(tmp_path / "t.npz")


def test_npy_object_array_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataFormatError, match="never unpickles"):
        load_array(tmp_path / "o.npy")


def test_npy_truncated(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((100, 100)))
    blob = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "x.npy").write_bytes(blob[:-800])
    with pytest.raises(DataFormatError, match="truncated"):
        load_array(tmp_path / "x.npy")


def test_npz_bomb_refused(tmp_path, monkeypatch):
    import aekit.data

    monkeypatch.setattr(aekit.data, "MAX_ARRAY_BYTES", 1000)
    np.savez_compressed(tmp_path / "b.npz", X=np.zeros((100, 100)))
    with pytest.raises(DataFormatError, match="limit"):
        load_array(tmp_path / "b.npz")


def test_csv_with_header_and_label_column(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes("\ufeffa,b,label\r\n0.1,0.2,1\r\n0.3,0.4,0\r\n".encode())
    X, y = load_array(p, label_column="label")
    assert X.shape == (2, 2) and list(y) == [1, 0]
    X, y = load_array(p, label_column=-1)
    assert list(y) == [1, 0]


@pytest.mark.parametrize(
    "text, match",
    [
        ("1,2\n3,abc\n", "could not convert"),
        ("1,2,3\n4,5\n", "number of columns changed"),
        ("", "empty"),
    ],
)
def test_csv_errors(tmp_path, text, match):
    p = tmp_path / "d.csv"
    p.write_text(text)
    with pytest.raises(DataFormatError, match=match):
        load_array(p)


def test_csv_nan_reported_with_position(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("1,2\n3,nan\n")
    with pytest.raises(DataFormatError, match="row 1, column 1"):
        load_array(p)


def test_unknown_extension_and_missing(tmp_path):
    (tmp_path / "x.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(InputError, match="unsupported file type '.pkl'"):
        load_array(tmp_path / "x.pkl")
    with pytest.raises(InputError, match="no such file"):
        load_array(tmp_path / "missing.npy")


def test_bad_zip(tmp_path):
    (tmp_path / "z.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataFormatError):
        load_array(tmp_path / "z.npz")
    with zipfile.ZipFile(tmp_path / "e.npz", "w"):
        pass
    with pytest.raises(DataFormatError, match="no arrays"):
        load_array(tmp_path / "e.npz")


def test_csv_with_pandas_column_numbers_as_header(tmp_path):
    """pandas writes a frame with default columns as a first row 0,1,2,...: a header, not a sample."""
    p = tmp_path / "d.csv"
    p.write_text("0,1,2,3\n0.1,0.2,0.3,0.4\n0.5,0.6,0.7,0.8\n")
    X, y = load_array(p)
    assert X.shape == (2, 4) and y is None and X[0, 0] == pytest.approx(0.1)
    p.write_text("1,2,3\n4,5,6\n")  # not 0..n-1: data
    assert load_array(p)[0].shape == (2, 3)


def test_csv_text_labels_and_missing_labels(tmp_path, caplog):
    p = tmp_path / "d.csv"
    p.write_text('a,b,label\n0.1,0.2,cat\n0.3,0.4,"dog"\n')
    X, y = load_array(p, label_column="label")
    assert X.shape == (2, 2) and list(y) == ["cat", "dog"]
    # an empty cell is an unlabelled sample (-1), said once: new rows to embed usually have no label
    p.write_text("a,b,label\n0.1,0.2,cat\n0.3,0.4,\n0.5,0.6,nan\n")
    with caplog.at_level(logging.WARNING, logger="aekit"):
        assert list(load_array(p, label_column="label")[1]) == ["cat", "-1", "-1"]
    assert "2 rows without a label read as unlabelled (-1), the first at data row 1 " in caplog.text
    p.write_text("a,b,label\n0.1,0.2,cat\n0.3,0.4,none\n")  # a class named "none", or a missing label?
    with pytest.raises(DataFormatError, match=r"label 'none' at data row 1 .*: a missing label\? write -1"):
        load_array(p, label_column="label")
    p.write_text("a,b,label\n0.1,0.2,3\n0.3,0.4,\n0.5,0.6,nan\n")  # numbers: -1 among the classes
    y = load_array(p, label_column="label")[1]
    assert y.dtype == np.int64 and list(y) == [3, -1, -1]
    p.write_text("a,b,label\n0.1,0.2,cat\n0.3,0.4\n")  # a short row is not an unlabelled one
    with pytest.raises(DataFormatError, match="has 2 cells"):
        load_array(p, label_column="label")


def test_unknown_label_column_names_a_few_columns(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text(",".join(f"pixel{i}" for i in range(100)) + "\n" + ",".join(["0"] * 100) + "\n")
    with pytest.raises(InputError, match=r"\(100 in all\)") as exc:
        load_array(p, label_column="label")
    assert "pixel99" not in str(exc.value)


def test_csv_rows_wider_than_the_header_are_refused_with_a_label_column(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,label\n1,2,0\n3,4,1,5\n")
    with pytest.raises(DataFormatError, match="data row 1 .* has 4 cells, the first row 3"):
        load_array(p, label_column="label")


def test_csv_with_a_pandas_index_column(tmp_path, caplog):
    """DataFrame.to_csv() writes the index as a first column with an empty name: not a feature."""
    rows = "\n".join(f"{i},{0.1 * i:.1f},{0.2:.1f},{i % 2}" for i in range(4))
    path = tmp_path / "idx.csv"
    path.write_text(",a,b,label\n" + rows + "\n")
    X, y = load_array(path, label_column="label")
    assert X.shape == (4, 2) and np.allclose(X[:, 0], [0.0, 0.1, 0.2, 0.3]) and list(y) == [0, 1, 0, 1]
    assert "first column has no name" in caplog.text
    caplog.clear()  # for a model that names its features it is no news: said at its training, not at every command
    assert load_rows(path, label_column="label", keep=["a", "b"])[0].shape == (4, 2)
    assert "first column has no name" not in caplog.text
    X, y = load_array(path)
    assert X.shape == (4, 3) and y is None  # no label column: a, b and label are features
    path.write_text("Unnamed: 0,a,b\n0,0.5,0.25\n1,0.75,1.0\n")  # the same CSV read by pandas and written again
    assert load_array(path)[0].tolist() == [[0.5, 0.25], [0.75, 1.0]]


def test_csv_index_column_rule_keeps_nameless_data_columns(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text(",a,b\ns1,0.5,0.25\ns2,0.75,1.0\n")  # a text index (sample names), no label column
    assert load_array(p)[0].tolist() == [[0.5, 0.25], [0.75, 1.0]]
    p.write_text(",0,1,2\n0,0.1,0.2,0.3\n1,0.4,0.5,0.6\n")  # pandas' default column numbers, with its index
    assert load_array(p)[0].tolist() == [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]
    p.write_text(",a,b\n0.5,0.1,0.2\n0.25,0.3,0.4\n")  # a nameless column of fractions is data
    assert load_array(p)[0].shape == (2, 3)
    p.write_text(",1,2\n3,4,5\n6,7,8\n")  # a first row of numbers with one empty cell: not pandas' header
    assert load_array(p)[0].tolist() == [[3, 4, 5], [6, 7, 8]]
    p.write_text(",a,b\ns1,0.5,0.25\ns2,0.75\n")  # a short row is still an error, not a silent drop
    with pytest.raises(DataFormatError, match="data row 1 .* has 2 cells, the first row 3"):
        load_array(p)


def test_csv_boolean_columns_are_numbers(tmp_path):
    """True/False cells (pandas' to_csv of a bool column) read as 1/0, as a boolean DataFrame column fits."""
    (tmp_path / "b.csv").write_text("a,flag,b\n0.1,True,1\n0.2,False,2\n0.3,True,3\n")
    X, y, ids, names = load_rows(tmp_path / "b.csv", with_names=True)
    np.testing.assert_array_equal(X[:, 1], [1.0, 0.0, 1.0])
    assert names == ["a", "flag", "b"] and y is None and ids is None


def test_load_array_reads_hdf5_zarr_and_image_folders_whole(tmp_path):
    # load_array refused .h5 in a message listing .h5 as supported, and a zarr store or folder was "no such file"
    h5py = pytest.importorskip("h5py")
    zarr = pytest.importorskip("zarr")
    Image = pytest.importorskip("PIL.Image")

    X = np.arange(40, dtype=np.float32).reshape(10, 4)
    y = np.arange(10) % 2
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["X"], f["y"] = X, y
    group = zarr.open_group(str(tmp_path / "d.zarr"), mode="w")
    group.create_array("X", data=X)
    group.create_array("y", data=y)
    for path in ("d.h5", "d.h5:X", "d.zarr"):
        got, labels = load_array(tmp_path / path if ":" not in path else f"{tmp_path}/{path}")
        np.testing.assert_array_equal(got, X)
        np.testing.assert_array_equal(labels, y)
    (tmp_path / "imgs" / "cat").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((4, 5), 10 * i, dtype=np.uint8)).save(tmp_path / "imgs" / "cat" / f"{i}.png")
    got, labels, ids = load_rows(tmp_path / "imgs")
    assert got.shape == (3, 20) and got.dtype == np.uint8 and list(labels) == ["cat"] * 3
    assert list(ids) == ["cat/0.png", "cat/1.png", "cat/2.png"]
    with pytest.raises(InputError, match="id_column='id' names a CSV column"):
        load_array(tmp_path / "d.h5", id_column="id")


def test_load_array_refuses_a_declared_size_above_the_limit_before_reading(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "huge.h5", "w") as f:  # 400 GB declared, a few kB on disk (chunked, never written)
        f.create_dataset("X", shape=(10**7, 10**4), dtype="f4", chunks=(10, 10))
    with pytest.raises(DataFormatError, match=r"declares 400,000,000,000 bytes .* above the 8,589,934,592-byte"):
        load_array(tmp_path / "huge.h5")
