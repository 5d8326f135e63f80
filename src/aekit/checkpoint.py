"""Resumable training checkpoints: weights, optimizer, loop state and RNG in one safetensors file.

Written atomically after every epoch; nothing is unpickled when loading. On CPU a
run interrupted and resumed from its checkpoint ends bitwise identical to an
uninterrupted one (tested).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aekit._utils import ModelFileError, atomic_path, read_safetensors
from aekit.training import LoopState

CHECKPOINT_FORMAT = 1


def save_checkpoint(
    path: str | os.PathLike[str], net: nn.Module, optimizer: torch.optim.Optimizer, state: LoopState, params: dict[str, Any],
    seed: int | None = None,
) -> None:
    """``seed``: the integer seed the run drew (from ``random_state=None`` too): a resumed run reuses it,
    so that its validation split is the same one."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    opt = optimizer.state_dict()
    for idx, st in opt["state"].items():
        for key, value in st.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"opt.{idx}.{key}"] = t.detach().cpu().reshape(-1).clone() if t.dim() == 0 else t.detach().cpu().clone(memory_format=torch.contiguous_format)  # a copy: state may be views of flat buffers or channels-last
    if state.best_weights is not None:
        tensors.update({f"best.{k}": v.cpu().contiguous() for k, v in state.best_weights.items()})
    tensors["rng.cpu"] = torch.get_rng_state()
    meta = {
        "aekit_checkpoint": str(CHECKPOINT_FORMAT),
        "params": json.dumps(params),
        "seed": json.dumps(seed),
        "param_groups": json.dumps(opt["param_groups"]),
        "scalar_keys": json.dumps(sorted({f"opt.{i}.{k}" for i, st in opt["state"].items() for k, v in st.items() if not isinstance(v, torch.Tensor) or v.dim() == 0})),
        "loop": json.dumps(
            {
                "epoch": state.epoch,
                "history": state.history,
                "best_score": state.best_score if state.best_score != float("inf") else None,
                "best_epoch": state.best_epoch,
                "wait": state.wait,
                "plateau_wait": state.plateau_wait,
                "plateau_best": state.plateau_best if state.plateau_best != float("inf") else None,
            }
        ),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_checkpoint(
    path: str | os.PathLike[str], net: nn.Module, optimizer: torch.optim.Optimizer, *, expected_params: dict[str, Any] | None = None
) -> LoopState:
    """Restore ``net``, ``optimizer`` and torch's CPU RNG in place; return the loop state."""
    p = Path(path)
    meta, tensors = read_safetensors(p, "checkpoint", "train with checkpoint_path=... first (the CLI writes --out/checkpoint.safetensors), or train from the start")
    fmt = meta.get("aekit_checkpoint")
    if fmt is None:
        what = "a model file (load it with aekit.load)" if "aekit_format" in meta else "a safetensors file without aekit checkpoint metadata"
        raise ModelFileError(f"{p}: expected an aekit training checkpoint, found {what}; pass the checkpoint.safetensors written during training")
    if fmt != str(CHECKPOINT_FORMAT):
        raise ModelFileError(f"{p}: checkpoint format {fmt!r}, this aekit reads format {CHECKPOINT_FORMAT}; resume with the aekit that wrote it, or train from the start")
    inf = float("inf")
    try:
        params = json.loads(meta["params"])
        loop = json.loads(meta["loop"])
        groups = json.loads(meta["param_groups"])
        scalar_keys = set(json.loads(meta["scalar_keys"]))
        state = LoopState(
            epoch=int(loop["epoch"]),
            history={k: list(v) for k, v in loop["history"].items()},
            best_score=inf if loop["best_score"] is None else float(loop["best_score"]),
            best_epoch=int(loop["best_epoch"]),
            wait=int(loop["wait"]),
            plateau_wait=int(loop["plateau_wait"]),
            plateau_best=inf if loop["plateau_best"] is None else float(loop["plateau_best"]),
        )
        opt_state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, idx, key = k.split(".", 2)
                opt_state.setdefault(int(idx), {})[key] = v.reshape(()) if k in scalar_keys else v
        if not isinstance(params, dict) or not isinstance(groups, list) or state.epoch < 0:
            raise ValueError("params, param_groups or the epoch count have the wrong type")
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:  # json.JSONDecodeError is a ValueError
        raise ModelFileError(f"{p}: corrupted checkpoint metadata ({exc}); delete it and train from the start") from exc
    if expected_params is not None:
        changed = {k for k in expected_params if k not in ("epochs", "verbose", "device", "compile", "precision", "checkpoint_path") and params.get(k) != expected_params[k]}
        if changed:
            raise ModelFileError(f"{p}: checkpoint was written with different parameters {sorted(changed)}; resume with the same settings")
    # everything is checked before anything is changed: a bad file leaves net, optimizer and RNG as they were
    rng = tensors.get("rng.cpu")
    if rng is None or rng.dtype != torch.uint8 or rng.shape != torch.get_rng_state().shape:
        raise ModelFileError(f"{p}: missing or malformed random-number state; the checkpoint is corrupted, train from the start")
    for k, v in tensors.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ModelFileError(f"{p}: tensor {k} holds NaN or inf values; the checkpoint is corrupted, train from the start")
    device = next(net.parameters()).device
    net_state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
    expected = net.state_dict()
    missing, extra = set(expected) - set(net_state), set(net_state) - set(expected)
    bad = [k for k in set(expected) & set(net_state) if net_state[k].shape != expected[k].shape or net_state[k].dtype != expected[k].dtype]
    if missing or extra or bad:
        raise ModelFileError(
            f"{p}: checkpoint weights do not fit this model (missing {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}, "
            f"wrong shape or dtype {sorted(bad)[:5]}); resume with the parameters that wrote it"
        )
    saved_opt = optimizer.state_dict()
    for group, current in zip(groups, saved_opt["param_groups"], strict=False):
        # how the update is computed follows this run's optimizer, not the writer's (a GPU run's fused or
        # capturable Adam resumed on a CPU); the hyperparameters and state come from the checkpoint
        for key in ("fused", "foreach", "capturable", "differentiable"):
            if isinstance(group, dict) and key in current:
                group[key] = current[key]
    try:
        optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        optimizer.load_state_dict(saved_opt)
        raise ModelFileError(f"{p}: optimizer state does not fit this model ({exc}); resume with the same optimizer settings") from exc
    net.load_state_dict(net_state)
    state.best_weights = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")} or None
    torch.set_rng_state(rng)
    return state


def checkpoint_seed(path: str | os.PathLike[str]) -> tuple[int | None, Any]:
    """``(seed, random_state)`` of the run that wrote a checkpoint: the integer seed it drew (stored since
    checkpoints have a "seed" entry; before, known only when its random_state was an int) and its
    ``random_state`` parameter as stored. ``(None, None)`` for a file that is not a readable checkpoint:
    ``load_checkpoint`` reports what is wrong with it."""
    from safetensors.torch import safe_open

    def seed_or_none(v: Any) -> int | None:
        return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
        random_state = json.loads(meta.get("params", "{}")).get("random_state")
        seed = seed_or_none(json.loads(meta.get("seed", "null")))
    except Exception:  # noqa: BLE001 - any unreadable file: load_checkpoint says why
        return None, None
    return (seed_or_none(random_state) if seed is None else seed), random_state


def checkpoint_callback(
    path: str | os.PathLike[str], net: nn.Module, optimizer: torch.optim.Optimizer, get_state: Callable[[], LoopState], params: dict[str, Any],
    seed: int | None = None,
) -> Callable[[int, dict[str, float]], None]:
    """A training callback that writes a checkpoint at the end of every epoch."""

    def callback(epoch: int, logs: dict[str, float]) -> None:
        save_checkpoint(path, net, optimizer, get_state(), params, seed)

    return callback
