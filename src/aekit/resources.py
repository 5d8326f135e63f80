"""Will a network fit in memory? An estimate made before anything is allocated, and the memory there is.

The network is built on PyTorch's ``meta`` device (shapes only, no storage), so the parameter
count is exact for every architecture; activations are counted from the layer sizes. Training keeps,
per parameter, the weight, its gradient and up to two optimizer buffers; per activation, the saved
output and its gradient.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch

from aekit._utils import InputError
from aekit.modules import _image_shape, build_net

_PARAM_COPIES = 4  # weight, gradient, two optimizer buffers (Adam's moments; RMSprop's square average and momentum)
_ACTIVATION_COPIES = 2  # the output kept for backward, and its gradient
_FLOAT_BYTES = 4


class Estimate(NamedTuple):
    """Bytes training needs, by what needs them."""

    parameters: int  # weights, gradients, optimizer state
    activations: int  # one batch's layer outputs and their gradients
    data: int  # the training data copied to the device (0 on CPU: training reads the caller's array)

    @property
    def total(self) -> int:
        return self.parameters + self.activations + self.data


def _activations_per_sample(kw: Mapping[str, Any]) -> int:
    """Layer outputs of one sample through encoder, decoder and head (each kept with its activation's)."""
    n_features = int(kw["n_features"])
    per_layer = 2 + bool(kw.get("batchnorm")) + bool(kw.get("dropout"))  # linear/conv, activation, BatchNorm, dropout
    code = kw.get("n_components")
    head = [*kw.get("head_layer_sizes", ()), kw["n_classes"]] if kw.get("n_classes") else []
    if kw.get("architecture", "dense") == "conv":
        filters = list(kw.get("conv_filters", (32, 16)))
        c, h, w = _image_shape(kw.get("image_shape"), n_features, filters)
        # per level: conv, activation, pooling (and BatchNorm) in the encoder; the decoder mirrors it
        levels = sum(f * (h * w // 4**i) for i, f in enumerate(filters))
        flat = filters[-1] * (h >> len(filters)) * (w >> len(filters))
        widths = [2 * flat, *([code, code] if code else [])]
        return (per_layer + 2) * levels + c * h * w + 2 * sum(widths) + per_layer * sum(head) + n_features
    hidden = list(kw.get("hidden_layer_sizes", (500, 300, 100)))
    widths = [*hidden, code or 0, *reversed(hidden), n_features]
    return per_layer * (sum(widths) + sum(head)) + n_features


def estimate_training_bytes(
    net_kwargs: Mapping[str, Any], batch: int, device: torch.device, data_bytes: int
) -> Estimate:
    """Memory that training a ``build_net(**net_kwargs)`` network on ``batch``-sample batches needs (about).

    Parameters
    ----------
    net_kwargs : mapping
        ``build_net``'s keyword arguments (``n_features``, layer sizes, ...).
    batch : int
        Samples per step.
    device : torch.device
        Where training runs; on an accelerator the data (``data_bytes``) is copied there too.
    """
    # the parameter count is exact: the network built on the meta device (shapes only, nothing allocated;
    # a meta *forward* would cost seconds of PyTorch start-up, so activations are counted from the sizes)
    with torch.random.fork_rng(devices=[]), torch.device("meta"):  # leave the caller's RNG as found
        n_params = sum(p.numel() for p in build_net(**net_kwargs).parameters())
    return Estimate(
        parameters=n_params * _FLOAT_BYTES * _PARAM_COPIES,
        activations=batch * _activations_per_sample(net_kwargs) * _FLOAT_BYTES * _ACTIVATION_COPIES,
        data=0 if device.type == "cpu" else int(data_bytes),
    )


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    """What a cgroup (v2) memory limit leaves, inside a container; None without one."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
    except OSError:
        return None
    if not limit.isdigit() or not used.isdigit():  # "max": no limit
        return None
    return max(0, int(limit) - int(used))


def available_bytes(device: torch.device) -> int | None:
    """Free memory for training on ``device`` (None: unknown, e.g. MPS)."""
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    if device.type != "cpu":
        return None
    known = [b for b in (_meminfo_available(), _cgroup_available()) if b is not None]
    return min(known) if known else None


def _size(n: int) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e3:.1f} kB"


def check_memory(
    net_kwargs: Mapping[str, Any], batch_size: int, n_samples: int, device: torch.device, data_bytes: int
) -> Estimate:
    """Refuse up front a training run whose network would not fit in ``device``'s free memory.

    Raises
    ------
    InputError
        With the estimate and what is free; ``param`` names the parameter to lower (the layer sizes
        when the weights dominate, ``batch_size`` when the activations do).
    """
    est = estimate_training_bytes(net_kwargs, min(batch_size, max(1, n_samples)), device, data_bytes)
    free = available_bytes(device)
    if free is None or est.total <= free:
        return est
    sizes = "conv_filters" if net_kwargs.get("architecture") == "conv" else "hidden_layer_sizes"
    param = sizes if est.parameters >= est.activations else "batch_size"
    fix = f"use smaller {{{sizes}}} or {{n_components}}" if param == sizes else "use a smaller {batch_size}"
    values: dict[str, Any] = {
        sizes: tuple(net_kwargs.get(sizes) or ()),
        "n_components": net_kwargs.get("n_components"),
        "batch_size": batch_size,
    }
    raise InputError(
        f"training this network needs about {_size(est.total)} (weights, gradients and optimizer state "
        f"{_size(est.parameters)}, activations of one batch {_size(est.activations)}"
        + (f", data {_size(est.data)}" if est.data else "")
        + f") but {device.type} has {_size(free)} free; {fix}",
        param=param,
        values=values,
    )
