"""Models that travel: encoder_/decoder_, ONNX against transform/inverse_transform, projector files."""

import json
import logging

import numpy as np
import pytest
import torch

from aekit import Autoencoder
from aekit.cli import main


@pytest.fixture(scope="module")
def mnist_small(mnist):
    return mnist.X_train[:512], mnist.X_test[:256], mnist.y_test[:256]


# the dense model in the default suite; ONNX export (torch's dynamo exporter) takes seconds per model
@pytest.fixture(
    scope="module",
    params=["dense", pytest.param("conv", marks=pytest.mark.slow), pytest.param("vae", marks=pytest.mark.slow)],
)
def fitted(request, mnist_small):
    X, _, _ = mnist_small
    kw = {"dense": {}, "conv": {"architecture": "conv", "conv_filters": (4, 4)}, "vae": {"variational": True}}[
        request.param
    ]
    return Autoencoder(epochs=1, batch_size=128, random_state=0, device="cpu", **kw).fit(X)


def test_encoder_decoder_are_plain_modules(fitted, mnist_small):
    _, X_test, _ = mnist_small
    enc, dec = fitted.encoder_, fitted.decoder_
    assert isinstance(enc, torch.nn.Module) and isinstance(dec, torch.nn.Module)
    with torch.no_grad():
        codes = enc(torch.from_numpy(X_test)).numpy()
        recon = dec(torch.from_numpy(codes)).numpy()
    np.testing.assert_allclose(codes, fitted.transform(X_test), atol=1e-6)
    np.testing.assert_allclose(recon, fitted.inverse_transform(codes), atol=1e-6)
    # the same weights: a change through encoder_ shows in the estimator
    first = next(enc.parameters())
    assert any(first is p for p in fitted.net_.parameters())


def test_onnx_matches_transform(fitted, mnist_small, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="pip install 'aekit[export]'")
    from aekit.export import to_onnx

    _, X_test, _ = mnist_small
    paths = to_onnx(fitted, tmp_path)
    enc = ort.InferenceSession(str(paths["encoder"]))
    dec = ort.InferenceSession(str(paths["decoder"]))
    for batch in (1, 256):  # the batch axis is dynamic
        codes = enc.run(None, {"x": X_test[:batch]})[0]
        assert codes.shape == (batch, fitted.n_components)
        assert np.abs(codes - fitted.transform(X_test[:batch])).max() <= 1e-5
        recon = dec.run(None, {"code": codes})[0]
        assert np.abs(recon - fitted.inverse_transform(codes)).max() <= 1e-5
    meta = enc.get_modelmeta().custom_metadata_map
    assert "[0, 1]" in meta["aekit.input"]


def test_projector_files(mnist_small, tmp_path):
    from aekit.export import to_projector

    _, X_test, y_test = mnist_small
    codes = np.random.default_rng(0).standard_normal((100, 5))
    paths = to_projector(codes, tmp_path, y_test[:100], X_test[:100], image_shape=(28, 28))
    rows = paths["embedding"].read_text().splitlines()
    assert len(rows) == 100 and len(rows[0].split("\t")) == 5
    np.testing.assert_allclose(np.loadtxt(paths["embedding"], delimiter="\t"), codes, rtol=1e-6)
    meta = paths["metadata"].read_text().splitlines()
    assert meta[0] == "index\tlabel" and meta[1] == f"0\t{y_test[0]}" and len(meta) == 101
    ids = np.array([f"img\t{i}.png" if i % 2 else f"img\r{i}.png" for i in range(100)])  # a tab or CR breaks no row
    meta = to_projector(codes, tmp_path / "ids", y_test[:100], ids=ids)["metadata"].read_text().splitlines()
    assert meta[:2] == ["id\tlabel", f"img 0.png\t{y_test[0]}"] and len(meta) == 101  # ids, not row numbers
    assert to_projector(codes, tmp_path / "one", ids=ids)["metadata"].read_text().splitlines()[0] == "img 0.png"
    from PIL import Image

    sprite = np.asarray(Image.open(paths["sprite"]))
    assert sprite.shape == (280, 280)  # 10 x 10 tiles of 28 px
    np.testing.assert_array_equal(sprite[28:56, 56:84], np.rint(X_test[12].reshape(28, 28) * 255))
    cfg = paths["config"].read_text()
    assert 'tensor_path: "embedding.tsv"' in cfg and "single_image_dim: 28" in cfg and 'image_path: "sprite.png"' in cfg


def test_projector_sprite_fits_tensorboard_limit():
    from aekit.export import sprite

    grid, tile = sprite(np.zeros((50, 30, 30, 1), dtype=np.uint8), max_px=100)
    assert tile == (12, 12) and grid.shape == (96, 96)  # 8 x 8 tiles, shrunk to fit 100 px


def test_cli_export(fitted, mnist_dir, tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    fitted.save(model)
    out = tmp_path / "proj"
    assert (
        main(
            [
                "export",
                str(model),
                "--format",
                "projector",
                "--out",
                str(out),
                "--mnist-dir",
                str(mnist_dir),
                "--limit",
                "64",
            ]
        )
        == 0
    )
    assert len((out / "embedding.tsv").read_text().splitlines()) == 64 and (out / "sprite.png").exists()
    assert (
        main(
            [
                "export",
                str(model),
                "--format",
                "projector",
                "--out",
                str(out),
                "--mnist-dir",
                str(mnist_dir),
                "--limit",
                "64",
            ]
        )
        == 2
    )
    assert "pass --overwrite" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["export", str(model), "--format", "onnx", "--out", str(blocker)]) == 2
    assert "is a file; expected a folder" in capsys.readouterr().err


def test_a_map_without_decoder_exports_its_encoder_alone(tmp_path, capsys, caplog):
    """A ParametricTSNE fitted without reconstruction is an encoder: encoder.onnx only, no stale decoder beside it."""
    ort = pytest.importorskip("onnxruntime", reason="pip install 'aekit[export]'")
    from aekit import ParametricTSNE

    X = np.random.default_rng(0).uniform(size=(120, 10)).astype(np.float32)
    est = ParametricTSNE(hidden_layer_sizes=(16,), perplexity=5, epochs=1, random_state=0).fit(X)
    assert not est.net_.has_decoder
    est.save(tmp_path / "map.safetensors")
    out = tmp_path / "onnx"
    out.mkdir()
    (out / "decoder.onnx").write_bytes(b"a previous model's decoder")
    argv = ["export", str(tmp_path / "map.safetensors"), "--format", "onnx", "--out", str(out), "--overwrite"]
    with caplog.at_level(logging.WARNING, logger="torch.onnx"):
        assert main(argv) == 0
    assert not [r for r in caplog.records if "torchvision" in r.getMessage()]  # notes on ops these models never use
    assert sorted(p.name for p in out.iterdir()) == ["encoder.onnx"]
    captured = capsys.readouterr()
    assert captured.out.strip() == f"onnx: {out / 'encoder.onnx'}"
    codes = ort.InferenceSession(str(out / "encoder.onnx")).run(None, {"x": X[:7]})[0]
    assert np.abs(codes - est.transform(X[:7])).max() <= 1e-4


def test_a_supervised_model_exports_its_classifier_with_classes_and_feature_names(tmp_path):
    """classifier.onnx gives predict_proba in the user's units (the scale in the graph); the metadata says the
    classes' order and the columns' order."""
    ort = pytest.importorskip("onnxruntime", reason="pip install 'aekit[export]'")
    pd = pytest.importorskip("pandas")
    from aekit import SupervisedAutoencoder
    from aekit.export import to_onnx

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(50.0, 10.0, size=(90, 4)).astype(np.float32), columns=["ü", "b", "c", "d"])
    y = np.array(["cat", "dog", "eel"])[np.arange(90) % 3]
    est = SupervisedAutoencoder(hidden_layer_sizes=(8,), epochs=2, scale="standard", random_state=0).fit(X, y)
    paths = to_onnx(est, tmp_path)
    assert sorted(paths) == ["classifier", "decoder", "encoder"]
    session = ort.InferenceSession(str(paths["classifier"]))
    proba = session.run(None, {"x": X.to_numpy()[:7]})[0]
    np.testing.assert_allclose(proba, est.predict_proba(X.iloc[:7]), atol=1e-5)
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["aekit.classes"]) == ["cat", "dog", "eel"]
    assert json.loads(meta["aekit.feature_names"]) == ["ü", "b", "c", "d"]
    plain = Autoencoder(hidden_layer_sizes=(8,), epochs=1, random_state=0).fit(X.to_numpy() / 100)
    assert sorted(to_onnx(plain, tmp_path / "plain")) == ["decoder", "encoder"]  # no head, no names: no entries


def test_names_that_are_not_utf8_are_written_escaped(tmp_path):
    # a file name's undecodable bytes (as Python holds them: surrogates) failed every text output with a traceback
    from aekit.commands import write_codes
    from aekit.explore import explore
    from aekit.export import to_projector

    odd = "bad\udcff.png"
    write_codes(np.zeros((2, 2), np.float32), tmp_path / "c.csv", ids=np.array([odd, "ok"], dtype=object))
    assert "bad\\udcff.png" in (tmp_path / "c.csv").read_text()
    meta = to_projector(np.zeros((2, 2), np.float32), tmp_path / "p", ids=np.array([odd, "ok"], dtype=object))
    assert "bad\\udcff.png" in meta["metadata"].read_text()
    explore(np.zeros((2, 2)), title=odd, path=tmp_path / "m.html")
    assert "bad\\udcff.png" in (tmp_path / "m.html").read_text()
