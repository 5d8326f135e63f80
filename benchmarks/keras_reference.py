"""The reference text's MNIST autoencoders, in Keras 3 on TensorFlow.

This is the *reference stack* the aekit benchmarks compare against. Every model
is built exactly as in the reference text:

    dense  784 → 500 → 300 → 100 → 2 (tanh) → 100 → 300 → 500 → 784 (sigmoid)
           BCE, RMSprop(lr=0.002, momentum=0.01, rho=0.9, eps=1e-7), batch 128
           1,146,986 parameters
    sae    the dense AE plus a head off the 2-D code: 64 → 128 (tanh) → 10 (softmax),
           loss = 1.0·BCE(reconstruction) + 0.1·CE(one-hot class), optional Dropout(0.5)
           after each head hidden layer
    conv   Conv(32) → Pool → Conv(16) → Pool → Conv(16) → Up → Conv(32) → Up → Conv(1),
           3x3 'same' kernels, relu (sigmoid out), Adam(lr=1e-3), BCE, batch 128
           12,193 parameters
    denoising  the conv AE trained on clip(x + 0.4·N(0, 1), 0, 1) → x, batch 256

Each ``train_*`` function returns a JSON-able dict: per-epoch wall times, the
training loss per epoch, the final test BCE (mean per pixel, numpy) and the
model's quality metrics (k-NN(5) / logistic accuracy on the 2-D codes, head
accuracy, PSNR).

This module never imports torch (TF and torch are kept in separate processes).
Run one model from the command line:

    python benchmarks/keras_reference.py --model dense --epochs 20
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

MODELS = ("dense", "sae", "conv", "denoising")
HIDDEN = (500, 300, 100)
CODE = 2
HEAD = (64, 128)
N_CLASSES = 10
NOISE_FACTOR = 0.4
BATCH_SIZE = {"dense": 128, "sae": 128, "conv": 128, "denoising": 256}
EXPECTED_PARAMS = {"dense": 1_146_986, "sae": 1_156_788, "conv": 12_193, "denoising": 12_193}

# ----------------------------------------------------------------------------- models


def _rmsprop() -> keras.optimizers.Optimizer:
    return keras.optimizers.RMSprop(learning_rate=0.002, momentum=0.01)  # Keras defaults rho=0.9, epsilon=1e-7


def _dense_body(inp: keras.KerasTensor) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """784 → 500 → 300 → 100 → 2 → 100 → 300 → 500 → 784; returns (code, reconstruction)."""
    h = inp
    for units in HIDDEN:
        h = layers.Dense(units, activation="tanh")(h)
    code = layers.Dense(CODE, activation="tanh", name="code")(h)
    h = code
    for units in reversed(HIDDEN):
        h = layers.Dense(units, activation="tanh")(h)
    recon = layers.Dense(784, activation="sigmoid", name="recon")(h)
    return code, recon


def dense_ae() -> tuple[keras.Model, keras.Model]:
    """The seed dense autoencoder, compiled; returns (autoencoder, encoder)."""
    inp = keras.Input(shape=(784,))
    code, recon = _dense_body(inp)
    model = keras.Model(inp, recon, name="dense_ae")
    model.compile(optimizer=_rmsprop(), loss="binary_crossentropy")
    return model, keras.Model(inp, code, name="encoder")


def sae(head_dropout: float = 0.0) -> tuple[keras.Model, keras.Model]:
    """Supervised AE: two outputs [reconstruction, class probabilities], compiled."""
    inp = keras.Input(shape=(784,))
    code, recon = _dense_body(inp)
    h = code
    for units in HEAD:
        h = layers.Dense(units, activation="tanh")(h)
        if head_dropout:
            h = layers.Dropout(head_dropout)(h)
    label = layers.Dense(N_CLASSES, activation="softmax", name="label")(h)
    model = keras.Model(inp, [recon, label], name="sae")
    model.compile(
        optimizer=_rmsprop(),
        loss=["binary_crossentropy", "categorical_crossentropy"],
        loss_weights=[1.0, 0.1],
    )
    return model, keras.Model(inp, code, name="encoder")


def conv_ae() -> tuple[keras.Model, keras.Model]:
    """The convolutional AE (also the denoising AE), compiled; the encoder outputs the 7x7x16 code."""
    inp = keras.Input(shape=(28, 28, 1))
    h = layers.Conv2D(32, 3, activation="relu", padding="same")(inp)
    h = layers.MaxPooling2D(2, padding="same")(h)
    h = layers.Conv2D(16, 3, activation="relu", padding="same")(h)
    code = layers.MaxPooling2D(2, padding="same", name="code")(h)
    h = layers.Conv2D(16, 3, activation="relu", padding="same")(code)
    h = layers.UpSampling2D(2)(h)
    h = layers.Conv2D(32, 3, activation="relu", padding="same")(h)
    h = layers.UpSampling2D(2)(h)
    recon = layers.Conv2D(1, 3, activation="sigmoid", padding="same", name="recon")(h)
    model = keras.Model(inp, recon, name="conv_ae")
    model.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy")  # Keras default lr=1e-3
    return model, keras.Model(inp, code, name="encoder")


def build(name: str, head_dropout: float = 0.0) -> tuple[keras.Model, keras.Model]:
    """(compiled autoencoder, encoder) for one of ``MODELS``."""
    if name == "dense":
        return dense_ae()
    if name == "sae":
        return sae(head_dropout)
    if name in ("conv", "denoising"):
        return conv_ae()
    raise ValueError(f"model={name!r} must be one of {MODELS}")


# ----------------------------------------------------------------------------- data


def images(X: np.ndarray) -> np.ndarray:
    """(n, 784) → (n, 28, 28, 1) for the conv models."""
    return X.reshape(-1, 28, 28, 1)


def add_noise(X: np.ndarray, seed: int, factor: float = NOISE_FACTOR) -> np.ndarray:
    """The reference corruption, drawn once: clip(x + factor·N(0, 1), 0, 1)."""
    noise = np.random.default_rng(seed).normal(0.0, 1.0, size=X.shape)
    return np.clip(X + factor * noise, 0.0, 1.0).astype(np.float32)


def fit_arrays(name: str, X: np.ndarray, y: np.ndarray | None, seed: int = 0) -> tuple[np.ndarray, object]:
    """The (inputs, targets) that ``model.fit`` takes for model ``name``; X is (n, 784) in [0, 1]."""
    if name == "dense":
        return X, X
    if name == "sae":
        return X, [X, keras.utils.to_categorical(y, N_CLASSES)]
    if name == "conv":
        return images(X), images(X)
    if name == "denoising":
        return images(add_noise(X, seed)), images(X)
    raise ValueError(f"model={name!r} must be one of {MODELS}")


def read_mnist(data_dir: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """X_train, y_train, X_test, y_test from the four gzipped IDX files (float32 in [0, 1]); torch-free."""

    def idx(name: str) -> np.ndarray:
        with gzip.open(Path(data_dir) / f"{name}.gz", "rb") as f:
            data = f.read()
        ndim = data[3]
        shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)

    X_train = idx("train-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255
    X_test = idx("t10k-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / 255
    return (
        X_train,
        idx("train-labels-idx1-ubyte").astype(np.int64),
        X_test,
        idx("t10k-labels-idx1-ubyte").astype(np.int64),
    )


# ----------------------------------------------------------------------------- metrics


class EpochTimer(keras.callbacks.Callback):
    """Wall time of every epoch (on_epoch_begin → on_epoch_end)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.times.append(time.perf_counter() - self._t0)


def bce(x: np.ndarray, p: np.ndarray, eps: float = 1e-7) -> float:
    """Binary cross-entropy, mean per pixel (Keras clips probabilities to [eps, 1 - eps])."""
    x = x.reshape(len(x), -1).astype(np.float64)
    p = np.clip(p.reshape(len(p), -1).astype(np.float64), eps, 1 - eps)
    return float(-np.mean(x * np.log(p) + (1 - x) * np.log1p(-p)))


def psnr(x: np.ndarray, y: np.ndarray) -> float:
    """10·log10(1 / MSE) over the whole set, for images in [0, 1]."""
    mse = float(np.mean((x.reshape(len(x), -1).astype(np.float64) - y.reshape(len(y), -1)) ** 2))
    return 10 * np.log10(1.0 / mse)


def code_accuracies(
    Z_train: np.ndarray, y_train: np.ndarray, Z_test: np.ndarray, y_test: np.ndarray
) -> dict[str, float]:
    """k-NN(5) and logistic-regression (standardized codes) test accuracy of 2-D codes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    knn = KNeighborsClassifier(n_neighbors=5).fit(Z_train, y_train)
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(Z_train, y_train)
    return {"knn_acc": float(knn.score(Z_test, y_test)), "logreg_acc": float(logreg.score(Z_test, y_test))}


def evaluate(
    name: str,
    model: keras.Model,
    encoder: keras.Model,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    seed: int = 0,
) -> dict[str, float]:
    """Test-set quality of a trained model (X are (n, 784) in [0, 1])."""
    pred = lambda m, x: m.predict(x, batch_size=1024, verbose=0)  # noqa: E731
    out: dict[str, float] = {}
    if name in ("dense", "sae"):
        recon = pred(model, X_test)
        if name == "sae":
            recon, probs = recon
            out["head_acc"] = float(np.mean(np.argmax(probs, axis=1) == y_test))
        out["test_bce"] = bce(X_test, recon)
        out.update(code_accuracies(pred(encoder, X_train), y_train, pred(encoder, X_test), y_test))
    elif name == "conv":
        out["test_bce"] = bce(X_test, pred(model, images(X_test)))
    elif name == "denoising":
        noisy = add_noise(X_test, seed + 1)  # a fresh draw, never seen in training
        denoised = pred(model, images(noisy))
        out["test_bce"] = bce(X_test, denoised)
        out["psnr_noisy"] = psnr(X_test, noisy)
        out["psnr_denoised"] = psnr(X_test, denoised)
    return out


# ----------------------------------------------------------------------------- training


def train(
    name: str,
    epochs: int,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    seed: int = 0,
    *,
    head_dropout: float = 0.0,
    callbacks: list | None = None,
    quality: bool = True,
) -> dict:
    """Train model ``name`` the reference way and return a JSON-able dict of timings and metrics.

    X are (n, 784) float32 in [0, 1], y integer labels. ``callbacks`` are extra Keras
    callbacks; ``quality=False`` skips the (slow-ish) test metrics.
    """
    keras.utils.set_random_seed(seed)
    model, encoder = build(name, head_dropout)
    timer = EpochTimer()
    x, target = fit_arrays(name, X_train, y_train, seed)
    t0 = time.perf_counter()
    hist = model.fit(
        x,
        target,
        batch_size=BATCH_SIZE[name],
        epochs=epochs,
        shuffle=True,
        verbose=0,
        callbacks=[timer, *(callbacks or [])],
    )
    result = {
        "model": name,
        "params": int(model.count_params()),
        "samples": int(len(X_train)),
        "epochs": int(epochs),
        "batch_size": BATCH_SIZE[name],
        "seed": seed,
        "head_dropout": head_dropout,
        "fit_time": time.perf_counter() - t0,
        "epoch_times": timer.times,
        "loss": [float(v) for v in hist.history["loss"]],
        "versions": versions(),
    }
    if quality:
        result.update(evaluate(name, model, encoder, X_train, y_train, X_test, y_test, seed))
    return result


def train_dense(epochs, X_train, y_train, X_test, y_test, seed=0, **kw) -> dict:
    return train("dense", epochs, X_train, y_train, X_test, y_test, seed, **kw)


def train_sae(epochs, X_train, y_train, X_test, y_test, seed=0, head_dropout=0.0, **kw) -> dict:
    return train("sae", epochs, X_train, y_train, X_test, y_test, seed, head_dropout=head_dropout, **kw)


def train_conv(epochs, X_train, y_train, X_test, y_test, seed=0, **kw) -> dict:
    return train("conv", epochs, X_train, y_train, X_test, y_test, seed, **kw)


def train_denoising(epochs, X_train, y_train, X_test, y_test, seed=0, **kw) -> dict:
    return train("denoising", epochs, X_train, y_train, X_test, y_test, seed, **kw)


def versions() -> dict[str, str]:
    import platform

    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "numpy": np.__version__,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default="dense")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--samples", type=int, default=60000, help="first N training samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--head-dropout", type=float, default=0.0)
    parser.add_argument("--data", default=os.environ.get("AEKIT_MNIST_DIR"), help="folder of the MNIST IDX .gz files")
    args = parser.parse_args()
    if not args.data:
        parser.error("give --data or set AEKIT_MNIST_DIR to the folder holding the MNIST IDX files")
    X_train, y_train, X_test, y_test = read_mnist(args.data)
    res = train(
        args.model,
        args.epochs,
        X_train[: args.samples],
        y_train[: args.samples],
        X_test,
        y_test,
        args.seed,
        head_dropout=args.head_dropout,
    )
    assert res["params"] == EXPECTED_PARAMS[args.model], res["params"]
    print(json.dumps(res, indent=1))
