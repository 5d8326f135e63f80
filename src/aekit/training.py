"""The training loop. It knows nothing about any model, nor about the hardware.

``train`` takes a module (only for ``train()``/``eval()`` and its weights), a
``loss_fn(batch, training) -> {"loss": total, **named terms}``, an optimizer and a
source of batches (``aekit.batches``: tensors in memory, shuffled by one gather per
epoch, or rows streamed from disk), and runs mini-batch epochs: no host sync inside
an epoch (losses are summed on the device and read once per epoch), validation, early stopping with best-weight
restore, learning-rate schedules, callbacks, a progress bar, NaN/inf detection
that keeps the last good weights, and Ctrl-C that stops and keeps the model.

A training step is a plain ``step(batch) -> losses`` callable (``optimizer_step`` by
default); the estimators hand in a faster one where ``aekit.accel`` plans it.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from aekit._utils import Callback, InputError, LossFn, Step, TrainingDivergedError, raise_if_signalled
from aekit.batches import Batches, TensorBatches

log = logging.getLogger(__name__)

__all__ = [
    "SCHEDULES",
    "Callback",
    "LoopState",
    "Reduce",
    "LossFn",
    "Step",
    "TrainConfig",
    "auto_epochs",
    "small_data",
    "epoch_line",
    "epoch_printer",
    "evaluate",
    "optimizer_step",
    "train",
]

SCHEDULES = (None, "cosine", "plateau")

#: ``epochs="auto"``: the reference recipe's length in epochs, and the fewest optimizer steps a run gets
#: (data sets smaller than ``AUTO_MIN_STEPS / AUTO_EPOCHS`` batches get more epochs). MNIST's 60,000 rows
#: at batch 128 are 9,380 steps in 20 epochs: the reference length is kept there
AUTO_EPOCHS = 20
AUTO_MIN_STEPS = 1500
AUTO_MAX_EPOCHS = 200


def small_data(n_samples: int, batch_size: int) -> bool:
    """Whether the reference's ``AUTO_EPOCHS`` epochs are fewer than ``AUTO_MIN_STEPS`` optimizer steps here."""
    return AUTO_EPOCHS * math.ceil(n_samples / batch_size) < AUTO_MIN_STEPS


def auto_epochs(n_samples: int, batch_size: int, reference: int = AUTO_EPOCHS) -> int:
    """The epochs of ``epochs="auto"``: the ``reference`` length (the autoencoders' ``AUTO_EPOCHS``, a
    map's 30), or on small data enough for ``AUTO_MIN_STEPS`` steps.

    A run's progress is counted in optimizer steps, not passes: the reference's 20 epochs are
    9,380 steps on MNIST but 200 on a data set of 1,300 rows, too few to learn a code.
    ``AUTO_MAX_EPOCHS`` caps it for the tiniest sets (a few hundred rows), where more passes
    only fit the training rows more closely.
    """
    steps_per_epoch = max(1, math.ceil(n_samples / batch_size))
    if reference * steps_per_epoch >= AUTO_MIN_STEPS:
        return reference
    return max(reference, min(AUTO_MAX_EPOCHS, math.ceil(AUTO_MIN_STEPS / steps_per_epoch)))


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20  # passes over the training data
    batch_size: int = 128  # samples per optimizer step; the last batch may be smaller (as Keras)
    shuffle: bool = True  # reshuffle the training data every epoch
    early_stopping: bool = False  # stop once the monitored loss stops improving
    patience: int = 5  # epochs without improvement before early stopping
    min_delta: float = 0.0  # smallest decrease that counts as an improvement
    restore_best_weights: bool = True  # with early stopping: end with the best epoch's weights
    lr_schedule: str | None = None  # None, "cosine" (per step, to 0) or "plateau" (halve after 2 flat epochs)
    # plateau with early stopping: also stop once the lr falls below this fraction of its initial value (7 halvings)
    min_lr_fraction: float = 0.01
    progress: bool = False  # show a tqdm progress bar
    eval_batch_size: int = 4096  # samples per forward pass when validating
    min_batch: int = 1  # a last batch smaller than this joins the one before it (BatchNorm needs 2 samples)


@dataclass
class LoopState:
    """Everything needed to continue training exactly where it stopped."""

    epoch: int = 0  # completed epochs
    history: dict[str, list[float]] = field(default_factory=dict)
    best_score: float = math.inf
    best_epoch: int = -1
    wait: int = 0
    best_weights: dict[str, torch.Tensor] | None = None
    plateau_wait: int = 0
    plateau_best: float = math.inf
    stop_reason: str = ""


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _progress_bar(enabled: bool, total: int, initial: int) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    # a terminal of no size (a pseudo-terminal nobody sized: zero columns and rows) made the text bar
    # an empty line; notebooks (a widget whose ncols would be pixels) and pipes keep tqdm's own rules
    text_bar = not any(c.__module__.startswith("tqdm.notebook") for c in tqdm.__mro__)
    unsized = text_bar and _terminal_columns() == 0
    width: dict[str, Any] = {"ncols": 80, "nrows": 24} if unsized else {"dynamic_ncols": True}
    return tqdm(total=total, initial=initial, unit="step", leave=True, **width)


def _terminal_columns() -> int | None:
    """The width of the terminal on stderr, or None where stderr is no terminal."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):  # no terminal or no file descriptor (captured streams, None)
        return None


Data = Sequence[torch.Tensor] | Batches  # tensors (batched here) or a source of batches
#: ``reduce(values) -> values summed over the processes`` of a data-parallel run (``distributed.all_sum``)
Reduce = Callable[[Mapping[str, torch.Tensor | float]], dict[str, torch.Tensor]]


def as_batches(data: Data, batch_size: int, *, min_batch: int = 1, shuffle: bool = True) -> Batches:
    """``data`` as a source of batches: tensors become ``TensorBatches``; a source of batches stays itself."""
    if isinstance(data, Sequence):
        return TensorBatches(data, batch_size, min_batch=min_batch, shuffle=shuffle)
    return data


@torch.no_grad()
def evaluate(
    module: nn.Module, loss_fn: LossFn, data: Data, batch_size: int, reduce: Reduce | None = None
) -> dict[str, float]:
    """Sample-weighted mean of every named loss over ``data`` (tensors or unshuffled batches), in eval mode.

    With ``reduce`` (data-parallel), ``data`` is this rank's part and the means are over every rank's.
    """
    was_training = module.training
    module.eval()
    batches = as_batches(data, batch_size, shuffle=False)
    n = batches.n
    sums: dict[str, torch.Tensor] = {}
    for batch in batches.epoch(0):
        for k, v in loss_fn(batch, False).items():
            sums[k] = sums.get(k, 0) + v.detach() * batch[0].shape[0]
    module.train(was_training)
    if reduce is not None:
        total = reduce({**sums, _N: float(n)})
        return {k: float(total[k]) / float(total[_N]) for k in sums}
    return {k: float(v) / n for k, v in sums.items()}


_N = "\0n"  # the sample count among reduced loss sums (no loss term has this name)


def optimizer_step(loss_fn: LossFn, optimizer: torch.optim.Optimizer) -> Step:
    """The plain training step: forward, backward, optimizer update; returns the loss terms."""

    def step(batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        losses = loss_fn(batch, True)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()
        return losses

    return step


@dataclass
class _Run:
    """One call of ``train``: its inputs and what follows from them."""

    module: nn.Module
    loss_fn: LossFn
    optimizer: torch.optim.Optimizer
    step: Step
    data: Batches
    config: TrainConfig
    val_data: Data | None
    callbacks: list[Callback]
    steps: int  # batches per epoch
    base_lrs: list[float]  # each param group's initial lr (the schedules' reference)
    bar: Any = None  # tqdm progress bar, or None
    reduce: Reduce | None = None  # data-parallel: sums over the ranks, so that every rank decides alike

    @property
    def n(self) -> int:
        return self.data.n

    @property
    def total_steps(self) -> int:
        return self.steps * self.config.epochs

    @property
    def monitor(self) -> str:
        return "val_loss" if self.val_data is not None else "loss"


def _cosine_lr(run: _Run, global_step: int) -> None:
    frac = global_step / max(run.total_steps, 1)
    for g, lr in zip(run.optimizer.param_groups, run.base_lrs, strict=True):
        g["lr"] = 0.5 * lr * (1 + math.cos(math.pi * frac))


def _run_epoch(run: _Run, epoch: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Every step of one epoch: per-term loss sums (sample-weighted) and each step's loss, on the device."""
    steps, device = run.steps, run.data.device
    run.module.train()
    if run.bar is not None:
        run.bar.set_description(f"epoch {epoch + 1}/{run.config.epochs}")
    sums: dict[str, torch.Tensor] = {}
    step_loss = torch.empty(steps, device=device)
    for i, batch in enumerate(run.data.epoch(epoch)):  # (B, n_features), (B,)?
        if run.config.lr_schedule == "cosine":
            _cosine_lr(run, epoch * steps + i)
        losses = run.step(batch)
        raise_if_signalled()  # Ctrl-C / SIGTERM whose interrupt library code swallowed
        step_loss[i] = losses["loss"].detach()
        m = batch[0].shape[0]
        for k, v in losses.items():
            sums[k] = sums.get(k, 0) + v.detach() * m
        if run.bar is not None:
            run.bar.update(1)
    return sums, step_loss


def _check_finite(
    run: _Run, state: LoopState, epoch: int, step_loss: torch.Tensor, good: dict[str, torch.Tensor]
) -> None:
    """Raise ``TrainingDivergedError`` (back to the weights of ``good``) if a step's loss was NaN/inf."""
    if run.reduce is not None:  # NaN/inf on any rank: every rank stops at the same step
        step_loss = run.reduce({"loss": step_loss})["loss"]
    finite = torch.isfinite(step_loss)
    if bool(finite.all()):  # one sync per epoch
        return
    bad = int((~finite).nonzero()[0])
    run.module.load_state_dict(good)
    state.stop_reason = "diverged"
    raise TrainingDivergedError(
        f"training loss became {float(step_loss[bad])} at epoch {epoch + 1}, step {bad + 1} "
        f"(global step {epoch * run.steps + bad + 1}); kept the weights from the end of epoch {epoch}. "
        "Fix: lower learning_rate, check the input scaling, or use batchnorm=True"
    )


def _epoch_logs(run: _Run, state: LoopState, sums: dict[str, torch.Tensor], t0: float) -> dict[str, float]:
    """The epoch's logs (losses, validation, lr, time), appended to the history; the epoch counts as done."""
    if run.reduce is not None:
        total = run.reduce({**sums, _N: float(run.n)})
        logs = {k: float(total[k]) / float(total[_N]) for k in sums}
    else:
        logs = {k: float(v) / run.n for k, v in sums.items()}
    if run.val_data is not None:
        val = evaluate(run.module, run.loss_fn, run.val_data, run.config.eval_batch_size, run.reduce)
        logs.update({f"val_{k}": v for k, v in val.items()})
    logs["lr"] = run.optimizer.param_groups[0]["lr"]
    logs["time"] = time.perf_counter() - t0
    for k, v in logs.items():
        state.history.setdefault(k, []).append(v)
    state.epoch += 1
    return logs


def epoch_line(epoch: int, epochs: int, logs: Mapping[str, float]) -> str:
    """One epoch's logs as one line: ``epoch 3/20 loss=0.2113 ... val_loss=0.2150 lr=0.002 time=1.24s``.

    ``epoch`` counts from 1, as the user does.
    """
    parts = [f"{k}={v:.4g}" for k, v in logs.items() if k not in ("lr", "time")]
    if "lr" in logs:
        parts.append(f"lr={logs['lr']:.3g}")
    if "time" in logs:
        parts.append(f"time={logs['time']:.2f}s")
    return f"epoch {epoch}/{epochs} " + " ".join(parts)


def epoch_printer(epochs: int) -> Callback:
    """A callback printing ``epoch_line`` to stderr after every epoch (``verbose=2``): no logging set-up needed."""

    def callback(epoch: int, logs: dict[str, float]) -> None:
        print(epoch_line(epoch + 1, epochs, logs), file=sys.stderr, flush=True)

    return callback


def _report(run: _Run, state: LoopState, logs: dict[str, float]) -> None:
    if run.bar is not None:
        run.bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if "loss" in k})
    log.info("%s", epoch_line(state.epoch, run.config.epochs, logs))


def _track_best(run: _Run, state: LoopState, epoch: int, score: float) -> None:
    """Best score and epoch, epochs without improvement, and the best weights (for early stopping)."""
    config = run.config
    if score < state.best_score - config.min_delta:
        state.best_score, state.best_epoch, state.wait = score, epoch, 0
        if config.early_stopping and config.restore_best_weights:
            state.best_weights = _snapshot(run.module)
    else:
        state.wait += 1


def _plateau(run: _Run, state: LoopState, score: float) -> bool:
    """lr_schedule="plateau": halve the learning rate after 2 epochs without improvement; True once below the floor.

    The halvings leave early stopping's count (``state.wait``) alone. A monitored loss that keeps
    improving by tiny amounts resets that count epoch after epoch (a training loss can do so for
    hundreds of epochs); with early stopping the floor (``min_lr_fraction`` of the initial lr)
    ends such a run, and ``min_delta`` says what counts as an improvement.
    """
    if score < state.plateau_best - run.config.min_delta:
        state.plateau_best, state.plateau_wait = score, 0
        return False
    state.plateau_wait += 1
    if state.plateau_wait >= 2:
        _set_lr(run.optimizer, run.optimizer.param_groups[0]["lr"] * 0.5)
        state.plateau_wait = 0
    return run.optimizer.param_groups[0]["lr"] < run.base_lrs[0] * run.config.min_lr_fraction


def _should_stop(run: _Run, state: LoopState, epoch: int, logs: dict[str, float]) -> bool:
    """End-of-epoch bookkeeping: best score, plateau schedule, callbacks; True (with the reason) to stop."""
    score = logs[run.monitor]
    _track_best(run, state, epoch, score)
    floor = run.config.lr_schedule == "plateau" and _plateau(run, state, score)
    stop = any(
        [bool(cb(epoch, logs)) for cb in run.callbacks]
    )  # every callback runs (e.g. the checkpoint) before one stops
    if run.reduce is not None:  # a callback that stops one rank stops them all
        stop = float(run.reduce({"stop": float(stop)})["stop"]) > 0
    if run.config.early_stopping and (state.wait >= run.config.patience or floor):
        state.stop_reason = "early_stopping" if state.wait >= run.config.patience else "lr_floor"
        return True
    if stop:
        state.stop_reason = "callback"
        return True
    return False


def _restore_best(run: _Run, state: LoopState) -> None:
    config = run.config
    if config.early_stopping and config.restore_best_weights and state.best_weights is not None:
        if state.best_epoch != state.epoch - 1:
            run.module.load_state_dict(state.best_weights)
            log.info(
                "restored the weights of epoch %d (best %s=%.5g)", state.best_epoch + 1, run.monitor, state.best_score
            )


def _start(
    module: nn.Module,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    data: Data,
    config: TrainConfig,
    step: Step | None,
    val_data: Data | None,
    callbacks: Iterable[Callback],
    reduce: Reduce | None = None,
) -> _Run:
    """Check the inputs and record each param group's initial lr (kept across resumes)."""
    if config.lr_schedule not in SCHEDULES:
        raise InputError(f"lr_schedule={config.lr_schedule!r} must be one of {SCHEDULES}")
    batches = as_batches(data, config.batch_size, min_batch=config.min_batch, shuffle=config.shuffle)
    steps = batches.steps
    base_lrs = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
    for g, lr in zip(optimizer.param_groups, base_lrs, strict=True):
        g["initial_lr"] = lr
    return _Run(
        module,
        loss_fn,
        optimizer,
        step or optimizer_step(loss_fn, optimizer),
        batches,
        config,
        val_data,
        list(callbacks),
        steps,
        base_lrs,
        reduce=reduce,
    )


def train(
    module: nn.Module,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    data: Data,
    config: TrainConfig,
    *,
    step: Step | None = None,
    val_data: Data | None = None,
    callbacks: Iterable[Callback] = (),
    state: LoopState | None = None,
    reduce: Reduce | None = None,
) -> LoopState:
    """Train ``module`` in place and return the loop state (with ``history``).

    Parameters
    ----------
    loss_fn : callable
        ``loss_fn(batch, training) -> {"loss": total, **named terms}``; validation calls it
        with ``training=False``.
    data : sequence of tensors, or a source of batches
        Tensors with the same first dimension (e.g. ``(X,)`` or ``(X, y)``), on the
        module's device, batched as ``config`` says; or an ``aekit.batches`` source
        (``epoch(i)`` yields ``steps`` batches, e.g. rows streamed from disk), whose own
        batch size and order then apply.
    val_data : sequence of tensors, or a source of batches, optional
        Evaluated after every epoch, unshuffled.
    step : callable, optional
        ``step(batch) -> losses``: one training step. Default ``optimizer_step(loss_fn, optimizer)``;
        if it has a ``close()`` method, that is called when training ends.
    state : LoopState, optional
        Resume from here (epochs already done, history, early-stopping state).
    reduce : callable, optional
        Data-parallel training (``aekit.distributed.all_sum``): ``data`` and ``val_data`` are this
        process's parts; loss sums, sample counts, the NaN check and callbacks' stop requests are
        summed over the processes, so that the history and every decision are the same on each.

    Raises
    ------
    TrainingDivergedError
        The loss became NaN/inf; the module holds the weights from the end of the
        last good epoch.
    """
    state = state or LoopState()
    run = _start(module, loss_fn, optimizer, data, config, step, val_data, callbacks, reduce)
    run.bar = _progress_bar(config.progress, run.total_steps, state.epoch * run.steps)
    good: dict[str, torch.Tensor] | None = None
    try:
        while state.epoch < config.epochs:
            epoch, t0 = state.epoch, time.perf_counter()
            good = _snapshot(module)
            sums, step_loss = _run_epoch(run, epoch)
            _check_finite(run, state, epoch, step_loss, good)
            logs = _epoch_logs(run, state, sums, t0)
            good = None  # the epoch is complete: an interrupt from here on keeps the current weights
            _report(run, state, logs)
            if _should_stop(run, state, epoch, logs):
                break
        raise_if_signalled()  # one lost in the last epoch's callbacks (e.g. while the checkpoint was written)
    except KeyboardInterrupt:
        if good is not None:  # mid-epoch: back to the end of the last complete epoch
            module.load_state_dict(good)
        state.stop_reason = "interrupted"
        if state.epoch:
            log.warning(
                "training interrupted after %d complete epoch%s; keeping that model",
                state.epoch,
                "" if state.epoch == 1 else "s",
            )
        else:  # nothing trained: the caller decides what an untrained model is worth (the CLI writes none)
            log.warning("training interrupted in its first epoch; no epoch completed")
    except BaseException:
        if good is not None and reduce is not None:  # data-parallel, e.g. another rank failed: the last complete
            module.load_state_dict(good)  # epoch's weights, the same on every rank
        raise
    finally:
        if run.bar is not None:
            run.bar.close()
        close = getattr(run.step, "close", None)
        if close is not None:
            close()
    _restore_best(run, state)
    if not state.stop_reason:
        state.stop_reason = "completed"
    return state
