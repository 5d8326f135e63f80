"""AE → t-SNE against t-SNE from raw pixels and AE straight to 2-D: time and quality.

On the MNIST test set (10k) and on all 70k images, for both t-SNE implementations:
openTSNE (aekit's choice) and scikit-learn's TSNE (the reference stack). Quality is
k-NN(5) accuracy in the 2-D embedding (5-fold CV) and trustworthiness (5 neighbours,
3,000-point subsample, against the 784-D pixels). The autoencoders are trained on
the 60k training images (10k run) or on all 70k (70k run: "end to end").

    python benchmarks/tsne.py                 # 10k with both libraries, 70k with openTSNE
    python benchmarks/tsne.py --sizes 10000 --libraries opentsne

Parametric t-SNE (``aekit.ParametricTSNE``) has its own table: fitted on the 60k training
images, scored on the 10k test images it never saw, beside openTSNE fitted on the same 60k
and placing the test images with its ``transform``, and umap-learn's ``ParametricUMAP`` (the
``bench`` extra: TensorFlow). ``--parametric`` runs that table alone
and keeps the other rows of ``results/tsne.json``:

    python benchmarks/tsne.py --parametric                     # every variant
    python benchmarks/tsne.py --parametric --variants plain,opentsne --train-size 20000
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


#: the parametric variants: ParametricTSNE parameters and which labels fit sees
VARIANTS: dict[str, tuple[dict, str]] = {
    "plain": ({}, "none"),
    "AE-regularised": ({"reconstruction_weight": 1.0}, "none"),
    "supervised": ({}, "all"),
    "10% labels": ({}, "10%"),
    "plain 256-256": ({"hidden_layer_sizes": (256, 256)}, "none"),  # the smaller body: ~2x faster epochs
    "supervised target_weight=0": ({"target_weight": 0.0}, "all"),  # labels through the head alone
    "supervised augmented": ({"augment": "affine"}, "all"),  # moved and turned training images
}


def _labels(y: np.ndarray, which: str) -> np.ndarray | None:
    if which == "none":
        return None
    if which == "all":
        return y
    keep = np.random.default_rng(1).random(len(y)) < 0.1  # a seeded 10%, the rest unlabelled (-1)
    return np.where(keep, y, -1)


def _map_scores(X_test: np.ndarray, y_test: np.ndarray, Z_test: np.ndarray, Z_train: np.ndarray, y_train) -> dict:
    return {
        "knn5_cv": metrics.knn_cv_accuracy(Z_test, y_test),
        "trustworthiness": metrics.trustworthiness(X_test, Z_test, max_samples=3000),
        "knn5_train_to_test": metrics.knn_accuracy(Z_train, y_train, Z_test, y_test),
    }


def _plot_maps(Z_tr: np.ndarray, y_tr: np.ndarray, Z_te: np.ndarray, y_te: np.ndarray, path: Path) -> None:
    """The training map and the test map (the same encoder) side by side."""
    from aekit import plots

    titles = (f"ParametricTSNE: {len(Z_tr):,} training images", f"the same encoder: {len(Z_te):,} test images")
    with plots.offscreen():
        plots.save(plots.train_test_maps(Z_tr, y_tr, Z_te, y_te, titles=titles), path)


#: the comparison rows beside the ParametricTSNE variants: neither is aekit's
OTHERS = ("opentsne", "parametric_umap")


def _other_map(name: str, X_tr: np.ndarray, X_te: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """openTSNE (fit, then its ``transform``) or umap-learn's ParametricUMAP, with their defaults:
    ``(Z_train, Z_test, fit seconds, embed seconds)``."""
    t = time.perf_counter()
    if name == "opentsne":
        from openTSNE import TSNE

        model = TSNE(n_jobs=-1, random_state=0).fit(X_tr)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        Z_te = np.asarray(model.transform(X_te))
        return np.asarray(model), Z_te, fit_s, time.perf_counter() - t
    import keras  # the bench extra's; ParametricUMAP's network is a Keras model on TensorFlow
    from umap.parametric_umap import ParametricUMAP

    keras.utils.set_random_seed(0)  # Keras draws its weights and batches from its own global seed
    umap = ParametricUMAP(random_state=0, verbose=False, keras_fit_kwargs={"verbose": 0})
    Z_tr = np.asarray(umap.fit_transform(X_tr))
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    Z_te = np.asarray(umap.transform(X_te))
    return Z_tr, Z_te, fit_s, time.perf_counter() - t


def run_parametric(
    variants: list[str], train_size: int, epochs: int | None, out_jsonl: Path | None, plot: Path | None = None
) -> list[dict]:
    """Parametric t-SNE variants, openTSNE and ParametricUMAP: fit on the training images, score the test map."""
    d = aekit.load_mnist(os.environ.get("AEKIT_MNIST_DIR"))  # float32 in [0, 1]
    X_tr, y_tr = d.X_train[:train_size], d.y_train[:train_size]
    X_te, y_te = d.X_test, d.y_test
    rows = []
    for name in variants:
        params: dict = {}
        if name in OTHERS:
            Z_tr, Z_te, fit_s, embed_s = _other_map(name, X_tr, X_te)
        else:
            extra, which = VARIANTS[name]
            params = {**extra, **({"epochs": epochs} if epochs else {})}
            t = time.perf_counter()
            est = aekit.ParametricTSNE(random_state=0, **params).fit(X_tr, _labels(y_tr, which))
            fit_s = time.perf_counter() - t
            t = time.perf_counter()
            Z_te = est.transform(X_te)
            embed_s = time.perf_counter() - t
            Z_tr = est.transform(X_tr)
            if plot is not None and name == "plain":
                _plot_maps(Z_tr, y_tr, Z_te, y_te, plot)
        row = {
            "variant": name,
            "date": run_meta()["date"],  # rows appended to a stored table (--append) keep their own date
            "n_train": len(X_tr),
            "params": params,
            "fit_s": fit_s,
            "embed_s": embed_s,
            **_map_scores(X_te, y_te, Z_te, Z_tr, y_tr),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        if out_jsonl is not None:
            with open(out_jsonl, "a") as fh:
                fh.write(json.dumps(row) + "\n")
    return rows


def run_million(fit_size: int, epochs: int | None, n_points: int = 1_000_000, chunk: int = 100_000) -> dict:
    """End to end at a million points: fit on ``fit_size`` training images, then embed a million images.

    The million are MNIST's 70k images repeated (uint8, as read from disk), embedded in chunks
    of ``chunk`` as a user would stream them.
    """
    d = aekit.load_mnist(os.environ.get("AEKIT_MNIST_DIR"))
    t = time.perf_counter()
    est = aekit.ParametricTSNE(random_state=0, **({"epochs": epochs} if epochs else {})).fit(d.X_train[:fit_size])
    fit_s = time.perf_counter() - t
    pool = np.concatenate([d.X_train, d.X_test]).reshape(70000, -1)
    t = time.perf_counter()
    for start in range(0, n_points, chunk):
        rows = np.arange(start, min(start + chunk, n_points)) % len(pool)
        est.transform(pool[rows])
    embed_s = time.perf_counter() - t
    row = {"fit_size": fit_size, "epochs": est.epochs_, "n_points": n_points, "fit_s": fit_s, "embed_s": embed_s}
    print(json.dumps(row), flush=True)
    return row


OTHER_NAMES = {"opentsne": "openTSNE (fit + transform)", "parametric_umap": "umap-learn ParametricUMAP"}


def parametric_markdown(rows: list[dict], meta: dict) -> list[str]:
    lines = [
        "",
        "## Parametric t-SNE: a map of images it never saw",
        "",
        f"{meta['date']} · {meta['machine']} · Python {meta['python']}, torch {meta['torch']}, "
        f"scikit-learn {meta['sklearn']}, openTSNE {meta['opentsne']}, aekit {meta['aekit']}"
        + (f", umap-learn {meta['umap']}, TensorFlow {meta['tensorflow']}" if "umap" in meta else "")
        + (f" · load average {meta['load']}: every time below is inflated by it" if "load" in meta else ""),
        "",
        "Fitted on the first N training images (seed 0), then the 10k test images are embedded. "
        "k-NN(5) test: 5-fold cross-validated accuracy within the test map; train → test: a k-NN(5) "
        "fitted on the training map and scored on the test map; T: trustworthiness of the test map "
        "(5 neighbours, 3,000 points). Embed: the time to place the 10k test images "
        "(ParametricTSNE and umap-learn's ParametricUMAP: one pass of the encoder; openTSNE: its `transform`, "
        "an optimisation into its fitted map). `ParametricTSNE` defaults unless the parameters say otherwise "
        "(openTSNE and ParametricUMAP: their defaults, seed 0); labels: "
        "`supervised` sees every training label, `10% labels` a seeded 10% (the rest -1).",
        "",
        "| method | N train | parameters | k-NN(5) test | train → test | T | fit | embed 10k |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        method = OTHER_NAMES.get(r["variant"], f"ParametricTSNE, {r['variant']}")
        if r.get("date", meta["date"]) != meta["date"]:  # appended later (--append): said where it differs
            method += f" (run {r['date']})"
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "—"
        lines.append(
            f"| {method} | {r['n_train']:,} | {params} | {100 * r['knn5_cv']:.1f}% | "
            f"{100 * r['knn5_train_to_test']:.1f}% | {r['trustworthiness']:.4f} | {r['fit_s']:.0f} s | "
            f"{r['embed_s']:.2f} s |"
        )
    return lines


def markdown(rows: list[dict], meta: dict | None, parametric: dict | None = None) -> str:
    if meta is None:  # only the parametric table has been run into this folder
        return "\n".join(
            ["# AE → t-SNE: time and quality", *parametric_markdown(parametric["rows"], parametric["meta"])]
        )
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
    if parametric:
        lines += parametric_markdown(parametric["rows"], parametric["meta"])
        m = parametric.get("million")
        if m:
            lines += [
                "",
                f"A million points end to end: ParametricTSNE fitted on {m['fit_size']:,} training images "
                f"({m['epochs']} epochs) in {m['fit_s']:.0f} s, then {m['n_points']:,} images (MNIST repeated, uint8) "
                f"embedded in chunks of 100,000 in {m['embed_s']:.0f} s: {m['fit_s'] + m['embed_s']:.0f} s in all.",
            ]
        lines += parametric.get("notes", [])
    return "\n".join(lines) + "\n"


def _umap_versions(args: argparse.Namespace) -> dict:
    """umap-learn's and TensorFlow's versions when the ParametricUMAP row ran."""
    if "parametric_umap" not in args.variants.split(","):
        return {}
    import tensorflow
    import umap

    return {"umap": umap.__version__, "tensorflow": tensorflow.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,70000")
    ap.add_argument("--libraries", default="opentsne,sklearn")
    ap.add_argument("--ae-epochs", type=int, default=10)
    ap.add_argument("--raw-sklearn-limit", type=int, default=10000, help="largest n for scikit-learn's t-SNE (slow)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--parametric", action="store_true", help="run the parametric t-SNE table alone")
    ap.add_argument(
        "--variants", default=",".join([*OTHERS, *VARIANTS]), help="parametric rows (parametric_umap: bench extra)"
    )
    ap.add_argument("--train-size", type=int, default=60000, help="training images of the parametric rows")
    ap.add_argument("--epochs", type=int, help="ParametricTSNE epochs (default: its own)")
    ap.add_argument("--jsonl", help="also append each parametric row to this file as it finishes")
    ap.add_argument("--plot", help="with --parametric: draw the plain variant's training and test maps to this PNG")
    ap.add_argument("--million", type=int, metavar="FIT_SIZE", help="with --parametric: only the 1M-point run")
    ap.add_argument("--append", action="store_true", help="with --parametric: add the rows to the stored table")
    args = ap.parse_args()
    import openTSNE

    if args.parametric:
        path = Path(args.out) / "tsne.json"
        old = json.loads(path.read_text()) if path.exists() else {"meta": None, "rows": []}
        if args.million:
            old.setdefault("parametric", {"meta": run_meta(opentsne=openTSNE.__version__), "rows": []})
            old["parametric"]["million"] = run_million(args.million, args.epochs)
            write_results(args.out, "tsne", old, markdown(old["rows"], old["meta"], old["parametric"]))
            return
        prows = run_parametric(
            args.variants.split(","),
            args.train_size,
            args.epochs,
            Path(args.jsonl) if args.jsonl else None,
            Path(args.plot) if args.plot else None,
        )
        if args.append and old.get("parametric"):  # the stored table's header (its date) stays; rows carry theirs
            old["parametric"]["rows"] += prows
        else:
            old["parametric"] = {
                "meta": run_meta(opentsne=openTSNE.__version__, **_umap_versions(args)),
                "rows": prows,
            }
        write_results(args.out, "tsne", old, markdown(old["rows"], old["meta"], old["parametric"]))
        return
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows += run(size, args.libraries.split(","), args.ae_epochs, args.raw_sklearn_limit)
    meta = run_meta(opentsne=openTSNE.__version__, ae_epochs=args.ae_epochs)
    write_results(args.out, "tsne", {"meta": meta, "rows": rows}, markdown(rows, meta))


if __name__ == "__main__":
    main()
