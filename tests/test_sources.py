"""Row sources (aekit.sources): arrays, memmaps, HDF5, zarr, image folders, and their bad inputs."""

import re

import numpy as np
import pytest

from aekit._utils import DataFormatError, InputError
from aekit.sources import ArraySource, Head, ImageFolder, as_source, is_out_of_core, open_path

h5py = pytest.importorskip("h5py")
zarr = pytest.importorskip("zarr")
Image = pytest.importorskip("PIL.Image")


@pytest.fixture
def X():
    return np.arange(50 * 12, dtype=np.uint8).reshape(50, 3, 4)  # images (n, H, W): one row each


def _check_rows(source, X):
    flat = X.reshape(len(X), -1)
    assert (source.n_samples, source.n_features) == flat.shape
    assert source.dtype == X.dtype
    np.testing.assert_array_equal(source.read(0, len(X)), flat)
    np.testing.assert_array_equal(source.read(7, 19), flat[7:19])
    assert source.read(5, 5).shape == (0, flat.shape[1])


def test_array_and_memmap(tmp_path, X):
    _check_rows(ArraySource(X), X)
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert is_out_of_core(mm) and not is_out_of_core(X)
    assert as_source(X) is None  # in memory: the memory path
    _check_rows(as_source(mm), X)
    source, y = open_path(tmp_path / "x.npy")
    assert y is None and source.row_shape == (3, 4)
    _check_rows(source, X)
    assert source._file is not None  # read with preadv: no mapped pages held in this process
    _check_rows(ArraySource(mm[10:40]), X[10:40])  # a row slice of a memmap reads the right bytes
    assert ArraySource(mm[::2])._file is None  # not contiguous rows: through the mapping
    _check_rows(ArraySource(mm[::2]), X[::2])


def test_file_truncated_after_opening(tmp_path):
    p = tmp_path / "x.npy"
    np.save(p, np.zeros((100, 8), np.float32))
    source, _ = open_path(p)
    with open(p, "r+b") as fh:
        fh.truncate(p.stat().st_size - 320)
    with pytest.raises(DataFormatError, match=r"x\.npy: the file ends before row 100 .*re-export"):
        source.read(0, 100)


def test_hdf5(tmp_path, X):
    p = tmp_path / "d.h5"
    with h5py.File(p, "w") as f:
        f["X"] = X
        f["y"] = np.arange(50) % 3
        f["other"] = X[:10]
        f["grp/pix"] = X
        f["grp/y"] = np.arange(50) % 2
    source, y = open_path(p)
    _check_rows(source, X)
    np.testing.assert_array_equal(y, np.arange(50) % 3)
    assert "d.h5:X" in source.name
    source, y = open_path(f"{p}:other")  # a named dataset
    assert source.n_samples == 10 and y is None
    source, y = open_path(f"{p}:X")  # a named dataset keeps the labels beside it (one per row)
    np.testing.assert_array_equal(y, np.arange(50) % 3)
    source, y = open_path(f"{p}:grp/pix")
    _check_rows(source, X)
    np.testing.assert_array_equal(y, np.arange(50) % 2)
    with pytest.raises(
        DataFormatError, match=r"'grp' is a group holding \['pix', 'y'\]; name a dataset as .*:grp/NAME"
    ):
        open_path(f"{p}:grp")
    with h5py.File(p, "r") as f:  # a dataset passed directly
        _check_rows(as_source(f["X"]), X)


def test_zarr(tmp_path, X):
    arr = zarr.open_array(str(tmp_path / "a.zarr"), mode="w", shape=X.shape, dtype=X.dtype, chunks=(8, 3, 4))
    arr[:] = X
    _check_rows(open_path(tmp_path / "a.zarr")[0], X)
    _check_rows(as_source(zarr.open_array(str(tmp_path / "a.zarr"), mode="r")), X)
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("X", shape=X.shape, dtype=X.dtype)[:] = X
    group.create_array("y", shape=(50,), dtype=np.int64)[:] = np.arange(50)
    source, y = open_path(tmp_path / "g.zarr")
    _check_rows(source, X)
    np.testing.assert_array_equal(y, np.arange(50))
    other = zarr.open_group(str(tmp_path / "o.zarr"), mode="w")  # no array named X: the fix is a path that works
    other.create_array("pix", shape=X.shape, dtype=X.dtype)[:] = X
    other.create_array("lab", shape=(50,), dtype=np.int64)[:] = np.arange(50)
    with pytest.raises(DataFormatError, match=r"o\.zarr/NAME"):
        open_path(tmp_path / "o.zarr")
    _check_rows(open_path(f"{tmp_path / 'o.zarr'}/pix")[0], X)


def test_zarr_links_out_of_the_store_are_refused(tmp_path, X):
    store = tmp_path / "a.zarr"
    arr = zarr.create_array(str(store), shape=X.shape, dtype=X.dtype, chunks=(8, 3, 4), compressors=None)
    arr[:] = X
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(range(96)))  # one chunk's bytes: it would be read as rows 0-7
    chunk = next(p for p in sorted(store.rglob("*")) if p.is_file() and not p.name.startswith("zarr"))
    chunk.unlink()
    chunk.symlink_to(secret)
    with pytest.raises(DataFormatError, match=r"a\.zarr: .* is a link to .*secret\.bin', outside the store"):
        open_path(store)
    chunk.unlink()
    inside = store / "copy.bin"
    inside.write_bytes(bytes(96))
    chunk.symlink_to(inside)  # a link within the store is the store's own data
    assert open_path(store)[0].n_samples == 50
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")  # an array of a group, named by its path
    group.create_array("pix", shape=X.shape, dtype=X.dtype)[:] = X
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / "g.zarr" / "pix").rename(elsewhere)
    (tmp_path / "g.zarr" / "pix").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(DataFormatError, match=r"g\.zarr/pix: .*g\.zarr/pix is a link to .*elsewhere', outside"):
        open_path(tmp_path / "g.zarr" / "pix")


def _images(root, sizes, mode="RGB"):
    rng = np.random.default_rng(0)
    paths = []
    for i, (folder, (h, w)) in enumerate(sizes):
        d = root / folder if folder else root
        d.mkdir(parents=True, exist_ok=True)
        shape = (h, w, 3) if mode == "RGB" else (h, w)
        p = d / f"img{i}.png"
        Image.fromarray((rng.random(shape) * 255).astype(np.uint8), mode=mode).save(p)
        paths.append(p)
    return paths


def test_image_folder_labels_from_subfolders(tmp_path):
    _images(tmp_path, [("cat", (8, 6)), ("cat", (8, 6)), ("dog", (10, 12)), ("", (8, 6))])
    folder = ImageFolder(tmp_path, image_shape=(3, 4, 4))
    assert folder.n_samples == 4 and folder.n_features == 48 and folder.row_shape == (3, 4, 4)
    # sorted paths: cat/img0, cat/img1, dog/img2, img3 (root level: unlabelled, "-1")
    assert list(folder.labels) == ["cat", "cat", "dog", "-1"]
    rows = folder.read(0, 4)
    assert rows.shape == (4, 48) and rows.dtype == np.uint8
    # channel first: the red plane of the first image, resized, is its first 16 values
    img = Image.open(folder.files[0]).convert("RGB").resize((4, 4), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(rows[0, :16], np.asarray(img)[:, :, 0].ravel())


def test_image_folder_grayscale_and_default_shape(tmp_path):
    _images(tmp_path, [("", (6, 5)), ("", (6, 5))], mode="L")
    folder = ImageFolder(tmp_path)
    assert folder.row_shape == (1, 6, 5) and folder.labels is None
    assert ImageFolder(tmp_path, image_shape=(3, 3)).row_shape == (1, 3, 3)  # (H, W): grayscale
    with pytest.raises(InputError, match="1 \\(grayscale\\) or 3 \\(RGB\\)"):
        ImageFolder(tmp_path, image_shape=(2, 3, 3))


def test_head():
    h = Head(ArraySource(np.arange(20.0).reshape(10, 2)), 4)
    assert h.n_samples == 4 and h.read(0, 10).shape == (4, 2)


# ----------------------------------------------------------------------------- bad input: one line naming the file


def test_truncated_npy(tmp_path):
    p = tmp_path / "t.npy"
    np.save(p, np.zeros((100, 8), np.float32))
    p.write_bytes(p.read_bytes()[:-40])
    with pytest.raises(DataFormatError, match=r"t\.npy: declares shape \(100, 8\).*truncated, re-export"):
        open_path(p)


def test_non_numeric_npy(tmp_path):
    p = tmp_path / "s.npy"
    np.save(p, np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(DataFormatError, match=r"s\.npy: array dtype <U1 is not numeric"):
        open_path(p)


def test_hdf5_without_its_dataset(tmp_path):
    p = tmp_path / "d.h5"
    with h5py.File(p, "w") as f:
        f["features"] = np.zeros((4, 2))
    with pytest.raises(DataFormatError, match=r"d\.h5: has no dataset 'missing'.*\['features'\].*d\.h5:NAME"):
        open_path(f"{p}:missing")
    with h5py.File(p, "w") as f:
        f.create_group("g")
    with pytest.raises(DataFormatError, match=r"d\.h5: holds no dataset at its top level; name one as"):
        open_path(p)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(DataFormatError, match=r"junk\.h5: not a readable HDF5 file"):
        open_path(tmp_path / "junk.h5")


def test_hdf5_data_outside_the_file_are_refused(tmp_path, caplog):
    # external storage, links into other files and virtual datasets would read any file of this machine
    # (e.g. its passwords list) into the codes or an explore page's thumbnails
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(range(256)) * 4)
    p = tmp_path / "stored.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("X", shape=(16, 64), dtype="uint8", external=[(str(secret), 0, 1024)])
    for name in (p, f"{p}:X"):
        with pytest.raises(DataFormatError, match=r"stored\.h5: 'X' keeps its data outside the file \(external"):
            open_path(name)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["X"] = np.zeros((4, 2))
        f["y"] = np.zeros(4)
    linked = tmp_path / "linked.h5"
    with h5py.File(linked, "w") as f:
        f["grp/X"] = h5py.ExternalLink(str(other), "/X")
        f["X"] = np.zeros((4, 2))
        f["y"] = h5py.ExternalLink(str(other), "/y")
    with pytest.raises(DataFormatError, match=r"linked\.h5: 'grp/X' is a link to .*other\.h5', another file"):
        open_path(f"{linked}:grp/X")
    with pytest.raises(DataFormatError, match=r"linked\.h5: '/y' is a link to .*another file"):
        open_path(linked, labels="y")
    source, y = open_path(linked)  # the linked labels are not picked up by name either, and that is said
    assert y is None and source.n_samples == 4
    assert "its labels 'y' are a link into another file, which aekit does not read" in caplog.text
    soft = tmp_path / "soft.h5"  # a soft link through an external link reaches the other file as well
    with h5py.File(soft, "w") as f:
        f["ext"] = h5py.ExternalLink(str(other), "/")
        f["X"] = h5py.SoftLink("/ext/X")
        f["own"] = np.zeros((4, 2))
    with pytest.raises(DataFormatError, match=r"soft\.h5: 'X' leads through a link into .*other\.h5'"):
        open_path(f"{soft}:X")
    source, _ = open_path(soft)  # by default: the one dataset that lives in the file
    assert source.name.endswith(":own")
    mirror = tmp_path / "mirror.h5"
    with h5py.File(mirror, "w") as f:  # a virtual dataset of its own file's data
        f["own"] = np.zeros((4, 2))
        layout = h5py.VirtualLayout(shape=(4, 2), dtype="f8")
        layout[:] = h5py.VirtualSource(".", "own", shape=(4, 2))
        f.create_virtual_dataset("mirror", layout)
    with pytest.raises(DataFormatError, match=r"mirror\.h5: 'mirror' is a virtual dataset"):
        open_path(f"{mirror}:mirror")  # its own file's data, but a source may be external storage in turn
    virtual = tmp_path / "virtual.h5"
    layout = h5py.VirtualLayout(shape=(4, 2), dtype="f8")
    layout[:] = h5py.VirtualSource(str(other), "X", shape=(4, 2))
    with h5py.File(virtual, "w") as f:
        f.create_virtual_dataset("X", layout)
    with pytest.raises(DataFormatError, match=r"virtual\.h5: 'X' is a virtual dataset, whose sources may lie outside"):
        open_path(virtual)


def test_mismatched_features_and_labels(tmp_path):
    p = tmp_path / "d.h5"
    with h5py.File(p, "w") as f:
        f["X"] = np.zeros((10, 2))
        f["y"] = np.zeros(9)
    with pytest.raises(DataFormatError, match=r"d\.h5: .* has 10 rows but its labels have shape \(9,\)"):
        open_path(p)
    with h5py.File(p, "w") as f:  # labels are checked as from any other file (embed wrote "nan" labels)
        f["X"] = np.zeros((10, 2))
        f["y"] = np.where(np.arange(10) == 3, np.nan, 1.0)
    with pytest.raises(DataFormatError, match=r"d\.h5: non-finite label \(NaN or inf\) at row 3"):
        open_path(p)


def test_labels_are_sized_before_they_are_read_and_of_a_label_kind(tmp_path):
    p = tmp_path / "d.h5"
    with h5py.File(p, "w") as f:  # 2**40 labels declared in a few kB: the shape is refused, nothing allocated
        f["X"] = np.zeros((10, 2))
        f.create_dataset("y", shape=(2**40,), dtype="i8", chunks=(1024,))
    with pytest.raises(DataFormatError, match=r"has 10 rows but its labels have shape \(1099511627776,\)"):
        open_path(p)
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("X", shape=(10, 2), dtype="f8")[:] = 0.0
    group.create_array("y", shape=(2**40,), dtype="i8", chunks=(1024,))
    with pytest.raises(DataFormatError, match=r"labels have shape \(1099511627776,\)"):
        open_path(tmp_path / "g.zarr")
    with h5py.File(p, "w") as f:  # h5py's usual text: variable-length strings, read as text labels
        f["X"] = np.zeros((3, 2))
        f.create_dataset("y", data=["cat", "dog", "-1"], dtype=h5py.string_dtype())
    assert open_path(p)[1].tolist() == ["cat", "dog", "-1"]
    with h5py.File(p, "w") as f:  # compressed megabyte labels: refused at the first chunk, not all read
        f["X"] = np.zeros((100, 2))
        f.create_dataset("y", data=["x" * 1_000_000] * 100, dtype=h5py.string_dtype(), compression="gzip")
    with pytest.raises(DataFormatError, match=r"d\.h5: a label of 1,000,000 characters, at most 1,024"):
        open_path(p)
    with h5py.File(p, "w") as f:  # fixed-width: every label takes the room declared
        f["X"] = np.zeros((10, 2))
        f.create_dataset("y", shape=(10,), dtype="S1000000", compression="gzip")
    with pytest.raises(DataFormatError, match=r"labels of \|S1000000 \(room for 1,000,000 characters"):
        open_path(p)
    with h5py.File(p, "w") as f:  # a compound dtype is no label (it was taken as one class per row)
        f["X"] = np.zeros((3, 2))
        f["y"] = np.array([(1, 2.0)] * 3, dtype=[("a", "<i4"), ("b", "<f8")])
    with pytest.raises(DataFormatError, match=r"d\.h5: labels of dtype .*expected numbers or text"):
        open_path(p)


def test_linked_class_folders_are_read_and_a_loop_ends(tmp_path):
    root = tmp_path / "imgs"
    _images(root, [("a", (4, 4)), ("a", (4, 4))])
    _images(tmp_path / "other", [("b", (4, 4)), ("b", (4, 4)), ("b", (4, 4))])
    (root / "b").symlink_to(tmp_path / "other" / "b", target_is_directory=True)  # a class linked from elsewhere
    (root / "a" / "again").symlink_to(root, target_is_directory=True)  # a link back up: no endless walk
    folder = ImageFolder(root)
    assert sorted(folder.labels.tolist()) == ["a", "a", "b", "b", "b"]


def test_undecodable_image(tmp_path):
    _images(tmp_path, [("a", (4, 4)), ("b", (4, 4))])
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    folder = ImageFolder(tmp_path)  # the first image sets the shape; the broken one fails when read
    with pytest.raises(DataFormatError, match=r"broken\.png: cannot decode the image.*remove or re-save"):
        folder.read(0, folder.n_samples)


def test_decompression_bomb_is_one_line(tmp_path, monkeypatch):
    _images(tmp_path, [("a", (4, 4)), ("b", (4, 4)), ("b", (40, 40))])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow refuses images over twice its limit
    folder = ImageFolder(tmp_path)
    with pytest.raises(DataFormatError, match=r"img2\.png: Image size \(1600 pixels\) exceeds .*MAX_IMAGE_PIXELS"):
        folder.read(0, folder.n_samples)


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(DataFormatError, match="holds no images"):
        ImageFolder(tmp_path)
    with pytest.raises(InputError, match="no such"):
        open_path(tmp_path / "nope.h5")


def test_image_folder_reads_images_as_a_viewer_shows_them(tmp_path):
    """16-bit grey is scaled to 8 bits (Pillow's conversion clips it white), EXIF orientation is applied,
    and hidden files and folders (.ipynb_checkpoints, macOS ._x.png) are no images and no classes."""
    Image = pytest.importorskip("PIL.Image")
    for d in ("a", "b", ".ipynb_checkpoints"):
        (tmp_path / d).mkdir()
    ramp = np.linspace(0, 65535, 64).reshape(8, 8).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "a" / "deep.png")  # mode I;16
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / "b" / "grey.png")
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / ".ipynb_checkpoints" / "grey-checkpoint.png")
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / "b" / "._grey.png")
    folder = ImageFolder(tmp_path, (1, 8, 8))
    assert folder.labels.tolist() == ["a", "b"] and [p.name for p in folder.files] == ["deep.png", "grey.png"]
    deep = folder.read(0, 1).reshape(8, 8)
    np.testing.assert_array_equal(deep, np.clip(np.rint(ramp / 257.0), 0, 255).astype(np.uint8))
    phone = Image.fromarray(np.zeros((8, 16), np.uint8))  # 16 wide, 8 high as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": 8 wide, 16 high as shown
    (tmp_path / "c").mkdir()
    phone.save(tmp_path / "c" / "phone.jpg", exif=exif.tobytes())
    assert ImageFolder(tmp_path / "c").row_shape == (1, 16, 8)


def test_labels_named_in_hdf5_zarr_and_npz(tmp_path, X):
    """Labels stored under another name than y/labels/target: named (the CLI's --label-column)."""
    from aekit.data import load_array

    digits = np.arange(50) % 4
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["grp/pix"], f["grp/digit"], f["top"] = X, digits, np.arange(50) % 2
    source, y = open_path(f"{tmp_path / 'd.h5'}:grp/pix", labels="digit")  # beside the dataset
    _check_rows(source, X)
    np.testing.assert_array_equal(y, digits)
    np.testing.assert_array_equal(open_path(f"{tmp_path / 'd.h5'}:grp/pix", labels="/top")[1], np.arange(50) % 2)
    with pytest.raises(DataFormatError, match=r"no dataset 'nope' for the labels .*it holds \['digit', 'pix'\]"):
        open_path(f"{tmp_path / 'd.h5'}:grp/pix", labels="nope")
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("pix", shape=X.shape, dtype=X.dtype)[:] = X
    group.create_array("digit", shape=(50,), dtype=np.int64)[:] = digits
    source, y = open_path(tmp_path / "g.zarr", labels="digit")  # the other array is then the features
    _check_rows(source, X)
    np.testing.assert_array_equal(y, digits)
    np.savez(tmp_path / "d.npz", pix=X.reshape(50, -1), digit=digits)
    Xn, yn = load_array(tmp_path / "d.npz", label_column="digit")
    assert Xn.shape == (50, X[0].size)
    np.testing.assert_array_equal(yn, digits)
    with pytest.raises(InputError, match="a folder of images takes its labels from its subfolders"):
        open_path(tmp_path, labels="digit")


@pytest.mark.parametrize("dtype, bad, shown", [(np.float16, np.inf, "inf"), (np.float64, 1e300, "1e+300")])
def test_bad_value_of_a_file_read_whole_names_the_file(tmp_path, dtype, bad, shown):
    # an HDF5 file small enough to be read whole failed with scikit-learn's "X contains infinity", no file named
    from aekit import Autoencoder

    p = tmp_path / "d.h5"
    X = np.full((40, 3), 0.5, dtype=dtype)
    X[7, 1] = bad
    with h5py.File(p, "w") as f:
        f["X"] = X
    source, _ = open_path(p)
    message = r"d\.h5:X: row 7, column 1 holds " + re.escape(shown) + ", not a finite float32"
    with pytest.raises(DataFormatError, match=message):
        Autoencoder(epochs=1, data_loading="auto").fit(source)
