"""Training and inference on data streamed from disk (aekit.batches, data_loading="stream")."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from aekit import Autoencoder, SupervisedAutoencoder, load
from aekit._utils import DataFormatError, InputError
from aekit.batches import RowBlocks, StreamBatches, TensorBatches, epoch_order, shard
from aekit.sources import ArraySource, ImageFolder

SMALL = {"hidden_layer_sizes": (16,), "n_components": 2, "epochs": 2, "batch_size": 32, "random_state": 0}


@pytest.fixture
def npy(tmp_path):
    rng = np.random.default_rng(0)
    X = (rng.random((300, 20)) * 255).astype(np.uint8)
    np.save(tmp_path / "x.npy", X)
    return X, np.load(tmp_path / "x.npy", mmap_mode="r")


def _weights(est):
    return [p.detach().clone() for p in est.net_.parameters()]


def _same(a, b):
    return all(torch.equal(p, q) for p, q in zip(_weights(a), _weights(b), strict=True))


# ----------------------------------------------------------------------------- the order


@pytest.mark.parametrize(("n", "block", "window"), [(1000, 7, 3), (64, 1, 16), (5, 10, 2), (1001, 100, 16)])
def test_block_shuffle_covers_every_row_once(n, block, window):
    blocks = RowBlocks(n, block, np.arange(-(-n // block)))
    for epoch in range(3):
        rows = np.concatenate(epoch_order(7, epoch, blocks, window))
        assert np.array_equal(np.sort(rows), np.arange(n))
    a, b = (np.concatenate(epoch_order(7, e, blocks, window)) for e in (0, 1))
    assert np.array_equal(a, np.concatenate(epoch_order(7, 0, blocks, window)))  # pure: same inputs, same order
    if n > 10:
        assert not np.array_equal(a, b)  # a new order every epoch


def test_validation_split_holds_out_whole_blocks():
    blocks = RowBlocks.all(1000, 1024)
    assert blocks.block < 1000  # small data: blocks shrink so that there is something to split and shuffle
    train, val = blocks.split(0.2, seed=3)
    assert set(train.ids).isdisjoint(val.ids) and len(train.ids) + len(val.ids) == len(blocks.ids)
    assert train.n_rows + val.n_rows == 1000
    assert np.array_equal(val.ids, blocks.split(0.2, seed=3)[1].ids)


def test_shard_cuts_a_global_batch_into_rank_parts():
    for m in (1, 7, 128):
        parts = [shard(10, 10 + m, r, 3) for r in range(3)]
        assert parts[0][0] == 10 and parts[-1][1] == 10 + m
        assert all(parts[i][1] == parts[i + 1][0] for i in range(2))


def _batches(n=250, world_size=1, rank=0, depth=2, **kw):
    X = np.arange(n, dtype=np.float32)[:, None].repeat(3, axis=1)
    labels = np.arange(n, dtype=np.int64)
    return StreamBatches(
        ArraySource(X),
        lambda raw, rows: np.array(raw, dtype=np.float32),
        blocks=RowBlocks(n, 10, np.arange(-(-n // 10))),
        batch_size=32,
        seed=1,
        device=torch.device("cpu"),
        labels=labels,
        depth=depth,
        window=4,
        rank=rank,
        world_size=world_size,
        **kw,
    )


def test_stream_batches_every_row_once_with_its_label_and_bounded_prefetch():
    b = _batches(depth=2)
    seen = []
    for x, y in b.epoch(0):
        assert torch.equal(x[:, 0].long(), y)  # each row arrives with its own label
        seen.append(y)
    assert len(seen) == b.steps == 8  # 250 rows, batches of 32
    assert sorted(torch.cat(seen).tolist()) == list(range(250))
    assert b.max_ready <= 2  # never more than ``depth`` batches held ready, whatever n is


def test_ranks_read_their_parts_of_the_same_global_batches():
    whole = [y for _, y in _batches().epoch(3)]
    ranks = [[y for _, y in _batches(world_size=2, rank=r).epoch(3)] for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(whole)
    for i, global_batch in enumerate(whole):
        assert torch.equal(torch.cat([ranks[0][i], ranks[1][i]]), global_batch)


def test_worker_errors_reach_the_loop():
    def bad(raw, rows):
        raise DataFormatError("x.npy: row 3 is bad")

    b = StreamBatches(
        ArraySource(np.zeros((50, 2))),
        bad,
        blocks=RowBlocks.all(50, 10),
        batch_size=8,
        seed=0,
        device=torch.device("cpu"),
    )
    with pytest.raises(DataFormatError, match="row 3 is bad"):
        list(b.epoch(0))


def test_tensor_batches_ranks_share_the_global_batches():
    X = torch.arange(50.0)[:, None]
    torch.manual_seed(1)
    whole = [b[0] for b in TensorBatches((X,), 10).epoch(0)]
    parts = []
    for r in range(3):
        torch.manual_seed(1)  # every rank: the same seeded RNG, so the same permutation
        parts.append([b[0] for b in TensorBatches((X,), 10, rank=r, world_size=3).epoch(0)])
    for i, global_batch in enumerate(whole):
        assert torch.equal(torch.cat([p[i] for p in parts]), global_batch)


def test_tensor_batches_is_the_reference_order():
    torch.manual_seed(0)
    X = torch.arange(10.0)[:, None]
    batches = [b[0] for b in TensorBatches((X,), 4, min_batch=3).epoch(0)]
    torch.manual_seed(0)
    perm = torch.randperm(10)
    assert [len(b) for b in batches] == [4, 6]  # the short last batch (2 < min_batch) joins the one before
    assert torch.equal(torch.cat(batches)[:, 0], X[perm][:, 0])


# ----------------------------------------------------------------------------- fit on the stream path


def test_same_seed_same_weights_and_memory_path_unchanged(npy):
    X, mm = npy
    a = Autoencoder(**SMALL, data_loading="stream").fit(mm)
    b = Autoencoder(**SMALL, data_loading="stream").fit(mm)
    assert _same(a, b)
    # the memory path reads a memmap into exactly what an in-memory array gives (the reference results)
    m1 = Autoencoder(**SMALL, data_loading="memory").fit(mm)
    m2 = Autoencoder(**SMALL).fit(X)
    assert _same(m1, m2)
    # the two paths draw different orders: different weights, both trained
    assert not _same(a, m1)
    assert a.history_["loss"][-1] < a.history_["loss"][0]
    # streaming an array in memory is the same as streaming it from disk
    assert _same(a, Autoencoder(**SMALL, data_loading="stream").fit(X))


def test_auto_streams_only_what_would_not_fit(npy, monkeypatch):
    X, mm = npy
    stream = Autoencoder(**SMALL, data_loading="stream").fit(mm)
    memory = Autoencoder(**SMALL, data_loading="memory").fit(mm)
    assert _same(Autoencoder(**SMALL).fit(mm), memory)  # plenty of memory: read whole
    monkeypatch.setattr("aekit.base.available_bytes", lambda device: 1000)
    assert _same(Autoencoder(**SMALL).fit(mm), stream)  # on disk and too large: streamed
    assert _same(Autoencoder(**SMALL).fit(X), memory)  # in memory already: stays there


def test_resume_on_the_stream_path(npy, tmp_path):
    _, mm = npy
    kw = {**SMALL, "epochs": 3, "data_loading": "stream", "validation_fraction": 0.2}
    straight = Autoencoder(**kw).fit(mm)
    ck = tmp_path / "ck.safetensors"
    Autoencoder(**{**kw, "epochs": 1}, checkpoint_path=str(ck)).fit(mm)
    resumed = Autoencoder(**kw, checkpoint_path=str(ck)).fit(mm, resume_from=ck)
    assert resumed.n_iter_ == 3
    assert _same(straight, resumed)
    assert resumed.history_["val_loss"] == straight.history_["val_loss"]


def test_early_stopping_with_validation_on_the_stream_path(npy):
    _, mm = npy
    est = Autoencoder(
        **{**SMALL, "epochs": 30},
        data_loading="stream",
        validation_fraction=0.25,
        early_stopping=True,
        patience=1,
        min_delta=1.0,  # nothing counts as an improvement: stops after patience
    ).fit(mm)
    assert est.stop_reason_ == "early_stopping" and est.n_iter_ == 2
    assert len(est.history_["val_loss"]) == 2


def test_supervised_conv_on_an_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(12):
            Image.fromarray((rng.random((9, 7, 3)) * 255).astype(np.uint8)).save(tmp_path / c / f"{i}.png")
    folder = ImageFolder(tmp_path, image_shape=(3, 8, 8))
    est = SupervisedAutoencoder(
        architecture="conv",
        n_components=4,
        image_shape=folder.row_shape,  # C x H x W
        conv_filters=(4,),
        epochs=1,
        batch_size=8,
        random_state=0,
        data_loading="stream",
    ).fit(folder, folder.labels)
    assert list(est.classes_) == ["a", "b"]
    assert est.transform(folder).shape == (24, 4)
    assert est.predict(folder).shape == (24,)


# ----------------------------------------------------------------------------- inference in chunks


def test_transform_in_chunks_into_a_memmap(npy, tmp_path):
    X, mm = npy
    est = Autoencoder(**SMALL).fit(X)
    out = np.lib.format.open_memmap(tmp_path / "z.npy", mode="w+", dtype=np.float32, shape=(300, 2))
    assert est.transform(mm, out=out) is out
    np.testing.assert_array_equal(out, est.transform(X))
    np.testing.assert_array_equal(est.reconstruct(mm), est.reconstruct(X))
    np.save(tmp_path / "codes.npy", est.transform(X))
    codes = np.load(tmp_path / "codes.npy", mmap_mode="r")
    np.testing.assert_allclose(est.inverse_transform(codes), est.inverse_transform(np.asarray(codes)), atol=1e-6)
    with pytest.raises(InputError, match=r"out must be a float32 array of shape \(300, 2\)"):
        est.transform(mm, out=np.zeros((3, 2), np.float32))
    # arrays in memory into out (the in-memory path wrote nothing and failed): codes, reconstructions, decoded codes
    codes, recon = np.empty((300, 2), np.float32), np.empty((300, 20), np.float32)
    assert est.transform(X, out=codes) is codes and est.reconstruct(X, out=recon) is recon
    np.testing.assert_array_equal(codes, est.transform(X))
    np.testing.assert_array_equal(recon, est.reconstruct(X))
    decoded = est.inverse_transform(codes, out=np.empty((300, 20), np.float32))
    np.testing.assert_array_equal(decoded, est.inverse_transform(codes))
    np.save(tmp_path / "wide.npy", np.zeros((5, 21), np.uint8))
    with pytest.raises(InputError, match=r"wide\.npy: X has 21 features, but Autoencoder is expecting 20"):
        est.transform(np.load(tmp_path / "wide.npy", mmap_mode="r"))


# ----------------------------------------------------------------------------- bad values found while streaming


def test_nan_in_a_streamed_file_names_file_and_row(tmp_path):
    X = np.random.default_rng(0).random((200, 5)).astype(np.float32)
    X[123, 4] = np.nan
    np.save(tmp_path / "f.npy", X)
    mm = np.load(tmp_path / "f.npy", mmap_mode="r")
    est = Autoencoder(**SMALL, data_loading="stream")
    with pytest.raises(DataFormatError, match=r"f\.npy: row 123, column 4 holds .*nan.*clean, impute or scale"):
        est.fit(mm)


def test_out_of_range_streamed_data_names_the_fix(tmp_path):
    np.save(tmp_path / "r.npy", np.full((100, 4), 3.0, np.float32))
    X = np.load(tmp_path / "r.npy", mmap_mode="r")
    with pytest.raises(InputError, match=r"found values in \[3, 3\] in .*r\.npy; pass scale='minmax'"):
        Autoencoder(**SMALL, data_loading="stream", loss="bce").fit(X)
    est = Autoencoder(**SMALL, data_loading="stream").fit(X)  # "auto": squared error on a linear output
    assert (est.loss_, est.output_activation_) == ("mse", "linear")


@pytest.mark.parametrize("scale", ["standard", "minmax"])
def test_streamed_scale_is_fitted_in_one_pass_as_in_memory(tmp_path, scale):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(3000, 5)) * [1, 10, 100, 1000, 1e4] + [0, 5, -50, 1e3, 0]).astype(np.float32)
    np.save(tmp_path / "t.npy", X)
    disk = np.load(tmp_path / "t.npy", mmap_mode="r")
    streamed = Autoencoder(**SMALL, scale=scale, data_loading="stream").fit(disk)
    memory = Autoencoder(**SMALL, scale=scale, data_loading="memory").fit(disk)
    np.testing.assert_allclose(streamed.input_offset_, memory.input_offset_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(streamed.input_scale_, memory.input_scale_, rtol=1e-5)
    assert streamed.loss_ == memory.loss_ == ("mse" if scale == "standard" else "bce")
    # inference from disk applies the scale (and reconstructions undo it) as in memory
    np.testing.assert_allclose(streamed.transform(disk), streamed.transform(X), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(streamed.reconstruct(disk), streamed.reconstruct(X), rtol=1e-5, atol=1e-3)
    assert abs(streamed.reconstruct(disk)[:, 3].mean() - X[:, 3].mean()) < 3 * X[:, 3].std()  # in the user's units


def test_streamed_uint8_follows_the_pixel_rule(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "img.npy", rng.integers(0, 256, (300, 8), dtype=np.uint8))
    np.save(tmp_path / "num.npy", rng.integers(0, 17, (300, 8), dtype=np.uint8))
    images = Autoencoder(**SMALL, data_loading="stream").fit(np.load(tmp_path / "img.npy", mmap_mode="r"))
    assert images.pixels_ is True and images.loss_ == "bce"
    with pytest.warns(UserWarning, match="read as numbers"):
        numbers = Autoencoder(**SMALL, data_loading="stream").fit(np.load(tmp_path / "num.npy", mmap_mode="r"))
    assert numbers.pixels_ is False and numbers.loss_ == "mse"


# ----------------------------------------------------------------------------- the command line


def _aekit(*args, cwd):
    return subprocess.run([sys.executable, "-m", "aekit", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_trains_on_hdf5_and_embeds_in_chunks(tmp_path):
    h5py = pytest.importorskip("h5py")
    X = (np.random.default_rng(0).random((200, 16)) * 255).astype(np.uint8)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["X"] = X
    flags = ["--epochs", "1", "--hidden-layer-sizes", "8", "--random-state", "0", "--data-loading", "stream"]
    r = _aekit("train", "d.h5", "--out", "run", *flags, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _aekit("embed", "run/model.safetensors", "d.h5:X", "--out", "z.npy", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), load(tmp_path / "run/model.safetensors").transform(X))
    r = _aekit("embed", "run/model.safetensors", "d.h5:nothing", "--out", "z2.npy", cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "d.h5: has no dataset 'nothing'" in r.stderr and not (tmp_path / "z2.npy").exists()


# ----------------------------------------------------------------------------- AE -> t-SNE at large N


def test_aetsne_fits_a_subsample_and_places_the_rest(npy):
    pytest.importorskip("openTSNE")
    from aekit.visualize import AETSNE

    X, mm = npy
    ae = Autoencoder(**{**SMALL, "n_components": 4}).fit(X)
    vis = AETSNE(ae, perplexity=10, max_fit_samples=120, random_state=0, n_jobs=1)
    emb = vis.fit_transform(mm)  # on disk: codes in chunks, the subsample's inputs read row by row
    assert emb.shape == (300, 2) and np.isfinite(emb).all()
    assert len(vis.fit_indices_) == 120 and vis.timings_["placement_s"] > 0
    np.testing.assert_array_equal(emb[vis.fit_indices_], np.asarray(vis._tsne))
    full = AETSNE(ae, perplexity=10, max_fit_samples=None, random_state=0, n_jobs=1).fit(X)
    assert full.fit_indices_ is None and full.embedding_.shape == (300, 2)
    with pytest.raises(InputError, match="max_fit_samples=1 must be an integer >= 2 or None"):
        AETSNE(ae, max_fit_samples=1).fit(X)


def test_codes_of_an_image_folder_name_their_files(tmp_path, capsys):
    """embed writes each image's file (relative to the folder) as its row's id (visualize reads ids the same way)."""
    from PIL import Image

    from aekit.cli import main

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in (1, 2, 10):
            Image.fromarray((rng.random((4, 4)) * 255).astype(np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    data, run = str(tmp_path / "imgs"), str(tmp_path / "run")
    assert main(["train", data, "--out", run, "--epochs", "1", "--hidden-layer-sizes", "8", "--batch-size", "4"]) == 0
    # the shape comes from the first file: said where it is chosen, not only in the guide
    assert "note: images read as 1,4,4 (channels, height, width), the first file's (a/1.png)" in capsys.readouterr().err
    model = str(tmp_path / "run" / "model.safetensors")
    assert main(["embed", model, data, "--out", str(tmp_path / "c.csv")]) == 0
    lines = (tmp_path / "c.csv").read_text().splitlines()
    assert lines[0] == "id,label,z1,z2"
    files = ["a/1.png", "a/10.png", "a/2.png", "b/1.png", "b/10.png", "b/2.png"]  # ImageFolder's sorted order
    assert [row.split(",")[:2] for row in lines[1:]] == [[f, f[0]] for f in files]
    assert main(["embed", model, data, "--limit", "2", "--out", str(tmp_path / "c2.csv"), "--overwrite"]) == 0
    assert [row.split(",")[0] for row in (tmp_path / "c2.csv").read_text().splitlines()[1:]] == files[:2]
    capsys.readouterr()
    explore = ["explore", data, "--model", model, "--image-shape", "2,2", "--out", str(tmp_path / "e.html")]
    assert main(explore) == 2  # images read at another size: the --image-shape the model takes
    assert "images read as 4 values each, but the model takes 16; pass --image-shape 4,4" in capsys.readouterr().err


def test_model_subcommands_read_a_folder_at_the_models_image_size(tmp_path, capsys):
    """embed, evaluate and denoise resize a folder of other-sized images as the model's training images were,
    and a model that knows no image size names the --image-shape it takes (a flag each of them has)."""
    from PIL import Image

    from aekit.cli import main

    rng = np.random.default_rng(0)
    for name, side in (("small", 4), ("large", 8)):
        for c in ("a", "b"):
            (tmp_path / name / c).mkdir(parents=True)
            for i in range(4):
                pixels = (rng.random((side, side)) * 255).astype(np.uint8)
                Image.fromarray(pixels).save(tmp_path / name / c / f"{i}.png")
    small, large = str(tmp_path / "small"), str(tmp_path / "large")
    common = ["--epochs", "1", "--hidden-layer-sizes", "8", "--batch-size", "4"]
    assert main(["train", small, "--out", str(tmp_path / "run"), *common]) == 0
    model = str(tmp_path / "run" / "model.safetensors")
    resized = ImageFolder(large, image_shape=(1, 4, 4))
    codes = load(model).transform(resized)
    assert main(["embed", model, large, "--out", str(tmp_path / "c.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), codes)
    assert main(["denoise", model, large, "--out", str(tmp_path / "d.npy")]) == 0
    assert np.load(tmp_path / "d.npy").shape == (8, 16)
    assert main(["evaluate", model, large]) == 0
    # a model trained on an array knows no image size: refused with the size it takes, which then works
    np.save(tmp_path / "x.npy", resized.read(0, 8))
    assert main(["train", str(tmp_path / "x.npy"), "--out", str(tmp_path / "run2"), *common]) == 0
    model2 = str(tmp_path / "run2" / "model.safetensors")
    capsys.readouterr()
    for argv in (["embed", model2, large, "--out", str(tmp_path / "c2.npy")], ["evaluate", model2, large]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "images read as 64 values each, but the model takes 16; pass --image-shape 4,4" in err
        assert main([*argv, "--image-shape", "4,4"]) == 0


def test_score_reads_a_file_a_chunk_at_a_time_and_equals_the_array_s(npy, monkeypatch):
    from aekit import metrics

    X, mapped = npy
    est = Autoencoder(hidden_layer_sizes=(8,), n_components=2, epochs=1, batch_size=32, random_state=0).fit(X)
    whole = est.score(X)
    monkeypatch.setattr(metrics, "SCORE_ROWS", 7)  # chunks that do not divide the rows
    reads = []
    read = ArraySource.read
    monkeypatch.setattr(ArraySource, "read", lambda self, a, b: reads.append(b - a) or read(self, a, b))
    assert est.score(mapped) == pytest.approx(whole, rel=1e-6)  # (float32 products of other batch sizes)
    assert max(reads) <= 7  # never the whole file at once
    assert est.score(X) == pytest.approx(whole, rel=1e-6)


def test_score_of_no_rows_is_refused_not_perfect():
    X = np.random.default_rng(0).random((20, 6), dtype=np.float32)
    est = Autoencoder(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X)
    with pytest.raises(InputError, match=r"0 sample"):  # was -0.0, a perfect score
        est.score(X[:0])


def test_a_streamed_fit_keeps_a_dataframes_feature_names(tmp_path):
    """A review: data_loading='stream' on a DataFrame (or `aekit train --data-loading stream` on a CSV) lost
    the columns' names, so a reordered table was later read by position, silently."""
    import pandas as pd

    from aekit.cli import main

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.uniform(size=(96, 3)).astype(np.float32), columns=["a", "b", "c"])
    ae = Autoencoder(hidden_layer_sizes=(4,), epochs=1, batch_size=32, data_loading="stream", random_state=0)
    ae.fit(frame)
    assert list(ae.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(InputError, match="Feature names must be in the same order"):
        ae.transform(frame[["c", "b", "a"]])
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame[["c", "a", "b"]].to_csv(tmp_path / "r.csv", index=False)
    argv = ["train", str(tmp_path / "d.csv"), "--data-loading", "stream", "--epochs", "1", "--hidden-layer-sizes", "4"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    model = tmp_path / "run" / "model.safetensors"
    assert list(load(model).feature_names_in_) == ["a", "b", "c"]
    for name in ("d", "r"):
        assert main(["embed", str(model), str(tmp_path / f"{name}.csv"), "--out", str(tmp_path / f"{name}.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy"), np.load(tmp_path / "r.npy"))  # read by name


def test_named_uint8_columns_are_numbers_streamed_or_read_whole():
    """A review: a DataFrame of named uint8 columns was read as numbers in memory but as 0-255 pixels when
    streamed (divided by 255, silently): two models of one table."""
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.integers(0, 256, size=(96, 4)).astype(np.uint8), columns=list("abcd"))
    fits = {
        m: Autoencoder(hidden_layer_sizes=(4,), epochs=1, batch_size=32, data_loading=m, random_state=0).fit(frame)
        for m in ("memory", "stream")
    }
    assert fits["memory"].pixels_ is False and fits["stream"].pixels_ is False
    assert fits["memory"].loss_ == fits["stream"].loss_ == "mse"  # numbers beyond [0, 1]: squared error


def test_a_streamed_dataframe_names_its_text_column_as_when_read_whole():
    import pandas as pd

    frame = pd.DataFrame({"a": np.random.default_rng(0).uniform(size=50), "kind": ["x"] * 50})
    for mode in ("memory", "stream"):  # streamed, it was "X: array dtype object is not numeric"
        with pytest.raises(InputError, match="X's column 'kind' holds text or categories"):
            Autoencoder(epochs=1, data_loading=mode).fit(frame)
