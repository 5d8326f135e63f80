"""The ``aekit`` subcommands: each ``cmd_*`` reads its arguments, calls the library, writes its files.

Like ``cli``, this module imports only the standard library when loaded (the rest is imported
inside each command, within ``cli.main``'s guard against Ctrl-C). Files are written through
``aekit.outputs``: a locked folder, no file replaced without --overwrite, a run's files put in
place together.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

TYPE_CHECKING = False  # (not typing's: one import less before main's guard; type checkers know the name)
if TYPE_CHECKING:
    from typing import Any

    import numpy as np

    from aekit.outputs import OutputFolder

log = logging.getLogger("aekit")

#: stop reasons of a run that ended on its own: its checkpoint is deleted unless --keep-checkpoint
FINISHED = ("completed", "early_stopping", "lr_floor")


def load_data(args: argparse.Namespace, *, stream: bool = False) -> tuple[Any, np.ndarray | None]:
    """The data named on the command line, and its labels (None: unlabelled).

    ``.npy`` files are memory-mapped. HDF5 files, zarr stores and folders of images are returned as a
    ``sources`` source with ``stream`` (``train``, ``embed``: read in chunks), else read whole.
    """
    from aekit._utils import InputError
    from aekit.data import load_array
    from aekit.mnist import load_mnist
    from aekit.sources import Head, open_path, streamable

    y: np.ndarray | None
    X: Any
    label_column = getattr(args, "label_column", None)
    if args.data not in ("mnist", "mnist-test") and streamable(args.data) and not args.data.lower().endswith(".npy"):
        if label_column is not None:
            raise InputError(f"--label-column {label_column} applies to CSV files only, not {args.data}; drop it")
        X, y = open_path(args.data, image_shape=getattr(args, "image_shape", None))
        if args.limit is not None:
            if args.limit < 1:
                raise InputError(f"--limit={args.limit} must be >= 1")
            X, y = Head(X, args.limit), (None if y is None else y[: args.limit])
        if not stream:
            X = X.read(0, X.n_samples)
        return X, y
    if args.data in ("mnist", "mnist-test"):
        if label_column is not None:
            raise InputError(f"--label-column {label_column} applies to CSV files only, not {args.data}; drop it")
        m = load_mnist(args.mnist_dir)
        X, y = (m.X_train, m.y_train) if args.data == "mnist" else (m.X_test, m.y_test)
    else:
        try:
            X, y = load_array(args.data, label_column=label_column)
        except InputError as exc:
            if exc.param != "label_column":
                raise
            raise InputError(
                exc.render(
                    lambda name, shown: f"--label-column {shown}" if name == "label_column" else f"{name}={shown}"
                )
            ) from exc
    if args.limit is not None:
        if args.limit < 1:
            raise InputError(f"--limit={args.limit} must be >= 1")
        X, y = X[: args.limit], (None if y is None else y[: args.limit])
    return X, y


@contextlib.contextmanager
def _out_dir(args: argparse.Namespace, files: Sequence[str], overwrite: bool | None = None) -> Iterator[OutputFolder]:
    """``--out`` as a locked output folder for the block (``aekit.outputs``); none of ``files`` may be
    replaced without --overwrite."""
    from aekit.outputs import output_folder

    with output_folder(args.out, files, overwrite=args.overwrite if overwrite is None else overwrite) as out:
        yield out


def write_codes(Z: np.ndarray, path: str | os.PathLike[str], prefix: str = "z") -> Path:
    import numpy as np

    from aekit._utils import InputError, atomic_path

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise InputError(f"--out {p}: use a .npy or .csv file name")
    with atomic_path(p) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, Z)
        else:
            np.savetxt(
                tmp,
                Z,
                delimiter=",",
                fmt="%.7g",
                header=",".join(f"{prefix}{i + 1}" for i in range(Z.shape[1])),
                comments="",
            )
    return p


# ----------------------------------------------------------------------------- commands


#: every file ``aekit train`` writes into --out; none is replaced without --overwrite (or --resume)
TRAIN_FILES = ("model.safetensors", "checkpoint.safetensors", "history.json", "training_curve.png")


def _estimator(args: argparse.Namespace, y: np.ndarray | None) -> Any:
    """The estimator the flags describe (validated: bad values fail before anything is written)."""
    from aekit._utils import InputError
    from aekit.estimators import Autoencoder, SupervisedAutoencoder
    from aekit.params import FLAGS, PRESETS

    params = dict(PRESETS[args.preset]) if args.preset else {}
    params.update({k: v for k, v in vars(args).items() if k in FLAGS})
    params.setdefault("verbose", 1 if (args.progress or sys.stderr.isatty()) else 0)
    cls = SupervisedAutoencoder if args.supervised else Autoencoder
    unknown = set(params) - set(cls().get_params())
    if unknown and args.preset and unknown <= set(PRESETS[args.preset]):
        raise InputError(f"--preset {args.preset} is a recipe for supervised models; add --supervised (and labels)")
    if unknown:
        raise InputError(f"{sorted('--' + u.replace('_', '-') for u in unknown)} only apply to --supervised models")
    if args.supervised and y is None:
        raise InputError(
            f"{args.data} has no labels; pass --label-column for a CSV, a .npz with 'y', or drop --supervised"
        )
    est = cls(**params)
    est._validate_params()
    return est


def _keep_trained(out: OutputFolder, est: Any) -> bool:
    """Save a model that trained at least one epoch (``save_training``); an untrained one never replaces a file."""
    from aekit.outputs import save_training

    if getattr(est, "n_iter_", 0) > 0 and hasattr(est, "net_"):
        return save_training(out, est)
    if getattr(est, "stop_reason_", "") in ("interrupted", "diverged"):
        print(f"no epoch completed ({est.stop_reason_}): no model written to {out.path}", file=sys.stderr)
    return False


def cmd_train(args: argparse.Namespace) -> int:
    from aekit._utils import AekitError

    ck_name = "checkpoint.safetensors"
    # a checkpoint left by a killed run is only replaced on purpose (--overwrite) or continued (--resume)
    with _out_dir(args, TRAIN_FILES, args.overwrite or args.resume) as out:
        X, y = load_data(args, stream=True)
        est = _estimator(args, y)
        if getattr(X, "row_shape", None) and len(X.row_shape) == 3 and est.image_shape is None:
            est.set_params(image_shape=tuple(X.row_shape))  # images from a folder: C x H x W, kept in the model
        # the checkpoint is written in place every epoch (a killed run resumes from it), but a previous run's
        # stays until this run's files replace it together
        replacing = (out.path / ck_name).exists() and not args.resume
        est.set_params(checkpoint_path=str(out.staged(ck_name) if replacing else out.in_place(ck_name)))
        resume = str(out.path / ck_name) if args.resume else None
        try:
            est.fit(X, y, resume_from=resume) if args.supervised else est.fit(X, resume_from=resume)
        except AekitError:  # e.g. diverged: the model of the last complete epoch is kept, then the error shown
            _keep_trained(out, est)
            raise
        curve = _keep_trained(out, est)
        if est.n_iter_ == 0:
            return 130 if est.stop_reason_ == "interrupted" else 2
        if est.stop_reason_ in FINISHED and not args.keep_checkpoint:  # a finished run needs no resuming
            (out.path / ck_name).unlink(missing_ok=True)
    where = Path(args.out)
    print(
        f"model: {where / 'model.safetensors'} ({est.n_iter_} epoch{'s' if est.n_iter_ != 1 else ''}, "
        f"{est.stop_reason_})"
    )
    if curve:
        print(f"training curve: {where / 'training_curve.png'}")
    if est.stop_reason_ == "interrupted":
        if (where / ck_name).exists():
            print(
                f"interrupted: resume with the same command plus --resume (checkpoint {where / ck_name})",
                file=sys.stderr,
            )
        return 130
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from aekit.estimators import load
    from aekit.outputs import output_file

    with output_file(args.out, args.overwrite) as (out, name):
        est = load(args.model)
        if est.image_shape is not None and getattr(args, "image_shape", None) is None:
            args.image_shape = est.image_shape  # a folder of images is resized as the model's were
        X, _ = load_data(args, stream=True)
        shape = write_codes_of(est, X, out.staged(name))
        out.commit()
    print(f"codes {shape}: {args.out}")
    return 0


#: rows encoded per chunk when codes are written to a CSV file
CSV_CHUNK = 65536


def write_codes_of(est: Any, X: Any, path: Path) -> tuple[int, int]:
    """``est.transform(X)`` written to ``path`` (.npy or .csv) chunk by chunk; returns the codes' shape.

    A ``.npy`` is filled through ``np.lib.format.open_memmap`` and a CSV is appended to, so the codes of
    data larger than memory are never held whole; the file is written under a temporary name and renamed.
    """
    import numpy as np

    from aekit._utils import InputError, atomic_path
    from aekit.sources import ArraySource, as_source

    suffix = path.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise InputError(f"--out {path}: use a .npy or .csv file name")
    source = as_source(X)
    if source is None:  # in memory (MNIST, a CSV or .npz input): as before
        Z = est.transform(X)
        write_codes(Z, path)
        return Z.shape
    width = int(est.net_.code_size)
    shape = (source.n_samples, width)
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            codes = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            est.transform(source, out=codes)
            codes.flush()
            del codes
        else:
            with open(tmp, "w") as fh:
                fh.write(",".join(f"z{i + 1}" for i in range(width)) + "\n")
                for start in range(0, source.n_samples, CSV_CHUNK):
                    stop = min(start + CSV_CHUNK, source.n_samples)
                    chunk = ArraySource(source.read(start, stop), source.name)
                    np.savetxt(fh, est.transform(chunk, out=None), delimiter=",", fmt="%.7g")
    return shape


def cmd_summary(args: argparse.Namespace) -> int:
    from aekit._utils import InputError
    from aekit.estimators import load
    from aekit.modules import build_net
    from aekit.summary import dense_table, format_table, module_table

    if sum(x is not None for x in (args.model, args.layers, args.preset)) > 1:
        raise InputError("summary takes one of: layer sizes, --model or --preset; drop the others")
    if args.model:
        rows = module_table(load(args.model).net_)
    elif args.layers:
        try:
            sizes = [int(s) for s in args.layers.replace(" ", "").split(",") if s]
        except ValueError:
            raise InputError(
                f"layers={args.layers!r} must be comma-separated integers, e.g. 784,100,20,100,784"
            ) from None
        rows = dense_table(sizes)
    else:
        from aekit.estimators import Autoencoder, SupervisedAutoencoder
        from aekit.params import PRESETS, is_supervised

        params = PRESETS[args.preset or "dense"]
        supervised = is_supervised(params)  # a recipe with head parameters
        est = (SupervisedAutoencoder if supervised else Autoencoder)(**params)
        rows = module_table(
            build_net(**est._net_kwargs(784, 10 if supervised else None))
        )  # MNIST: 784 pixels, 10 classes
    print(format_table(rows))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from aekit.demo import run_demo

    with _out_dir(args, (), overwrite=True) as out:  # locked; run_demo checks its own files (demo.DEMO_FILES)
        report = run_demo(
            out.path,
            mnist_dir=args.mnist_dir,
            quick=args.quick,
            epochs=args.epochs,
            progress=args.progress or sys.stderr.isatty(),
            only=args.only,
            overwrite=args.overwrite,
        )
    print(f"report: {report}")
    return 0


def _labelled_pair(
    args: argparse.Namespace,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Test data from ``args.data``; train data for code classifiers from ``args.train_data``."""
    X, y = load_data(args)
    X_tr = y_tr = None
    train_data = args.train_data
    if train_data is None and args.data == "mnist-test":  # (on the training split itself k-NN would see its own points)
        train_data = "mnist"
    if y is not None and train_data:
        ns = argparse.Namespace(**{**vars(args), "data": train_data, "limit": None})
        X_tr, y_tr = load_data(ns)
        if y_tr is None:
            print(f"note: {train_data} has no labels; k-NN and logistic accuracy of the codes skipped", file=sys.stderr)
    elif y is not None:
        print(
            "note: k-NN and logistic accuracy of the codes need labelled training data: pass --train-data",
            file=sys.stderr,
        )
    return X, y, X_tr, y_tr


def cmd_evaluate(args: argparse.Namespace) -> int:
    from aekit._utils import atomic_path
    from aekit.estimators import load
    from aekit.metrics import evaluate_model
    from aekit.outputs import output_file

    with (
        output_file(args.json, args.overwrite, "--json") if args.json else contextlib.nullcontext((None, "")) as (
            out,
            name,
        )
    ):
        est = load(args.model)
        X, y, X_tr, y_tr = _labelled_pair(args)
        results = evaluate_model(est, X, y, X_tr, y_tr)
        width = max(map(len, results))
        for k, v in results.items():
            print(f"{k:<{width}}  {v:,.0f}" if k == "parameters" else f"{k:<{width}}  {v:.4f}")
        if out is not None:
            with atomic_path(out.staged(name)) as tmp:
                tmp.write_text(json.dumps({"model": str(args.model), "data": args.data, **results}, indent=1))
            out.commit()
            print(f"metrics: {args.json}")
    return 0


def cmd_denoise(args: argparse.Namespace) -> int:
    from aekit import metrics
    from aekit._utils import InputError, as_float32
    from aekit.estimators import load
    from aekit.objectives import add_noise
    from aekit.outputs import output_file
    from aekit.params import check_noise_factor

    with output_file(args.out, args.overwrite) as (out, name):
        check_noise_factor(args.noise, args.noise_factor)  # the rule of training, too (NaN fails)
        if not 0 <= args.seed < 2**63:
            raise InputError(f"--seed {args.seed} must be in [0, 2**63)")
        est = load(args.model)
        X, _ = load_data(args)
        X_in = as_float32(X)
        clean = X_in
        sigmoid = est.output_activation == "sigmoid"
        if args.add_noise:  # clipped to [0, 1] for a sigmoid model only, as in training
            X_in = add_noise(clean, args.noise, args.noise_factor, random_state=args.seed, clip=sigmoid)
        denoised = est.reconstruct(X_in)
        write_codes(denoised, out.staged(name), prefix="x")  # reconstructions: features, not codes
        out.commit()
    print(f"denoised {denoised.shape}: {args.out}")
    if args.add_noise:
        ref, unit = clean.reshape(denoised.shape), metrics.unit_range(clean)
        peak = 1.0 if unit else None  # PSNR's peak: 1 for data in [0, 1], else the clean data's range
        line = (
            f"PSNR noisy {metrics.psnr(ref, X_in.reshape(denoised.shape), peak):.2f} dB "
            f"-> denoised {metrics.psnr(ref, denoised, peak):.2f} dB"
        )
        if unit:
            line += f"; BCE vs clean {metrics.reconstruction_bce(ref, denoised):.4f}"
        print(line)
    return 0


def cmd_visualize(args: argparse.Namespace) -> int:
    from aekit import plots
    from aekit._utils import InputError
    from aekit.estimators import load
    from aekit.visualize import AETSNE, compare_routes, plot_routes

    files = ["embedding.npy", "embedding.csv", "tsne.png", "explore.html"] + (
        ["comparison.png"] if args.compare else []
    )
    with _out_dir(args, files) as out:
        X, y = load_data(args)
        if args.compare and y is None:
            raise InputError("--compare needs labels (k-NN accuracy); use MNIST or pass --label-column")
        ae = load(args.model) if args.model else None
        vis = AETSNE(ae, perplexity=args.perplexity, distances=args.distances, random_state=args.seed)
        emb = vis.fit_transform(X, y)
        routes = {}
        if args.compare:
            assert y is not None  # checked above
            routes = compare_routes(
                X,
                y,
                ae20=vis.autoencoder_,
                perplexity=args.perplexity,
                random_state=args.seed,
                distances=args.distances,
            )
        # every file is written into the staging folder, then all are put in place together
        write_codes(emb, out.staged("embedding.npy"))
        write_codes(emb, out.staged("embedding.csv"))
        with plots.offscreen():  # files only: no display, the user's backend untouched
            plots.save(
                plots.latent_scatter(emb, y, title=f"AE({vis.autoencoder_.net_.code_size}) → t-SNE"),
                out.staged("tsne.png"),
            )
        title = f"AE({vis.autoencoder_.net_.code_size}) → t-SNE, {args.data}"
        html = _write_explore(
            out.staged("explore.html"),
            emb,
            X,
            y,
            _image_shape(args, X, vis.autoencoder_),
            title=title,
            axis_labels=("t-SNE 1", "t-SNE 2"),
        )
        if routes:
            assert y is not None
            with plots.offscreen():
                plots.save(plot_routes(routes, y), out.staged("comparison.png"))
        out.commit(remove=() if html else ["explore.html"])  # no map of a previous run beside this embedding
    where = Path(args.out)
    print(f"embedding {emb.shape}: {where / 'embedding.npy'}; plot: {where / 'tsne.png'}")
    if html:
        print(f"interactive map: {where / 'explore.html'}")
    for name, r in routes.items():
        print(
            f"{name:<16} k-NN(5) {100 * r['knn5_cv']:.1f}%  trustworthiness {r['trustworthiness']:.3f}  "
            f"{r['seconds']:.1f} s"
        )
    if routes:
        print(f"comparison: {where / 'comparison.png'}")
    return 0


def _image_shape(args: argparse.Namespace, X: np.ndarray, model: Any = None) -> tuple[int, ...] | None:
    """The images' shape for thumbnails: --image-shape, MNIST's 28x28, or a conv model's; None: tabular data."""
    if getattr(args, "image_shape", None):
        return tuple(args.image_shape)
    if args.data in ("mnist", "mnist-test"):
        return (28, 28)
    return tuple(model.image_shape) if getattr(model, "image_shape", None) else None


def _write_explore(
    path: Path, emb: np.ndarray, X: np.ndarray, y: np.ndarray | None, shape: tuple[int, ...] | None, **kw: Any
) -> bool:
    """explore.html beside a visualization; False (with a note) when the optional packages are missing."""
    from aekit.explore import explore

    try:  # the explore extra is optional: without it visualize still writes its PNG
        import bokeh  # noqa: F401
        import PIL  # noqa: F401
    except ImportError as exc:
        print(f"note: {path.name} skipped ({exc.name} is not installed); pip install 'aekit[explore]'", file=sys.stderr)
        return False
    images, features = (X, None) if shape else (None, X)
    explore(emb, y, images, path=path, image_shape=shape, features=features, **kw)
    return True


def cmd_explore(args: argparse.Namespace) -> int:
    from aekit._utils import InputError
    from aekit.explore import check_writable
    from aekit.outputs import output_file

    if (args.model is None) == (args.embedding is None):
        raise InputError(
            "explore needs exactly one of --model (a trained model) or --embedding (a saved 2-D embedding .npy/.csv)"
        )
    check_writable(args.out, "--out")
    with output_file(args.out, args.overwrite) as (out, name):
        emb, X, y, model, axes = _explore_points(args)
        title = args.title or f"{Path(args.embedding or args.model).name} on {args.data}"
        shape = _image_shape(args, X, model)
        if _write_explore(
            out.staged(name), emb, X, y, shape, title=title, axis_labels=axes, max_thumbnails=args.max_thumbnails
        ):
            out.commit()
    print(f"map of {len(emb):,} points: {args.out}")
    return 0


def _explore_points(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Any, tuple[str, str]]:
    """The 2-D points of ``aekit explore``, the data, labels, the model (or None) and the axes' names."""
    from aekit._utils import InputError

    X, y = load_data(args)
    if args.embedding:
        from aekit.data import load_array

        emb, _ = load_array(args.embedding)
        model, axes = None, ("dim 1", "dim 2")
    else:
        from aekit.estimators import load

        model = load(args.model)
        emb, axes = model.transform(X), ("z1", "z2")
        if emb.shape[1] != 2:  # a wider code: AE → t-SNE with this model
            from aekit.visualize import AETSNE

            emb, axes = (
                AETSNE(model, perplexity=args.perplexity, random_state=args.seed).fit_transform(X),
                ("t-SNE 1", "t-SNE 2"),
            )
    if len(emb) != len(X):
        raise InputError(
            f"--embedding {args.embedding} has {len(emb)} rows but {args.data} has {len(X)} samples; "
            "pass the data it was computed from (same --limit)"
        )
    return emb, X, y, model, axes


def cmd_export(args: argparse.Namespace) -> int:
    from aekit import export
    from aekit.estimators import load

    files = export.ONNX_FILES if args.format == "onnx" else export.PROJECTOR_FILES
    with _out_dir(args, files) as out:
        est = load(args.model)
        if args.format == "onnx":
            paths = export.to_onnx(est, out.staging(files))
        else:
            X, y = load_data(args)
            shape = _image_shape(args, X, est)
            paths = export.to_projector(
                est.transform(X), out.staging(files), y, X if shape else None, image_shape=shape
            )
        out.commit()
    print(f"{args.format}: " + ", ".join(str(Path(args.out) / p.name) for p in paths.values()))
    return 0
