"""aekit's defaults on small data sets it was never tuned to, beside PCA, openTSNE and UMAP.

Small image and tabular sets bundled with scikit-learn (digits; wine, breast_cancer, iris) and
an MNIST subset of 2,000 images ($AEKIT_MNIST_DIR), each split 70/30 (stratified, seed 0).
Image data is used as it is, in [0, 1]. Tabular data go to aekit as they are, with the one
data-range switch ``scale="standard"`` (``loss`` and ``output_activation`` stay "auto"); the
baselines get them standardised by a StandardScaler fitted on the training split, as a user
would prepare them. Everything else is the estimators' defaults, on seeds 0-9:

- AE(2): held-out k-NN(5) accuracy on the 2-D codes (k-NN fitted on the training codes);
- SAE(2): the classifier head's test accuracy, against k-NN(5) on the raw features;
- PCA(2), openTSNE(2) (test points placed by ``embedding.transform``) and UMAP(2) (``transform``):
  held-out k-NN(5) the same way;
- fit seconds (wall clock) and how many fits warned (``fit_warnings_``).

    python benchmarks/small_data.py            # seeds 0-9 -> benchmarks/results/small_data.{md,json}
    python benchmarks/small_data.py --quick    # seeds 0-2, no MNIST subset, printed only
    python benchmarks/small_data.py --data wine,iris --update   # rerun these rows, keep the others
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import run_meta, write_results
from sklearn import datasets
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from aekit import Autoencoder, SupervisedAutoencoder
from aekit._utils import TrainingWarning

ROOT = Path(__file__).resolve().parents[1]
TABULAR = ("wine", "breast_cancer", "iris")
Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def load(name: str) -> tuple[Split, Split, bool] | None:
    """The 70/30 split of a data set (standardised if tabular), the raw split, and whether it is tabular;
    None if MNIST is not there."""
    if name == "digits":
        X, y = datasets.load_digits(return_X_y=True)
        X = X / 16.0
    elif name == "mnist2000":
        from aekit import load_mnist

        try:
            m = load_mnist(os.environ.get("AEKIT_MNIST_DIR"), download=False)
        except Exception as exc:  # noqa: BLE001 - any failure: the row is skipped with its reason
            print(f"skipping mnist2000: {exc}")
            return None
        X, y = m.X_train[:2000], m.y_train[:2000]
    else:
        X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    raw = (Xtr.astype(np.float32), Xte.astype(np.float32), ytr, yte)
    tabular = name in TABULAR
    if tabular:
        scaler = StandardScaler().fit(Xtr)
        Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    return (Xtr.astype(np.float32), Xte.astype(np.float32), ytr, yte), raw, tabular


def knn(Ztr: np.ndarray, ytr: np.ndarray, Zte: np.ndarray, yte: np.ndarray) -> float:
    return float(KNeighborsClassifier(5).fit(Ztr, ytr).score(Zte, yte))


def timed(fn: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def baselines(split: Split) -> dict[str, dict[str, float] | None]:
    Xtr, Xte, ytr, yte = split

    def pca() -> tuple[np.ndarray, np.ndarray]:
        p = PCA(2, random_state=0).fit(Xtr)
        return p.transform(Xtr), p.transform(Xte)

    def opentsne() -> tuple[np.ndarray, np.ndarray]:
        from openTSNE import TSNE

        emb = TSNE(n_components=2, perplexity=30, random_state=0, n_jobs=1).fit(Xtr.astype(np.float64))
        return np.asarray(emb), np.asarray(emb.transform(Xte.astype(np.float64)))

    def umap() -> tuple[np.ndarray, np.ndarray]:
        from umap import UMAP

        u = UMAP(n_components=2, random_state=0, n_jobs=1).fit(Xtr)
        return u.embedding_, u.transform(Xte)

    out: dict[str, dict[str, float] | None] = {}
    for name, fn in (("pca", pca), ("opentsne", opentsne), ("umap", umap)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the libraries' own notes (n_jobs with random_state, ...)
                (Ztr, Zte), secs = timed(fn)
        except ImportError as exc:
            print(f"  {name}: not installed ({exc})")
            out[name] = None
            continue
        out[name] = {"knn": knn(Ztr, ytr, Zte, yte), "seconds": secs}
    return out


def aekit_runs(split: Split, tabular: bool, seeds: range, params: dict | None = None) -> dict[str, dict[str, list]]:
    """AE(2) k-NN and SAE(2) head accuracy per seed, with fit seconds, resolved epochs and warnings.

    ``params``: estimator parameters instead of the defaults (each estimator takes those it has).
    """
    Xtr, Xte, ytr, yte = split
    switch = {"scale": "standard"} if tabular else {}
    runs: dict[str, dict[str, list]] = {}
    for kind in ("ae", "sae"):
        cls = SupervisedAutoencoder if kind == "sae" else Autoencoder
        own = {k: v for k, v in (params or {}).items() if k in cls().get_params()}
        r: dict[str, list] = {"score": [], "seconds": [], "epochs": [], "warnings": []}
        for seed in seeds:
            est = cls(random_state=seed, **switch, **own)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TrainingWarning)  # kept in fit_warnings_, counted below
                t = time.perf_counter()
                est.fit(Xtr, ytr) if kind == "sae" else est.fit(Xtr)
                secs = time.perf_counter() - t
            score = est.score(Xte, yte) if kind == "sae" else knn(est.transform(Xtr), ytr, est.transform(Xte), yte)
            r["score"].append(float(score))
            r["seconds"].append(secs)
            r["epochs"].append(int(est.epochs_))
            r["warnings"].append(list(est.fit_warnings_))
            print(f"  {kind} seed {seed}: {score:.3f} in {secs:.1f} s ({est.epochs_} epochs)", flush=True)
        runs[kind] = r
    return runs


def _params_text(params: dict | None) -> str:
    if not params:
        return 'the estimators\' defaults otherwise (`epochs="auto"`)'
    return "the defaults except " + ", ".join(f"`{k}={v!r}`" for k, v in params.items())


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def markdown(meta: dict, rows: dict[str, dict], seeds: range, results_name: str = "small_data") -> str:
    seeds_text = f"{seeds.start}-{seeds.stop - 1}"
    lines = [
        "# Small data sets: aekit's defaults beside PCA, openTSNE and UMAP",
        "",
        f"{meta['date']}; {meta['machine']}; Python {meta['python']}, torch {meta['torch']}, scikit-learn "
        f"{meta['sklearn']}, openTSNE {meta['opentsne']}, UMAP {meta['umap']}, aekit {meta['aekit']}. "
        f"torch threads: {meta['torch_threads']} (OMP_NUM_THREADS={meta['omp_num_threads']}); load average "
        f"{meta['load_before']} at the start, {meta['load_after']} at the end: other processes shared the CPUs, "
        "so the seconds are upper bounds.",
        "",
        "Each set split 70/30 (stratified, seed 0). Images as they are ([0, 1]); tabular sets as they are, "
        'with `scale="standard"` for aekit (loss and output activation "auto"), standardised by a StandardScaler '
        "fitted on the training split for the baselines. "
        f'aekit: {_params_text(meta.get("params"))}, seeds {seeds_text}, `device="cpu"`. '
        "k-NN(5) is fitted on the training split's embedding and scored on the test split's "
        "(openTSNE: test points placed by `embedding.transform`; UMAP: `transform`).",
        "",
        "| data (train rows × features) | epochs | AE(2) k-NN min / mean | PCA(2) | openTSNE(2) | UMAP(2) "
        "| SAE(2) head min / mean | k-NN raw | AE / SAE fit s | fits that warned (AE, SAE) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        ae, sae, base = row["aekit"]["ae"], row["aekit"]["sae"], row["baselines"]
        warned = (sum(bool(w) for w in ae["warnings"]), sum(bool(w) for w in sae["warnings"]))
        lines.append(
            f"| {name} ({row['n_train']} × {row['n_features']}) | {ae['epochs'][0]} | "
            f"{_pct(min(ae['score']))} / {_pct(float(np.mean(ae['score'])))} | "
            + " | ".join(_pct(None if base[b] is None else base[b]["knn"]) for b in ("pca", "opentsne", "umap"))
            + f" | {_pct(min(sae['score']))} / {_pct(float(np.mean(sae['score'])))} | {_pct(row['raw_knn'])} | "
            f"{np.mean(ae['seconds']):.1f} / {np.mean(sae['seconds']):.1f} | {warned[0]}, {warned[1]} |"
        )
    reruns = sorted({r["run"] for r in rows.values() if r.get("run") and r["run"] != meta["date"]})
    if reruns:
        kept_from = ", ".join(reruns)
        lines += ["", f"Rows not rerun in this run keep their numbers from {kept_from} (`{results_name}.json`)."]
    lines += [
        "",
        "Goals (issue 21): AE(2) k-NN at least PCA(2)'s; the SAE(2) head within 3 points of k-NN on the raw "
        f"features on every seed. Per-seed numbers and the warnings' texts: `{results_name}.json`.",
        "",
    ]
    if meta["umap"] == "not installed":
        lines.append("UMAP: not installed (`pip install umap-learn`, part of the `bench` extra): its column is empty.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seeds 0-2, no MNIST subset, results printed only")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    parser.add_argument("--data", default="digits,wine,breast_cancer,iris,mnist2000", help="comma-separated sets")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument(
        "--update", action="store_true", help="rerun only --data's rows and keep the other rows of small_data.json"
    )
    parser.add_argument(
        "--params",
        default="",
        help="estimator parameters as JSON instead of the defaults, e.g. '{\"hidden_layer_sizes\": [64, 32]}'",
    )
    parser.add_argument("--name", default="small_data", help="results file name (default small_data)")
    args = parser.parse_args()
    import json

    import openTSNE
    import torch

    try:
        import umap

        umap_version = umap.__version__
    except ImportError:
        umap_version = "not installed"
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(args.params or "{}").items()}
    names = [n for n in args.data.split(",") if n and not (args.quick and n == "mnist2000")]
    seeds = range(3 if args.quick else args.seeds)
    meta = run_meta(
        opentsne=openTSNE.__version__,
        umap=umap_version,
        torch_threads=torch.get_num_threads(),
        omp_num_threads=os.environ.get("OMP_NUM_THREADS", "unset"),
        load_before=" ".join(f"{x:.1f}" for x in os.getloadavg()),
        seeds=list(seeds),
        params=params,
    )
    rows: dict[str, dict] = {}
    splits = {name: loaded for name in names if (loaded := load(name)) is not None}
    for name, (split, raw, tabular) in splits.items():
        print(f"{name}: {split[0].shape[0]} training rows", flush=True)
        rows[name] = {
            "n_train": int(split[0].shape[0]),
            "n_features": int(split[0].shape[1]),
            "raw_knn": knn(split[0], split[2], split[1], split[3]),
            "aekit": aekit_runs(raw, tabular, seeds, params),
            "run": meta["date"],
        }
    # after every aekit fit: once UMAP (numba) has run, torch's CPU kernels in this process ran ~5x slower
    for name, (split, _, _) in splits.items():
        rows[name]["baselines"] = baselines(split)
    meta["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    if args.update:  # the other rows as the last full run left them, in their order
        last = json.loads((Path(args.out) / f"{args.name}.json").read_text())
        kept = {name: {"run": last["meta"]["date"], **row} for name, row in last["rows"].items()}
        rows = {name: rows.get(name, row) for name, row in kept.items()} | rows
    text = markdown(meta, rows, seeds, args.name)
    print(text)
    if not args.quick:
        write_results(args.out, args.name, {"meta": meta, "rows": rows}, text)


if __name__ == "__main__":
    main()
