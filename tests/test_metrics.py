import warnings

import numpy as np
import pytest

from aekit import metrics
from aekit._utils import InputError


def test_bce_matches_formula_and_clips():
    X = np.array([[0.0, 1.0, 0.5]])
    X_hat = np.array([[0.1, 0.8, 0.5]])
    expected = -np.mean([np.log(0.9), np.log(0.8), 0.5 * np.log(0.5) * 2])
    assert metrics.reconstruction_bce(X, X_hat) == pytest.approx(expected)
    assert np.isfinite(metrics.reconstruction_bce(np.ones((1, 2)), np.zeros((1, 2))))


def test_mse_and_psnr():
    X = np.zeros((2, 4))
    X_hat = np.full((2, 4), 0.1)
    assert metrics.reconstruction_mse(X, X_hat) == pytest.approx(0.01)
    assert metrics.psnr(X, X_hat) == pytest.approx(20.0)
    assert metrics.psnr(X, X) == float("inf")
    with pytest.raises(InputError, match="shape"):
        metrics.psnr(X, X_hat[:1])


def test_code_accuracies_separate_good_from_random():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 50)
    good = np.eye(3)[y] * 5 + rng.normal(size=(150, 3)) * 0.1
    bad = rng.normal(size=(150, 3))
    assert metrics.knn_accuracy(good, y, good, y) == 1.0
    assert metrics.linear_accuracy(good, y, good, y) == 1.0
    assert metrics.knn_cv_accuracy(good, y) == 1.0
    assert metrics.knn_cv_accuracy(bad, y) < 0.6


def test_trustworthiness_orders_embeddings():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 10))
    assert metrics.trustworthiness(X, X[:, :2] * 3 + X[:, 2:4]) > metrics.trustworthiness(X, rng.normal(size=(300, 2)))
    assert metrics.trustworthiness(X, X[:, :3], max_samples=100) <= 1.0


def test_bce_refuses_targets_outside_unit_range_and_psnr_takes_the_data_range():
    with pytest.raises(InputError, match=r"reconstruction_bce needs X in \[0, 1\].*reconstruction_mse"):
        metrics.reconstruction_bce(np.array([[-1.0, 2.0]]), np.array([[0.5, 0.5]]))
    X = np.array([[0.0, 10.0]])
    assert metrics.psnr(X, X + 1.0, data_range=None) == pytest.approx(20.0)  # peak 10, MSE 1
    assert metrics.unit_range(np.array([0.0, 1.0])) and not metrics.unit_range(np.array([1.5]))


def test_evaluate_model_on_images_and_on_unbounded_data():
    from aekit.estimators import Autoencoder

    rng = np.random.default_rng(0)
    imgs = rng.uniform(size=(60, 4, 4)).astype(np.float32)
    ae = Autoencoder(hidden_layer_sizes=(8,), n_components=2, epochs=1, random_state=0).fit(imgs)
    m = metrics.evaluate_model(ae, imgs)  # the shape the estimator took
    assert m == metrics.evaluate_model(ae, imgs.reshape(60, 16))
    Z = rng.normal(size=(60, 5)).astype(np.float32) * 3
    lin = Autoencoder(
        hidden_layer_sizes=(8,), n_components=2, epochs=1, loss="mse", output_activation="linear", random_state=0
    ).fit(Z)
    m = metrics.evaluate_model(lin, Z)
    assert "reconstruction_bce" not in m and m["reconstruction_mse"] > 0
    assert "psnr_db" not in m  # an image measure: the data's range made it say nothing of count data


def test_submodules_are_reachable_from_the_package():
    import subprocess
    import sys

    code = "import aekit; print(aekit.metrics.psnr.__name__, aekit.plots.__name__, aekit.visualize.AETSNE.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["psnr", "aekit.plots", "AETSNE"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import aekit

        aekit.nope  # noqa: B018


def test_evaluate_model_on_a_handful_of_samples_reports_what_it_can():
    """aekit evaluate --limit 5: no trustworthiness (needs > 10 points) and no k-NN(5) below 5 training codes."""
    from aekit.estimators import Autoencoder

    X = np.random.default_rng(0).uniform(size=(40, 6)).astype(np.float32)
    y = np.arange(40) % 2
    ae = Autoencoder(hidden_layer_sizes=(4,), n_components=2, epochs=1, random_state=0).fit(X)
    m = metrics.evaluate_model(ae, X[:5], y[:5], X[:4], y[:4])
    assert {"reconstruction_bce", "psnr_db", "logistic_accuracy"} <= set(m) and not {
        "trustworthiness",
        "knn5_accuracy",
    } & set(m)
    m = metrics.evaluate_model(ae, X, y, X[::-1], y[::-1])
    assert {"trustworthiness", "knn5_accuracy", "logistic_accuracy"} <= set(m)
    names = np.array(["cat", "dog"])[y]  # training labels of another scheme: accuracies of 0 would mislead
    with pytest.raises(InputError, match=r"y_train and y_test share no class \(train: 'ant', 'bee'; test: 'cat'"):
        metrics.evaluate_model(ae, X, names, X[::-1], np.array(["ant", "bee"])[y])
    with pytest.raises(InputError, match=r"y_train holds numbers \('0', '1'\) but y_test text \('cat', 'dog'\)"):
        metrics.evaluate_model(ae, X, names, X[::-1], y)  # (scikit-learn refused the mix with a traceback)
    assert "knn5_accuracy" in metrics.evaluate_model(ae, X, y, X[::-1], y.astype(float))  # 1 and 1.0: one class
    # the test rows as training rows: a k-NN would find each point itself; cross-validated within them instead
    same = metrics.evaluate_model(ae, X, y, X, y)
    assert "knn5_accuracy" not in same and same["knn5_cv_accuracy"] == metrics.knn_cv_accuracy(ae.transform(X), y)
    assert same["logistic_cv_accuracy"] == metrics.linear_cv_accuracy(ae.transform(X), y)


def test_evaluate_model_on_data_of_another_width_says_so():
    """A scaled map without a decoder: the width is checked before the scaler meets the data (once a traceback)."""
    from aekit.estimators import ParametricTSNE

    X = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)
    tsne = ParametricTSNE(hidden_layer_sizes=(8,), perplexity=5, epochs=1, scale="standard", random_state=0).fit(X)
    with pytest.raises(InputError, match="X has 7 features, but ParametricTSNE is expecting 5 features"):
        metrics.evaluate_model(tsne, np.zeros((20, 7), np.float32))


def test_unit_range_allows_float_rounding_and_psnr_of_constant_data_is_finite():
    from sklearn.preprocessing import MinMaxScaler

    from aekit.estimators import Autoencoder

    X = np.random.default_rng(0).normal(size=(50, 7)).astype(np.float32) * 3 + 1
    scaled = MinMaxScaler().fit_transform(X)  # may exceed 1 by float rounding (1.0000001)
    assert metrics.unit_range(scaled) and np.isfinite(metrics.reconstruction_bce(scaled, np.full_like(scaled, 0.5)))
    Autoencoder(hidden_layer_sizes=(4,), n_components=2, epochs=1, random_state=0).fit(
        np.minimum(scaled + 5e-7, 1 + 5e-7)
    )
    const = np.full((4, 3), 3.0)
    assert metrics.psnr(const, const + 0.3, data_range=None) == pytest.approx(20.0)  # peak: its magnitude, 3


def test_neg_reconstruction_mse_scores_in_the_users_units():
    from sklearn.model_selection import GridSearchCV

    from aekit import Autoencoder
    from aekit.metrics import neg_reconstruction_mse

    X = np.random.default_rng(0).normal(50.0, 20.0, size=(96, 6)).astype(np.float32)  # tabular, far from [0, 1]
    ae = Autoencoder(hidden_layer_sizes=(8,), epochs=2, batch_size=16, scale="standard", random_state=0).fit(X)
    assert neg_reconstruction_mse(ae, X) == pytest.approx(-np.mean((X - ae.reconstruct(X)) ** 2), rel=1e-6)
    assert neg_reconstruction_mse(ae, X) < 10 * -ae.reconstruction_error(X)  # in the data's units, not the scaled
    assert ae.score(X) == neg_reconstruction_mse(ae, X)  # the default score measures the same
    pixels = (np.random.default_rng(1).random((64, 16)) * 255).astype(np.uint8)
    img = Autoencoder(hidden_layer_sizes=(8,), epochs=1, batch_size=16, random_state=0).fit(pixels)
    assert -1.0 <= neg_reconstruction_mse(img, pixels) < 0  # compared in [0, 1], as reconstructed
    search = GridSearchCV(
        Autoencoder(hidden_layer_sizes=(8,), epochs=2, batch_size=16, random_state=0),
        {"scale": ["standard", "minmax"]},
        scoring=neg_reconstruction_mse,
        cv=2,
    ).fit(X)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # without scoring=: the estimator's own score, in the data's units for every candidate (it was the
    # training loss in each candidate's own units, and the search chose by units)
    default = GridSearchCV(
        Autoencoder(hidden_layer_sizes=(8,), epochs=2, batch_size=16, random_state=0),
        {"scale": ["standard", "minmax"]},
        cv=2,
    ).fit(X)
    np.testing.assert_allclose(default.cv_results_["mean_test_score"], search.cv_results_["mean_test_score"], rtol=1e-6)


def test_score_samples_ranks_rows_unlike_the_training_data_lowest():
    """Per-row reconstruction errors for outlier scoring (scikit-learn's sign: lower is more abnormal), in the
    model's units: a trial's table of mixed units scored by its two widest columns in the data's units."""
    from aekit import Autoencoder, ParametricTSNE
    from aekit.metrics import reconstruction_errors

    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 8))
    typical = (rng.normal(size=(200, 2)) @ basis * 3 + 100).astype(np.float32)  # a plane in 8-D, far from [0, 1]
    ae = Autoencoder(hidden_layer_sizes=(16,), epochs=30, batch_size=32, random_state=0).fit(typical)
    odd = typical[:20] + rng.normal(scale=15.0, size=(20, 8)).astype(np.float32)  # off the plane
    scores = ae.score_samples(np.vstack([typical[:50], odd]))
    assert scores.shape == (70,) and scores.dtype == np.float64 and (scores <= 0).all()
    assert np.median(scores[50:]) < scores[:50].min()  # every typical row above the odd rows' median
    by_hand = np.mean((odd - ae.reconstruct(odd)) ** 2, axis=1)  # no scale: the data's units are the model's
    np.testing.assert_allclose(-ae.score_samples(odd), by_hand, rtol=1e-4)
    assert ae.score(odd) == pytest.approx(ae.score_samples(odd).mean(), rel=1e-4)  # score: their mean
    np.testing.assert_allclose(reconstruction_errors(ae, odd), by_hand, rtol=1e-6)
    # scaled: measured after the scale, where a feature 1,000 times wider does not outweigh the rest
    wide = typical * np.array([1000, 1, 1, 1, 1, 1, 1, 1], dtype=np.float32)
    std = Autoencoder(hidden_layer_sizes=(16,), epochs=2, batch_size=32, scale="standard", random_state=0).fit(wide)
    in_units = (wide - std.reconstruct(wide)) / std.input_scale_
    np.testing.assert_allclose(-std.score_samples(wide), np.mean(in_units**2, axis=1), rtol=1e-4)
    assert std.score(wide) == pytest.approx(-reconstruction_errors(std, wide).mean(), rel=1e-9)  # X's units
    pixels = (rng.random((64, 1, 4, 4)) * 255).astype(np.uint8)  # images: compared in [0, 1], one score each
    img = Autoencoder(hidden_layer_sizes=(8,), epochs=1, batch_size=16, random_state=0).fit(pixels)
    assert img.score_samples(pixels).shape == (64,)
    assert img.score(pixels) == pytest.approx(img.score_samples(pixels).mean(), rel=1e-4)
    with pytest.raises(AttributeError, match="decoder"):  # a map without a decoder rebuilds nothing
        ParametricTSNE(hidden_layer_sizes=(8,), perplexity=5, epochs=1, random_state=0).fit(typical).score_samples(odd)


def test_errors_past_float32s_range_stay_finite(tmp_path):
    """An attack: one cell of 1e20 (finite, within float32) gave a score of -inf, an `inf` error column and a
    traceback in evaluate --outlier-label. Errors are computed and carried in float64."""
    from aekit import Autoencoder
    from aekit.metrics import trustworthiness

    X = np.random.default_rng(0).normal(size=(100, 6)).astype(np.float32)
    ae = Autoencoder(hidden_layer_sizes=(8,), epochs=1, batch_size=32, random_state=0).fit(X)
    big = X.copy()
    big[0, 0] = 1e20
    scores = ae.score_samples(big)
    assert np.isfinite(scores).all() and scores[0] == pytest.approx(-(1e40 / 6), rel=1e-3)
    np.save(tmp_path / "big.npy", big)  # a file read in chunks: the same
    np.testing.assert_array_equal(ae.score_samples(np.load(tmp_path / "big.npy", mmap_mode="r")), scores)
    codes, _, errors = ae._codes_and_more(X, errors=True)
    assert codes.dtype == np.float32 and np.array_equal(codes, ae.transform(X))  # the codes exactly as transform's
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's float32 distances overflowed, with a RuntimeWarning
        assert 0 < trustworthiness(big, ae.transform(big), max_samples=100) <= 1


def test_score_reads_sparse_x_and_compares_uint8_images_in_one_unit():
    # GridSearchCV's default scoring failed on TF-IDF input (np.asarray of a sparse matrix is one object), and
    # uint8 images were measured in [0, 1] by a scale=None model, in 0-255 by a scale="pixels" one
    from scipy import sparse

    from aekit import Autoencoder

    rng = np.random.default_rng(0)
    X = sparse.random(64, 12, density=0.3, format="csr", random_state=0)
    ae = Autoencoder(hidden_layer_sizes=(8,), epochs=1, batch_size=16, random_state=0).fit(X)
    assert ae.score(X) == pytest.approx(ae.score(X.toarray()))
    pixels = (rng.random((64, 16)) * 255).astype(np.uint8)
    plain = Autoencoder(hidden_layer_sizes=(8,), epochs=1, batch_size=16, random_state=0).fit(pixels)
    scaled = Autoencoder(hidden_layer_sizes=(8,), epochs=1, batch_size=16, random_state=0, scale="pixels").fit(pixels)
    assert plain.score(pixels) == pytest.approx(scaled.score(pixels), rel=1e-4)  # the same network, the same unit


def test_uint8_images_are_compared_in_0_1_by_the_metrics():
    """A trial's uint8 test images against their [0, 1] reconstructions: PSNR -38 dB, MSE 6718."""
    from aekit.metrics import psnr, reconstruction_bce, reconstruction_mse

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (20, 16), dtype=np.uint8)
    rebuilt = np.clip(pixels / 255 + rng.normal(scale=0.05, size=pixels.shape), 0, 1)
    assert psnr(pixels, rebuilt) == pytest.approx(psnr(pixels / 255, rebuilt)) and 20 < psnr(pixels, rebuilt) < 30
    assert reconstruction_mse(pixels, rebuilt) == pytest.approx(reconstruction_mse(pixels / 255, rebuilt))
    assert reconstruction_bce(pixels, rebuilt) == pytest.approx(reconstruction_bce(pixels / 255, rebuilt))
    # a scale='pixels' model rebuilds 0-255 (a review): compared as numbers; two sets of images in [0, 1]
    assert reconstruction_mse(pixels, rebuilt * 255) == pytest.approx(reconstruction_mse(pixels / 1.0, rebuilt * 255))
    assert reconstruction_mse(pixels, pixels[::-1]) == pytest.approx(np.mean((pixels / 255 - pixels[::-1] / 255) ** 2))
    flipped = pixels[::-1]
    assert reconstruction_bce(pixels, flipped) == pytest.approx(reconstruction_bce(pixels / 255, flipped / 255))
    # small uint8 numbers (0/1, counts) are numbers, as the estimators read them (a second review: 2.9 dB)
    binary = rng.integers(0, 2, (20, 16), dtype=np.uint8)
    assert reconstruction_mse(binary, binary.astype(np.float32)) == 0 and psnr(binary, binary * 1.0) == np.inf
    assert psnr(pixels, rebuilt, None) == pytest.approx(psnr(pixels / 255, rebuilt, None))  # the range as compared
    # ... and PSNR's peak follows (a docs run: -36 dB after the guide's own scale="pixels" advice)
    assert psnr(pixels, rebuilt * 255) == pytest.approx(psnr(pixels / 255, rebuilt), abs=1e-6)
    from aekit.objectives import add_noise

    noisy = add_noise(pixels, "gaussian", 0.2, random_state=0)  # uint8 in, uint8 out, noise in [0, 1] as in fit
    assert noisy.dtype == np.uint8 and 0.1 < np.std(noisy / 255 - pixels / 255) < 0.25
    counts = add_noise(binary, "salt_pepper", 0.5, random_state=0)  # numbers: noise in their own units
    assert counts.dtype == np.float32 and set(np.unique(counts)) <= {0.0, 1.0}


def test_neg_denoising_mse_prefers_a_denoiser():
    """A trial's GridSearchCV over noise_factor with the default score picked 0 (it rebuilds clean inputs):
    the denoising scorer scores the reconstruction of one fixed noisy copy against the clean data."""
    from sklearn.model_selection import GridSearchCV

    from aekit import Autoencoder
    from aekit.metrics import neg_denoising_mse
    from aekit.objectives import add_noise

    rng = np.random.default_rng(0)
    X = (rng.random((400, 2)) @ rng.random((2, 16)) / 2).astype(np.float32)  # a plane inside [0, 1]
    est = Autoencoder(hidden_layer_sizes=(32,), n_components=8, epochs=30, batch_size=32, random_state=0)
    scorer = neg_denoising_mse("gaussian", 0.3, random_state=1)
    fitted = est.fit(X)
    by_hand = -np.mean((fitted.reconstruct(add_noise(X, "gaussian", 0.3, random_state=1)) - X) ** 2)
    assert scorer(fitted, X) == pytest.approx(by_hand)
    search = GridSearchCV(est, {"noise": [None, "gaussian"]}, cv=2, scoring=scorer).fit(X)
    assert search.best_params_ == {"noise": "gaussian"}, search.cv_results_["mean_test_score"]
    pixels = (X * 255).astype(np.uint8)  # images as uint8: the same measure in [0, 1], whichever scale
    a = Autoencoder(hidden_layer_sizes=(8,), epochs=2, random_state=0).fit(pixels)
    b = Autoencoder(hidden_layer_sizes=(8,), epochs=2, random_state=0, scale="pixels").fit(pixels)
    assert scorer(a, pixels) == pytest.approx(scorer(b, pixels), rel=1e-5) and -0.5 < scorer(a, pixels) < 0
    c = Autoencoder(hidden_layer_sizes=(8,), epochs=2, random_state=0, scale="minmax").fit(pixels)  # 0-255 numbers
    assert -0.5 < scorer(c, pixels) < 0  # in [0, 1] as well (a review: -3730 once)
    import pandas as pd
    from scipy import sparse

    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(16)])
    named = Autoencoder(hidden_layer_sizes=(8,), epochs=2, random_state=0).fit(frame)
    with pytest.warns(UserWarning, match="valid feature names"):
        as_array = scorer(named, X)  # an array to a model of named columns: scikit-learn's own warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the names travel with the noisy copy: no "valid feature names" warning
        assert scorer(named, frame) == pytest.approx(as_array)
    plain = Autoencoder(hidden_layer_sizes=(8,), epochs=2, random_state=0).fit(X)
    assert scorer(plain, sparse.csr_matrix(X)) == pytest.approx(scorer(plain, X))  # sparse: made dense
