"""AE → t-SNE: compress with an autoencoder (~20-D, fast, nonlinear), then t-SNE to 2-D.

``AETSNE`` is a scikit-learn transformer chaining an aekit estimator and openTSNE
(chosen because it can place *new* points into an existing embedding, which
scikit-learn's TSNE cannot). ``compare_routes`` times and scores the three routes
of the reference text: AE straight to 2-D, t-SNE from raw pixels, AE(20) → t-SNE.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from aekit import metrics, schema
from aekit._utils import InputError, as_float32, is_uint8, jsonable, seed_from, unlabelled
from aekit.base import plain_numbers
from aekit.estimators import PRESETS, Autoencoder, ParametricTSNE, SupervisedAutoencoder, fit_stage
from aekit.scaling import apply as apply_scaler
from aekit.sources import as_source


class AETSNE(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Autoencoder codes embedded in 2-D by t-SNE (openTSNE).

    Parameters
    ----------
    autoencoder : Autoencoder or SupervisedAutoencoder, optional
        Fitted (used as is) or unfitted (cloned and fitted on ``X``). Default:
        the dense reference AE with a 20-D code.
    perplexity : float, default=30
    n_components : int, default=2
        Dimensions of the t-SNE embedding.
    n_jobs : int, default=-1
        Threads for t-SNE (-1: all cores).
    neighbors : {"auto", "exact", "annoy", "pynndescent"}, default="auto"
        Nearest-neighbour search among the codes for t-SNE's affinities. "auto":
        exact search for codes of at most 64 dimensions, where it is both exact
        and faster than Annoy (docs/performance.md#t-sne-neighbours), else
        openTSNE's own choice.
    distances : {"input", "code"}, default="input"
        Where the distances behind t-SNE's affinities are measured. The
        neighbours are always found among the codes (fast); "input" then measures
        each point's distances to them in the input space (the pixels; the features
        after the autoencoder's ``scale``, as it reads them), so the
        affinities follow the data's own geometry; "code" uses the code distances
        (plain AE → t-SNE). On MNIST (10k) "input" scored a better k-NN accuracy
        and trustworthiness than both "code" and t-SNE from the raw pixels; see
        ``benchmarks/results/tsne.md``. The fitted object then keeps the training
        inputs (as openTSNE's own index keeps the data it was built on) so that
        ``transform`` measures new points the same way.
    random_state : int or None
        Seeds the autoencoder (when it is fitted here) and t-SNE.
    max_fit_samples : int or None, default=100000
        Large N: t-SNE's map is fitted on a seeded random subsample of this many
        points, and every other point is placed into it with openTSNE's ``transform``
        (in chunks), as ``transform`` places new points; the fitted object keeps only
        the subsample's inputs. None fits on every point (memory and time grow with
        N; see ``benchmarks/results/scale.md`` for the cost of both).
        ``X`` may also live on disk (a memory-mapped ``.npy``, h5py, zarr): the codes
        are computed chunk by chunk.

    Attributes
    ----------
    autoencoder_ : the fitted autoencoder
    embedding_ : ndarray of shape (n_samples, n_components)
        t-SNE coordinates of the training samples.
    timings_ : dict with ``autoencoder_s``, ``tsne_s`` and ``placement_s`` (0 without a subsample)
    fit_indices_ : ndarray of shape (n_fit,) or None
        The rows t-SNE was fitted on when N exceeded ``max_fit_samples`` (None: all).
    """

    def __init__(
        self,
        autoencoder: Any = None,
        *,
        perplexity: float = 30.0,
        n_components: int = 2,
        n_jobs: int = -1,
        neighbors: str = "auto",
        distances: str = "input",
        random_state: int | None = None,
        max_fit_samples: int | None = 100_000,
    ) -> None:
        self.autoencoder = autoencoder
        self.perplexity = perplexity
        self.n_components = n_components
        self.n_jobs = n_jobs
        self.neighbors = neighbors
        self.distances = distances
        self.random_state = random_state
        self.max_fit_samples = max_fit_samples

    def __deepcopy__(self, memo: dict[int, Any]) -> AETSNE:
        # openTSNE's fitted embedding is an ndarray subclass: ndarray's own deepcopy drops its affinities
        # and optimizer state (its transform then fails). Its __reduce__ (what pickling uses) keeps them
        import copy

        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for name, value in self.__dict__.items():
            if isinstance(value, np.ndarray) and hasattr(value, "affinities"):  # openTSNE's TSNEEmbedding
                rebuild, args, state = cast(tuple[Any, ...], value.__reduce__())[:3]
                value_copy = rebuild(*args)
                value_copy.__setstate__(copy.deepcopy(state, memo))
                setattr(new, name, value_copy)
            else:
                setattr(new, name, copy.deepcopy(value, memo))
        return new

    def fit(self, X: Any, y: Any = None) -> AETSNE:
        """Fit the autoencoder (unless already fitted) and t-SNE on its codes.

        ``y`` is passed to a ``SupervisedAutoencoder`` (the supervised route).
        """
        if not (isinstance(self.perplexity, (int, float)) and self.perplexity > 0):
            raise InputError(
                "{perplexity} must be a positive number", param="perplexity", values={"perplexity": self.perplexity}
            )
        if not (
            isinstance(self.n_components, (int, np.integer))
            and not isinstance(self.n_components, bool)
            and self.n_components >= 1
        ):
            raise InputError(f"n_components={self.n_components!r} must be an integer >= 1 (2 for a plot)")
        knn_method(self.neighbors, 1)  # a bad choice fails before any training
        _check_distances(self.distances)
        m = self.max_fit_samples
        if m is not None and not (isinstance(m, (int, np.integer)) and not isinstance(m, bool) and m >= 2):
            raise InputError(f"max_fit_samples={m!r} must be an integer >= 2 or None")
        source = as_source(X)
        if source is None:
            X = plain_numbers(X)
            X = validate_data(self, _unit_scaled(X, self.autoencoder), reset=True, dtype=[np.float32, np.float64])
        else:  # on disk: read in chunks by the autoencoder, and row by row for the t-SNE subsample
            self.n_features_in_ = source.n_features
        n = len(X) if source is None else source.n_samples
        n_fit = n if m is None else min(n, int(m))
        if 3 * self.perplexity >= n_fit:
            fits = (n_fit - 1) // 3  # the largest whole perplexity these samples allow
            raise InputError(
                f"{{perplexity}} needs more than {int(3 * self.perplexity)} samples, found {n_fit}; "
                + (f"lower it, e.g. {{perplexity={fits}}}" if fits >= 1 else "t-SNE needs at least 4 samples"),
                param="perplexity",
                values={"perplexity": self.perplexity},
            )
        seed = seed_from(self.random_state)
        ae = self.autoencoder if self.autoencoder is not None else Autoencoder(**PRESETS["dense20"])
        t0 = time.perf_counter()
        if not hasattr(ae, "net_"):
            ae = clone(ae).set_params(random_state=seed)
            if isinstance(ae, SupervisedAutoencoder) and y is None:
                raise InputError("a SupervisedAutoencoder needs y: pass fit(X, y)")
            try:
                with _advice_for_the_default(self.autoencoder is None):
                    fit_stage(ae, self._named(X, ae), y if isinstance(ae, SupervisedAutoencoder) else None)
            except KeyboardInterrupt:
                self.autoencoder_ = ae  # the interrupted training's model is kept here (no embedding)
                raise
        codes = np.asarray(ae.transform(self._named(X, ae)))  # (an autoencoder set to give DataFrames)
        t1 = time.perf_counter()
        fit_rows = None if n_fit == n else np.sort(np.random.default_rng(seed).choice(n, n_fit, replace=False))
        inputs = _input_rows(X, source, fit_rows, ae) if self.distances == "input" else None
        fit_codes = codes if fit_rows is None else codes[fit_rows]
        self._tsne = _opentsne(fit_codes, inputs, self.perplexity, seed, self.n_jobs, self.neighbors, self.n_components)
        t2 = time.perf_counter()
        self.autoencoder_ = ae
        self.fit_indices_ = fit_rows
        self._params_at_fit = {k: v for k, v in self.get_params(deep=False).items() if k != "autoencoder"}
        self._params_at_fit["random_state"] = seed  # a RandomState object: the seed it gave this fit
        if fit_rows is None:
            self.embedding_ = np.array(self._tsne)  # a copy: openTSNE may re-centre its own array in place
        else:
            self.embedding_ = self._place_rest(X, source, codes, fit_rows)
        self.timings_ = {"autoencoder_s": t1 - t0, "tsne_s": t2 - t1, "placement_s": time.perf_counter() - t2}
        return self

    def _named(self, X: Any, ae: Any) -> Any:
        """The validated rows ``X`` as the autoencoder takes them: a frame under the feature names this map was
        fitted with, when there are some (a DataFrame's), so that an autoencoder trained here learns them (a
        saved map reads a CSV's columns by name) and a given one checks them against its own."""
        names = getattr(self, "feature_names_in_", None)
        if names is None or not isinstance(X, np.ndarray) or X.ndim != 2:
            return X
        if hasattr(ae, "net_") and not hasattr(ae, "feature_names_in_"):  # trained on an array: takes arrays
            return X
        import pandas as pd

        return pd.DataFrame(X, columns=names, copy=False)

    def _place_rest(self, X: Any, source: Any, codes: np.ndarray, fit_rows: np.ndarray) -> np.ndarray:
        """The embedding of every row: the subsample's map, the other rows placed into it chunk by chunk."""
        emb = np.empty((len(codes), self.n_components), dtype=np.float64)
        rest = np.setdiff1d(np.arange(len(codes)), fit_rows)
        for start in range(0, len(rest), PLACE_CHUNK):
            rows = rest[start : start + PLACE_CHUNK]
            if self.distances == "input":
                query = np.hstack([_input_rows(X, source, rows, self.autoencoder_), codes[rows]])
            else:
                query = codes[rows]
            emb[rows] = np.asarray(self._tsne.transform(query))
        # after the placements: openTSNE re-centres the map in place on its first transform, and the placed
        # points are in the re-centred frame
        emb[fit_rows] = np.asarray(self._tsne)
        return emb

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        return self.fit(X, y).embedding_

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
        """Write the fitted map to the folder ``path``: ``autoencoder.safetensors`` (the autoencoder's model
        file) and ``tsne.safetensors`` (the map's points, the codes and inputs that ``transform`` measures
        new points against, the parameters). No pickle; ``AETSNE.load`` reads it back, checking every array.
        The training inputs are kept with ``distances="input"``, as in memory: a map of many large rows is large.
        """
        from aekit.files import _versions, _write

        check_is_fitted(self, "embedding_")
        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{folder} is a file; AETSNE.save writes a folder: choose another path")
        if not overwrite and any((folder / name).exists() for name in MAP_FILES):
            raise FileExistsError(f"{folder} holds a saved map; pass overwrite=True or choose another path")
        index = self._tsne.affinities.knn_index
        code_index = index.code_index if isinstance(index, InputDistanceIndex) else index
        tensors: dict[str, np.ndarray] = {
            "map": np.asarray(self._tsne, dtype=np.float64),
            "codes": np.asarray(code_index.data, dtype=np.float64),
            "embedding_": np.asarray(self.embedding_, dtype=np.float64),
        }
        if isinstance(index, InputDistanceIndex):
            tensors["inputs"] = index.X
        if self.fit_indices_ is not None:
            tensors["fit_indices_"] = np.asarray(self.fit_indices_, dtype=np.int64)
        # the parameters the map was fitted with: one set after fit acts at the next fit (as the estimators save)
        params = dict(
            getattr(self, "_params_at_fit", None)
            or {k: v for k, v in self.get_params(deep=False).items() if k != "autoencoder"}
        )
        params["random_state"] = seed_from(params["random_state"])  # a RandomState object saves as the seed it gave
        descent = {k: v for k, v in self._tsne.gradient_descent_params.items() if k in MAP_DESCENT.fields}
        metadata = {  # first: nothing is written when it cannot be
            "aekit_map": MAP_FORMAT,
            "params": json.dumps(jsonable(params)),
            "descent": json.dumps(jsonable(descent)),
            "versions": json.dumps(_versions()),
        }
        folder.mkdir(parents=True, exist_ok=True)
        self.autoencoder_.save(folder / MAP_FILES[0])
        metadata["autoencoder_sha256"] = _digest(folder / MAP_FILES[0])  # the pair belongs together
        as_torch = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}
        _write(folder / MAP_FILES[1], as_torch, metadata)
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AETSNE:
        """A map written by ``save``, its arrays checked against its autoencoder and each other before
        openTSNE's index is rebuilt from them (exact neighbour search gives the fit's own neighbours)."""
        return load_map(path)

    def __sklearn_tags__(self) -> Any:  # sklearn.utils.Tags
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # made dense, as the autoencoders do
        return tags

    @property
    def _n_features_out(self) -> int:  # get_feature_names_out: aetsne0, aetsne1, ... once fitted
        check_is_fitted(self, "embedding_")  # NotFittedError is an AttributeError: unfitted, the names are refused
        return int(self.embedding_.shape[1])

    def transform(self, X: Any) -> np.ndarray:
        """Place new samples into the existing embedding (openTSNE's optimisation of new points)."""
        check_is_fitted(self, "embedding_")
        X = plain_numbers(X)
        X = validate_data(self, _unit_scaled(X, self.autoencoder_), reset=False, dtype=[np.float32, np.float64])
        codes = np.asarray(self.autoencoder_.transform(self._named(X, self.autoencoder_)))
        if self.distances == "input":  # the index splits this back into inputs and codes
            return np.asarray(self._tsne.transform(np.hstack([_input_rows(X, None, None, self.autoencoder_), codes])))
        return np.asarray(self._tsne.transform(codes))


@contextlib.contextmanager
def _advice_for_the_default(default: bool) -> Iterator[None]:
    """Warnings of the autoencoder that AETSNE built itself, their advice in AETSNE's terms.

    Its parameters are not AETSNE's: "pass scale='standard'" would send the user to a parameter that
    AETSNE does not take; they pass an autoencoder built with it (the default's 20-D code too)."""
    if not default:
        yield
        return
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:  # the filters in force decide what is caught
            yield
    finally:  # also when the fit fails: its advice may say why
        for w in caught:  # at the user's line, once per text and line as a plain warning would be
            text = _DEFAULT_PARAM.sub(r"autoencoder=Autoencoder(n_components=20, \1)", str(w.message))
            warnings.warn_explicit(text, w.category, w.filename, w.lineno, registry=_SHOWN)


# an autoencoder's parameter set in advice (scale='standard'), also inside parentheses, not a quoted name
_DEFAULT_PARAM = re.compile(r"(?<![\w.'\"])((?:scale|loss|output_activation|noise)='[^']*')")
#: the default autoencoder's advice shown so far (``warnings.warn_explicit``'s once-per-place registry)
_SHOWN: dict[Any, Any] = {}


#: AETSNE(max_fit_samples=...): points placed into the map per openTSNE transform call
PLACE_CHUNK = 50_000

#: the most interpolation boxes a side a loaded map may ask openTSNE for (maps of a million points span a few
#: hundred units, one box per unit)
MAP_MAX_BOXES = 5_000

#: the files of a saved AETSNE (a folder): its autoencoder's model file, then the t-SNE map
MAP_FILES = ("autoencoder.safetensors", "tsne.safetensors")
MAP_FORMAT = "1"
_MAP_FIX = "save the map again (aekit visualize --save-map, AETSNE.save)"
MAP_PARAMS = schema.Obj(
    {
        "perplexity": schema.Num(1 / 3, 1e6),  # 3 * perplexity neighbours: at least one
        "n_components": schema.Int(1, 64),
        "n_jobs": schema.Either((schema.Int(-1024, -1), schema.Int(1, 1024))),
        "neighbors": schema.Either(tuple(schema.Const(m) for m in ("auto", "exact", "annoy", "pynndescent"))),
        "distances": schema.Either((schema.Const("input"), schema.Const("code"))),
        "random_state": schema.SEED,
        "max_fit_samples": schema.Either((schema.Const(None), schema.Int(2, schema.MAX_COUNT))),
    }
)
#: openTSNE's gradient-descent settings of the map, as ``transform`` uses them (bounded: they size its grids)
MAP_DESCENT = schema.Obj(
    {
        "learning_rate": schema.Either((schema.Const("auto"), schema.Num(0.0, 1e9))),
        "momentum": schema.Num(0.0, 1.0),
        "theta": schema.Num(0.0, 10.0),
        "max_grad_norm": schema.Either((schema.Const(None), schema.Num(0.0))),
        "max_step_norm": schema.Either((schema.Const(None), schema.Num(0.0))),
        "callbacks_every_iters": schema.Int(1, schema.MAX_COUNT),
        "negative_gradient_method": schema.Either(tuple(schema.Const(m) for m in ("auto", "fft", "bh"))),
        "n_interpolation_points": schema.Int(1, 10),
        "min_num_intervals": schema.Int(1, 1000),
        "ints_in_interval": schema.Num(0.01, 100.0),
        "dof": schema.Num(0.01, 100.0),
    },
    optional=frozenset(
        {"learning_rate", "momentum", "theta", "max_grad_norm", "max_step_norm", "callbacks_every_iters"}
    ),
)


def load_map(path: str | os.PathLike[str]) -> AETSNE:
    """``AETSNE.load``: read a saved map folder; one ``ModelFileError`` naming the file for anything amiss."""
    from openTSNE import TSNEEmbedding
    from openTSNE.affinity import PerplexityBasedNN

    from aekit._utils import ModelFileError
    from aekit.estimators import load as load_model
    from aekit.files import corrupted_metadata, entry, read_metadata, read_tensors

    folder = Path(path)
    if not folder.is_dir():
        raise ModelFileError(f"{folder}: no saved map (a folder written by AETSNE.save); check the path")
    missing = [name for name in MAP_FILES if not (folder / name).is_file()]
    if missing and len(missing) < len(MAP_FILES):
        raise ModelFileError(f"{folder}: an incomplete map, without {missing[0]}; {_MAP_FIX}")
    ae = load_model(folder / MAP_FILES[0])
    p = folder / MAP_FILES[1]
    meta = read_metadata(p, "t-SNE map", _MAP_FIX)
    if meta.get("aekit_map") != MAP_FORMAT:
        raise ModelFileError(f"{p}: not a t-SNE map of format {MAP_FORMAT} (AETSNE.save writes one); {_MAP_FIX}")
    with corrupted_metadata(p, "map metadata", _MAP_FIX):
        params = schema.check(MAP_PARAMS, entry(meta, "params"), "params")
        descent = schema.check(MAP_DESCENT, entry(meta, "descent"), "descent")
    if meta.get("autoencoder_sha256") != _digest(folder / MAP_FILES[0]):
        raise ModelFileError(f"{p}: this map was saved with another {MAP_FILES[0]} than the one beside it; {_MAP_FIX}")
    tensors = read_tensors(p, "t-SNE map", _MAP_FIX)
    wrong = next((k for k, v in tensors.items() if v.dtype not in (torch.float64, torch.float32, torch.int64)), None)
    if wrong is not None:
        raise ModelFileError(f"{p}: tensor {wrong} is {tensors[wrong].dtype}, no array of a map; {_MAP_FIX}")
    arrays = {k: v.numpy() for k, v in tensors.items()}
    _check_map(p, arrays, params, ae, descent)
    method = knn_method(params["neighbors"], arrays["codes"].shape[1])
    seed = seed_from(params["random_state"])
    try:
        if params["distances"] == "input":
            affinities = input_affinities(
                arrays["codes"], arrays["inputs"], params["perplexity"], method, params["n_jobs"], seed
            )
        else:
            affinities = PerplexityBasedNN(
                arrays["codes"],
                perplexity=params["perplexity"],
                method=method,
                n_jobs=params["n_jobs"],
                random_state=seed,
            )
    except (ValueError, RuntimeError) as exc:  # what openTSNE refuses in the arrays the checks let through
        raise ModelFileError(f"{p}: openTSNE cannot index this map ({exc}); {_MAP_FIX}") from exc
    est = AETSNE(ae, **params)
    est._params_at_fit = dict(params)  # the file's: what a save of this map writes again
    est.autoencoder_ = ae
    est.n_features_in_ = ae.n_features_in_
    if hasattr(ae, "feature_names_in_"):
        est.feature_names_in_ = ae.feature_names_in_
    est._tsne = TSNEEmbedding(arrays["map"], affinities, random_state=seed, n_jobs=params["n_jobs"], **descent)
    est.fit_indices_ = arrays.get("fit_indices_")
    est.embedding_ = arrays["embedding_"]
    est.timings_ = {"autoencoder_s": 0.0, "tsne_s": 0.0, "placement_s": 0.0}  # nothing was fitted here
    return est


def _digest(path: Path) -> str:
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _check_map(
    p: Path, arrays: dict[str, np.ndarray], params: dict[str, Any], ae: Any, descent: dict[str, Any]
) -> None:
    """The map's arrays fit each other, the parameters and the autoencoder: names, dtypes, shapes, finite values,
    the subsample's rows, and a spread that keeps openTSNE's interpolation grid small."""
    from aekit._utils import ModelFileError

    def refuse(what: str) -> ModelFileError:
        return ModelFileError(f"{p}: {what}; {_MAP_FIX}")

    wanted = {"map", "codes", "embedding_"} | ({"inputs"} if params["distances"] == "input" else set())
    names = set(arrays)
    if not wanted <= names or names - wanted - {"fit_indices_"}:
        raise refuse(f"tensors {sorted(names)}, expected {sorted(wanted)} (and fit_indices_ for a subsample)")
    m, k = arrays["map"].shape if arrays["map"].ndim == 2 else (0, 0)
    n = len(arrays["embedding_"]) if arrays["embedding_"].ndim else 0
    code_size = int(ae._n_features_out)
    shapes = {
        "map": ((m, params["n_components"]), np.float64),
        "codes": ((m, code_size), np.float64),
        "embedding_": ((n, params["n_components"]), np.float64),
        "inputs": ((m, ae.n_features_in_), np.float32),
        "fit_indices_": ((m,), np.int64),
    }
    for name, array in arrays.items():
        shape, dtype = shapes[name]
        if array.shape != shape or array.dtype != dtype:
            raise refuse(f"tensor {name} is {array.shape} {array.dtype}, expected {shape} {np.dtype(dtype)}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise refuse(f"tensor {name} holds NaN or inf values")
    if m <= 3 * params["perplexity"] or k != params["n_components"]:
        raise refuse(f"a map of {m} points, too few for perplexity {params['perplexity']}")
    # openTSNE's FFT grid has about spread / ints_in_interval boxes a side (memory: their square): a map
    # stretched by hand would ask for gigabytes at its first transform
    boxes = 2 * float(np.abs(arrays["map"]).max()) / float(descent["ints_in_interval"])
    if boxes > MAP_MAX_BOXES:
        raise refuse(f"a map spread over {boxes:,.0f} interpolation boxes a side, more than {MAP_MAX_BOXES:,}")
    rows = arrays.get("fit_indices_")
    if (rows is None) != (n == m) or (
        rows is not None and (np.any(np.diff(rows) <= 0) or rows[0] < 0 or rows[-1] >= n)
    ):
        raise refuse(f"the map's {m} points do not match the {n} rows of embedding_ (fit_indices_)")


def _input_rows(X: Any, source: Any, rows: np.ndarray | None, ae: Any) -> np.ndarray:
    """Float32 inputs of ``rows`` (None: all) as the fitted autoencoder ``ae`` reads them, ``(n, n_features)``.

    Pixels scaled by the rule its fit decided, then its ``scale``: the input distances are the model's,
    so that ``scale="standard"`` keeps one wide feature from ruling them, as it does for the codes.
    """
    if source is None:
        flat = np.asarray(X if rows is None else X[rows], dtype=np.float32)
    else:
        if rows is None:
            rows = np.arange(source.n_samples)
        raw = np.stack([source.read(int(i), int(i) + 1)[0] for i in rows]) if len(rows) else source.read(0, 0)
        flat = as_float32(raw, pixels=ae._reads_pixels(raw, reset=False))
    flat = flat.reshape(len(flat), -1)
    return np.ascontiguousarray(apply_scaler(flat, ae._scaler()), dtype=np.float32)


def _unit_scaled(X: Any, ae: Any) -> Any:
    """uint8 as float32, divided by 255 where the autoencoder ``ae`` (fitted or not, None: the default one)
    would divide it (images, and no ``scale`` of its own: ``scale="pixels"`` divides by itself); other input
    unchanged."""
    if not is_uint8(X):
        return X
    if hasattr(ae, "net_"):
        return as_float32(X, pixels=ae._reads_pixels(X, reset=False))
    return as_float32(X, pixels=None if getattr(ae, "scale", None) is None else False)


KNN_METHODS = ("auto", "exact", "annoy", "pynndescent")
DISTANCES = ("input", "code")
TRUST_SAMPLES = 3000  # compare_routes' trustworthiness: on at most this many points (it is quadratic in memory)
EXACT_KNN_MAX_DIMS = 64  # up to here exact search beat Annoy (docs/performance.md#t-sne-neighbours)


def knn_method(neighbors: str, n_dims: int) -> str:
    """openTSNE's ``neighbors`` for ``n_dims``-dimensional input under aekit's "auto" rule."""
    if neighbors not in KNN_METHODS:
        raise InputError(f"neighbors={neighbors!r} must be one of {KNN_METHODS}")
    if neighbors == "auto":
        return "exact" if n_dims <= EXACT_KNN_MAX_DIMS else "auto"
    return neighbors


def _check_distances(distances: str) -> None:
    if distances not in DISTANCES:
        raise InputError(f"distances={distances!r} must be one of {DISTANCES}")


def input_distances(
    X_query: np.ndarray, X_ref: np.ndarray, idx: np.ndarray, chunk: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances from each ``X_query`` row to its candidates ``X_ref[idx[i]]``, nearest first.

    Returns ``(indices, distances)``, both ``(n_query, k)``: ``idx`` re-sorted by
    input-space distance, and those distances (float64, as openTSNE expects).
    """

    def tensor(a: np.ndarray, dtype: type) -> torch.Tensor:
        a = np.ascontiguousarray(a, dtype=dtype)
        return torch.from_numpy(
            a if a.flags.writeable else a.copy()
        )  # read-only (pandas' copy-on-write): torch wants writable

    q, ref, ii = tensor(X_query, np.float32), tensor(X_ref, np.float32), tensor(idx, np.int64)
    dist = torch.empty(ii.shape, dtype=torch.float32)
    with torch.no_grad():
        for s in range(0, len(q), chunk):  # small chunks keep the gathered rows in cache (docs/performance.md)
            c = ii[s : s + chunk]
            diff = (
                torch.index_select(ref, 0, c.reshape(-1)).view(*c.shape, -1).sub_(q[s : s + chunk, None, :])
            )  # (c, k, D)
            dist[s : s + chunk] = torch.linalg.vector_norm(diff, dim=2)
    dist, order = dist.sort(dim=1)
    return ii.gather(1, order).numpy(), dist.double().numpy()


class InputDistanceIndex:
    """An openTSNE neighbour index: neighbours searched among the codes, distances measured between the inputs.

    Wraps a code-space openTSNE ``KNNIndex``. ``query`` takes the new points'
    inputs and codes side by side (``np.hstack([X, codes])``), since openTSNE
    passes one array through.
    """

    def __init__(self, code_index: Any, X: np.ndarray) -> None:
        self.code_index = code_index
        self.X = np.ascontiguousarray(X, dtype=np.float32)
        self.n_samples = code_index.n_samples
        self.k = code_index.k

    def build(self) -> tuple[np.ndarray, np.ndarray]:
        idx, _ = self.code_index.build()
        return input_distances(self.X, self.X, idx)

    def query(self, data: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        d = self.X.shape[1]
        if data.shape[1] <= d:
            raise InputError(
                f"InputDistanceIndex.query needs inputs and codes side by side (more than {d} columns), "
                f"got {data.shape[1]}"
            )
        idx, _ = self.code_index.query(np.ascontiguousarray(data[:, d:], dtype=np.float64), k)
        return input_distances(data[:, :d], self.X, idx)


def _opentsne(
    codes: np.ndarray,
    inputs: np.ndarray | None,
    perplexity: float,
    seed: int,
    n_jobs: int,
    neighbors: str,
    n_components: int = 2,
) -> Any:
    """openTSNE fitted on ``codes``.

    With ``inputs``, the affinities come from input-space distances to the code-space neighbours.
    """
    from openTSNE import TSNE

    codes = np.asarray(codes, dtype=np.float64)
    method = knn_method(neighbors, codes.shape[1])
    tsne = TSNE(
        n_components=n_components,
        perplexity=perplexity,
        n_jobs=n_jobs,
        neighbors=method,
        random_state=seed,
        verbose=False,
    )
    if inputs is None:
        return tsne.fit(codes)
    affinities = input_affinities(codes, inputs, perplexity, method, n_jobs, seed)
    return tsne.fit(codes, affinities=affinities)  # initialisation: PCA of the codes, as without inputs


def input_affinities(
    codes: np.ndarray, inputs: np.ndarray, perplexity: float, method: str, n_jobs: int, seed: int
) -> Any:
    """openTSNE affinities: ``method`` neighbour search among ``codes``, distances between ``inputs``."""
    from openTSNE.affinity import PerplexityBasedNN, get_knn_index

    codes = np.asarray(codes, dtype=np.float64)
    k = min(len(codes) - 1, int(3 * perplexity))  # openTSNE's own choice
    code_index = get_knn_index(codes, method, k, "euclidean", n_jobs=n_jobs, random_state=seed)
    return PerplexityBasedNN(perplexity=perplexity, knn_index=InputDistanceIndex(code_index, inputs), n_jobs=n_jobs)


def tsne(
    X: np.ndarray,
    *,
    perplexity: float = 30.0,
    random_state: int = 0,
    n_jobs: int = -1,
    library: str = "opentsne",
    neighbors: str = "auto",
    input_space: np.ndarray | None = None,
) -> np.ndarray:
    """Plain t-SNE to 2-D with openTSNE or scikit-learn (the reference stack).

    ``neighbors`` (openTSNE only) follows ``AETSNE``'s rule: exact search for
    inputs of at most 64 dimensions, openTSNE's own choice (Annoy) above.
    ``input_space``: when ``X`` are codes, the inputs they encode (same rows):
    neighbours are searched among the codes and their distances measured between
    the inputs (``AETSNE(distances="input")``). Both libraries start from the PCA
    of ``X``.
    """
    knn_method(neighbors, 1)  # validated for either library
    if library not in ("opentsne", "sklearn"):
        raise InputError(f"library={library!r} must be 'opentsne' or 'sklearn'")
    if input_space is not None and len(input_space) != len(X):
        raise InputError(
            f"input_space has {len(input_space)} rows but X has {len(X)}; pass the inputs the codes X encode"
        )
    if library == "opentsne":
        return np.asarray(_opentsne(X, input_space, perplexity, random_state, n_jobs, neighbors))
    from sklearn.manifold import TSNE as SkTSNE

    if input_space is None:
        return SkTSNE(perplexity=perplexity, random_state=random_state, n_jobs=n_jobs, init="pca").fit_transform(X)
    from scipy.sparse import csr_matrix
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors

    n = len(X)
    k = min(n - 1, int(3.0 * perplexity + 1))  # scikit-learn's own neighbour count
    idx = NearestNeighbors(n_neighbors=k, n_jobs=n_jobs).fit(X).kneighbors(return_distance=False)
    idx, dist = input_distances(input_space, input_space, idx)
    # each row: itself at distance 0 (scikit-learn drops it again), then its k neighbours
    idx = np.hstack([np.arange(n)[:, None], idx])
    dist = np.hstack([np.zeros((n, 1)), dist])
    graph = csr_matrix((dist.ravel(), idx.ravel(), np.arange(0, n * (k + 1) + 1, k + 1)), shape=(n, n))
    init = PCA(n_components=2, svd_solver="randomized", random_state=random_state).fit_transform(X).astype(np.float32)
    init = init / np.std(init[:, 0]) * 1e-4  # scikit-learn's scaling of its own "pca" init
    return SkTSNE(
        perplexity=perplexity, random_state=random_state, n_jobs=n_jobs, metric="precomputed", init=init
    ).fit_transform(graph)


def compare_routes(
    X: np.ndarray,
    y: np.ndarray,
    *,
    ae2: Any = None,
    ae20: Any = None,
    sae20: Any = None,
    perplexity: float = 30.0,
    random_state: int = 0,
    library: str = "opentsne",
    distances: str = "input",
    skip_2d: bool = False,
) -> dict[str, dict[str, Any]]:
    """Embed ``X`` three (or four) ways and score each: k-NN(5) 5-fold accuracy, trustworthiness, seconds.

    ``ae2``/``ae20`` are autoencoders (unfitted ones are fitted on ``X``, fitted ones are
    used as is; either way the training counts in the route's time, for a fitted one the
    epochs' times in its ``history_``; None: the reference AE with a 2-D or 20-D code);
    ``sae20`` adds the supervised route (SAE codes → t-SNE); ``skip_2d`` leaves the
    AE → 2-D route out. ``distances`` as in ``AETSNE``. Each route also holds
    ``trust_points``: how many points its trustworthiness was measured on.

    Every route is measured in one set of units: ``X`` as the AE(20) model reads it (uint8 pixels
    divided by 255, then its ``scale``). "t-SNE from raw" runs on those inputs, the AE → t-SNE
    routes measure their input distances there, and every trustworthiness is computed there, so
    that e.g. ``scale="standard"`` keeps one wide feature from ruling some routes and not others.
    Each route holds that ``scale`` as ``units_scale`` (None: no scale). The 2-D and SAE models
    built here (None given) take the same ``scale``; a given one with another ``scale`` is warned of.
    """
    _check_distances(distances)
    X = np.asarray(_unit_scaled(X, ae20), dtype=np.float32)
    routes: dict[str, dict[str, Any]] = {}

    def fitted(est: Any, default: dict[str, Any], panel: str, supervised: bool = False) -> tuple[Any, float]:
        t = time.perf_counter()
        if est is None:
            est = (SupervisedAutoencoder if supervised else Autoencoder)(random_state=random_state, **default)
        if hasattr(est, "net_"):  # trained before: what its epochs took, so that every route counts its training
            return est, float(sum(getattr(est, "history_", {}).get("time", [])))
        if getattr(est, "verbose", 0) == 2:  # its epoch lines follow: say which panel's model they are
            print(f"training the model of the {panel} panel", file=sys.stderr, flush=True)
        fit_stage(est, X, y if supervised else None)
        return est, time.perf_counter() - t

    # the AE(20) model first: its scale sets the units every route is measured in
    model20, secs20 = fitted(ae20, {"n_components": 20}, "AE(20) → t-SNE")
    scale = getattr(model20, "scale", None)
    inputs = _input_rows(X, None, None, model20)
    for name, est in (("ae2", None if skip_2d else ae2), ("sae20", sae20)):
        other = getattr(est, "scale", scale)
        if est is not None and other != scale:
            warnings.warn(
                f"{name} has scale={other!r} but ae20 has scale={scale!r}: its panel reads X in other units "
                f"(every route is scored on X after scale={scale!r}); pass {name} with scale={scale!r}",
                UserWarning,
                stacklevel=2,
            )
    if not skip_2d:
        ae, secs = fitted(ae2, {"scale": scale}, "AE → 2-D")
        t = time.perf_counter()
        # a given 2-D model may be a parametric t-SNE map rather than an autoencoder
        routes["parametric t-SNE" if isinstance(ae, ParametricTSNE) else "AE → 2-D"] = {
            "embedding": np.asarray(ae.transform(X)),
            "seconds": secs + time.perf_counter() - t,
            "ae_seconds": secs,
            "tsne_seconds": 0.0,
        }
    t = time.perf_counter()
    emb = tsne(inputs, perplexity=perplexity, random_state=random_state, library=library)
    s = time.perf_counter() - t
    routes["t-SNE from raw"] = {"embedding": emb, "seconds": s, "ae_seconds": 0.0, "tsne_seconds": s}
    for kind, est, supervised in (("AE", model20, False), ("SAE", sae20, True)):
        if supervised and sae20 is None:
            continue
        if not supervised and isinstance(model20, ParametricTSNE):  # a map: t-SNE of its 2-D codes redraws it
            continue
        sae_default = {"n_components": 20, "scale": scale}
        model, secs = (model20, secs20) if not supervised else fitted(est, sae_default, "SAE(20) → t-SNE", True)
        name = f"{kind}({model.net_.code_size}) → t-SNE"  # a given model may have another code size than 20
        t = time.perf_counter()
        emb = tsne(
            np.asarray(model.transform(X)),
            perplexity=perplexity,
            random_state=random_state,
            library=library,
            input_space=inputs if distances == "input" else None,
        )
        s = time.perf_counter() - t
        routes[name] = {"embedding": emb, "seconds": secs + s, "ae_seconds": secs, "tsne_seconds": s}
    labelled = ~unlabelled(np.asarray(y))  # unlabelled rows (-1) are neither right nor wrong, as in `evaluate`
    folds = metrics.cv_folds(np.asarray(y)[labelled])
    for r in routes.values():
        r["knn5_cv"] = (
            metrics.knn_cv_accuracy(r["embedding"][labelled], np.asarray(y)[labelled], folds=folds)
            if folds
            else float("nan")
        )
        r["trustworthiness"] = metrics.trustworthiness(inputs, r["embedding"], max_samples=TRUST_SAMPLES)
        r["trust_points"] = min(len(X), TRUST_SAMPLES)  # metrics.trustworthiness' subsample
        r["units_scale"] = scale
    return routes


def knn_shown(accuracy: float) -> str:
    """A route's k-NN accuracy as shown: a percentage, or why there is none (too few labelled samples)."""
    return f"{100 * accuracy:.1f}%" if accuracy == accuracy else "n/a (too few labelled samples or classes)"


def plot_routes(routes: dict[str, dict[str, Any]], y: np.ndarray) -> Any:
    """Side-by-side scatters of ``compare_routes``' embeddings, each titled with its numbers."""
    from aekit.plots import latent_scatter, subplots

    fig, axes = subplots(1, len(routes), figsize=(5.2 * len(routes), 4.6), squeeze=False)
    for ax, (name, r) in zip(axes[0], routes.items(), strict=True):
        # a route's seconds count its model's training, done before this run for a given model: said so
        trained = f" (training {r['ae_seconds']:.0f} s)" if r.get("ae_seconds") else ""
        latent_scatter(
            r["embedding"],
            y,
            ax=ax,
            colorbar=ax is axes[0][-1],
            title=f"{name}\nk-NN {knn_shown(r['knn5_cv'])}  T {r['trustworthiness']:.3f}  "
            f"{r['seconds']:.0f} s{trained}",
            axis_labels=("t-SNE 1", "t-SNE 2") if "t-SNE" in name else ("z1", "z2"),  # a parametric map's too
        )
    fig.tight_layout()
    return fig
