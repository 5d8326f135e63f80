import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
# Tests press Ctrl-C on aekit subprocesses. A suite started as a background job of a script inherits
# SIGINT ignored, and so would every child: with a handler here, children start with the default instead
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
ROOT = Path(__file__).resolve().parents[1]


def _mnist_dir() -> Path | None:
    for candidate in (os.environ.get("AEKIT_MNIST_DIR"), ROOT.parent / "shared" / "data" / "mnist"):
        if candidate and (Path(candidate) / "t10k-images-idx3-ubyte.gz").exists():
            return Path(candidate).resolve()  # absolute: tests symlink to it from other folders
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    d = _mnist_dir()
    if d is None:
        pytest.skip("MNIST not available offline (set AEKIT_MNIST_DIR)")
    return d


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from aekit import load_mnist

    return load_mnist(mnist_dir, download=False)


@pytest.fixture(autouse=True)
def _warnings_once_per_test():
    """aekit's once-per-process warnings (``_utils.warn_once``) come once per test, whatever ran before."""
    from aekit._utils import _WARNED

    _WARNED.clear()


@pytest.fixture
def blobs():
    """Small separable data in [0, 1]: 3 classes, 20 features."""
    rng = np.random.default_rng(0)
    centers = rng.uniform(0.1, 0.9, size=(3, 20))
    y = np.repeat(np.arange(3), 60)
    X = np.clip(centers[y] + 0.05 * rng.standard_normal((180, 20)), 0, 1).astype(np.float32)
    return X, y


SMALL = dict(hidden_layer_sizes=(16,), n_components=2, epochs=3, batch_size=32, random_state=0, device="cpu")
