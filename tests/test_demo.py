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
    assert list(SECTIONS) == ["dense", "supervised", "conv", "denoising", "vae", "tsne", "ptsne"]
    import json

    results = json.loads((tmp_path / "results.json").read_text())
    assert 0 < results["dense"]["knn"] <= 1
    # the header names what the seeded numbers depend on: CPU model, kernels, threads
    from aekit.threads import numerics

    assert numerics() in text and results["run"]["numerics"] == numerics()


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


def test_demo_ptsne_section_on_tiny_data(tmp_path, mnist, monkeypatch):
    """The parametric t-SNE section fits, saves its model and picture, and reports the saved model's own numbers;
    it leaves the global random state (which other sections could read) alone."""
    import json

    import numpy as np
    import torch

    from aekit import demo, load, metrics
    from aekit.mnist import MNIST

    tiny = MNIST(mnist.X_train[:600], mnist.y_train[:600], mnist.X_test[:300], mnist.y_test[:300])
    monkeypatch.setattr(demo, "load_mnist", lambda _dir: tiny)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    report = run_demo(tmp_path, epochs=1, only="ptsne")
    assert torch.equal(torch.get_rng_state(), torch_state) and np.array_equal(np.random.get_state()[1], np_state)
    text = report.read_text()
    r = json.loads((tmp_path / "results.json").read_text())["ptsne"]
    assert r["epochs"] == 1 and r["trust_points"] == 300 and r["embed_seconds"] > 0
    Z_te = load(tmp_path / "ptsne.safetensors").transform(tiny.X_test)
    assert r["knn5_cv"] == metrics.knn_cv_accuracy(Z_te, tiny.y_test)
    assert "## 7. Parametric t-SNE" in text and "600 training images for 1 epoch" in text
    assert f"| k-NN(5) in the test map (5-fold) | {100 * r['knn5_cv']:.1f}% |" in text
    assert f"| k-NN(5) train map → test map | {100 * r['knn_train_to_test']:.1f}% |" in text
    assert f"| trustworthiness | {r['trustworthiness']:.3f} |" in text
    assert f"| embedding the 300 test images | {r['embed_seconds']:.2f} s |" in text
    assert "openTSNE fitted on the test images themselves" not in text  # section 6 did not run: no comparison
    assert "This is a shortened run (1 epoch on 600 images; the estimator's default is 30)" in text
    assert (tmp_path / "ptsne_maps.png").stat().st_size > 1000 and "![train and test maps](ptsne_maps.png)" in text


def test_demo_ptsne_bad_combinations_are_one_line_errors(tmp_path, capsys):
    from aekit.cli import main

    messages = []
    for argv in (["--only", "ptsne,tnse"], ["--only", "ptsne", "--epochs", "0"]):
        rc = main(["demo", *argv, "--out", str(tmp_path / "demo")])
        err = capsys.readouterr().err
        lines = [x for x in err.splitlines() if x.startswith("aekit")]
        assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
        messages.append(lines[0])
    assert "unknown sections ['tnse']" in messages[0] and "'ptsne'" in messages[0]  # listed among the choices
    assert "epochs" in messages[1]
    assert not (tmp_path / "demo").exists()


def test_demo_ptsne_lines_beside_section_6_and_after_a_full_length_run(tmp_path, mnist):
    from aekit import demo
    from aekit.mnist import MNIST

    tiny = MNIST(mnist.X_train[:100], mnist.y_train[:100], mnist.X_test[:50], mnist.y_test[:50])
    ctx = demo.Context(out=tmp_path, data=tiny, quick=False, epochs=None, progress=False)
    assert demo._ptsne_line(ctx) == ""
    ctx.results["tsne"] = {"t-SNE from raw": {"knn5_cv": 0.9461, "trustworthiness": 0.9791, "tsne_seconds": 12.34}}
    assert "reaches 94.6% and 0.979 in 12.3 s" in demo._ptsne_line(ctx)
    assert demo._ptsne_shortened(ctx, 30, 30) == ""  # the estimator's own length, all images: no note
    assert "shortened run (29 epochs on 100 images" in demo._ptsne_shortened(ctx, 29, 30)
    ctx.quick = True
    assert "shortened run (30 epochs" in demo._ptsne_shortened(ctx, 30, 30)  # a subset of the images
