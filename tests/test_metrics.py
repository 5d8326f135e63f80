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
