"""Where the float32 training step's time goes: matrix products, optimizer update, the rest.

The dense AE and the SAE step as a reference-length ``fit`` runs it on the CPU (eager forward and
backward, the RMSprop update compiled into one kernel), profiled with ``torch.profiler`` over
``--steps`` steps after a warm-up. The matrix products are what ``benchmarks/speed.py``'s floor
times; the update's memory floor is the bytes any RMSprop must move (read weight, gradient and
velocity, write weight and velocity: 20 bytes per weight) at the bandwidth this machine gives a
bare ``torch.add`` over arrays of the model's size read from memory. Results: ``results/step_profile.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_meta, write_results  # noqa: E402
from speed import product_buffers, run_products  # noqa: E402

import aekit  # noqa: E402,F401  (threads policy before the first kernel)
from aekit.accel import heap_reuse  # noqa: E402
from aekit.modules import build_net  # noqa: E402
from aekit.objectives import classification_loss, reconstruction_loss  # noqa: E402
from aekit.optim import make_optimizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("matrix products", "optimizer update", "zero_grad", "activations", "everything else")
ACTIVATIONS = ("aten::tanh", "aten::tanh_backward", "aten::sigmoid", "aten::sigmoid_backward")


def make_step(model: str, batch: int = 128, update: bool = True):
    """The model's training step (forward, loss, backward, compiled RMSprop) and its weight count.

    ``update=False``: the same step without ``opt.step()`` (the weights stay put).
    """
    torch.manual_seed(0)
    sae = model == "sae"
    net = build_net(n_features=784, n_classes=10 if sae else None)
    opt = make_optimizer("rmsprop", net.parameters(), 0.002, 0.01, fused=True)
    X, y = torch.rand(batch * 64, 784), torch.randint(0, 10, (batch * 64,))

    def step(i: int) -> None:
        rows = slice((i % 64) * batch, (i % 64 + 1) * batch)
        x = X[rows]
        out = net(x)
        loss = reconstruction_loss(out["recon_logits"], x, "bce", "sigmoid")
        if sae:
            loss = loss + 0.1 * classification_loss(out["class_logits"], y[rows])
        opt.zero_grad()
        loss.backward()
        if update:
            opt.step()

    return step, sum(p.numel() for p in net.parameters())


def wall_ms(step, steps: int) -> float:
    """Median of five timings of ``steps // 5`` steps, per step."""
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for i in range(steps // 5):
            step(i)
        times.append((time.perf_counter() - t) / (steps // 5))
    return 1e3 * sorted(times)[2]


def update_floor_ms(n_weights: int) -> float:
    """20 bytes per weight at the bandwidth of ``torch.add`` over three arrays of ``n_weights`` floats, from memory.

    The caches are flushed before each timed add (in the step the forward and backward pass run
    between two updates and evict the optimizer's arrays), so this is memory's bandwidth, not a cache's.
    """
    a, b, c = (torch.rand(n_weights) for _ in range(3))
    flush = torch.empty(64 * 2**20 // 4)  # larger than any last-level cache here
    best = float("inf")
    for _ in range(30):
        flush.fill_(1.0)
        t = time.perf_counter()
        torch.add(a, b, out=c)
        best = min(best, time.perf_counter() - t)
    return 1e3 * best * 20 / 12  # the add moves 12 bytes per element; the update 20


def unprofiled_ms(model: str, steps: int) -> dict[str, float]:
    """Per-step wall times without the profiler: the step, the step without its update, its products alone.

    The products are ``speed.py``'s floor (the same shapes, bare ``torch.mm`` into preallocated tensors). The
    three take turns of ``steps // 5`` steps, five rounds, so a change in the machine's pace hits all three.
    """
    layers = product_buffers(model, 128, torch.float32)
    runs = {"step": make_step(model)[0], "step without update": make_step(model, update=False)[0]}
    runs["products"] = lambda i: run_products(layers)
    for run in runs.values():
        for i in range(30):  # warm-up, and the update's compilation
            run(i)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(5):
        for name, run in runs.items():
            t = time.perf_counter()
            for i in range(steps // 5):
                run(i)
            times[name].append((time.perf_counter() - t) / (steps // 5))
    return {k: 1e3 * sorted(v)[2] for k, v in times.items()}


def profile(model: str, steps: int) -> dict:
    with heap_reuse():  # as fit runs the step
        unprofiled = unprofiled_ms(model, steps)
        return {**profiled(model, steps), "unprofiled_ms": unprofiled}


def profiled(model: str, steps: int) -> dict:
    step, n_weights = make_step(model)
    for i in range(30):  # warm-up, and the update's compilation
        step(i)
    wall = wall_ms(step, steps)
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(steps):
            step(i)
    events = {e.key: e for e in prof.key_averages()}

    def self_ms(*names: str) -> float:
        return sum(events[n].self_cpu_time_total for n in names if n in events) / steps / 1e3

    def total_ms(prefix: str) -> float:  # an event and everything under it
        return next((e.cpu_time_total for k, e in events.items() if k.startswith(prefix)), 0) / steps / 1e3

    profiled = sum(e.self_cpu_time_total for e in events.values()) / steps / 1e3
    parts = {
        "matrix products": self_ms("aten::mm", "aten::addmm"),
        "optimizer update": total_ms("Optimizer.step#"),
        "zero_grad": total_ms("Optimizer.zero_grad#"),
        "activations": self_ms(*ACTIVATIONS),
    }
    parts["everything else"] = profiled - sum(parts.values())
    return {
        "model": model,
        "weights": n_weights,
        "wall_ms": wall,
        "profiled_ms": profiled,
        "parts_ms": parts,
        "update_floor_ms": update_floor_ms(n_weights),
        "threads": torch.get_num_threads(),
    }


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Where the training step's time goes",
        "",
        f"{meta['date']} · {meta['machine']} · Python {meta['python']}, torch {meta['torch']}, aekit {meta['aekit']}"
        f" · load average at the start {meta['load']}",
        "",
        "The float32 step of a reference-length CPU `fit` (eager forward and backward, RMSprop's update "
        "compiled into one kernel), batch 128, profiled with `torch.profiler`; times per step, as shares of "
        "the profiled time (the profiler itself adds some). `python benchmarks/step_profile.py`.",
        "",
        "| model | step (unprofiled) | matrix products | optimizer update | zero_grad | activations (tanh, sigmoid) "
        "| everything else | step / products | update's memory floor |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p, total = r["parts_ms"], r["profiled_ms"]
        shares = [f"{p[k]:.2f} ms ({p[k] / total:.0%})" for k in PARTS]
        lines.append(
            f"| {r['model']} | {r['wall_ms']:.2f} ms | {' | '.join(shares)} | "
            f"{total / p['matrix products']:.2f} | {r['update_floor_ms']:.2f} ms |"
        )
    lines += [
        "",
        "Everything else: bias gradients, the loss, autograd's bookkeeping, views and Python. The update's "
        "memory floor: 20 bytes per weight (read weight, gradient, velocity; write weight, velocity) at the "
        "bandwidth of a bare `torch.add` over arrays of the model's size, caches flushed first (in a step the "
        "forward and backward pass evict them) — what any RMSprop step must move, fused or not.",
        "",
        "The profiler adds time to every small operation, so the same parts once more without it: the step, the "
        "step without its update, and its matrix products alone (`speed.py`'s floor: the same shapes, bare "
        "`torch.mm` into preallocated tensors), taking turns in one process (median of five rounds).",
        "",
        "| model | step | without the update | products alone | step / products | the update (difference) "
        "| forward and backward beyond the products |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        u = r["unprofiled_ms"]
        update, beyond = u["step"] - u["step without update"], u["step without update"] - u["products"]
        lines.append(
            f"| {r['model']} | {u['step']:.2f} ms | {u['step without update']:.2f} ms | {u['products']:.2f} ms "
            f"| {u['step'] / u['products']:.2f} | {update:.2f} ms ({update / u['step']:.0%}) "
            f"| {beyond:.2f} ms ({beyond / u['step']:.0%}) |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="dense,sae")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    meta = run_meta(load=f"{os.getloadavg()[0]:.1f}")
    rows = [profile(m, args.steps) for m in args.models.split(",")]
    write_results(args.out, "step_profile", {"meta": meta, "rows": rows}, markdown(rows, meta))


if __name__ == "__main__":
    main()
