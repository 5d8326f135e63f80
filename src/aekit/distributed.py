"""Data parallelism: one model trained by several processes launched by ``torchrun``.

The estimators call ``setup`` in ``fit``: under ``torchrun`` (its ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and ``MASTER_ADDR`` environment variables, more than one process) it joins the
default process group (gloo on CPU, nccl on CUDA), and the fit then trains through PyTorch's
``DistributedDataParallel``: every rank reads its own part of every global batch
(``batches.shard``), DDP averages the gradients, and the loop reduces its loss sums, its
divergence check and its stop decisions across ranks (``all_sum``), so that every rank takes
the same decisions. Rank 0 alone writes files (``is_writer``).

``batch_size`` stays the global batch: a rank's loss is its part's mean, weighted by
``world_size * part / global batch`` (``ddp_step``) so that DDP's average of the ranks'
gradients is the gradient of the global batch's mean, also for a last batch that does not
split evenly. A 2-rank run thus ends within float tolerance of the 1-process run with the same
seed (tested), for models without random layers (noise, dropout and a variational code draw
on each rank).

Failures: a rank that dies closes its connections, and the others' next collective fails at
once; ``guard`` turns that failure into one ``DistributedError`` line. A rank that hangs while
alive is noticed after ``TIMEOUT`` seconds (the process group's timeout; ``AEKIT_DDP_TIMEOUT``
overrides it, e.g. for a slow first pass over a large file on one rank).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import logging
import os
import re
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from aekit._utils import AekitError, InputError, LossFn, Step

log = logging.getLogger(__name__)

__all__ = [
    "TIMEOUT",
    "DistributedError",
    "launch_command",
    "launcher_main",
    "without_flag",
    "Env",
    "all_sum",
    "barrier",
    "ddp_step",
    "from_env",
    "guard",
    "is_distributed",
    "is_writer",
    "rank",
    "setup",
    "world_size",
    "wrap",
]

#: seconds a collective waits for a rank that is alive but stuck before every rank fails (a dead rank is noticed
#: at once: its connections close)
TIMEOUT = 60.0


class DistributedError(AekitError, RuntimeError):
    """Another rank of a data-parallel run failed or stopped; this rank stopped too."""


@dataclass(frozen=True)
class Env:
    """This process's place in a ``torchrun`` launch."""

    rank: int
    world_size: int
    local_rank: int


def from_env(environ: Mapping[str, str]) -> Env | None:
    """The ``torchrun`` launch described by ``environ`` (``os.environ``), or None outside one (or with one process).

    A launch sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; without all four (e.g. a
    scheduler that sets only some of them) this process trains alone. Raises ``InputError`` for values
    that no launcher writes (not integers, rank out of range).
    """
    if not all(k in environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")):
        return None
    try:
        env = Env(int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ.get("LOCAL_RANK", environ["RANK"])))
    except ValueError:
        raise InputError(
            f"RANK={environ['RANK']!r}, WORLD_SIZE={environ['WORLD_SIZE']!r} are not integers; launch with torchrun "
            "(or unset them for one process)"
        ) from None
    if env.world_size < 1 or not 0 <= env.rank < env.world_size or env.local_rank < 0:
        raise InputError(
            f"RANK={env.rank} (LOCAL_RANK={env.local_rank}) is not a rank of WORLD_SIZE={env.world_size}; "
            "launch with torchrun (or unset them for one process)"
        )
    return None if env.world_size == 1 else env


def _dist_ok() -> bool:
    return torch.distributed.is_available()


def is_distributed() -> bool:
    """Whether this process is one of several of a data-parallel run (the process group is up)."""
    return _dist_ok() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a data-parallel run)."""
    return torch.distributed.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes of the run (1 outside a data-parallel run)."""
    return torch.distributed.get_world_size() if is_distributed() else 1


def is_writer() -> bool:
    """Whether this process writes the files (models, checkpoints): rank 0, or the only process."""
    if is_distributed():
        return rank() == 0
    env = from_env(os.environ) if _dist_ok() else None
    return env is None or env.rank == 0  # under torchrun before fit joined the group


def _timeout() -> float:
    value = os.environ.get("AEKIT_DDP_TIMEOUT")
    if value is None:
        return TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise InputError(f"AEKIT_DDP_TIMEOUT={value!r} must be a positive number of seconds; unset it for {TIMEOUT:g}")
    return seconds


def setup(device: torch.device) -> torch.device:
    """Join the ``torchrun`` launch if this process is part of one; returns the device this rank trains on.

    Outside a launch (or with one process) it returns ``device`` and does nothing else. Under one it
    initialises the default process group unless the caller did (gloo on CPU, nccl on CUDA, the
    timeout ``TIMEOUT``), and a CUDA device without an index becomes ``cuda:LOCAL_RANK``.
    """
    if is_distributed():
        return _local(device, torch.distributed.get_rank())
    env = from_env(os.environ) if _dist_ok() else None
    if env is None:
        return device
    device = _local(device, env.local_rank)
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group(backend, timeout=datetime.timedelta(seconds=_timeout()))
        atexit.register(_leave_at_exit)
        log.info("rank %d of %d joined the process group (%s)", env.rank, env.world_size, backend)
    return device


def _local(device: torch.device, local_rank: int) -> torch.device:
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
    return device


def leave_together() -> None:
    """Leave the process group once every rank is done: after a run that ended well on every rank.

    A rank that tore its group down while a peer's still ran was, once in some ten test runs, aborted by
    gloo at exit ("terminate called without an active exception"; SIGABRT) after a complete run. Not on
    failure paths: a rank that failed never arrives, and the launcher stops the others.
    """
    if is_distributed():
        torch.distributed.barrier()
        _leave()


#: seconds a script's rank waits at exit for the others (gloo) before leaving the group alone
EXIT_WAIT = 120.0


def _leave_at_exit() -> None:
    """A script's exit under ``torchrun``: after a normal end, ``leave_together`` (bounded by ``EXIT_WAIT``), so
    that a rank that finished first does not tear the group down under rank 0 still saving; after an uncaught
    exception (``sys.last_value``, set before exit handlers run), leave at once: the launcher stops the others.

    gloo only: nccl has no barrier with a timeout, and the abort this avoids was seen with gloo.
    """
    if torch.distributed.is_initialized() and getattr(sys, "last_value", None) is None:
        with contextlib.suppress(Exception):  # a peer gone or late: leave alone, as before
            if torch.distributed.get_backend() == "gloo":
                torch.distributed.monitored_barrier(timeout=datetime.timedelta(seconds=EXIT_WAIT))
    _leave()


def _leave() -> None:
    if torch.distributed.is_initialized():
        try:
            torch.distributed.destroy_process_group()
        except Exception:  # a peer already gone: nothing to tidy
            pass


def all_sum(values: Mapping[str, torch.Tensor | float]) -> dict[str, torch.Tensor]:
    """Each value (a number or a tensor, e.g. a loss sum or a sample count) summed over the ranks.

    One collective for all of them (in float64: counts beyond float32's integers stay exact); the
    results have the inputs' shapes, on the first tensor's device, in float64.
    """
    device = next((v.device for v in values.values() if isinstance(v, torch.Tensor)), torch.device("cpu"))
    parts = [torch.as_tensor(v, device=device).detach().to(torch.float64).reshape(-1) for v in values.values()]
    flat = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64, device=device)
    if is_distributed():
        torch.distributed.all_reduce(flat)
    out, i = {}, 0
    for (k, v), p in zip(values.items(), parts, strict=True):
        out[k] = flat[i : i + p.numel()].reshape(torch.as_tensor(v).shape)
        i += p.numel()
    return out


def barrier() -> None:
    """Wait until every rank gets here (nothing outside a data-parallel run)."""
    if is_distributed():
        torch.distributed.barrier()


def wrap(net: nn.Module, device: torch.device) -> nn.Module:
    """``net`` inside ``DistributedDataParallel`` (rank 0's weights broadcast to all ranks)."""
    ids = [device] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids)


def ddp_step(loss_fn: LossFn, optimizer: torch.optim.Optimizer, global_sizes: Sequence[int]) -> Step:
    """The training step under DDP: each rank's loss weighted so that the averaged gradient is the global batch's.

    ``global_sizes``: the size of every global batch of an epoch, in order (the loop calls the step once
    per batch, epochs always from their first batch). ``loss_fn``'s forward goes through ``wrap``'s module.
    """
    sizes = list(global_sizes)
    count = [0]
    w = world_size()

    def step(batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        global_batch = sizes[count[0] % len(sizes)]
        count[0] += 1
        losses = loss_fn(batch, True)
        optimizer.zero_grad(set_to_none=True)
        (losses["loss"] * (batch[0].shape[0] * w / global_batch)).backward()  # DDP divides the sum by w
        optimizer.step()
        return losses

    return step


@contextmanager
def guard() -> Iterator[None]:
    """Turn a collective that failed because another rank died or stopped into one ``DistributedError`` line."""
    try:
        yield
    except DistributedError:
        raise
    except RuntimeError as exc:
        if not (is_distributed() and _peer_failure(exc)):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = re.sub(r"^\[[^\]]*\] ", "", first).split(". ")[0]  # gloo's "[file.cc:553] " prefix
        raise DistributedError(
            f"rank {rank()} of {world_size()} stopped: another rank failed or was stopped ({first[:120]}); "
            "see that rank's message"
        ) from None


def _peer_failure(exc: BaseException) -> bool:
    dist_error = getattr(torch.distributed, "DistError", None)
    if dist_error is not None and isinstance(exc, dist_error):
        return True
    text = str(exc)
    return any(s in text for s in ("gloo", "Gloo", "NCCL", "Connection closed", "Connection reset", "timed out"))


# ----------------------------------------------------------------------------- launching (aekit train --nproc)


def without_flag(argv: Sequence[str], flag: str) -> list[str]:
    """``argv`` without ``flag`` and its value (``--flag N``, ``--flag=N``, or an abbreviation argparse accepts)."""
    out: list[str] = []
    skip = False
    for token in argv:
        if skip:
            skip = False
            continue
        name = token.split("=", 1)[0]
        if len(name) > 2 and name.startswith("--") and flag.startswith(name):
            skip = "=" not in token
            continue
        out.append(token)
    return out


def launch_command(nproc: int, argv: Sequence[str]) -> list[str]:
    """The command that runs ``aekit <argv>`` on ``nproc`` local processes through ``torch.distributed.run``.

    It is ``python -m torch.distributed.run --standalone --nproc-per-node N -m aekit <argv>``, run by
    ``launcher_main`` (one line instead of the launcher's traceback when a rank fails).
    """
    return [
        sys.executable,
        "-c",
        "from aekit.distributed import launcher_main; launcher_main()",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "aekit",
        *argv,
    ]


#: exit codes of a rank stopped because another failed: the launcher's SIGTERM (-15, or 130/143 where the rank
#: turned it into an exit), gloo's abort at teardown under a dead peer (SIGABRT, -6)
_CONSEQUENCES = (-signal.SIGTERM, -signal.SIGABRT, 130, 143)


def _cause(exc: Any) -> tuple[int, Any]:
    """The failed rank to name: torchrun's first failure (by time, in whole seconds for ranks that left no error
    file), but among failures of the same second one that is no consequence of another's (a CI run named rank 0,
    aborted at teardown after its peer's exit code 3, as the failed rank)."""
    first, failure = exc.get_first_failure()
    same_time = sorted(r for r, f in exc.failures.items() if f.timestamp == failure.timestamp)
    causes = [r for r in same_time if exc.failures[r].exitcode not in _CONSEQUENCES]
    return (causes[0], exc.failures[causes[0]]) if causes else (first, failure)


def launcher_main(argv: Sequence[str] | None = None) -> None:
    """``torch.distributed.run``'s ``main`` (torchrun), ending with one line and the failed rank's exit code.

    A failed rank has already shown its own message; the launcher's ``ChildFailedError`` traceback
    would only repeat it, so it becomes ``aekit: error: rank R failed (exit code C)``. Ctrl-C: 130.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main

    if "LOGLEVEL" not in os.environ:  # torchrun's own lines (SIGTERM sent, a rank's exit code) repeat aekit's last
        logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        main(list(sys.argv[1:] if argv is None else argv))
    except ChildFailedError as exc:
        first, failure = _cause(exc)
        code = failure.exitcode
        if code in (130, -2):
            sys.exit(130)
        if code < 0:  # killed by a signal: no message of its own (SIGKILL: often the out-of-memory killer)
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            oom = "; the system's out-of-memory killer sends SIGKILL" if name == "SIGKILL" else ""
            print(f"aekit: error: rank {first} was killed by {name}{oom}", file=sys.stderr)
        else:
            print(f"aekit: error: rank {first} failed (exit code {code}); its message is above", file=sys.stderr)
        sys.exit(code if 0 < code < 256 else 1)
    except (KeyboardInterrupt, SignalException):
        print("aekit: interrupted", file=sys.stderr)
        sys.exit(130)
