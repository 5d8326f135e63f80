"""The machinery every aekit estimator shares: validation, the fit pipeline, inference, saving.

``fit`` reads top to bottom as validate -> plan -> build -> train: the parameters are checked
against the table in ``params``, ``accel.plan`` chooses the fast paths once, ``modules.build_net``
builds the network and ``training.train`` runs the loop. The public estimators
(``Autoencoder``, ``SupervisedAutoencoder``) live in ``estimators``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from aekit._utils import (
    FLOAT32_MAX,
    DataFormatError,
    InputError,
    LossFn,
    as_float32,
    first_beyond_float32,
    in_unit_range,
    is_uint8,
    isolated_rng,
    jsonable,
    resolve_device,
    seed_from,
    to_numpy,
    warn_once,
)
from aekit.accel import (
    Plan,
    autocast,
    build_step,
    heap_reuse,
    maybe_compile,
    plan,
    settle,
    working_forward,
)
from aekit.batches import RowBlocks, StreamBatches
from aekit.files import fitted_section, save_model
from aekit.modules import AutoencoderNet, build_net
from aekit.objectives import (
    classification_loss,
    corrupt,
    kl_divergence,
    reconstruction_loss,
)
from aekit.optim import make_optimizer
from aekit.params import PARAMS, validate
from aekit.params import PRESETS as PRESETS  # re-exported: the recipes are data about parameters
from aekit.resources import available_bytes, check_memory
from aekit.sources import ArraySource, Source, as_source
from aekit.training import Callback, Data, LoopState, TrainConfig, epoch_printer, optimizer_step, train

log = logging.getLogger(__name__)

UNLABELLED = -1
#: data_loading="auto" streams data on disk whose float32 copy would exceed this fraction of the available
#: memory (the memory path holds about three such copies at its peak: the conversion, the split, a shuffle)
STREAM_FRACTION = 0.25


def _read_all(source: Source) -> np.ndarray:
    """Every row of ``source`` in memory, as stored: ``(n_samples, n_features)``."""
    return source.read(0, source.n_samples)


def _too_big(source: Source) -> bool:
    """data_loading="auto": whether the float32 copy of ``source`` would take too much of the free memory."""
    free = available_bytes(torch.device("cpu"))
    return free is not None and 4 * source.n_samples * source.n_features > STREAM_FRACTION * free


def _codes_converter(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Codes read from disk for ``inverse_transform``: float32 (never scaled: codes are not pixels), finite."""

    def convert(raw: np.ndarray, rows: np.ndarray) -> np.ndarray:
        z = np.array(raw, dtype=np.float32)
        if not np.isfinite(z).all():
            bad = int(rows[np.flatnonzero(~np.isfinite(z).all(axis=1))[0]])
            raise InputError(f"{name}: inverse_transform expects finite numeric codes; row {bad} is not")
        return z

    return convert


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While training, SIGTERM behaves like Ctrl-C: stop and keep the model."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _AutoencoderBase(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared machinery; use ``Autoencoder`` or ``SupervisedAutoencoder``."""

    # ------------------------------------------------------------------ validation

    def _validate_params(self) -> None:
        validate(self.get_params(deep=False))  # the table in params.py: types, ranges, choices, rules between them
        if self.early_stopping and not self.validation_fraction:
            log.info("early_stopping without validation_fraction monitors the training loss")

    def _X(self, X: Any, *, reset: bool) -> np.ndarray:
        """Validate X and return float32 (uint8 images are divided by 255)."""
        uint8 = is_uint8(X)
        if getattr(X, "ndim", 2) > 2:  # images (n, H, W) or (n, C, H, W): one row per image
            X = np.asarray(X).reshape(X.shape[0], -1)
        try:
            X = validate_data(self, X, reset=reset, dtype=[np.float32, np.float64], ensure_min_samples=1)
        except ValueError as exc:  # sklearn's plain ValueError (NaN, inf, no samples, feature count): a user error
            if isinstance(exc, InputError):
                raise
            hint = ""
            if not reset and "features, but" in str(exc):
                hint = (
                    " Pass data with the features the model was fitted on"
                    " (for a CSV with a label column, name it: --label-column)"
                )
            raise InputError(f"{exc}{hint}") from exc
        beyond = first_beyond_float32(np.asarray(X))
        if beyond is not None:  # finite in float64, inf once cast: refuse here rather than train on inf
            raise InputError(
                f"X[{', '.join(map(str, beyond))}] = {float(np.asarray(X)[beyond]):.4g} is beyond float32's range "
                f"(|x| <= {FLOAT32_MAX:.4g}), the precision aekit trains in; scale or clip X (e.g. StandardScaler)"
            )
        X = np.asarray(X, dtype=np.float32)
        X = as_float32(X, uint8=uint8)
        if not X.flags.writeable or not X.flags.c_contiguous:
            X = np.array(X, dtype=np.float32, order="C")
        if not reset and X.size and self._needs_unit_range() and not in_unit_range(float(X.min()), float(X.max())):
            caller = sys._getframe(1).f_code.co_name  # transform, predict_proba, ...: once per call site per process
            warn_once(
                ("range", type(self).__name__, caller),
                f"X holds values outside [0, 1] (values in [{float(X.min()):.4g}, {float(X.max()):.4g}]) "
                "but this model was trained on data in [0, 1] (sigmoid output); "
                "scale X as it was scaled for fit (tabular data: the same fitted MinMaxScaler; images: "
                "divide 0-255 pixels by 255, or pass uint8). Shown once per process",
                stacklevel=3,
            )
        return X

    def _needs_unit_range(self) -> bool:
        return self.loss == "bce" or (self.noise is not None and self.output_activation == "sigmoid")

    def _check_range(self, X: np.ndarray) -> None:
        if self._needs_unit_range():
            lo, hi = float(X.min()), float(X.max())
            if not in_unit_range(lo, hi):
                raise InputError(  # the data is at fault (no param); the message names parameters as the fix
                    f"{{loss}} with a sigmoid output needs X in [0, 1], found values in [{lo:.4g}, {hi:.4g}]; "
                    "scale X (e.g. MinMaxScaler, or pass uint8 images) or use {loss='mse'}, "
                    "{output_activation='linear'}",
                    values={"loss": self.loss},
                )

    # ------------------------------------------------------------------ large data

    def _train_input(self, X: Any) -> np.ndarray | Source:
        """``X`` for ``fit``: a float32 array (memory path) or a source that streams (see ``data_loading``)."""
        PARAMS["data_loading"].check(self.data_loading)
        source = as_source(X)
        if self.data_loading == "memory" or (source is None and self.data_loading == "auto"):
            return self._X(X if source is None or isinstance(X, np.ndarray) else _read_all(source), reset=True)
        if source is None:  # data_loading="stream" on an array in memory
            source = ArraySource(np.asarray(X))
        if self.data_loading == "auto" and not _too_big(source):
            log.info("data_loading='auto': %s fits in memory, reading it whole", source.name)
            return self._X(X if isinstance(X, np.ndarray) else _read_all(source), reset=True)
        log.info("streaming %s (%d rows)", source.name, source.n_samples)
        self.n_features_in_ = source.n_features
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return source

    def _source(self, X: Any) -> Source | None:
        """``X`` as a source for chunked inference (data on disk, or a source), checked against the fit; else None."""
        source = as_source(X)
        if source is not None and source.n_features != self.n_features_in_:
            raise InputError(
                f"{source.name}: X has {source.n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input. Pass data with the features the model was fitted on"
            )
        return source

    def _converter(self, source: Source, *, training: bool) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``convert(raw rows, row ids) -> float32``: aekit's pixel rule and the checks of ``_X``, chunk by chunk.

        Runs in the prefetch thread; a bad value fails naming the file and the row.
        """
        uint8 = is_uint8(source.read(0, 1))
        unit = self._needs_unit_range()
        name, caller = source.name, type(self).__name__

        def convert(raw: np.ndarray, rows: np.ndarray) -> np.ndarray:
            x = as_float32(raw, uint8=uint8)
            if np.shares_memory(x, raw):  # a float32 source: a copy, so a queued batch holds no window alive
                x = x.copy()
            if x.dtype.kind == "f" and not uint8:
                finite = np.isfinite(x)
                if not finite.all():
                    i, j = np.argwhere(~finite)[0]
                    raise DataFormatError(
                        f"{name}: row {int(rows[i])}, column {int(j)} holds {raw[i, j]!r}, not a finite float32 "
                        f"(|x| <= {FLOAT32_MAX:.4g}); clean, impute or scale the data"
                    )
            if unit and x.size and not in_unit_range(float(x.min()), float(x.max())):
                lo, hi = float(x.min()), float(x.max())
                if training:
                    raise InputError(
                        f"{{loss}} with a sigmoid output needs X in [0, 1], but {name} holds values in "
                        f"[{lo:.4g}, {hi:.4g}] (rows {int(rows.min())} to {int(rows.max())}); scale the data "
                        "(or store uint8 images) or use {loss='mse'}, {output_activation='linear'}",
                        values={"loss": self.loss},
                    )
                warn_once(
                    ("range", caller, name),
                    f"{name} holds values outside [0, 1] ([{lo:.4g}, {hi:.4g}]) but this model was trained on "
                    "data in [0, 1] (sigmoid output); scale it as it was scaled for fit. Shown once per process",
                )
            return x

        return convert

    def _stream_split(
        self, source: Source, y_idx: np.ndarray | None, device: torch.device, seed: int
    ) -> tuple[StreamBatches, StreamBatches | None]:
        """Training batches streamed from ``source``, and validation ones (whole blocks held out)."""
        blocks = RowBlocks.all(source.n_samples, source.block_rows)
        val_blocks = None
        if self.validation_fraction:
            blocks, val_blocks = blocks.split(float(self.validation_fraction), seed)
        common: dict[str, Any] = {"labels": y_idx, "device": device, "seed": seed, **self._stream_options}
        train_batches = StreamBatches(
            source,
            self._converter(source, training=True),
            blocks=blocks,
            batch_size=int(self.batch_size),
            min_batch=2 if self.batchnorm else 1,
            **common,
        )
        if val_blocks is None:
            return train_batches, None
        val = StreamBatches(
            source, self._converter(source, training=True), blocks=val_blocks, batch_size=4096, shuffle=False, **common
        )
        return train_batches, val

    #: keyword arguments for ``batches.StreamBatches`` (``window``, ``depth``): set on an instance by tests and
    #: benchmarks; not a parameter
    _stream_options: Mapping[str, Any] = MappingProxyType({})

    # ------------------------------------------------------------------ building

    def _net_kwargs(self, n_features: int, n_classes: int | None) -> dict[str, Any]:
        return {
            "n_features": n_features,
            "architecture": self.architecture,
            "hidden_layer_sizes": tuple(self.hidden_layer_sizes),
            "n_components": self.n_components,
            "activation": self.activation,
            "code_activation": self.code_activation,
            "output_activation": self.output_activation,
            "batchnorm": self.batchnorm,
            "dropout": self.dropout,
            "image_shape": self.image_shape,
            "conv_filters": tuple(self.conv_filters),
            "kernel_size": self.kernel_size,
            "variational": self.variational,
            "n_classes": n_classes,
            **self._head_kwargs(),
        }

    def _head_kwargs(self) -> dict[str, Any]:
        return {}

    def _loss_fn(
        self,
        net: AutoencoderNet,
        n_features: int,
        device: torch.device,
        forward: Callable[[torch.Tensor], dict[str, torch.Tensor]] | None = None,
    ) -> Callable[[tuple[torch.Tensor, ...], bool], dict[str, torch.Tensor]]:
        """The training/validation loss; ``forward`` replaces ``net`` *and* autocast (it handles precision itself)."""
        loss_kind, out_act = self.loss, self.output_activation
        amp = autocast(device, self.precision) if forward is None else contextlib.nullcontext
        forward = net if forward is None else forward
        mixed = self.precision != "float32"
        noise, factor, beta = self.noise, float(self.noise_factor), float(self.beta)
        clip = out_act == "sigmoid"
        w_rec, w_cls = self._loss_weights()

        def loss_fn(batch: tuple[torch.Tensor, ...], training: bool) -> dict[str, torch.Tensor]:
            x = batch[0]  # (B, n_features)
            x_in = corrupt(x, noise, factor, clip=clip) if (noise and training) else x
            with amp():
                out = forward(x_in)
            if mixed:  # losses in float32
                out = {k: v.float() for k, v in out.items()}
            rec = reconstruction_loss(out["recon_logits"], x, loss_kind, out_act)
            terms = {"reconstruction": rec}
            total = w_rec * rec
            if "mu" in out:
                terms["kl"] = kl_divergence(out["mu"], out["logvar"], n_features)
                total = total + beta * terms["kl"]
            if "class_logits" in out:
                y = batch[1]
                terms["classification"] = classification_loss(out["class_logits"], y)
                total = total + w_cls * terms["classification"]
                if not training:
                    labelled = (y >= 0).float()
                    hits = (out["class_logits"].argmax(1) == y).float() * labelled
                    terms["accuracy"] = hits.sum() / labelled.sum().clamp(min=1.0)
            terms["loss"] = total
            return terms

        return loss_fn

    def _loss_weights(self) -> tuple[float, float]:
        return 1.0, 0.0

    # ------------------------------------------------------------------ fitting

    def _fit(
        self,
        X: np.ndarray | Source,
        y_idx: np.ndarray | None,
        n_classes: int | None,
        resume_from: str | os.PathLike[str] | None,
    ) -> None:
        """validate -> plan -> build -> train; the fitted attributes exist before training starts.

        ``X`` is a float32 array (memory path) or a source (stream path, see ``_train_input``).
        """
        self._validate_params()
        self._check_conv_dropout(resume_from)
        if isinstance(X, np.ndarray):
            self._check_range(X)  # streamed data are checked chunk by chunk as they are read
            n, n_features = X.shape
        else:
            n, n_features = X.n_samples, X.n_features
        device = resolve_device(self.device)
        seed, run_random_state = self._run_seed(resume_from)
        data_bytes = X.nbytes if isinstance(X, np.ndarray) else 0
        check_memory(
            self._net_kwargs(n_features, n_classes), int(self.batch_size), n, device, data_bytes
        )  # before allocating
        with isolated_rng(seed, device):
            net = build_net(**self._net_kwargs(n_features, n_classes)).to(device)
            tensors: Data
            val: Data | None
            if isinstance(X, np.ndarray):
                tensors, val = self._split(X, y_idx, device)
                n_train = tensors[0].shape[0]
            else:
                tensors, val = self._stream_split(X, y_idx, device, seed)
                n_train = tensors.n
            fast = self._plan(device, n_train)
            optimizer = make_optimizer(
                self.optimizer,
                net.parameters(),
                float(self.learning_rate),
                float(self.momentum),
                fused=fast.fused_optimizer,
                working_dtype=fast.working_dtype,
            )
            fast = settle(fast, optimizer)  # e.g. no fused Adam on this build: no CUDA graph
            state, callbacks = self._resume(resume_from, net, optimizer, seed, run_random_state)
            # fitted attributes exist before training: an error or Ctrl-C never loses the model
            self.net_ = net
            self.device_ = device
            self.seed_ = seed
            self.history_ = state.history
            self.n_iter_ = state.epoch
            self._train(fast, net, optimizer, (tensors, val), callbacks, state)
        net.eval()

    def _check_conv_dropout(self, resume_from: str | os.PathLike[str] | None) -> None:
        if self.dropout and self.architecture == "conv":
            msg = (
                f"dropout={self.dropout} applies to dense layers only; architecture='conv' has none. "
                "Pass dropout=0 (regularise a conv model with noise=..., batchnorm=True or early_stopping=True)"
            )
            if resume_from is None:
                raise InputError(msg)
            warnings.warn(
                msg + "; resuming a run that was started with it (it has no effect)", UserWarning, stacklevel=4
            )

    def _run_seed(self, resume_from: str | os.PathLike[str] | None) -> tuple[int, Any]:
        """This fit's integer seed, and (resuming without an int seed) the interrupted run's random_state, as stored."""
        seed = seed_from(self.random_state)
        run_random_state: Any = None
        if resume_from is not None and not isinstance(self.random_state, (int, np.integer)):
            from aekit.files import checkpoint_seed

            # random_state=None or a RandomState: continue with the interrupted run's own seed
            # (the same validation split)
            stored, run_random_state = checkpoint_seed(resume_from)
            if stored is not None:
                seed = stored
            elif self.validation_fraction:
                warnings.warn(
                    f"{resume_from} stores no seed (written by an older aekit with random_state=None): the resumed run "
                    "draws a new validation split. Pass the first run's random_state to keep it",
                    UserWarning,
                    stacklevel=4,
                )
        return seed, run_random_state

    def _split(
        self, X: np.ndarray, y_idx: np.ndarray | None, device: torch.device
    ) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...] | None]:
        """The training tensors ``[X (n, n_features), y (n,)?]`` on ``device``, and the validation ones.

        The validation ones are a seeded split of the training data.
        """
        n = X.shape[0]
        tensors: list[torch.Tensor] = [torch.from_numpy(X).to(device)]
        if y_idx is not None:
            tensors.append(torch.from_numpy(y_idx).to(device))
        if not self.validation_fraction:
            return tensors, None
        n_val = max(1, int(round(n * self.validation_fraction)))
        if n - n_val < 1:
            raise InputError(f"validation_fraction={self.validation_fraction} leaves no training samples out of {n}")
        perm = torch.randperm(n, device=device)
        return [t[perm[n_val:]] for t in tensors], tuple(t[perm[:n_val]] for t in tensors)

    #: keyword arguments for ``accel.plan`` that force a fast path off or on (``cuda_graphs=False``,
    #: ``working_copies=False``, ``fused=True``...): set on an instance by tests and benchmarks that compare a
    #: fast path with the plain one (``est._plan_overrides = {"cuda_graphs": False}``); not a parameter, so
    #: ``get_params``, ``clone`` and saved models ignore it.
    _plan_overrides: Mapping[str, Any] = MappingProxyType({})

    def _plan(self, device: torch.device, n_train: int) -> Plan:
        """The fast paths of this fit (see ``accel.plan``)."""
        return plan(
            device_type=device.type,
            optimizer=self.optimizer,
            compile=self.compile,
            precision=self.precision,
            architecture=self.architecture,
            batchnorm=self.batchnorm,
            variational=self.variational,
            steps=int(self.epochs) * math.ceil(n_train / int(self.batch_size)),
            **self._plan_overrides,
        )

    def _resume(
        self,
        resume_from: str | os.PathLike[str] | None,
        net: AutoencoderNet,
        optimizer: torch.optim.Optimizer,
        seed: int,
        run_random_state: Any,
    ) -> tuple[LoopState, list[Callback]]:
        """The loop state to start from (a checkpoint's, when resuming) and the callbacks.

        The callbacks include the checkpoint writer.
        """
        state = LoopState()
        run_params = self._json_params(seed)
        if (
            run_random_state is not None
        ):  # the checkpoint's own random_state (e.g. 0 from --random-state 0) is this run's
            run_params["random_state"] = run_random_state
        callbacks = list(self.callbacks or [])
        if int(self.verbose) >= 2:  # first: the line is printed even when a later callback stops training
            callbacks.insert(0, epoch_printer(int(self.epochs)))
        if resume_from is not None:
            from aekit.files import load_checkpoint

            state = load_checkpoint(resume_from, net, optimizer, expected_params=run_params)
        if self.checkpoint_path is not None:
            from aekit.files import checkpoint_callback

            # the loop updates this very state object in place
            callbacks.append(checkpoint_callback(self.checkpoint_path, net, optimizer, lambda: state, run_params, seed))
        return state, callbacks

    def _train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            early_stopping=bool(self.early_stopping),
            patience=int(self.patience),
            min_delta=float(self.min_delta),
            restore_best_weights=bool(self.restore_best_weights),
            lr_schedule=self.lr_schedule,
            progress=int(self.verbose) == 1,  # 2 and more: one line per epoch instead (see _resume)
            min_batch=2 if self.batchnorm else 1,  # BatchNorm cannot normalise a batch of one sample
        )

    def _build_loss(
        self, fast: Plan, net: AutoencoderNet, optimizer: torch.optim.Optimizer, n_features: int, device: torch.device
    ) -> LossFn:
        """The training loss as ``fast`` runs it: through bfloat16 working copies or autocast, maybe compiled."""
        forward = None
        if fast.working_copies:  # bfloat16 working copies of the float32 weights, kept by the optimizer
            autocast(device, self.precision)  # only for its warning on hardware without bfloat16
            forward = working_forward(net, optimizer)
        return maybe_compile(self._loss_fn(net, n_features, device, forward), fast.forward_compile, device)

    def _train(
        self,
        fast: Plan,
        net: AutoencoderNet,
        optimizer: torch.optim.Optimizer,
        data: tuple[Data, Data | None],
        callbacks: list[Callback],
        state: LoopState,
    ) -> None:
        """Run the loop on ``data`` (training, validation); the fitted attributes follow.

        SIGTERM stops it as Ctrl-C does.
        """
        tensors, val = data
        with _sigterm_as_interrupt():
            try:
                loss_fn = self._build_loss(fast, net, optimizer, int(self.n_features_in_), self.device_)
                step = build_step(fast, optimizer_step(loss_fn, optimizer), optimizer, int(self.batch_size))
                with heap_reuse():  # reuse freed activation memory instead of page-faulting it in every step
                    state = train(
                        net,
                        loss_fn,
                        optimizer,
                        tensors,
                        self._train_config(),
                        step=step,
                        val_data=val,
                        callbacks=callbacks,
                        state=state,
                    )
            finally:
                self.history_ = state.history
                self.n_iter_ = state.epoch
                self.best_epoch_ = state.best_epoch + 1  # 1-based, as the epochs of the verbose lines; 0: none yet
                self.stop_reason_ = state.stop_reason or "error"

    # ------------------------------------------------------------------ inference

    def _batch_size(self) -> int:
        # conv activations are ~30x larger per sample: small batches stay in cache (docs/performance.md)
        return 128 if self.architecture == "conv" else 4096

    def _forward_batches(
        self,
        X: np.ndarray,
        fn: Callable[[torch.Tensor], torch.Tensor],
        batch_size: int | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        batch_size = batch_size or self._batch_size()
        net = self.net_
        net.eval()
        outs = []
        with torch.inference_mode():
            for start in range(0, X.shape[0], batch_size):
                xb = torch.from_numpy(X[start : start + batch_size]).to(self.device_)
                outs.append(to_numpy(fn(xb)))
                if out is not None:
                    out[start : start + len(outs[-1])] = outs.pop()
            if out is not None:
                return out
            if not outs:  # no samples: the output's width from one dummy row
                outs.append(to_numpy(fn(torch.zeros((1, *X.shape[1:]), dtype=torch.float32, device=self.device_)))[:0])
        return np.concatenate(outs)

    def _forward_source(
        self,
        source: Source,
        fn: Callable[[torch.Tensor], torch.Tensor],
        out: np.ndarray | None = None,
        convert: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    ) -> np.ndarray:
        """``fn`` over every row of ``source``, read in order as contiguous slices by the prefetch thread.

        Results go into ``out`` (e.g. a memory-mapped ``.npy``) chunk by chunk; without ``out`` they are
        gathered in memory.
        """
        batches = StreamBatches(
            source,
            convert or self._converter(source, training=False),
            blocks=RowBlocks.all(source.n_samples, max(source.block_rows, self._batch_size())),
            batch_size=self._batch_size(),
            seed=0,
            device=self.device_,
            shuffle=False,
        )
        net = self.net_
        net.eval()
        start = 0
        with torch.inference_mode():
            for (xb,) in batches.epoch(0):
                z = to_numpy(fn(xb))
                if out is None:
                    out = np.empty((source.n_samples, z.shape[1]), dtype=np.float32)
                out[start : start + len(z)] = z
                start += len(z)
        assert out is not None  # a source has at least one row
        return out

    def _check_out(self, out: np.ndarray | None, n: int, width: int) -> None:
        if out is not None and (getattr(out, "shape", None) != (n, width) or out.dtype != np.float32):
            raise InputError(
                f"out must be a float32 array of shape ({n}, {width}), found "
                f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}; "
                "create it with np.lib.format.open_memmap(path, 'w+', np.float32, shape)"
            )

    def _apply(self, X: Any, fn: Callable[[torch.Tensor], torch.Tensor], width: int, out: np.ndarray | None) -> Any:
        """``fn`` over ``X``: chunk by chunk from disk for data on disk, else through ``_X`` in memory."""
        source = self._source(X)
        if source is not None:
            self._check_out(out, source.n_samples, width)
            return self._forward_source(source, fn, out)
        Xv = self._X(X, reset=False)
        self._check_out(out, Xv.shape[0], width)
        return self._forward_batches(Xv, fn, out=out)

    def transform(self, X: Any, *, out: np.ndarray | None = None) -> np.ndarray:
        """Encode ``X`` ``(n_samples, n_features)`` to codes ``(n_samples, n_components)``.

        For a variational model the code is the posterior mean (deterministic). ``X`` may live
        on disk (a memory-mapped ``.npy``, an h5py dataset, a zarr array, an
        ``aekit.sources.ImageFolder``): it is then read in chunks. ``out``, a float32 array
        ``(n_samples, n_components)`` (e.g. ``np.lib.format.open_memmap``), receives the codes
        chunk by chunk, so codes larger than memory are never held whole; it is returned.
        """
        check_is_fitted(self, "net_")
        return self._apply(X, lambda xb: self.net_.encode(xb)["code"], self._n_features_out, out)

    def inverse_transform(self, X: Any, *, out: np.ndarray | None = None) -> np.ndarray:
        """Decode codes ``(n_samples, n_components)`` back to data space ``(n_samples, n_features)``.

        Codes on disk are read in chunks; ``out`` as in ``transform``.
        """
        check_is_fitted(self, "net_")
        source = as_source(X)
        if source is not None:
            if source.n_features != self._n_features_out or source.dtype.kind not in "biuf":
                raise InputError(
                    f"inverse_transform expects codes of shape (n_samples, {self._n_features_out}), found "
                    f"{source.name} with {source.n_features} columns; pass the output of transform"
                )
            self._check_out(out, source.n_samples, int(self.n_features_in_))
            return self._forward_source(source, self.net_.decode, out, _codes_converter(source.name))
        Z = np.asarray(X)
        if Z.ndim != 2 or Z.shape[1] != self._n_features_out:
            raise InputError(
                f"inverse_transform expects codes of shape (n_samples, {self._n_features_out}), found {Z.shape}; "
                "pass the output of transform"
            )
        if Z.dtype.kind not in "biuf" or not np.all(np.isfinite(Z)):
            raise InputError("inverse_transform expects finite numeric codes")
        Z = np.ascontiguousarray(Z, dtype=np.float32)
        self._check_out(out, Z.shape[0], int(self.n_features_in_))
        return self._forward_batches(Z, self.net_.decode, out=out)

    def reconstruct(self, X: Any, *, out: np.ndarray | None = None) -> np.ndarray:
        """``inverse_transform(transform(X))`` in one pass, ``(n_samples, n_features)``; ``out`` as in ``transform``."""
        check_is_fitted(self, "net_")
        return self._apply(X, lambda xb: self.net_.decode(self.net_.encode(xb)["code"]), int(self.n_features_in_), out)

    def reconstruction_error(self, X: Any) -> float:
        """Mean-per-element reconstruction loss (the training ``loss``) of ``X``."""
        check_is_fitted(self, "net_")
        Xv = self._X(X, reset=False)
        total = 0.0
        net = self.net_
        net.eval()
        with torch.inference_mode():
            for start in range(0, Xv.shape[0], 4096):
                xb = torch.from_numpy(Xv[start : start + 4096]).to(self.device_)
                logits = net.decoder(net.encode(xb)["code"])
                total += float(reconstruction_loss(logits, xb, self.loss, self.output_activation)) * xb.shape[0]
        return total / Xv.shape[0]

    @property
    def _n_features_out(self) -> int:
        check_is_fitted(self, "net_")
        return int(self.net_.code_size)

    @property
    def encoder_(self) -> torch.nn.Module:
        """The fitted encoder as a plain ``nn.Module``.

        It maps ``(B, n_features)`` float32 in the scale ``transform`` reads → codes ``(B, n_components)``.

        Shares its weights with the model (the mean of a variational model, as ``transform``).
        """
        check_is_fitted(self, "net_")
        net = self.net_
        return net.encoder if net.mu is None else torch.nn.Sequential(net.encoder, net.mu).train(net.training)

    @property
    def decoder_(self) -> torch.nn.Module:
        """The fitted decoder as a plain ``nn.Module``.

        It maps codes ``(B, n_components)`` → ``(B, n_features)``, as ``inverse_transform``.
        """
        check_is_fitted(self, "net_")
        net = self.net_
        return (
            net.decoder
            if net.output_activation == "linear"
            else torch.nn.Sequential(net.decoder, torch.nn.Sigmoid()).train(net.training)
        )

    def __sklearn_tags__(self) -> Any:  # sklearn.utils.Tags
        tags = super().__sklearn_tags__()
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = self.random_state is None
        return tags

    # ------------------------------------------------------------------ persistence

    def _json_params(self, seed: int | None = None) -> dict[str, Any]:
        """get_params() as JSON values (numpy scalars and tuples become numbers and lists)."""
        params = self.get_params(deep=False)
        params.pop("callbacks", None)
        if isinstance(params.get("random_state"), np.random.RandomState):  # not JSON: the seed it gave this fit
            params["random_state"] = getattr(self, "seed_", None) if seed is None else seed
        return {k: jsonable(v) for k, v in params.items()}

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
        """Write the fitted model to one ``.safetensors`` file (weights + JSON metadata, see ``aekit.files``).

        The file is written under a temporary name and renamed, so a crash never
        leaves a half-written file and never harms the previous one.
        """
        check_is_fitted(self, "net_")
        params, fitted = self._json_params(), fitted_section(self)
        return save_model(path, self.net_, type(self).__name__, params, fitted, overwrite=overwrite)
