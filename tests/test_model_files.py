"""Model and checkpoint files: what a damaged, tampered or foreign file does on load, and atomic saves.

``aekit.load`` and ``load_checkpoint`` read safetensors + JSON only (never a
pickle) and check names, shapes, dtypes, finiteness and the format version; a
bad file raises ``ModelFileError`` (an ``InputError``) and nothing else.
Saving goes through ``atomic_path``: a failure mid-write leaves the previous
file intact and no temporary file behind.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import safe_open, save_file

import aekit
from aekit._utils import InputError, ModelFileError, atomic_path
from aekit.estimators import Autoencoder, SupervisedAutoencoder
from aekit.files import load_checkpoint
from aekit.modules import build_net
from aekit.optim import make_optimizer

PARAMS = dict(hidden_layer_sizes=(8,), n_components=2, epochs=2, batch_size=16, random_state=0, device="cpu")
SMOKE = int(os.environ.get("AEKIT_FUZZ_SMOKE", 50))
FULL = 2000


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(0).uniform(size=(64, 12)).astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory, data):
    """A saved model, a checkpoint of the same run, and the fitted estimator."""
    d = tmp_path_factory.mktemp("model")
    est = Autoencoder(**PARAMS, checkpoint_path=str(d / "ckpt.safetensors")).fit(data)
    est.save(d / "model.safetensors")
    return d / "model.safetensors", d / "ckpt.safetensors", est


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()  # noqa: SIM118


def _rewrite(src: Path, dst: Path, tensors=None, meta=None) -> Path:
    t, m = _read(src)
    save_file(t if tensors is None else tensors(t), str(dst), metadata=m if meta is None else meta(m))
    return dst


def _fresh(est: Autoencoder, n_features: int = 12):
    net = build_net(**est._net_kwargs(n_features, None))
    return net, make_optimizer(est.optimizer, net.parameters(), est.learning_rate, est.momentum)


def _state(net, opt) -> list[torch.Tensor]:
    return [v.clone() for v in net.state_dict().values()] + [
        t.clone() for st_ in opt.state.values() for t in st_.values()
    ]


# ----------------------------------------------------------------------------- model files


def test_valid_model_loads_identically(files, data):
    model, _, est = files
    back = aekit.load(model)
    assert np.array_equal(back.transform(data), est.transform(data))


@pytest.mark.parametrize("cut", [0, 4, 8, 40, "header", "half", -1])
def test_truncated_model_refused(files, tmp_path, cut):
    model, ckpt, _ = files
    blob = model.read_bytes()
    header_len = 8 + int.from_bytes(blob[:8], "little")
    n = {"header": header_len, "half": (header_len + len(blob)) // 2}.get(cut, cut)
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(blob[:n])
    with pytest.raises(ModelFileError, match="not a valid aekit model file") as info:
        aekit.load(bad)
    assert str(bad) in str(info.value)
    ck = ckpt.read_bytes()
    bad.write_bytes(ck[: {"header": header_len, "half": len(ck) // 2}.get(cut, cut)])
    with pytest.raises(ModelFileError, match="not a valid checkpoint"):
        load_checkpoint(bad, *_fresh(files[2]))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_poisoned_tensor_refused(files, tmp_path, value):
    model, ckpt, est = files

    def poison(t):
        t["decoder.0.weight"][3, 1] = value
        return t

    with pytest.raises(ModelFileError, match=r"decoder.0.weight holds NaN or inf"):
        aekit.load(_rewrite(model, tmp_path / "nan.safetensors", tensors=poison))

    def poison_ck(t):
        t["net.decoder.0.weight"][0, 0] = value
        return t

    net, opt = _fresh(est)
    before = _state(net, opt)
    with pytest.raises(ModelFileError, match=r"net.decoder.0.weight holds NaN or inf"):
        load_checkpoint(_rewrite(ckpt, tmp_path / "nanck.safetensors", tensors=poison_ck), net, opt)
    assert all(torch.equal(a, b) for a, b in zip(before, _state(net, opt), strict=True))  # nothing was half-loaded


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda t: {**t, "encoder.0.weight": torch.zeros(8, 13)},
            r"encoder.0.weight has shape \(8, 13\).*expected \(8, 12\)",
        ),
        (lambda t: {**t, "encoder.0.weight": t["encoder.0.weight"].double()}, "torch.float64"),
        (lambda t: {k: v for k, v in t.items() if k != "decoder.0.bias"}, r"missing \['decoder.0.bias'\]"),
        (lambda t: {**t, "extra.weight": torch.zeros(2)}, r"unexpected \['extra.weight'\]"),
    ],
)
def test_wrong_tensors_refused(files, tmp_path, edit, match):
    with pytest.raises(ModelFileError, match=match):
        aekit.load(_rewrite(files[0], tmp_path / "w.safetensors", tensors=edit))


def test_checkpoint_wrong_shapes_refused(files, tmp_path):
    _, ckpt, est = files
    bad = _rewrite(
        ckpt, tmp_path / "c.safetensors", tensors=lambda t: {**t, "net.encoder.0.weight": torch.zeros(8, 13)}
    )
    net, opt = _fresh(est)
    before = _state(net, opt)
    with pytest.raises(ModelFileError, match="do not fit this model"):
        load_checkpoint(bad, net, opt)
    assert all(torch.equal(a, b) for a, b in zip(before, _state(net, opt), strict=True))
    # a model of another size cannot take this checkpoint either
    wide = Autoencoder(**{**PARAMS, "hidden_layer_sizes": (9,)})
    with pytest.raises(ModelFileError, match="do not fit this model"):
        load_checkpoint(ckpt, *_fresh(wide))


@pytest.mark.parametrize("version", ["3", "0", "", "1.0"])
def test_wrong_format_version_refused(files, tmp_path, version):
    model, ckpt, est = files
    with pytest.raises(ModelFileError, match=f"model format {version}, this aekit reads formats 1 and 2; upgrade"):
        aekit.load(_rewrite(model, tmp_path / "v.safetensors", meta=lambda m: {**m, "aekit_format": version}))
    with pytest.raises(ModelFileError, match=f"checkpoint format '{version}'"):
        load_checkpoint(
            _rewrite(ckpt, tmp_path / "vc.safetensors", meta=lambda m: {**m, "aekit_checkpoint": version}), *_fresh(est)
        )


def test_checkpoint_and_model_swapped(files):
    model, ckpt, est = files
    with pytest.raises(ModelFileError, match="training checkpoint, not a model.*resume_from"):
        aekit.load(ckpt)
    with pytest.raises(ModelFileError, match=r"found a model file \(load it with aekit.load\)"):
        load_checkpoint(model, *_fresh(est))


def test_plain_safetensors_without_metadata_refused(tmp_path):
    p = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    with pytest.raises(ModelFileError, match="without aekit metadata"):
        aekit.load(p)
    with pytest.raises(ModelFileError, match="without aekit checkpoint metadata"):
        load_checkpoint(p, *_fresh(Autoencoder(**PARAMS)))


class _Evil:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.mark.parametrize("zip_format", [True, False])
def test_torch_pickle_renamed_is_never_unpickled(files, tmp_path, zip_format):
    """torch.save output (a pickle) under a .safetensors name: refused, and its payload never runs."""
    sentinel = tmp_path / "pwned"
    p = tmp_path / "model.safetensors"
    torch.save(
        {"encoder.0.weight": torch.zeros(8, 12), "evil": _Evil(str(sentinel))},
        p,
        _use_new_zipfile_serialization=zip_format,
    )
    with pytest.raises(ModelFileError, match="not a valid aekit model file"):
        aekit.load(p)
    with pytest.raises(ModelFileError, match="not a valid checkpoint"):
        load_checkpoint(p, *_fresh(files[2]))
    assert not sentinel.exists()
    armed = tmp_path / "model.pt"  # proof that the file is armed: unpickling it runs the payload
    armed.write_bytes(p.read_bytes())
    torch.load(armed, weights_only=False)
    assert sentinel.exists()


@pytest.mark.parametrize(
    "field, value",
    [
        ("fitted", {"n_features_in_": 20_000_000}),  # ~1.3 GB of weights (seconds) before shapes were checked first
        ("fitted", {"n_features_in_": 10**11}),  # terabytes: an allocation failure before shapes were checked first
        ("params", {"hidden_layer_sizes": [10**9]}),
        ("params", {"n_components": "two"}),
        ("params", {"architecture": "conv", "image_shape": [10**6, 10**6]}),
        ("params", {"no_such_param": 1}),
        ("fitted", {"classes_": [0, 1], "classes_dtype": "|O"}),
        ("params", []),
        ("fitted", "not json{"),
    ],
)
def test_tampered_metadata_refused_quickly(files, tmp_path, field, value):
    def edit(m):
        if isinstance(value, dict):
            return {**m, field: json.dumps({**json.loads(m[field]), **value})}
        return {**m, field: value if isinstance(value, str) else json.dumps(value)}

    bad = _rewrite(files[0], tmp_path / "t.safetensors", meta=edit)
    t0 = time.perf_counter()
    with pytest.raises(InputError):
        aekit.load(bad)
    assert time.perf_counter() - t0 < 1.0  # refused from the metadata, nothing big was built


def test_loaded_model_never_writes_where_its_file_says(files, tmp_path, data):
    """checkpoint_path / callbacks in a (tampered) file are dropped: a refit cannot clobber an arbitrary path."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")

    def edit(m):
        return {
            **m,
            "params": json.dumps({**json.loads(m["params"]), "checkpoint_path": str(victim), "callbacks": "x"}),
        }

    est = aekit.load(_rewrite(files[0], tmp_path / "t.safetensors", meta=edit))
    assert est.checkpoint_path is None and est.callbacks is None
    est.fit(data)
    assert victim.read_text() == "precious"


def test_supervised_model_classes_roundtrip(tmp_path, data):
    y = np.where(np.arange(64) % 2 == 0, "cat", "dog")
    est = SupervisedAutoencoder(**PARAMS).fit(data, y)
    back = aekit.load(est.save(tmp_path / "s.safetensors"))
    assert list(back.classes_) == ["cat", "dog"] and np.array_equal(back.predict(data), est.predict(data))


# ----------------------------------------------------------------------------- fuzzing the loaders


@st.composite
def damaged(draw: st.DrawFn, blob: bytes) -> bytes:
    data = bytearray(blob)
    header_end = 8 + int.from_bytes(blob[:8], "little")
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.one_of(st.integers(0, header_end - 1), st.integers(0, len(blob) - 1)))
        kind = draw(st.sampled_from(["flip", "set", "truncate"]))
        if pos >= len(data):
            continue
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[pos] = draw(st.sampled_from([0, 0x20, 0x22, 0x30, 0x39, 0x5B, 0x7B, 0x7D, 0xFF]))
        else:
            del data[pos:]
    return bytes(data)


def _fuzz_loaders(files, tmp: Path, n: int) -> dict[str, int]:
    model, ckpt, est = files
    X = np.random.default_rng(1).uniform(size=(5, 12)).astype(np.float32)
    outcomes = {"ok": 0, "error": 0}
    blobs = {"model": model.read_bytes(), "ckpt": ckpt.read_bytes()}

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(["model", "ckpt"]).flatmap(lambda k: st.tuples(st.just(k), damaged(blobs[k]))))
    def run(case):
        kind, blob = case
        p = tmp / f"{kind}.safetensors"
        p.write_bytes(blob)
        try:
            if kind == "model":
                back = aekit.load(p)
                assert back.transform(X).shape == (5, back._n_features_out)
            else:
                net, opt = _fresh(est)
                state = load_checkpoint(p, net, opt, expected_params=est._json_params())
                assert state.epoch >= 0 and all(
                    torch.isfinite(v).all() for v in net.state_dict().values() if v.is_floating_point()
                )
            outcomes["ok"] += 1
        except InputError as exc:  # ModelFileError, or parameter validation of tampered metadata
            assert str(exc)
            outcomes["error"] += 1

    run()
    return outcomes


def test_fuzz_model_files_smoke(files, tmp_path):
    outcomes = _fuzz_loaders(files, tmp_path, SMOKE)
    assert sum(outcomes.values()) >= SMOKE and outcomes["error"] > 0


@pytest.mark.slow
def test_fuzz_model_files_full(files, tmp_path):
    outcomes = _fuzz_loaders(files, tmp_path, FULL)
    print(f"model files: {outcomes}")
    assert sum(outcomes.values()) >= FULL and outcomes["error"] > 0 and outcomes["ok"] > 0


# ----------------------------------------------------------------------------- atomic writes


def _failing_save_file(exc: BaseException):
    def save(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")  # some bytes reached the temporary file
        raise exc

    return save


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failed_model_save_keeps_previous_file(tmp_path, data, monkeypatch, exc):
    import safetensors.torch

    est = Autoencoder(**PARAMS).fit(data)
    p = est.save(tmp_path / "m.safetensors")
    before = p.read_bytes()
    monkeypatch.setattr(safetensors.torch, "save_file", _failing_save_file(exc))
    with pytest.raises(type(exc)):
        est.save(p)
    assert p.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]  # no temporary file left behind
    monkeypatch.undo()
    assert np.array_equal(aekit.load(p).transform(data), est.transform(data))


def test_failed_checkpoint_save_keeps_previous_checkpoint(tmp_path, data, monkeypatch):
    import safetensors.torch

    ck = tmp_path / "ck.safetensors"
    est = Autoencoder(**PARAMS, checkpoint_path=str(ck)).fit(data)
    before = ck.read_bytes()
    monkeypatch.setattr(safetensors.torch, "save_file", _failing_save_file(OSError(28, "No space left on device")))
    with pytest.raises(OSError, match="No space"):
        Autoencoder(**{**PARAMS, "epochs": 3}, checkpoint_path=str(ck)).fit(data)
    assert ck.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["ck.safetensors"]
    monkeypatch.undo()
    assert load_checkpoint(ck, *_fresh(est)).epoch == 2


def test_atomic_path_never_exposes_partial_content(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        tmp.write_bytes(b"new but incomplete")
        assert p.read_bytes() == b"old"  # the final name is untouched while writing
        raise RuntimeError("crash")
    assert p.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["f.bin"]
    with atomic_path(p) as tmp:
        tmp.write_bytes(b"new")
    assert p.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_saved_files_follow_the_umask(tmp_path):
    import os

    from aekit._utils import atomic_path

    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "f.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o644


def test_saved_models_and_checkpoints_follow_the_umask(tmp_path, data):
    """safetensors writes its own temporary file; the final file still gets a plain open()'s permissions."""
    old = os.umask(0o022)
    try:
        est = Autoencoder(**PARAMS, checkpoint_path=str(tmp_path / "ckpt.safetensors")).fit(data)
        est.save(tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    for name in ("m.safetensors", "ckpt.safetensors"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_atomic_path_onto_a_folder_is_a_clear_error(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        with atomic_path(tmp_path / "d") as tmp:
            tmp.write_bytes(b"x")
    assert (tmp_path / "d").is_dir() and sorted(os.listdir(tmp_path)) == ["d"]


@pytest.mark.parametrize(
    "params",
    [
        {
            "n_components": np.int64(3),
            "hidden_layer_sizes": (np.int64(8),),
            "learning_rate": np.float64(0.002),
        },  # e.g. from GridSearchCV over np arrays
        {"random_state": np.int64(3)},
        {"random_state": np.random.RandomState(0)},
    ],
)
def test_numpy_parameter_values_save_load_and_checkpoint(tmp_path, data, params):
    kw = {**PARAMS, **params, "checkpoint_path": str(tmp_path / "ckpt.safetensors")}
    est = Autoencoder(**kw).fit(data)
    est.save(tmp_path / "m.safetensors")
    back = aekit.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(back.transform(data), est.transform(data))
    if isinstance(params.get("random_state"), np.random.RandomState):
        assert back.random_state == est.seed_  # the seed the RandomState gave this fit: a refit repeats it
    else:
        assert back.get_params()["n_components"] == est.n_components
    assert (tmp_path / "ckpt.safetensors").exists()


def test_feature_names_survive_save_and_load(tmp_path, data):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(data, columns=[f"f{i}" for i in range(data.shape[1])])
    est = Autoencoder(**PARAMS).fit(df)
    est.save(tmp_path / "m.safetensors")
    back = aekit.load(tmp_path / "m.safetensors")
    assert list(back.feature_names_in_) == list(df.columns)
    np.testing.assert_array_equal(back.transform(df), est.transform(df))
    with pytest.raises(ValueError, match="Feature names"):
        back.transform(df.iloc[:, ::-1])


def test_set_output_survives_save_and_load_as_it_survives_pickle(tmp_path, data):
    pd = pytest.importorskip("pandas")
    est = Autoencoder(**PARAMS).set_output(transform="pandas").fit(data)
    back = aekit.load(est.save(tmp_path / "pandas.safetensors"))
    codes = back.transform(data)
    assert isinstance(codes, pd.DataFrame) and list(codes.columns) == ["autoencoder0", "autoencoder1"]
    assert isinstance(back.inverse_transform(codes), pd.DataFrame)
    plain = aekit.load(est.set_output(transform="default").save(tmp_path / "default.safetensors"))
    assert isinstance(plain.transform(data), np.ndarray)
    unset = aekit.load(Autoencoder(**PARAMS).fit(data).save(tmp_path / "unset.safetensors"))
    assert isinstance(unset.transform(data), np.ndarray) and not hasattr(unset, "_sklearn_output_config")


def test_each_class_loads_its_own_files_and_names_the_other(tmp_path, data):
    y = np.arange(len(data)) % 2
    path = SupervisedAutoencoder(**PARAMS).fit(data, y).save(tmp_path / "sae.safetensors")
    assert type(SupervisedAutoencoder.load(path)) is SupervisedAutoencoder
    with pytest.raises(InputError, match=r"sae.safetensors: the file holds SupervisedAutoencoder, not Autoencoder; "):
        Autoencoder.load(path)


def test_many_and_unusual_feature_names_survive_save_and_load(tmp_path):
    """Names are tensors of UTF-8 bytes: 150,000 of them (beyond the JSON bound), empty, non-ASCII, a surrogate."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    names = [f"gene_{i:06d}_ß" for i in range(150_000)]
    names[:3] = ["", "日本語 column", "bad \udcff byte"]
    df = pd.DataFrame(rng.random((3, len(names)), dtype=np.float32), columns=names)
    est = Autoencoder(hidden_layer_sizes=(2,), n_components=1, epochs=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(df)
    back = aekit.load(est.save(tmp_path / "m.safetensors"))
    assert list(back.feature_names_in_) == names and back.feature_names_in_.dtype == object


def test_resuming_compares_feature_names_only_where_both_runs_have_them(tmp_path, data):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(data, columns=[f"f{i}" for i in range(data.shape[1])])
    ck = str(tmp_path / "ck.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Autoencoder(**PARAMS, checkpoint_path=ck).fit(df)
        with pytest.raises(ModelFileError, match="feature names are not those the checkpoint's run was fitted on"):
            Autoencoder(**{**PARAMS, "epochs": PARAMS["epochs"] + 1}).fit(df.iloc[:, ::-1], resume_from=ck)
        longer = Autoencoder(**{**PARAMS, "epochs": PARAMS["epochs"] + 1}).fit(data, resume_from=ck)  # no names
        assert longer.n_iter_ == PARAMS["epochs"] + 1
        Autoencoder(**PARAMS, checkpoint_path=ck).fit(data)  # a run without names: any names resume it
        assert Autoencoder(**{**PARAMS, "epochs": PARAMS["epochs"] + 1}).fit(df, resume_from=ck).n_iter_ > 1


_UTF8, _ENDS = "fitted.feature_names_in_.utf8", "fitted.feature_names_in_.ends"


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda t: t.__setitem__(_UTF8, torch.tensor([0xFF, 0xFE, 0x41], dtype=torch.uint8)), "name 0. is other bytes"),
        (lambda t: t[_ENDS].__setitem__(0, 99), "ends that cut the"),
        (lambda t: t.__setitem__(_ENDS, t[_ENDS][:-1]), r"\.ends is shape \(1,\) torch.int64, expected shape \(2,\)"),
        (lambda t: t.__setitem__(_UTF8, t[_UTF8].float()), "a 1-D uint8 tensor"),
        (lambda t: t.pop(_ENDS), "together"),
    ],
)
def test_tampered_feature_names_are_refused(tmp_path, edit, match):
    pd = pytest.importorskip("pandas")
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    df = pd.DataFrame(np.random.default_rng(0).random((20, 2), dtype=np.float32), columns=["ab", "c"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Autoencoder(hidden_layer_sizes=(2,), n_components=1, epochs=1).fit(df).save(tmp_path / "m.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(ModelFileError, match=match):
        aekit.load(tmp_path / "bad.safetensors")


def test_a_model_that_its_file_could_not_hold_is_not_written(tmp_path, data):
    """save refuses what load would refuse, before writing: the file already there is kept."""
    est = Autoencoder(**PARAMS).fit(data)
    path = est.save(tmp_path / "m.safetensors")
    before = path.read_bytes()
    est.history_ = {"loss": [0.123456789] * 1_000_000}  # a million epochs of history: beyond the fitted entry's bound
    with pytest.raises(ValueError, match=r"not written: .* most of them history_ .*the model is still in memory"):
        est.save(path)
    assert path.read_bytes() == before


def test_path_objects_as_parameters(tmp_path, data):
    est = Autoencoder(**PARAMS, checkpoint_path=tmp_path / "ck.safetensors").fit(data)  # a Path, not a str
    assert est.stop_reason_ == "completed" and (tmp_path / "ck.safetensors").exists()
    est.save(tmp_path / "m.safetensors")
    assert (
        aekit.load(tmp_path / "m.safetensors").checkpoint_path is None
    )  # a loaded model never writes where its file says


def test_resuming_with_another_estimator_names_both(tmp_path, data):
    ck = str(tmp_path / "ck.safetensors")
    Autoencoder(**PARAMS, checkpoint_path=ck).fit(data)
    said = r"written by Autoencoder.fit, resumed by ParametricTSNE.fit; resume with the estimator that wrote it"
    with pytest.raises(ModelFileError, match=said):
        aekit.ParametricTSNE(hidden_layer_sizes=(8,), perplexity=3, epochs=3, random_state=0).fit(data, resume_from=ck)
    with safe_open(ck, framework="pt") as f:  # the checkpoint's parameters stay the estimator's own
        assert Autoencoder(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(f.metadata()["params"]).items()}
        )
        assert json.loads(f.metadata()["run"]) == {"estimator": "Autoencoder", "n_train": len(data)}


def test_load_places_the_tensors_and_keeps_the_device_parameter(tmp_path):
    from sklearn.base import clone

    X = np.random.default_rng(0).random((40, 6), dtype=np.float32)
    ae = aekit.Autoencoder(hidden_layer_sizes=(8,), epochs=1, random_state=0).fit(X)  # device="auto"
    ae.save(tmp_path / "m.safetensors")
    back = aekit.load(tmp_path / "m.safetensors", device="cpu")
    assert back.device_.type == "cpu" and next(back.net_.parameters()).device.type == "cpu"
    assert back.device == "auto" and clone(back).device == "auto"  # a clone refits where the original would


def test_resuming_on_other_data_of_as_many_rows_warns_of_its_scale(tmp_path):
    """A trial: fit(resume_from=...) on other data (as many rows) refitted scale without a word; the
    checkpoint's weights had learnt on inputs scaled otherwise."""
    X = np.random.default_rng(0).random((120, 6), dtype=np.float32)
    ck = tmp_path / "ck.safetensors"
    kw = dict(hidden_layer_sizes=(8,), batch_size=16, random_state=0, scale="standard")
    aekit.Autoencoder(epochs=1, checkpoint_path=str(ck), **kw).fit(X)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*scale")  # the same data: the same scale, no word
        aekit.Autoencoder(epochs=2, **kw).fit(X, resume_from=ck)
    with pytest.warns(UserWarning, match=r"the data's scale \(offset and factor per feature\) differs"):
        aekit.Autoencoder(epochs=2, **kw).fit(X * 50 + 100, resume_from=ck)


def test_resuming_on_another_number_of_rows_warns(tmp_path):
    X = np.random.default_rng(0).random((120, 6), dtype=np.float32)
    ck = tmp_path / "ck.safetensors"
    kw = dict(hidden_layer_sizes=(8,), batch_size=16, random_state=0)
    aekit.Autoencoder(epochs=1, checkpoint_path=str(ck), **kw).fit(X)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*resuming on")  # the same rows: no word
        aekit.Autoencoder(epochs=2, **kw).fit(X, resume_from=ck)
    with pytest.warns(UserWarning, match=r"resuming on 100 training rows, but the checkpoint's run trained on 120"):
        aekit.Autoencoder(epochs=2, **kw).fit(X[:100], resume_from=ck)


@pytest.mark.parametrize(
    "changed",
    [{"scale": "standard"}, {"activation": "relu"}, {"code_activation": "linear"}, {"hidden_layer_sizes": (8,)}],
)
def test_save_writes_the_parameters_the_model_was_fitted_with(tmp_path, caplog, changed):
    """A review and a trial: set_params after fit saved the new parameters beside the old weights: load()
    refused the file as damaged (scale, widths) or built another network around them (activation: other codes)."""
    from aekit import Autoencoder

    X = np.random.default_rng(0).random((40, 4)).astype(np.float32)
    ae = Autoencoder(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X)
    (name,) = changed
    fitted_with = ae.get_params()[name]
    ae.set_params(**changed, precision="bfloat16")  # precision acts on inference: saved as set, unsaid
    with caplog.at_level(logging.WARNING, logger="aekit"):
        ae.save(tmp_path / "m.safetensors")
    assert f"saved with the parameters the model was fitted with; {name}=" in caplog.text
    assert "precision" not in caplog.text
    loaded = aekit.load(tmp_path / "m.safetensors")
    assert loaded.get_params()[name] == fitted_with and loaded.precision == "bfloat16"
    assert np.array_equal(loaded.transform(X), ae.transform(X))  # the in-memory model's network, as fitted
    caplog.clear()
    loaded.save(tmp_path / "again.safetensors")  # a loaded model's parameters are the ones it was fitted with
    assert "saved with" not in caplog.text


def test_load_leaves_the_callers_random_state_alone(tmp_path):
    """A review: load() built the network with torch's global generator (its initial weights, overwritten),
    so a loop of load() in one thread changed a seeded fit in another, and the caller's random state."""
    X = np.random.default_rng(0).random((40, 4)).astype(np.float32)
    Autoencoder(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X).save(tmp_path / "m.safetensors")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    aekit.load(tmp_path / "m.safetensors")
    assert torch.equal(torch.get_rng_state(), before)


def test_a_refit_refused_before_training_leaves_the_model_as_it_was(tmp_path):
    """A review: a refit with another scale, refused by a later check, left the old network beside the new
    scaler: transform used both, and save() wrote a file that load() called damaged."""
    X = np.random.default_rng(0).random((64, 16)).astype(np.float32)
    ae = Autoencoder(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X)
    codes = ae.transform(X)
    with pytest.raises(InputError):
        ae.set_params(scale="standard", augment="affine", image_shape=(8, 8)).fit(X)  # 16 values: no 8 x 8 image
    assert ae.input_offset_ is None and np.array_equal(ae.transform(X), codes)
    ae.save(tmp_path / "m.safetensors")
    assert np.array_equal(aekit.load(tmp_path / "m.safetensors").transform(X), codes)
