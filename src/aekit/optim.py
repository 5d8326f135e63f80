"""Optimizers with Keras defaults: ``KerasRMSprop`` (the reference's RMSprop) and ``make_optimizer``.

``KerasRMSprop`` has three update paths: flat (whole-model buffers), compiled (one
``torch.compile`` kernel, ``fused=True``) and bfloat16 working copies
(``working_dtype``). Which one a fit uses is decided by ``aekit.accel.plan``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from aekit._utils import InputError, capturing, caused_by_interrupt

log = logging.getLogger(__name__)


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
    bit, without its per-step weight casts and gradient up-casts (measured:
    docs/performance.md#measurements-behind-the-defaults). Masters must change in place under ``torch.no_grad()``
    or through ``load_state_dict`` (which bump their version); ``.data`` edits are not seen.
    Gradients must arrive on the copies: a master with a gradient is an error.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        eps: float = 1e-7,
        *,
        fused: bool = False,
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
                "compute the loss from working_params() (e.g. torch.func.functional_call) "
                "so gradients reach the working copies"
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

    def _flat(self, group: dict[str, Any], params: list[torch.Tensor]) -> dict[str, Any]:
        """Flat state buffers for ``params``, (re)built when the per-parameter state is not their view."""
        keys = ["velocity"] + (["momentum"] if group["momentum"] > 0 else [])
        flat: dict[str, Any] | None = group.get("_flat")  # tensors, and "n" / "sizes" to check them against
        first = self.state[params[0]]
        if (
            flat is not None
            and flat["n"] == len(params)
            and all(k in first and k in flat and first[k].data_ptr() == flat[k].data_ptr() for k in keys)
        ):
            return flat
        sizes = [p.numel() for p in params]
        flat = {"n": len(params), "sizes": sizes}
        for k in keys:
            parts = [
                self.state[p][k].reshape(-1)
                if k in self.state[p]
                else torch.zeros(p.numel(), dtype=p.dtype, device=p.device)
                for p in params
            ]
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
            g = torch.cat(
                [gp.reshape(-1) for p in params if (gp := self._grad(p)) is not None]
            ).float()  # (P,) one copy (a no-op cast in float32)
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
            torch._foreach_sub_(
                params, [u.view_as(p) for u, p in zip(update.split(flat["sizes"]), params, strict=True)]
            )
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
            _compiled_rmsprop()(
                params, grads, vs, bufs, copies, lr, float(group["rho"]), float(group["momentum"]), float(group["eps"])
            )
        except Exception as exc:  # compilation problems surface here, before anything is updated
            if caused_by_interrupt(exc):  # Ctrl-C / SIGTERM that the compiler turned into its own error
                raise KeyboardInterrupt from exc
            if capturing():  # the CUDA graph capture falls back as a whole
                raise
            log.warning(
                "compiled RMSprop step failed (%s: %s); continuing with the eager step", type(exc).__name__, exc
            )
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
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    vs: list[torch.Tensor],
    bufs: list[torch.Tensor],
    copies: list[torch.Tensor],
    lr: torch.Tensor,
    rho: float,
    momentum: float,
    eps: float,
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


OPTIMIZERS = ("rmsprop", "adam", "adamw", "sgd")


def make_optimizer(
    name: str,
    params: Any,
    lr: float,
    momentum: float = 0.0,
    *,
    fused: bool = False,
    working_dtype: torch.dtype | None = None,
) -> torch.optim.Optimizer:
    """Optimizers with Keras defaults (eps=1e-7). ``momentum`` applies to rmsprop and sgd.

    ``fused``: RMSprop's update compiled into one kernel; Adam/AdamW use PyTorch's fused kernels.
    ``working_dtype``: RMSprop only, see ``KerasRMSprop``.
    """
    if working_dtype is not None and name != "rmsprop":
        raise InputError(f"working_dtype is supported by optimizer='rmsprop' only, not {name!r}")
    if name == "rmsprop":
        return KerasRMSprop(
            params, lr=lr, rho=0.9, momentum=momentum, eps=1e-7, fused=fused, working_dtype=working_dtype
        )
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
