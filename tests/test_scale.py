"""The data-range switch (aekit.scaling): "auto" loss and output, ``scale``, the uint8 rule, the warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import aekit
from aekit import Autoencoder, SupervisedAutoencoder, TrainingWarning
from aekit._utils import InputError, ModelFileError, as_float32, uint8_pixels
from aekit.cli import main
from aekit.scaling import advice, fit_scaler, resolve
from aekit.scaling import apply as apply_scaler

from .conftest import SMALL


@pytest.fixture
def tabular():
    """Three features on very different scales (0.001s, units, thousands), 3 classes."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    X = np.column_stack(
        [0.002 * y + 0.001 * rng.standard_normal(120), y + rng.standard_normal(120), 1000 * y + 4000]
    ).astype(np.float32)
    return X + rng.uniform(0, 1e-3, X.shape).astype(np.float32), y


def _caught(fn):
    """The result and the data-range warnings (not the TrainingWarnings of short fits on random data)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, [str(w.message) for w in caught if not issubclass(w.category, TrainingWarning)]


# ----------------------------------------------------------------------------- "auto" loss and output


@pytest.mark.parametrize(
    ("loss", "out", "unit", "want"),
    [
        ("auto", "auto", True, ("bce", "sigmoid")),  # the MNIST reference
        ("auto", "auto", False, ("mse", "linear")),
        ("mse", "auto", True, ("mse", "sigmoid")),  # the output follows the data, not the loss
        ("mse", "auto", False, ("mse", "linear")),  # loss="mse" alone no longer keeps a sigmoid
        ("bce", "auto", False, ("bce", "sigmoid")),  # bce needs the sigmoid (and the range check refuses)
        ("auto", "linear", True, ("mse", "linear")),
        ("auto", "sigmoid", False, ("mse", "sigmoid")),  # an explicit choice is kept (and warned about)
        ("huber", "linear", False, ("huber", "linear")),
    ],
)
def test_auto_resolves_from_the_data_range(loss, out, unit, want):
    assert resolve(loss, out, unit) == want


def test_auto_on_data_in_unit_range_is_the_reference_bit_for_bit(blobs):
    X, y = blobs
    auto = Autoencoder(**SMALL).fit(X)
    explicit = Autoencoder(**SMALL, loss="bce", output_activation="sigmoid").fit(X)
    assert (auto.loss_, auto.output_activation_) == ("bce", "sigmoid")
    np.testing.assert_array_equal(auto.transform(X), explicit.transform(X))
    assert auto.history_["loss"] == explicit.history_["loss"]
    sae = SupervisedAutoencoder(**SMALL).fit(X, y)
    ref = SupervisedAutoencoder(**SMALL, loss="bce", output_activation="sigmoid").fit(X, y)
    np.testing.assert_array_equal(sae.predict_proba(X), ref.predict_proba(X))


def test_auto_on_data_outside_unit_range_trains_mse_on_a_linear_output(blobs):
    X, _ = blobs
    est = Autoencoder(**SMALL).fit(X * 4 - 2)
    assert (est.loss_, est.output_activation_) == ("mse", "linear")
    assert est.net_.output_activation == "linear"
    recon = est.reconstruct(X * 4 - 2)
    assert recon.min() < 0 or recon.max() > 1  # not squeezed into a sigmoid's [0, 1]
    assert est.score(X * 4 - 2) == pytest.approx(-np.mean((recon - (X * 4 - 2)) ** 2), rel=1e-5)  # in X's units


def test_explicit_bce_outside_unit_range_names_the_one_switch(blobs):
    X, _ = blobs
    with pytest.raises(InputError, match=r"loss='bce' needs X in \[0, 1\], found values in \[0, 2\]") as info:
        Autoencoder(**SMALL, loss="bce").fit(X * 2)
    assert "scale='minmax'" in str(info.value) and "loss='auto'" in str(info.value)
    assert "output_activation='linear'" not in str(info.value)  # no second expert switch
    with pytest.raises(InputError, match=r"noise='gaussian' with a sigmoid output.*output_activation='auto'"):
        Autoencoder(**SMALL, noise="gaussian", output_activation="sigmoid").fit(X * 2)
    Autoencoder(**SMALL, loss="bce", scale="minmax").fit(X * 2)  # the switch works


# ----------------------------------------------------------------------------- scale


def test_fit_scaler_maps_each_feature_and_leaves_constant_ones_at_zero():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(-5, 5, 50), np.full(50, 3.0), np.full(50, 1e6), 1e-4 * rng.normal(size=50)])
    X = X.astype(np.float32)
    for scale in ("minmax", "standard"):
        offset, factor = fit_scaler(X, scale)
        Z = (X - offset) / factor
        assert offset.dtype == factor.dtype == np.float32 and np.all(np.isfinite(Z))
        np.testing.assert_array_equal(Z[:, 1:3], 0)  # constant features: 0, not a division by zero
        if scale == "minmax":
            np.testing.assert_allclose([Z[:, c].min() for c in (0, 3)], 0, atol=1e-6)
            np.testing.assert_allclose([Z[:, c].max() for c in (0, 3)], 1, atol=1e-6)
        else:
            np.testing.assert_allclose(Z[:, [0, 3]].mean(0), 0, atol=1e-5)
            np.testing.assert_allclose(Z[:, [0, 3]].std(0), 1, atol=1e-5)
    offset, factor = fit_scaler(X, "pixels")
    assert np.all(offset == 0) and np.all(factor == 255)
    assert fit_scaler(X, None) is None


@pytest.mark.filterwarnings("ignore:X.s features are on very different scales")  # by_hand, unscaled
@pytest.mark.parametrize("scale", ["minmax", "standard", "pixels"])
def test_scale_is_the_same_model_as_scaling_by_hand_and_outputs_are_in_user_units(tabular, scale):
    X, _ = tabular
    est = Autoencoder(**SMALL, scale=scale).fit(X)
    offset, factor = fit_scaler(X, scale)
    np.testing.assert_array_equal(est.input_offset_, offset)
    np.testing.assert_array_equal(est.input_scale_, factor)
    by_hand = Autoencoder(**SMALL).fit((X - offset) / factor)  # the same seed, the same data as the model sees it
    assert (est.loss_, est.output_activation_) == (by_hand.loss_, by_hand.output_activation_)
    np.testing.assert_array_equal(est.transform(X), by_hand.transform((X - offset) / factor))
    recon = est.reconstruct(X)
    np.testing.assert_allclose(recon, by_hand.reconstruct((X - offset) / factor) * factor + offset, rtol=1e-5)
    np.testing.assert_allclose(est.inverse_transform(est.transform(X)), recon, rtol=1e-5, atol=1e-5)
    assert recon.shape == X.shape
    if scale != "pixels":  # the thousands come back as thousands (offset 0 for pixels)
        assert recon[:, 2].mean() > 1000
    assert est.reconstruction_error(X) == pytest.approx(by_hand.reconstruction_error((X - offset) / factor))


def test_minmax_makes_auto_choose_bce_and_standard_mse(tabular):
    X, y = tabular
    assert Autoencoder(**SMALL, scale="minmax").fit(X).loss_ == "bce"
    sae = SupervisedAutoencoder(**SMALL, scale="standard").fit(X, y)
    assert (sae.loss_, sae.output_activation_) == ("mse", "linear")
    assert sae.predict(X).shape == (len(X),) and 0 <= sae.score(X, y) <= 1


def test_encoder_and_decoder_modules_include_the_scale(tabular):
    X, _ = tabular
    est = Autoencoder(**SMALL, scale="standard").fit(X)
    with torch.no_grad():
        codes = est.encoder_(torch.from_numpy(X)).numpy()
        recon = est.decoder_(torch.from_numpy(codes)).numpy()
    np.testing.assert_allclose(codes, est.transform(X), atol=1e-6)
    np.testing.assert_allclose(recon, est.inverse_transform(codes), rtol=1e-6, atol=1e-3)


def test_save_and_load_keep_the_scale_and_the_resolved_choices(tabular, tmp_path):
    X, _ = tabular
    est = Autoencoder(**SMALL, scale="standard").fit(X)
    back = aekit.load(est.save(tmp_path / "m.safetensors"))
    assert back.scale == "standard" and back.loss == "auto" and back.loss_ == "mse"
    assert back.output_activation_ == "linear" and back.pixels_ is False
    np.testing.assert_array_equal(back.input_offset_, est.input_offset_)
    np.testing.assert_array_equal(back.input_scale_, est.input_scale_)
    np.testing.assert_array_equal(back.transform(X), est.transform(X))
    np.testing.assert_array_equal(back.reconstruct(X), est.reconstruct(X))
    assert back.reconstruction_error(X) == est.reconstruction_error(X)


def _as_format_1(path, out):
    """The file an aekit of model format 1 wrote: the scaler and the names in the fitted JSON, no fitted.* tensors."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    fitted = json.loads(meta["fitted"])
    fitted["input_offset_"] = [float(v) for v in tensors.pop("fitted.input_offset_")]
    fitted["input_scale_"] = [float(v) for v in tensors.pop("fitted.input_scale_")]
    save_file(tensors, str(out), metadata={**meta, "fitted": json.dumps(fitted), "aekit_format": "1"})
    return out


def test_a_format_1_file_with_its_scaler_in_json_loads_and_is_checked(tabular, tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    X, _ = tabular
    est = Autoencoder(**SMALL, scale="minmax").fit(X)
    old = _as_format_1(est.save(tmp_path / "m.safetensors"), tmp_path / "old.safetensors")
    back = aekit.load(old)
    np.testing.assert_array_equal(back.input_scale_, est.input_scale_)
    np.testing.assert_array_equal(back.transform(X), est.transform(X))
    with safe_open(str(old), framework="pt") as f:
        meta = f.metadata()
    for edit, match in [
        (lambda d: d["input_scale_"].pop(), r"fitted.input_scale_ is 2 values, expected 3 values"),
        (lambda d: d.pop("input_scale_"), "input_offset_ and input_scale_ together"),
        (lambda d: d["input_scale_"].__setitem__(0, 0.0), r"fitted.input_scale_\[0\] is 0.0"),
        (lambda d: d.__setitem__("loss_", "auto"), r"fitted.loss_ is 'auto', expected one of"),
        (
            lambda d: (d["input_offset_"].__setitem__(0, 1e30), d["input_scale_"].__setitem__(0, 1e-30)),
            r"fitted.input_offset_ / fitted.input_scale_ is 1e\+60 \(feature 0\), expected at most 3.403e\+38",
        ),
    ]:
        fitted = json.loads(meta["fitted"])
        edit(fitted)
        bad = tmp_path / "bad.safetensors"
        save_file(load_file(str(old)), str(bad), metadata={**meta, "fitted": json.dumps(fitted)})
        with pytest.raises(ModelFileError, match=match):
            aekit.load(bad)
    # format 2 with the scaler in both places: refused, not guessed between
    both = tmp_path / "both.safetensors"
    save_file(load_file(str(tmp_path / "m.safetensors")), str(both), metadata={**meta, "aekit_format": "2"})
    with pytest.raises(ModelFileError, match="the scaler once"):
        aekit.load(both)


def test_a_file_whose_scale_does_not_fit_its_features_is_refused(tabular, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    X, _ = tabular
    path = Autoencoder(**SMALL, scale="minmax").fit(X).save(tmp_path / "m.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    scale, offset = "fitted.input_scale_", "fitted.input_offset_"
    for edit, match in [
        (lambda t: t.__setitem__(scale, t[scale][:2]), r"fitted.input_scale_ is shape \(2,\) torch.float32, expected "),
        (lambda t: t.__setitem__(scale, t[scale].double()), r"input_scale_ is shape \(3,\) torch.float64"),
        (lambda t: t.pop(scale), "fitted.input_offset_ and fitted.input_scale_ together"),
        (lambda t: t[scale].__setitem__(0, 0.0), "positive finite scales"),
        (lambda t: t[offset].__setitem__(1, float("nan")), "finite offsets"),
        (lambda t: t.__setitem__("fitted.other", torch.zeros(3)), r"\['fitted.other'\]"),
        # each finite and positive, but X = 0 reads as -1e60: inf in float32, and transform all NaN
        (
            lambda t: (t[offset].__setitem__(1, 1e30), t[scale].__setitem__(1, 1e-30)),
            r"fitted.input_offset_ / fitted.input_scale_ is 1e\+60 \(feature 1\), expected at most 3.403e\+38",
        ),
    ]:
        tensors = load_file(str(path))
        edit(tensors)
        bad = tmp_path / "bad.safetensors"
        save_file(tensors, str(bad), metadata=meta)
        with pytest.raises(ModelFileError, match=match):
            aekit.load(bad)


def test_a_wide_scaled_model_saves_and_loads(tmp_path):
    """Per-feature attributes are tensors: a scaler of 300,000 features outgrew the JSON metadata's bound."""
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((4, 300_000)) * 3 + 1).astype(np.float32)
    est = Autoencoder(hidden_layer_sizes=(2,), n_components=1, scale="standard", epochs=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingWarning)
        est.fit(X)
    back = aekit.load(est.save(tmp_path / "wide.safetensors"))
    np.testing.assert_array_equal(back.input_offset_, est.input_offset_)
    np.testing.assert_array_equal(back.input_scale_, est.input_scale_)
    np.testing.assert_array_equal(back.transform(X), est.transform(X))


def test_golden_files_load_as_before_the_switch():
    from .test_files import MODELS, _data, _expected

    release, name = next((r, n) for r, n in MODELS if n == "dense")
    est = aekit.load(release / _expected(release)["models"][name]["file"])
    assert (est.loss, est.loss_, est.output_activation_) == ("bce", "bce", "sigmoid")
    assert est.scale is None and est.input_offset_ is None and est.pixels_ is True
    rows = _data(release)["rows"]  # uint8 pixels: divided by 255, as the release did
    np.testing.assert_array_equal(est.transform(rows), est.transform(rows.astype(np.float32) / 255))


# ----------------------------------------------------------------------------- uint8


def test_uint8_reaching_128_is_pixels_and_smaller_uint8_is_numbers():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 12), dtype=np.uint8)
    digits = rng.integers(0, 17, (40, 12), dtype=np.uint8)  # 0-16, as scikit-learn's load_digits
    assert uint8_pixels(images) is True and uint8_pixels(digits.astype(np.float32)) is None
    ok, said = _caught(lambda: as_float32(images))
    np.testing.assert_array_equal(ok, images.astype(np.float32) / 255)
    assert said == []
    numbers, said = _caught(lambda: [as_float32(digits), as_float32(digits)])
    np.testing.assert_array_equal(numbers[0], digits.astype(np.float32))  # not divided by 255
    assert len(said) == 1 and "read as numbers" in said[0] and "scale='pixels'" in said[0]  # told once


def test_uint8_numbers_train_as_numbers_and_images_as_pixels():
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 17, (60, 10), dtype=np.uint8)
    est, said = _caught(lambda: Autoencoder(**SMALL).fit(digits))
    assert est.pixels_ is False and est.loss_ == "mse"
    assert sum("read as numbers" in m for m in said) == 1
    np.testing.assert_array_equal(est.transform(digits), est.transform(digits.astype(np.float32)))
    images = rng.integers(0, 256, (60, 10), dtype=np.uint8)
    est, said = _caught(lambda: Autoencoder(**SMALL).fit(images))
    assert said == [] and est.pixels_ is True and est.loss_ == "bce"
    faint = (images // 4).astype(np.uint8)  # a batch below 128: still pixels for this model, as in fit
    np.testing.assert_array_equal(est.transform(faint), est.transform(faint.astype(np.float32) / 255))


def test_scale_pixels_reads_dark_uint8_images_and_answers_in_0_255(blobs):
    X, _ = blobs
    dark = np.round(X * 100).astype(np.uint8)  # images whose brightest pixel is 100
    est, said = _caught(lambda: Autoencoder(**SMALL, scale="pixels").fit(dark))
    assert said == [] and est.pixels_ is False and est.loss_ == "bce"
    ref = Autoencoder(**SMALL).fit(dark.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(est.transform(dark), ref.transform(dark.astype(np.float32) / np.float32(255)))
    assert est.reconstruct(dark).max() > 1  # in the user's 0-255 units


def test_metrics_read_uint8_as_the_model_does():
    from aekit.metrics import evaluate_model

    digits = np.random.default_rng(0).integers(0, 17, (60, 10), dtype=np.uint8)
    est = Autoencoder(**SMALL, scale="standard").fit(digits)
    out = evaluate_model(est, digits)
    read = (digits.astype(np.float32) - est.input_offset_) / est.input_scale_  # numbers, standardised
    expected = float(np.mean(((est.reconstruct(digits) - est.input_offset_) / est.input_scale_ - read) ** 2))
    assert out["reconstruction_mse"] == pytest.approx(expected, rel=1e-4)


def test_metrics_of_a_scaled_model_are_in_its_units(tabular):
    """evaluate_model measures as training does: after the scale, where no wide feature rules the numbers."""
    from aekit.metrics import evaluate_model, trustworthiness

    X, _ = tabular
    est = Autoencoder(**SMALL, scale="standard").fit(X)
    out = evaluate_model(est, X)
    assert out["reconstruction_mse"] == pytest.approx(est.reconstruction_error(X), rel=1e-4)  # MSE, as trained
    raw = float(np.mean((est.reconstruct(X) - X) ** 2))
    assert raw > 100 * out["reconstruction_mse"]  # in raw units the thousands would rule it
    read = (X - est.input_offset_) / est.input_scale_
    assert out["trustworthiness"] == pytest.approx(trustworthiness(read, est.transform(X), max_samples=len(X)))


# ----------------------------------------------------------------------------- warnings


def test_clean_data_fits_without_a_word(blobs, tabular):
    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Autoencoder(**SMALL).fit(X)
        SupervisedAutoencoder(**SMALL).fit(X, y)
        Autoencoder(**SMALL, scale="standard").fit(tabular[0])
        Autoencoder(**SMALL).fit(X * 6 - 3)  # a few units around 0: fine for tanh


@pytest.mark.parametrize(
    ("kwargs", "data", "phrase"),
    [
        ({"loss": "mse", "output_activation": "sigmoid"}, lambda X: X * 2 - 1, "output_activation='sigmoid' bounds"),
        ({}, "tabular", "very different scales"),
        ({}, lambda X: X * 100, "saturate"),
    ],
)
def test_each_mismatch_warns_once_per_fit(blobs, tabular, kwargs, data, phrase):
    X = tabular[0] if data == "tabular" else data(blobs[0])
    _, said = _caught(lambda: Autoencoder(**SMALL, **kwargs).fit(X))
    hits = [m for m in said if phrase in m]
    assert len(hits) == 1, said
    assert "scale=" in hits[0] or "output_activation='auto'" in hits[0]  # each names its switch
    _, said = _caught(lambda: Autoencoder(**SMALL, **kwargs, scale="minmax").fit(X))
    assert [m for m in said if phrase in m] == []  # the switch silences it


@pytest.mark.filterwarnings("ignore::aekit.TrainingWarning")  # 3 epochs on random data
def test_new_data_past_a_minmax_models_training_range_get_advice_that_fits_it(tmp_path):
    # sparse TF-IDF-like rows: new documents often exceed a column's training maximum; the model already
    # scales by min/max, so "fit with scale='minmax'" or "pass X in its units" would send the user in a circle
    rng = np.random.default_rng(0)
    X = (rng.uniform(0, 0.3, (60, 12)) * (rng.uniform(size=(60, 12)) < 0.2)).astype(np.float32)
    model = Autoencoder(**SMALL, scale="minmax").fit(X)
    new = X[:10].copy()
    new[0, 3] = 3 * X[:, 3].max()
    np.save(tmp_path / "new.npy", new)
    for data in (new, np.load(tmp_path / "new.npy", mmap_mode="r")):  # in memory, and streamed from a file
        _, said = _caught(lambda data=data: model.transform(data))
        hits = [m for m in said if "after this model's scale='minmax'" in m]
        assert len(hits) == 1, said
        assert "go past them (normal for sparse or drifting data)" in hits[0] and "sigmoid output" in hits[0]
        assert "scale='standard' and loss='auto'" in hits[0] and "clip the data" in hits[0]
        assert "fit with scale='minmax'" not in hits[0] and "units it was fitted on" not in hits[0]


def test_advice_for_tabular_features_names_standard():
    X = np.column_stack([np.linspace(0, 4000, 50), np.linspace(0, 0.001, 50)]).astype(np.float32)
    notes = advice(X, None, "mse", "linear")
    assert len(notes) == 1 and "scale='standard'" in notes[0] and "10^6" in notes[0]
    assert advice(apply_scaler(X, fit_scaler(X, "standard")), "standard", "mse", "linear") == []  # as fit sees X


def test_counts_are_pointed_to_the_tabular_preset_not_to_standardising():
    """A single-cell trial: raw counts were told "Pass scale='standard'", which made the map worse (5-fold k-NN
    36.5% -> 28.9%); the tabular preset read them as they are (93.7%)."""
    from aekit.cli import as_flags

    rng = np.random.default_rng(0)
    counts = rng.negative_binomial(2, 0.02, size=(300, 40)) * (rng.random((300, 40)) < 0.4)  # 60%+ zeros
    X = counts.astype(np.float32)  # up to several hundred
    (note,) = advice(X, None, "mse", "linear")
    assert note.startswith("X holds counts up to") and "**aekit.PRESETS['tabular']" in note
    assert "np.log1p" in note and "scale='standard'" not in note
    assert "For counts train with --preset tabular (Adam" in as_flags(note)
    assert advice(X, None, "mse", "linear", saturating=False) == []  # the preset's relu body: nothing to say
    measured = X + rng.random(X.shape).astype(np.float32)  # not whole numbers: a table, told to standardise
    assert "Pass scale='standard'" in advice(measured, None, "mse", "linear")[0]
    (low,) = advice(np.minimum(X, 200), None, "mse", "linear")  # within 0-255: pixels first
    assert "0-255 pixels? pass scale='pixels'; counts? train with **aekit.PRESETS['tabular']" in low
    # one-hot columns beside age and income (a review): whole numbers, many zeros, but no counts
    n = 300
    table = np.column_stack([np.eye(5)[rng.integers(0, 5, n)], rng.integers(18, 90, n), rng.integers(1, 10**5, n)])
    assert "Pass scale='standard'" in advice(table.astype(np.float32), None, "mse", "linear")[0]
    assert aekit.PRESETS["tabular"]["code_activation"] == "linear"


def test_streamed_counts_get_the_advice_counts_in_memory_get(tmp_path):
    """A review: counts streamed from a memory-mapped .npy were still told to standardise."""
    rng = np.random.default_rng(0)
    X = (rng.negative_binomial(2, 0.02, size=(200, 30)) * (rng.random((200, 30)) < 0.4)).astype(np.float32)
    np.save(tmp_path / "c.npy", X)
    est = Autoencoder(hidden_layer_sizes=(8,), epochs=1, batch_size=64, random_state=0, data_loading="stream")
    with pytest.warns(UserWarning, match=r"X holds counts up to .*For counts train with \*\*aekit.PRESETS"):
        est.fit(np.load(tmp_path / "c.npy", mmap_mode="r"))


def test_advice_on_wide_rows_takes_no_copy_of_x():
    """A single-cell trial: 25k x 20k counts peaked at 2.6x their dense size; the range statistics took float64
    chunks of 65,536 rows (the whole array) and the counts check a rounded copy of 20,000 rows."""
    import tracemalloc

    X = np.random.default_rng(0).integers(0, 50, size=(3000, 6000)).astype(np.float32)  # 72 MB, beyond 10
    tracemalloc.start()
    try:
        notes = advice(X, None, "mse", "linear")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert notes and peak < 0.5 * X.nbytes


def test_heavy_tails_get_advice_that_another_scale_cannot_give(caplog):
    """A trial: values 616 standard deviations out after scale='standard' trained silently, and data already
    standardised by a Pipeline's StandardScaler were told "Pass scale='standard'", which changes nothing."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    heavy = np.column_stack([rng.standard_t(2, 4000), rng.normal(size=4000), rng.lognormal(0, 2, 4000)])
    heavy = heavy.astype(np.float32)
    with pytest.warns(
        UserWarning,
        match=r"after scale='standard', holds values up to .* standard deviations.*"
        r"QuantileTransformer",
    ) as caught:
        Autoencoder(**{**SMALL, "scale": "standard", "epochs": 1}).fit(heavy)
    assert not any("Pass scale='standard'" in str(w.message) for w in caught)
    with pytest.warns(UserWarning, match=r"X, standardised, holds values up to") as caught:
        make_pipeline(StandardScaler(), Autoencoder(**{**SMALL, "epochs": 1})).fit(heavy)
    assert not any("Pass scale='standard'" in str(w.message) for w in caught)
    import pandas as pd

    named = pd.DataFrame(heavy, columns=["t", "normal", "amount"])  # the worst feature by its name (a trial)
    with pytest.warns(UserWarning, match=r"standard deviations from a feature's mean \(feature 't'; 2 of 3") as caught:
        Autoencoder(**{**SMALL, "scale": "standard", "epochs": 1}).fit(named)
    assert not any("images read better" in str(w.message) for w in caught)  # named columns: a table
    light = rng.normal(size=(4000, 3)).astype(np.float32)  # a Gaussian's largest of 4,000 is about 4
    assert advice(light, "standard", "mse", "linear") == []
    assert advice(StandardScaler().fit_transform(heavy), None, "mse", "linear", saturating=False) == []  # relu map


# ----------------------------------------------------------------------------- command line and export


def test_cli_train_scale_and_embed_apply_it(tabular, tmp_path, capsys):
    X, _ = tabular
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "run"
    args = ["train", str(tmp_path / "x.npy"), "--out", str(out), "--scale", "standard", "--epochs", "2"]
    assert main([*args, "--hidden-layer-sizes", "8", "--random-state", "0", "--batch-size", "32"]) == 0
    est = aekit.load(out / "model.safetensors")
    assert est.scale == "standard" and est.loss_ == "mse" and est.input_offset_ is not None
    codes = tmp_path / "codes.npy"
    assert main(["embed", str(out / "model.safetensors"), str(tmp_path / "x.npy"), "--out", str(codes)]) == 0
    np.testing.assert_array_equal(np.load(codes), est.transform(X))
    with pytest.raises(SystemExit) as exc:  # a usage error, before any data is read
        main(["train", str(tmp_path / "x.npy"), "--out", str(tmp_path / "r2"), "--scale", "robust"])
    assert exc.value.code == 2 and "--scale expects one of none, minmax" in capsys.readouterr().err


def test_onnx_export_takes_raw_features(tabular, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="pip install 'aekit[export]'")
    from aekit.export import to_onnx

    X, _ = tabular
    est = Autoencoder(**SMALL, scale="standard").fit(X)
    paths = to_onnx(est, tmp_path)
    enc = ort.InferenceSession(str(paths["encoder"]))
    codes = enc.run(None, {"x": X})[0]
    np.testing.assert_allclose(codes, est.transform(X), atol=1e-5)
    recon = ort.InferenceSession(str(paths["decoder"])).run(None, {"code": codes})[0]
    np.testing.assert_allclose(recon, est.inverse_transform(codes), rtol=1e-5, atol=1e-2)  # thousands: relative
    assert "scale='standard' is in the graph" in enc.get_modelmeta().custom_metadata_map["aekit.input"]


def test_cli_denoise_adds_noise_in_the_models_units_and_answers_in_the_users(tabular, tmp_path, capsys):
    from aekit.objectives import add_noise

    X, _ = tabular
    np.save(tmp_path / "x.npy", X)
    est = Autoencoder(**SMALL, scale="standard").fit(X)
    model = str(est.save(tmp_path / "m.safetensors"))
    assert main(["denoise", model, str(tmp_path / "x.npy"), "--out", str(tmp_path / "d.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy"), est.reconstruct(X))
    args = ["denoise", model, str(tmp_path / "x.npy"), "--out", str(tmp_path / "n.npy"), "--add-noise"]
    assert main([*args, "--noise-factor", "0.5"]) == 0
    # noise of std 0.5 on the standardized features (as in training), not on the raw thousands
    scaled = (X - est.input_offset_) / est.input_scale_
    noisy = add_noise(scaled, "gaussian", 0.5, random_state=0, clip=False) * est.input_scale_ + est.input_offset_
    np.testing.assert_allclose(np.load(tmp_path / "n.npy"), est.reconstruct(noisy), rtol=1e-5, atol=1e-3)
    # PSNR in the model's units too: in raw units the widest feature ruled it (a trial read "37.5 -> 30.8 dB")
    from aekit import metrics

    line = capsys.readouterr().out.splitlines()[-1]
    expected = metrics.psnr(scaled, (noisy - est.input_offset_) / est.input_scale_, None)  # peak: the range
    assert (
        line.startswith(f"PSNR noisy {expected:.2f} dB") and "in the model's units, after its scale='standard'" in line
    )


def test_range_stats_of_chunks_match_numpy_whatever_the_chunking():
    from aekit.scaling import RangeStats, scaler_from_stats

    rng = np.random.default_rng(0)
    X = (rng.normal(size=(1001, 6)) * [1, 1e-3, 1e3, 5, 0, 2] + [0, 7, -1e4, 1e6, 3, 0]).astype(np.float32)
    for sizes in ((1001,), (1, 1000), (333, 333, 335), tuple([7] * 143)):
        bounds = np.cumsum((0, *sizes))
        stats = RangeStats.of_chunks(X[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True))
        np.testing.assert_array_equal(stats.low, X.min(axis=0))
        np.testing.assert_array_equal(stats.high, X.max(axis=0))
        np.testing.assert_allclose(stats.mean, X.mean(axis=0, dtype=np.float64), rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(stats.std, X.std(axis=0, dtype=np.float64), rtol=1e-9, atol=1e-9)
        for scale in ("standard", "minmax"):  # the same scaler as from the array, the constant feature kept at 1
            want, got = fit_scaler(X, scale), scaler_from_stats(stats, scale)
            np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
            np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
            assert got[1][4] == 1.0


def test_a_dataframe_of_uint8_columns_is_numbers_in_fit_and_score():
    # ages and visit counts stored as uint8 reached 199: read as pixels, reconstructed in [0, 1] and scored
    # 65,000 times lower than the same table as floats, without a word
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(18, 90, 60), "visits": rng.integers(0, 200, 60)}).astype("uint8")
    kw = dict(n_components=1, hidden_layer_sizes=(8,), epochs=2, random_state=0)
    with pytest.warns(UserWarning, match="a DataFrame of named uint8 columns: read as numbers"):
        est = Autoencoder(**kw).fit(frame)
    assert est.pixels_ is False and est.loss_ == "mse"
    floats = Autoencoder(**kw).fit(frame.astype(float))
    np.testing.assert_allclose(est.transform(frame), floats.transform(frame.astype(float)), rtol=1e-6)
    assert est.score(frame) == pytest.approx(floats.score(frame.astype(float)), rel=1e-6)
    assert est.score(frame) == pytest.approx(-np.mean((est.reconstruct(frame) - frame.to_numpy(float)) ** 2))
    with pytest.raises(InputError, match=r"column 'c' holds text or categories \(category\); aekit takes numbers"):
        Autoencoder(**kw).fit(pd.DataFrame({"c": pd.Categorical([1.5, 100.0] * 30), "d": np.arange(60.0)}))


def test_a_code_as_wide_as_the_data_is_said_to_reduce_nothing(tabular):
    X, _ = tabular
    with pytest.warns(UserWarning, match=rf"n_components={X.shape[1]} is not below the {X.shape[1]} features"):
        Autoencoder(**{**SMALL, "n_components": X.shape[1], "epochs": 1, "scale": "standard"}).fit(X)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="n_components=")
        Autoencoder(**{**SMALL, "n_components": X.shape[1] - 1, "epochs": 1, "scale": "standard"}).fit(X)
        wide = {**SMALL, "n_components": X.shape[1] + 4, "epochs": 1, "scale": "standard", "noise": "gaussian"}
        Autoencoder(**wide).fit(X)  # overcomplete, denoising: a known recipe
        aekit.ParametricTSNE(perplexity=5, epochs=1, hidden_layer_sizes=(8,)).fit(X[:, :2])  # a map of 2-D data


def test_float_pixels_of_0_to_255_are_pointed_to_scale_pixels():
    """A trial's MNIST x 255 as floats was told "Pass scale='standard'" only, which made its denoiser far worse
    than scale='pixels' (and standardised images were pointed at 'minmax', worse again)."""
    from aekit.scaling import range_advice

    low, high = np.zeros(784), np.full(784, 255.0)
    (note,) = range_advice(low, high, None, "mse", "linear")
    assert note.endswith("Pass scale='standard' (a table), or scale='pixels' if they are 0-255 pixels")
    (table,) = range_advice(np.full(3, -40.0), np.full(3, 300.0), None, "mse", "linear")
    assert table.endswith("Pass scale='standard'")  # negative values or beyond 255: no pixels
    tails = range_advice(np.zeros(4), np.full(4, 50.0), "standard", "mse", "linear")
    assert tails and "images read better with scale='pixels' (0-255 pixels) or no scale" in tails[0]


def test_noise_in_raw_units_far_from_0_1_is_pointed_out():
    """A trial's 0-255 float images got gaussian noise of 0.4 grey levels (invisible) and add_noise wiped them to
    [0, 1]: the fit says where the noise acts, and add_noise clips data in [0, 1] only."""
    from aekit.objectives import add_noise

    X = (np.random.default_rng(0).random((64, 16)) * 255).astype(np.float32)
    small = {"hidden_layer_sizes": (4,), "epochs": 1, "random_state": 0}
    with pytest.warns(UserWarning, match=r"noise_factor=0.4 is 0.16% of that range\. Pass scale='pixels'"):
        Autoencoder(noise="gaussian", **small).fit(X)
    with pytest.warns(UserWarning, match="salt_pepper sets values to 0 or 1"):
        Autoencoder(noise="salt_pepper", noise_factor=0.1, **small).fit(X)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="noise=")
        Autoencoder(noise="gaussian", scale="pixels", **small).fit(X)  # in [0, 1] as the model reads it
        Autoencoder(noise="masking", **small).fit(X)  # zeros: the same in any units
    noisy = add_noise(X, "gaussian", 0.4, random_state=0)
    assert noisy.max() > 200 and np.abs(noisy - X).max() < 3  # not clipped to [0, 1]
    unit = add_noise(X / 255, "gaussian", 0.4, random_state=0)
    assert unit.min() >= 0 and unit.max() <= 1  # images in [0, 1]: clipped, as training does


def test_noise_of_a_visible_size_is_not_warned_of():
    """A review: standardised data (a Pipeline's StandardScaler) with gaussian noise 0.4 were told to pass
    scale='standard', which changes nothing: the noise is already in standard deviations."""
    X = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="noise=")
        Autoencoder(noise="gaussian", hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X)
