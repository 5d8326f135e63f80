"""aekit training and transform speed on a CUDA GPU (the reference Keras stack is CPU-only here).

For the dense AE, the SAE and the conv AE, in float32 and in bfloat16, each trained on
``device="auto"`` (the GPU) in four ways: eager (``compile=False``), with the forward pass
and optimizer compiled but no CUDA graph (``compile=True`` with the plan's ``cuda_graphs``
forced off: aekit's GPU path before CUDA graphs), compiled and captured as a CUDA graph
(``compile=True``), and the default (``compile="auto"``: a CUDA graph of the eager kernels,
nothing compiled). Reported: per-epoch training time (median of epochs 2..E; epoch 1
includes compilation and capture), samples/s, FLOP/s as a fraction of the GPU's measured
matmul peak of that precision, ``transform`` throughput, and peak GPU memory.

    python benchmarks/gpu.py                      # writes benchmarks/results/gpu.{md,json}
    python benchmarks/gpu.py --epochs 3 --out /tmp/gpu
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from _common import run_meta, write_results
from speed import FLOP_FORMULA, train_flops  # one FLOP model for both reports

import aekit

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("dense", "sae", "conv")


def matmul_peak(dtype: torch.dtype) -> float:
    """Best FLOP/s of torch.mm over a few square sizes (TF32 off: float32 means float32)."""
    best = 0.0
    for n in (2048, 4096, 8192):
        a, b = torch.randn(n, n, device="cuda", dtype=dtype), torch.randn(n, n, device="cuda", dtype=dtype)
        for _ in range(3):
            torch.mm(a, b)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(10):
            torch.mm(a, b)
        torch.cuda.synchronize()
        best = max(best, 10 * 2 * n**3 / (time.perf_counter() - t))
    return best


#: variant -> (compile, CUDA graphs)
VARIANTS = {"eager": (False, False), "auto": ("auto", True), "compiled": (True, False), "graph": (True, True)}


def estimator(model: str, epochs: int, precision: str, compile: bool | str) -> aekit.Autoencoder:
    common = {"epochs": epochs, "random_state": 0, "precision": precision, "compile": compile}
    if model == "sae":
        return aekit.SupervisedAutoencoder(**common)
    return aekit.Autoencoder(**{**(aekit.PRESETS["conv"] if model == "conv" else {}), **common})


def run(model: str, precision: str, epochs: int, X, y, X_test, variant: str) -> dict:
    torch.cuda.reset_peak_memory_stats()
    # each run compiles afresh, as in a new process (six models would exceed dynamo's recompile limit)
    torch._dynamo.reset()
    compile, graphs = VARIANTS[variant]
    est = estimator(model, epochs, precision, compile)
    if not graphs:
        est._plan_overrides = {"cuda_graphs": False}  # aekit.accel.plan: never a CUDA graph
    t = time.perf_counter()
    est.fit(X, y) if model == "sae" else est.fit(X)
    fit_s = time.perf_counter() - t
    assert est.device_.type == "cuda", est.device_
    times = est.history_["time"]
    median = statistics.median(times[1:] or times)
    est.transform(X_test)  # warm-up
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(3):
        est.transform(X_test)
    transform_s = (time.perf_counter() - t) / 3
    return {
        "model": model,
        "precision": precision,
        "variant": variant,
        "epoch_times": times,
        "fit_s": fit_s,
        "median_epoch_s": median,
        "samples_per_s": len(X) / median,
        "flops_per_s": train_flops(model) * len(X) / median,
        "transform_samples_per_s": len(X_test) / transform_s,
        "final_loss": est.history_["loss"][-1],
        "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20,
    }


def report(meta: dict, rows: list[dict]) -> str:
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    out = [
        "# Training speed on a GPU (aekit)",
        "",
        f"{meta['date']} · {meta['gpu']} · Python {meta['python']}, torch {meta['torch']}, aekit {meta['aekit']}",
        "",
        f"{meta['samples']:,} MNIST training samples, {meta['epochs']} epochs per run, `device='auto'` (the GPU), "
        "in one invocation. Variants: **eager** `compile=False`; "
        "**compiled** `compile=True` without CUDA graphs (forward pass and optimizer compiled: "
        "aekit's GPU path before CUDA graphs); **graph** `compile=True`: "
        "the same, and the whole training step captured once as a CUDA graph and replayed; "
        "**auto** the default `compile='auto'`: the CUDA graph of the eager kernels, "
        "nothing compiled. Median of epochs 2..E; epoch 1 includes compilation and capture. Matmul peaks measured "
        f"here: float32 {meta['peak_float32'] / 1e12:.1f} TFLOP/s (TF32 off), "
        f"bfloat16 {meta['peak_bfloat16'] / 1e12:.1f} TFLOP/s." + (f" {meta['note']}" if meta.get("note") else ""),
        "",
        "| model | precision | "
        + " | ".join(f"s/epoch {v}" for v in variants)
        + " | epoch 1 s "
        + " / ".join(variants)
        + " | speed-up of auto over eager | best samples/s | TFLOP/s (of peak) | transform samples/s | peak GPU MiB "
        "| final train loss " + " / ".join(variants) + " |",
        "|" + "---|" * (2 + len(variants) + 7),
    ]
    by = {(r["model"], r["precision"], r["variant"]): r for r in rows}
    for model, precision in dict.fromkeys((r["model"], r["precision"]) for r in rows):
        got = [by.get((model, precision, v)) for v in variants]
        best = min((r for r in got if r), key=lambda r: r["median_epoch_s"])
        peak = meta[f"peak_{precision}"]
        eager, auto = by.get((model, precision, "eager")), by.get((model, precision, "auto"))
        speedup = f"{eager['median_epoch_s'] / auto['median_epoch_s']:.1f}x" if eager and auto else "—"
        out.append(
            f"| {model} | {precision} | "
            + " | ".join(f"{r['median_epoch_s']:.3f}" if r else "—" for r in got)
            + " | "
            + " / ".join(f"{r['epoch_times'][0]:.1f}" if r else "—" for r in got)
            + f" | {speedup} | {best['samples_per_s']:,.0f} | "
            f"{best['flops_per_s'] / 1e12:.2f} ({best['flops_per_s'] / peak:.2%}) | "
            f"{best['transform_samples_per_s']:,.0f} | {best['peak_gpu_mib']:,.0f} | "
            + " / ".join(f"{r['final_loss']:.4f}" if r else "—" for r in got)
            + " |"
        )
    out += [
        "",
        f"FLOP model (as in speed.md): {FLOP_FORMULA}",
        "",
        "At batch 128 these models are far too small to fill a GPU: an eager step is a hundred-odd kernel launches of "
        "a few microseconds of arithmetic each, so its time is set by launch and Python overhead. A CUDA graph replays "
        "the whole step (forward, backward, optimizer) with one launch. Dropout (SAE head) and noise draw through the "
        "graph's own generator offsets, so graphed runs are reproducible but not the eager run's random stream; "
        "deterministic models train the same (tested).",
        "",
    ]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--precisions", default="float32,bfloat16")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("benchmarks/gpu.py needs a CUDA GPU; this machine has none (see speed.py for CPU figures)")
    torch.backends.cuda.matmul.allow_tf32 = False
    d = aekit.load_mnist(os.environ.get("AEKIT_MNIST_DIR"))
    meta = run_meta(
        gpu=torch.cuda.get_device_name(),
        samples=len(d.X_train),
        epochs=args.epochs,
        peak_float32=matmul_peak(torch.float32),
        peak_bfloat16=matmul_peak(torch.bfloat16),
    )
    rows = []
    for model in args.models.split(","):
        for precision in args.precisions.split(","):
            for variant in args.variants.split(","):
                rows.append(run(model, precision, args.epochs, d.X_train, d.y_train, d.X_test, variant))
                r = rows[-1]
                print(
                    f"{model} {precision} {variant}: {r['median_epoch_s']:.3f} s/epoch (epoch 1 "
                    f"{r['epoch_times'][0]:.1f} s, fit {r['fit_s']:.1f} s), "
                    f"loss {r['final_loss']:.4f}, transform {r['transform_samples_per_s']:,.0f}/s",
                    flush=True,
                )
                write_results(
                    args.out, "gpu", {"meta": meta, "results": rows}, report(meta, rows)
                )  # partial results survive a timeout


if __name__ == "__main__":
    main()
