"""What the JSON metadata of a model file or checkpoint may hold, as data, and the one validator.

A file's metadata is untrusted: before aekit builds, allocates or loads anything from it,
every entry is parsed with a size and nesting bound (``parse``) and checked against a
declarative description (``MODEL_FITTED``, ``CHECKPOINT_LOOP``, ...): types, finite and
bounded numbers, whitelisted dtype strings, lengths. ``check`` raises ``SchemaError`` naming
the place (``fitted.n_features_in_``), what was expected and what was found; ``aekit.files``
turns it into a ``ModelFileError`` naming the file and the fix. Rules between entries
(``history`` lengths equal to the epoch count, ...) are small functions next to their schema.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: JSON nesting depth of any entry (the schemas below need 3)
MAX_DEPTH = 8
#: characters of one JSON entry: ``fitted`` and ``loop`` (histories, feature names), the others
MAX_LARGE_JSON = 8 * 2**20
MAX_SMALL_JSON = 2**20
MAX_SEED = 2**64 - 1  # what torch.manual_seed accepts
MAX_COUNT = 2**31 - 1  # features, epochs: far beyond what trains, small enough for every int conversion
MAX_NUMBER = 2.0**63  # any other number (parameters, hyperparameters): validated further where it is used
MAX_FLOAT = float(np.finfo(np.float64).max)
MAX_FLOAT32 = float(np.finfo(np.float32).max)
MAX_TEXT = 4096  # characters of one string (a path, a feature name, a text label)
MAX_CLASSES = 100_000
MAX_LABEL_CHARS = 256  # of a fixed-width text dtype (<U256): the classes array's itemsize is 4x this
MAX_TENSORS = 10_000  # optimizer parameter indices, scalar keys
MAX_WARNINGS = 64  # a fit's warnings (fit_warnings_), each a sentence or two
MAX_WARNING_CHARS = MAX_TEXT


class SchemaError(ValueError):
    """A metadata value that breaks its schema: ``where`` it is, what was ``expected``, what was ``found``."""

    def __init__(self, where: str, expected: str, found: str) -> None:
        self.where, self.expected, self.found = where, expected, found
        super().__init__(f"{where} is {found}, expected {expected}")


def shown(value: Any) -> str:
    """A short description of a JSON value for a message (containers by size, never their content)."""
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ----------------------------------------------------------------------------- the language


class Spec:
    """One node of a schema: ``ok`` for a plain value, ``check`` to recurse, ``text`` for messages."""

    def ok(self, value: Any) -> bool:  # containers override check, plain values ok
        try:
            self.check(value, "")
        except SchemaError:
            return False
        return True

    def text(self) -> str:
        raise NotImplementedError

    def check(self, value: Any, where: str) -> None:
        if not self.ok(value):
            raise SchemaError(where, self.text(), shown(value))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class Int(Spec):
    low: int
    high: int

    def ok(self, value: Any) -> bool:
        return _is_int(value) and self.low <= value <= self.high

    def text(self) -> str:
        return f"an integer in [{self.low}, {self.high}]"


@dataclass(frozen=True)
class Num(Spec):
    """An int or float; finite unless ``finite=False`` (training histories may record NaN); below ``high``
    itself with ``open_high=True``."""

    low: float = -MAX_NUMBER
    high: float = MAX_NUMBER
    finite: bool = True
    open_high: bool = False

    def ok(self, value: Any) -> bool:
        if not (_is_int(value) or isinstance(value, float)):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return not self.finite
        if self.open_high and value == self.high:
            return False
        return self.low <= value <= self.high  # int against float compares exactly, never overflows

    def text(self) -> str:
        if not self.finite:
            return "a number"
        if self.high < MAX_NUMBER:
            return f"a finite number in [{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"
        return "a finite number" if self.low <= -MAX_NUMBER else f"a finite number >= {self.low:g}"


@dataclass(frozen=True)
class Str(Spec):
    max_len: int = MAX_TEXT
    pattern: str | None = None  # a regular expression the whole string must match
    description: str = ""  # what the pattern allows, for messages

    def ok(self, value: Any) -> bool:
        return (
            isinstance(value, str)
            and len(value) <= self.max_len
            and (self.pattern is None or re.fullmatch(self.pattern, value) is not None)
        )

    def text(self) -> str:
        return self.description or f"a string of at most {self.max_len} characters"


@dataclass(frozen=True)
class Const(Spec):
    value: Any

    def ok(self, value: Any) -> bool:
        return type(value) is type(self.value) and value == self.value

    def text(self) -> str:
        return json.dumps(self.value)


class Bool(Spec):
    def ok(self, value: Any) -> bool:
        return isinstance(value, bool)

    def text(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Either(Spec):
    options: tuple[Spec, ...]

    def ok(self, value: Any) -> bool:
        return any(o.ok(value) for o in self.options)

    def text(self) -> str:
        return " or ".join(o.text() for o in self.options)

    def check(self, value: Any, where: str) -> None:
        if self.ok(value):
            return
        # a list or object that fits no option: the one container option says where inside it is wrong
        containers = [o for o in self.options if isinstance(o, ListOf if isinstance(value, list) else Obj)]
        if isinstance(value, (list, dict)) and len(containers) == 1:
            containers[0].check(value, where)
        raise SchemaError(where, self.text(), shown(value))


@dataclass(frozen=True)
class ListOf(Spec):
    item: Spec
    max_len: int
    min_len: int = 0

    def text(self) -> str:
        return f"a list of {self.min_len} to {self.max_len} items, each {self.item.text()}"

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, list) or not self.min_len <= len(value) <= self.max_len:
            raise SchemaError(where, self.text(), shown(value))
        for i, v in enumerate(value):
            self.item.check(v, f"{where}[{i}]")


@dataclass(frozen=True)
class Obj(Spec):
    """A JSON object: ``fields`` by name (those in ``optional`` may be missing); any other key's
    value must fit ``extra``, and with ``extra=None`` other keys are refused."""

    fields: Mapping[str, Spec] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()
    extra: Spec | None = None
    max_keys: int = 64

    def text(self) -> str:
        return f"an object with keys {sorted(self.fields)}" if self.fields else "an object"

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, dict) or len(value) > self.max_keys:
            raise SchemaError(where, f"{self.text()} (at most {self.max_keys})", shown(value))
        missing = sorted(set(self.fields) - set(value) - self.optional)
        if missing:
            raise SchemaError(where, f"an object with the key {missing[0]!r}", "an object without it")
        for k, v in value.items():
            spec = self.fields.get(k, self.extra)
            if spec is None or len(k) > 256:
                raise SchemaError(where, f"only the keys {sorted(self.fields)}", f"an object with the key {shown(k)}")
            spec.check(v, f"{where}.{k}")


def check(spec: Spec, value: Any, where: str) -> Any:
    """``value`` if it fits ``spec``; else ``SchemaError`` naming ``where``."""
    spec.check(value, where)
    return value


# ----------------------------------------------------------------------------- bounded parsing

# a string runs to its closing quote or to the end of the text: every match attempt succeeds, one pass
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def depth(text: str) -> int:
    """How deep the JSON ``text`` nests, from its brackets outside strings (1 MiB of them at a time)."""
    brackets = np.frombuffer(_NOT_BRACKET.sub("", _STRING.sub("", text)).encode("ascii"), dtype=np.uint8)
    level = deepest = 0
    for start in range(0, len(brackets), 2**20):
        chunk = brackets[start : start + 2**20]
        running = level + np.cumsum(np.where((chunk == ord("[")) | (chunk == ord("{")), 1, -1))
        deepest, level = max(deepest, int(running.max())), int(running[-1])
    return deepest


def parse(text: str, where: str, max_chars: int = MAX_SMALL_JSON) -> Any:
    """Decode one JSON entry, refusing more than ``max_chars`` or nesting deeper than ``MAX_DEPTH``
    before the decoder runs (a 100,000-deep list would otherwise exhaust its recursion)."""
    if len(text) > max_chars:
        raise SchemaError(where, f"at most {max_chars:,} characters of JSON", f"{len(text):,} characters")
    if depth(text) > MAX_DEPTH:
        raise SchemaError(where, f"JSON nested at most {MAX_DEPTH} levels deep", "nested deeper")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, and ints of more than 4300 digits
        raise SchemaError(where, "valid JSON", f"not ({exc})") from None


# ----------------------------------------------------------------------------- model files

#: any value of an estimator parameter; its meaning is checked by ``aekit.params.validate``
PARAM_VALUE = Either((Const(None), Bool(), Num(), Str(), ListOf(Num(), max_len=64)))
SEED = Either((Const(None), Int(0, MAX_SEED)))
MODEL_PARAMS = Obj({"random_state": SEED}, optional=frozenset({"random_state"}), extra=PARAM_VALUE)
HISTORY = Obj(extra=ListOf(Num(finite=False), max_len=MAX_COUNT))
# bool, int/uint of 8-64 bits, float of 16-64 bits, text of fixed width, text objects (pandas labels)
CLASSES_DTYPE = Str(
    max_len=8,
    pattern=r"[<>|=]?(b1|[iu][1248]|f[248]|U[1-9][0-9]{0,2}|O)",
    description=f"a numpy dtype of bool, int, uint, float, text up to <U{MAX_LABEL_CHARS} or |O (e.g. '<i8', '<U5')",
)
MODEL_FITTED = Obj(
    {
        "n_features_in_": Int(1, MAX_COUNT),
        "history_": HISTORY,
        "n_iter_": Int(0, MAX_COUNT),
        "best_epoch_": Int(0, MAX_COUNT),  # 1-based; 0: no epoch finished
        "epochs_": Int(1, MAX_COUNT),  # the epochs a fit ran for (epochs="auto" resolved)
        "fit_warnings_": ListOf(Str(MAX_WARNING_CHARS), max_len=MAX_WARNINGS),  # what a fit warned about
        "seed_": Int(0, MAX_SEED),
        "stop_reason_": Str(
            16,
            r"completed|early_stopping|lr_floor|callback|interrupted|diverged|error",
            "a training loop's stop reason (completed, early_stopping, ...)",
        ),
        "feature_names_in_": ListOf(Str(), max_len=MAX_COUNT),
        "classes_": ListOf(Either((Bool(), Num(-MAX_FLOAT, MAX_FLOAT), Str())), min_len=2, max_len=MAX_CLASSES),
        "classes_dtype": CLASSES_DTYPE,
        # the data-range switch: resolved "auto" choices (checked against the choices where loaded), how
        # uint8 input reads, the fitted scaler (X - offset) / scale per feature
        "loss_": Str(32, r"[a-z0-9_]+", "a lower-case name"),
        "output_activation_": Str(32, r"[a-z0-9_]+", "a lower-case name"),
        "pixels_": Bool(),
        # the CSV columns `aekit train` read as ids and labels: the commands that run the model take them again
        "data_columns_": Obj(
            {"id_column": Str(), "label_column": Str()}, optional=frozenset({"id_column", "label_column"})
        ),
        "image_shape_": ListOf(Int(1, MAX_COUNT), min_len=2, max_len=3),  # (H, W) or (C, H, W) of image rows
        # the container transform returns (set_output), scikit-learn's choices
        "set_output": Obj({"transform": Str(16, r"default|pandas|polars", "default, pandas or polars")}),
        "input_offset_": ListOf(Num(-MAX_FLOAT32, MAX_FLOAT32), max_len=MAX_COUNT),
        "input_scale_": ListOf(Num(float(np.finfo(np.float32).tiny), MAX_FLOAT32), max_len=MAX_COUNT),
    },
    optional=frozenset(
        {
            "history_",
            "n_iter_",
            "best_epoch_",
            "epochs_",
            "fit_warnings_",
            "seed_",
            "stop_reason_",
            "feature_names_in_",
            "classes_",
            "classes_dtype",
            "loss_",
            "output_activation_",
            "data_columns_",
            "pixels_",
            "image_shape_",
            "set_output",
            "input_offset_",
            "input_scale_",
        }
    ),
)


def _class_fits(value: Any, dtype: np.dtype) -> bool:
    kind = dtype.kind
    if kind == "b":
        return isinstance(value, bool)
    if kind in "iu":
        info = np.iinfo(dtype)
        return _is_int(value) and info.min <= value <= info.max
    if kind == "f":
        return Num(-float(np.finfo(dtype).max), float(np.finfo(dtype).max)).ok(value)
    return isinstance(value, str) and (kind == "O" or len(value) <= dtype.itemsize // 4)


def check_fitted(fitted: Any) -> dict[str, Any]:
    """``fitted`` if it fits ``MODEL_FITTED`` and its rules; the classes array it describes is then small."""
    check(MODEL_FITTED, fitted, "fitted")
    names = fitted.get("feature_names_in_")
    if names is not None and len(names) != fitted["n_features_in_"]:
        raise SchemaError(
            "fitted.feature_names_in_", f"{fitted['n_features_in_']} names (n_features_in_)", f"{len(names)} names"
        )
    if fitted.get("best_epoch_", 0) > fitted.get("n_iter_", MAX_COUNT):  # an epoch the run did not reach
        raise SchemaError("fitted.best_epoch_", f"at most n_iter_ ({fitted['n_iter_']})", str(fitted["best_epoch_"]))
    if ("classes_" in fitted) != ("classes_dtype" in fitted):
        raise SchemaError("fitted", "classes_ and classes_dtype together", "only one of them")
    if ("input_offset_" in fitted) != ("input_scale_" in fitted):
        raise SchemaError("fitted", "input_offset_ and input_scale_ together", "only one of them")
    if "image_shape_" in fitted and math.prod(fitted["image_shape_"]) != fitted["n_features_in_"]:
        raise SchemaError(
            "fitted.image_shape_",
            f"a shape of {fitted['n_features_in_']} values (n_features_in_)",
            str(fitted["image_shape_"]),  # 2 or 3 integers, checked above,
        )
    for name in ("input_offset_", "input_scale_"):
        if name in fitted and len(fitted[name]) != fitted["n_features_in_"]:
            raise SchemaError(
                f"fitted.{name}", f"{fitted['n_features_in_']} values (n_features_in_)", f"{len(fitted[name])} values"
            )
    if "classes_" in fitted:
        dtype = np.dtype(fitted["classes_dtype"])  # whitelisted above: a handful of bytes per class
        if dtype.kind == "U" and dtype.itemsize > 4 * MAX_LABEL_CHARS:
            raise SchemaError(
                "fitted.classes_dtype", f"text of at most {MAX_LABEL_CHARS} characters", shown(fitted["classes_dtype"])
            )
        for i, v in enumerate(fitted["classes_"]):
            if not _class_fits(v, dtype):
                raise SchemaError(f"fitted.classes_[{i}]", f"a value of dtype {dtype.str}", shown(v))
    return fitted


# ----------------------------------------------------------------------------- checkpoints

# "epochs" bounds the loop's counters; files written by the estimators always have it
#: what a checkpoint records of its run beyond the parameters, compared on resuming: the estimator class,
#: digests of the feature names and of the fitted scale, the training rows (checkpoints written before it have no
#: "run" entry)
CHECKPOINT_RUN = Obj(
    {
        "estimator": Str(64, r"[A-Za-z]+", "a class name"),
        "feature_names_sha256": Str(64, r"[0-9a-f]{64}", "a SHA-256 digest in hex"),
        "n_train": Int(1, MAX_COUNT),  # the run's training rows (resuming on another number warns)
        "scaler_sha256": Str(64, r"[0-9a-f]{64}", "a SHA-256 digest in hex"),  # its fitted scale (other: warns)
    },
    optional=frozenset({"estimator", "feature_names_sha256", "n_train", "scaler_sha256"}),
)
CHECKPOINT_PARAMS = Obj(
    {"epochs": Int(1, MAX_COUNT), "random_state": SEED},
    optional=frozenset({"epochs", "random_state"}),
    extra=PARAM_VALUE,
)
SCALAR_KEYS = ListOf(Str(256), max_len=MAX_TENSORS)
#: an optimizer hyperparameter (betas are a list)
GROUP_VALUE = Either(
    (Const(None), Bool(), Num(-MAX_FLOAT, MAX_FLOAT), Str(64), ListOf(Num(-MAX_FLOAT, MAX_FLOAT), max_len=8))
)
#: the sane range of each hyperparameter of aekit's optimizers (a checkpoint's groups are loaded as written)
HYPERPARAMETERS: dict[str, Spec] = {
    "momentum": Num(0.0, 1.0),
    "rho": Num(0.0, 1.0),
    "eps": Num(1e-12, 1.0),
    "betas": ListOf(Num(0.0, 1.0, open_high=True), min_len=2, max_len=2),  # Adam divides by 1 - beta**step
    "weight_decay": Num(0.0, 1.0),
    "dampening": Num(0.0, 1.0),
}
#: the structure of the optimizer's parameter groups; ``aekit.files`` checks them against this run's optimizer
PARAM_GROUPS = ListOf(
    Obj({"params": ListOf(Int(0, MAX_TENSORS), max_len=MAX_TENSORS), "lr": Num(0.0, MAX_FLOAT)}, extra=GROUP_VALUE),
    min_len=1,
    max_len=64,
)


SCORE = Either((Const(None), Num()))  # a loss, or null for "none yet"


def like(value: Any) -> Spec:
    """The schema of a hyperparameter of the same JSON type as ``value`` (this run's optimizer's)."""
    if isinstance(value, bool):
        return Bool()
    if isinstance(value, (int, float)):
        return Num()
    if isinstance(value, (list, tuple)):
        return ListOf(Num(), min_len=len(value), max_len=len(value))
    return GROUP_VALUE


def check_loop(loop: Any, epochs: int = MAX_COUNT) -> dict[str, Any]:
    """``loop`` if it is the state of a run of ``epochs`` epochs: counters within what that run reached,
    one history value per completed epoch."""
    if not isinstance(loop, dict):
        raise SchemaError("loop", "an object", shown(loop))
    epoch = check(Int(0, epochs), loop.get("epoch"), "loop.epoch")  # the bound of the other counters
    schema = Obj(
        {
            "epoch": Int(0, epochs),
            "history": Obj(extra=ListOf(Num(finite=False), min_len=epoch, max_len=epoch)),
            "best_score": SCORE,
            "best_epoch": Int(-1, epoch - 1),
            "wait": Int(0, epoch),
            "plateau_wait": Int(0, epoch),
            "plateau_best": SCORE,
        }
    )
    return check(schema, loop, "loop")
