from aekit.demo import SECTIONS, run_demo


def test_quick_demo_dense_section(tmp_path, mnist_dir):
    report = run_demo(tmp_path, mnist_dir=mnist_dir, quick=True, epochs=1, only="dense")
    text = report.read_text()
    assert "1,146,986 parameters" in text and "k-NN(5)" in text
    for name in ("dense_ae.safetensors", "dense_latent.png", "dense_reconstructions.png", "dense_training_curve.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert list(SECTIONS) == ["dense", "supervised", "conv", "denoising", "vae", "tsne"]
    import json

    assert 0 < json.loads((tmp_path / "results.json").read_text())["dense"]["knn"] <= 1
