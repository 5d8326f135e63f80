"""The ``aekit`` command: a thin shell over the estimators.

Every estimator parameter is a flag of ``aekit train`` (``--n-components 20``,
``--hidden-layer-sizes 500,300,100``), built from the table in ``params``; errors of input
become one line on stderr and exit code 2, never a traceback (a bug still shows one).
Ctrl-C (or SIGTERM) at any moment gives exit code 130 and one line: this module imports only
the standard library when loaded, so torch and the rest load inside ``main``'s guard. Files
are written through ``aekit.outputs`` (a locked folder, no file replaced without --overwrite,
the run's files put in place together).
"""

from __future__ import annotations

import argparse
import contextvars
import errno
import logging
import re
import sys
from collections.abc import Callable, Collection, Sequence

from aekit.commands import (  # noqa: F401 - TRAIN_FILES, load_data and write_codes are part of this module's API
    TRAIN_FILES,
    cmd_demo,
    cmd_denoise,
    cmd_embed,
    cmd_evaluate,
    cmd_explore,
    cmd_export,
    cmd_summary,
    cmd_train,
    cmd_visualize,
    load_data,
    visualize_flags,
    write_codes,
)

TYPE_CHECKING = False  # (not typing's: one import less before main's guard; type checkers know the name)
if TYPE_CHECKING:  # the rest is imported where it is used: loading this module stays light (see above)
    from typing import Any, NoReturn

    from aekit.params import Param


log = logging.getLogger("aekit")


def _on_command_line(value: Any) -> str:
    """A value as it is typed as a flag (``500,300,100``, ``none``, ``true``)."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value).lower() if value is None or isinstance(value, bool) else str(value)


def _metavar(p: Param) -> str:
    from aekit.params import AutoOr, Bool, Interval, Options, Sizes

    c = p.constraint
    if isinstance(c, AutoOr):
        return "auto|N"
    if isinstance(c, Options):
        return "{" + ",".join(_on_command_line(v) for v in c.choices) + "}"
    if isinstance(c, Bool):
        return "{true,false}"
    if isinstance(c, Sizes):
        return "N,N,..."
    if isinstance(c, Interval):
        return ("N" if c.type is int else "X") + ("|none" if p.none_ok else "")
    return {"random_state": "N|none", "device": "NAME"}.get(p.name, "V")


def _nproc(text: str) -> int:
    """``--nproc``: a whole number of local processes, at least 1 and at most one per CPU core it may use."""
    from aekit.threads import available_cores

    try:
        n = int(text)
    except ValueError:
        n = 0
    cores = available_cores()  # its CPU affinity and cgroup quota: a container of 2 CPUs on a 64-core host has 2
    if not 1 <= n <= cores:
        raise argparse.ArgumentTypeError(
            f"--nproc must be a whole number of processes from 1 to {cores} (the CPU cores aekit may use here), "
            f"got {text!r}"
        )
    return n


def _converter(p: Param) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return p.from_text(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{p.flag_name} {exc}; got {text!r}") from None

    convert.__name__ = p.name
    return convert


def _add_estimator_flags(
    parser: argparse.ArgumentParser,
    names: Sequence[str] | None = None,
    *,
    title: str = "model parameters (the estimator's; defaults = the reference recipe)",
    defaults: dict[str, Any] | None = None,
) -> None:
    """The estimator's parameters ``names`` (default: all of ``params.FLAGS``) as flags, from the table."""
    from aekit.params import FLAGS, PARAMS, TSNE_DEFAULTS

    group = parser.add_argument_group(title)
    for name in FLAGS if names is None else names:
        p = PARAMS[name]
        only = " (--method tsne)" if p.tsne else " (--supervised)" if p.supervised else ""
        default = (defaults or {}).get(name, p.default)
        tsne = (
            f"; --method tsne: {_on_command_line(TSNE_DEFAULTS[name])}"
            if name in TSNE_DEFAULTS and names is None
            else ""
        )
        group.add_argument(
            p.flag_name,
            dest=name,
            type=_converter(p),
            default=argparse.SUPPRESS,
            metavar=_metavar(p),
            help=f"{p.doc}{only} (default: {_on_command_line(default)}{tsne})",
        )


def _add_data_args(parser: argparse.ArgumentParser, *, labels: bool = True, default: str = "mnist") -> None:
    parser.add_argument(
        "data",
        nargs="?",
        default=default,
        help="'mnist' (train split), 'mnist-test', a .npy/.npz/.csv/.tsv file, an .h5 or .zarr array, "
        f"or a folder of images (default: {default})",
    )
    parser.add_argument(
        "--mnist-dir", help="folder with the MNIST IDX files (else $AEKIT_MNIST_DIR, the cache, or a verified download)"
    )
    if labels:
        parser.add_argument(
            "--label-column",
            help="CSV column (name or index) holding labels; for an .npz, HDF5 file or zarr group: the name of the "
            "array of labels (default: y, labels, label, target or targets)",
        )
    parser.add_argument(
        "--id-column",
        help="CSV column (name or index) holding row ids: not a feature; embed and visualize write the ids beside the "
        "codes (default: a pandas index column, else the row number from 0)",
    )
    parser.add_argument("--limit", type=int, help="use only the first N samples")


def _add_image_shape_flag(parser: argparse.ArgumentParser, also: str = "") -> None:
    """--image-shape of a subcommand that runs a trained model on data."""
    from aekit.params import PARAMS

    parser.add_argument(
        "--image-shape",
        type=_converter(PARAMS["image_shape"]),
        metavar="[C,]H,W",
        help="read a folder of images at this size (default: the size the model was trained at, where known)" + also,
    )


# ----------------------------------------------------------------------------- entry point


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (the full usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_precision_flag(p: argparse.ArgumentParser) -> None:
    """``--precision`` of the subcommands that run a saved model (``commands.load_model`` applies it)."""
    p.add_argument(
        "--precision",
        type=str.lower,  # any case, as the estimator flags take it
        choices=("float32", "bfloat16"),  # accel.PRECISIONS, not imported here: it loads torch
        help="arithmetic of the model's passes (default: the model's; bfloat16 is faster on CPUs with AMX)",
    )


def build_parser() -> argparse.ArgumentParser:
    from aekit import __version__
    from aekit.objectives import NOISE_KINDS
    from aekit.params import PARAMS, PRESETS, is_supervised

    parser = _Parser(
        prog="aekit", description="Autoencoders for dimensionality reduction, denoising and visualization."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (each epoch of a training)")
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train an autoencoder; writes model, history and training curve")
    _add_data_args(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--supervised", action="store_true", help="train a SupervisedAutoencoder (needs labels)")
    p.add_argument(
        "--method",
        choices=["autoencoder", "tsne"],
        default="autoencoder",
        help="tsne: a parametric t-SNE map (ParametricTSNE; with --supervised its labels add the classifier head) "
        "(default: autoencoder)",
    )
    p.add_argument("--preset", choices=sorted(PRESETS), help="start from a named recipe")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model in --out")
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.safetensors")
    p.add_argument("--progress", action="store_true", help="show a progress bar even when not on a terminal")
    p.add_argument(
        "--nproc",
        type=_nproc,
        metavar="N",
        help="train on N local processes, data-parallel (launches torch.distributed.run; --batch-size stays "
        "the global batch; on CUDA, one process per GPU)",
    )
    p.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="keep --out/checkpoint.safetensors after a finished run, to continue it later with --resume "
        "and more --epochs (an interrupted run always keeps it)",
    )
    _add_estimator_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("embed", help="encode data with a trained model; writes codes as .npy or .csv")
    p.add_argument(
        "model",
        help="a model file written by `aekit train` or Autoencoder.save, or a folder holding an AE → t-SNE map "
        "(`aekit visualize --save-map`, AETSNE.save): its t-SNE coordinates for the rows",
    )
    _add_data_args(p)
    p.add_argument("--out", required=True, help="codes file (.npy or .csv)")
    p.add_argument(
        "--predict",
        action="store_true",
        help="also the predicted class of each row (a model trained with labels): a `predicted` column of the CSV",
    )
    p.add_argument(
        "--error",
        action="store_true",
        help="also each row's mean squared reconstruction error, in the units the model was fitted in (after "
        "--scale; high: unlike the training data): a `reconstruction_error` column of the CSV",
    )
    _add_image_shape_flag(p)
    _add_precision_flag(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("summary", help="parameter table: weights, biases, totals per layer")
    p.add_argument("layers", nargs="?", help="comma-separated dense layer sizes, e.g. 784,100,20,100,784")
    p.add_argument("--model", help="a trained model file instead")
    p.add_argument("--preset", choices=sorted(PRESETS), help="a named recipe's network (default: dense)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("demo", help="the whole mission on MNIST: models, plots and a report")
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    p.add_argument("--mnist-dir", help="folder with the MNIST IDX files")
    p.add_argument("--quick", action="store_true", help="a few epochs on a subset: minutes, not the full numbers")
    p.add_argument("--epochs", type=int, help="override every model's epochs")
    p.add_argument(
        "--only",
        help="comma-separated sections to run (with --overwrite, a previous run's other sections stay in the report)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a folder that holds a previous demo (replaces its models and report)",
    )
    p.add_argument("--progress", action="store_true", help="show progress bars also when stderr is no terminal")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "evaluate", help="metrics of a trained model: reconstruction, PSNR, code accuracy, trustworthiness"
    )
    p.add_argument("model", help="a model file written by `aekit train` or Autoencoder.save")
    _add_data_args(p, default="mnist-test")
    p.add_argument(
        "--train-data",
        help="labelled data the code classifiers are fitted on (default: mnist when evaluating mnist-test, else "
        "cross-validated within the data's own codes)",
    )
    _add_image_shape_flag(p)
    _add_precision_flag(p)
    p.add_argument(
        "--outlier-label",
        metavar="VALUE",
        help="the label that marks outliers: also the ROC AUC and average precision with which each row's "
        "reconstruction error (as embed --error writes it) finds them",
    )
    p.add_argument("--json", help="also write the metrics to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("denoise", help="run data through a (denoising) model; writes the reconstructions")
    p.add_argument("model", help="a model file written by `aekit train` or Autoencoder.save")
    _add_data_args(p)
    p.add_argument("--out", required=True, help="output file (.npy or .csv)")
    p.add_argument("--add-noise", action="store_true", help="corrupt the data first and report PSNR noisy vs denoised")
    noise_factor = PARAMS["noise_factor"]
    p.add_argument("--noise", default="gaussian", choices=NOISE_KINDS, help="kind of corruption (default: gaussian)")
    p.add_argument(
        "--noise-factor",
        type=float,
        default=noise_factor.default,
        help=f"{noise_factor.doc} (default: {noise_factor.default})",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the added noise (default: 0)")
    p.add_argument(
        "--picture",
        metavar="FILE.png",
        help="also draw the first 10 images: clean, noisy (with --add-noise) and denoised, one row each",
    )
    _add_image_shape_flag(p, "; with --picture, the shape of .npy/.csv images (MNIST: 28,28)")
    _add_precision_flag(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out (and --picture) file")
    p.set_defaults(func=cmd_denoise)

    p = sub.add_parser(
        "visualize",
        help="AE → t-SNE embedding, scatter plot and the three-route comparison",
        epilog="A trained model may also come first, as embed takes it: aekit visualize MODEL DATA --out DIR",
    )
    _add_data_args(p)
    p.add_argument(
        "--model",
        help="a trained model for every panel (default: train an AE here, from the model flags below; "
        "with --compare, panels a given model cannot fill are left out with a note)",
    )
    p.add_argument("--out", required=True, help="output folder")
    # defaults set by cmd_visualize: a given flag is told apart from its default (unused beside a map: a note)
    p.add_argument("--perplexity", type=float, default=argparse.SUPPRESS, help="t-SNE perplexity (default: 30)")
    p.add_argument(
        "--distances",
        choices=["input", "code"],
        default=argparse.SUPPRESS,
        help="t-SNE affinities from input-space distances to the code-space neighbours (default) "
        "or from code distances",
    )
    p.add_argument("--seed", type=int, default=0, help="random_state of the AE and t-SNE (default: 0)")
    p.add_argument("--compare", action="store_true", help="also AE → 2-D and t-SNE from raw, side by side")
    p.add_argument(
        "--save-map",
        action="store_true",
        help="also save the AE → t-SNE map in --out (autoencoder.safetensors, tsne.safetensors): "
        "`aekit embed OUT DATA` places new points in it",
    )
    p.add_argument("--overwrite", action="store_true", help="replace files of an earlier run in --out")
    unsupervised = sorted(name for name, recipe in PRESETS.items() if not is_supervised(recipe))
    p.add_argument("--preset", choices=unsupervised, help="start the AE trained here from a named recipe")
    _add_estimator_flags(
        p,
        visualize_flags(),
        title="model parameters of the AE trained here (without --model; its random_state is --seed)",
        defaults=PRESETS["dense20"],
    )
    p.set_defaults(func=cmd_visualize)

    p = sub.add_parser(
        "explore",
        help="interactive map in one HTML file: hover thumbnails, select and save indices",
        epilog="The model may also come first, as embed takes it: aekit explore MODEL DATA --out PAGE.html",
    )
    _add_data_args(p)
    p.add_argument("--model", help="a trained model: its 2-D codes, or AE → t-SNE for wider codes")
    p.add_argument(
        "--embedding", help="or a saved 2-D embedding (.npy/.csv, e.g. from `aekit visualize`) of the same data"
    )
    p.add_argument("--out", required=True, help="the HTML file to write")
    _add_image_shape_flag(p, "; the thumbnails' shape for .npy/.csv images (MNIST: 28,28)")
    p.add_argument(
        "--max-thumbnails",
        type=int,
        default=100_000,
        help="above this many points a random subset gets thumbnails (default: 100000)",
    )
    p.add_argument("--title", help="the page's title")
    p.add_argument(
        "--error",
        action="store_true",
        help="colour the points by each row's reconstruction error (outliers stand out): the --model's, or the "
        "`reconstruction_error` column of an --embedding CSV that `aekit embed --error` wrote",
    )
    p.add_argument(
        "--perplexity", type=float, default=30.0, help="t-SNE perplexity for a model with wider codes (default: 30)"
    )
    p.add_argument("--seed", type=int, default=0, help="random_state of t-SNE (default: 0)")
    _add_precision_flag(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out page")
    p.set_defaults(func=cmd_explore)

    p = sub.add_parser("export", help="a trained model as ONNX (encoder + decoder) or TensorBoard projector files")
    p.add_argument("model", help="a model file written by `aekit train` or Autoencoder.save")
    _add_data_args(p, default="mnist-test")
    p.add_argument(
        "--format",
        choices=["onnx", "projector"],
        required=True,
        help="onnx: encoder.onnx + decoder.onnx (+ classifier.onnx with a head); projector: codes of the data, "
        "labels, sprite",
    )
    p.add_argument("--out", required=True, help="output folder")
    _add_image_shape_flag(p, "; the sprite's shape for .npy/.csv images (MNIST: 28,28)")
    p.add_argument("--overwrite", action="store_true", help="replace files of an earlier export in --out")
    p.set_defaults(func=cmd_export)
    for p in sub.choices.values():  # -v also after the subcommand (SUPPRESS: does not reset a -v given before it)
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log progress")
        # an error naming one of these (its dest) shows it as this command's flag: ``--noise-factor 1.5``
        flags = {a.dest for a in p._actions if a.option_strings and a.dest not in ("help", "verbose")}
        p.set_defaults(param_flags=frozenset(flags), command_parser=p)
    return parser


def _as_typed(shown: str, quote_text: bool) -> str:
    """A value shown in a message (its repr) as it is typed after a flag: ``28,28``, ``none``, ``mse``.

    Text stays quoted where ``quote_text`` (the value at fault: ``--precision 'half'``); a repr that is no
    Python literal (``np.float64(1.5)``) is kept as it is.
    """
    import ast

    try:
        value = ast.literal_eval(shown)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        if re.fullmatch(r"\((\w+)(, \w+)+\)", shown):  # a shape named in words, (height, width): height,width
            return shown[1:-1].replace(", ", ",")
        return shown
    if isinstance(value, str):
        return shown if quote_text else value
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) for v in value):
        return ",".join(map(str, value))
    return _on_command_line(value) if value is None or isinstance(value, (bool, int, float)) else shown


def _one_line(exc: BaseException, flags: Collection[str]) -> str:
    """The error as one line; the parameters that are this command's flags are named as flags (``--n-components 0``).

    ``flags``: the names (argparse dests) of the command's options. A value the message suggests
    (``{loss='mse'}`` in the template) is shown as it is typed (``--loss mse``); the value at fault keeps
    its quotes (``--precision 'half'``).
    """
    from aekit._utils import _NAMED, InputError

    if isinstance(exc, InputError):  # the parameter names are data (exc.param, exc.values): no parsing of the text
        suggested = {m.group(1, 2) for m in _NAMED.finditer(exc.template or "") if m.group(2) is not None}

        def style(name: str, shown: str) -> str:
            if name not in flags:
                return f"{name}={shown}"
            return f"{_flag(name)} {_as_typed(shown, quote_text=(name, shown) not in suggested)}"

        msg = exc.render(style)
        if exc.template is None and exc.param is not None and exc.param in flags:
            msg = f"{_flag(exc.param)}: {msg}"
    else:
        msg = str(exc)
    msg = msg.strip() or type(exc).__name__
    if isinstance(exc, FileNotFoundError) and exc.filename:
        msg = f"{exc.filename}: no such file or folder"
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG and exc.filename:
        import os
        from pathlib import Path

        name = str(exc.filename)
        longest = max((len(os.fsencode(part)) for part in Path(name).parts), default=0)
        what = (  # one part over the usual 255 bytes, else the whole path over the usual 4,096
            f"its longest part: {longest} bytes; most file systems allow 255"
            if longest > 255
            else f"{len(os.fsencode(name)):,} bytes in all; most systems allow 4,096"
        )
        msg = f"{name[:60]}...: file name too long for this file system ({what}); choose a shorter name"
    return msg


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


#: signals received during this command: an interrupt that lands inside a C extension's import can surface
#: as that import's ImportError (numpy's), not as KeyboardInterrupt
_SIGNALLED: list[int] = []


def _interrupted_import(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt (or a recorded SIGTERM) caused this import error, somewhere in its chain."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt) or "PyCapsule_Import could not import" in str(e):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return bool(_SIGNALLED)


def _interrupt(signum: int, frame: Any) -> None:
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``aekit`` command; returns its exit code (0, 2 for an error, 130 when interrupted).

    Ctrl-C and SIGTERM are one ``KeyboardInterrupt`` from here on, so either, at any moment (while
    torch loads, while arguments are parsed, while data loads or a model trains), ends with one
    line and exit code 130; a training keeps its model (see ``cmd_train``).
    """
    import signal
    import threading

    previous = None
    if hasattr(signal, "SIGTERM") and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt) or signal.SIG_DFL
    del _SIGNALLED[:]
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("aekit: interrupted", file=sys.stderr)
        return 130
    except ImportError as exc:
        if _interrupted_import(exc):  # Ctrl-C while numpy's C extensions load surfaces as their ImportError
            print("aekit: interrupted", file=sys.stderr)
            return 130
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class _LogLines(logging.Formatter):
    """aekit's log lines as its warnings read (``aekit: warning: ...``); progress (-v) as ``aekit: ...``."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not record.name.startswith("aekit"):
            return f"{record.levelname} {record.name}: {text}"  # another library's line keeps its origin
        if record.levelno < logging.WARNING:  # progress (-v): values as they are ("loss=0.70"), no advice
            return f"aekit: {text}"
        return f"aekit: {record.levelname.lower()}: {as_flags(text)}"


def as_flags(text: str) -> str:
    """A warning's advice in the command line's words: an estimator parameter set to a quoted choice as in
    Python (``scale='minmax'``) becomes its flag (``--scale minmax``). Numbers and None are left alone
    (``loss=0.0123`` reports a value, ``random_state=None`` a fact), and so are a call's arguments
    (``set_params(precision='bfloat16')``), paths and quoted names."""
    from aekit.params import PARAMS

    flags = _COMMAND_FLAGS.get()

    def option(name: str) -> str | None:  # the running subcommand's flag for a parameter, if it has one
        if name not in PARAMS:
            return None
        flag = "--" + name.replace("_", "-")
        if flags is None or flag in flags:
            return flag
        return "--seed" if name == "random_state" and "--seed" in flags else None  # visualize's, explore's seed

    def flag(m: re.Match[str]) -> str:
        name, value = m.group(1), m.group(2)
        opt = option(name)
        if opt is None:
            return m.group(0)
        if value.startswith("("):  # a tuple of numbers, as the flag takes it: (8, 8) -> 8,8
            return f"{opt} {','.join(v.strip() for v in value[1:-1].split(','))}"
        return f"{opt} {value.strip(chr(39) + chr(34))}"

    def named(m: re.Match[str]) -> str:  # "lower learning_rate": advice naming a parameter without a value
        opt = option(m.group(2))
        return f"{m.group(1)} {opt}" if opt else m.group(0)

    def preset(m: re.Match[str]) -> str:  # "**aekit.PRESETS['tabular']": a preset is --preset NAME
        return f"--preset {m.group(1)}" if flags is None or "--preset" in flags else m.group(0)

    return _ADVICE.sub(named, _KEYWORD.sub(flag, _PRESET.sub(preset, text)))


#: the running subcommand's option strings (set by ``main``): advice names only flags it has; None: any
_COMMAND_FLAGS: contextvars.ContextVar[frozenset[str] | None] = contextvars.ContextVar("command_flags", default=None)


# "lower learning_rate", "raise learning_rate": a parameter named as the thing to change (a name with "_", so
# that prose such as "a lower loss" is left alone)
_ADVICE = re.compile(r"\b(lower|raise|increase|decrease|smaller|larger|another|set)\s+([a-z]+_[a-z_]+)\b(?![=(])")
# a recipe of aekit.PRESETS, as advice names it for Python
_PRESET = re.compile(r"\*\*aekit\.PRESETS\['([a-z0-9_]+)'\]")
# name='value' or name=(1, 2), unless right after "(" (a call's first argument), a letter, a dot, a slash or a quote
_KEYWORD = re.compile(r"(?<![\w.(/'\"])([a-z][a-z_]*)=('[^']*'|\"[^\"]*\"|\(\d+(?:, ?\d+)+\))")


def _one_line_warnings() -> Callable[[], None]:
    """Show aekit's warnings as one line each (``aekit: warning: ...``), not Python's file:line and source line,
    and each text once per command; returns the function that restores the previous format."""
    import warnings
    from pathlib import Path

    package = Path(__file__).resolve().parent
    previous = warnings.formatwarning
    shown: set[str] = set()  # a command that fits twice (visualize --compare) says a fit's warning once

    def format_warning(
        message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
    ) -> str:
        if issubclass(category, UserWarning) and Path(filename).resolve().is_relative_to(package):
            text = f"aekit: warning: {as_flags(str(message))}\n"
            if text in shown:
                return ""
            shown.add(text)
            return text
        return previous(message, category, filename, lineno, line)

    warnings.formatwarning = format_warning

    def restore() -> None:
        warnings.formatwarning = previous

    return restore


def _did_you_mean(unknown: Sequence[str], args: argparse.Namespace) -> str:
    """For a mistyped flag (``--hiden-layer-sizes``): the subcommand's nearest flag, as a suggestion."""
    import difflib

    flags = [f for action in args.command_parser._actions for f in action.option_strings if f.startswith("--")]
    for word in unknown:
        if word.startswith("--"):
            near = difflib.get_close_matches(word.split("=", 1)[0], flags, n=1, cutoff=0.75)
            if near:
                return f" (did you mean {near[0]}?)"
    return ""


def _model_then_data(args: argparse.Namespace, unknown: Sequence[str]) -> bool:
    """A command that takes its model as ``--model`` (explore, visualize) given ``MODEL DATA`` as embed and
    evaluate take them: a trial's `aekit explore MODEL DATA` was "unrecognized arguments"."""
    if len(unknown) != 1 or unknown[0].startswith("-") or getattr(args, "model", "absent") is not None:
        return False
    from aekit.commands import modelish

    return modelish(getattr(args, "data", None))


def _main(argv: Sequence[str] | None) -> int:
    import warnings

    from aekit._utils import AekitError  # with torch: inside main's guard

    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if _model_then_data(args, unknown):  # `aekit explore MODEL DATA`, as embed and evaluate take them
        args.model, args.data, unknown = args.data, unknown[0], []
    if unknown:  # the subcommand's parser says it, pointing at its own --help
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}{_did_you_mean(unknown, args)}")
    args.argv = list(sys.argv[1:] if argv is None else argv)  # aekit train --nproc launches the same command
    for name, value in vars(args).items():  # a NUL byte reaches no file system call (only main(argv) can pass one)
        if isinstance(value, str) and "\0" in value:
            flag = name if name in ("data", "model") else "--" + name.replace("_", "-")
            msg = f"{flag} {value!r} holds a NUL byte; no file name can, pass a real path"
            print(f"aekit: error: {msg}", file=sys.stderr)
            return 2
    before = list(logging.getLogger().handlers)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    for handler in logging.getLogger().handlers:
        if handler not in before:  # the handler basicConfig made, not one the caller set up
            handler.setFormatter(_LogLines())
    restore = _one_line_warnings()
    # -v shows the command's progress; openTSNE's own INFO lines are its internals (kept at its warnings)
    tsne_log = logging.getLogger("openTSNE")
    tsne_level = tsne_log.level
    tsne_log.setLevel(logging.WARNING)
    flags = _COMMAND_FLAGS.set(frozenset(args.command_parser._option_string_actions))  # advice in its flags
    try:
        with warnings.catch_warnings():
            # a CSV's columns are matched to a model's features by name in the commands (model_columns); other
            # data name none and are read by position, as the model was trained: sklearn's warning adds nothing
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return int(args.func(args))
    except (AekitError, OSError) as exc:  # input errors; anything else is a bug and shows its traceback
        print(f"aekit: error: {_one_line(exc, getattr(args, 'param_flags', frozenset()))}", file=sys.stderr)
        return 2
    finally:
        _COMMAND_FLAGS.reset(flags)
        restore()
        tsne_log.setLevel(tsne_level)


if __name__ == "__main__":
    sys.exit(main())
