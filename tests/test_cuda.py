"""The same estimators on a CUDA GPU. Skipped where there is none (CI has none)."""

import numpy as np
import pytest
import torch

import aekit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def digits():
    rng = np.random.default_rng(0)
    centers = rng.random((4, 64), dtype=np.float32)
    y = rng.integers(0, 4, 512)
    X = np.clip(centers[y] + 0.1 * rng.standard_normal((512, 64), dtype=np.float32), 0, 1).astype(np.float32)
    return X, y


def test_auto_picks_the_gpu(digits):
    """device='auto' and compile='auto' (which compiles the training step on CUDA)."""
    X, _ = digits
    ae = aekit.Autoencoder(hidden_layer_sizes=(32,), n_components=2, epochs=2, random_state=0).fit(X)
    assert ae.device_.type == "cuda"
    assert next(ae.net_.parameters()).is_cuda
    assert isinstance(ae.transform(X), np.ndarray)  # results come back as NumPy on the host


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_gpu_training_matches_cpu(digits, precision):
    """Same seed, same data: the GPU run ends where the CPU run does, to float tolerance."""
    X, _ = digits
    kw = {"hidden_layer_sizes": (32,), "n_components": 2, "epochs": 5, "random_state": 0, "compile": False, "precision": precision}
    cpu = aekit.Autoencoder(device="cpu", **kw).fit(X)
    gpu = aekit.Autoencoder(device="cuda", **kw).fit(X)
    assert gpu.history_["loss"][-1] == pytest.approx(cpu.history_["loss"][-1], rel=0.02 if precision == "float32" else 0.05)
    assert gpu.history_["loss"][-1] < gpu.history_["loss"][0]


def test_gpu_conv_and_supervised(digits):
    X, y = digits
    kw = {"random_state": 0, "device": "cuda", "compile": False}
    conv = aekit.Autoencoder(architecture="conv", image_shape=(1, 8, 8), conv_filters=(8, 4), n_components=None, epochs=3, **kw).fit(X)
    assert conv.transform(X).shape == (512, 4 * 2 * 2)
    sae = aekit.SupervisedAutoencoder(hidden_layer_sizes=(32,), epochs=30, **kw).fit(X, y)
    assert (sae.predict(X) == y).mean() > 0.9


def test_saved_on_gpu_loads_on_cpu(digits, tmp_path):
    X, _ = digits
    ae = aekit.Autoencoder(hidden_layer_sizes=(32,), n_components=2, epochs=2, random_state=0, device="cuda", compile=False).fit(X)
    ae.save(tmp_path / "m.safetensors")
    back = aekit.load(tmp_path / "m.safetensors", device="cpu")
    assert next(back.net_.parameters()).device.type == "cpu"
    np.testing.assert_allclose(back.transform(X), ae.transform(X), rtol=1e-4, atol=1e-5)
