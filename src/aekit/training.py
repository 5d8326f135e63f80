"""The training loop. It knows nothing about any model.

``train`` takes a module (only for ``train()``/``eval()`` and its weights), a
``loss_fn(batch, training) -> {"loss": total, **named terms}``, an optimizer and
in-memory tensors, and runs mini-batch epochs: one gather per epoch to shuffle,
contiguous slices as batches, no host sync inside an epoch (losses are summed on
the device and read once per epoch), validation, early stopping with best-weight
restore, learning-rate schedules, callbacks, a progress bar, NaN/inf detection
that keeps the last good weights, and Ctrl-C that stops and keeps the model.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from aekit._utils import CudaGraphError, InputError, TrainingDivergedError, heap_reuse
from aekit.params import OPTIMIZERS, PRECISIONS, SCHEDULES

log = logging.getLogger(__name__)

LossFn = Callable[[tuple[torch.Tensor, ...], bool], dict[str, torch.Tensor]]
#: ``callback(epoch, logs) -> bool | None``; returning True stops training.
Callback = Callable[[int, dict[str, float]], Any]


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
    progress: bool = False  # show a tqdm progress bar
    eval_batch_size: int = 4096  # samples per forward pass when validating
    min_batch: int = 1  # a last batch smaller than this joins the one before it (BatchNorm needs 2 samples)
    cuda_graph: bool = False  # on CUDA: capture the whole training step once and replay it (see CudaGraphStep)


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

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=True)


@torch.no_grad()
def evaluate(module: nn.Module, loss_fn: LossFn, data: Sequence[torch.Tensor], batch_size: int) -> dict[str, float]:
    """Sample-weighted mean of every named loss over ``data``, in eval mode."""
    was_training = module.training
    module.eval()
    n = data[0].shape[0]
    sums: dict[str, torch.Tensor] = {}
    for start in range(0, n, batch_size):
        batch = tuple(t[start : start + batch_size] for t in data)
        for k, v in loss_fn(batch, False).items():
            sums[k] = sums.get(k, 0) + v.detach() * batch[0].shape[0]
    module.train(was_training)
    return {k: float(v) / n for k, v in sums.items()}


def train(
    module: nn.Module,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    data: Sequence[torch.Tensor],
    config: TrainConfig,
    *,
    val_data: Sequence[torch.Tensor] | None = None,
    callbacks: Iterable[Callback] = (),
    state: LoopState | None = None,
) -> LoopState:
    """Train ``module`` in place and return the loop state (with ``history``).

    Parameters
    ----------
    data : sequence of tensors
        Tensors with the same first dimension (e.g. ``(X,)`` or ``(X, y)``), on the
        module's device; batches are slices of them.
    state : LoopState, optional
        Resume from here (epochs already done, history, early-stopping state).

    Raises
    ------
    TrainingDivergedError
        The loss became NaN/inf; the module holds the weights from the end of the
        last good epoch.
    """
    if config.lr_schedule not in SCHEDULES:
        raise InputError(f"lr_schedule={config.lr_schedule!r} must be one of {SCHEDULES}")
    state = state or LoopState()
    n = data[0].shape[0]
    bs = config.batch_size
    steps = math.ceil(n / bs)
    if n < config.min_batch:
        raise InputError(f"got {n} training sample(s); this model trains on batches of at least {config.min_batch} samples (BatchNorm), pass more data")
    if steps > 1 and n - (steps - 1) * bs < config.min_batch:
        steps -= 1  # the short last batch is merged into the one before it
    base_lrs = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
    for g, lr in zip(optimizer.param_groups, base_lrs, strict=True):
        g["initial_lr"] = lr
    total_steps = steps * config.epochs
    monitor = "val_loss" if val_data is not None else "loss"
    bar = _progress_bar(config.progress, total_steps, state.epoch * steps)
    callbacks = list(callbacks)
    device = data[0].device
    good: dict[str, torch.Tensor] | None = None

    def eager_step(batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        losses = loss_fn(batch, True)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()
        return losses

    step: Callable[[tuple[torch.Tensor, ...]], dict[str, torch.Tensor]] = eager_step
    if config.cuda_graph and device.type == "cuda" and CudaGraphStep.supports(optimizer):
        step = CudaGraphStep(eager_step, optimizer, full_batch=bs)

    with heap_reuse():  # reuse freed activation memory instead of page-faulting it in every step
        try:
            while state.epoch < config.epochs:
                epoch = state.epoch
                t0 = time.perf_counter()
                good = _snapshot(module)
                module.train()
                if config.shuffle:
                    perm = torch.randperm(n, device=device)
                    epoch_data = tuple(t[perm] for t in data)  # one gather per epoch
                else:
                    epoch_data = tuple(data)
                sums: dict[str, torch.Tensor] = {}
                step_loss = torch.empty(steps, device=device)
                for i in range(steps):
                    if config.lr_schedule == "cosine":
                        frac = (epoch * steps + i) / max(total_steps, 1)
                        for g, lr in zip(optimizer.param_groups, base_lrs, strict=True):
                            g["lr"] = 0.5 * lr * (1 + math.cos(math.pi * frac))
                    end = n if i == steps - 1 else (i + 1) * bs
                    batch = tuple(t[i * bs : end] for t in epoch_data)
                    losses = step(batch)
                    step_loss[i] = losses["loss"].detach()
                    m = batch[0].shape[0]
                    for k, v in losses.items():
                        sums[k] = sums.get(k, 0) + v.detach() * m
                    if bar is not None:
                        bar.update(1)
                finite = torch.isfinite(step_loss)
                if not bool(finite.all()):  # one sync per epoch
                    bad = int((~finite).nonzero()[0])
                    module.load_state_dict(good)
                    state.stop_reason = "diverged"
                    raise TrainingDivergedError(
                        f"training loss became {float(step_loss[bad])} at epoch {epoch + 1}, step {bad + 1} "
                        f"(global step {epoch * steps + bad + 1}); kept the weights from the end of epoch {epoch}. "
                        "Fix: lower learning_rate, check the input scaling, or use batchnorm=True"
                    )
                logs = {k: float(v) / n for k, v in sums.items()}
                if val_data is not None:
                    logs.update({f"val_{k}": v for k, v in evaluate(module, loss_fn, val_data, config.eval_batch_size).items()})
                logs["lr"] = optimizer.param_groups[0]["lr"]
                logs["time"] = time.perf_counter() - t0
                for k, v in logs.items():
                    state.history.setdefault(k, []).append(v)
                state.epoch = epoch + 1
                good = None  # the epoch is complete: an interrupt from here on keeps the current weights
                score = logs[monitor]
                if bar is not None:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if "loss" in k})
                log.info("epoch %d/%d %s", epoch + 1, config.epochs, " ".join(f"{k}={v:.4g}" for k, v in logs.items()))

                if score < state.best_score - config.min_delta:
                    state.best_score, state.best_epoch, state.wait = score, epoch, 0
                    if config.early_stopping and config.restore_best_weights:
                        state.best_weights = _snapshot(module)
                else:
                    state.wait += 1
                if config.lr_schedule == "plateau":
                    if score < state.plateau_best - config.min_delta:
                        state.plateau_best, state.plateau_wait = score, 0
                    else:
                        state.plateau_wait += 1
                        if state.plateau_wait >= 2:
                            _set_lr(optimizer, optimizer.param_groups[0]["lr"] * 0.5)
                            state.plateau_wait = 0
                stop = any([bool(cb(epoch, logs)) for cb in callbacks])  # every callback runs (e.g. the checkpoint) before one stops
                if config.early_stopping and state.wait >= config.patience:
                    state.stop_reason = "early_stopping"
                    break
                if stop:
                    state.stop_reason = "callback"
                    break
        except KeyboardInterrupt:
            if good is not None:  # mid-epoch: back to the end of the last complete epoch
                module.load_state_dict(good)
            state.stop_reason = "interrupted"
            log.warning("training interrupted after %d complete epochs; keeping that model", state.epoch)
        finally:
            if bar is not None:
                bar.close()
            if isinstance(step, CudaGraphStep):
                step.close()
    if config.early_stopping and config.restore_best_weights and state.best_weights is not None:
        if state.best_epoch != state.epoch - 1:
            module.load_state_dict(state.best_weights)
            log.info("restored the weights of epoch %d (best %s=%.5g)", state.best_epoch + 1, monitor, state.best_score)
    if not state.stop_reason:
        state.stop_reason = "completed"
    return state


class CudaGraphStep:
    """The training step (forward, backward, optimizer update) as one replayed CUDA graph.

    At batch 128 these models are launch-bound on a GPU: an eager step is ~100 kernel
    launches and Python calls for a few microseconds of arithmetic each. This runs the
    first ``warmup`` full-size steps eagerly on a side stream (they are real steps:
    lazy state, cuBLAS workspaces and ``torch.compile`` get set up), captures the next
    one with ``torch.cuda.graph`` and from then on copies each full-size batch into
    the captured input buffers and replays the graph. Batches of another size (a short
    last batch) run eagerly. The learning rate lives in a device tensor during capture
    and is refreshed before a replay whenever ``param_groups[i]["lr"]`` changed (so
    schedules and callbacks work); outside capture ``lr`` stays a float, so state dicts
    and checkpoints are unchanged. The same operations run as in the eager step, so
    deterministic models give the same numbers to float tolerance (cuBLAS may pick other
    kernels under capture); dropout, input noise and variational
    sampling draw from the same generator but through the graph's own offsets, so they
    are reproducible (same seed, same result) yet not the eager run's random stream.
    If capture fails the step stays eager from then on, with a warning. (A step that
    cannot be captured, e.g. one that reads a value on the host, breaks off the capture
    midway, which leaves PyTorch's CUDA random generator in capture mode; it is reset
    with a one-op capture, and if that does not work training stops with a
    ``CudaGraphError`` saying to use ``compile=False``. PyTorch's allocator is not fully
    restored after such a failure either, so no further graphs are captured in this
    process.) The step also stays eager if the optimizer's other hyperparameters
    (momentum, betas, ...) or its param groups change after capture, since the graph
    holds them as they were. Replacing the optimizer's state tensors during training
    (``optimizer.load_state_dict``) is not supported while a graph is in use.
    """

    def __init__(
        self, step: Callable[[tuple[torch.Tensor, ...]], dict[str, torch.Tensor]], optimizer: torch.optim.Optimizer, *,
        full_batch: int, warmup: int = 3,
    ) -> None:
        self.step, self.optimizer, self.full_batch, self.warmup = step, optimizer, full_batch, warmup
        self.graph: torch.cuda.CUDAGraph | None = None
        self.side: torch.cuda.Stream | None = None  # the warm-up stream
        self.failed = False
        self.graph_failed: torch.cuda.CUDAGraph | None = None  # the graph of a capture that is failing
        self.warm = 0
        self.static_in: tuple[torch.Tensor, ...] = ()
        self.static_out: dict[str, torch.Tensor] = {}
        self.lrs: list[list[Any]] = []  # [group, device tensor, value it holds]
        self.frozen: list[dict[str, Any]] = []  # each group's other hyperparameters as captured
        self.keep: list[Any] = []  # tensors the graph writes (gradients): kept alive with it

    @staticmethod
    def supports(optimizer: torch.optim.Optimizer) -> bool:
        """KerasRMSprop, or a PyTorch optimizer whose fused kernel takes a tensor lr under capture (Adam, AdamW);
        False for the rest of the process once a capture broke off midway."""
        if _BROKEN_CAPTURES:
            return False
        if isinstance(optimizer, KerasRMSprop):
            return optimizer.working_dtype is None
        return all(g.get("fused") and "capturable" in g for g in optimizer.param_groups)

    def __call__(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        if self.failed or batch[0].shape[0] != self.full_batch:
            return self.step(batch)
        if self.graph is not None:  # the hot path: a replay runs on the graph's own device
            return self._replay(batch)
        with torch.cuda.device(batch[0].device):  # streams and capture on the data's GPU, not the current one
            return self._warm_or_capture(batch)

    def _warm_or_capture(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        if self.side is None:
            self.side = torch.cuda.Stream()  # warm-up and capture stream, on this device
        if self.warm < self.warmup:
            self.warm += 1
            side, current = self.side, torch.cuda.current_stream()
            side.wait_stream(current)
            try:
                with torch.cuda.stream(side):
                    return self.step(batch)
            finally:  # also on Ctrl-C: a weight restore on the current stream waits for this step
                current.wait_stream(side)
        try:
            self._capture(batch)
        except Exception as exc:  # an op that cannot be captured: nothing ran, train on eagerly
            root = exc.__context__ or exc  # capture_end's error hides the op's own
            log.warning("CUDA graph capture of the training step failed (%s: %s); training continues without it", type(root).__name__, root)
            self._give_up()
            self._reset_rng(batch[0].device, root)
            return self.step(batch)
        return self._replay(batch)

    def _reset_rng(self, device: torch.device, cause: BaseException) -> None:
        """After a capture broken off midway the CUDA generator still believes it is capturing (PyTorch does not
        reset it) and every random op fails; a complete capture of one random op resets it. The generator's
        state is put back either way: the probe draws no numbers from the training's stream."""
        stream = torch.cuda.current_stream()
        try:
            state = torch.cuda.get_rng_state(device)
        except Exception:
            state = None
        try:
            if _rng_works(device):
                return
            _BROKEN_CAPTURES.append(self.graph_failed)  # kept alive: PyTorch's allocator may still point at it
            with torch.cuda.graph(torch.cuda.CUDAGraph(), stream=self.side):
                _rng_works(device)
            if not _rng_works(device):
                raise RuntimeError("a random op still fails")
        except Exception as exc:
            raise CudaGraphError(
                f"the training step could not be captured as a CUDA graph ({type(cause).__name__}: {cause}), and PyTorch's CUDA "
                f"random generator could not be reset afterwards ({type(exc).__name__}: {exc}); the model keeps its weights so far. "
                "Fix: train with compile=False (no CUDA graph), in a new process"
            ) from cause
        finally:
            torch.cuda.set_stream(stream)
            if state is not None:
                with contextlib.suppress(RuntimeError):
                    torch.cuda.set_rng_state(state, device)

    def _give_up(self) -> None:
        """Eager from now on (also after ``close``); the graph, its buffers and gradients are let go."""
        self.optimizer.zero_grad(set_to_none=True)  # gradients in the graph's pool are not the eager step's
        self.failed, self.graph, self.static_in, self.static_out, self.keep, self.lrs, self.frozen = True, None, (), {}, [], [], []

    def close(self) -> None:
        """Release the graph and its memory (the gradients it wrote) once training ends."""
        self._give_up()

    @staticmethod
    def _hyper(group: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in group.items() if k not in ("params", "lr", "initial_lr", "capturable", "_flat")}

    def _unchanged(self) -> bool:
        """The optimizer's param groups are the captured ones, with the captured hyperparameters (lr aside)."""
        groups = self.optimizer.param_groups
        if len(groups) != len(self.lrs) or any(g is not entry[0] for g, entry in zip(groups, self.lrs, strict=False)):
            return False
        try:
            return all(bool(self._hyper(g) == f) for g, f in zip(groups, self.frozen, strict=True))
        except Exception:  # values that do not compare (tensors in a tuple): assume changed
            return False

    def _capture(self, batch: tuple[torch.Tensor, ...]) -> None:
        self.static_in = tuple(t.clone() for t in batch)
        self.optimizer.zero_grad(set_to_none=True)  # gradients are allocated inside the graph
        graph = self.graph_failed = torch.cuda.CUDAGraph()
        saved = []
        stream = torch.cuda.current_stream()
        try:
            for group in self.optimizer.param_groups:
                value = float(group["lr"])
                lr = torch.tensor(value, dtype=torch.float32, device=batch[0].device)
                self.lrs.append([group, lr, value])
                saved.append((group, group["lr"], group.get("capturable")))
                group["lr"] = lr
                if "capturable" in group:
                    group["capturable"] = True  # torch optimizers refuse capture otherwise; fused kernels ignore it
            with torch.cuda.graph(graph, stream=self.side):
                out = self.step(self.static_in)
            # without their autograd graph (same memory): the next eager step builds its own on its own stream
            self.static_out = {k: v.detach() for k, v in out.items()}
        finally:
            torch.cuda.set_stream(stream)  # a failed capture can leave the capture stream current
            for group, lr, capturable in saved:
                group["lr"] = lr
                if capturable is not None:
                    group["capturable"] = capturable
        self.frozen = [deepcopy(self._hyper(g)) for g in self.optimizer.param_groups]  # a copy: in-place edits show
        self.keep = [p.grad for g in self.optimizer.param_groups for p in g["params"]]
        self.graph, self.graph_failed = graph, None

    def _replay(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        if not self._unchanged():
            log.warning("optimizer hyperparameters other than lr (or its param groups) changed after the training step was "
                        "captured as a CUDA graph; training continues without the graph")
            self._give_up()
            return self.step(batch)
        for static, t in zip(self.static_in, batch, strict=True):
            static.copy_(t)
        for entry in self.lrs:
            group, lr, value = entry
            if group["lr"] != value:
                lr.fill_(float(group["lr"]))
                entry[2] = group["lr"]
        assert self.graph is not None
        self.graph.replay()
        return self.static_out


#: graphs of captures that broke off midway (kept alive); once there is one, no more graphs in this process
_BROKEN_CAPTURES: list[Any] = []


def _rng_works(device: torch.device) -> bool:
    """Can the CUDA generator of ``device`` draw numbers (it cannot while it wrongly believes it is capturing)?"""
    try:
        torch.empty(1, device=device).uniform_()
        return True
    except RuntimeError:
        return False


def capturing() -> bool:
    """Whether a CUDA graph is being captured on the current stream (False without CUDA)."""
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def check_compile(mode: Any) -> None:
    if mode not in (True, False, "auto"):
        raise InputError(f"compile={mode!r} must be True, False or 'auto'")


def fused_optimizer_pays(mode: bool | str, total_steps: int) -> bool:
    """Whether to compile the optimizer step: always for True; for "auto" when the run is long.

    Measured on 2 CPU cores: the compiled RMSprop step saves ~1.2 ms of ~6.5 ms per
    dense-AE step, and compiling costs ~5-15 s, so "auto" compiles from 2,000 steps on.
    """
    check_compile(mode)
    return mode is True or (mode == "auto" and total_steps >= 2000)


def maybe_compile(loss_fn: LossFn, mode: bool | str, device: torch.device) -> LossFn:
    """``torch.compile`` the loss function when asked (or, for ``"auto"``, on CUDA).

    On this project's 2-core CPU measurements compiling the forward pass gained < 5%
    per dense step and slowed the conv AE 2.5x, so ``"auto"`` keeps CPU eager here.
    On an H100 without CUDA graphs it gained 8-20% for the SAE and bfloat16 dense runs,
    nothing for the float32 dense AE, and slowed the conv AE by 15% (the estimators pass
    False for conv bodies under "auto", and False for everything under a CUDA graph).
    If compilation fails (no compiler, unsupported op), training continues eagerly
    with a warning.
    """
    check_compile(mode)
    if mode is False or (mode == "auto" and device.type != "cuda"):
        return loss_fn
    compiled = torch.compile(loss_fn, dynamic=False)
    state = {"fn": compiled}

    def run(batch: tuple[torch.Tensor, ...], training: bool) -> dict[str, torch.Tensor]:
        try:
            return state["fn"](batch, training)
        except Exception as exc:  # compilation problems surface at the first call
            if state["fn"] is loss_fn or capturing():  # inside a CUDA graph capture the graph falls back instead
                raise
            log.warning("torch.compile failed (%s: %s); training continues without it", type(exc).__name__, exc)
            state["fn"] = loss_fn
            return loss_fn(batch, training)

    return run


def autocast(device: torch.device, precision: str) -> Callable[[], Any]:
    """A factory of the context that runs the forward pass in ``precision``.

    "float32": plain float32 (the reference). "bfloat16": mixed precision via
    ``torch.autocast``: matrix products and convolutions in bfloat16, weights,
    optimizer state and losses in float32. It pays where the hardware has bfloat16
    arithmetic (CPUs with AVX512-BF16 or AMX, NVIDIA Ampere or newer); elsewhere it is
    emulated and may be slower, so a warning says so.
    """
    if precision not in PRECISIONS:
        raise InputError(f"precision={precision!r} must be one of {PRECISIONS}")
    if precision == "float32":
        return contextlib.nullcontext
    native = {
        "cpu": lambda: bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "cuda": lambda: torch.cuda.is_bf16_supported(including_emulation=False),
    }.get(device.type, lambda: True)
    try:
        fast = native()
    except Exception:  # an old build without the query: assume the best, the run still works
        fast = True
    if not fast:
        log.warning("precision='bfloat16': this %s has no native bfloat16 arithmetic; training may be slower than float32", device.type)
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)


# ----------------------------------------------------------------------------- optimizers


class KerasRMSprop(torch.optim.Optimizer):
    """RMSprop with Keras 3 semantics (epsilon *inside* the square root).

    ``v = rho·v + (1-rho)·g²``; ``inc = lr·g / sqrt(v + eps)``;
    with momentum ``buf = momentum·buf + inc; p -= buf``, else ``p -= inc``.
    PyTorch's RMSprop puts eps outside the root (``sqrt(v) + eps``), which with
    eps=1e-7 is a 3000x smaller floor and does not reproduce Keras runs.

    The state of a parameter group lives in flat buffers (``self.state[p]`` holds
    views into them), so a step is a handful of whole-model kernels instead of
    several per parameter tensor.

    ``working_dtype`` (e.g. bfloat16): mixed precision with float32 *master* weights
    (the parameters themselves, so the module, its state dict and checkpoints stay
    float32) and low-precision *working copies* that the forward pass uses
    (``working_params()``, e.g. through ``torch.func.functional_call``). Gradients
    arrive on the working copies; the step reads them, updates the masters in float32
    and re-rounds the copies in the same pass. This is what autocast computes, bit for
    bit, without its per-step weight casts and gradient up-casts (5-10% of a bfloat16
    dense-AE step on 2 CPU cores). Masters must change in place under ``torch.no_grad()``
    or through ``load_state_dict`` (which bump their version); ``.data`` edits are not seen.
    Gradients must arrive on the copies: a master with a gradient is an error.
    """

    def __init__(
        self, params: Any, lr: float = 0.001, rho: float = 0.9, momentum: float = 0.0, eps: float = 1e-7, *, fused: bool = False,
        working_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(params, {"lr": lr, "rho": rho, "momentum": momentum, "eps": eps})
        self.fused = fused  # one compiled kernel per step (torch.compile); falls back to the flat path
        self.working_dtype = working_dtype
        self._working: dict[torch.Tensor, tuple[torch.Tensor, int]] = {}  # master -> (copy, master version it holds)

    def working_params(self) -> list[torch.Tensor]:
        """The working copies, in parameter order; a copy is re-rounded if its master changed outside ``step``
        (``load_state_dict``, a restored snapshot, a user edit)."""
        if self.working_dtype is None:
            raise InputError("working_params() needs KerasRMSprop(..., working_dtype=...)")
        out = []
        for group in self.param_groups:
            for p in group["params"]:
                entry = self._working.get(p)
                if entry is None or entry[1] != p._version:
                    copy = p.detach().to(self.working_dtype).requires_grad_(p.requires_grad)
                    entry = self._working[p] = (copy, p._version)
                out.append(entry[0])
        return out

    def _grad(self, p: torch.Tensor) -> torch.Tensor | None:
        if self.working_dtype is None:
            return p.grad
        if p.grad is not None:
            raise InputError(
                "KerasRMSprop(working_dtype=...) got a gradient on a float32 master weight; "
                "compute the loss from working_params() (e.g. torch.func.functional_call) so gradients reach the working copies"
            )
        entry = self._working.get(p)
        return None if entry is None else entry[0].grad

    def _synced(self, params: list[torch.Tensor]) -> None:
        """Record that the working copies of ``params`` were just re-rounded from their masters."""
        for p in params:
            self._working[p] = (self._working[p][0], p._version)

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)
        for copy, _ in self._working.values():
            if set_to_none:
                copy.grad = None
            elif copy.grad is not None:
                copy.grad.zero_()

    def _flat(self, group: dict[str, Any], params: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Flat state buffers for ``params``, (re)built when the per-parameter state is not their view."""
        keys = ["velocity"] + (["momentum"] if group["momentum"] > 0 else [])
        flat = group.get("_flat")
        first = self.state[params[0]]
        intact = (
            flat is not None
            and flat["n"] == len(params)
            and all(k in first and k in flat and first[k].data_ptr() == flat[k].data_ptr() for k in keys)
        )
        if intact:
            return flat
        sizes = [p.numel() for p in params]
        flat = {"n": len(params), "sizes": sizes}  # type: ignore[dict-item]
        for k in keys:
            parts = [self.state[p][k].reshape(-1) if k in self.state[p] else torch.zeros(p.numel(), dtype=p.dtype, device=p.device) for p in params]
            buf = torch.cat(parts)  # (P,)
            flat[k] = buf
            for p, view in zip(params, buf.split(sizes), strict=True):
                self.state[p][k] = view.view_as(p)
        flat["tmp"] = torch.empty_like(flat["velocity"])
        group["_flat"] = flat
        return flat

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> None:  # type: ignore[override]
        if closure is not None:
            raise InputError("KerasRMSprop.step does not take a closure")
        for group in self.param_groups:
            params = [p for p in group["params"] if self._grad(p) is not None]
            if not params:
                continue
            if self.fused and self._fused_step(group, params):
                continue
            flat = self._flat(group, params)
            g = torch.cat([self._grad(p).reshape(-1) for p in params]).float()  # (P,) one copy (a no-op cast in float32)
            v = flat["velocity"]
            v.mul_(group["rho"]).addcmul_(g, g, value=1 - group["rho"])
            denom = torch.add(v, group["eps"], out=flat["tmp"]).sqrt_()
            lr = group["lr"]  # a float, or a 0-d tensor while a CUDA graph is captured
            if group["momentum"] > 0 and isinstance(lr, torch.Tensor):
                update = flat["momentum"].mul_(group["momentum"]).add_(g.div_(denom).mul_(lr))
            elif group["momentum"] > 0:
                update = flat["momentum"].mul_(group["momentum"]).addcdiv_(g, denom, value=lr)
            else:
                update = g.div_(denom).mul_(lr)
            torch._foreach_sub_(params, [u.view_as(p) for u, p in zip(update.split(flat["sizes"]), params, strict=True)])
            if self.working_dtype is not None:
                for p in params:
                    self._working[p][0].detach().copy_(p)
                self._synced(params)

    def _fused_step(self, group: dict[str, Any], params: list[torch.Tensor]) -> bool:
        """The whole update as one compiled kernel; False (and eager from now on) if compilation fails."""
        for p in params:
            st = self.state[p]
            if "velocity" not in st:
                st["velocity"] = torch.zeros_like(p)
            if group["momentum"] > 0 and "momentum" not in st:
                st["momentum"] = torch.zeros_like(p)
        lr = group["lr"]  # a 0-d tensor while a CUDA graph is captured
        if not isinstance(lr, torch.Tensor):
            lr = torch.tensor(float(lr), device=params[0].device)  # a tensor: schedules cause no recompiles
        grads = [self._grad(p) for p in params]
        vs = [self.state[p]["velocity"] for p in params]
        bufs = [self.state[p]["momentum"] for p in params] if group["momentum"] > 0 else vs
        copies = [self._working[p][0].detach() for p in params] if self.working_dtype is not None else []
        try:
            _compiled_rmsprop()(params, grads, vs, bufs, copies, lr, float(group["rho"]), float(group["momentum"]), float(group["eps"]))
        except Exception as exc:  # compilation problems surface here, before anything is updated
            if capturing():  # the CUDA graph capture falls back as a whole
                raise
            log.warning("compiled RMSprop step failed (%s: %s); continuing with the eager step", type(exc).__name__, exc)
            self.fused = False
            return False
        if copies:
            self._synced(params)
        return True

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        for g in sd["param_groups"]:
            g.pop("_flat", None)
        return sd


def _rmsprop_update(
    params: list[torch.Tensor], grads: list[torch.Tensor], vs: list[torch.Tensor], bufs: list[torch.Tensor], copies: list[torch.Tensor],
    lr: torch.Tensor, rho: float, momentum: float, eps: float,
) -> None:
    """Keras RMSprop for every parameter; written to be fused by torch.compile.

    ``grads`` may be low-precision (working copies' gradients: up-cast here);
    ``copies``, if given, are re-rounded from the updated parameters in the same pass.
    """
    for p, g, v, b in zip(params, grads, vs, bufs, strict=True):
        g = g.float()
        v.mul_(rho).addcmul_(g, g, value=1 - rho)
        inc = g / (v + eps).sqrt() * lr
        if momentum > 0:
            p.sub_(b.mul_(momentum).add_(inc))
        else:
            p.sub_(inc)
    for p, c in zip(params, copies, strict=False):  # copies: empty or one per parameter
        c.copy_(p)


_COMPILED: dict[str, Any] = {}


def _compiled_rmsprop() -> Any:
    if "rmsprop" not in _COMPILED:
        _COMPILED["rmsprop"] = torch.compile(_rmsprop_update, fullgraph=True, dynamic=False)
    return _COMPILED["rmsprop"]


def make_optimizer(
    name: str, params: Any, lr: float, momentum: float = 0.0, *, fused: bool = False, working_dtype: torch.dtype | None = None
) -> torch.optim.Optimizer:
    """Optimizers with Keras defaults (eps=1e-7). ``momentum`` applies to rmsprop and sgd.

    ``fused``: RMSprop's update compiled into one kernel; Adam/AdamW use PyTorch's fused kernels.
    ``working_dtype``: RMSprop only, see ``KerasRMSprop``.
    """
    if working_dtype is not None and name != "rmsprop":
        raise InputError(f"working_dtype is supported by optimizer='rmsprop' only, not {name!r}")
    if name == "rmsprop":
        return KerasRMSprop(params, lr=lr, rho=0.9, momentum=momentum, eps=1e-7, fused=fused, working_dtype=working_dtype)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        params = list(params)
        if fused:
            try:
                return cls(params, lr=lr, eps=1e-7, fused=True)
            except (RuntimeError, ValueError):  # a device without fused kernels
                pass
        return cls(params, lr=lr, eps=1e-7, foreach=True)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, foreach=True)
    raise InputError(f"optimizer={name!r} must be one of {OPTIMIZERS}")
