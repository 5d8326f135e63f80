"""AE → t-SNE against t-SNE from raw pixels and AE straight to 2-D: time and quality.

On the MNIST test set (10k) and on all 70k images, for both t-SNE implementations:
openTSNE (aekit's choice) and scikit-learn's TSNE (the reference stack). Quality is
k-NN(5) accuracy in the 2-D embedding (5-fold CV) and trustworthiness (5 neighbours,
3,000-point subsample, against the 784-D pixels). The autoencoders are trained on
the 60k training images (10k run) or on all 70k (70k run: "end to end").

    python benchmarks/tsne.py                 # 10k with both libraries, 70k with openTSNE
    python benchmarks/tsne.py --sizes 10000 --libraries opentsne
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from _common import run_meta, write_results

import aekit
from aekit import metrics
from aekit.visualize import input_affinities, knn_method, tsne

ROOT = Path(__file__).resolve().parents[1]


def score(X: np.ndarray, y: np.ndarray, emb: np.ndarray) -> dict:
    return {
        "knn5_cv": metrics.knn_cv_accuracy(emb, y),
        "trustworthiness": metrics.trustworthiness(X, emb, max_samples=3000),
    }


def affinity_stage(codes: np.ndarray, lib: str, inputs: np.ndarray | None) -> dict:
    """openTSNE's neighbour search + affinities alone (timed in a separate call), and the search used."""
    if lib != "opentsne":
        return {}
    from openTSNE.affinity import PerplexityBasedNN

    codes = np.asarray(codes, dtype=np.float64)
    method = knn_method("auto", codes.shape[1])
    name = "exact" if method == "exact" else "Annoy"
    t = time.perf_counter()
    if inputs is None:
        PerplexityBasedNN(codes, perplexity=30, n_jobs=-1, random_state=0, method=method, verbose=False)
    else:
        input_affinities(codes, inputs, 30, method, -1, 0)
        name += ", input distances"
    return {"affinity_s": time.perf_counter() - t, "neighbors": name}


def run(size: int, libraries: list[str], ae_epochs: int, raw_sklearn_limit: int) -> list[dict]:
    d = aekit.load_mnist(os.environ.get("AEKIT_MNIST_DIR"))
    if size == 10000:
        X_fit, y_fit, X, y = d.X_train, d.y_train, d.X_test, d.y_test
    else:
        X = X_fit = np.concatenate([d.X_train, d.X_test])[:size]
        y = y_fit = np.concatenate([d.y_train, d.y_test])[:size]
    rows = []
    t = time.perf_counter()
    ae2 = aekit.Autoencoder(epochs=ae_epochs, random_state=0).fit(X_fit)
    ae2_s = time.perf_counter() - t
    t = time.perf_counter()
    ae20 = aekit.Autoencoder(n_components=20, epochs=ae_epochs, random_state=0).fit(X_fit)
    ae20_s = time.perf_counter() - t
    t = time.perf_counter()
    sae20 = aekit.SupervisedAutoencoder(n_components=20, epochs=ae_epochs, random_state=0).fit(X_fit, y_fit)
    sae20_s = time.perf_counter() - t
    emb = ae2.transform(X)
    rows.append({"n": size, "route": "AE → 2-D", "library": "—", "ae_s": ae2_s, "tsne_s": 0.0, **score(X, y, emb)})
    print(json.dumps(rows[-1]), flush=True)
    for lib in libraries:
        if lib == "sklearn" and size > raw_sklearn_limit:
            print(f"skipping scikit-learn t-SNE on {size} points (> --raw-sklearn-limit)", flush=True)
            continue
        z20, s20 = ae20.transform(X), sae20.transform(X)
        routes = (
            ("t-SNE from raw", X, None, 0.0),
            ("AE(20) → t-SNE", z20, X, ae20_s),
            ("AE(20) → t-SNE, code distances", z20, None, ae20_s),
            ("SAE(20) → t-SNE", s20, X, sae20_s),
            ("SAE(20) → t-SNE, code distances", s20, None, sae20_s),
        )
        for route, codes, inputs, ae_s in routes:
            t = time.perf_counter()
            emb = tsne(codes, library=lib, random_state=0, input_space=inputs)
            rows.append(
                {
                    "n": size,
                    "route": route,
                    "library": lib,
                    "ae_s": ae_s,
                    "tsne_s": time.perf_counter() - t,
                    **score(X, y, emb),
                    **affinity_stage(codes, lib, inputs),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# AE → t-SNE: time and quality",
        "",
        f"{meta['date']} · {meta['machine']} · Python {meta['python']}, torch {meta['torch']}, "
        f"scikit-learn {meta['sklearn']}, openTSNE {meta['opentsne']}, aekit {meta['aekit']}",
        "",
        f"Autoencoders: {meta['ae_epochs']} epochs, trained on the 60k training images (10k rows, "
        "embedding the test set) or on all 70k (70k rows).",
        "k-NN(5): 5-fold cross-validated accuracy in the 2-D embedding. T: "
        "trustworthiness (5 neighbours, 3,000 points). "
        "End to end = AE training + t-SNE (+ encoding).",
        "",
        "openTSNE's neighbour search follows aekit's rule (exact for inputs of at most 64 dimensions, "
        "else openTSNE's Annoy); its time, with the affinities, "
        "is measured in a separate call and is part of the t-SNE column.",
        "",
        'AE(20) → t-SNE is aekit\'s default (`AETSNE(distances="input")`): '
        "each point's t-SNE neighbours are found among "
        "the 20-D codes, their distances measured between the 784-D images (scikit-learn: as a precomputed sparse "
        'neighbour graph, PCA initialisation of the codes). "code distances" is plain t-SNE on the codes.',
        "",
        "| n | route | t-SNE library | k-NN(5) | T | AE training | t-SNE | of which neighbours + affinities | end to "
        "end |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        aff = f"{r['affinity_s']:.1f} s ({r['neighbors']})" if "affinity_s" in r else "—"
        lines.append(
            f"| {r['n']:,} | {r['route']} | {r['library']} | {100 * r['knn5_cv']:.1f}% | {r['trustworthiness']:.4f} | "
            f"{r['ae_s']:.0f} s | {r['tsne_s']:.1f} s | {aff} | {r['ae_s'] + r['tsne_s']:.0f} s |"
        )
    lines.append("")
    lines.append(
        "The SAE(20) route is the supervised one: its 70k rows embed the very images whose labels trained it, "
        "so that k-NN figure is an upper bound, not a test score (the 10k rows embed held-out test images)."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,70000")
    ap.add_argument("--libraries", default="opentsne,sklearn")
    ap.add_argument("--ae-epochs", type=int, default=10)
    ap.add_argument("--raw-sklearn-limit", type=int, default=10000, help="largest n for scikit-learn's t-SNE (slow)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows += run(size, args.libraries.split(","), args.ae_epochs, args.raw_sklearn_limit)
    import openTSNE

    meta = run_meta(opentsne=openTSNE.__version__, ae_epochs=args.ae_epochs)
    write_results(args.out, "tsne", {"meta": meta, "rows": rows}, markdown(rows, meta))


if __name__ == "__main__":
    main()
