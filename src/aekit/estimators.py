"""scikit-learn estimators: ``Autoencoder`` and ``SupervisedAutoencoder``; ``load``.

Defaults reproduce the reference dense autoencoder: 784 → 500 → 300 → 100 → 2
(tanh) → 100 → 300 → 500 → 784 (sigmoid), BCE, Keras RMSprop(lr=0.002,
momentum=0.01, rho=0.9, eps=1e-7), batch 128, Glorot-uniform weights, zero biases.
The shared machinery (validation, the fit pipeline, inference, saving) is in ``base``.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted, column_or_1d

from aekit._utils import (
    InputError,
    ModelFileError,
    resolve_device,
    seed_from,
)
from aekit.base import UNLABELLED, _AutoencoderBase
from aekit.files import MODEL_DAMAGED, check_tensors, corrupted_metadata, read_model
from aekit.modules import build_net
from aekit.params import PRESETS as PRESETS  # re-exported: the recipes are data about parameters
from aekit.params import Interval, check_param

log = logging.getLogger(__name__)


class Autoencoder(_AutoencoderBase):
    """Autoencoder for dimensionality reduction, denoising and visualization.

    A scikit-learn transformer: ``transform`` is the encoder, ``inverse_transform``
    the decoder. Dense or convolutional body, optional Gaussian (VAE) latent,
    optional training-time corruption (denoising). Defaults are the reference
    dense AE; ``PRESETS`` holds the other recipes.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(500, 300, 100)
        Dense encoder widths; the decoder mirrors them.
    n_components : int or None, default=2
        Code size. ``None`` (conv only) keeps the spatial code (7×7×16 on MNIST).
    architecture : {"dense", "conv"}, default="dense"
    activation : str or None, default=None
        Hidden activation; None means tanh for dense, relu for conv (the reference).
    code_activation : str, default="tanh"
        Activation of the code layer of a deterministic AE.
    output_activation : {"sigmoid", "linear"}, default="sigmoid"
    loss : {"bce", "mse", "huber", "l1"}, default="bce"
        Reconstruction loss, mean per element. "bce" needs the sigmoid output (data in
        [0, 1]); "mse", "huber" (Huber with delta 1: squared below 1, absolute above)
        and "l1" (absolute error, robust to outliers) compare the output, after the
        sigmoid if there is one; for unbounded data use them with ``output_activation="linear"``.
    batchnorm : bool, default=False
        BatchNorm after every hidden layer.
    dropout : float, default=0.0
        Dropout after every hidden layer of the dense body (architecture="dense" only).
    image_shape : tuple, optional
        ``(H, W)`` or ``(C, H, W)`` for the conv body; square single-channel if None.
    conv_filters : tuple of int, default=(32, 16)
    kernel_size : int, default=3
    variational : bool, default=False
        Gaussian latent with reparameterisation and a KL term (VAE).
    beta : float, default=1.0
        Weight of the KL term (per input feature, see ``objectives``).
    noise : {None, "gaussian", "masking", "salt_pepper"}, default=None
        Corrupt inputs while training (denoising AE); targets stay clean.
    noise_factor : float, default=0.4
        Gaussian std, or the fraction of values hit for masking / salt-and-pepper.
    optimizer : {"rmsprop", "adam", "adamw", "sgd"}, default="rmsprop"
        Keras semantics (eps=1e-7; RMSprop rho=0.9 with eps inside the root).
    learning_rate : float, default=0.002
    momentum : float, default=0.01
    batch_size : int, default=128
    epochs : int, default=20
    lr_schedule : {None, "cosine", "plateau"}, default=None
        "cosine": per step down to 0; "plateau": halve after 2 epochs without improvement.
    validation_fraction : float, default=0.0
        Held-out fraction for ``val_*`` history and early stopping.
    early_stopping : bool, default=False
        Stop once the monitored loss (``val_loss`` with a validation split, else ``loss``)
        has not improved for ``patience`` epochs. With ``lr_schedule="plateau"`` the
        halvings do not restart that count, and training also ends once the schedule
        takes the learning rate below ``learning_rate / 100`` (``stop_reason_``
        "lr_floor").
    patience : int, default=5
        Epochs without improvement before early stopping.
    min_delta : float, default=0.0
        Smallest decrease of the monitored loss that counts as an improvement (for
        early stopping, ``best_epoch_`` and the plateau schedule).
    restore_best_weights : bool, default=True
        With early stopping: end with the weights of ``best_epoch_`` rather than the last
        epoch's.
    device : str, default="auto"
        "auto" picks CUDA (or MPS) when available, else CPU.
    compile : bool or "auto", default="auto"
        Fast paths. On the CPU "auto" compiles the RMSprop update into one kernel
        for runs of >= 2,000 steps and leaves the forward pass eager. On CUDA "auto"
        captures the whole training step as a CUDA graph and replays it
        (``accel.CudaGraphStep``) and compiles nothing (at these sizes the
        compilation wait does not pay back); where no graph applies (``optimizer="sgd"``)
        it compiles the forward pass of dense architectures. True compiles the
        optimizer update and the forward pass (on CUDA inside the graph); False
        is plain eager PyTorch. Falls back to eager if compilation or capture fails.
        The measurements behind these choices: docs/performance.md.
    precision : {"float32", "bfloat16"}, default="float32"
        Arithmetic of the training forward/backward pass. "bfloat16" is mixed
        precision (``torch.autocast``): products in bfloat16, weights, optimizer
        and losses in float32; faster training on CPUs with AVX512-BF16
        (benchmarks/results/speed.md), results close to but not bit-equal with
        float32. Inference (``transform`` etc.) always runs in float32.
    data_loading : {"auto", "memory", "stream"}, default="auto"
        How ``fit`` reads ``X``. "memory" converts it to one float32 array in RAM and
        shuffles it fully every epoch (the reference path). "stream" reads batches from
        ``X`` where it lives (a memory-mapped ``.npy``, an h5py dataset, a zarr array, an
        ``aekit.sources.ImageFolder``) as contiguous slices, in an order shuffled by
        blocks and within a window, converted by a background thread: memory stays a
        few batches whatever the number of rows. "auto" keeps arrays that are in memory
        on the memory path and streams data on disk when its float32 copy would take
        more than a quarter of the available memory. The two paths draw different
        orders, so their results differ (each is reproducible under ``random_state``);
        with a validation split the stream path holds out whole blocks of rows.
    random_state : int, RandomState or None
        Seeds everything in ``fit`` without touching the global RNG.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar (steps, with the epoch in its description);
        2 prints one line per epoch to stderr (epoch k/N, losses, validation losses,
        learning rate, seconds), without any logging set-up.
    callbacks : list of callables, optional
        ``cb(epoch, logs)``; returning True stops training.
    checkpoint_path : path, optional
        Write a resumable checkpoint there after every epoch. The file stays when
        training ends (the path is the caller's; ``aekit train`` deletes its own once a
        run has finished, unless ``--keep-checkpoint``).

    Attributes
    ----------
    net_ : AutoencoderNet
    history_ : dict of str to list of float
        Per-epoch ``loss``, ``reconstruction`` (+ ``kl``), ``val_*``, ``lr``, ``time``.
    n_features_in_ : int
    n_iter_ : int
        Epochs completed.
    best_epoch_ : int
        The epoch (1-based, as in the ``verbose=2`` lines: ``history_[key][best_epoch_ - 1]``)
        with the lowest monitored loss, improvements smaller than ``min_delta`` not
        counting; 0 before any epoch completed. With early stopping and
        ``restore_best_weights`` the model holds this epoch's weights.
    stop_reason_ : str
        Why training ended: "completed", "early_stopping", "lr_floor", "callback",
        "interrupted" or "diverged".
    """

    def __init__(
        self,
        *,
        hidden_layer_sizes: Sequence[int] = (500, 300, 100),
        n_components: int | None = 2,
        architecture: str = "dense",
        activation: str | None = None,
        code_activation: str = "tanh",
        output_activation: str = "sigmoid",
        loss: str = "bce",
        batchnorm: bool = False,
        dropout: float = 0.0,
        image_shape: Sequence[int] | None = None,
        conv_filters: Sequence[int] = (32, 16),
        kernel_size: int = 3,
        variational: bool = False,
        beta: float = 1.0,
        noise: str | None = None,
        noise_factor: float = 0.4,
        optimizer: str = "rmsprop",
        learning_rate: float = 0.002,
        momentum: float = 0.01,
        batch_size: int = 128,
        epochs: int = 20,
        lr_schedule: str | None = None,
        validation_fraction: float = 0.0,
        early_stopping: bool = False,
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
        device: str = "auto",
        compile: bool | str = "auto",
        precision: str = "float32",
        data_loading: str = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        callbacks: list[Callable[..., Any]] | None = None,
        checkpoint_path: str | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_components = n_components
        self.architecture = architecture
        self.activation = activation
        self.code_activation = code_activation
        self.output_activation = output_activation
        self.loss = loss
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.image_shape = image_shape
        self.conv_filters = conv_filters
        self.kernel_size = kernel_size
        self.variational = variational
        self.beta = beta
        self.noise = noise
        self.noise_factor = noise_factor
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.epochs = epochs
        self.lr_schedule = lr_schedule
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best_weights = restore_best_weights
        self.device = device
        self.compile = compile
        self.precision = precision
        self.data_loading = data_loading
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.checkpoint_path = checkpoint_path

    def fit(self, X: Any, y: Any = None, *, resume_from: str | os.PathLike[str] | None = None) -> Autoencoder:
        """Train on ``X`` ``(n_samples, n_features)``; ``y`` is ignored.

        ``X`` may live on disk: a memory-mapped ``.npy``, an h5py dataset, a zarr array or an
        ``aekit.sources.ImageFolder`` (see ``data_loading``).

        ``resume_from`` continues from a checkpoint written via ``checkpoint_path``.
        """
        X = self._train_input(X)
        self._fit(X, None, None, resume_from)
        return self

    def score(self, X: Any, y: Any = None) -> float:
        """Negative mean reconstruction loss (higher is better, for model selection)."""
        return -self.reconstruction_error(X)

    def sample(self, n_samples: int, random_state: int | None = None) -> np.ndarray:
        """Draw ``n_samples`` from a variational model's prior and decode them."""
        check_is_fitted(self, "net_")
        if not self.variational:
            raise InputError("sample() needs variational=True; this model has a deterministic code")
        check_param("n_samples", n_samples, Interval(int, 1))
        g = torch.Generator().manual_seed(seed_from(random_state))
        z = torch.randn(n_samples, self._n_features_out, generator=g).numpy()
        return self.inverse_transform(z)


class SupervisedAutoencoder(ClassifierMixin, _AutoencoderBase):
    """Autoencoder with a classifier head off the code (SAE).

    Loss = ``reconstruction_weight``·BCE(reconstruction) + ``classification_weight``·CE(class).
    A classifier and a transformer at once: ``predict``/``predict_proba``/``score``
    (accuracy) and ``transform``/``inverse_transform``. Labels may be any values;
    ``y == -1`` (or the text ``"-1"`` among text labels) marks an unlabelled sample, which trains
    only the reconstruction.

    Parameters
    ----------
    head_layer_sizes : tuple of int, default=(64, 128)
    head_activation : str, default="tanh"
    head_dropout : float, default=0.0
        0.5 is the reference remedy for an overfitting head.
    reconstruction_weight : float, default=1.0
    classification_weight : float, default=0.1
    (all other parameters as in ``Autoencoder``)

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    """

    def __init__(
        self,
        *,
        hidden_layer_sizes: Sequence[int] = (500, 300, 100),
        n_components: int | None = 2,
        architecture: str = "dense",
        activation: str | None = None,
        code_activation: str = "tanh",
        output_activation: str = "sigmoid",
        loss: str = "bce",
        batchnorm: bool = False,
        dropout: float = 0.0,
        image_shape: Sequence[int] | None = None,
        conv_filters: Sequence[int] = (32, 16),
        kernel_size: int = 3,
        variational: bool = False,
        beta: float = 1.0,
        noise: str | None = None,
        noise_factor: float = 0.4,
        head_layer_sizes: Sequence[int] = (64, 128),
        head_activation: str = "tanh",
        head_dropout: float = 0.0,
        reconstruction_weight: float = 1.0,
        classification_weight: float = 0.1,
        optimizer: str = "rmsprop",
        learning_rate: float = 0.002,
        momentum: float = 0.01,
        batch_size: int = 128,
        epochs: int = 20,
        lr_schedule: str | None = None,
        validation_fraction: float = 0.0,
        early_stopping: bool = False,
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
        device: str = "auto",
        compile: bool | str = "auto",
        precision: str = "float32",
        data_loading: str = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        callbacks: list[Callable[..., Any]] | None = None,
        checkpoint_path: str | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_components = n_components
        self.architecture = architecture
        self.activation = activation
        self.code_activation = code_activation
        self.output_activation = output_activation
        self.loss = loss
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.image_shape = image_shape
        self.conv_filters = conv_filters
        self.kernel_size = kernel_size
        self.variational = variational
        self.beta = beta
        self.noise = noise
        self.noise_factor = noise_factor
        self.head_layer_sizes = head_layer_sizes
        self.head_activation = head_activation
        self.head_dropout = head_dropout
        self.reconstruction_weight = reconstruction_weight
        self.classification_weight = classification_weight
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.epochs = epochs
        self.lr_schedule = lr_schedule
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best_weights = restore_best_weights
        self.device = device
        self.compile = compile
        self.precision = precision
        self.data_loading = data_loading
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.checkpoint_path = checkpoint_path

    def _head_kwargs(self) -> dict[str, Any]:
        return {
            "head_layer_sizes": tuple(self.head_layer_sizes),
            "head_activation": self.head_activation,
            "head_dropout": self.head_dropout,
        }

    def _loss_weights(self) -> tuple[float, float]:
        return float(self.reconstruction_weight), float(self.classification_weight)

    def _encode_labels(self, y: Any, n: int) -> np.ndarray:
        """Map labels to indices 0..n_classes-1; unlabelled (-1) stays -1. Sets ``classes_``."""
        if y is None:
            raise InputError(
                "SupervisedAutoencoder requires y to be passed, but the target y is None; "
                "use Autoencoder for unlabelled data, or y=-1 per unlabelled sample"
            )
        y = _labels_1d(y, n)
        unlabelled = _unlabelled(y)
        if unlabelled.any() and y.dtype.kind in "if" and bool(np.any(y[~unlabelled] < 0)):
            warnings.warn(
                f"y holds negative labels besides -1; -1 marks unlabelled samples ({int(unlabelled.sum())} of them "
                "here), so class -1 is not learned. Encode the classes as 0..k-1 (e.g. LabelEncoder) if -1 is a class",
                UserWarning,
                stacklevel=3,
            )
        labelled = y[~unlabelled]
        if labelled.size == 0:
            raise InputError("y has no labelled samples (all -1); train an Autoencoder instead, or label some samples")
        from sklearn.utils.multiclass import type_of_target

        kind = type_of_target(labelled)
        if kind not in ("binary", "multiclass"):
            raise InputError(
                f"Unknown label type: y must hold class labels (binary or multiclass), found {kind!r} targets"
            )
        self.classes_ = np.unique(labelled)
        if len(self.classes_) < 2:
            note = f" ({int(unlabelled.sum())} samples labelled -1 count as unlabelled)" if unlabelled.any() else ""
            only = self.classes_[0].item() if isinstance(self.classes_[0], np.generic) else self.classes_[0]
            raise InputError(f"y holds only one class ({only!r}){note}; a classifier needs at least 2 classes")
        idx = np.full(n, UNLABELLED, dtype=np.int64)
        idx[~unlabelled] = np.searchsorted(self.classes_, labelled)
        return idx

    def fit(self, X: Any, y: Any, *, resume_from: str | os.PathLike[str] | None = None) -> SupervisedAutoencoder:
        """Train on ``X`` ``(n_samples, n_features)`` and labels ``y`` ``(n_samples,)``."""
        X = self._train_input(X)
        y_idx = self._encode_labels(y, X.shape[0] if isinstance(X, np.ndarray) else X.n_samples)
        self._fit(X, y_idx, len(self.classes_), resume_from)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)`` from the head."""
        check_is_fitted(self, "net_")
        head = self.net_.head
        assert head is not None  # fit builds a supervised net with a head
        proba = lambda xb: torch.softmax(head(self.net_.encode(xb)["code"]), dim=1)  # noqa: E731
        return self._apply(X, proba, len(self.classes_), None)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels ``(n_samples,)``, values from ``classes_``."""
        check_is_fitted(self, "net_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self) -> Any:  # sklearn.utils.Tags
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags


def _labels_1d(y: Any, n: int) -> np.ndarray:
    """``y`` as a 1-D array of ``n`` finite, non-complex labels (a column vector is accepted with a warning)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.ndim != 1:
        raise InputError(f"y must be 1-D of shape ({n},), found shape {y.shape}")
    if y.shape[0] != n:
        raise InputError(f"y has {y.shape[0]} labels but X has {n} samples; pass one label per sample")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise InputError("y contains NaN or inf; mark unlabelled samples with -1 instead")
    if y.dtype.kind == "c":
        raise InputError(f"y has complex dtype {y.dtype}; expected class labels")
    return y


def _unlabelled(y: np.ndarray) -> np.ndarray:
    """Which samples are unlabelled: -1 among numbers, the text "-1" among text labels (a CSV's label column)."""
    if y.dtype.kind in "iuf":
        return y == UNLABELLED
    if y.dtype.kind == "O":
        missing = [i for i, v in enumerate(y) if v is None or (isinstance(v, float) and not np.isfinite(v))]
        if missing:
            raise InputError(
                f"y has {len(missing)} missing labels (None or NaN), the first at index {missing[0]}; "
                "mark unlabelled samples with -1 instead"
            )
        return np.array(
            [
                (isinstance(v, (int, np.integer)) and v == UNLABELLED) or (isinstance(v, str) and v.strip() == "-1")
                for v in y
            ],
            dtype=bool,
        )
    if y.dtype.kind in "US":
        return np.char.strip(y.astype(str)) == "-1"
    return np.zeros(y.shape[0], dtype=bool)


ESTIMATORS: dict[str, type[_AutoencoderBase]] = {
    "Autoencoder": Autoencoder,
    "SupervisedAutoencoder": SupervisedAutoencoder,
}


def fit_stage(est: Any, X: Any, y: Any = None) -> Any:
    """``est.fit(X[, y])`` as one stage of a longer job (AE → t-SNE, the demo); returns ``est``.

    On its own, ``fit`` treats Ctrl-C (and SIGTERM) as "stop training and keep the
    model" and returns. A job built on the model must not carry on with a partly
    trained one as if nothing happened: here an interrupted training raises
    ``KeyboardInterrupt`` once the model is kept (``est`` still holds it).
    """
    est.fit(X) if y is None else est.fit(X, y)
    if getattr(est, "stop_reason_", "") == "interrupted":
        raise KeyboardInterrupt(f"training interrupted after {est.n_iter_} complete epochs")
    return est


def load(path: str | os.PathLike[str], *, device: str = "cpu") -> Autoencoder | SupervisedAutoencoder:
    """Load a model written by ``save``; runs no code from the file (safetensors + JSON).

    Names, shapes, finiteness and the format version are checked. Tensors are
    placed on ``device`` (CPU by default, whatever device trained the model).
    """
    p = Path(path)
    model = read_model(p)
    cls = ESTIMATORS.get(model.estimator)
    if cls is None:
        raise ModelFileError(f"{p}: unknown estimator {model.estimator!r}; expected one of {sorted(ESTIMATORS)}")
    classes = model.fitted.get("classes_")
    with corrupted_metadata(p, "model metadata", MODEL_DAMAGED):  # parameters that fit the schema, not the estimator
        # a loaded model never writes where its file says
        est = cls(**{**model.params, "device": device, "checkpoint_path": None, "callbacks": None})
        est._validate_params()
        net_kwargs = est._net_kwargs(model.fitted["n_features_in_"], None if classes is None else len(classes))
        with torch.device("meta"):  # shapes only, nothing allocated: tampered metadata cannot exhaust memory
            expected = build_net(**net_kwargs).state_dict()
    check_tensors(p, model.tensors, expected, fix=MODEL_DAMAGED, corrupt=MODEL_DAMAGED)
    net = build_net(**net_kwargs)
    net.load_state_dict(model.tensors)
    est.device_ = resolve_device(device)
    est.net_ = net.to(est.device_).eval()
    for name, value in model.fitted.items():
        setattr(est, name, value)
    return est
