from aekit.demo import SECTIONS, run_demo


def test_quick_demo_dense_section(tmp_path, mnist_dir):
    report = run_demo(tmp_path, mnist_dir=mnist_dir, quick=True, epochs=1, only="dense")
    text = report.read_text()
    assert "1,146,986 parameters" in text and "k-NN(5)" in text
    assert (
        "This is a shortened run (1 epoch on 10,000 images, 79 steps" in text
    )  # not compared with the reference's band
    assert "(the reference text: ~55–70%)" not in text
    # one epoch is not enough to leave the starting plateau: the report says so under the section
    assert "**Training warnings**" in text and "> - dense AE: the reconstruction has not left" in text
    for name in ("dense_ae.safetensors", "dense_latent.png", "dense_reconstructions.png", "dense_training_curve.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert list(SECTIONS) == ["dense", "supervised", "conv", "denoising", "vae", "tsne"]
    import json

    assert 0 < json.loads((tmp_path / "results.json").read_text())["dense"]["knn"] <= 1


def test_demo_refuses_a_previous_report_and_merges_sections_with_overwrite(tmp_path, mnist_dir, monkeypatch):
    import json

    import pytest

    from aekit import demo

    def fake(name):
        def section(ctx):
            ctx.results[name] = {"value": name}
            if name == "denoising":  # a section may write more than one key
                ctx.results["denoising_tuned"] = {"value": "tuned"}
            return f"## {name} section\n"

        return section

    monkeypatch.setattr(demo, "SECTIONS", {name: fake(name) for name in SECTIONS})
    report = run_demo(tmp_path, mnist_dir=mnist_dir, quick=True, only="dense,conv,denoising")
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_demo(tmp_path, mnist_dir=mnist_dir, quick=True, only="conv")
    run_demo(tmp_path, mnist_dir=mnist_dir, quick=True, only="vae", overwrite=True)
    text = report.read_text()
    assert text.index("## dense") < text.index("## conv") < text.index("## vae")  # kept, in the usual order
    results = json.loads((tmp_path / "results.json").read_text())
    assert {"dense", "conv", "denoising", "denoising_tuned", "vae"} <= set(results)
    run_demo(
        tmp_path, mnist_dir=mnist_dir, quick=False, epochs=1, only="vae", overwrite=True
    )  # another mode: nothing kept
    assert "## dense" not in report.read_text()


def test_demo_never_overwrites_a_model_without_overwrite(tmp_path, mnist_dir):
    """A folder with a model from a demo killed in its first section (no report yet) is not written over."""
    import pytest

    model = tmp_path / "conv_ae.safetensors"
    model.write_bytes(b"a model")
    with pytest.raises(FileExistsError, match="conv_ae.safetensors.*--overwrite"):
        run_demo(tmp_path, mnist_dir=mnist_dir, quick=True, epochs=1, only="conv")
    assert model.read_bytes() == b"a model"


def test_quick_demo_vae_section_counts_its_inverted_samples(tmp_path, mnist_dir):
    """The report says how many of the samples it shows decode inverted, and the count is the pictures' own."""
    import json
    import re

    import numpy as np

    from aekit import load
    from aekit.mnist import load_mnist

    report = run_demo(tmp_path, mnist_dir=mnist_dir, quick=True, epochs=1, only="vae")
    text = report.read_text()
    r = json.loads((tmp_path / "results.json").read_text())["vae"]
    brightest = load_mnist(mnist_dir).X_train[:10000].mean(axis=1).max()  # the quick demo's training images
    shown = load(tmp_path / "vae.safetensors").sample(20, random_state=0)  # as drawn for vae_samples.png
    assert r["inverted_shown"] == int(np.sum(shown.mean(axis=1) > brightest)) and r["shown"] == 20
    assert abs(r["brightest_training_mean"] - brightest) < 1e-6 and 0 <= r["inverted_fraction"] <= 1
    if r["inverted_shown"] or r["inverted_fraction"]:
        assert re.search(rf"\*\*{r['inverted_shown']} of the 20 samples shown decode inverted\*\*", text)
    else:
        assert "No sample decodes inverted" in text
