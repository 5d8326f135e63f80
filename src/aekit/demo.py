"""The demo: the reference text's whole mission on MNIST, as plots and a Markdown report.

Each section is a function ``section(ctx) -> markdown`` that trains what it needs,
saves models first, then pictures, and returns its part of the report.
``aekit demo`` runs them all; ``--quick`` uses a subset and few epochs.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit import metrics, plots
from aekit._utils import InputError, atomic_path
from aekit.data import MNIST, load_mnist

log = logging.getLogger(__name__)


@dataclass
class Context:
    out: Path
    data: MNIST
    quick: bool
    epochs: int | None  # overrides every recipe's epochs when set
    progress: bool
    results: dict[str, Any] = field(default_factory=dict)  # numbers shared between sections
    models: dict[str, Any] = field(default_factory=dict)  # fitted estimators shared between sections

    def ep(self, default: int) -> int:
        if self.epochs is not None:
            return self.epochs
        return max(1, default // 10) if self.quick else default


def _fmt(x: float, pct: bool = False) -> str:
    return f"{100 * x:.1f}%" if pct else f"{x:.4f}"


def _fit_timed(est: Any, X: np.ndarray, y: np.ndarray | None = None) -> float:
    t = time.perf_counter()
    est.fit(X) if y is None else est.fit(X, y)
    return time.perf_counter() - t


def section_dense(ctx: Context) -> str:
    """The reference dense AE 784 → 500 → 300 → 100 → 2: codes, scatter, reconstructions."""
    from aekit.estimators import Autoencoder
    from aekit.summary import count_parameters

    d = ctx.data
    ae = Autoencoder(epochs=ctx.ep(20), random_state=0, verbose=int(ctx.progress))
    secs = _fit_timed(ae, d.X_train)
    ae.save(ctx.out / "dense_ae.safetensors")
    ctx.models["dense"] = ae
    Z_tr, Z_te = ae.transform(d.X_train), ae.transform(d.X_test)
    X_hat = ae.reconstruct(d.X_test)
    r = {
        "params": count_parameters(ae.net_),
        "test_bce": metrics.reconstruction_bce(d.X_test, X_hat),
        "knn": metrics.knn_accuracy(Z_tr, d.y_train, Z_te, d.y_test),
        "logreg": metrics.linear_accuracy(Z_tr, d.y_train, Z_te, d.y_test),
        "seconds": secs,
        "epochs": ae.n_iter_,
    }
    ctx.results["dense"] = r
    ax = plots.latent_scatter(Z_te, d.y_test, title=f"Dense AE, 2-D codes of the test set (k-NN {100 * r['knn']:.1f}%)")
    plots.save(ax.figure, ctx.out / "dense_latent.png")
    plots.save(plots.image_grid([d.X_test[:10], X_hat[:10]], ["original", "reconstruction"], title="Dense AE (2-D code)"), ctx.out / "dense_reconstructions.png")
    plots.save(plots.training_curves(ae.history_, title="Dense AE training").figure, ctx.out / "dense_training_curve.png")
    return f"""## 1. Dense autoencoder (reference recipe)

784 → 500 → 300 → 100 → **2** (tanh) → 100 → 300 → 500 → 784 (sigmoid), BCE, RMSprop
(lr=0.002, momentum=0.01, rho=0.9, eps=1e-7), batch 128, {r['epochs']} epochs, Glorot-uniform
weights, zero biases: **{r['params']:,} parameters**.

| metric (MNIST test set) | value |
|---|---|
| reconstruction BCE (mean per pixel) | {_fmt(r['test_bce'])} |
| k-NN(5) accuracy on the 2-D codes | {_fmt(r['knn'], True)} |
| logistic-regression accuracy on the 2-D codes | {_fmt(r['logreg'], True)} |
| training time | {r['seconds']:.0f} s |

The unsupervised 2-D code keeps only part of the class structure: a classifier on it reaches
about {100 * r['knn']:.0f}% (the reference text: ~55–70%), against ~97% on raw pixels.

![latent](dense_latent.png)

![reconstructions](dense_reconstructions.png)

![training curve](dense_training_curve.png)
"""


#: name → section; later features register theirs here in order.
SECTIONS: dict[str, Callable[[Context], str]] = {"dense": section_dense}


def _header(ctx: Context) -> str:
    import sklearn

    from aekit import __version__

    mode = "quick (subset, few epochs: not the reference numbers)" if ctx.quick else "full"
    return f"""# aekit demo report

Mode: {mode}. Training set {len(ctx.data.X_train):,} images, test set {len(ctx.data.X_test):,}.
aekit {__version__}, torch {torch.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__},
Python {platform.python_version()}, {platform.machine()} with {os.cpu_count()} CPUs,
{time.strftime('%Y-%m-%d')}. Seeds fixed (random_state=0): rerunning gives the same numbers on CPU.
"""


def run_demo(
    out: str | os.PathLike[str] = "demo-output",
    *,
    mnist_dir: str | os.PathLike[str] | None = None,
    quick: bool = False,
    epochs: int | None = None,
    progress: bool = False,
    only: str | None = None,
) -> Path:
    """Run the demo sections and write ``report.md`` into ``out``; returns its path."""
    names = list(SECTIONS)
    if only:
        names = [s.strip() for s in only.split(",") if s.strip()]
        unknown = [s for s in names if s not in SECTIONS]
        if unknown:
            raise InputError(f"--only {only!r}: unknown sections {unknown}; choose from {list(SECTIONS)}")
    if epochs is not None and epochs < 1:
        raise InputError(f"epochs={epochs} must be >= 1")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_mnist(mnist_dir)
    if quick:
        data = MNIST(data.X_train[:10000], data.y_train[:10000], data.X_test[:2000], data.y_test[:2000])
    ctx = Context(out=out_dir, data=data, quick=quick, epochs=epochs, progress=progress)
    parts = [_header(ctx)]
    report = out_dir / "report.md"
    for name in names:
        t = time.perf_counter()
        log.warning("demo: section %s ...", name)
        parts.append(SECTIONS[name](ctx))
        log.warning("demo: section %s done in %.0f s", name, time.perf_counter() - t)
        with atomic_path(report) as tmp:  # the report grows section by section
            tmp.write_text("\n".join(parts), encoding="utf-8")
    return report
