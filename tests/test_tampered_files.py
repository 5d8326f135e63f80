"""Tampered model files and checkpoints (issue 20): each one is refused with one ``ModelFileError`` line.

Every case edits a tiny file written by today's aekit (metadata through safetensors'
``safe_open``/``save_file``, JSON edited as text so that ``1e400`` or ``Infinity`` reach the
file as written) and is refused by ``aekit.load``, ``load_checkpoint``, ``fit(resume_from=...)``
and the CLI (``aekit embed``, ``aekit train --resume``: exit 2, one line, no traceback),
before anything is built or loaded: the schemas in ``aekit.schema`` are checked first.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import safe_open, save_file

import aekit
from aekit import Autoencoder, SupervisedAutoencoder
from aekit._utils import ModelFileError
from aekit.cli import main
from aekit.files import load_checkpoint
from aekit.modules import build_net
from aekit.optim import make_optimizer
from aekit.schema import MAX_DEPTH, SchemaError, depth, parse

TRAIN = [
    "--epochs",
    "2",
    "--hidden-layer-sizes",
    "8",
    "--n-components",
    "2",
    "--batch-size",
    "16",
    "--random-state",
    "0",
    "--early-stopping",
    "true",
    "--validation-fraction",
    "0.25",
]  # early stopping: best.* tensors in the checkpoint
SMALL = dict(hidden_layer_sizes=(8,), n_components=2, epochs=1, batch_size=16, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A CLI run (model + checkpoint with best.* tensors), an SAE with 3 integer classes and a conv model."""
    d = tmp_path_factory.mktemp("tampered")
    X = np.random.default_rng(0).uniform(size=(64, 16)).astype(np.float32)
    np.save(d / "X.npy", X)
    assert main(["train", str(d / "X.npy"), "--out", str(d / "run"), *TRAIN, "--keep-checkpoint"]) == 0
    SupervisedAutoencoder(**SMALL, head_layer_sizes=(4,)).fit(X, np.arange(64) % 3).save(d / "sae.safetensors")
    Autoencoder(**{**SMALL, "n_components": None}, architecture="conv", image_shape=(4, 4), conv_filters=(2,)).fit(
        X
    ).save(d / "conv.safetensors")
    return {
        "X": d / "X.npy",
        "run": d / "run",
        "ae": d / "run" / "model.safetensors",
        "sae": d / "sae.safetensors",
        "conv": d / "conv.safetensors",
        "ckpt": d / "run" / "checkpoint.safetensors",
    }


def _rewrite(src: Path, dst: Path, meta: Callable | None = None, tensors: Callable | None = None) -> Path:
    with safe_open(str(src), framework="pt") as f:
        t, m = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()  # noqa: SIM118
    save_file(t if tensors is None else tensors(t), str(dst), metadata=m if meta is None else meta(m))
    return dst


def _set(entry: str, path: str, raw: str) -> Callable[[dict[str, str]], dict[str, str]]:
    """Set ``path`` (dotted) inside the JSON metadata entry ``entry`` to the JSON text ``raw``, as written."""

    def edit(m: dict[str, str]) -> dict[str, str]:
        obj = json.loads(m[entry])
        *parents, last = path.split(".")
        node = obj
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = "@RAW@"
        return {**m, entry: json.dumps(obj).replace('"@RAW@"', raw)}

    return edit


def _whole(entry: str, raw: str) -> Callable[[dict[str, str]], dict[str, str]]:
    return lambda m: {**m, entry: raw}


def _without(params: str, names: tuple[str, ...]) -> str:
    return json.dumps({k: v for k, v in json.loads(params).items() if k not in names})


DEEP = "[" * 100_000 + "]" * 100_000
SUPERVISED_ONLY = (
    "head_layer_sizes",
    "head_activation",
    "head_dropout",
    "classification_weight",
    "reconstruction_weight",
)

# ----------------------------------------------------------------------------- model files

MODEL_CASES = [  # (file, metadata edit, what the message says)
    ("ae", _whole("fitted", DEEP), "fitted is nested deeper"),
    ("ae", _whole("params", DEEP), "params is nested deeper"),
    ("ae", _whole("fitted", '{"n_features_in_": ' + DEEP + "}"), "fitted is nested deeper"),
    ("ae", _set("fitted", "n_features_in_", "1e400"), r"fitted.n_features_in_ is inf, expected an integer in \[1, "),
    ("ae", _set("fitted", "n_features_in_", "Infinity"), r"fitted.n_features_in_ is inf, expected an integer"),
    ("ae", _set("fitted", "n_features_in_", "-12"), r"fitted.n_features_in_ is -12, expected an integer in \[1, "),
    ("ae", _set("fitted", "n_features_in_", "12.0"), r"fitted.n_features_in_ is 12.0, expected an integer"),
    (
        "ae",
        _set("fitted", "seed_", "Infinity"),
        r"fitted.seed_ is inf, expected an integer in \[0, 18446744073709551615\]",
    ),
    ("ae", _set("fitted", "seed_", '"abc"'), r"fitted.seed_ is 'abc', expected an integer"),
    ("ae", _set("fitted", "seed_", str(2**64)), r"fitted.seed_ is 18446744073709551616, expected an integer"),
    ("ae", _set("fitted", "n_iter_", "NaN"), r"fitted.n_iter_ is nan, expected an integer"),
    (
        "ae",
        _set("fitted", "feature_names_in_", '["a", "b"]'),
        r"fitted.feature_names_in_ is 2 names, expected 16 names",
    ),
    ("ae", _set("fitted", "surprise", "1"), "only the keys"),
    # an attack's loads: an epoch the run never reached, markup as a stop reason, a scale without its scaler
    ("ae", _set("fitted", "best_epoch_", "1000000"), r"fitted.best_epoch_ is 1000000, expected at most n_iter_ \(2\)"),
    ("ae", _set("fitted", "stop_reason_", '"<script>"'), "fitted.stop_reason_ is '<script>', expected a training"),
    ("ae", _set("params", "scale", '"standard"'), "params.scale is scale='standard' without a fitted scaler"),
    ("ae", _set("fitted", "data_columns_", '{"id_column": 7}'), r"fitted.data_columns_.id_column is 7"),
    ("ae", _set("fitted", "data_columns_", '{"rows": "x"}'), r"fitted.data_columns_.*only the keys"),
    ("ae", _set("params", "random_state", str(2**64)), "params.random_state is 18446744073709551616"),
    ("ae", _set("params", "learning_rate", "1e400"), r"params.learning_rate is inf, expected .*a finite number"),
    (
        "ae",
        _whole("params", " " * (2**20 + 1)),
        "params is 1,048,577 characters, expected at most 1,048,576 characters",
    ),
    (
        "ae",
        _set("fitted", "history_", json.dumps({"loss": [0.5] * 2**21})),
        "fitted is .* characters, expected at most 8,388,608",
    ),
    ("ae", _whole("fitted", "not json"), "fitted is not .*, expected valid JSON"),
    ("ae", _whole("fitted", '{"n_features_in_": [}'), r"fitted is not \(Expecting value.*\), expected valid JSON"),
    ("ae", _whole("params", "1" * 5000), "params is not .*, expected valid JSON"),
    (
        "conv",
        _set("params", "image_shape", "[Infinity, 4]"),
        r"params.image_shape\[0\] is inf, expected a finite number",
    ),
    (
        "conv",
        _set("fitted", "image_shape_", "[4, 5]"),
        r"fitted.image_shape_ is \[4, 5\], expected a shape of 16 values",
    ),
    (
        "conv",
        _set("fitted", "image_shape_", "[16]"),
        r"fitted.image_shape_ is a list of 1 items, expected a list of 2 to 3 items",
    ),
    (
        "sae",
        _set("fitted", "classes_", "[1e30, 1, 2]"),
        r"fitted.classes_\[0\] is 1e\+30, expected a value of dtype <i8",
    ),
    ("sae", _set("fitted", "classes_", "[true, 1, 2]"), r"fitted.classes_\[0\] is True, expected a value of dtype <i8"),
    (
        "sae",
        _set("fitted", "classes_dtype", '"|S2000000000"'),
        "fitted.classes_dtype is '|S2000000000', expected a numpy dtype",
    ),
    (
        "sae",
        _set("fitted", "classes_dtype", '"<U200000000"'),
        "fitted.classes_dtype is '<U200000000', expected a numpy dtype",
    ),
    (
        "sae",
        _set("fitted", "classes_dtype", '"<U999"'),
        "fitted.classes_dtype is '<U999', expected text of at most 256",
    ),
    ("sae", _set("fitted", "classes_dtype", '"|O"'), r"fitted.classes_\[0\] is 0, expected a value of dtype \|O"),
    ("sae", _set("fitted", "classes_dtype", '"<f2"'), None),  # 0, 1, 2 are float16 values: loads
    # another estimator's name: a SupervisedAutoencoder has classes (and a head), an Autoencoder none
    (
        "ae",
        lambda m: {**m, "estimator": "SupervisedAutoencoder"},
        "fitted.classes_ is missing, expected the classes of a SupervisedAutoencoder",
    ),
    (
        "sae",
        lambda m: {**m, "estimator": "Autoencoder", "params": _without(m["params"], SUPERVISED_ONLY)},
        "fitted.classes_ is a list of 3 items, expected none in an Autoencoder",
    ),
]
MODEL_IDS = [f"{f}-{i}" for i, (f, _, _) in enumerate(MODEL_CASES)]


@pytest.mark.parametrize(("name", "edit", "match"), MODEL_CASES, ids=MODEL_IDS)
def test_tampered_model_metadata_refused_by_load(files, tmp_path, name, edit, match):
    bad = _rewrite(files[name], tmp_path / "bad.safetensors", meta=edit)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        if match is None:
            assert aekit.load(bad).classes_.dtype == np.float16
            return
        with pytest.raises(ModelFileError, match=match) as info:
            aekit.load(bad)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    msg = str(info.value)
    assert msg.startswith(f"{bad}: model metadata ") and "\n" not in msg
    assert msg.endswith("save the model again (Autoencoder.save or `aekit train`)")
    assert time.perf_counter() - t0 < 2.0 and peak < 64 * 2**20  # refused from the metadata: nothing big was built


REFUSED_MODELS = [c for c in MODEL_CASES if c[2] is not None]


@pytest.mark.parametrize(
    ("name", "edit", "match"), REFUSED_MODELS, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(REFUSED_MODELS)]
)
def test_tampered_model_refused_by_embed(files, tmp_path, capsys, name, edit, match):
    bad = _rewrite(files[name], tmp_path / "bad.safetensors", meta=edit)
    assert main(["embed", str(bad), str(files["X"]), "--out", str(tmp_path / "codes.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"aekit: error: {bad}: model metadata ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "codes.npy").exists()


def test_todays_models_still_load(files):
    for name in ("ae", "sae", "conv"):
        est = aekit.load(files[name])
        assert est.n_features_in_ == 16
    assert aekit.load(files["sae"]).classes_.tolist() == [0, 1, 2]


# ----------------------------------------------------------------------------- checkpoints


def _tensor_edit(name: str, value: Callable[[torch.Tensor | None], torch.Tensor | None]) -> Callable:
    def edit(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        new = value(t.get(name))
        return {k: v for k, v in t.items() if k != name} | ({} if new is None else {name: new})

    return edit


CHECKPOINT_CASES = [  # (metadata edit, tensor edit, what the message says)
    (_set("loop", "epoch", "1e400"), None, r"loop.epoch is inf, expected an integer in \[0, 2\]"),
    (_set("loop", "wait", "1e400"), None, r"loop.wait is inf, expected an integer in \[0, 2\]"),
    (_set("loop", "epoch", str(10**9)), None, r"loop.epoch is 1000000000, expected an integer in \[0, 2\]"),
    (_set("loop", "epoch", "1.5"), None, r"loop.epoch is 1.5, expected an integer"),
    (_set("loop", "epoch", "1"), None, r"loop.history.\w+ is a list of 2 items, expected a list of 1 to 1 items"),
    (_set("loop", "best_epoch", "7"), None, r"loop.best_epoch is 7, expected an integer in \[-1, 1\]"),
    (_set("loop", "best_score", "Infinity"), None, r"loop.best_score is inf"),
    (_whole("loop", DEEP), None, "loop is nested deeper"),
    (_set("params", "epochs", "1e400"), None, r"params.epochs is inf, expected an integer"),
    (_whole("seed", str(2**64)), None, r"seed is 18446744073709551616, expected null or an integer in \[0, "),
    (
        _set("param_groups", "0.params", "[0, 0, 0, 0, 0, 0, 0, 0]"),
        None,
        r"param_groups\[0\].params is a list of 8 items, expected \[0, 1, 2",
    ),
    (_set("param_groups", "0.lr", '"abc"'), None, r"param_groups\[0\].lr is 'abc', expected a finite number >= 0"),
    (
        _set("param_groups", "0.lr", "0.5"),
        None,
        r"param_groups\[0\].lr is 0.5, expected a finite number in \[0, 0.002\]",
    ),
    (
        _set("param_groups", "0.lr", "1e39"),
        None,
        r"param_groups\[0\].lr is 1e\+39, expected a finite number in \[0, 0.002\]",
    ),
    (_set("param_groups", "0.eps", "0"), None, r"param_groups\[0\].eps is 0, expected a finite number in \[1e-12, 1\]"),
    (
        _set("param_groups", "0.momentum", "1e30"),
        None,
        r"param_groups\[0\].momentum is 1e\+30, expected a finite number in \[0, 1\]",
    ),
    (
        _set("param_groups", "0.rho", "true"),
        None,
        r"param_groups\[0\].rho is True, expected a finite number in \[0, 1\]",
    ),
    (
        lambda m: {
            **m,
            "params": json.dumps({k: v for k, v in json.loads(m["params"]).items() if k != "epochs"}),
            "loop": _set("loop", "epoch", str(10**9))(m)["loop"],
        },
        None,
        r"loop.history.\w+ is a list of 2 items",
    ),
    (_whole("param_groups", "[]"), None, r"param_groups is a list of 0 items"),
    (
        _set("param_groups", "0.rho", "0.5"),
        None,
        r"param_groups\[0\].rho is 0.5, expected 0.9 \(this run's optimizer\); ",
    ),
    (
        _whole("scalar_keys", '["opt.0.velocity"]'),
        None,
        r"scalar_keys names \['opt.0.velocity'\], expected the optimizer's",
    ),
    (None, _tensor_edit("rng.cpu", lambda v: torch.full_like(v, 0xFF)), r"rng.cpu is not a valid state"),
    (None, _tensor_edit("rng.cpu", torch.zeros_like), r"rng.cpu is not a valid state"),
    (None, _tensor_edit("rng.cpu", lambda v: v[:-1]), r"rng.cpu has shape \(5055,\) torch.uint8, expected \(5056,\)"),
    (None, _tensor_edit("rng.cpu", lambda v: None), r"rng.cpu is missing"),
    (
        None,
        _tensor_edit("opt.0.velocity", lambda v: torch.zeros(3)),
        r"optimizer tensors opt.\* do not fit.*0.velocity has shape \(3,\)",
    ),
    (
        None,
        _tensor_edit("opt.0.velocity", lambda v: v.double()),
        r"0.velocity has shape \(8, 16\) torch.float64, expected \(8, 16\) torch.float32",
    ),
    (None, _tensor_edit("opt.0.velocity", lambda v: v.to(torch.int32)), r"0.velocity has shape \(8, 16\) torch.int32"),
    (
        None,
        _tensor_edit("opt.1.momentum", lambda v: None),
        r"optimizer tensors opt.\* do not fit this model: missing \['1.momentum'\]",
    ),
    (None, _tensor_edit("opt.0.extra", lambda v: torch.zeros(8, 16)), r"unexpected \['0.extra'\]"),
    (None, _tensor_edit("opt.99.velocity", lambda v: torch.zeros(8, 16)), r"unexpected \['99.velocity'\]"),
    (
        None,
        _tensor_edit("best.junk", lambda v: torch.zeros(2)),
        r"best-epoch weights best.\* do not fit this model: unexpected \['junk'\]",
    ),
    (
        None,
        _tensor_edit("best.encoder.0.weight", lambda v: torch.zeros(3, 3)),
        r"best-epoch weights best.\* .*encoder.0.weight has shape \(3, 3\)",
    ),
    (
        None,
        _tensor_edit("best.encoder.0.bias", lambda v: None),
        r"best-epoch weights best.\* do not fit this model: missing",
    ),
    (None, _tensor_edit("evil", lambda v: torch.zeros(1)), r"unexpected tensors \['evil'\] in a checkpoint"),
]
CHECKPOINT_IDS = [f"ck{i}" for i in range(len(CHECKPOINT_CASES))]


def _tampered_checkpoint(files: dict[str, Path], dst: Path, meta: Callable | None, tensors: Callable | None) -> Path:
    return _rewrite(files["ckpt"], dst, meta=meta, tensors=tensors)


def _fresh(files: dict[str, Path]) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    est = aekit.load(files["ae"])
    net = build_net(**est._net_kwargs(16, None))
    return net, make_optimizer(est.optimizer, net.parameters(), est.learning_rate, est.momentum)


def _snapshot(net: torch.nn.Module, opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return (
        [v.clone() for v in net.state_dict().values()]
        + [torch.get_rng_state()]
        + [t.clone() for st in opt.state.values() for t in st.values()]
    )


@pytest.mark.parametrize(("meta", "tensors", "match"), CHECKPOINT_CASES, ids=CHECKPOINT_IDS)
def test_tampered_checkpoint_refused_before_anything_is_loaded(files, tmp_path, meta, tensors, match):
    bad = _tampered_checkpoint(files, tmp_path / "ck.safetensors", meta, tensors)
    net, opt = _fresh(files)
    before, groups = _snapshot(net, opt), json.dumps(opt.state_dict()["param_groups"])
    with pytest.raises(ModelFileError, match=match) as info:
        load_checkpoint(bad, net, opt)
    msg = str(info.value)
    assert msg.startswith(f"{bad}: ") and "\n" not in msg
    assert msg.endswith(("train from the start", "with the parameters that wrote it"))
    after = _snapshot(net, opt)
    assert len(after) == len(before) and all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert json.dumps(opt.state_dict()["param_groups"]) == groups and not opt.state


@pytest.mark.parametrize(("meta", "tensors", "match"), CHECKPOINT_CASES, ids=CHECKPOINT_IDS)
def test_tampered_checkpoint_refused_by_fit_resume(files, tmp_path, meta, tensors, match):
    bad = _tampered_checkpoint(files, tmp_path / "ck.safetensors", meta, tensors)
    params = aekit.load(files["ae"]).get_params()
    est = Autoencoder(**{**params, "epochs": params["epochs"] + 1})  # a longer run: the checkpoint's is complete
    with pytest.raises(ModelFileError, match=match):
        est.fit(np.load(files["X"]), resume_from=bad)
    assert not hasattr(est, "net_")  # refused before the run had a model


@pytest.mark.parametrize(("meta", "tensors", "match"), CHECKPOINT_CASES, ids=CHECKPOINT_IDS)
def test_tampered_checkpoint_refused_by_train_resume(files, tmp_path, capsys, meta, tensors, match):
    run = tmp_path / "run"
    shutil.copytree(files["run"], run)
    _tampered_checkpoint(files, run / "checkpoint.safetensors", meta, tensors)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(["train", str(files["X"]), "--out", str(run), *TRAIN[:1], "3", *TRAIN[2:], "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"aekit: error: {run / 'checkpoint.safetensors'}: ") and err.count("\n") == 1
    assert "its run has done" not in err  # refused for the tampering, not for the run's length
    assert "Traceback" not in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # nothing in the run folder changed


def test_todays_checkpoint_resumes(files, tmp_path):
    """The untampered checkpoint passes every check and resumes (the CLI run's own flags)."""
    run = tmp_path / "run"
    shutil.copytree(files["run"], run)
    assert main(["train", str(files["X"]), "--out", str(run), *TRAIN[:1], "3", *TRAIN[2:], "--resume"]) == 0
    assert aekit.load(run / "model.safetensors").n_iter_ == 3


def test_adam_checkpoint_step_is_checked(tmp_path):
    """Adam keeps a one-element float32 step per parameter: its dtype and the scalar_keys entry are checked."""
    X = np.random.default_rng(0).uniform(size=(32, 6)).astype(np.float32)
    ck = tmp_path / "adam.safetensors"
    est = Autoencoder(**{**SMALL, "optimizer": "adam"}, checkpoint_path=str(ck)).fit(X)
    fresh = Autoencoder(**{**SMALL, "optimizer": "adam", "epochs": 2})
    assert fresh.fit(X, resume_from=ck).n_iter_ == 2 and est.n_iter_ == 1
    bad = _rewrite(ck, tmp_path / "b.safetensors", tensors=_tensor_edit("opt.0.step", lambda v: v.double()))
    with pytest.raises(ModelFileError, match=r"0.step has shape \(1,\) torch.float64, expected \(1,\) torch.float32"):
        Autoencoder(**{**SMALL, "optimizer": "adam", "epochs": 2}).fit(X, resume_from=bad)
    bad = _rewrite(ck, tmp_path / "c.safetensors", meta=_whole("scalar_keys", "[]"))
    with pytest.raises(ModelFileError, match=r"scalar_keys names \[\], expected the optimizer's one-element state"):
        Autoencoder(**{**SMALL, "optimizer": "adam", "epochs": 2}).fit(X, resume_from=bad)


@pytest.fixture(scope="module")
def adam_run(files, tmp_path_factory) -> Path:
    """A CLI run with Adam: its param groups hold betas, amsgrad, maximize and a step per parameter."""
    run = tmp_path_factory.mktemp("adam") / "run"
    assert main(["train", str(files["X"]), "--out", str(run), *TRAIN, "--optimizer", "adam", "--keep-checkpoint"]) == 0
    return run


ADAM_CASES = [  # settings that change what a resumed run learns, and state Adam cannot step from
    (_set("param_groups", "0.maximize", "true"), None, r"param_groups\[0\].maximize is True, expected False"),
    (_set("param_groups", "0.amsgrad", "true"), None, r"param_groups\[0\].amsgrad is True, expected False"),
    (_set("param_groups", "0.weight_decay", "0.5"), None, r"param_groups\[0\].weight_decay is 0.5, expected 0"),
    (_set("param_groups", "0.betas", "[0.5, 0.999]"), None, r"0\].betas is \[0.5, 0.999\], expected \[0.9, 0.999\]"),
    (
        _set("param_groups", "0.betas", "[1.0, 1.0]"),
        None,
        r"param_groups\[0\].betas\[0\] is 1.0, expected a finite number in \[0, 1\)",
    ),
    (
        None,
        _tensor_edit("opt.0.step", lambda v: torch.full_like(v, -3.0)),
        r"optimizer tensor opt.0.step is -3, expected a step count \(a whole number >= 0\)",
    ),
    (
        None,
        _tensor_edit("opt.1.step", lambda v: v + 0.5),
        r"optimizer tensor opt.1.step is \d+.5, expected a step count",
    ),
]


@pytest.mark.parametrize(("meta", "tensors", "match"), ADAM_CASES, ids=[f"adam{i}" for i in range(len(ADAM_CASES))])
def test_tampered_adam_checkpoint_refused_by_train_resume(files, adam_run, tmp_path, capsys, meta, tensors, match):
    """Every setting of a saved param group but the learning rate is this run's optimizer's, and Adam's step
    counts are whole numbers >= 0: else one line, not a resumed run that climbs the loss or a traceback."""
    run = tmp_path / "run"
    shutil.copytree(adam_run, run)
    _rewrite(adam_run / "checkpoint.safetensors", run / "checkpoint.safetensors", meta=meta, tensors=tensors)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    args = ["train", str(files["X"]), "--out", str(run), *TRAIN[:1], "3", *TRAIN[2:], "--optimizer", "adam"]
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"aekit: error: {run / 'checkpoint.safetensors'}: ") and err.count("\n") == 1
    assert re.search(match, err) and err.rstrip().endswith("train from the start")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # nothing in the run folder changed


def test_todays_adam_checkpoint_resumes(files, adam_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(adam_run, run)
    args = ["train", str(files["X"]), "--out", str(run), *TRAIN[:1], "3", *TRAIN[2:], "--optimizer", "adam"]
    assert main([*args, "--resume"]) == 0
    assert aekit.load(run / "model.safetensors").n_iter_ == 3


# ----------------------------------------------------------------------------- bounded parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": [1, {"b": "[[[[{{{{"}], "c": "\\"[["}', 3),  # brackets inside strings (and escaped quotes) do not count
        ("[" * 100_000 + "]" * 100_000, 100_000),
        ('"' + '\\"' * 300_000, 0),  # one unterminated string of escaped quotes: one pass, not one per quote
        ('["' + "a" * 1_000_000, 1),
        ("[" + "0," * 500_000 + "0]", 1),
    ],
)
def test_depth_is_measured_in_one_pass(text, expected):
    t0 = time.perf_counter()
    assert depth(text) == expected
    assert time.perf_counter() - t0 < 2.0


def test_parse_refuses_before_decoding():
    nested: list = []
    for _ in range(MAX_DEPTH - 1):
        nested = [nested]
    assert parse(json.dumps(nested), "x") == nested  # MAX_DEPTH levels: fine
    with pytest.raises(SchemaError, match=f"x is nested deeper, expected JSON nested at most {MAX_DEPTH} levels deep"):
        parse("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "x")
    with pytest.raises(SchemaError, match="x is 11 characters, expected at most 10 characters of JSON"):
        parse("[1, 2, 3.5]", "x", max_chars=10)


def test_resume_refuses_a_checkpoint_without_its_epochs(files, tmp_path):
    """Every estimator writes params.epochs, the bound of loop.epoch: a file without it does not resume."""
    strip = lambda m: {**m, "params": json.dumps({k: v for k, v in json.loads(m["params"]).items() if k != "epochs"})}  # noqa: E731
    bad = _rewrite(files["ckpt"], tmp_path / "ck.safetensors", meta=strip)
    est = Autoencoder(**aekit.load(files["ae"]).get_params())
    with pytest.raises(ModelFileError, match=r"written with different parameters \['epochs'\]"):
        est.fit(np.load(files["X"]), resume_from=bad)
