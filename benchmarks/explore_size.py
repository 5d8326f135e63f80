"""Size and build time of the explore page for all 70,000 MNIST images, each with a thumbnail.

Writes benchmarks/results/explore_size.md. The layout of the map does not matter for the size,
so the embedding is random (no t-SNE run needed).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from aekit import load_mnist
from aekit.explore import explore


def main() -> None:
    m = load_mnist(os.environ.get("AEKIT_MNIST_DIR"))
    X = np.concatenate([m.X_train, m.X_test])
    y = np.concatenate([m.y_train, m.y_test])
    E = np.random.default_rng(0).standard_normal((len(X), 2)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        page = explore(E, y, X, image_shape=(28, 28), path=Path(tmp) / "explore.html")
        secs = time.perf_counter() - t
        size = page.stat().st_size
    out = Path(__file__).parent / "results" / "explore_size.md"
    out.write_text(
        f"# explore page: all of MNIST\n\n{len(X):,} points, every one with a 28x28 thumbnail (PNG sprite sheets of "
        f"4096 tiles, base64, Bokeh inline)\n\n| file size | build time | cores |\n|---|---|---|\n| {size / 1e6:.1f} "
        f"MB | {secs:.0f} s | {os.cpu_count()} |\n\npython {sys.version.split()[0]}\n"
    )
    print(out.read_text())


if __name__ == "__main__":
    main()
