"""Parametric t-SNE maps of small data sets: ``epochs="auto"`` against the former fixed 30 epochs, beside openTSNE.

The sets and splits of ``small_data.py`` (70/30, stratified, seed 0; images in [0, 1], tabular
sets standardised). ``ParametricTSNE`` with its defaults and ``epochs="auto"`` (30 epochs where
the data give enough optimizer steps, more on small data), and with ``epochs=30`` (the default
before), seed 0; openTSNE fitted on the training split, test points placed by its ``transform``.
Measured on the test points: trustworthiness (k=5, against the test inputs) and k-NN(5) fitted on
the training map; fit seconds; whether the fit warned.

    python benchmarks/small_maps.py                # -> benchmarks/results/small_maps.{md,json}
    python benchmarks/small_maps.py --data wine    # one set, printed and written
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from _common import run_meta, write_results
from sklearn.manifold import trustworthiness
from small_data import ROOT, knn, load

from aekit import ParametricTSNE


def measure(Ztr: np.ndarray, Zte: np.ndarray, split: tuple, secs: float) -> dict[str, float]:
    Xtr, Xte, ytr, yte = split
    return {
        "trust": float(trustworthiness(Xte, Zte, n_neighbors=5)),
        "knn": knn(Ztr, ytr, Zte, yte),
        "seconds": secs,
    }


def run(name: str) -> dict | None:
    loaded = load(name)
    if loaded is None:
        return None
    split, _, _ = loaded
    Xtr, Xte, _, _ = split
    perplexity = min(30.0, (len(Xtr) - 1) // 3)  # the largest the training rows allow, at most the default
    row: dict = {"n_train": len(Xtr), "n_features": Xtr.shape[1], "perplexity": perplexity}
    for label, epochs in (("auto", "auto"), ("30", 30)):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # kept in fit_warnings_
            est = ParametricTSNE(perplexity=perplexity, epochs=epochs, random_state=0, device="cpu").fit(Xtr)
        secs = time.perf_counter() - t
        row[label] = {
            **measure(est.transform(Xtr), est.transform(Xte), split, secs),
            "epochs": int(est.epochs_),
            "warnings": list(est.fit_warnings_),
        }
        print(f"  {name} epochs={label}: {row[label]}", flush=True)
    from openTSNE import TSNE

    t = time.perf_counter()
    emb = TSNE(n_components=2, perplexity=perplexity, random_state=0, n_jobs=1).fit(Xtr.astype(np.float64))
    Zte = np.asarray(emb.transform(Xte.astype(np.float64)))
    row["opentsne"] = measure(np.asarray(emb), Zte, split, time.perf_counter() - t)
    print(f"  {name} openTSNE: {row['opentsne']}", flush=True)
    return row


def markdown(meta: dict, rows: dict[str, dict]) -> str:
    lines = [
        '# Parametric t-SNE on small data sets: `epochs="auto"` against 30 epochs, beside openTSNE',
        "",
        f"{meta['date']}; {meta['machine']}; Python {meta['python']}, torch {meta['torch']}, scikit-learn "
        f"{meta['sklearn']}, openTSNE {meta['opentsne']}, aekit {meta['aekit']}; load average "
        f"{meta['load_before']} at the start, {meta['load_after']} at the end.",
        "",
        "The splits of `small_data.py` (70/30, stratified, seed 0; tabular sets standardised). "
        "`ParametricTSNE` defaults, seed 0, perplexity 30 (or the most the training rows allow); "
        "openTSNE fitted on the training split, test points placed by `transform`. On the test points: "
        "trustworthiness (k=5) and k-NN(5) fitted on the training map.",
        "",
        "| data (train rows × features) | auto: epochs | auto: trust / k-NN | 30 epochs: trust / k-NN "
        "| openTSNE: trust / k-NN | fit s (auto / 30 / openTSNE) | warned (auto, 30) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        a, b, o = r["auto"], r["30"], r["opentsne"]
        lines.append(
            f"| {name} ({r['n_train']} × {r['n_features']}) | {a['epochs']} | {a['trust']:.3f} / {100 * a['knn']:.1f}% "
            f"| {b['trust']:.3f} / {100 * b['knn']:.1f}% | {o['trust']:.3f} / {100 * o['knn']:.1f}% "
            f"| {a['seconds']:.0f} / {b['seconds']:.0f} / {o['seconds']:.0f} "
            f"| {'yes' if a['warnings'] else 'no'}, {'yes' if b['warnings'] else 'no'} |"
        )
    lines += ["", "Per-set numbers and any warnings' texts: `small_maps.json`.", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits,wine,breast_cancer,iris,mnist2000", help="comma-separated sets")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    import openTSNE

    meta = run_meta(opentsne=openTSNE.__version__, load_before=" ".join(f"{x:.1f}" for x in os.getloadavg()))
    rows = {name: row for name in args.data.split(",") if name and (row := run(name)) is not None}
    meta["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    write_results(args.out, "small_maps", {"meta": meta, "rows": rows}, markdown(meta, rows))


if __name__ == "__main__":
    main()
