import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from aekit import load
from aekit._utils import TrainingDivergedError
from aekit.cli import main


def test_summary_reference_numbers(capsys):
    assert main(["summary", "784,100,20,100,784"]) == 0
    assert "161,804" in capsys.readouterr().out
    assert main(["summary"]) == 0
    assert "1,146,986" in capsys.readouterr().out
    assert main(["summary", "--preset", "conv"]) == 0
    assert "12,193" in capsys.readouterr().out


def test_train_embed_roundtrip(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(64, 12)).astype(np.float32)
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(64) % 2)
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            str(tmp_path / "d.npz"),
            "--out",
            str(out),
            "--epochs",
            "2",
            "--hidden-layer-sizes",
            "8",
            "--n-components",
            "3",
            "--random-state",
            "0",
            "--batch-size",
            "16",
        ]
    )
    assert rc == 0
    assert (out / "model.safetensors").exists() and (out / "training_curve.png").exists()
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 2
    est = load(out / "model.safetensors")
    assert est.n_components == 3 and est.hidden_layer_sizes == (8,)
    rc = main(["embed", str(out / "model.safetensors"), str(tmp_path / "d.npz"), "--out", str(tmp_path / "codes.csv")])
    assert rc == 0
    table = np.loadtxt(tmp_path / "codes.csv", delimiter=",", skiprows=1)  # id, label (the .npz's y), codes
    assert (tmp_path / "codes.csv").read_text().startswith("id,label,z1,z2,z3\n")
    assert table[:, 0].tolist() == list(range(64)) and table[:, 1].tolist() == (np.arange(64) % 2).tolist()
    assert np.allclose(table[:, 2:], est.transform(X), atol=1e-5)
    fast = ["embed", str(out / "model.safetensors"), str(tmp_path / "d.npz"), "--out", str(tmp_path / "c16.npy")]
    assert main([*fast, "--precision", "bfloat16"]) == 0  # the encoder's pass in bfloat16, codes in float32
    assert np.array_equal(np.load(tmp_path / "c16.npy"), est.set_params(precision="bfloat16").transform(X))
    assert not np.array_equal(np.load(tmp_path / "c16.npy"), table[:, 2:].astype(np.float32))
    from aekit.accel import PRECISIONS

    for precision in PRECISIONS:  # the flag takes every precision the estimators do
        assert main([*fast, "--overwrite", "--precision", precision]) == 0
    # a second train into the same folder refuses to overwrite the model
    before = (out / "model.safetensors").read_bytes()
    rc = main(["train", str(tmp_path / "d.npz"), "--out", str(out), "--epochs", "1"])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == before
    rc = main(
        [
            "train",
            str(tmp_path / "d.npz"),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--supervised",
            "--overwrite",
            "--hidden-layer-sizes",
            "8",
            "--batch-size",
            "16",
        ]
    )
    assert rc == 0 and list(load(out / "model.safetensors").classes_) == [0, 1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "missing.npy", "--out", "o"], "no such file"),
        (["train", "bad.csv", "--out", "o"], "could not convert string"),
        (["train", "nan.npy", "--out", "o"], "non-finite"),
        (["train", "good.npy", "--out", "o", "--n-components", "0"], "--n-components 0 must be"),
        (["summary", "784,x"], "comma-separated integers"),
        (["embed", "bad.csv", "good.npy", "--out", "c.npy"], "not a valid aekit model"),
        (  # the arguments swapped: said as such, not "bad.csv: not a valid aekit model file"
            ["evaluate", "good.npy", "m.safetensors"],
            "good.npy is read as the model and m.safetensors as the data; the model comes first: "
            "aekit evaluate m.safetensors good.npy ...",
        ),
        (["train", "good.npy", "--out", "o", "--preset", "sae_long"], "add --supervised"),
        (["train", "good.npy", "--out", "o" * 300], "its longest part: 300 bytes"),  # was [Errno 36] and the name
        (["train", "good.npy", "--out", "abcdefghi/" * 450 + "o"], "4,501 bytes in all; most systems allow 4,096"),
    ],
)
def test_bad_input_is_one_line_no_traceback(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_text("1,2\n3,abc\n")
    np.save(tmp_path / "nan.npy", np.array([[0.1, np.nan]]))
    np.save(tmp_path / "good.npy", np.zeros((4, 3)))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.startswith("aekit: error:")


def test_bad_choice_is_an_argparse_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["visualize", "good.npy", "--out", "v", "--distances", "pixels"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'pixels'" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["embed", "m.safetensors", "x.npy", "--out", "c.npy", "--perplexity", "5"],
            "aekit embed: error: unrecognized arguments: --perplexity 5 (see aekit embed --help)",
        ),
        (["train", "x.npy", "--out", "o", "--hidden-layer-sizes", "32,,16"], "--hidden-layer-sizes has an empty item"),
        (["train", "x.npy", "--out", "o", "--precision", "half"], "--precision expects one of float32, bfloat16"),
        (["train", "x.npy", "--out", "o", "--scale", "standrd"], "expects one of none, minmax, standard, pixels"),
        (["train", "x.npy", "--out", "o", "--hidden-layer-sizes", "32,16,"], "--hidden-layer-sizes has an empty item"),
    ],
)
def test_usage_errors_name_the_subcommand_and_refuse_empty_sizes(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_summary_refuses_an_empty_layer_size(capsys):
    assert main(["summary", "13,32,,2"]) == 2  # not silently 13,32,2
    assert "must be comma-separated integers" in capsys.readouterr().err
    assert main(["summary", "13, 32 ,2"]) == 0  # blanks around a size are fine


def test_wrong_feature_count_in_embed(tmp_path, capsys):
    X = np.random.default_rng(0).uniform(size=(32, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "x5.npy", X[:, :5])
    assert (
        main(
            [
                "train",
                str(tmp_path / "x.npy"),
                "--out",
                str(tmp_path / "r"),
                "--epochs",
                "1",
                "--hidden-layer-sizes",
                "4",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "embed",
                str(tmp_path / "r" / "model.safetensors"),
                str(tmp_path / "x5.npy"),
                "--out",
                str(tmp_path / "c.npy"),
            ]
        )
        == 2
    )
    assert "x5.npy: rows of 5 features, but the model takes 6" in capsys.readouterr().err


def test_module_entry_point_exit_code():
    r = subprocess.run([sys.executable, "-m", "aekit", "summary", "1"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "at least two" in r.stderr


def test_evaluate_denoise_visualize(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(120, 16)).astype(np.float32)
    y = np.arange(120) % 3
    np.savez(tmp_path / "d.npz", X=X, y=y)
    d = str(tmp_path / "d.npz")
    assert (
        main(
            [
                "train",
                d,
                "--out",
                str(tmp_path / "r"),
                "--epochs",
                "1",
                "--hidden-layer-sizes",
                "8",
                "--noise",
                "gaussian",
                "--precision",
                "bfloat16",
            ]
        )
        == 0
    )
    model = str(tmp_path / "r" / "model.safetensors")
    from aekit import load

    assert load(model).precision == "bfloat16"  # the CLI flag reached the estimator and the file
    assert main(["evaluate", model, d, "--train-data", d, "--json", str(tmp_path / "m.json")]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert isinstance(m["parameters"], int) and m["parameters"] > 0  # a count, not 536.0
    assert 0 <= m["knn5_cv_accuracy"] <= 1 and m["psnr_db"] > 0  # its own rows as training data: cross-validated
    assert main(["denoise", model, d, "--out", str(tmp_path / "den.npy"), "--add-noise"]) == 0
    out = capsys.readouterr().out
    assert "PSNR noisy" in out and np.load(tmp_path / "den.npy").shape == (120, 16)
    assert main(["visualize", d, "--model", model, "--out", str(tmp_path / "v"), "--perplexity", "5"]) == 0
    assert np.load(tmp_path / "v" / "embedding.npy").shape == (120, 2)
    assert (tmp_path / "v" / "tsne.png").exists()
    assert "aekitExplore" in (tmp_path / "v" / "explore.html").read_text()  # the interactive map beside the PNG


def test_precision_flag_reaches_every_command_that_runs_a_model(tmp_path, capsys, monkeypatch):
    """--precision on embed, evaluate, denoise, explore and visualize --model: the model's passes in that arithmetic."""
    from aekit import commands

    rng = np.random.default_rng(0)
    X = rng.uniform(size=(60, 10)).astype(np.float32)
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(60) % 3)
    d, r = str(tmp_path / "d.npz"), str(tmp_path / "r")
    assert main(["train", d, "--out", r, "--epochs", "1", "--hidden-layer-sizes", "8", "--n-components", "2"]) == 0
    model = str(tmp_path / "r" / "model.safetensors")
    float32 = load(model)
    assert float32.precision == "float32"
    loaded = []
    real_load_model = commands.load_model
    monkeypatch.setattr(commands, "load_model", lambda args: loaded.append(real_load_model(args)) or loaded[-1])
    runs = {
        "embed": ["embed", model, d, "--out", str(tmp_path / "c.npy")],
        "evaluate": ["evaluate", model, d, "--train-data", d],
        "denoise": ["denoise", model, d, "--out", str(tmp_path / "den.npy")],
        "explore": ["explore", d, "--model", model, "--out", str(tmp_path / "e.html")],
        "visualize": ["visualize", d, "--model", model, "--perplexity", "5", "--out", str(tmp_path / "v")],
    }
    for name, argv in runs.items():
        assert main([*argv, "--precision", "bfloat16"]) == 0, name
        assert loaded[-1].precision == "bfloat16", name
    den = np.load(tmp_path / "den.npy")
    assert np.array_equal(den, float32.set_params(precision="bfloat16").reconstruct(X))
    assert not np.array_equal(den, load(model).reconstruct(X))  # not the float32 pass
    assert main(runs["denoise"] + ["--overwrite"]) == 0 and loaded[-1].precision == "float32"  # default: the model's
    capsys.readouterr()
    assert main(runs["visualize"][:-1] + [str(tmp_path / "w"), "--precision", "bfloat16", "--epochs", "2"]) == 2
    assert "--epochs: model flags set up the AE" in capsys.readouterr().err  # only --precision goes with --model


def test_train_that_completes_no_epoch_writes_no_model(tmp_path, capsys):
    """Divergence (or Ctrl-C) in epoch 1: no untrained model is written, an existing one is kept."""
    X = np.random.default_rng(0).uniform(size=(64, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "r"
    assert (
        main(["train", str(tmp_path / "x.npy"), "--out", str(out), "--epochs", "1", "--hidden-layer-sizes", "4"]) == 0
    )
    good = (out / "model.safetensors").read_bytes()
    bad = [
        "--optimizer",
        "sgd",
        "--learning-rate",
        "1e30",
        "--loss",
        "mse",
        "--output-activation",
        "linear",
        "--batch-size",
        "8",
    ]
    assert (
        main(
            [
                "train",
                str(tmp_path / "x.npy"),
                "--out",
                str(out),
                "--epochs",
                "2",
                "--hidden-layer-sizes",
                "4",
                "--overwrite",
                *bad,
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "no epoch completed" in err and "training loss became" in err
    assert (out / "model.safetensors").read_bytes() == good
    fresh = tmp_path / "fresh"
    assert (
        main(
            ["train", str(tmp_path / "x.npy"), "--out", str(fresh), "--epochs", "2", "--hidden-layer-sizes", "4", *bad]
        )
        == 2
    )
    assert not (fresh / "model.safetensors").exists()


def test_train_interrupted_in_its_first_epoch_leaves_no_empty_folder(tmp_path, monkeypatch, capsys):
    from aekit.estimators import Autoencoder

    def interrupted_fit(self, X, y=None, **kw):  # Ctrl-C in epoch 1: fit keeps nothing and returns
        self.n_iter_, self.stop_reason_, self.history_ = 0, "interrupted", {}
        return self

    monkeypatch.setattr(Autoencoder, "fit", interrupted_fit)
    np.save(tmp_path / "x.npy", np.zeros((8, 3), np.float32))
    assert main(["train", str(tmp_path / "x.npy"), "--out", str(tmp_path / "new"), "--epochs", "1"]) == 130
    assert "no epoch completed (interrupted)" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_failed_commands_create_no_output_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    np.save("good.npy", np.zeros((8, 3)))
    assert main(["train", "missing.npy", "--out", "o1"]) == 2
    assert main(["train", "good.npy", "--out", "o2", "--supervised"]) == 2  # no labels
    assert main(["train", "good.npy", "--out", "o3", "--learning-rate", "-1"]) == 2
    assert main(["visualize", "good.npy", "--out", "o4", "--compare"]) == 2  # no labels: before any t-SNE
    assert "--compare needs labels" in capsys.readouterr().err
    assert not any(Path(f"o{i}").exists() for i in range(1, 5))
    Path("afile").write_text("x")
    assert main(["train", "good.npy", "--out", "afile"]) == 2
    assert "is a file; expected a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--noise-factor", "-1"], "--noise-factor -1.0 is out of range"),
        (["--noise-factor", "nan"], "out of range"),
        (["--noise", "masking", "--noise-factor", "1.5"], "expected a number in [0, 1]"),
        (["--seed", "99999999999999999999"], "--seed"),
    ],
)
def test_denoise_checks_its_options(tmp_path, capsys, extra, message):
    X = np.random.default_rng(0).uniform(size=(32, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    assert (
        main(
            [
                "train",
                str(tmp_path / "x.npy"),
                "--out",
                str(tmp_path / "r"),
                "--epochs",
                "1",
                "--hidden-layer-sizes",
                "4",
            ]
        )
        == 0
    )
    model = str(tmp_path / "r" / "model.safetensors")
    assert (
        main(["denoise", model, str(tmp_path / "x.npy"), "--out", str(tmp_path / "d.npy"), "--add-noise", *extra]) == 2
    )
    assert message in capsys.readouterr().err and not (tmp_path / "d.npy").exists()


def test_summary_of_a_supervised_preset_shows_the_head_and_options_exclude_each_other(capsys):
    assert main(["summary", "--preset", "sae_long"]) == 0
    assert "1,156,788" in capsys.readouterr().out  # the dense AE's 1,146,986 plus the head's 9,802
    assert main(["summary", "784,10", "--preset", "conv"]) == 2
    assert "one of" in capsys.readouterr().err


def test_evaluate_json_needs_overwrite_and_train_data_defaults(tmp_path, capsys):
    X = np.random.default_rng(0).uniform(size=(60, 6)).astype(np.float32)
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(60) % 3)
    assert (
        main(
            [
                "train",
                str(tmp_path / "d.npz"),
                "--out",
                str(tmp_path / "r"),
                "--epochs",
                "1",
                "--hidden-layer-sizes",
                "4",
            ]
        )
        == 0
    )
    model, d, js = str(tmp_path / "r" / "model.safetensors"), str(tmp_path / "d.npz"), tmp_path / "m.json"
    assert main(["evaluate", model, d, "--json", str(js)]) == 0  # not MNIST: no MNIST training data is assumed
    captured = capsys.readouterr()
    assert "cross-validated within" in captured.err and "knn5_cv_accuracy" in captured.out
    assert main(["evaluate", model, d, "--json", str(js)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["evaluate", model, d, "--json", str(js), "--overwrite", "--train-data", d]) == 0
    assert "knn5_cv_accuracy" in json.loads(js.read_text())  # the same file: no k-NN scored on its own points
    # --limit cuts the test rows; the same file as training data is those rows, not the whole file (whose
    # k-NN would find each test point itself), and the note says what was done
    capsys.readouterr()
    limited = ["evaluate", model, d, "--train-data", str(Path(d).resolve()), "--limit", "12"]
    assert main(limited) == 0
    captured = capsys.readouterr()
    assert "knn5_cv_accuracy" in captured.out and "knn5_accuracy" not in captured.out
    assert "cross-validated within" in captured.err and "(4 folds over 12 labelled rows" in captured.err  # 4 a class
    assert "on the rows the model was trained on, these and a head's accuracy are no test scores" in captured.err


def test_version_verbose_after_subcommand_and_feature_hint(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("aekit ")
    assert main(["summary", "784,10", "-v"]) == 0
    X = np.random.default_rng(0).uniform(size=(32, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    assert (
        main(
            [
                "train",
                str(tmp_path / "x.npy"),
                "--out",
                str(tmp_path / "r"),
                "--epochs",
                "1",
                "--hidden-layer-sizes",
                "4",
            ]
        )
        == 0
    )
    model = str(tmp_path / "r" / "model.safetensors")
    csv = tmp_path / "lab.csv"  # the features plus a label column
    np.savetxt(
        csv,
        np.hstack([X, np.arange(32)[:, None] % 2]),
        delimiter=",",
        header=",".join([f"p{i}" for i in range(6)] + ["label"]),
        comments="",
    )
    assert main(["denoise", model, str(csv), "--out", str(tmp_path / "d.csv")]) == 2
    err = capsys.readouterr().err
    assert "lab.csv: rows of 7 features" in err and "name it: --label-column" in err
    assert main(["denoise", model, str(csv), "--label-column", "label", "--out", str(tmp_path / "d.csv")]) == 0
    table = (tmp_path / "d.csv").read_text().splitlines()  # the rows keep their ids and labels, as embed's
    assert table[0].startswith("id,label,x1,x2,") and [r.split(",")[:2] for r in table[1:3]] == [["0", "0"], ["1", "1"]]


def test_train_keeps_a_checkpoint_and_removes_a_folder_it_created_for_nothing(tmp_path, capsys, monkeypatch):
    X = np.random.default_rng(0).uniform(size=(64, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "big.npy", X * 255)  # out of [0, 1] for BCE: fails inside fit, after the folder was made
    assert main(["train", str(tmp_path / "big.npy"), "--out", str(tmp_path / "o"), "--loss", "bce"]) == 2
    err = capsys.readouterr().err
    assert "needs X in [0, 1]" in err and "--scale minmax" in err and not (tmp_path / "o").exists()
    out = tmp_path / "r"
    out.mkdir()
    (out / "checkpoint.safetensors").write_bytes(b"from a killed run")
    assert main(["train", str(tmp_path / "x.npy"), "--out", str(out), "--epochs", "1"]) == 2
    assert "checkpoint.safetensors exists" in capsys.readouterr().err
    assert (out / "checkpoint.safetensors").read_bytes() == b"from a killed run"
    seen = {}
    import aekit.estimators as est_mod

    fit = est_mod.Autoencoder.fit

    def spy_fit(self, *args, **kwargs):
        seen["verbose"] = self.verbose
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(est_mod.Autoencoder, "fit", spy_fit)
    assert (
        main(
            [
                "train",
                str(tmp_path / "x.npy"),
                "--out",
                str(tmp_path / "p"),
                "--epochs",
                "1",
                "--hidden-layer-sizes",
                "4",
                "--progress",
            ]
        )
        == 0
    )
    assert seen["verbose"] == 1  # --progress reaches the estimator (the global -v flag no longer overrides it)


def test_denoise_a_linear_model_keeps_the_data_scale(tmp_path, capsys):
    """An MSE/linear model on standardised data: the added noise is not clipped to [0, 1] (as in its training),
    and no BCE is reported (undefined for such targets)."""
    X = np.random.default_rng(0).normal(size=(80, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    flags = [
        "--epochs",
        "1",
        "--hidden-layer-sizes",
        "8",
        "--loss",
        "mse",
        "--output-activation",
        "linear",
        "--noise",
        "gaussian",
    ]
    assert main(["train", str(tmp_path / "x.npy"), "--out", str(tmp_path / "r"), *flags]) == 0
    model = str(tmp_path / "r" / "model.safetensors")
    assert (
        main(
            [
                "denoise",
                model,
                str(tmp_path / "x.npy"),
                "--out",
                str(tmp_path / "d.npy"),
                "--add-noise",
                "--noise-factor",
                "0",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "PSNR noisy inf dB" in out and "BCE" not in out  # factor 0: the "noisy" input is the clean data
    assert main(["evaluate", model, str(tmp_path / "x.npy")]) == 0
    out = capsys.readouterr().out
    assert "reconstruction_mse" in out and "reconstruction_bce" not in out


def test_n_components_none_from_the_command_line(tmp_path, capsys):
    """--n-components none: a conv model whose code is the spatial feature map (as PRESETS['conv'])."""
    X = np.random.default_rng(0).uniform(size=(40, 64)).astype(np.float32)  # 8x8 images
    np.save(tmp_path / "x.npy", X)
    args = [
        "train",
        str(tmp_path / "x.npy"),
        "--epochs",
        "1",
        "--architecture",
        "conv",
        "--conv-filters",
        "4,2",
        "--n-components",
        "none",
    ]
    assert main([*args, "--out", str(tmp_path / "r")]) == 0
    assert load(tmp_path / "r" / "model.safetensors").n_components is None
    assert main(["train", str(tmp_path / "x.npy"), "--out", str(tmp_path / "d"), "--n-components", "none"]) == 2
    assert "--n-components none is only allowed with --architecture conv" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse: usage and a one-line error
        main(["train", str(tmp_path / "x.npy"), "--out", str(tmp_path / "e"), "--n-components", "two"])
    assert exc.value.code == 2 and "expects a number or none; got 'two'" in capsys.readouterr().err


@pytest.fixture
def iris_like(tmp_path):
    """A tabular CSV outside [0, 1]: a text id column, 4 features, text labels (3 classes)."""
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    X = rng.normal(size=(90, 4)) + 3 * y[:, None] + 5  # values ~0..13: refused by the default BCE
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    lines = [f"s{i},{','.join(f'{v:.4f}' for v in X[i])},{names[i]}" for i in range(90)]
    (tmp_path / "iris.csv").write_text("sample,a,b,c,d,species\n" + "\n".join(lines) + "\n")
    return tmp_path / "iris.csv", names


@pytest.fixture
def fast_tsne(monkeypatch):
    """t-SNE replaced by the first coordinates: these tests are about the command's flow, not the embedding
    (openTSNE's fixed cost per iteration made a 90-point run take ~10 s; tests/test_plots_visualize.py runs it)."""
    from aekit import visualize

    def first_coordinates(codes, inputs, perplexity, seed, n_jobs, neighbors, n_components=2):
        return np.asarray(codes, dtype=np.float64)[:, :n_components].copy()

    monkeypatch.setattr(visualize, "_opentsne", first_coordinates)


def test_embed_keeps_row_ids_and_labels(tmp_path, capsys, iris_like):
    csv, names = iris_like
    rows = ["--id-column", "sample", "--label-column", "species"]
    fix = ["--loss", "mse", "--output-activation", "linear"]  # the data-range error's own fix
    small = ["--epochs", "1", "--hidden-layer-sizes", "4", "--batch-size", "32"]
    assert main(["train", str(csv), *rows, *fix, *small, "--out", str(tmp_path / "r")]) == 0
    model = str(tmp_path / "r" / "model.safetensors")
    assert main(["embed", model, str(csv), *rows, "--out", str(tmp_path / "codes.csv")]) == 0
    text = (tmp_path / "codes.csv").read_text().splitlines()
    assert text[0] == "id,label,z1,z2" and len(text) == 91
    assert [line.split(",")[:2] for line in text[1:4]] == [["s0", "setosa"], ["s1", "versicolor"], ["s2", "virginica"]]
    # without --id-column the ids are the row numbers (and the id column would be a text feature: named here)
    assert main(["embed", model, str(csv), *rows, "--limit", "5", "--out", str(tmp_path / "c.npy")]) == 0
    codes = np.load(tmp_path / "c.npy")  # .npy: the codes alone, a plain float array in row order
    assert codes.shape == (5, 2) and codes.dtype == np.float32
    np.savez(tmp_path / "d.npz", X=np.random.default_rng(0).uniform(size=(6, 4)), y=np.arange(6) % 2)
    assert main(["embed", model, str(tmp_path / "d.npz"), "--out", str(tmp_path / "d.csv")]) == 0
    table = np.loadtxt(tmp_path / "d.csv", delimiter=",", skiprows=1)
    assert table[:, 0].tolist() == list(range(6)) and table[:, 1].tolist() == [0, 1, 0, 1, 0, 1]


def test_output_tables_never_hold_a_spreadsheet_formula(tmp_path, capsys, iris_like):
    """An attack's ids and labels (`=cmd|' /C calc'!A0`, `+SUM(1+1)`) came back raw in every CSV and TSV: a
    spreadsheet would run them. They are written as text ("'=cmd..."), numbers as they are, and read back exactly
    (explore --embedding matches the rows by their own ids)."""
    import csv as csvlib

    from aekit._utils import from_spreadsheet_safe, spreadsheet_safe

    hostile = ["=cmd|' /C calc'!A0", "+SUM(1+1)", "@HYPERLINK(1)", "-2+3", "'=x", "'quoted", "-1.5", "+2e3", "plain"]
    for text in hostile:
        assert from_spreadsheet_safe(spreadsheet_safe(text)) == text
        assert not spreadsheet_safe(text).startswith(("=", "+", "-", "@")) or text in ("-1.5", "+2e3")
    csv, _ = iris_like
    lines = csv.read_text().splitlines()
    ids = [f"{hostile[i % 5]}{i}" if i % 5 < 3 else f"s{i}" for i in range(90)]  # unique ids, some formulas
    labels = {"setosa": "=1+1", "versicolor": "@SUM(2)", "virginica": "virginica"}
    cells = [line.split(",") for line in lines[1:]]
    rows = [",".join([f'"{ids[i]}"', *c[1:-1], labels[c[-1]]]) for i, c in enumerate(cells)]
    csv.write_text(lines[0] + "\n" + "\n".join(rows) + "\n")
    flags = ["--id-column", "sample", "--label-column", "species"]
    small = ["--epochs", "1", "--hidden-layer-sizes", "4", "--batch-size", "32", "--scale", "standard"]
    assert main(["train", str(csv), *flags, *small, "--supervised", "--out", str(tmp_path / "r")]) == 0
    model = str(tmp_path / "r" / "model.safetensors")
    out = tmp_path / "e.csv"
    assert main(["embed", model, str(csv), *flags, "--predict", "--error", "--out", str(out)]) == 0
    with open(out, newline="") as fh:
        table = list(csvlib.reader(fh))
    cells = [cell for row in table for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "@"))], [c for c in cells if c[:1] in "=+@"]
    assert table[1][:2] == ["'=cmd|' /C calc'!A00", "'=1+1"] and table[2][0] == "'+SUM(1+1)1"
    assert main(["explore", str(csv), *flags, "--embedding", str(out), "--out", str(tmp_path / "m.html")]) == 0
    assert main(["export", model, str(csv), *flags, "--format", "projector", "--out", str(tmp_path / "p")]) == 0
    metadata = (tmp_path / "p" / "metadata.tsv").read_text().splitlines()
    assert metadata[1] == "'=cmd|' /C calc'!A00\t'=1+1" and not [m for m in metadata if m[:1] in "=+@"]


def test_embed_predict_writes_the_heads_classes_and_unlabelled_rows_stay_empty(tmp_path, capsys, iris_like):
    csv, _ = iris_like
    text = csv.read_text().splitlines()
    text[2] = text[2].rsplit(",", 1)[0] + ","  # one row without a label
    csv.write_text("\n".join(text) + "\n")
    small = ["--epochs", "1", "--hidden-layer-sizes", "4", "--batch-size", "32", "--scale", "standard"]
    rows = ["--id-column", "sample", "--label-column", "species"]
    assert main(["train", str(csv), *rows, *small, "--supervised", "--out", str(tmp_path / "r")]) == 0
    model = str(tmp_path / "r" / "model.safetensors")
    out = tmp_path / "p.csv"
    assert main(["embed", model, str(csv), "--predict", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "id,label,predicted,z1,z2"
    assert lines[2].startswith("s1,,")  # as it was read: empty, not "-1"
    predicted = [line.split(",")[2] for line in lines[1:]]
    X = pd_read(csv).drop(columns=["sample", "species"])
    assert predicted == [str(c) for c in load(model).predict(X)]
    codes = np.array([[float(v) for v in line.split(",")[3:]] for line in lines[1:]])  # one pass gave both
    np.testing.assert_allclose(codes, load(model).transform(X), rtol=1e-6, atol=1e-7)
    # the file reads back as codes (explore --embedding): its label and predicted columns are left out, unsaid
    capsys.readouterr()
    assert main(["explore", str(csv), *rows, "--embedding", str(out), "--out", str(tmp_path / "e.html")]) == 0
    assert "predicted" not in capsys.readouterr().err
    # refused: a model without a head, a .npy (the codes alone)
    assert main(["embed", model, str(csv), "--predict", "--out", str(tmp_path / "p.npy")]) == 2
    assert "pass --out FILE.csv" in capsys.readouterr().err
    assert main(["train", str(csv), *rows, *small, "--out", str(tmp_path / "plain")]) == 0
    plain = str(tmp_path / "plain" / "model.safetensors")
    assert main(["embed", plain, str(csv), "--predict", "--out", str(tmp_path / "q.csv")]) == 2
    assert "has no classifier (it was trained without labels)" in capsys.readouterr().err


def test_embed_error_writes_each_rows_reconstruction_error(tmp_path, capsys, iris_like, monkeypatch):
    """Outlier scoring from the CLI: each row's error as score_samples gives it (negated)."""
    csv, _ = iris_like
    small = ["--epochs", "2", "--hidden-layer-sizes", "4", "--batch-size", "32", "--scale", "standard"]
    rows = ["--id-column", "sample", "--label-column", "species"]
    assert main(["train", str(csv), *rows, *small, "--supervised", "--out", str(tmp_path / "r")]) == 0
    model = str(tmp_path / "r" / "model.safetensors")
    out = tmp_path / "e.csv"
    assert main(["embed", model, str(csv), "--predict", "--error", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "id,label,predicted,reconstruction_error,z1,z2"
    X = pd_read(csv).drop(columns=["sample", "species"])
    errors = np.array([float(line.split(",")[3]) for line in lines[1:]])
    np.testing.assert_allclose(errors, -load(model).score_samples(X), rtol=1e-5)
    codes = np.array([[float(v) for v in line.split(",")[4:]] for line in lines[1:]])
    np.testing.assert_allclose(codes, load(model).transform(X), rtol=1e-6, atol=1e-7)
    capsys.readouterr()  # the file reads back as codes: the leading columns are left out
    assert main(["explore", str(csv), *rows, "--embedding", str(out), "--out", str(tmp_path / "x.html")]) == 0
    assert "reconstruction_error" not in capsys.readouterr().err
    # streamed in chunks (a .npy read from disk, in chunks of 64 rows): the same numbers, row for row
    from aekit import commands

    monkeypatch.setattr(commands, "CSV_CHUNK", 64)
    np.save(tmp_path / "X.npy", X.to_numpy(np.float32))
    plain = tmp_path / "p"
    assert main(["train", str(tmp_path / "X.npy"), *small, "--out", str(plain)]) == 0
    argv = ["embed", str(plain / "model.safetensors"), str(tmp_path / "X.npy"), "--error"]
    assert main([*argv, "--out", str(tmp_path / "n.csv")]) == 0
    table = np.loadtxt(tmp_path / "n.csv", delimiter=",", skiprows=1)
    assert table[:, 0].tolist() == list(range(len(X)))
    np.testing.assert_allclose(table[:, 1], -load(plain / "model.safetensors").score_samples(X.to_numpy()), rtol=1e-5)
    np.testing.assert_allclose(table[:, 2:], load(plain / "model.safetensors").transform(X.to_numpy()), atol=1e-6)
    # no data named: MNIST's images are read, which a 4-feature model does not take (it tried to download them)
    capsys.readouterr()
    assert main(["embed", model, "--out", str(tmp_path / "m.csv")]) == 2
    err = capsys.readouterr().err
    assert "data 'mnist' (the default when no data is named) means MNIST's" in err and "rows of 4 features" in err
    assert "`aekit embed MODEL DATA.csv ...`" in err and len(err.strip().splitlines()) == 1
    assert main(["visualize", "--model", model, "--out", str(tmp_path / "v")]) == 2  # its own usage in the fix
    assert "`aekit visualize DATA.csv --model MODEL ...`" in capsys.readouterr().err
    assert main(["evaluate", model, str(csv), *rows, "--train-data", "mnist"]) == 2  # the flag at fault
    assert "--train-data 'mnist' means MNIST's 784-pixel images" in capsys.readouterr().err
    assert main(["evaluate", model]) == 2  # evaluate's own default is the test split
    assert "data 'mnist-test' (the default when no data is named)" in capsys.readouterr().err
    assert main(["evaluate", model, "mnist"]) == 2  # named: no default said
    assert "default" not in capsys.readouterr().err
    # refused, with the fix: a .npy (the codes alone), a map without a decoder
    assert main([*argv, "--out", str(tmp_path / "n.npy")]) == 2
    assert "pass --out FILE.csv" in capsys.readouterr().err
    tsne = ["--method", "tsne", "--perplexity", "5", "--epochs", "1", "--hidden-layer-sizes", "4"]
    assert main(["train", str(tmp_path / "X.npy"), *tsne, "--out", str(tmp_path / "m")]) == 0
    argv = ["embed", str(tmp_path / "m" / "model.safetensors"), str(tmp_path / "X.npy"), "--error"]
    assert main([*argv, "--out", str(tmp_path / "m.csv")]) == 2
    assert "train one with --reconstruction-weight 1, or drop --error" in capsys.readouterr().err


def test_evaluate_outlier_label_scores_the_errors_against_the_marked_rows(tmp_path, capsys):
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    X = (rng.normal(size=(200, 2)) @ rng.normal(size=(2, 6))).astype(np.float32)
    X[:10] += rng.normal(scale=4.0, size=(10, 6)).astype(np.float32)  # off the plane
    frame = pd.DataFrame(X, columns=list("abcdef"))
    frame["kind"] = ["odd"] * 10 + ["normal"] * 190
    frame.loc[[20, 21], "kind"] = ""  # unlabelled rows: left out
    frame.to_csv(tmp_path / "d.csv", index=False)
    small = ["--epochs", "20", "--hidden-layer-sizes", "8", "--scale", "standard", "--random-state", "0"]
    out = tmp_path / "r"
    assert main(["train", str(tmp_path / "d.csv"), "--label-column", "kind", *small, "--out", str(out)]) == 0
    model = str(out / "model.safetensors")
    argv = ["evaluate", model, str(tmp_path / "d.csv"), "--label-column", "kind"]
    capsys.readouterr()
    assert main([*argv, "--outlier-label", "odd", "--json", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    keep = frame["kind"] != ""
    errors = -load(model).score_samples(frame[list("abcdef")])[keep.to_numpy()]
    expected = roc_auc_score(frame["kind"][keep] == "odd", errors)
    assert metrics["outlier_roc_auc"] == pytest.approx(expected) and expected > 0.9
    assert metrics["outlier_share"] == pytest.approx(10 / 198) and 0 < metrics["outlier_average_precision"] <= 1
    assert "outlier_roc_auc" in capsys.readouterr().out
    assert main([*argv, "--outlier-label", "rare"]) == 2  # no such row: said, with the labels seen
    err = capsys.readouterr().err
    assert "0 of the 198 labelled rows" in err and "'normal', 'odd'" in err and len(err.strip().splitlines()) == 1
    np.save(tmp_path / "X.npy", X)  # no labels: said before any metric, with where labels come from
    assert main(["evaluate", model, str(tmp_path / "X.npy"), "--outlier-label", "odd"]) == 2
    assert "has no labelled rows; pass data that mark the outliers" in capsys.readouterr().err
    tsne = ["--method", "tsne", "--perplexity", "5", "--epochs", "1", "--hidden-layer-sizes", "4"]
    assert main(["train", str(tmp_path / "d.csv"), "--label-column", "kind", *tsne, "--out", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    argv = ["evaluate", str(tmp_path / "m" / "model.safetensors"), str(tmp_path / "d.csv"), "--label-column", "kind"]
    assert main([*argv, "--outlier-label", "odd"]) == 2  # a map without a decoder: the flag and the fix named
    assert "--outlier-label odd: " in (err := capsys.readouterr().err) and "--reconstruction-weight 1" in err
    frame["kind"] = np.where(np.arange(200) < 100, 1.5, 2.5)  # fractions: no classes (a traceback once)
    frame.to_csv(tmp_path / "f.csv", index=False)
    argv = ["evaluate", model, str(tmp_path / "f.csv"), "--label-column", "kind"]
    assert main(argv) == 2
    assert "--label-column kind: 1.5 is no class" in capsys.readouterr().err


def pd_read(path):
    import pandas as pd

    return pd.read_csv(path)


def test_the_commands_that_run_a_csv_model_take_its_id_and_label_columns_again(tmp_path, capsys, iris_like):
    # `embed model data.csv` on the training CSV wrote row numbers and no labels: the flags had to be repeated
    csv, _ = iris_like
    small = ["--epochs", "1", "--hidden-layer-sizes", "4", "--batch-size", "32", "--scale", "standard"]
    rows = ["--id-column", "sample", "--label-column", "species"]
    assert main(["train", str(csv), *rows, *small, "--out", str(tmp_path / "r")]) == 0
    model = str(tmp_path / "r" / "model.safetensors")
    assert load(model).data_columns_ == {"id_column": "sample", "label_column": "species"}
    capsys.readouterr()
    assert main(["embed", model, str(csv), "--out", str(tmp_path / "codes.csv")]) == 0
    text = (tmp_path / "codes.csv").read_text().splitlines()
    assert text[0] == "id,label,z1,z2" and text[1].startswith("s0,setosa,")
    assert "note: --id-column sample --label-column species, as the model was trained" in capsys.readouterr().err
    assert main(["evaluate", model, str(csv)]) == 0
    assert "knn5_cv_accuracy" in capsys.readouterr().out  # the labels were found
    # a flag given wins, and a column it names is not taken for the other role
    assert main(["embed", model, str(csv), "--label-column", "sample", "--out", str(tmp_path / "c2.csv")]) == 0
    assert (tmp_path / "c2.csv").read_text().splitlines()[1].startswith("0,s0,")


def test_a_csv_trained_model_matches_columns_by_name(tmp_path, capsys, caplog, iris_like):
    """A model trained on a CSV with a header keeps its features' names: a CSV with its columns in another order
    (and one more) gives the same codes, one lacking a column is refused naming it, denoise writes the names."""
    import pandas as pd

    csv, _ = iris_like
    rows = ["--id-column", "sample", "--label-column", "species"]
    small = ["--epochs", "1", "--hidden-layer-sizes", "4", "--batch-size", "32", "--scale", "standard"]
    assert main(["train", str(csv), *rows, *small, "--out", str(tmp_path / "r")]) == 0
    model = str(tmp_path / "r" / "model.safetensors")
    est = load(model)
    assert list(est.feature_names_in_) == ["a", "b", "c", "d"]
    assert main(["embed", model, str(csv), *rows, "--out", str(tmp_path / "c.npy")]) == 0
    frame = pd.read_csv(csv)
    shuffled = frame[["species", "d", "sample", "b", "a", "c"]]
    shuffled.insert(2, "extra", 1.0)
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    capsys.readouterr()
    assert main(["embed", model, str(tmp_path / "shuffled.csv"), *rows, "--out", str(tmp_path / "s.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), np.load(tmp_path / "c.npy"))
    assert "'extra' are not among the model's features and are left out" in caplog.text
    frame.drop(columns=["c"]).to_csv(tmp_path / "lacking.csv", index=False)
    assert main(["embed", model, str(tmp_path / "lacking.csv"), *rows, "--out", str(tmp_path / "l.npy")]) == 2
    err = capsys.readouterr().err
    assert "lacking.csv: lacks the column(s) 'c' of the 4 the model was trained on" in err
    assert not (tmp_path / "l.npy").exists()
    frame.drop(columns=["sample"]).to_csv(tmp_path / "no_ids.csv", index=False)
    by_a = ["--id-column", "a", "--label-column", "species", "--out", str(tmp_path / "l.npy")]
    assert main(["embed", model, str(tmp_path / "no_ids.csv"), *by_a]) == 2  # a feature read as the ids
    err = capsys.readouterr().err
    assert "lacks the column(s) 'a' of the 4 the model was trained on; drop --id-column a: the model" in err
    assert main(["denoise", model, str(tmp_path / "shuffled.csv"), *rows, "--out", str(tmp_path / "d.csv")]) == 0
    assert (tmp_path / "d.csv").read_text().splitlines()[0] == "id,label,a,b,c,d"
    # data without names are read by position, without sklearn's warning about it
    frame[["a", "b", "c", "d"]].to_csv(tmp_path / "x.csv", header=False, index=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(["embed", model, str(tmp_path / "x.csv"), "--out", str(tmp_path / "x_codes.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "x_codes.npy"), np.load(tmp_path / "c.npy"), rtol=1e-6)
    assert not [w for w in seen if "feature names" in str(w.message)]


def test_a_model_without_feature_names_says_it_reads_a_named_csv_by_position(tmp_path, capsys, caplog, iris_like):
    """A model trained on an .npy read a CSV whose header put the columns in another order, silently."""
    import pandas as pd

    csv, _ = iris_like
    frame = pd.read_csv(csv)
    np.save(tmp_path / "X.npy", frame[["a", "b", "c", "d"]].to_numpy(np.float32))
    small = ["--epochs", "1", "--hidden-layer-sizes", "4", "--batch-size", "32", "--scale", "standard"]
    assert main(["train", str(tmp_path / "X.npy"), *small, "--out", str(tmp_path / "r")]) == 0
    model = str(tmp_path / "r" / "model.safetensors")
    frame[["d", "c", "b", "a"]].to_csv(tmp_path / "reversed.csv", index=False)
    caplog.clear()
    assert main(["embed", model, str(tmp_path / "reversed.csv"), "--out", str(tmp_path / "z.npy")]) == 0
    said = "reversed.csv names its columns ('d', 'c', 'b', 'a'), but the model has no names for its features"
    assert said in caplog.text and "read by position, in the file's order" in caplog.text


def test_train_says_when_labels_are_read_but_not_trained_on(tmp_path, capsys, iris_like):
    csv, _ = iris_like
    small = ["--epochs", "1", "--hidden-layer-sizes", "4", "--batch-size", "32", "--scale", "standard"]
    argv = ["train", str(csv), "--id-column", "sample", "--label-column", "species", *small]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 0
    assert "note: --label-column species is read but not trained on (add --supervised" in capsys.readouterr().err
    assert main([*argv, "--supervised", "--out", str(tmp_path / "s")]) == 0
    assert "not trained on" not in capsys.readouterr().err


def test_resuming_on_a_csv_with_other_column_names_is_refused(tmp_path, capsys, iris_like):
    """The checkpoint knows its run's feature names: resuming on other columns would train on mixed-up
    features, so it stops with the fix; the run folder is left as it was. The same columns resume (also
    reordered: read by name, test_resume_reads_a_reordered_csv_by_the_runs_feature_names)."""
    import pandas as pd

    csv, _ = iris_like
    rows = ["--id-column", "sample", "--label-column", "species", "--out", str(tmp_path / "r")]
    small = ["--hidden-layer-sizes", "4", "--batch-size", "32", "--scale", "standard", "--random-state", "0"]
    assert main(["train", str(csv), *rows, *small, "--epochs", "1", "--keep-checkpoint"]) == 0
    frame = pd.read_csv(csv).rename(columns={"a": "a2"})  # a feature the run never had
    frame.to_csv(tmp_path / "swapped.csv", index=False)
    before = {f.name: f.read_bytes() for f in (tmp_path / "r").iterdir()}
    capsys.readouterr()
    assert main(["train", str(tmp_path / "swapped.csv"), *rows, *small, "--epochs", "2", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "feature names are not those the checkpoint's run was fitted on" in err and "Traceback" not in err
    assert {f.name: f.read_bytes() for f in (tmp_path / "r").iterdir()} == before
    assert main(["train", str(csv), *rows, *small, "--epochs", "2", "--resume"]) == 0
    assert load(str(tmp_path / "r" / "model.safetensors")).n_iter_ == 2


def test_csv_columns_named_like_attributes_or_output_columns(tmp_path, capsys):
    """Columns named row_shape or dtype are features (a DataFrame answers X.row_shape with its column); names
    that are denoise's id/label columns give x1, x2, ... so the file reads back; --image-shape is refused
    where there is no folder of images to resize."""
    rng = np.random.default_rng(0)
    rows = "\n".join(",".join(f"{v:.3f}" for v in r) for r in rng.normal(size=(40, 4)))
    (tmp_path / "t.csv").write_text("row_shape,dtype,id,label\n" + rows + "\n")
    small = ["--epochs", "1", "--hidden-layer-sizes", "4", "--batch-size", "16", "--scale", "standard"]
    assert main(["train", str(tmp_path / "t.csv"), *small, "--out", str(tmp_path / "r")]) == 0
    model = str(tmp_path / "r" / "model.safetensors")
    assert list(load(model).feature_names_in_) == ["row_shape", "dtype", "id", "label"]
    assert main(["denoise", model, str(tmp_path / "t.csv"), "--out", str(tmp_path / "d.csv")]) == 0
    assert (tmp_path / "d.csv").read_text().splitlines()[0] == "id,x1,x2,x3,x4"
    capsys.readouterr()
    assert (
        main(["embed", model, str(tmp_path / "t.csv"), "--image-shape", "2,2", "--out", str(tmp_path / "c.npy")]) == 2
    )
    assert "--image-shape resizes a folder of images, but" in capsys.readouterr().err


def test_visualize_takes_the_estimator_flags_and_keeps_rows(tmp_path, capsys, iris_like, fast_tsne):
    """`visualize iris.csv --loss bce` is refused; the fix it names works there, for every panel."""
    csv, names = iris_like
    base = ["visualize", str(csv), "--id-column", "sample", "--label-column", "species", "--perplexity", "5"]
    small = ["--epochs", "2", "--hidden-layer-sizes", "8", "--batch-size", "32"]
    assert main([*base, *small, "--loss", "bce", "--out", str(tmp_path / "v0")]) == 2
    err = capsys.readouterr().err
    assert "pass --scale minmax" in err and not (tmp_path / "v0").exists()
    fix = ["--loss", "bce", "--scale", "minmax"]
    assert main([*base, *small, *fix, "--compare", "--out", str(tmp_path / "v")]) == 0
    out, err = capsys.readouterr()
    # off a terminal each model prints its epoch lines: the 2-D panel's say whose they are
    assert "training the model of the AE → 2-D panel\nepoch 1/2 " in err
    assert "AE → 2-D" in out and "AE(20) → t-SNE" in out and (tmp_path / "v" / "comparison.png").exists()
    assert "routes measured on X after the model's scale='minmax'" in out  # the units every route is scored in
    lines = (tmp_path / "v" / "embedding.csv").read_text().splitlines()
    assert lines[0] == "id,label,tsne1,tsne2" and lines[1].startswith("s0,setosa,") and len(lines) == 91
    assert np.load(tmp_path / "v" / "embedding.npy").shape == (90, 2)
    # the embedding CSV reads back into explore (its id and label columns are not coordinates)
    html = tmp_path / "m.html"
    explore = ["explore", str(csv), "--id-column", "sample", "--label-column", "species"]
    assert main([*explore, "--embedding", str(tmp_path / "v" / "embedding.csv"), "--out", str(html)]) == 0


@pytest.mark.parametrize("code", [2, 5])
def test_visualize_with_a_model_trains_nothing(tmp_path, capsys, monkeypatch, iris_like, code, fast_tsne):
    """--model fills every panel: a 2-D model the AE → 2-D one too; a wider one leaves it out, in one line."""
    from aekit import visualize

    csv, _ = iris_like
    rows = ["--id-column", "sample", "--label-column", "species"]
    train = ["--loss", "mse", "--output-activation", "linear", "--epochs", "1", "--hidden-layer-sizes", "8"]
    assert main(["train", str(csv), *rows, *train, "--n-components", str(code), "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()

    def no_training(*args, **kwargs):
        raise AssertionError("visualize trained a model although --model was given")

    monkeypatch.setattr(visualize, "fit_stage", no_training)
    model = str(tmp_path / "r" / "model.safetensors")
    argv = ["visualize", str(csv), *rows, "--model", model, "--perplexity", "5", "--compare", "--out"]
    assert main([*argv, str(tmp_path / "v")]) == 0
    captured = capsys.readouterr()
    assert (tmp_path / "v" / "comparison.png").exists() and f"AE({code}) → t-SNE" in captured.out
    assert ("AE → 2-D" in captured.out) == (code == 2)
    # a route's seconds count the given model's training, which this run did not spend: said so
    route = next(line for line in captured.out.splitlines() if f"AE({code}) → t-SNE" in line)
    assert re.search(r"s \(training \d+\.\d s before this run\)$", route), route
    notes = [line for line in captured.err.splitlines() if "AE → 2-D" in line]
    assert notes == (
        []
        if code == 2
        else [
            f"note: comparison without the AE → 2-D panel: --model has {code}-D codes "
            "(a model with 2-D codes fills it, or drop --model to train one)"
        ]
    )
    assert main([*argv, str(tmp_path / "w"), "--epochs", "3"]) == 2  # a model flag with --model: refused up front
    assert "--epochs: model flags set up the AE that visualize trains" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_log_lines_read_as_aekit_lines():
    """The CLI's log lines, warnings and -v progress alike, start with "aekit:"; other libraries keep their name."""
    import logging

    from aekit.cli import _LogLines

    def line(name: str, level: int, msg: str) -> str:
        return _LogLines().format(logging.LogRecord(name, level, __file__, 1, msg, None, None))

    assert line("aekit.csvdata", logging.WARNING, "its first column") == "aekit: warning: its first column"
    assert line("aekit.training", logging.INFO, "epoch 1/2") == "aekit: epoch 1/2"
    assert line("torch.onnx", logging.WARNING, "note") == "WARNING torch.onnx: note"


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (
            ["--method", "tsne", "--preset", "vae"],
            "--preset vae is a recipe for autoencoders (--variational), not for --method tsne",
        ),
        (["--preset", "sae_long"], "--preset sae_long is a recipe for supervised models; add --supervised"),
    ],
)
def test_a_preset_for_another_kind_of_model_names_the_right_fix(tmp_path, capsys, flags, said):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((40, 6), dtype=np.float32))
    assert main(["train", str(tmp_path / "x.npy"), "--out", str(tmp_path / "r"), *flags]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_misplaced_arguments_name_what_was_meant(tmp_path, capsys, caplog):
    """A run folder as MODEL points at its model file; a model where data belong says so; explore writes .html
    only (it once wrote over the input CSV); an .onnx --out is a folder name; onnx export says data go unread."""
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((40, 6), dtype=np.float32))
    x, run = str(tmp_path / "x.npy"), tmp_path / "r"
    assert main(["train", x, "--out", str(run), "--epochs", "1", "--hidden-layer-sizes", "4"]) == 0
    model = str(run / "model.safetensors")
    capsys.readouterr()
    cases = [
        (["embed", str(run), x, "--out", str(tmp_path / "c.npy")], f"{run} is a folder; pass {model}"),
        (["embed", model, model, "--out", str(tmp_path / "c.npy")], "an aekit model or checkpoint file, given where"),
        (["explore", x, "--model", model, "--out", x, "--overwrite"], "the map is one HTML page; use a file name"),
        (["export", model, "--format", "onnx", "--out", str(tmp_path / "e.onnx")], "writes a folder (encoder.onnx"),
    ]
    for argv, said in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err, err
    assert np.load(x).shape == (40, 6)  # the data named as --out are untouched
    assert not (tmp_path / "c.npy").exists() and not (tmp_path / "e.onnx").exists()
    pytest.importorskip("onnx")
    assert main(["export", model, x, "--format", "onnx", "--out", str(tmp_path / "e")]) == 0
    assert f"--format onnx exports the model alone; {x} is not read" in caplog.text


def test_data_of_another_width_name_the_file_and_the_flag_that_fits(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((40, 6), dtype=np.float32))
    assert main(["train", str(tmp_path / "x.npy"), "--out", str(tmp_path / "r"), "--epochs", "1"]) == 0
    model = str(tmp_path / "r" / "model.safetensors")
    rows = "\n".join(",".join(f"{v:.3f}" for v in r) + f",{i % 2}" for i, r in enumerate(rng.random((20, 6))))
    (tmp_path / "labelled.csv").write_text(rows + "\n")  # no header: 7 columns, the last the labels
    np.save(tmp_path / "wide.npy", rng.random((20, 9), dtype=np.float32))
    capsys.readouterr()
    for data, said in [
        (
            "labelled.csv",
            "labelled.csv: rows of 7 features, but the model takes 6; if one column holds labels "
            "or row ids, name it: --label-column or --id-column",
        ),
        ("wide.npy", "wide.npy: rows of 9 features, but the model takes 6; pass data with the features"),
    ]:
        assert main(["embed", model, str(tmp_path / data), "--out", str(tmp_path / "c.npy")]) == 2
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err, err
    assert (
        main(["embed", model, str(tmp_path / "labelled.csv"), "--label-column", "6", "--out", str(tmp_path / "c.npy")])
        == 0
    )


def test_the_range_warning_is_one_line_once_in_the_cli(tmp_path, capsys):
    """evaluate on a CSV runs transform (inside scikit-learn's set_output wrapper) and reconstruct: one aekit
    line (it was said twice, once as a raw Python warning)."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((40, 6), dtype=np.float32))
    np.savetxt(tmp_path / "big.csv", 5 * rng.random((40, 6)), delimiter=",", fmt="%.4f")
    assert main(["train", str(tmp_path / "x.npy"), "--out", str(tmp_path / "r"), "--epochs", "1"]) == 0
    # a process of its own: pytest records warnings instead of letting the CLI print them
    argv = ["evaluate", str(tmp_path / "r" / "model.safetensors"), str(tmp_path / "big.csv")]
    done = subprocess.run([sys.executable, "-m", "aekit", *argv], capture_output=True, text=True, timeout=300)
    err = done.stderr
    assert done.returncode == 0, err
    assert err.count("X holds values outside [0, 1]") == 1 and "aekit: warning: X holds values outside" in err
    assert "UserWarning" not in err


def test_columns_a_model_never_used_are_left_out_even_text(tmp_path, capsys, caplog, iris_like):
    """A model trained with --id-column sample on a CSV: another CSV with a text note column, and its ids not
    named as such, still embeds; both columns are said to be left out (a text column was an error)."""
    import pandas as pd

    csv, _ = iris_like
    small = ["--epochs", "1", "--hidden-layer-sizes", "4", "--scale", "standard", "--label-column", "species"]
    assert main(["train", str(csv), "--id-column", "sample", *small, "--out", str(tmp_path / "r")]) == 0
    model = str(tmp_path / "r" / "model.safetensors")
    assert (
        main(
            [
                "embed",
                model,
                str(csv),
                "--id-column",
                "sample",
                "--label-column",
                "species",
                "--out",
                str(tmp_path / "c.npy"),
            ]
        )
        == 0
    )
    frame = pd.read_csv(csv)
    frame.insert(3, "note", "text")
    frame.to_csv(tmp_path / "noted.csv", index=False)
    capsys.readouterr()
    argv = ["embed", model, str(tmp_path / "noted.csv"), "--label-column", "species", "--out", str(tmp_path / "n.npy")]
    assert main(argv) == 0, capsys.readouterr().err
    np.testing.assert_array_equal(np.load(tmp_path / "n.npy"), np.load(tmp_path / "c.npy"))
    assert "column(s) 'note' are not among the model's features and are left out" in caplog.text
    assert "note: --id-column sample, as the model was trained" in capsys.readouterr().err  # taken again
    # a model that keeps no id column (fitted in Python, saved): the flag not given is offered
    bare = load(model)
    del bare.data_columns_
    bare.save(tmp_path / "bare.safetensors")
    caplog.clear()
    argv[1], argv[-1] = str(tmp_path / "bare.safetensors"), str(tmp_path / "b.npy")
    assert main(argv) == 0
    assert "column(s) 'sample', 'note' are not among the model's features and are left out" in caplog.text
    assert "left out; --id-column NAME keeps one as the rows' ids" in caplog.text


def test_evaluate_a_csv_test_set_beside_npz_training_data(tmp_path, capsys):
    """--label-column names the test CSV's column; an .npz of training data with its own y is read as it is."""
    rng = np.random.default_rng(0)
    X, y = rng.random((60, 6), dtype=np.float32), np.arange(60) % 2
    np.savez(tmp_path / "train.npz", X=X, y=y)
    (tmp_path / "test.csv").write_text(
        "\n".join(",".join(f"{v:.4f}" for v in r) + f",{c}" for r, c in zip(X, y, strict=True))
    )
    assert main(["train", str(tmp_path / "train.npz"), "--out", str(tmp_path / "r"), "--epochs", "1"]) == 0
    model = str(tmp_path / "r" / "model.safetensors")
    argv = ["evaluate", model, str(tmp_path / "test.csv"), "--label-column", "6", "--train-data"]
    assert main([*argv, str(tmp_path / "train.npz"), "--json", str(tmp_path / "m.json")]) == 0
    assert "knn5_accuracy" in json.loads((tmp_path / "m.json").read_text())


def test_a_single_image_file_points_at_a_folder(tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "one.png")
    assert main(["train", str(tmp_path / "one.png"), "--out", str(tmp_path / "r")]) == 2
    assert "one.png: a single image; aekit reads images from a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("stop", "how", "hint"),
    [(KeyboardInterrupt(), "interrupted", True), (TrainingDivergedError("loss nan"), "diverged", False)],
)
def test_a_training_stopped_early_keeps_its_model_and_says_how_to_go_on(tmp_path, capsys, monkeypatch, stop, how, hint):
    # the path a rank takes when the launcher stops it (another rank failed), or a loss that turned NaN
    from aekit import Autoencoder
    from aekit.commands import _keep_then_raise
    from aekit.outputs import output_folder

    est = Autoencoder(hidden_layer_sizes=(8,), epochs=1, batch_size=16, random_state=0)
    est.fit(np.random.default_rng(0).random((40, 6), dtype=np.float32))
    monkeypatch.chdir(tmp_path)  # --out run, as typed
    with pytest.raises(type(stop)), output_folder(Path("run"), ("model.safetensors",), overwrite=False) as out:
        (out.path / "checkpoint.safetensors").write_bytes(b"kept")  # as the epoch's checkpoint would be
        _keep_then_raise(out, Path("run"), est, stop)
    captured = capsys.readouterr()
    assert f"model: {Path('run') / 'model.safetensors'} (1 epoch, {how})" in captured.out
    assert ("resume with the same command plus --resume" in captured.err) == hint  # a NaN run would diverge again
    assert load(tmp_path / "run" / "model.safetensors").n_iter_ == 1


def test_training_warnings_are_one_line_on_the_command_line(tmp_path):
    X = 0.5 + 0.01 * np.random.default_rng(0).random((200, 16), dtype=np.float32)  # nothing to learn in one epoch
    np.save(tmp_path / "flat.npy", X)
    # the console script (a process of its own: pytest records warnings instead of letting the CLI print them);
    # a warning pointed past aekit's frames landed in it and printed as Python's file:line form
    script = Path(sys.executable).with_name("aekit")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "aekit"]
    argv = ["train", str(tmp_path / "flat.npy"), "--hidden-layer-sizes", "16,4", "--epochs", "1"]
    done = subprocess.run([*head, *argv, "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "aekit: warning: the reconstruction has not left its starting plateau" in done.stderr
    assert "TrainingWarning" not in done.stderr and "sys.exit" not in done.stderr


def test_a_bad_flag_value_is_named_before_an_existing_out_is(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((20, 4), dtype=np.float32))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.safetensors").write_bytes(b"a model of an earlier run")
    base = ["train", str(tmp_path / "x.npy"), "--out", str(tmp_path / "run")]
    for flag, value in (("--epochs", "0"), ("--learning-rate", "nan")):
        assert main([*base, flag, value]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"aekit: error: {flag} ") and "--overwrite" not in err  # not "pass --overwrite" first
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == b"a model of an earlier run"


def test_overwrite_leaves_no_file_of_the_previous_run_that_this_one_did_not_write(tmp_path):
    X = np.random.default_rng(0).random((30, 16), dtype=np.float32)
    np.save(tmp_path / "x.npy", X)
    assert main(["train", str(tmp_path / "x.npy"), "--out", str(tmp_path / "r"), "--epochs", "1"]) == 0
    export = ["export", str(tmp_path / "r" / "model.safetensors"), str(tmp_path / "x.npy"), "--format", "projector"]
    assert main([*export, "--image-shape", "4,4", "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "sprite.png").exists()
    assert main([*export, "--out", str(tmp_path / "p"), "--overwrite"]) == 0  # no images this time
    assert not (tmp_path / "p" / "sprite.png").exists()  # no sprite the new config does not name


def test_a_mistyped_flag_gets_the_nearest_flag_as_a_suggestion(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "x.npy", "--out", str(tmp_path / "o"), "--hiden-layer-sizes", "4"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--hiden-layer-sizes 4 (did you mean --hidden-layer-sizes?)" in err
    with pytest.raises(SystemExit):
        main(["train", "x.npy", "--out", str(tmp_path / "o"), "--zzz"])
    assert "did you mean" not in capsys.readouterr().err  # nothing near: no guess


def test_a_npy_of_images_keeps_its_shape_for_the_model_and_the_pictures(tmp_path):
    images = (np.random.default_rng(0).random((40, 6, 10)) * 255).astype(np.uint8)  # not square: no guess would do
    np.save(tmp_path / "i.npy", images)
    assert main(["train", str(tmp_path / "i.npy"), "--out", str(tmp_path / "r"), "--epochs", "1"]) == 0
    model = tmp_path / "r" / "model.safetensors"
    assert load(model).image_shape_ == (6, 10)
    argv = ["export", str(model), str(tmp_path / "i.npy"), "--format", "projector", "--out", str(tmp_path / "p")]
    assert main(argv) == 0
    assert "single_image_dim: 10\n    single_image_dim: 6" in (tmp_path / "p" / "projector_config.pbtxt").read_text()


def test_label_column_names_the_labels_array_of_an_hdf5_file(tmp_path, capsys):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["grp/pix"] = np.random.default_rng(0).random((60, 5), dtype=np.float32)
        f["grp/digit"] = np.arange(60) % 3
    data = f"{tmp_path / 'd.h5'}:grp/pix"
    base = ["train", data, "--supervised", "--epochs", "1", "--hidden-layer-sizes", "8"]
    assert main([*base, "--label-column", "digit", "--out", str(tmp_path / "r")]) == 0
    assert list(load(tmp_path / "r" / "model.safetensors").classes_) == [0, 1, 2]
    assert main([*base, "--label-column", "nope", "--out", str(tmp_path / "s")]) == 2
    assert "has no dataset 'nope' for the labels (--label-column 'nope'); it holds ['digit', 'pix']" in (
        capsys.readouterr().err
    )


def test_integer_ids_of_the_users_are_ids_and_odd_images_are_rows_for_pictures(tmp_path):
    """An --id-column of integers (customer numbers) is shown as ids, not taken for row numbers; images no
    thumbnail can show (2 channels) are exported as rows instead of failing."""
    import pandas as pd

    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.random((40, 4)), columns=list("abcd"))
    table.insert(0, "customer", np.arange(1001, 1041))
    table.to_csv(tmp_path / "t.csv", index=False)
    assert (
        main(
            ["train", str(tmp_path / "t.csv"), "--id-column", "customer", "--epochs", "1"]
            + ["--out", str(tmp_path / "r")]
        )
        == 0
    )
    model = str(tmp_path / "r" / "model.safetensors")
    export = ["export", model, str(tmp_path / "t.csv"), "--id-column", "customer", "--format", "projector"]
    assert main([*export, "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "metadata.tsv").read_text().splitlines()[:2] == ["1001", "1002"]
    from aekit._utils import own_ids

    assert own_ids(np.arange(1001, 1041)) is not None and own_ids(np.arange(40)) is None
    np.save(tmp_path / "two.npy", rng.random((30, 2, 4, 4), dtype=np.float32))  # 2 channels: no thumbnail shape
    assert main(["train", str(tmp_path / "two.npy"), "--epochs", "1", "--out", str(tmp_path / "r2")]) == 0
    argv = ["export", str(tmp_path / "r2" / "model.safetensors"), str(tmp_path / "two.npy"), "--format", "projector"]
    assert main([*argv, "--out", str(tmp_path / "p2")]) == 0
    assert not (tmp_path / "p2" / "sprite.png").exists()


def test_verbose_shows_the_commands_progress_not_opentsnes_internals(tmp_path, caplog):
    import logging

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.uniform(size=(80, 6)).astype(np.float32), y=np.arange(80) % 2)
    small = ["--epochs", "1", "--hidden-layer-sizes", "4", "--perplexity", "5"]
    with caplog.at_level(logging.INFO):
        assert main(["visualize", str(tmp_path / "d.npz"), *small, "--out", str(tmp_path / "v"), "-v"]) == 0
    assert any(r.name.startswith("aekit") for r in caplog.records)
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("openTSNE")]
    assert logging.getLogger("openTSNE").level == logging.NOTSET  # restored after the command


def test_columns_named_as_labels_or_ids_are_pointed_out_when_read_as_features(tmp_path, caplog):
    """A trial trained on its own labels and window ids (65 features, the last one `label`), unwarned."""
    rng = np.random.default_rng(0)
    rows = [f"{i},{a:.3f},{b:.3f},{i % 2},{i % 2}" for i, (a, b) in enumerate(rng.uniform(size=(40, 2)))]
    # y (a coordinate) and is_weekend (a flag) are features as often as not: no word of them (a review)
    (tmp_path / "d.csv").write_text("window id,y,b,is_weekend,is_fraud\n" + "\n".join(rows) + "\n")
    argv = ["train", str(tmp_path / "d.csv"), "--epochs", "1", "--hidden-layer-sizes", "4"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    said = [r.getMessage() for r in caplog.records if "the name says" in r.getMessage()]
    assert len(said) == 2 and "is_weekend" not in str(said) and "'y'" not in str(said)
    assert "column 'is_fraud' is read as a feature, but the name says labels; pass --label-column is_fraud" in said[0]
    assert "but the name says ids; pass --id-column 'window id' to read it" in said[1]  # quoted: it pastes
    caplog.clear()
    flags = ["--label-column", "is_fraud", "--id-column", "window id"]
    assert main([*argv, *flags, "--out", str(tmp_path / "b")]) == 0
    assert "says" not in caplog.text
    model = str(tmp_path / "a" / "model.safetensors")
    assert main(["embed", model, str(tmp_path / "d.csv"), "--out", str(tmp_path / "z.csv")]) == 0
    assert "says" not in caplog.text  # a model's columns were chosen when it was trained


def test_train_off_a_terminal_prints_one_line_per_epoch(tmp_path, capsys, caplog):
    """A trial's `aekit train` into a log file was silent for 17 minutes: a bar needs a terminal. Off one, each
    epoch gets a line (Keras' "auto" does the same); -v logs the same lines instead of printing them twice."""
    import logging

    np.save(tmp_path / "d.npy", np.random.default_rng(0).uniform(size=(64, 6)).astype(np.float32))
    argv = ["train", str(tmp_path / "d.npy"), "--epochs", "2", "--hidden-layer-sizes", "4"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert [line.split()[1] for line in err.splitlines() if line.startswith("epoch ")] == ["1/2", "2/2"]
    assert load(tmp_path / "a" / "model.safetensors").verbose == 0  # the command's display is not the model's
    with caplog.at_level(logging.INFO):
        assert main(["-v", *argv, "--out", str(tmp_path / "b")]) == 0
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ")]
    assert [r.getMessage().split()[1] for r in caplog.records if r.getMessage().startswith("epoch ")] == ["1/2", "2/2"]


def test_resume_reads_a_reordered_csv_by_the_runs_feature_names(tmp_path, capsys):
    """A trial: --resume on the same CSV with its columns reordered was refused ("another order"), though the
    run's model names its features; it reads them by name now, and the run ends as a straight one does."""
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.uniform(size=(120, 4)).astype(np.float32), columns=list("abcd"))
    frame["y"] = np.arange(120) % 3
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame[["y", "d", "c", "b", "a"]].to_csv(tmp_path / "r.csv", index=False)
    args = ["--label-column", "y", "--random-state", "0", "--hidden-layer-sizes", "8", "--batch-size", "32"]
    a, b = ["--out", str(tmp_path / "a")], ["--out", str(tmp_path / "b")]
    assert main(["train", str(tmp_path / "d.csv"), *args, *a, "--epochs", "2", "--keep-checkpoint"]) == 0
    assert main(["train", str(tmp_path / "r.csv"), *args, *a, "--epochs", "3", "--resume"]) == 0
    assert main(["train", str(tmp_path / "d.csv"), *args, *b, "--epochs", "3"]) == 0
    X = frame[list("abcd")]
    resumed, straight = load(tmp_path / "a" / "model.safetensors"), load(tmp_path / "b" / "model.safetensors")
    assert resumed.n_iter_ == 3 and list(resumed.feature_names_in_) == list("abcd")
    np.testing.assert_array_equal(resumed.transform(X), straight.transform(X))


def test_unreadable_inputs_say_what_they_are(tmp_path, capsys):
    """An attack's unclear lines: /dev/null read as "no such file", a map's tsne.safetensors as "without aekit
    metadata", denoise on a map without a decoder in Python's words."""
    from safetensors.numpy import save_file

    from aekit import ParametricTSNE

    X = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    ParametricTSNE(perplexity=5, epochs=1, hidden_layer_sizes=(4,), random_state=0).fit(X).save(tmp_path / "m.st")
    model = str(tmp_path / "m.st")
    assert main(["embed", model, "/dev/null", "--out", str(tmp_path / "c.csv")]) == 2
    assert "/dev/null is not a regular file (a device, a pipe or a socket)" in capsys.readouterr().err
    (tmp_path / "vis").mkdir()
    save_file({"x": np.zeros(1, np.float32)}, str(tmp_path / "vis" / "tsne.safetensors"), metadata={"aekit_map": "1"})
    assert main(["embed", str(tmp_path / "vis" / "tsne.safetensors"), str(tmp_path / "x.npy"), "--out", "c.csv"]) == 2
    assert f"not a model; pass the map's folder ({tmp_path / 'vis'})" in capsys.readouterr().err
    assert main(["denoise", model, str(tmp_path / "x.npy"), "--out", str(tmp_path / "d.npy")]) == 2
    err = capsys.readouterr().err
    assert "nothing to denoise; train one with --reconstruction-weight 1" in err and len(err.splitlines()) == 1


def test_evaluate_says_why_it_skipped_the_accuracies(tmp_path, capsys):
    """A trial's --limit 1000 on a folder sorted by class kept one class; the note said only "needs two classes"."""
    X = np.random.default_rng(0).random((60, 6)).astype(np.float32)
    np.savez(tmp_path / "d.npz", X=X, y=np.repeat([0, 1], 30))
    small = ["--epochs", "1", "--hidden-layer-sizes", "4"]
    assert main(["train", str(tmp_path / "d.npz"), *small, "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "r" / "model.safetensors"), str(tmp_path / "d.npz"), "--limit", "20"]) == 0
    err = capsys.readouterr().err
    assert "accuracy skipped" in err and "(found 1 class in 20 labelled rows, the first 20 (--limit))" in err


def test_denoise_draws_a_picture_of_clean_noisy_and_denoised_images(tmp_path, capsys):
    """A trial: denoising from the command line wrote arrays only, no picture to look at."""
    from PIL import Image

    X = np.random.default_rng(0).random((40, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    small = ["--epochs", "1", "--hidden-layer-sizes", "4", "--noise", "gaussian"]
    assert main(["train", str(tmp_path / "x.npy"), *small, "--out", str(tmp_path / "r")]) == 0
    base = ["denoise", str(tmp_path / "r" / "model.safetensors"), str(tmp_path / "x.npy"), "--out"]
    capsys.readouterr()
    assert main([*base, str(tmp_path / "d.npy"), "--picture", str(tmp_path / "p.jpg")]) == 2
    assert "the picture is a PNG" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "d.npy"), "--picture", str(tmp_path / "p.png")]) == 2  # rows, not images
    assert "rows are not known to be images; pass --image-shape" in capsys.readouterr().err
    assert not (tmp_path / "d.npy").exists()  # refused: nothing written
    shape = ["--image-shape", "3,3", "--picture", str(tmp_path / "p.png")]
    assert main([*base, str(tmp_path / "d.npy"), *shape]) == 2  # a review: numpy's words, after the work
    assert "--image-shape 3,3 holds 9 values but " in capsys.readouterr().err
    argv = [*base, str(tmp_path / "d.npy"), "--add-noise", "--image-shape", "4,4", "--picture", str(tmp_path / "p.png")]
    assert main(argv) == 0 and "picture: " in capsys.readouterr().out
    assert np.load(tmp_path / "d.npy").shape == (40, 16) and Image.open(tmp_path / "p.png").size[0] > 300


def test_a_denoised_csv_with_formula_like_names_reads_back_as_its_data(tmp_path, capsys):
    """A review: the spreadsheet mark on a denoise CSV's header, ids and labels ("'=c", "'-neg") made the file
    unreadable as data for the model (columns not found) and renamed the classes."""
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((40, 3)), columns=["-a", "b", "=c"])
    frame.insert(0, "id", [f"-x{i}" for i in range(40)])
    frame["label"] = np.where(np.arange(40) % 2, "pos", "-neg")
    frame.to_csv(tmp_path / "d.csv", index=False)
    rows = ["--id-column", "id", "--label-column", "label"]
    assert main(["train", str(tmp_path / "d.csv"), *rows, "--epochs", "1", "--out", str(tmp_path / "r")]) == 0
    model = str(tmp_path / "r" / "model.safetensors")
    assert main(["denoise", model, str(tmp_path / "d.csv"), *rows, "--out", str(tmp_path / "den.csv")]) == 0
    header = (tmp_path / "den.csv").read_text().splitlines()[0]
    assert header == "id,label,'-a,b,'=c"  # marked for spreadsheets
    assert main(["embed", model, str(tmp_path / "den.csv"), *rows, "--out", str(tmp_path / "e.csv")]) == 0
    back = pd.read_csv(tmp_path / "e.csv")
    assert list(back["id"]) == [f"'-x{i}" for i in range(40)]  # written marked again, read as the data's ids
    from aekit.data import load_rows

    _, y, ids = load_rows(tmp_path / "den.csv", label_column="label", id_column="id")
    assert list(ids) == list(frame["id"]) and list(y) == list(frame["label"])  # as the data had them


def test_a_command_prints_each_warning_text_once():
    """A trial: visualize --compare fits twice and printed the same scaling warning twice."""
    import warnings

    import aekit.cli as cli

    restore = cli._one_line_warnings()
    try:
        shown = [warnings.formatwarning("X holds values up to 99", UserWarning, cli.__file__, n) for n in (10, 20)]
        other = warnings.formatwarning("another note", UserWarning, cli.__file__, 30)
    finally:
        restore()
    assert shown == ["aekit: warning: X holds values up to 99\n", ""]  # two fits: two places, one text
    assert other == "aekit: warning: another note\n"


def test_evaluate_reads_whole_number_labels_as_a_text_models_classes():
    """A review: a model trained on zero-padded labels ("01", "10": text) scored 0% on a test CSV whose labels
    (10, 11) were read as numbers."""
    from types import SimpleNamespace

    from aekit.commands import _as_model_labels

    text = SimpleNamespace(classes_=np.array(["01", "10", "11"], dtype=object))
    assert _as_model_labels(np.array([10, 11, -1]), text).tolist() == ["10", "11", "-1"]
    numbers = SimpleNamespace(classes_=np.array([1, 10]))
    assert _as_model_labels(np.array([10, 1]), numbers).tolist() == [10, 1]  # numbers stay numbers
    assert _as_model_labels(None, text) is None
