"""Every hardware-dependent fast path, behind one seam.

The rest of aekit tells the plain story (build the net, compute the loss, run the
loop). What makes it fast on a given machine lives here:

- ``plan``: a pure function that decides, once per fit, which fast paths a run uses
  (CUDA graph, compiled forward pass, fused optimizer, bfloat16 working copies) and
  returns a frozen ``Plan``; ``settle`` adjusts it to the optimizer as built and
  ``build_step`` wraps the training step accordingly;
- the compile policy (``check_compile``, ``fused_optimizer_pays``, ``maybe_compile``);
- precision (``PRECISIONS``, ``autocast``, ``working_forward``);
- ``CudaGraphStep``: the training step captured once as a CUDA graph and replayed;
- ``heap_reuse``: glibc malloc tuning while training;
- the CPU thread count (``Plan.threads``, chosen by ``aekit.threads``, which also bounds OpenMP's spin-waiting);
- ``Conv2d``: a convolution with a CPU-shaped path for few output channels.

Measured speeds are in benchmarks/results/speed.md (CPU) and gpu.md (CUDA); the A/B runs
behind each default in docs/performance.md.
Imports: ``_utils``, ``optim`` and ``threads`` only (``modules`` imports ``Conv2d`` from here).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
from collections.abc import Callable, Iterator
from copy import deepcopy
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from aekit._utils import CudaGraphError, InputError, LossFn, Step, capturing, caused_by_interrupt
from aekit.optim import KerasRMSprop
from aekit.threads import threads_for_run as threads_for_run  # the seam's callers get thread settings from here
from aekit.threads import using_threads as using_threads

log = logging.getLogger(__name__)

PRECISIONS = ("float32", "bfloat16")
COMPILE_MODES = (True, False, "auto")


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """What one fit uses; made by ``plan``, read by the estimator when it builds the run."""

    cuda_graph: bool  # capture the training step once as a CUDA graph and replay it (CudaGraphStep)
    fused_optimizer: bool  # RMSprop's update compiled into one kernel; Adam/AdamW: PyTorch's fused kernel
    working_copies: bool  # bfloat16 through the optimizer's working copies (working_forward), not autocast
    forward_compile: bool | str  # maybe_compile's mode for the loss function (forward pass)
    graphless_forward_compile: bool | str  # forward_compile should the CUDA graph be dropped (see settle)
    threads: int | None = None  # CPU compute threads during the fit (threads.using_threads); None: PyTorch's count

    @property
    def working_dtype(self) -> torch.dtype | None:
        """The optimizer's ``working_dtype``."""
        return torch.bfloat16 if self.working_copies else None

    def without_graph(self) -> Plan:
        """The same run without a CUDA graph; the optimizer (already built) keeps its kernels."""
        return replace(self, cuda_graph=False, forward_compile=self.graphless_forward_compile)


def plan(
    *,
    device_type: str,
    optimizer: str,
    compile: bool | str,
    precision: str,
    architecture: str,
    batchnorm: bool,
    variational: bool,
    steps: int,
    cuda_graphs: bool = True,
    working_copies: bool = True,
    fused: bool | None = None,
    data_parallel: bool = False,
    threads: int | None = None,
) -> Plan:
    """Decide the fast paths of one fit. Pure: reads nothing but its arguments.

    Parameters
    ----------
    device_type : str
        ``"cpu"``, ``"cuda"``, ``"mps"``...
    optimizer, compile, precision, architecture, batchnorm, variational
        The estimator's parameters of those names.
    steps : int
        Optimizer steps of the whole run (epochs × batches per epoch).
    cuda_graphs, working_copies : bool
        False forbids that path (for tests and benchmarks that compare it with the plain one).
    fused : bool, optional
        Force the optimizer's fused kernel on or off; None decides.
    data_parallel : bool
        Training through ``DistributedDataParallel`` (``aekit.distributed``): the step stays eager,
        with no CUDA graph, compilation or working copies. DDP's gradient all-reduce runs from
        backward hooks on its own stream and buckets, which a graph captured by ``CudaGraphStep``
        does not replay (and compiling through DDP's hooks would need its own tuning, unmeasured
        here); the working copies run a forward pass that bypasses DDP's wrapper.
    threads : int, optional
        CPU compute threads for the run, from ``threads.threads_for_run`` (the cores this process may use,
        never more than PyTorch's count); None leaves PyTorch's count. Passed in so that ``plan`` stays pure.

    Returns
    -------
    Plan
        On CUDA, unless ``compile=False`` or SGD, the step is a CUDA graph, and "auto" then
        compiles nothing (compiling did not pay inside a graph: benchmarks/results/gpu.md).
        The optimizer update is compiled where ``fused_optimizer_pays`` (Adam/AdamW under a
        graph: PyTorch's fused kernel, no compilation). bfloat16 uses working copies only for
        RMSprop on CPU with a dense body without BatchNorm or a Gaussian code, where they were
        measured to pay and equal autocast bit for bit (tested). Without a graph "auto" leaves
        the conv body's forward pass eager (compiled, it was slower).
    """
    check_compile(compile)
    if data_parallel:
        return Plan(
            cuda_graph=False,
            fused_optimizer=bool(fused),
            working_copies=False,
            forward_compile=False,
            graphless_forward_compile=False,
            threads=threads,
        )
    graph = cuda_graphs and _graph_applies(device_type, optimizer, compile)
    compile_mode = False if (graph and compile == "auto") else compile
    if fused is None:
        fused = fused_optimizer_pays(compile_mode, steps) or (graph and optimizer in ("adam", "adamw"))
    working = working_copies and _working_copies_apply(
        device_type, optimizer, precision, architecture, batchnorm, variational
    )
    return Plan(
        cuda_graph=graph,
        fused_optimizer=fused,
        working_copies=working,
        forward_compile=_forward_compile(compile_mode, architecture),
        graphless_forward_compile=_forward_compile(compile, architecture),
        threads=threads,
    )


def _graph_applies(device_type: str, optimizer: str, compile: bool | str) -> bool:
    return device_type == "cuda" and compile is not False and optimizer != "sgd"


def _working_copies_apply(
    device_type: str, optimizer: str, precision: str, architecture: str, batchnorm: bool, variational: bool
) -> bool:
    return (
        precision == "bfloat16"
        and optimizer == "rmsprop"
        and device_type == "cpu"
        and architecture == "dense"
        and not batchnorm
        and not variational
    )


def _forward_compile(compile_mode: bool | str, architecture: str) -> bool | str:
    return False if (compile_mode == "auto" and architecture == "conv") else compile_mode


def settle(plan: Plan, optimizer: torch.optim.Optimizer) -> Plan:
    """``plan`` for the optimizer as built: no CUDA graph where its step cannot be captured (e.g. no
    fused Adam on this build, or a capture broke off earlier in this process), and then "auto"
    compiles the forward pass as it does without graphs."""
    if plan.cuda_graph and not CudaGraphStep.supports(optimizer):
        return plan.without_graph()
    return plan


def build_step(plan: Plan, step: Step, optimizer: torch.optim.Optimizer, batch_size: int) -> Step:
    """The training step the loop calls: ``step`` itself, or ``step`` captured as a CUDA graph."""
    return CudaGraphStep(step, optimizer, full_batch=batch_size) if plan.cuda_graph else step


# ----------------------------------------------------------------------------- compilation


def check_compile(mode: Any) -> None:
    if mode not in COMPILE_MODES:
        raise InputError(f"compile={mode!r} must be True, False or 'auto'")


def fused_optimizer_pays(mode: bool | str, total_steps: int) -> bool:
    """Whether to compile the optimizer step: always for True; for "auto" when the run is long.

    On CPU the compiled RMSprop step is faster per step but compiling takes seconds
    (docs/performance.md#measurements-behind-the-defaults), so "auto" compiles from 2,000 steps on.
    """
    check_compile(mode)
    return mode is True or (mode == "auto" and total_steps >= 2000)


def maybe_compile(loss_fn: LossFn, mode: bool | str, device: torch.device) -> LossFn:
    """``torch.compile`` the loss function when asked (or, for ``"auto"``, on CUDA).

    On CPU compiling the forward pass gained little for dense bodies and slowed the
    conv AE, so ``"auto"`` keeps CPU eager; on CUDA without graphs it paid for some
    models and slowed the conv AE (``plan`` passes False for conv bodies under
    "auto", and False for everything under a CUDA graph; benchmarks/results/gpu.md).
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
            if caused_by_interrupt(exc):  # Ctrl-C / SIGTERM that the compiler turned into its own error
                raise KeyboardInterrupt from exc
            if state["fn"] is loss_fn or capturing():  # inside a CUDA graph capture the graph falls back instead
                raise
            log.warning("torch.compile failed (%s: %s); training continues without it", type(exc).__name__, exc)
            state["fn"] = loss_fn
            return loss_fn(batch, training)

    return run


# ----------------------------------------------------------------------------- precision


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
        log.warning(
            "precision='bfloat16': this %s has no native bfloat16 arithmetic; training may be slower than float32",
            device.type,
        )
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)


def working_forward(net: torch.nn.Module, optimizer: Any) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """``net``'s forward pass in the optimizer's working precision, on its working copies."""
    names = [name for name, _ in net.named_parameters()]  # the order the optimizer received them in
    dtype = optimizer.working_dtype

    def forward(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return functional_call(net, dict(zip(names, optimizer.working_params(), strict=True)), (x.to(dtype),))

    return forward


# ----------------------------------------------------------------------------- CUDA graphs


class CudaGraphStep:
    """The training step (forward, backward, optimizer update) as one replayed CUDA graph.

    At the batch sizes used here these models are launch-bound on a GPU: an eager step is
    many kernel launches and Python calls for a few microseconds of arithmetic each
    (benchmarks/results/gpu.md). This runs the first ``warmup`` full-size steps eagerly
    on a side stream (they are real steps: lazy state, cuBLAS workspaces and
    ``torch.compile`` get set up), captures the next
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
        self,
        step: Callable[[tuple[torch.Tensor, ...]], dict[str, torch.Tensor]],
        optimizer: torch.optim.Optimizer,
        *,
        full_batch: int,
        warmup: int = 3,
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
        except (Exception, KeyboardInterrupt) as exc:  # an op that cannot be captured: nothing ran, go on eagerly
            root = exc.__context__ or exc  # capture_end's error hides the op's own
            if isinstance(exc, KeyboardInterrupt) or caused_by_interrupt(exc):
                # Ctrl-C mid-capture: tidy up as after a failed capture (a later fit in this process must find
                # the generator working), then stop
                self._give_up()
                with contextlib.suppress(Exception):
                    self._reset_rng(batch[0].device, root)
                raise KeyboardInterrupt from exc
            log.warning(
                "CUDA graph capture of the training step failed (%s: %s); training continues without it",
                type(root).__name__,
                root,
            )
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
                f"the training step could not be captured as a CUDA graph ({type(cause).__name__}: "
                f"{cause}), and PyTorch's CUDA random generator could not be reset afterwards ({type(exc).__name__}: "
                f"{exc}); the model keeps its weights so far. Fix: train with compile=False (no CUDA graph), "
                "in a new process"
            ) from cause
        finally:
            torch.cuda.set_stream(stream)
            if state is not None:
                with contextlib.suppress(RuntimeError):
                    torch.cuda.set_rng_state(state, device)

    def _give_up(self) -> None:
        """Eager from now on (also after ``close``); the graph, its buffers and gradients are let go."""
        self.optimizer.zero_grad(set_to_none=True)  # gradients in the graph's pool are not the eager step's
        self.failed, self.graph, self.static_in, self.static_out, self.keep, self.lrs, self.frozen = (
            True,
            None,
            (),
            {},
            [],
            [],
            [],
        )

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
            log.warning(
                "optimizer hyperparameters other than lr (or its param groups) changed after the training step was "
                "captured as a CUDA graph; training continues without the graph"
            )
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


# ----------------------------------------------------------------------------- malloc tuning


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc malloc.h)


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux") or os.environ.get("AEKIT_MALLOC_TUNING", "1") == "0":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:  # musl or no libc found: nothing to tune
        return None


@contextlib.contextmanager
def heap_reuse() -> Iterator[None]:
    """Let glibc keep freed activation buffers for reuse while training on CPU.

    By default glibc hands blocks above a (dynamic) threshold straight back to the
    OS with ``munmap`` and asks for fresh zeroed pages on the next step, so every
    training step page-faults its activations in again; for the conv AE that was
    a large part of a CPU step (docs/performance.md#measurements-behind-the-defaults). Inside this
    block large blocks come from the heap (``M_MMAP_THRESHOLD`` 32 MiB, the
    maximum) and freed memory is kept (``M_TRIM_THRESHOLD`` 1 GiB); on exit the
    trim threshold goes back to 64 MiB and free memory is returned to the OS.
    Process-wide and glibc-only; set ``AEKIT_MALLOC_TUNING=0`` to leave malloc alone.
    """
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    try:
        yield
    finally:
        if libc is not None:
            libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20)
            libc.malloc_trim(0)


# ----------------------------------------------------------------------------- CPU-shaped convolution


class _TapSum(torch.autograd.Function):
    """``y[:, o] = Σ_t shift_t(z[:, o·T + t])``: the spatial half of a k×k 'same' convolution.

    ``z`` (B, O·k², H, W) holds every input pixel's contribution through every kernel tap
    ``t = (i, j)``; the tap moves it to output pixel ``(h - i + p, w - j + p)``, ``p = k // 2``.
    Sums in float32 whatever the dtype of ``z`` (under bfloat16 autocast, nine bfloat16
    partial sums would lose precision).
    """

    @staticmethod
    def forward(ctx: object, z: torch.Tensor, k: int, out_channels: int) -> torch.Tensor:
        b, _, h, w = z.shape
        p = k // 2
        yp = torch.zeros(b, out_channels, h + 2 * p, w + 2 * p, dtype=torch.float32, device=z.device)
        for o in range(out_channels):
            for t in range(k * k):
                i, j = divmod(t, k)
                yp[:, o, 2 * p - i : 2 * p - i + h, 2 * p - j : 2 * p - j + w] += z[:, o * k * k + t]
        ctx.meta = (k, out_channels, z.dtype, tuple(z.shape))  # type: ignore[attr-defined]
        return yp[:, :, p : p + h, p : p + w].contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx: object, gy: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        k, out_channels, dtype, (b, c, h, w) = ctx.meta  # type: ignore[attr-defined]
        p = k // 2
        gp = nn.functional.pad(gy, (p, p, p, p))
        dz = torch.empty(b, h, w, c, dtype=dtype, device=gy.device)  # channels-last (B, T·O, H, W)
        for o in range(out_channels):
            for t in range(k * k):
                i, j = divmod(t, k)
                dz[..., o * k * k + t] = gp[:, o, 2 * p - i : 2 * p - i + h, 2 * p - j : 2 * p - j + w]
        return dz.permute(0, 3, 1, 2), None, None


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (stride 1, padding 'same'), optionally after nearest-neighbour
    up-sampling by ``upsample``, with a faster CPU path for few output channels.

    oneDNN's direct kernels are slow when a layer maps many channels to one (the conv
    AE's last layer, 32 → 1, was a large part of a CPU training step). There (odd
    kernel, ``out·k² ≤ in`` channels) the layer runs as a 1×1 convolution to ``out·k²``
    channels (one per output channel and kernel tap) followed by ``k²`` shifted sums:
    the same products summed in another order (equal to float tolerance), faster
    forward and backward (docs/performance.md#measurements-behind-the-defaults).
    Channel mixing commutes with nearest-neighbour up-sampling,
    so with ``upsample`` the 1×1 part runs on the small input and only its ``out·k²``
    channels are up-sampled. The weights, their shape and the state dict are those of
    ``nn.Conv2d``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, upsample: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding="same")
        self.upsample = upsample
        self.taps = kernel_size % 2 == 1 and out_channels * kernel_size**2 <= in_channels

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", upsample={self.upsample} (nearest, first)" if self.upsample > 1 else "")

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.upsample == 1 else nn.functional.interpolate(x, scale_factor=self.upsample, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.taps and x.device.type == "cpu"):
            return super().forward(self._up(x))
        k, o = self.kernel_size[0], self.out_channels
        w1 = self.weight.permute(0, 2, 3, 1).reshape(o * k * k, self.in_channels, 1, 1)  # [o·k²+t, c]
        z = self._up(nn.functional.conv2d(x, w1))  # (B, O·k², H, W)
        y = _TapSum.apply(z, k, o)
        return y if self.bias is None else y + self.bias.view(1, o, 1, 1).to(y.dtype)
