"""Golden files: model files and checkpoints written by earlier aekit releases load, forever.

``tests/golden/aekit-<version>/`` holds what ``tests/golden/make_golden.py`` wrote with that
release: tiny models of every kind, their ``transform`` outputs on 20 fixed rows, and a
training checkpoint stopped after its first of two epochs. A new release adds a folder and
never rewrites an old one; every folder is tested here through the public API only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import aekit
from aekit import Autoencoder, SupervisedAutoencoder
from aekit._utils import ModelFileError
from aekit.files import check_tensors

GOLDEN = Path(__file__).resolve().parent / "golden"
RELEASES = sorted(p for p in GOLDEN.glob("aekit-*") if p.is_dir())
MODELS = [(r, name) for r in RELEASES for name in json.loads((r / "expected.json").read_text())["models"]]
CHECKPOINTS = [(r, name) for r in RELEASES for name in json.loads((r / "expected.json").read_text())["checkpoints"]]


def _expected(release: Path) -> dict:
    return json.loads((release / "expected.json").read_text())


def _data(release: Path) -> dict[str, np.ndarray]:
    with np.load(release / "data.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def test_golden_files_exist():
    assert RELEASES, f"no golden files under {GOLDEN}; run tests/golden/make_golden.py"
    assert {"dense", "supervised", "conv", "vae"} <= {name for _, name in MODELS}
    assert CHECKPOINTS


@pytest.mark.parametrize(("release", "name"), MODELS, ids=[f"{r.name}-{n}" for r, n in MODELS])
def test_golden_model_loads_and_transforms_as_stored(release, name):
    entry = _expected(release)["models"][name]
    rows = _data(release)["rows"]  # (20, 784) uint8
    est = aekit.load(release / entry["file"])
    want = np.load(release / entry["transform"], allow_pickle=False)
    got = est.transform(rows)
    assert got.dtype == np.float32 and got.shape == want.shape
    # the same weights and the same arithmetic; only the CPU's kernels may differ in the last bits
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert est.inverse_transform(got).shape == rows.shape
    assert est.n_features_in_ == rows.shape[1] and est.n_iter_ == 1
    if "predict" in entry:
        assert isinstance(est, SupervisedAutoencoder)
        assert est.classes_.dtype.kind == "U"  # text labels come back as text, not numbers
        assert est.predict(rows).tolist() == entry["predict"]


@pytest.mark.parametrize(("release", "name"), CHECKPOINTS, ids=[f"{r.name}-{n}" for r, n in CHECKPOINTS])
def test_golden_checkpoint_resumes_to_the_end(release, name, tmp_path):
    entry = _expected(release)["checkpoints"][name]
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in entry["params"].items()}
    X = _data(release)["X"]
    # a new checkpoint path: resuming never writes into the golden folder
    est = Autoencoder(**params, checkpoint_path=str(tmp_path / "ck.safetensors"))
    est.fit(X, resume_from=release / entry["file"])
    done = entry["epochs_done"]
    assert est.n_iter_ == params["epochs"] > done and est.stop_reason_ in ("completed", "early_stopping")
    assert est.history_["loss"][:done] == entry["loss"]  # the stored epochs are kept, not retrained
    assert len(est.history_["loss"]) == params["epochs"] and np.isfinite(est.history_["loss"]).all()
    assert np.isfinite(est.transform(X[:20])).all()
    # and the checkpoint this release writes on resuming loads again
    again = Autoencoder(**{**params, "epochs": params["epochs"] + 1}).fit(X, resume_from=tmp_path / "ck.safetensors")
    assert again.n_iter_ == params["epochs"] + 1
    assert again.history_["loss"][: params["epochs"]] == est.history_["loss"]


# ----------------------------------------------------------------------------- the one tensor check


_NET = {"a.weight": torch.zeros(3, 2), "a.bias": torch.zeros(3), "steps": torch.zeros((), dtype=torch.int64)}


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("net.a.bias", None, r"missing \['a.bias'\]"),
        ("net.b.weight", torch.zeros(1), r"unexpected \['b.weight'\]"),
        ("net.a.weight", torch.zeros(2, 3), r"a.weight has shape \(2, 3\) torch.float32, expected \(3, 2\) "),
        ("net.steps", torch.zeros(()), r"steps has shape \(\) torch.float32, expected \(\) torch.int64"),
        ("net.a.bias", torch.tensor([0.0, float("nan"), 0.0]), "tensor net.a.bias holds NaN or inf values"),
        # outside the prefix (optimizer state, best weights) only finiteness is checked, but always
        ("opt.0.exp_avg", torch.tensor([float("inf")]), "tensor opt.0.exp_avg holds NaN or inf values"),
    ],
)
def test_check_tensors_refuses(name, value, match):
    good = {f"net.{k}": v.clone() for k, v in _NET.items()}
    good |= {"opt.0.exp_avg": torch.ones(2), "rng.cpu": torch.zeros(4, dtype=torch.uint8)}
    check_tensors(Path("f.safetensors"), good, _NET, prefix="net.", fix="FIX", corrupt="BAD")  # fits: no error
    bad = {k: v for k, v in good.items() if k != name} | ({} if value is None else {name: value})
    with pytest.raises(ModelFileError, match=match) as info:
        check_tensors(Path("f.safetensors"), bad, _NET, prefix="net.", fix="FIX", corrupt="BAD")
    assert str(info.value).startswith("f.safetensors: ")
    assert str(info.value).endswith("; BAD" if "NaN" in match else "; FIX")


def test_files_module_knows_no_estimator():
    """DESIGN.md's import direction: estimators import files, never the other way round."""
    import ast

    import aekit.files

    tree = ast.parse(Path(aekit.files.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.split(".")[:2] in (["aekit", "estimators"], ["aekit", "cli"])}
