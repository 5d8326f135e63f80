"""aekit training and transform speed on a CUDA GPU (the reference Keras stack is CPU-only here).

For the dense AE, the SAE and the conv AE, in float32 and in bfloat16, each trained
eagerly (``compile=False``) and with the training step compiled (``compile=True``),
on ``device="auto"`` (the GPU): per-epoch training time (median of epochs 2..E; epoch 1
includes compilation), samples/s, FLOP/s as a fraction of the GPU's measured matmul
peak of that precision, ``transform`` throughput, and peak GPU memory. The
estimators' ``compile="auto"`` follows these numbers.

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


def estimator(model: str, epochs: int, precision: str, compile: bool) -> aekit.Autoencoder:
    common = {"epochs": epochs, "random_state": 0, "precision": precision, "compile": compile}
    if model == "sae":
        return aekit.SupervisedAutoencoder(**common)
    return aekit.Autoencoder(**{**(aekit.PRESETS["conv"] if model == "conv" else {}), **common})


def run(model: str, precision: str, epochs: int, X, y, X_test, compile: bool) -> dict:
    torch.cuda.reset_peak_memory_stats()
    torch._dynamo.reset()  # each run compiles afresh, as in a new process (six models would exceed dynamo's recompile limit)
    est = estimator(model, epochs, precision, compile)
    est.fit(X, y) if model == "sae" else est.fit(X)
    assert est.device_.type == "cuda", est.device_
    times = est.history_["time"]
    median = statistics.median(times[1:] or times)
    est.transform(X_test)  # warm-up
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(3):
        est.transform(X_test)
    transform_s = (time.perf_counter() - t) / 3
    return {"model": model, "precision": precision, "compile": compile, "epoch_times": times, "median_epoch_s": median,
            "samples_per_s": len(X) / median, "flops_per_s": train_flops(model) * len(X) / median,
            "transform_samples_per_s": len(X_test) / transform_s, "final_loss": est.history_["loss"][-1],
            "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20}


def report(meta: dict, rows: list[dict]) -> str:
    out = ["# Training speed on a GPU (aekit)", "",
           f"{meta['date']} · {meta['gpu']} · Python {meta['python']}, torch {meta['torch']}, aekit {meta['aekit']}", "",
           f"{meta['samples']:,} MNIST training samples, {meta['epochs']} epochs per run, `device='auto'` (the GPU); each recipe "
           "trained eagerly (`compile=False`) and with its training step compiled (`compile=True`). Median of epochs 2..E; "
           "epoch 1 includes compilation. Matmul peaks measured here: "
           f"float32 {meta['peak_float32'] / 1e12:.1f} TFLOP/s (TF32 off), bfloat16 {meta['peak_bfloat16'] / 1e12:.1f} TFLOP/s."
           + (f" {meta['note']}" if meta.get("note") else ""), "",
           "| model | precision | s/epoch eager | s/epoch compiled | epoch 1 s eager / compiled | best samples/s | TFLOP/s (of peak) "
           "| transform samples/s | peak GPU MiB | final train loss |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    by = {(r["model"], r["precision"], r["compile"]): r for r in rows}
    for model, precision in dict.fromkeys((r["model"], r["precision"]) for r in rows):
        e, c = by.get((model, precision, False)), by.get((model, precision, True))
        best = min((r for r in (e, c) if r), key=lambda r: r["median_epoch_s"])
        peak = meta[f"peak_{precision}"]
        epoch = lambda r: f"{r['median_epoch_s']:.2f}" if r else "—"  # noqa: E731
        first = lambda r: f"{r['epoch_times'][0]:.1f}" if r else "—"  # noqa: E731
        out.append(f"| {model} | {precision} | {epoch(e)} | {epoch(c)} | {first(e)} / {first(c)} | "
                   f"{best['samples_per_s']:,.0f} | {best['flops_per_s'] / 1e12:.2f} ({best['flops_per_s'] / peak:.2%}) | "
                   f"{best['transform_samples_per_s']:,.0f} | {best['peak_gpu_mib']:,.0f} | {best['final_loss']:.4f} |")
    out += ["", f"FLOP model (as in speed.md): {FLOP_FORMULA}", "",
            "At batch 128 these models are far too small to fill a GPU: a step is a few dozen kernel launches, so "
            "the fraction of peak is low and the epoch time is set by launch and Python overhead, not arithmetic.", ""]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("benchmarks/gpu.py needs a CUDA GPU; this machine has none (see speed.py for CPU figures)")
    torch.backends.cuda.matmul.allow_tf32 = False
    d = aekit.load_mnist(os.environ.get("AEKIT_MNIST_DIR"))
    meta = run_meta(gpu=torch.cuda.get_device_name(), samples=len(d.X_train), epochs=args.epochs,
                    peak_float32=matmul_peak(torch.float32), peak_bfloat16=matmul_peak(torch.bfloat16))
    rows = []
    for model in args.models.split(","):
        for precision in ("float32", "bfloat16"):
            for compile in (False, True):
                rows.append(run(model, precision, args.epochs, d.X_train, d.y_train, d.X_test, compile))
                r = rows[-1]
                print(f"{model} {precision} compile={compile}: {r['median_epoch_s']:.2f} s/epoch (epoch 1 {r['epoch_times'][0]:.1f} s), "
                      f"transform {r['transform_samples_per_s']:,.0f}/s", flush=True)
    write_results(args.out, "gpu", {"meta": meta, "results": rows}, report(meta, rows))


if __name__ == "__main__":
    main()
