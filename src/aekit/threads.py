"""How many CPU threads aekit computes with, and how they wait for each other.

Two settings, both chosen so that the same seed gives the same numbers as before:

- **How threads wait** (decided once, before PyTorch loads). PyTorch's CPU kernels, MKL and
  oneDNN share one OpenMP (libgomp) thread team. At the end of every parallel region a thread that
  finishes first spins until its partner is done, by default for milliseconds. On an idle machine
  that keeps the threads hot between the many small regions of a step. When other processes keep
  the cores busy, the partner is often descheduled and the spinning thread burns its time slice
  waiting for it, region after region (benchmarks/results/contention.md). A bounded spin
  (``GOMP_SPINCOUNT``) then sleeps instead. libgomp reads its environment once, when it is loaded
  (``import torch``), so ``configure_openmp`` runs from ``aekit/__init__``: when torch is not loaded
  yet and the user set neither ``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT``, it bounds the spin if the
  machine is busy *now*: the tasks runnable besides this one reach the cores aekit's threads
  would share. An idle machine keeps libgomp's default. How threads wait changes no arithmetic.
- **How many threads** (per ``fit`` and inference call): at most the cores this process may use:
  its CPU affinity and, in a container, the cgroup CPU quota (PyTorch counts the host's cores,
  so in a container limited to 2 CPUs on a 64-core host it would start 32 or 64 threads). Never
  more than PyTorch's current count, so ``torch.set_num_threads``, ``OMP_NUM_THREADS`` and joblib's
  limit for its workers (``GridSearchCV(n_jobs=...)`` gives each worker ``cores // n_jobs``) are kept.
  The count depends on the machine's configuration, never on its momentary load: the thread
  count changes results in the last bits (oneDNN splits a convolution's weight gradient over the
  batch by thread, MKL's products and full reductions such as the loss split by thread), so a
  count chosen from the load would make the same seed give other numbers on a busy machine.

``AEKIT_THREADS`` overrides the count: ``auto`` (default), a number, or ``torch`` (leave PyTorch's
count alone). ``AEKIT_OMP_SPIN`` overrides the wait: ``auto`` (default: bounded when busy), ``1``
(always bounded) or ``0`` (leave the OpenMP environment alone). See docs/performance.md.
Imports nothing from aekit at import time and not torch (this runs before torch is loaded).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

#: libgomp spin iterations before a waiting thread sleeps (libgomp's own default is far higher); A/B runs in
#: benchmarks/results/contention.md
SPINCOUNT = 1000
CGROUP = Path("/sys/fs/cgroup")


def openmp_env(environ: Mapping[str, str], torch_loaded: bool, busy: Callable[[], bool]) -> dict[str, str]:
    """The variables ``configure_openmp`` adds to ``environ``: a bounded spin when ``busy()``, unless too late
    or set by the user. ``AEKIT_OMP_SPIN``: "auto" (default), "1" (bounded whatever the load), "0" (nothing)."""
    setting = environ.get("AEKIT_OMP_SPIN", "auto").strip().lower() or "auto"
    if torch_loaded or setting in ("0", "off", "false", "no"):
        return {}
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        return {}
    if setting == "auto" and not busy():
        return {}
    return {"GOMP_SPINCOUNT": str(SPINCOUNT)}


def own_runnable(tasks: Path = Path("/proc/self/task")) -> int:
    """This process's threads that are running or runnable now (at least 1: the caller)."""
    try:
        states = [(t / "stat").read_text().rsplit(")", 1)[1].split()[0] for t in tasks.iterdir()]
    except (OSError, IndexError):
        return 1
    return max(1, states.count("R"))


def others_runnable(
    at_least: float,
    loadavg: Path = Path("/proc/loadavg"),
    window_s: float = 0.05,
    own: Callable[[], int] = own_runnable,
) -> float | None:
    """The fewest tasks runnable besides this process over ``window_s`` (reads 5 ms apart); None without /proc.

    Reading stops at the first count below ``at_least``, so an idle machine costs one read, and a
    passing task (a shell command, a monitor's probe) does not make the machine busy. Not the load
    average: it lags by a minute, counting the work that has just ended (often the user's own
    previous step) and missing a competitor started seconds ago. This process's own threads are not
    others: numpy's BLAS threads, just started by ``import numpy``, made an idle machine look busy.
    """
    fewest: int | None = None
    deadline = time.monotonic() + window_s
    while True:
        try:
            n = int(loadavg.read_text().split()[3].split("/")[0]) - own()  # "R/T": R counts this process's threads
        except (OSError, ValueError, IndexError):
            break
        fewest = n if fewest is None else min(fewest, n)
        if fewest < at_least or time.monotonic() >= deadline:
            break
        time.sleep(0.005)
    return None if fewest is None else float(max(0, fewest))


#: what ``configure_openmp`` saw and chose, for whoever asks why a run waits as it does (benchmarks do)
OPENMP_CHOICE: dict[str, object] = {}


def machine_busy(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the tasks runnable besides this one reach the cores aekit's threads would use: a spinning
    thread would then wait for a descheduled partner. Threads: the usable cores, or ``OMP_NUM_THREADS``."""
    threads = available_cores()
    with contextlib.suppress(ValueError):
        threads = min(threads, max(1, int(environ.get("OMP_NUM_THREADS", "").split(",")[0])))
    spare = max(0, (os.cpu_count() or threads) - threads)
    others = others_runnable(at_least=spare + 0.5)
    if others is None:  # no /proc (macOS): the 1-minute load average stands in
        with contextlib.suppress(AttributeError, OSError):
            others = os.getloadavg()[0]
    OPENMP_CHOICE.update(others_runnable=others, threads=threads, cpus=os.cpu_count())
    return others is not None and others >= spare + 0.5


def configure_openmp() -> None:
    """Bound OpenMP's spin-waiting for this process and its children when the machine is busy (see the module
    doc); called once, before torch loads."""
    added = openmp_env(os.environ, "torch" in sys.modules, machine_busy)
    os.environ.update(added)
    OPENMP_CHOICE["GOMP_SPINCOUNT"] = os.environ.get("GOMP_SPINCOUNT")  # None: libgomp's default
    OPENMP_CHOICE["set_by_aekit"] = bool(added)


def cgroup_cpus(root: Path = CGROUP, self_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in cores (``cpu.max`` of cgroup v2, or v1's CFS quota); None: none."""
    dirs = [root]
    with contextlib.suppress(OSError):
        for line in self_cgroup.read_text().splitlines():
            if line.startswith("0::"):  # cgroup v2: this process's own group, then the root
                dirs.insert(0, root / line[3:].strip().lstrip("/"))
    for d in dirs:
        with contextlib.suppress(OSError, ValueError):
            quota, period = (d / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
    with contextlib.suppress(OSError, ValueError):
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    return None


def available_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota (at least 1)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        n = os.cpu_count() or 1
    quota = cgroup_cpus()
    if quota is not None:
        n = min(n, max(1, math.floor(quota)))  # 1.5 CPUs: one thread never waits for a descheduled partner
    return max(1, n)


def choose_threads(current: int, cores: int, setting: str = "auto") -> int | None:
    """The thread count for a fit or an inference call; None: leave PyTorch's ``current`` count.

    ``setting`` is ``AEKIT_THREADS``: "auto" (``min(current, cores)``), a positive integer, or "torch".
    """
    from aekit._utils import InputError  # not at import: _utils loads torch, and this module runs before it

    setting = setting.strip().lower() or "auto"
    if setting == "torch":
        return None
    if setting == "auto":
        return max(1, min(current, cores))
    if setting.isascii() and setting.isdigit() and 1 <= int(setting) <= MAX_THREADS:  # ("²" is a digit too)
        return int(setting)
    raise InputError(
        f"AEKIT_THREADS={setting!r} must be 'auto', 'torch' or an integer in [1, {MAX_THREADS}]; unset it for 'auto'"
    )


#: the most threads AEKIT_THREADS may ask for (far beyond any machine's cores; torch overflows near 2**63)
MAX_THREADS = 4096


def threads_for_run() -> int | None:
    """``choose_threads`` for this process now: PyTorch's count, the available cores, ``AEKIT_THREADS``."""
    import torch

    return choose_threads(torch.get_num_threads(), available_cores(), os.environ.get("AEKIT_THREADS", "auto"))


@contextlib.contextmanager
def using_threads(n: int | None) -> Iterator[None]:
    """PyTorch computes with ``n`` threads inside the block (None: unchanged); the count is restored after."""
    import torch

    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere what ``platform`` knows)."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def numerics() -> str:
    """What decides a seeded CPU run's last bits here: CPU model, kernel instruction set, thread count.

    The same seed gives the same numbers only where all three match: MKL and PyTorch pick their
    kernels by instruction set (AVX2, AVX-512), and the kernels and the thread count set the order
    of the additions in products and sums. Training amplifies a last-bit difference, so a 20-epoch
    run on another CPU type lands near, not on, the same numbers.
    """
    import torch

    n = threads_for_run() or torch.get_num_threads()
    return f"{cpu_model()}, {torch.backends.cpu.get_cpu_capability()} kernels, {n} thread{'s' * (n != 1)}"
