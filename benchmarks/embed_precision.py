"""Parametric t-SNE embedding in float32 and in bfloat16: speed, its floor, and what the map loses.

A ``ParametricTSNE`` with its defaults is fitted on the first N MNIST training images (seed 0), then
places the 10k test images with ``transform`` in float32 and after ``set_params(precision="bfloat16")``
(bfloat16 autocast, float32 results): best of 5 timed passes each, the largest coordinate change,
and k-NN(5) (5-fold) and trustworthiness (5 neighbours, 3,000 points) of both test maps. In the same
run, side by side: the bare float32 matrix products of the encoder's layers over the same rows in
``transform``'s batches (no bias, no activation, no copy: the floor of any float32 implementation of
that network), and openTSNE's ``transform`` of the same images into its own map fitted on the same N
(one pass: it takes seconds). Printed only; the numbers of a run are quoted in ``results/tsne.md``.

    python benchmarks/embed_precision.py               # 20,000 images, 8 epochs
    python benchmarks/embed_precision.py --n 60000 --epochs 30
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from aekit import ParametricTSNE, load_mnist
from aekit.metrics import knn_cv_accuracy, trustworthiness
from aekit.threads import numerics, threads_for_run, using_threads


def best_of(fn, n: int = 5) -> tuple[np.ndarray, float]:
    out = fn()  # warm-up
    times = []
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, min(times)


def products_floor(est: ParametricTSNE, n_rows: int) -> float:
    """Best of 5: the encoder's float32 matrix products alone over ``n_rows`` rows in transform's batches."""
    weights = [m.weight.detach().T.contiguous() for m in est.net_.encoder.modules() if isinstance(m, torch.nn.Linear)]
    batch = est._batch_size()
    inputs = [torch.rand(min(batch, n_rows - s), weights[0].shape[0]) for s in range(0, n_rows, batch)]
    outs = [[torch.empty(len(x), w.shape[1]) for w in weights] for x in inputs]

    def run() -> None:
        for x, out in zip(inputs, outs, strict=True):
            h = x
            for w, o in zip(weights, out, strict=True):
                h = torch.mm(h, w, out=o)

    with torch.inference_mode(), using_threads(threads_for_run()):
        return best_of(run)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="training images")
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args()
    m = load_mnist(download=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short fit's training notes
        est = ParametricTSNE(random_state=0, epochs=args.epochs).fit(m.X_train[: args.n])
    maps = {}
    for precision in ("float32", "bfloat16"):
        est.set_params(precision=precision)
        maps[precision] = best_of(lambda: est.transform(m.X_test))
    (z32, t32), (z16, t16) = maps["float32"], maps["bfloat16"]
    floor = products_floor(est, len(m.X_test))
    from openTSNE import TSNE

    tsne = TSNE(n_jobs=-1, random_state=0).fit(m.X_train[: args.n])
    t = time.perf_counter()
    tsne.transform(m.X_test)
    t_open = time.perf_counter() - t
    print(f"{numerics()}; fit on {args.n:,} images, {args.epochs} epochs; embedding {len(m.X_test):,} test images")
    print(f"float32 {t32:.3f} s, bfloat16 {t16:.3f} s: {t32 / t16:.2f}x")
    print(f"float32 matrix products alone {floor:.3f} s: transform at {t32 / floor:.2f}x its floor")
    print(
        f"openTSNE transform {t_open:.2f} s: float32 {t_open / t32:.0f}x, bfloat16 {t_open / t16:.0f}x, "
        f"the float32 products' floor {t_open / floor:.0f}x faster"
    )
    print(f"largest coordinate change {np.abs(z32 - z16).max():.3f} of the map's extent {np.ptp(z32):.1f}")
    for name, z in (("float32", z32), ("bfloat16", z16)):
        t = trustworthiness(m.X_test[:3000], z[:3000], n_neighbors=5)
        print(f"{name}: k-NN(5) {knn_cv_accuracy(z, m.y_test):.4f}, trustworthiness {t:.4f}")


if __name__ == "__main__":
    main()
