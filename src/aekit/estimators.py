"""scikit-learn estimators: ``Autoencoder``, ``SupervisedAutoencoder`` and ``ParametricTSNE``; ``load``.

Defaults reproduce the reference dense autoencoder: 784 → 500 → 300 → 100 → 2
(tanh) → 100 → 300 → 500 → 784 (sigmoid), BCE (what the "auto" output and loss pick for
data in [0, 1], as MNIST's), Keras RMSprop(lr=0.002,
momentum=0.01, rho=0.9, eps=1e-7), batch 128, Glorot-uniform weights, zero biases.
The shared machinery (validation, the fit pipeline, inference, saving) is in ``base``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import types
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted, column_or_1d

from aekit._utils import (
    COMPUTE_LOCK,
    UNLABELLED,
    InputError,
    ModelFileError,
    outside_stacklevel,
    resolve_device,
    seed_from,
    unlabelled,
    warn_once,
)
from aekit.accel import autocast
from aekit.base import _AutoencoderBase, classification_terms
from aekit.files import MODEL_DAMAGED, check_tensors, corrupted_metadata, read_model
from aekit.modules import AutoencoderNet, build_net
from aekit.objectives import augment, corrupt, reconstruction_loss, tsne_loss
from aekit.params import PRESETS as PRESETS  # re-exported: the recipes are data about parameters
from aekit.params import Interval, check_param, sizes
from aekit.sources import as_source
from aekit.training import Callback, Data, LoopState, TrainConfig
from aekit.tsne import NeighbourGraph, conditional_affinities, cumulative, label_affinities
from aekit.tsne import check_inputs as check_tsne_inputs

log = logging.getLogger(__name__)


class Autoencoder(_AutoencoderBase):
    """Autoencoder for dimensionality reduction, denoising and visualization.

    A scikit-learn transformer: ``transform`` is the encoder, ``inverse_transform``
    the decoder. Dense or convolutional body, optional Gaussian (VAE) latent,
    optional training-time corruption (denoising). Defaults are the reference
    dense AE; ``PRESETS`` holds the other recipes.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int or int, default=(500, 300, 100)
        Dense encoder widths (one integer: one layer); the decoder mirrors them.
    n_components : int or None, default=2
        Code size. ``None`` (conv only) keeps the spatial code (7×7×16 on MNIST).
    architecture : {"dense", "conv"}, default="dense"
    activation : str or None, default=None
        Hidden activation; None means tanh for dense, relu for conv (the reference).
    code_activation : str, default="tanh"
        Activation of the code layer of a deterministic AE.
    output_activation : {"auto", "sigmoid", "linear"}, default="auto"
        Activation of the reconstruction. "auto" is resolved in ``fit`` from the training
        data as the model sees it (after ``scale``): "sigmoid" for data in [0, 1] (and
        always with ``loss="bce"``), else "linear". The choice made: ``output_activation_``.
    loss : {"auto", "bce", "mse", "huber", "l1"}, default="auto"
        Reconstruction loss, mean per element. "auto": "bce" (cross-entropy) on a sigmoid
        output for data in [0, 1] (the MNIST reference), else "mse"; the choice made:
        ``loss_``. "bce" needs the sigmoid output and data in [0, 1]; "mse", "huber"
        (Huber with delta 1: squared below 1, absolute above) and "l1" (absolute error,
        robust to outliers) compare the output, after the sigmoid if there is one.
    scale : {None, "minmax", "standard", "pixels"}, default=None
        The one switch for data of any range. Scaling of the features, fitted in ``fit``
        and part of the model: ``transform`` and ``predict`` apply it,
        ``inverse_transform`` and ``reconstruct`` undo it, so inputs and outputs stay in
        the user's units. "minmax": each feature to [0, 1] (then ``loss="auto"`` picks
        cross-entropy); "standard": each feature to mean 0 and standard deviation 1 (for
        tabular features on different scales); "pixels": divide by 255 (0-255 images of
        any dtype). Constant features become 0. None: the data as given, where uint8 data
        whose values reach 128 are 0-255 pixels and are divided by 255 (smaller uint8
        values are numbers, said once); with a ``scale``, uint8 data are numbers.
    batchnorm : bool, default=False
        BatchNorm after every hidden layer.
    dropout : float, default=0.0
        Dropout after every hidden layer of the dense body (architecture="dense" only).
    image_shape : tuple, optional
        ``(H, W)`` or ``(C, H, W)`` for the conv body. If None: the shape of the images in
        ``X`` (an ``(n, H, W)`` or ``(n, C, H, W)`` array, a folder of images), else square
        single-channel.
    conv_filters : tuple of int or int, default=(32, 16)
    kernel_size : int, default=3
    variational : bool, default=False
        Gaussian latent with reparameterisation and a KL term (VAE).
    beta : float, default=1.0
        Weight of the KL term (per input feature, see ``objectives``).
    noise : {None, "gaussian", "masking", "salt_pepper"}, default=None
        Corrupt inputs while training (denoising AE); targets stay clean.
    noise_factor : float, default=0.4
        Gaussian std, or the fraction of values hit for masking / salt-and-pepper.
    augment : {None, "affine"}, default=None
        New training images each epoch: "affine" moves each image by up to 1/14 of its side
        and turns it by up to 10 degrees, at random, in the data's own units (before
        ``scale``). Images only: ``image_shape_``, or square single-channel rows of at least
        8 x 8. The moved image is the input and the reconstruction target; its label stays.
    optimizer : {"rmsprop", "adam", "adamw", "sgd"}, default="rmsprop"
        Keras semantics (eps=1e-7; RMSprop rho=0.9 with eps inside the root).
    learning_rate : float, default=0.002
    momentum : float, default=0.01
    batch_size : int, default=128
    epochs : int or "auto", default="auto"
        Passes over the training data. "auto" is the reference recipe's 20 epochs, or more
        on a small data set: enough for at least ``training.AUTO_MIN_STEPS`` optimizer steps
        (``ceil(n_train / batch_size)`` steps per epoch). The reference's 20 epochs are
        9,380 steps on MNIST's 60,000 images but 200 on 1,300 rows, too few to learn. The
        resolved value is ``epochs_``.
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
        Arithmetic of the forward/backward pass in training and of inference.
        "bfloat16" is mixed precision (``torch.autocast``): products in bfloat16,
        weights, optimizer and losses in float32; faster on CPUs with AVX512-BF16
        or AMX (benchmarks/results/speed.md), results close to but not bit-equal
        with float32. ``transform``, ``predict`` and ``inverse_transform`` follow it
        and return float32; ``set_params(precision=...)`` after fitting changes
        only inference.
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
        ``cb(epoch, logs)`` after every epoch, ``epoch`` counted from 0 (the epoch lines and
        ``best_epoch_`` count from 1); returning True stops training.
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
    epochs_ : int
        The epochs this fit was set to run (``epochs``, with "auto" resolved for the data).
    fit_warnings_ : list of str
        What the last fit warned about (each also raised as a ``TrainingWarning``): a head
        still at chance, a loss that never left its starting plateau, codes on the code
        activation's bounds. Empty when training looks healthy.
    best_epoch_ : int
        The epoch (1-based, as in the ``verbose=2`` lines: ``history_[key][best_epoch_ - 1]``)
        with the lowest monitored loss, improvements smaller than ``min_delta`` not
        counting; 0 before any epoch completed. With early stopping and
        ``restore_best_weights`` the model holds this epoch's weights.
    stop_reason_ : str
        Why training ended: "completed", "early_stopping", "lr_floor", "callback",
        "interrupted", "diverged" or "error" (an exception raised during training, e.g. in a
        callback: raised again, the model of the last complete epoch kept).
    loss_, output_activation_ : str
        The loss and output activation the model trained with ("auto" resolved).
    pixels_ : bool
        Whether uint8 input is read as 0-255 pixels (divided by 255), as decided in ``fit``.
    image_shape_ : tuple or None
        The images' shape the model reads: ``image_shape``, else that of the images in ``X``;
        None for rows. Images of another shape are refused later.
    input_offset_, input_scale_ : ndarray of shape (n_features,) or None
        The fitted ``scale``: the model reads ``(X - input_offset_) / input_scale_``; None
        without one.
    """

    def __init__(
        self,
        *,
        hidden_layer_sizes: Sequence[int] = (500, 300, 100),
        n_components: int | None = 2,
        architecture: str = "dense",
        activation: str | None = None,
        code_activation: str = "tanh",
        output_activation: str = "auto",
        loss: str = "auto",
        scale: str | None = None,
        batchnorm: bool = False,
        dropout: float = 0.0,
        image_shape: Sequence[int] | None = None,
        conv_filters: Sequence[int] = (32, 16),
        kernel_size: int = 3,
        variational: bool = False,
        beta: float = 1.0,
        noise: str | None = None,
        noise_factor: float = 0.4,
        augment: str | None = None,
        optimizer: str = "rmsprop",
        learning_rate: float = 0.002,
        momentum: float = 0.01,
        batch_size: int = 128,
        epochs: int | str = "auto",
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
        self.scale = scale
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.image_shape = image_shape
        self.conv_filters = conv_filters
        self.kernel_size = kernel_size
        self.variational = variational
        self.beta = beta
        self.noise = noise
        self.noise_factor = noise_factor
        self.augment = augment
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
        with self._as_before_if_refused():
            X = self._train_input(X)
            self._fit(X, None, None, resume_from)
        return self

    def score(self, X: Any, y: Any = None) -> float:
        """Minus the mean squared reconstruction error in ``X``'s own units (higher is better).

        For model selection (``GridSearchCV``'s default scoring): every candidate is measured the
        same way, whatever its ``loss``, ``scale`` or ``beta``. (The training loss as the model
        reads ``X``, after ``scale``, differs in size between those: ``reconstruction_error``.)
        uint8 images are compared in [0, 1]; a VAE's KL term is left out (a search over ``beta``
        then favours a small one).
        """
        from aekit.metrics import neg_reconstruction_mse

        return neg_reconstruction_mse(self, X)

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

    Loss = ``reconstruction_weight``·reconstruction loss (``loss_``: BCE for data in [0, 1])
    + ``classification_weight``·CE(class).
    A classifier and a transformer at once: ``predict``/``predict_proba``/``score``
    (accuracy) and ``transform``/``inverse_transform``. Labels may be any values;
    ``y == -1`` (or the text ``"-1"`` among text labels) marks an unlabelled sample, which trains
    only the reconstruction (and ``score`` leaves out).

    Parameters
    ----------
    head_layer_sizes : tuple of int or int, default=(64, 128)
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
        output_activation: str = "auto",
        loss: str = "auto",
        scale: str | None = None,
        batchnorm: bool = False,
        dropout: float = 0.0,
        image_shape: Sequence[int] | None = None,
        conv_filters: Sequence[int] = (32, 16),
        kernel_size: int = 3,
        variational: bool = False,
        beta: float = 1.0,
        noise: str | None = None,
        noise_factor: float = 0.4,
        augment: str | None = None,
        head_layer_sizes: Sequence[int] = (64, 128),
        head_activation: str = "tanh",
        head_dropout: float = 0.0,
        reconstruction_weight: float = 1.0,
        classification_weight: float = 0.1,
        optimizer: str = "rmsprop",
        learning_rate: float = 0.002,
        momentum: float = 0.01,
        batch_size: int = 128,
        epochs: int | str = "auto",
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
        self.scale = scale
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.image_shape = image_shape
        self.conv_filters = conv_filters
        self.kernel_size = kernel_size
        self.variational = variational
        self.beta = beta
        self.noise = noise
        self.noise_factor = noise_factor
        self.augment = augment
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
            "head_layer_sizes": sizes(self.head_layer_sizes),
            "head_activation": self.head_activation,
            "head_dropout": self.head_dropout,
        }

    def _loss_weights(self) -> tuple[float, float]:
        return float(self.reconstruction_weight), float(self.classification_weight)

    def _validate_params(self) -> None:
        super()._validate_params()
        if self._loss_weights() == (0.0, 0.0):  # a loss of 0: nothing would train, silently
            raise InputError(
                "{reconstruction_weight} and {classification_weight} are both 0: nothing would train; give "
                "either a positive weight (reconstruction_weight=0 trains a classifier alone)",
                param="reconstruction_weight",
                values={"reconstruction_weight": 0.0, "classification_weight": 0.0},
            )

    def _encode_labels(self, y: Any, n: int) -> np.ndarray:
        """Map labels to indices 0..n_classes-1; unlabelled (-1) stays -1. Sets ``classes_``."""
        if y is None:
            raise InputError(
                "SupervisedAutoencoder requires y to be passed, but the target y is None; "
                "use Autoencoder for unlabelled data, or y=-1 per unlabelled sample"
            )
        y = _labels_1d(y, n)
        no_label = unlabelled(y)
        if no_label.any() and y.dtype.kind in "if" and bool(np.any(y[~no_label] < 0)):
            warnings.warn(
                f"y holds negative labels besides -1; -1 marks unlabelled samples ({int(no_label.sum())} of them "
                "here), so class -1 is not learned. Encode the classes as 0..k-1 (e.g. LabelEncoder) if -1 is a class",
                UserWarning,
                stacklevel=outside_stacklevel(),
            )
        labelled = y[~no_label]
        if labelled.size == 0:
            instead = (
                "fit(X) without y"
                if isinstance(self, ParametricTSNE)
                else "train an Autoencoder instead (CLI: drop --supervised)"
            )
            raise InputError(f"y has no labelled samples (all -1); {instead}, or label some samples")
        from sklearn.utils.multiclass import type_of_target

        kinds = {type(v).__name__ for v in labelled} if labelled.dtype == object else set()
        if kinds and "str" not in kinds:  # numbers held as objects (a Series that also held the text '-1')
            labelled = np.asarray(labelled.tolist())
        kind = type_of_target(labelled)
        if kind not in ("binary", "multiclass") and "str" in kinds and len(kinds) > 1:
            raise InputError(
                f"y mixes text and other values ({', '.join(sorted(kinds))}); give the labels one type: numbers "
                "with -1 for unlabelled samples, or text with '-1'"
            )
        if kind not in ("binary", "multiclass"):
            raise InputError(
                f"Unknown label type: y must hold class labels (binary or multiclass), found {kind!r} targets"
            )
        self.classes_ = np.unique(labelled)
        if len(self.classes_) < 2:
            note = (
                f" ({int(no_label.sum())} samples labelled -1 count as unlabelled; if -1 is a class, encode the "
                "classes as 0..k-1, e.g. with LabelEncoder)"
                if no_label.any()
                else ""
            )
            only = self.classes_[0].item() if isinstance(self.classes_[0], np.generic) else self.classes_[0]
            raise InputError(f"y holds only one class ({only!r}){note}; a classifier needs at least 2 classes")
        largest = int(np.unique(labelled, return_counts=True)[1].max())
        # as many as a class: -1 may be a class here ({-1, 0, 1} sentiment); not among classes named by words
        words = labelled.dtype.kind in "UO" and not any(_is_number(c) for c in self.classes_)
        if 0 < int(no_label.sum()) <= largest and not words:
            warn_once(
                ("unlabelled", type(self).__name__),  # once per process: not again in every fold of a CV
                f"y: {int(no_label.sum())} samples have y == -1, no more than the largest class; -1 marks a sample "
                "as unlabelled: they are left out of the head's training and of score, not learnt as a class. If "
                "-1 is a class, encode the classes as 0..k-1 (e.g. with LabelEncoder)",
                stacklevel=outside_stacklevel(),
            )
        marker = next((c for c in self.classes_ if str(c).strip().lower() in MISSING_MARKERS), None)
        if marker is not None:  # a trial's "unknown" rows became a class that every test row was predicted as
            warn_once(
                ("marker", type(self).__name__, str(marker)),
                f"y: {int(np.sum(labelled == marker))} samples are labelled {str(marker)!r}, learnt as a class; if "
                "that marks unlabelled samples, write -1 (or the text '-1') for them",
                stacklevel=outside_stacklevel(),
            )
        if 2 * len(self.classes_) > labelled.size:  # fewer than two samples per class: a measurement, not classes?
            warn_once(
                ("classes", len(self.classes_), labelled.size),
                f"y holds {len(self.classes_)} classes among {labelled.size} labelled samples, fewer than two per "
                "class: if y is a continuous target (a regression), the classifier head cannot learn it; fit "
                "without y, or bin y into a few classes",
                stacklevel=outside_stacklevel(),
            )
        idx = np.full(n, UNLABELLED, dtype=np.int64)
        idx[~no_label] = np.searchsorted(self.classes_, labelled)
        return idx

    def fit(self, X: Any, y: Any, *, resume_from: str | os.PathLike[str] | None = None) -> SupervisedAutoencoder:
        """Train on ``X`` ``(n_samples, n_features)`` and labels ``y`` ``(n_samples,)``."""
        with self._as_before_if_refused():
            X = self._train_input(X)
            y_idx = self._encode_labels(y, X.shape[0] if isinstance(X, np.ndarray) else X.n_samples)
            if isinstance(X, np.ndarray):
                warn_if_unlabelled_apart(X, y_idx, type(self).__name__)
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

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy of ``predict`` on the labelled samples; those with ``y == -1`` (unlabelled) are left out."""
        return labelled_accuracy(self, X, y, sample_weight)

    def __sklearn_tags__(self) -> Any:  # sklearn.utils.Tags
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags


#: rows in the neighbour check of ``warn_if_unlabelled_apart``: enough for a clear reading, a fraction of a second
APART_SAMPLE = 2000
#: wider rows are randomly projected to this many dimensions first (Johnson-Lindenstrauss: distances kept)
APART_DIMS = 256


def warn_if_unlabelled_apart(X: np.ndarray, y_idx: np.ndarray, who: str, k: int = 5) -> None:
    """Warn when the rows marked -1 sit apart from the labelled ones, as a class of their own would.

    Semi-supervised data leaves rows unlabelled at random: the share of unlabelled rows among the nearest
    neighbours is then the same for an unlabelled row as for a labelled one. A class of its own has unlabelled
    neighbours and labelled rows labelled ones. A trial's sentiment labels -1/0/1 had -1 as the largest class,
    beyond the reach of the count rule of ``_encode_labels``: the class was dropped and ``score`` read 0.90 for
    an accuracy of 0.47. (Against the overall share instead of the labelled rows', the hubs of wide noisy data,
    rows that are many rows' neighbour, made random labels look apart: a second trial.) Measured on at most
    ``APART_SAMPLE`` rows, standardised per feature.
    """
    no_label = y_idx < 0
    n_missing = int(no_label.sum())
    if n_missing == len(y_idx) or n_missing <= int(np.bincount(y_idx[~no_label]).max(initial=0)):
        return  # none, or no more than a class: ``_encode_labels`` has said so
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)
    rows = np.sort(rng.permutation(len(y_idx))[:APART_SAMPLE])
    sample = np.asarray(X[rows], dtype=np.float64).reshape(len(rows), -1)  # float64: values near float32's max
    missing = no_label[rows]
    if missing.sum() < k or (~missing).sum() < k:
        return
    spread = sample.std(axis=0)
    sample = (sample - sample.mean(axis=0)) / np.where(spread > 0, spread, 1)
    if sample.shape[1] > APART_DIMS:  # wide rows (20,000 genes: seconds): a random projection keeps the distances
        sample = sample @ rng.standard_normal((sample.shape[1], APART_DIMS)) / np.sqrt(APART_DIMS)
    if not np.all(np.isfinite(sample)):
        return  # beyond float64 after standardising: fit's own checks name such values
    nearest = NearestNeighbors(n_neighbors=k + 1).fit(sample).kneighbors(sample, return_distance=False)[:, 1:]
    unlabelled_near = missing[nearest]  # (rows, k): which neighbours have y == -1
    of_missing, of_labelled = float(unlabelled_near[missing].mean()), float(unlabelled_near[~missing].mean())
    if of_missing - of_labelled > 0.5:  # random: about 0; a class of its own: near 1
        warn_once(
            ("apart", who),
            f"y: the {n_missing:,} samples with y == -1 sit apart from the labelled ones: {of_missing:.0%} of their "
            f"{k} nearest neighbours have y == -1 too, against {of_labelled:.0%} of the labelled samples' neighbours. "
            "-1 marks a sample as unlabelled (left out of the head's training and of score); if -1 is a class, "
            "encode the classes as 0..k-1 (e.g. with LabelEncoder); if they are unlabelled, the labelled samples do "
            "not show their kind",
            stacklevel=outside_stacklevel(),
        )


class _available:  # noqa: N801  # a decorator, named as one
    """scikit-learn's ``available_if(check)`` with the check's own message on top: a map fitted without labels
    has no ``predict``, one fitted without a decoder no ``inverse_transform`` (``hasattr`` is False), and says how
    to get one (``available_if`` says only "has no attribute", the reason in the exception's cause)."""

    def __init__(self, check: str, fn: Callable[..., Any]) -> None:
        self.check, self.fn = check, fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self.fn  # the class's attribute: the function (docs, introspection)
        getattr(obj, self.check)()  # AttributeError, with the fix, when the part is missing
        return types.MethodType(self.fn, obj)


_with_head = functools.partial(_available, "_has_head")
_with_decoder = functools.partial(_available, "_has_decoder")


class ParametricTSNE(_AutoencoderBase):
    """Parametric t-SNE: the encoder itself is trained with t-SNE's loss, so a new point's map position is one pass.

    A scikit-learn transformer built from the same network, objectives and training loop as
    ``Autoencoder``: ``transform`` is the encoder. Input affinities are t-SNE's
    (perplexity-calibrated, over each point's ``3 * perplexity`` nearest neighbours, found by
    openTSNE: exact for small inputs, Annoy above); the loss is a batch estimate of t-SNE's
    KL divergence with a Student-t kernel of ``dof`` degrees of freedom
    (``objectives.tsne_loss``), with early exaggeration. ``reconstruction_weight`` > 0 adds the
    decoder (an autoencoder-regularised map with ``inverse_transform``); labels ``y`` (-1 for
    unlabelled samples) add the classifier head of ``SupervisedAutoencoder``, with ``predict``,
    ``predict_proba`` and ``score`` (accuracy on the labelled samples).

    An epoch draws every training point once, with one of its neighbours (drawn by its
    affinity), so a batch of ``batch_size`` points runs ``2 * batch_size`` rows through the
    network.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int or int, default=(500, 500, 2000)
        Encoder widths (and the decoder's, mirrored, with ``reconstruction_weight`` > 0).
    perplexity : float, default=30.0
        About how many neighbours each point keeps; needs more than ``3 * perplexity`` samples.
    dof : float, default=1.0
        Degrees of freedom of the Student-t kernel in the map: 1 is t-SNE's; lower values give
        heavier tails (tighter, better separated clusters).
    early_exaggeration : float, default=4.0
        The attraction is multiplied by this for the first ``early_exaggeration_epochs``.
    early_exaggeration_epochs : int, default=1
    exaggeration : float, default=1.0
        The attraction's multiplier after the early epochs (> 1: more compact clusters).
    target_weight : float, default=1.0
        With labels: the fraction of the affinity between two labelled neighbours of different
        classes that is removed (named after UMAP's parameter of that role); 1 lets no such pair
        attract, so the map separates the classes; 0 leaves the affinities to the inputs.
    activation : str or None, default="relu"
    code_activation : str, default="linear"
        The map's coordinates are unbounded.
    reconstruction_weight : float, default=0.0
        Weight of the reconstruction loss; > 0 builds the decoder (``inverse_transform``,
        ``reconstruct``); 0 builds the encoder alone.
    classification_weight : float, default=1.0
        Weight of the classification loss, used when ``fit`` gets labels.
    head_layer_sizes : tuple of int or int, default=(64, 128)
    head_activation : str, default="tanh"
    head_dropout : float, default=0.0
    optimizer : {"rmsprop", "adam", "adamw", "sgd"}, default="adam"
    learning_rate : float, default=0.001
    batch_size : int, default=256
        Points per step (and as many drawn neighbours); the repulsion is estimated from the
        batch's pairs, so larger batches estimate it better.
    epochs : int or "auto", default="auto"
        As in ``Autoencoder``, with 30 epochs (not 20) where the data give enough steps
        (MNIST's 60,000 images: 30); small data sets get more.
    (all other parameters as in ``Autoencoder``; there is no variational code)

    Attributes
    ----------
    net_ : AutoencoderNet
    history_ : dict of str to list of float
        Per-epoch ``loss``, ``attraction``, ``repulsion`` (+ ``reconstruction``,
        ``classification``), ``val_*``, ``lr``, ``time``.
    classes_ : ndarray of shape (n_classes,)
        Only when fitted with labels.
    n_features_in_, n_iter_, best_epoch_, stop_reason_ : as in ``Autoencoder``
    """

    variational = False  # the base reads these: a map's code is deterministic
    _code_reduces = False  # a 2-D map of 2-D data is still a map
    beta = 0.0
    # CUDA-graph capture of the drawn neighbours is not measured yet: eager (or compiled) steps
    _plan_overrides: Mapping[str, Any] = MappingProxyType({"cuda_graphs": False})

    def __init__(
        self,
        *,
        hidden_layer_sizes: Sequence[int] = (500, 500, 2000),
        n_components: int | None = 2,
        architecture: str = "dense",
        activation: str | None = "relu",
        code_activation: str = "linear",
        output_activation: str = "auto",
        loss: str = "auto",
        scale: str | None = None,
        batchnorm: bool = False,
        dropout: float = 0.0,
        image_shape: Sequence[int] | None = None,
        conv_filters: Sequence[int] = (32, 16),
        kernel_size: int = 3,
        noise: str | None = None,
        noise_factor: float = 0.4,
        augment: str | None = None,
        head_layer_sizes: Sequence[int] = (64, 128),
        head_activation: str = "tanh",
        head_dropout: float = 0.0,
        reconstruction_weight: float = 0.0,
        classification_weight: float = 1.0,
        perplexity: float = 30.0,
        dof: float = 1.0,
        early_exaggeration: float = 4.0,
        early_exaggeration_epochs: int = 1,
        exaggeration: float = 1.0,
        target_weight: float = 1.0,
        optimizer: str = "adam",
        learning_rate: float = 0.001,
        momentum: float = 0.01,
        batch_size: int = 256,
        epochs: int | str = "auto",
        lr_schedule: str | None = None,
        validation_fraction: float = 0.0,
        early_stopping: bool = False,
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
        device: str = "auto",
        compile: bool | str = "auto",
        precision: str = "float32",
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
        self.scale = scale
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.image_shape = image_shape
        self.conv_filters = conv_filters
        self.kernel_size = kernel_size
        self.noise = noise
        self.noise_factor = noise_factor
        self.augment = augment
        self.head_layer_sizes = head_layer_sizes
        self.head_activation = head_activation
        self.head_dropout = head_dropout
        self.reconstruction_weight = reconstruction_weight
        self.classification_weight = classification_weight
        self.perplexity = perplexity
        self.dof = dof
        self.early_exaggeration = early_exaggeration
        self.early_exaggeration_epochs = early_exaggeration_epochs
        self.exaggeration = exaggeration
        self.target_weight = target_weight
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
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.checkpoint_path = checkpoint_path

    _encode_labels = SupervisedAutoencoder._encode_labels  # the same labels, -1 unlabelled, classes_

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.n_components is None:  # a conv autoencoder's spatial code: a "map" of many dimensions
            raise InputError(
                "{n_components} keeps a conv autoencoder's spatial code; a map needs its size: "
                "{n_components=2} for a 2-D map",
                param="n_components",
                values={"n_components": None},
            )

    def _has_head(self) -> bool:  # predict and its kin exist for a map fitted with labels (_with_head)
        if not hasattr(self, "classes_") or getattr(getattr(self, "net_", None), "head", None) is None:
            raise AttributeError(
                f"{type(self).__name__} has no classifier head: it was fitted without labels; "
                "fit(X, y) (y = -1 for unlabelled samples) adds one, with predict, predict_proba and score"
            )
        return True

    def _has_decoder(self) -> bool:  # inverse_transform and its kin exist with a decoder (_with_decoder)
        net = getattr(self, "net_", None)
        try:  # an invalid weight is fit's to name (hasattr must answer, not raise)
            decoder = float(self.reconstruction_weight) > 0 if net is None else net.has_decoder
        except (TypeError, ValueError):
            decoder = False
        if not decoder:
            raise AttributeError(
                f"{type(self).__name__} has no decoder: it was fitted with reconstruction_weight=0; fit it with "
                "reconstruction_weight > 0 (e.g. 1.0) for inverse_transform, reconstruct and score_samples"
            )
        return True

    @_with_decoder
    def inverse_transform(self, X: Any, *, out: np.ndarray | None = None) -> np.ndarray:
        """Decode map positions ``(n_samples, n_components)`` to data space, for a map fitted with a decoder."""
        return super().inverse_transform(X, out=out)

    @_with_decoder
    def reconstruct(self, X: Any, *, out: np.ndarray | None = None) -> np.ndarray:
        """``inverse_transform(transform(X))`` in one pass, for a map fitted with a decoder."""
        return super().reconstruct(X, out=out)

    @_with_decoder
    def score_samples(self, X: Any) -> np.ndarray:
        """Minus each sample's reconstruction error, for a map fitted with a decoder."""
        return super().score_samples(X)

    @_with_decoder
    def reconstruction_error(self, X: Any) -> float:
        """The mean-per-element reconstruction loss of ``X``, for a map fitted with a decoder."""
        return super().reconstruction_error(X)

    @_with_head
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)`` from the head of a map fitted with labels."""
        return SupervisedAutoencoder.predict_proba(self, X)  # the same head

    @_with_head
    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels ``(n_samples,)``, values from ``classes_``, from the head of a map fitted with labels."""
        return SupervisedAutoencoder.predict(self, X)

    @_with_head
    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The head's accuracy on the labelled samples (``y == -1`` left out), for a map fitted with labels."""
        return labelled_accuracy(self, X, y, sample_weight)

    def fit(self, X: Any, y: Any = None, *, resume_from: str | os.PathLike[str] | None = None) -> ParametricTSNE:
        """Train the map on ``X`` ``(n_samples, n_features)``; labels ``y`` ``(n_samples,)`` add the head (-1: none).

        ``resume_from`` continues from a checkpoint written via ``checkpoint_path`` (the
        affinities are computed again, the same for the same ``X`` and ``random_state``).
        """
        with self._as_before_if_refused():
            X = self._in_memory(X, as_source(X))  # a source (a folder of images, HDF5) is read whole: the map needs it
            self._validate_params()
            self._check_conv_hidden()
            n_val = max(1, int(round(len(X) * self.validation_fraction))) if self.validation_fraction else 0
            check_tsne_inputs(X, float(self.perplexity), len(X) - n_val, float(self.validation_fraction))
            y_idx, n_classes = None, None
            if hasattr(self, "classes_"):
                del self.classes_  # a refit without labels has no classes
            if y is not None:
                y_idx = self._encode_labels(y, X.shape[0])
                warn_if_unlabelled_apart(X, y_idx, type(self).__name__)
                n_classes = len(self.classes_)
            try:
                self._fit(X, y_idx, n_classes, resume_from)
            finally:
                self.__dict__.pop("_graph", None)  # the inputs and affinities are for training only
        return self

    def _net_kwargs(self, n_features: int, n_classes: int | None) -> dict[str, Any]:
        return {**super()._net_kwargs(n_features, n_classes), "with_decoder": float(self.reconstruction_weight) > 0}

    def _head_kwargs(self) -> dict[str, Any]:
        return SupervisedAutoencoder._head_kwargs(self)  # the same head parameters

    def _needs_unit_range(self) -> bool:  # only a decoder's BCE or sigmoid output constrains X
        return float(self.reconstruction_weight) > 0 and super()._needs_unit_range()

    _reference_epochs = 30  # epochs="auto" on MNIST-sized data: the recipe measured in benchmarks/results/tsne.md

    def _train_config(self, epochs: int) -> TrainConfig:  # the repulsion needs two points in a batch
        return dataclasses.replace(super()._train_config(epochs), min_batch=2)

    def _split(
        self, X: np.ndarray, y_idx: np.ndarray | None, device: torch.device
    ) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...] | None]:
        """Row numbers of the training (and validation) points; the affinities go to ``self._graph``."""
        n = X.shape[0]
        n_val = max(1, int(round(n * self.validation_fraction))) if self.validation_fraction else 0
        order = torch.randperm(n, device=device).cpu().numpy() if n_val else np.arange(n)
        order = np.concatenate([order[n_val:], order[:n_val]])  # training rows first
        X = X[order]
        n_train = n - n_val
        knn_seed = int(torch.randint(0, 2**31 - 1, (1,)))  # from the fit's seed: the same search for the same seed
        neighbours, probs = conditional_affinities(X[:n_train], X[n_train:], float(self.perplexity), knn_seed)
        if y_idx is not None and float(self.target_weight) > 0:
            probs = label_affinities(neighbours, probs, y_idx[order], float(self.target_weight))
        self._graph = NeighbourGraph(
            X=torch.from_numpy(X).to(device),
            neighbours=torch.from_numpy(neighbours).to(device),
            cumulative=torch.from_numpy(cumulative(probs)).to(device),
            y=None if y_idx is None else torch.from_numpy(y_idx[order]).to(device),
            exaggeration=torch.tensor(float(self.exaggeration), device=device),
        )
        rows = torch.arange(n, device=device)
        return [rows[:n_train]], ((rows[n_train:],) if n_val else None)

    def _train_mean(self, data: Data) -> torch.Tensor:
        assert isinstance(data, list)  # always in memory: the training batches are row numbers
        return self._graph.X[data[0]].mean(dim=0)

    def _draws_in_training(self) -> bool:  # every step draws a neighbour of each point
        return True

    def _exaggeration_at(self, epoch: int) -> float:
        early = epoch < int(self.early_exaggeration_epochs)
        return float(self.early_exaggeration if early else self.exaggeration)

    def _resume(
        self,
        resume_from: str | os.PathLike[str] | None,
        net: AutoencoderNet,
        optimizer: torch.optim.Optimizer,
        seed: int,
        run_random_state: Any,
        n_train: int,
    ) -> tuple[LoopState, list[Callback]]:
        """The base's loop state and callbacks, plus the exaggeration schedule (set for the epoch to come)."""
        state, callbacks = super()._resume(resume_from, net, optimizer, seed, run_random_state, n_train)
        value = self._graph.exaggeration

        def schedule(epoch: int, logs: dict[str, float]) -> None:
            value.fill_(self._exaggeration_at(epoch + 1))

        value.fill_(self._exaggeration_at(state.epoch))
        return state, [schedule, *callbacks]

    def _loss_fn(
        self,
        net: AutoencoderNet,
        n_features: int,
        device: torch.device,
        forward: Callable[[torch.Tensor], dict[str, torch.Tensor]] | None = None,
    ) -> Callable[[tuple[torch.Tensor, ...], bool], dict[str, torch.Tensor]]:
        """t-SNE's loss on each batch of points and one drawn neighbour of each (+ reconstruction, classification)."""
        amp = autocast(device, self.precision) if forward is None else contextlib.nullcontext
        forward = net if forward is None else forward
        graph, mixed, dof = self._graph, self.precision != "float32", float(self.dof)
        loss_kind, out_act = self._resolved()
        noise, factor, clip = self.noise, float(self.noise_factor), out_act == "sigmoid"
        moves, shape, units = self.augment, self._augment_shape(n_features), self._augment_units(device)
        w_rec, w_cls = float(self.reconstruction_weight), float(self.classification_weight)

        def loss_fn(batch: tuple[torch.Tensor, ...], training: bool) -> dict[str, torch.Tensor]:
            rows = batch[0]  # (B,)
            both = torch.cat([rows, graph.draw(rows)])  # (2B,): the points, then one neighbour of each
            x = graph.X[both]  # (2B, n_features)
            if moves and shape and training:  # new images of the points and of their input-space neighbours
                x = augment(x, moves, shape, units)
            x_in = corrupt(x, noise, factor, clip=clip) if (noise and training) else x
            with amp():
                out = forward(x_in)
            if mixed:
                out = {k: v.float() for k, v in out.items()}
            z = out["code"]  # (2B, d)
            terms = tsne_loss(z[: len(rows)], z[len(rows) :], dof, graph.exaggeration if training else 1.0)
            total = terms["loss"]
            if "recon_logits" in out:
                terms["reconstruction"] = reconstruction_loss(out["recon_logits"], x, loss_kind, out_act)
                total = total + w_rec * terms["reconstruction"]
            if "class_logits" in out and graph.y is not None:
                total = total + w_cls * classification_terms(terms, out["class_logits"], graph.y[both], training)
            terms["loss"] = total
            return terms

        return loss_fn


#: labels that usually mean "no label" in a user's data: learnt as classes, and warned of
MISSING_MARKERS = frozenset({"unknown", "unlabelled", "unlabeled", "?", "missing", "-1.0"})


def _is_number(label: Any) -> bool:
    """Whether a text label reads as a number ("3", "-1.5"): such classes may well include a class -1."""
    try:
        float(str(label))
    except ValueError:
        return False
    return True


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
        raise InputError(
            "y contains NaN or inf; mark unlabelled samples with -1 instead (e.g. y.fillna(-1) in pandas, "
            "np.where(np.isfinite(y), y, -1) in NumPy)"
        )
    if y.dtype.kind == "c":
        raise InputError(f"y has complex dtype {y.dtype}; expected class labels")
    return y


def labelled_accuracy(est: Any, X: Any, y: Any, sample_weight: Any = None) -> float:
    """``est.predict``'s accuracy on the samples of ``X`` whose label ``y`` is not -1 (unlabelled).

    The estimators' ``score``, and a scorer for scikit-learn's model selection with partial labels:
    ``GridSearchCV(..., scoring=aekit.labelled_accuracy)``. ``scoring="accuracy"`` would count every
    unlabelled sample as a mistake.
    """
    from sklearn.metrics import accuracy_score
    from sklearn.utils.validation import check_consistent_length

    y = column_or_1d(np.asarray(y), warn=True)
    check_consistent_length(X, y, sample_weight)  # sklearn's own message for mismatched lengths
    keep = ~unlabelled(y)
    if not keep.any():
        raise InputError(f"y: all {len(y)} samples are unlabelled (-1); accuracy needs labelled samples")
    weight = None if sample_weight is None else np.asarray(sample_weight)[keep]
    return float(accuracy_score(y[keep], est.predict(X)[keep], sample_weight=weight))


ESTIMATORS: dict[str, type[_AutoencoderBase]] = {
    "Autoencoder": Autoencoder,
    "SupervisedAutoencoder": SupervisedAutoencoder,
    "ParametricTSNE": ParametricTSNE,
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
        n = est.n_iter_
        raise KeyboardInterrupt(f"training interrupted after {n} complete epoch{'' if n == 1 else 's'}")
    return est


def _check_labels(cls: type[_AutoencoderBase], classes: Any) -> None:
    """Refuse a file whose classes disagree with its estimator: a SupervisedAutoencoder always has classes and a
    head, an Autoencoder never (a ParametricTSNE has them when fitted with labels). Without this check an
    Autoencoder's file renamed SupervisedAutoencoder loads, and fails later for want of ``classes_``."""
    from aekit.schema import SchemaError, shown

    if issubclass(cls, ClassifierMixin) and classes is None:
        raise SchemaError("fitted.classes_", f"the classes of a {cls.__name__}", "missing")
    if cls is Autoencoder and classes is not None:
        raise SchemaError("fitted.classes_", "none in an Autoencoder (it has no labels)", shown(list(classes)))


def _resolved_choices(est: _AutoencoderBase, fitted: dict[str, Any]) -> tuple[str, str]:
    """A file's fitted ``loss_`` and ``output_activation_``; files from before "auto" hold them as parameters."""
    from aekit.modules import OUTPUT_ACTIVATIONS
    from aekit.objectives import RECONSTRUCTION_LOSSES
    from aekit.schema import SchemaError, shown

    loss = str(fitted.get("loss_", est.loss))
    out = str(fitted.get("output_activation_", est.output_activation))
    for name, value, choices in (
        ("loss_", loss, RECONSTRUCTION_LOSSES),
        ("output_activation_", out, OUTPUT_ACTIVATIONS),
    ):
        if value not in choices:
            raise SchemaError(f"fitted.{name}", f"one of {list(choices)}", shown(value))
    return loss, out


def load(path: str | os.PathLike[str], *, device: str = "cpu") -> Autoencoder | SupervisedAutoencoder | ParametricTSNE:
    """Load a model written by ``save``; runs no code from the file (safetensors + JSON).

    Names, shapes, finiteness and the format version are checked. Tensors are
    placed on ``device`` (CPU by default, whatever device trained the model); the
    ``device`` parameter stays as saved, so that a clone refits where the original did
    (the default "auto": a GPU where there is one).
    """
    p = Path(path)
    model = read_model(p)
    cls = ESTIMATORS.get(model.estimator)
    if cls is None:
        raise ModelFileError(f"{p}: unknown estimator {model.estimator!r}; expected one of {sorted(ESTIMATORS)}")
    classes = model.fitted.get("classes_")
    with corrupted_metadata(p, "model metadata", MODEL_DAMAGED):  # parameters that fit the schema, not the estimator
        _check_labels(cls, classes)
        # a loaded model never writes where its file says
        est = cls(**{**model.params, "checkpoint_path": None, "callbacks": None})
        est._validate_params()
        est.loss_, est.output_activation_ = _resolved_choices(est, model.fitted)  # the network's output needs them
        est.image_shape_ = model.fitted["image_shape_"]  # and a conv body its images' shape
        net_kwargs = est._net_kwargs(model.fitted["n_features_in_"], None if classes is None else len(classes))
        with torch.device("meta"):  # shapes only, nothing allocated: tampered metadata cannot exhaust memory
            expected = build_net(**net_kwargs).state_dict()
    check_tensors(p, model.tensors, expected, fix=MODEL_DAMAGED, corrupt=MODEL_DAMAGED)
    # the initial weights, overwritten at once, draw from torch's one generator: the caller's random state and a
    # fit in another thread are left alone (a review: a fit beside a loop of load() changed its numbers)
    with COMPUTE_LOCK, torch.random.fork_rng(devices=[]):
        net = build_net(**net_kwargs)
    net.load_state_dict(model.tensors)
    est.device_ = resolve_device(device)
    est.net_ = net.to(est.device_).eval()
    for name, value in model.fitted.items():
        setattr(est, name, value)
    est._params_at_fit = est._json_params()  # the file's: what a save of this model writes again
    return est
