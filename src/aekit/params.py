"""One table of the estimators' parameters: type, range or choices, default, one-line doc, CLI flag.

``PARAMS`` is read by the estimators' validation (``validate``), by the CLI (its flags,
converters and help text) and by a docstring test, so the three cannot disagree (the idea
of scikit-learn's per-estimator constraint tables, written for this package). The rules
between parameters (``RULES``) live here too, and ``check_noise_factor`` is the one
noise-factor rule for ``Autoencoder(noise=...)`` and ``aekit denoise``. Every error is an
``InputError`` carrying the parameter's name as ``param``.

Choice names live beside the code that dispatches on them (``modules``, ``objectives``,
``optim``, ``accel``, ``training``); this module reads them from there.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from aekit._utils import InputError
from aekit.accel import COMPILE_MODES, PRECISIONS
from aekit.batches import DATA_LOADING
from aekit.modules import ACTIVATIONS, ARCHITECTURES, OUTPUT_ACTIVATIONS
from aekit.objectives import AUGMENTATIONS, NOISE_KINDS, RECONSTRUCTION_LOSSES
from aekit.optim import OPTIMIZERS
from aekit.scaling import AUTO, SCALES
from aekit.training import AUTO_EPOCHS, AUTO_MIN_STEPS, SCHEDULES

_NONE_WORDS = ("none", "null", "")

#: the largest values that can run (beyond them PyTorch fails deep inside, or memory runs out first);
#: a network within them that still would not fit in memory is refused by ``resources.check_memory``
MAX_WIDTH = 2**20  # units of one dense layer, the code size, channels of one conv level
MAX_KERNEL = 255
MAX_IMAGE_SIDE = 2**16
#: the largest rate float32 holds: beyond it the step is inf before training starts. Huge rates that run
#: diverge with aekit's own TrainingDivergedError, which tests rely on (1e10, 1e30)
MAX_LEARNING_RATE = float(np.finfo(np.float32).max)
MAX_SEED = 2**32 - 1  # numpy's (and scikit-learn's) seed range


def sizes(value: Any) -> tuple[int, ...]:
    """Layer widths as a tuple: one integer (which ``Sizes(one_ok=True)`` accepts) is one layer."""
    return (int(value),) if isinstance(value, (int, np.integer)) else tuple(int(v) for v in value)


def param_error(param: str, template: str, **values: Any) -> InputError:
    """An ``InputError`` about ``param``; ``template`` names parameters as ``{name}`` (see ``InputError``)."""
    return InputError(template, param=param, values=values)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


# ----------------------------------------------------------------------------- constraints


class Constraint(Protocol):
    def ok(self, value: Any) -> bool: ...

    def text(self) -> str: ...  # what is expected, after "must be "

    def from_text(self, text: str) -> Any: ...  # a command-line word; ValueError says what it expects


def _fail(reason: str) -> Any:
    raise ValueError(reason)


@dataclass(frozen=True)
class Interval:
    """An int or a finite float in a range; an int may stand for a float."""

    type: type
    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def ok(self, value: Any) -> bool:
        if self.type is int and not (isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))):
            return False
        if not _number(value) or math.isnan(value) or (self.type is float and math.isinf(value)):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return bool(above and below)

    def text(self) -> str:
        if self.type is int:
            return f"an integer >= {self.low:g}" + ("" if self.high == math.inf else f" and <= {int(self.high)}")
        if self.high == math.inf:  # (0, inf]: infinity is no number the check lets through
            return f"a finite number {'>' if self.low_open else '>='} {self.low:g}"
        return f"a number in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def from_text(self, text: str) -> Any:
        try:
            return int(text)
        except ValueError:
            pass
        try:  # 2.5 for an integer is passed on: the range check names the flag and what it expects
            return float(text)
        except ValueError:
            return _fail("expects a number")


@dataclass(frozen=True)
class AutoOr:
    """The word "auto" (a value resolved in ``fit``, e.g. ``epochs_``) or a value of ``inner``."""

    inner: Interval

    def ok(self, value: Any) -> bool:
        return (isinstance(value, str) and value == "auto") or self.inner.ok(value)

    def text(self) -> str:
        return f"'auto' or {self.inner.text()}"

    def from_text(self, text: str) -> Any:
        if text.strip().lower() == "auto":
            return "auto"
        try:
            return self.inner.from_text(text)
        except ValueError:
            return _fail("expects auto or a number")


@dataclass(frozen=True)
class Options:
    """One of a few values; True/False/None match only themselves (1 is not True)."""

    choices: tuple[Any, ...]

    def ok(self, value: Any) -> bool:
        return any(
            value is c if c is None or isinstance(c, bool) else (isinstance(value, str) and value == c)
            for c in self.choices
        )

    def text(self) -> str:
        return f"one of {list(self.choices)}"

    def from_text(self, text: str) -> Any:
        word = text.strip().lower()
        if None in self.choices and word in _NONE_WORDS:
            return None
        if True in self.choices and word in ("true", "false"):
            return word == "true"
        for c in self.choices:  # the command line's spelling of a choice, in any case ("MSE")
            if isinstance(c, str) and c.lower() == word:
                return c
        shown = ["none" if c is None else str(c).lower() if isinstance(c, bool) else c for c in self.choices]
        return _fail(f"expects one of {', '.join(shown)}")


@dataclass(frozen=True)
class Sizes:
    """A sequence of positive integers (layer widths, an image shape), each at most ``high``.

    ``one_ok``: a single integer is one layer (scikit-learn's MLP takes ``hidden_layer_sizes=16``);
    readers turn it into a tuple with ``sizes``.
    """

    allow_empty: bool = True
    lengths: tuple[int, ...] = ()  # allowed lengths; () = any
    example: str = "(500, 300, 100)"
    high: int = 2**20
    one_ok: bool = False

    def ok(self, value: Any) -> bool:
        if isinstance(value, (str, bytes)):
            return False
        if self.one_ok and isinstance(value, (int, np.integer)):
            value = [value]
        try:
            sizes = list(value)
        except TypeError:
            return False
        return (
            (bool(sizes) or self.allow_empty)
            and (not self.lengths or len(sizes) in self.lengths)
            and all(
                isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)) and 1 <= s <= self.high
                for s in sizes
            )
        )

    def text(self) -> str:
        count = " or ".join(map(str, self.lengths)) + " " if self.lengths else ""
        one = " (or one integer)" if self.one_ok else ""
        return f"a sequence of {count}positive integers up to {self.high:,}{one}, e.g. {self.example}"

    def from_text(self, text: str) -> Any:
        example = self.example.strip("()").replace(" ", "")
        if not text.strip():
            return ()  # no sizes (a network without hidden layers, where allowed)
        parts = [v.strip() for v in text.split(",")]
        if not all(parts):  # "32,,16": a size left out is a typo, not a request for two layers
            return _fail(f"has an empty item between commas; expects comma-separated integers, e.g. {example}")
        try:
            return tuple(int(v) for v in parts)
        except ValueError:
            return _fail(f"expects comma-separated integers, e.g. {example}")


@dataclass(frozen=True)
class Bool:
    def ok(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))

    def text(self) -> str:
        return "True or False"

    def from_text(self, text: str) -> Any:
        word = text.strip().lower()
        if word in ("true", "yes", "on", "false", "no", "off"):
            return word in ("true", "yes", "on")
        return _fail("expects true or false")


@dataclass(frozen=True)
class InstanceOf:
    """Checked by type only: what the value means is checked where it is used (e.g. the device)."""

    types: tuple[type, ...]
    description: str

    def ok(self, value: Any) -> bool:
        return isinstance(value, self.types)

    def text(self) -> str:
        return self.description

    def from_text(self, text: str) -> Any:
        return text


@dataclass(frozen=True)
class RandomState:
    def ok(self, value: Any) -> bool:
        return Interval(int, 0, MAX_SEED).ok(value) or isinstance(value, np.random.RandomState)

    def text(self) -> str:
        return f"an int >= 0 and <= {MAX_SEED} (2**32 - 1), a numpy RandomState or None"

    def from_text(self, text: str) -> Any:
        return Interval(int, 0).from_text(text)


@dataclass(frozen=True)
class Callables:
    def ok(self, value: Any) -> bool:
        return isinstance(value, (list, tuple)) and all(callable(cb) for cb in value)

    def text(self) -> str:
        return "a list of callables cb(epoch, logs)"

    def from_text(self, text: str) -> Any:
        return _fail("is not a command-line option")


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Param:
    name: str
    constraint: Constraint
    default: Any
    doc: str  # one line: the CLI's help text
    none_ok: bool = False
    flag: bool = True  # a CLI flag of `aekit train`
    supervised: bool = False  # SupervisedAutoencoder only (its classifier head and loss weights)
    tsne: bool = False  # ParametricTSNE only (its neighbour-embedding loss)

    @property
    def flag_name(self) -> str:
        return "--" + self.name.replace("_", "-")

    def ok(self, value: Any) -> bool:
        return (value is None and self.none_ok) or self.constraint.ok(value)

    def check(self, value: Any) -> None:
        if not self.ok(value):
            raise param_error(self.name, f"{{{self.name}}} must be {self.constraint.text()}", **{self.name: value})

    def from_text(self, text: str) -> Any:
        """The value a command-line word stands for (ValueError: what the flag expects)."""
        if self.none_ok and text.strip().lower() in _NONE_WORDS:
            return None
        try:
            value = self.constraint.from_text(text)
        except ValueError as exc:
            if not self.none_ok:
                raise
            raise ValueError(f"{exc} or none") from None
        floats = isinstance(self.constraint, Interval) and self.constraint.type is float
        return float(value) if floats and isinstance(value, int) else value


_SIZES = Sizes(high=MAX_WIDTH, one_ok=True)
_ACTIVATION = Options(tuple(sorted(ACTIVATIONS)))
_UNIT = Interval(float, 0.0, 1.0)
_POSITIVE = Interval(float, 0.0, math.inf)
_POSITIVE_OPEN = Interval(float, 0.0, math.inf, low_open=True)

_TABLE = [
    Param("hidden_layer_sizes", _SIZES, (500, 300, 100), "dense encoder widths; the decoder mirrors them"),
    Param(
        "n_components",
        Interval(int, 1, MAX_WIDTH),
        2,
        "code size (none: conv only, the spatial feature map)",
        none_ok=True,
    ),
    Param("architecture", Options(ARCHITECTURES), "dense", "body of encoder and decoder"),
    Param("activation", _ACTIVATION, None, "hidden activation (none: tanh for dense, relu for conv)", none_ok=True),
    Param("code_activation", _ACTIVATION, "tanh", "activation of a deterministic code layer"),
    Param(
        "output_activation",
        Options((AUTO, *OUTPUT_ACTIVATIONS)),
        AUTO,
        "activation of the reconstruction (auto: sigmoid for data in [0, 1], else linear)",
    ),
    Param(
        "loss",
        Options((AUTO, *RECONSTRUCTION_LOSSES)),
        AUTO,
        "reconstruction loss, mean per element (auto: bce for data in [0, 1], else mse)",
    ),
    Param(
        "scale",
        Options((None, *SCALES)),
        None,
        "scale the features in fit, undone on output: minmax to [0, 1], standard to mean 0 std 1, pixels 0-255 / 255",
    ),
    Param("batchnorm", Bool(), False, "BatchNorm after every hidden layer"),
    Param(
        "dropout", Interval(float, 0.0, 1.0, high_open=True), 0.0, "dropout after every hidden layer of the dense body"
    ),
    Param(
        "image_shape",
        Sizes(lengths=(2, 3), example="(28, 28)", high=MAX_IMAGE_SIDE),
        None,
        "(H, W) or (C, H, W) for the conv body (none: the data's images' shape, else square, one channel)",
        none_ok=True,
    ),
    Param(
        "conv_filters",
        Sizes(allow_empty=False, example="(32, 16)", high=MAX_WIDTH, one_ok=True),
        (32, 16),
        "conv encoder channels per level",
    ),
    Param("kernel_size", Interval(int, 1, MAX_KERNEL), 3, "conv kernel size"),
    Param("variational", Bool(), False, "Gaussian latent with a KL term (VAE)"),
    Param("beta", _POSITIVE, 1.0, "weight of the KL term"),
    Param("noise", Options((None, *NOISE_KINDS)), None, "corrupt inputs while training (denoising AE)"),
    Param("noise_factor", _POSITIVE, 0.4, "Gaussian std, or the fraction of values hit (masking, salt_pepper: <= 1)"),
    Param(
        "augment",
        Options((None, *AUGMENTATIONS)),
        None,
        "new training images: random shifts and rotations of each image (images only)",
    ),
    Param("head_layer_sizes", _SIZES, (64, 128), "classifier head widths", supervised=True),
    Param("head_activation", _ACTIVATION, "tanh", "classifier head activation", supervised=True),
    Param("head_dropout", Interval(float, 0.0, 0.99), 0.0, "dropout in the classifier head", supervised=True),
    Param("reconstruction_weight", _POSITIVE, 1.0, "weight of the reconstruction loss", supervised=True),
    Param("classification_weight", _POSITIVE, 0.1, "weight of the classification loss", supervised=True),
    Param(
        "perplexity",
        Interval(float, 1.0, math.inf),  # 2 ** entropy: 1 is one neighbour, below it no distribution calibrates
        30.0,
        "t-SNE perplexity: about how many neighbours each point keeps",
        tsne=True,
    ),
    Param(
        "dof",
        _POSITIVE_OPEN,
        1.0,
        "degrees of freedom of the Student-t kernel (1: t-SNE; lower: tighter clusters)",
        tsne=True,
    ),
    Param("early_exaggeration", Interval(float, 1.0), 4.0, "attraction multiplier of the first epochs", tsne=True),
    Param("early_exaggeration_epochs", Interval(int, 0), 1, "epochs with early_exaggeration", tsne=True),
    Param("exaggeration", Interval(float, 1.0), 1.0, "attraction multiplier after the early epochs", tsne=True),
    Param(
        "target_weight",
        _UNIT,
        1.0,
        "with labels: how much of the affinity between neighbours of different classes is removed",
        tsne=True,
    ),
    Param("optimizer", Options(OPTIMIZERS), "rmsprop", "optimizer, Keras semantics (eps=1e-7)"),
    Param("learning_rate", Interval(float, 0.0, MAX_LEARNING_RATE, low_open=True), 0.002, "learning rate"),
    Param("momentum", _UNIT, 0.01, "momentum of rmsprop and sgd"),
    Param("batch_size", Interval(int, 1), 128, "samples per optimizer step"),
    Param(
        "epochs",
        AutoOr(Interval(int, 1)),
        "auto",
        f"passes over the training data (auto: {AUTO_EPOCHS}, --method tsne: 30; more on small data: at least "
        f"{AUTO_MIN_STEPS:,} steps)",
    ),
    Param("lr_schedule", Options(SCHEDULES), None, "learning-rate schedule"),
    Param(
        "validation_fraction", Interval(float, 0.0, 0.9), 0.0, "held-out fraction for val_* history and early stopping"
    ),
    Param("early_stopping", Bool(), False, "stop when the monitored loss stops improving"),
    Param("patience", Interval(int, 1), 5, "epochs without improvement before early stopping"),
    Param(
        "min_delta", Interval(float, 0.0), 0.0, "smallest decrease of the monitored loss that counts as an improvement"
    ),
    Param("restore_best_weights", Bool(), True, "with early stopping: end with the weights of the best epoch"),
    Param(
        "device",
        InstanceOf((str, torch.device), "a device name such as 'auto', 'cpu' or 'cuda'"),
        "auto",
        "auto: CUDA (or MPS) when available, else CPU",
    ),
    Param(
        "compile",
        Options(COMPILE_MODES),
        "auto",
        "fast paths: torch.compile / CUDA graphs (auto: where measured to pay)",
    ),
    Param("precision", Options(PRECISIONS), "float32", "arithmetic of training and inference"),
    Param(
        "data_loading",
        Options(DATA_LOADING),
        "auto",
        "memory: one float32 copy in RAM; stream: batches read from disk (auto: stream data that would not fit)",
    ),
    Param("random_state", RandomState(), None, "seed of everything in fit", none_ok=True),
    Param(
        "verbose",
        InstanceOf((bool, int, np.integer), "an int (1: a progress bar, 2: one line per epoch)"),
        0,
        "1 shows a progress bar, 2 prints one line per epoch",
        flag=False,
    ),
    Param("callbacks", Callables(), None, "cb(epoch, logs); returning True stops training", none_ok=True, flag=False),
    Param(
        "checkpoint_path",
        InstanceOf((str, os.PathLike), "a file path"),
        None,
        "write a resumable checkpoint there after every epoch",
        none_ok=True,
        flag=False,
    ),
]

#: every parameter of ``SupervisedAutoencoder`` (``Autoencoder``: those with ``supervised=False``), in docstring order,
#: and ``ParametricTSNE``'s (``tsne=True``; it takes all but ``NOT_TSNE``)
PARAMS: dict[str, Param] = {p.name: p for p in _TABLE}
#: parameters that act on inference or on how a run is carried out, not on what the network is: set after fit,
#: they take effect at once and are saved as set (``precision="bfloat16"`` for fast inference); any other set after
#: fit acts at the next fit, and ``save`` writes the value the model was fitted with
AFTER_FIT = ("precision", "device", "compile", "data_loading", "verbose", "callbacks", "checkpoint_path")
#: the parameters that are flags of ``aekit train``
FLAGS: tuple[str, ...] = tuple(p.name for p in _TABLE if p.flag)


def estimator_params(supervised: bool) -> list[str]:
    """The parameter names of ``SupervisedAutoencoder`` (True) or ``Autoencoder`` (False)."""
    return [p.name for p in _TABLE if (supervised or not p.supervised) and not p.tsne]


#: the table's parameters that ``ParametricTSNE`` does not take (its code is deterministic; its neighbour graph
#: holds every row in memory)
NOT_TSNE = ("variational", "beta", "data_loading")
#: ``ParametricTSNE``'s defaults where they differ from the table's (an unbounded code, a neighbour-embedding
#: recipe; benchmarks/results/tsne.md); the CLI's help shows them beside the table's
TSNE_DEFAULTS: dict[str, Any] = {
    "activation": "relu",
    "code_activation": "linear",
    "reconstruction_weight": 0.0,
    "classification_weight": 1.0,
    "hidden_layer_sizes": (500, 500, 2000),
    "optimizer": "adam",
    "learning_rate": 0.001,
    "batch_size": 256,
}


def tsne_params() -> list[str]:
    """The parameter names of ``ParametricTSNE``, in docstring order."""
    return [p.name for p in _TABLE if p.name not in NOT_TSNE]


# ----------------------------------------------------------------------------- rules between parameters

#: noise_factor per noise kind: a Gaussian std, or a probability
NOISE_FACTOR_LIMITS: dict[str, Interval] = {"gaussian": _POSITIVE, "masking": _UNIT, "salt_pepper": _UNIT}


def check_noise_factor(noise: str | None, noise_factor: Any) -> None:
    """The one noise-factor rule of training (``noise=...``) and of ``aekit denoise``."""
    limits = NOISE_FACTOR_LIMITS.get(noise) if noise is not None else None
    if limits is not None and not limits.ok(noise_factor):
        raise param_error(
            "noise_factor",
            f"{{noise_factor}} is out of range for {{noise}}; expected {limits.text()}",
            noise_factor=noise_factor,
            noise=noise,
        )


def _code_size_rule(p: Mapping[str, Any]) -> None:
    if p["n_components"] is None and p["architecture"] != "conv":
        raise param_error(
            "n_components",
            "{n_components} is only allowed with {architecture='conv'}; give the code size, e.g. 2",
            n_components=None,
        )


def _bce_rule(p: Mapping[str, Any]) -> None:
    if p["loss"] == "bce" and p["output_activation"] not in ("sigmoid", AUTO):
        raise param_error(
            "loss",
            "{loss} needs {output_activation='sigmoid'}; for data outside [0, 1] use {loss='auto'} "
            "(or {scale='minmax'} to bring the data into [0, 1])",
            loss="bce",
        )


def _batchnorm_rule(p: Mapping[str, Any]) -> None:
    if p["batchnorm"] and p["batch_size"] < 2:
        raise param_error(
            "batch_size",
            "{batch_size} must be an integer >= 2 with {batchnorm=True} (BatchNorm cannot normalise one sample)",
            batch_size=p["batch_size"],
        )


def _noise_factor_rule(p: Mapping[str, Any]) -> None:
    check_noise_factor(p["noise"], p["noise_factor"])


RULES: tuple[Callable[[Mapping[str, Any]], None], ...] = (
    _code_size_rule,
    _bce_rule,
    _batchnorm_rule,
    _noise_factor_rule,
)


def validate(params: Mapping[str, Any]) -> None:
    """Check an estimator's ``get_params()`` against the table, then the rules between parameters.

    Raises
    ------
    InputError
        The first bad value, with ``param`` set to its name.
    """
    unknown = set(params) - set(PARAMS)
    if unknown:
        raise param_error(sorted(unknown)[0], f"unknown parameters {sorted(unknown)}; expected some of {list(PARAMS)}")
    for p in _TABLE:
        if p.name in params:
            p.check(params[p.name])
    for rule in RULES:
        rule(params)


def check_param(name: str, value: Any, constraint: Constraint) -> None:
    """Check an argument that is not in the table (e.g. ``sample``'s ``n_samples``) the same way."""
    Param(name, constraint, None, "").check(value)


# ----------------------------------------------------------------------------- recipes

#: Named parameter sets that reproduce the reference text's recipes in one line:
#: ``Autoencoder(**PRESETS["conv"])``; ``sae_*`` ones are for ``SupervisedAutoencoder``.
PRESETS: dict[str, dict[str, Any]] = {
    "dense": {},  # the estimator defaults are the reference dense AE
    "dense20": {"n_components": 20},  # the AE stage of AE → t-SNE
    "conv": {"architecture": "conv", "n_components": None, "optimizer": "adam", "learning_rate": 0.001},
    "denoising": {
        "architecture": "conv",
        "n_components": None,
        "optimizer": "adam",
        "learning_rate": 0.001,
        "noise": "gaussian",
        "noise_factor": 0.4,
        "epochs": 50,
        "batch_size": 256,
    },
    # same network, parameters and noise; 4x the steps per epoch at twice the rate:
    # a better denoised PSNR in the same wall time (benchmarks/results/denoising_tuning.md)
    "denoising_tuned": {
        "architecture": "conv",
        "n_components": None,
        "optimizer": "adam",
        "learning_rate": 0.002,
        "noise": "gaussian",
        "noise_factor": 0.4,
        "epochs": 50,
        "batch_size": 64,
    },
    "vae": {"variational": True, "optimizer": "adam", "learning_rate": 0.001},
    # for tables and other data that are no images (with scale="standard" where features differ in units):
    # the reference recipe's tanh code under RMSprop saturated or stayed below PCA(2) there
    # (benchmarks/results/small_data_tabular.md)
    "tabular": {"optimizer": "adam", "learning_rate": 0.001, "activation": "relu", "code_activation": "linear"},
    # for SupervisedAutoencoder: the best SAE recipe measured, head Dropout 0.5 and 6x the epochs
    # (benchmarks/results/sae_tuning.md)
    "sae_long": {"head_dropout": 0.5, "epochs": 120},
}


def is_supervised(params: Mapping[str, Any] | Sequence[str]) -> bool:
    """Whether parameters (e.g. a preset) name any that only ``SupervisedAutoencoder`` has."""
    return any(PARAMS[name].supervised for name in params if name in PARAMS)
