"""Issue 20, the generated attack matrix (slow suite): every family of bad input × every entry point that reads it.

Families: tampered model metadata, tampered checkpoints, parameter values (bounds included), bad data files
(truncated / non-numeric / huge-header npy, duplicate npz members, ragged / duplicate-header / quoted CSV,
values beyond float32, bad labels), bad arrays given to the Python API and bad ``--out`` paths. Entry points:
``aekit.load``, ``Autoencoder(...).fit``, ``fit(resume_from=...)``, ``transform``, ``aekit.load_array`` and the
CLI in-process (``aekit.cli.main``): train, train --resume, embed, evaluate, denoise, visualize, explore, export.

Each case: the API raises an ``AekitError`` (never another type) or works where the case is legitimate; the CLI
returns 2 with exactly one ``aekit: error:`` line on stderr and no traceback (or 0 where the case works).
The case tables of the hand-written tests (tests/test_tampered_files.py, tests/test_bounds.py) are reused.

Generated cases: 904 at the time of writing (224 model files, 102 checkpoints, 196 parameters, 270 data files,
72 arrays, 40 --out paths); ``test_the_matrix_has_at_least_500_cases`` checks >= 500 at collect time.
Flags refused while parsing get argparse's one line, which names the command: ``aekit train: error: ...``.
"""

from __future__ import annotations

import io
import re
import shutil
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aekit
from aekit import Autoencoder
from aekit._utils import AekitError
from aekit.cli import main
from tests.test_tampered_files import CHECKPOINT_CASES, MODEL_CASES, SMALL, TRAIN, _rewrite

pytestmark = pytest.mark.slow

N_FEATURES = 16
OK, ERR, EITHER = "ok", "err", "either"  # EITHER: refusing and working are both acceptable; the contract still holds


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """Built once: a CLI run (model + checkpoint with best.* tensors), an SAE, a conv model and the bad data files."""
    d = tmp_path_factory.mktemp("matrix")
    X = np.random.default_rng(0).uniform(size=(48, N_FEATURES)).astype(np.float32)
    np.save(d / "X.npy", X)
    assert main(["train", str(d / "X.npy"), "--out", str(d / "run"), *TRAIN, "--keep-checkpoint"]) == 0
    aekit.SupervisedAutoencoder(**SMALL, head_layer_sizes=(4,)).fit(X, np.arange(48) % 3).save(d / "sae.safetensors")
    conv = Autoencoder(**{**SMALL, "n_components": None}, architecture="conv", image_shape=(4, 4), conv_filters=(2,))
    conv.fit(X).save(d / "conv.safetensors")
    (d / "data").mkdir()
    for name, write in DATA_FILES.items():
        write(d / "data" / name, X)
    return {
        "dir": d,
        "X": d / "X.npy",
        "run": d / "run",
        "ae": d / "run" / "model.safetensors",
        "sae": d / "sae.safetensors",
        "conv": d / "conv.safetensors",
        "ckpt": d / "run" / "checkpoint.safetensors",
    }


# ----------------------------------------------------------------------------- the two contracts


def _api(call: Callable[[], Any], expect: str) -> None:
    try:
        call()
    except AekitError:
        assert expect != OK, "refused a case that should work"
    except Exception as exc:  # noqa: BLE001 - the point: any other type is a failure
        pytest.fail(f"{type(exc).__name__} (not an AekitError): {exc}"[:500])
    else:
        assert expect != ERR, "accepted a case that must be refused"


def _cli(argv: list[str], capsys: pytest.CaptureFixture, expect: str) -> None:
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own refusals exit 2 with usage + one error line
        rc = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert rc in ({0} if expect == OK else {2} if expect == ERR else {0, 2}), (rc, err)
    if rc == 2:  # argparse's refusals name the command: "aekit train: error: argument --x: ... (see --help)"
        assert err.count("\n") == 1 and re.match(r"aekit( \w+)?: error: ", err), err


# ----------------------------------------------------------------------------- family 1: tampered model metadata

MODEL_COMMANDS: dict[str, Callable[[Path, dict[str, Path], Path], list[str]]] = {
    "embed": lambda m, w, t: ["embed", str(m), str(w["X"]), "--out", str(t / "codes.npy")],
    "evaluate": lambda m, w, t: ["evaluate", str(m), str(w["X"]), "--json", str(t / "e.json")],
    "denoise": lambda m, w, t: ["denoise", str(m), str(w["X"]), "--out", str(t / "den.npy")],
    "visualize": lambda m, w, t: ["visualize", str(w["X"]), "--model", str(m), "--out", str(t / "v.png")],
    "explore": lambda m, w, t: ["explore", str(w["X"]), "--model", str(m), "--out", str(t / "x.html")],
    "export-onnx": lambda m, w, t: ["export", str(m), "--format", "onnx", "--out", str(t / "m.onnx")],
    "export-projector": lambda m, w, t: ["export", str(m), str(w["X"]), "--format", "projector", "--out", str(t / "p")],
}
MODEL_MATRIX = [
    pytest.param(name, edit, cmd, OK if match is None else ERR, id=f"{name}{i}-{cmd}")
    for i, (name, edit, match) in enumerate(MODEL_CASES)
    for cmd in ["api-load", *MODEL_COMMANDS]
]


@pytest.mark.parametrize(("name", "edit", "cmd", "expect"), MODEL_MATRIX)
def test_tampered_model(world, tmp_path, capsys, name, edit, cmd, expect):
    bad = _rewrite(world[name], tmp_path / "bad.safetensors", meta=edit)
    if cmd == "api-load":
        _api(lambda: aekit.load(bad), expect)
    else:
        _cli(MODEL_COMMANDS[cmd](bad, world, tmp_path), capsys, EITHER if expect == OK else expect)


# ----------------------------------------------------------------------------- family 2: tampered checkpoints

CHECKPOINT_MATRIX = [
    pytest.param(meta, tensors, entry, id=f"ck{i}-{entry}")
    for i, (meta, tensors, _) in enumerate(CHECKPOINT_CASES)
    for entry in ("api-fit-resume", "api-sae-resume", "cli-train-resume")
]


@pytest.mark.parametrize(("meta", "tensors", "entry"), CHECKPOINT_MATRIX)
def test_tampered_checkpoint(world, tmp_path, capsys, meta, tensors, entry):
    if entry == "cli-train-resume":
        run = tmp_path / "run"
        shutil.copytree(world["run"], run)
        _rewrite(world["ckpt"], run / "checkpoint.safetensors", meta=meta, tensors=tensors)
        _cli(["train", str(world["X"]), "--out", str(run), *TRAIN, "--resume"], capsys, ERR)
        return
    bad = _rewrite(world["ckpt"], tmp_path / "ck.safetensors", meta=meta, tensors=tensors)
    params = aekit.load(world["ae"]).get_params()
    if entry == "api-fit-resume":
        _api(lambda: Autoencoder(**params).fit(np.load(world["X"]), resume_from=bad), ERR)
    else:  # an autoencoder's checkpoint given to a supervised one: refused, whatever the tampering
        sae = aekit.SupervisedAutoencoder(**params)
        _api(lambda: sae.fit(np.load(world["X"]), np.arange(48) % 3, resume_from=bad), ERR)


# ----------------------------------------------------------------------------- family 3: parameter values

PARAM_CASES: list[tuple[dict[str, Any], list[str], str]] = [  # (API params, CLI flags, expectation)
    ({"learning_rate": 1e39}, ["--learning-rate", "1e39"], ERR),
    ({"learning_rate": 0.0}, ["--learning-rate", "0"], ERR),
    ({"learning_rate": -1.0}, ["--learning-rate", "-1"], ERR),
    ({"learning_rate": float("nan")}, ["--learning-rate", "nan"], ERR),
    ({"learning_rate": float("inf")}, ["--learning-rate", "inf"], ERR),
    ({"learning_rate": "abc"}, ["--learning-rate", "abc"], ERR),
    ({"hidden_layer_sizes": (2**40,)}, ["--hidden-layer-sizes", "1099511627776"], ERR),
    ({"hidden_layer_sizes": (0,)}, ["--hidden-layer-sizes", "0"], ERR),
    ({"hidden_layer_sizes": (-3,)}, ["--hidden-layer-sizes", "-3"], ERR),
    ({"hidden_layer_sizes": (2**20, 2**20)}, ["--hidden-layer-sizes", "1048576,1048576"], ERR),
    ({"hidden_layer_sizes": "8,x"}, ["--hidden-layer-sizes", "8,x"], ERR),
    ({"n_components": 10**10}, ["--n-components", "10000000000"], ERR),
    ({"n_components": 2**63}, ["--n-components", "9223372036854775808"], ERR),
    ({"n_components": 0}, ["--n-components", "0"], ERR),
    ({"n_components": 2.5}, ["--n-components", "2.5"], ERR),
    ({"architecture": "conv", "kernel_size": 2**40}, ["--architecture", "conv", "--kernel-size", "1099511627776"], ERR),
    ({"architecture": "conv", "kernel_size": 0}, ["--architecture", "conv", "--kernel-size", "0"], ERR),
    (
        {"architecture": "conv", "conv_filters": (10**9,)},
        ["--architecture", "conv", "--conv-filters", "1000000000"],
        ERR,
    ),
    ({"architecture": "conv", "image_shape": (2**17, 2)}, ["--architecture", "conv", "--image-shape", "131072,2"], ERR),
    ({"architecture": "conv", "image_shape": (5, 5)}, ["--architecture", "conv", "--image-shape", "5,5"], ERR),
    ({"architecture": "nope"}, ["--architecture", "nope"], ERR),
    ({"random_state": 2**64}, ["--random-state", "18446744073709551616"], ERR),
    ({"random_state": -1}, ["--random-state", "-1"], ERR),
    ({"random_state": 2**32 - 1}, ["--random-state", "4294967295"], OK),
    ({"epochs": 0}, ["--epochs", "0"], ERR),
    ({"epochs": -1}, ["--epochs", "-1"], ERR),
    ({"epochs": 1.5}, ["--epochs", "1.5"], ERR),
    ({"batch_size": 0}, ["--batch-size", "0"], ERR),
    ({"batch_size": -5}, ["--batch-size", "-5"], ERR),
    ({"batch_size": 10**6}, ["--batch-size", "1000000"], EITHER),
    ({"device": "meta"}, ["--device", "meta"], ERR),
    ({"device": "xla"}, ["--device", "xla"], ERR),
    ({"device": "cuda:99"}, ["--device", "cuda:99"], ERR),
    ({"device": "cpu:1"}, ["--device", "cpu:1"], ERR),
    ({"device": "bogus"}, ["--device", "bogus"], ERR),
    ({"validation_fraction": 1.5}, ["--validation-fraction", "1.5"], ERR),
    ({"validation_fraction": -0.1}, ["--validation-fraction", "-0.1"], ERR),
    ({"noise_factor": -1.0}, ["--noise-factor", "-1"], ERR),
    ({"noise_factor": float("nan")}, ["--noise-factor", "nan"], ERR),
    ({"dropout": 1.5}, ["--dropout", "1.5"], ERR),
    ({"dropout": -0.5}, ["--dropout", "-0.5"], ERR),
    ({"momentum": float("inf")}, ["--momentum", "inf"], ERR),
    ({"momentum": -1.0}, ["--momentum", "-1"], ERR),
    ({"beta": float("nan")}, ["--beta", "nan"], ERR),
    ({"patience": -1}, ["--patience", "-1"], ERR),
    ({"min_delta": float("inf")}, ["--min-delta", "inf"], ERR),
    ({"loss": "nope"}, ["--loss", "nope"], ERR),
    ({"optimizer": "nope"}, ["--optimizer", "nope"], ERR),
    ({"activation": "nope"}, ["--activation", "nope"], ERR),
]
PARAM_MATRIX = [
    pytest.param(params, flags, entry, expect, id=f"p{i}-{entry}")
    for i, (params, flags, expect) in enumerate(PARAM_CASES)
    for entry in ("api-fit", "api-sae-fit", "cli-train", "cli-train-supervised")
]
TINY = ["--epochs", "1", "--hidden-layer-sizes", "4", "--n-components", "2", "--batch-size", "16", "--device", "cpu"]


def _tiny_params(params: dict[str, Any]) -> dict[str, Any]:
    base = {**SMALL, "hidden_layer_sizes": (4,)}
    if params.get("architecture") == "conv":
        base.update(n_components=None, image_shape=(4, 4), conv_filters=(2,))
    return {**base, **params}


def _tiny_flags(flags: list[str]) -> list[str]:
    conv = ["--n-components", "none", "--image-shape", "4,4", "--conv-filters", "2"] if "conv" in flags else []
    return [*TINY, *conv, *flags]  # later flags win: the case's value is the one parsed


@pytest.mark.parametrize(("params", "flags", "entry", "expect"), PARAM_MATRIX)
def test_parameter_values(world, tmp_path, capsys, params, flags, entry, expect):
    X = np.load(world["X"])
    if entry == "api-fit":
        _api(lambda: Autoencoder(**_tiny_params(params)).fit(X), expect)
    elif entry == "api-sae-fit":
        _api(lambda: aekit.SupervisedAutoencoder(**_tiny_params(params)).fit(X, np.arange(48) % 3), expect)
    else:
        csv = tmp_path / "l.csv"  # the supervised run reads its labels from a column
        np.savetxt(
            csv,
            np.column_stack([X, np.arange(48) % 3]),
            delimiter=",",
            fmt="%.6g",
            header=",".join([f"f{j}" for j in range(N_FEATURES)] + ["label"]),
            comments="",
        )
        data = (
            [str(csv), "--supervised", "--label-column", "label"]
            if entry == "cli-train-supervised"
            else [str(world["X"])]
        )
        _cli(["train", *data, "--out", str(tmp_path / "run"), *_tiny_flags(flags)], capsys, expect)


# ----------------------------------------------------------------------------- family 4: bad data files


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _huge_header(p: Path, X: np.ndarray) -> None:
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1, 16), }" + b" " * 20_000 + b"\n"
    p.write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header + np.zeros(16).tobytes())


def _dup_npz(p: Path, X: np.ndarray) -> None:
    with warnings.catch_warnings(), zipfile.ZipFile(p, "w") as zf:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name: the point of the file
        zf.writestr("X.npy", _npy_bytes(X))
        zf.writestr("X.npy", _npy_bytes(X[::-1].copy()))


def _csv(rows: list[str]) -> Callable[[Path, np.ndarray], None]:
    return lambda p, X: p.write_text("\n".join(rows) + "\n")


def _with(value: float, r: int = 3, c: int = 5) -> Callable[[Path, np.ndarray], None]:
    def write(p: Path, X: np.ndarray) -> None:
        a = X.astype(np.float64)
        a[r, c] = value
        np.save(p, a) if p.suffix == ".npy" else np.savetxt(p, a, delimiter=",", fmt="%.17g")

    return write


HEADER = ",".join(f"f{j}" for j in range(N_FEATURES))
ROW = ",".join(["0.5"] * N_FEATURES)
DATA_FILES: dict[str, Callable[[Path, np.ndarray], None]] = {
    "truncated.npy": lambda p, X: p.write_bytes(_npy_bytes(X)[: 128 + 100]),
    "header-only.npy": lambda p, X: p.write_bytes(_npy_bytes(X)[:128]),
    "empty.npy": lambda p, X: p.write_bytes(b""),
    "garbage.npy": lambda p, X: p.write_bytes(b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 40),
    "text.npy": lambda p, X: np.save(p, np.array([["a"] * N_FEATURES] * 4)),
    "object.npy": lambda p, X: np.save(p, np.array([[object()] * N_FEATURES] * 4, dtype=object), allow_pickle=True),
    "complex.npy": lambda p, X: np.save(p, X.astype(np.complex64)),
    "huge-header.npy": _huge_header,
    "nan.npy": _with(float("nan")),
    "inf.npy": _with(float("inf")),
    "beyond-f32.npy": _with(1e39),
    "beyond-f64ish.npy": _with(-1e308),
    "zero-rows.npy": lambda p, X: np.save(p, X[:0]),
    "dup-members.npz": _dup_npz,
    "no-x.npz": lambda p, X: np.savez(p, Z=X),
    "bad-y.npz": lambda p, X: np.savez(p, X=X, y=np.r_[np.zeros(47), -1e19]),
    "short-y.npz": lambda p, X: np.savez(p, X=X, y=np.zeros(3)),
    "not-a-zip.npz": lambda p, X: p.write_bytes(b"PK\x03\x04" + b"\0" * 40),
    "ragged.csv": _csv([HEADER, ROW, ROW + ",0.5", ROW]),
    "short-row.csv": _csv([HEADER, ROW, ROW.rsplit(",", 1)[0], ROW]),
    "dup-header.csv": _csv([HEADER.replace("f1,", "f0,"), ROW, ROW]),
    "quoted.csv": lambda p, X: p.write_text(  # the real rows: t-SNE needs distinct points
        '"a,b",' + HEADER.split(",", 1)[1] + "\n" + "\n".join(",".join(f"{v:.6g}" for v in r) for r in X) + "\n"
    ),
    "non-numeric.csv": _csv([HEADER, ROW, "abc," + ROW.split(",", 1)[1], ROW]),
    "beyond-f32.csv": _with(1e39),
    "beyond-f64ish.csv": _with(-1e308),
    "empty.csv": _csv([""]),
    "header-only.csv": _csv([HEADER]),
    "label-1e20.csv": _csv([HEADER + ",label", ROW + ",1", ROW + ",1e20", ROW + ",0"]),
    "label-text.csv": lambda p, X: p.write_text(  # all 48 rows: t-SNE needs distinct points
        HEADER
        + ",label\n"
        + "".join(",".join(f"{v:.6g}" for v in r) + f",{'cat' if i % 2 else 1}\n" for i, r in enumerate(X))
    ),
    "dup-label.csv": _csv(["label," + HEADER + ",label", "1," + ROW + ",2", "0," + ROW + ",1"]),
}
LABELLED = {"label-1e20.csv", "label-text.csv", "dup-label.csv"}
WORKS = {  # legitimate files: these work
    "quoted.csv",  # a quoted header cell holding the delimiter is one column
    "no-x.npz",  # an .npz holding one array (whatever its name) is that array
    "label-text.csv",  # text labels are classes
}
DATA_COMMANDS: dict[str, Callable[[Path, dict[str, Path], Path], list[str]]] = {
    "train": lambda f, w, t: ["train", str(f), "--out", str(t / "run"), *TINY],
    "embed": lambda f, w, t: ["embed", str(w["ae"]), str(f), "--out", str(t / "codes.npy")],
    "evaluate": lambda f, w, t: ["evaluate", str(w["ae"]), str(f)],
    "denoise": lambda f, w, t: ["denoise", str(w["ae"]), str(f), "--out", str(t / "den.npy")],
    "visualize": lambda f, w, t: ["visualize", str(f), "--out", str(t / "v.png"), "--perplexity", "2"],
    "explore": lambda f, w, t: [
        "explore",
        str(f),
        "--model",
        str(w["ae"]),
        "--out",
        str(t / "x.html"),
        "--perplexity",
        "2",
    ],
    "export": lambda f, w, t: ["export", str(w["ae"]), str(f), "--format", "projector", "--out", str(t / "p")],
}
DATA_MATRIX = [
    pytest.param(name, cmd, OK if name in WORKS else ERR, id=f"{name}-{cmd}")
    for name in DATA_FILES
    for cmd in ["api-load-array", "api-fit", *DATA_COMMANDS]
]


@pytest.mark.parametrize(("name", "cmd", "expect"), DATA_MATRIX)
def test_bad_data_file(world, tmp_path, capsys, name, cmd, expect):
    f = world["dir"] / "data" / name
    label = ["--label-column", "label"] if name in LABELLED else []
    if cmd == "api-load-array":
        _api(lambda: aekit.load_array(f, label_column="label" if label else None), expect)
    elif cmd == "api-fit":
        _api(lambda: Autoencoder(**SMALL).fit(aekit.load_array(f, label_column="label" if label else None)[0]), expect)
    else:
        _cli([*DATA_COMMANDS[cmd](f, world, tmp_path), *label], capsys, expect)


# ----------------------------------------------------------------------------- family 5: bad arrays to the API


def _array(kind: str) -> Any:
    X = np.full((6, N_FEATURES), 0.5)
    edits: dict[str, Callable[[], Any]] = {
        "nan": lambda: np.where(np.eye(6, N_FEATURES) > 0, np.nan, X),
        "inf": lambda: np.where(np.eye(6, N_FEATURES) > 0, np.inf, X),
        "beyond-f32": lambda: np.where(np.eye(6, N_FEATURES) > 0, 1e39, X),
        "beyond-f32-neg": lambda: np.where(np.eye(6, N_FEATURES) > 0, -1e300, X),
        "one-d": lambda: X[0],
        "three-d": lambda: X.reshape(6, 4, 4),
        "narrow": lambda: X[:, :3],
        "wide": lambda: np.hstack([X, X]),
        "zero-rows": lambda: X[:0],
        "strings": lambda: X.astype(str).astype(object),
        "complex": lambda: X.astype(np.complex128),
        "none": lambda: None,
    }
    return edits[kind]()


ARRAY_KINDS = [
    "nan",
    "inf",
    "beyond-f32",
    "beyond-f32-neg",
    "one-d",
    "three-d",
    "narrow",
    "wide",
    "zero-rows",
    "strings",
    "complex",
    "none",
]
READ_ANY = {"three-d", "strings"}  # (6, 4, 4) images flatten to 16 features; numeric strings convert, as in sklearn
FIT_ANY = READ_ANY | {"narrow", "wide"}  # a fresh estimator fits any width
ARRAY_METHODS = ["transform", "inverse_transform", "reconstruct", "score", "reconstruction_error", "fit"]
ARRAY_MATRIX = [pytest.param(k, m, id=f"{k}-{m}") for k in ARRAY_KINDS for m in ARRAY_METHODS]


@pytest.fixture(scope="module")
def fitted(world) -> Autoencoder:
    return aekit.load(world["ae"])


@pytest.mark.parametrize(("kind", "method"), ARRAY_MATRIX)
def test_bad_array(fitted, kind, method):
    X = _array(kind)
    if method == "fit":
        _api(lambda: Autoencoder(**SMALL).fit(X), EITHER if kind in FIT_ANY else ERR)
    elif method == "inverse_transform":  # codes have n_components=2 columns: every one of these arrays is wrong
        _api(lambda: fitted.inverse_transform(X), ERR)
    else:
        _api(lambda: getattr(fitted, method)(X), EITHER if kind in READ_ANY else ERR)


# ----------------------------------------------------------------------------- family 6: bad --out paths

OUT_COMMANDS: dict[str, Callable[[dict[str, Path], str], list[str]]] = {
    "train": lambda w, o: ["train", str(w["X"]), "--out", o, *TINY],
    "embed": lambda w, o: ["embed", str(w["ae"]), str(w["X"]), "--out", o],
    "evaluate": lambda w, o: ["evaluate", str(w["ae"]), str(w["X"]), "--json", o],
    "denoise": lambda w, o: ["denoise", str(w["ae"]), str(w["X"]), "--out", o],
    "visualize": lambda w, o: ["visualize", str(w["X"]), "--out", o, "--perplexity", "2"],
    "explore": lambda w, o: ["explore", str(w["X"]), "--model", str(w["ae"]), "--out", o, "--perplexity", "2"],
    "export-onnx": lambda w, o: ["export", str(w["ae"]), "--format", "onnx", "--out", o],
    "export-projector": lambda w, o: ["export", str(w["ae"]), str(w["X"]), "--format", "projector", "--out", o],
}


def _out(kind: str, t: Path, suffix: str) -> str:
    (t / "file.npy").write_bytes(b"user data")
    (t / "dir").mkdir()
    (t / "dir" / "keep.txt").write_text("user data")
    return {
        "below-a-file": str(t / "file.npy" / f"sub{suffix}"),
        "deep-below-a-file": str(t / "file.npy" / "a" / "b" / f"sub{suffix}"),
        "name-too-long": str(t / ("x" * 300 + suffix)),
        "nul-byte": str(t / f"a\0b{suffix}"),
        "empty": "",
    }[kind]


OUT_KINDS = ["below-a-file", "deep-below-a-file", "name-too-long", "nul-byte", "empty"]
OUT_SUFFIX = {
    "train": "",
    "embed": ".npy",
    "evaluate": ".json",
    "denoise": ".npy",
    "visualize": ".png",
    "explore": ".html",
    "export-onnx": ".onnx",
    "export-projector": "",
}
OUT_MATRIX = [pytest.param(k, c, id=f"{k}-{c}") for k in OUT_KINDS for c in OUT_COMMANDS]
OUT_WORKS = {("empty", "evaluate")}  # `--json ""` is read as "no JSON file": evaluate prints its report and exits 0


@pytest.mark.parametrize(("kind", "cmd"), OUT_MATRIX)
def test_bad_out_path(world, tmp_path, capsys, kind, cmd):
    out = _out(kind, tmp_path, OUT_SUFFIX[cmd])
    before = (tmp_path / "file.npy").read_bytes(), (tmp_path / "dir" / "keep.txt").read_text()
    _cli(OUT_COMMANDS[cmd](world, out), capsys, OK if (kind, cmd) in OUT_WORKS else ERR)
    assert ((tmp_path / "file.npy").read_bytes(), (tmp_path / "dir" / "keep.txt").read_text()) == before


# ----------------------------------------------------------------------------- the count

MATRICES = [MODEL_MATRIX, CHECKPOINT_MATRIX, PARAM_MATRIX, DATA_MATRIX, ARRAY_MATRIX, OUT_MATRIX]


def test_the_matrix_has_at_least_500_cases():
    n = sum(map(len, MATRICES))
    assert n >= 500, n
