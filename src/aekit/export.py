"""Models that travel: ONNX files of the encoder and decoder, and TensorBoard projector files.

ONNX inputs are float32 as ``transform`` reads them: a model's fitted ``scale`` is part
of the graph (the encoder takes the user's units, the decoder gives them back), while the
uint8 pixel rule stays outside it (a model of [0, 1] images takes pixels divided by 255),
so that one file serves float and image data alike; each file says what it takes in its
metadata (``aekit.input``).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit._utils import UNDECODABLE, InputError, atomic_path, own_ids, spreadsheet_safe
from aekit.accel import Conv2d
from aekit.base import fitted_image_shape

log = logging.getLogger(__name__)

ONNX_FILES = ("encoder.onnx", "decoder.onnx", "classifier.onnx")
#: feature names longer than this (as JSON) stay out of the ONNX metadata (a file's header, not a table)
MAX_NAMES_JSON = 1 << 20
PROJECTOR_FILES = ("embedding.tsv", "metadata.tsv", "sprite.png", "projector_config.pbtxt")
#: TensorBoard's projector refuses sprite images larger than this on a side
SPRITE_MAX_PX = 8192


def _plain(module: torch.nn.Module) -> torch.nn.Module:
    """A CPU copy in eval mode with aekit's CPU-only convolution shortcut off: a standard Conv node in the graph."""
    m = copy.deepcopy(module).to("cpu").eval()
    for sub in m.modules():
        if isinstance(sub, Conv2d):
            sub.taps = False  # same products, summed in nn.Conv2d's order
    return m


def _no_torchvision_notes(record: logging.LogRecord) -> bool:
    """The exporter lists every torchvision op it skips when torchvision is absent: irrelevant to these models."""
    return not record.getMessage().startswith("torchvision is not installed")


def _onnx_file(module: torch.nn.Module, width: int, path: Path, names: tuple[str, str], meta: dict[str, str]) -> None:
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    registry_log.addFilter(_no_torchvision_notes)
    try:
        _export(module, width, path, names, meta)
    finally:
        registry_log.removeFilter(_no_torchvision_notes)


def _export(module: torch.nn.Module, width: int, path: Path, names: tuple[str, str], meta: dict[str, str]) -> None:
    import onnx

    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation chatter, not the user's business
        program = torch.onnx.export(
            _plain(module),
            (torch.zeros(2, width),),
            dynamo=True,
            input_names=[names[0]],
            output_names=[names[1]],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
        assert program is not None  # dynamo=True always returns an ONNXProgram
        model = program.model_proto
        for key, value in meta.items():
            model.metadata_props.add(key=key, value=value)
        onnx.save_model(model, str(tmp))


def _input_units(est: Any) -> str:
    """What the encoder's ``x`` holds, for the files' metadata."""
    if getattr(est, "input_offset_", None) is not None:
        return f"float32 (batch, n_features) in the units fit saw: the fitted scale={est.scale!r} is in the graph"
    if getattr(est, "output_activation_", "sigmoid") == "sigmoid":
        return "float32 (batch, n_features) in [0, 1]: divide 0-255 pixels by 255"
    return "float32 (batch, n_features) in the units fit saw"


def onnx_files(est: Any) -> tuple[str, ...]:
    """The ONNX files ``to_onnx`` writes for the fitted ``est``: the encoder's, the decoder's where it has one
    (a ``ParametricTSNE`` fitted with ``reconstruction_weight=0`` is an encoder alone) and the classifier's where
    it has a head (fitted with labels)."""
    return tuple(
        name
        for name, has in zip(ONNX_FILES, (True, est.net_.has_decoder, est.net_.head is not None), strict=True)
        if has
    )


class _Classifier(torch.nn.Module):
    """``predict_proba`` as one module: the encoder (its scaler included), the head, a softmax."""

    def __init__(self, encoder: torch.nn.Module, head: torch.nn.Module) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.head(self.encoder(x)), dim=1)


def to_onnx(est: Any, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``encoder.onnx`` and ``decoder.onnx`` of a fitted autoencoder into ``out_dir``.

    encoder: ``x`` float32 ``(batch, n_features)`` as ``transform`` reads it (the fitted
    ``scale`` inside the graph; uint8 pixels divided by 255 first) → ``code`` ``(batch,
    n_components)``; decoder: ``code`` → ``x_hat`` ``(batch, n_features)`` (as
    ``inverse_transform``, in the same units). The batch axis is dynamic. Needs
    ``onnx`` and ``onnxscript`` (``pip install aekit[export]``).

    A model without a decoder (``onnx_files``) gets no ``decoder.onnx``; a model with a
    classifier head (``SupervisedAutoencoder``, a map fitted with labels) also gets
    ``classifier.onnx``: ``x`` → ``proba`` ``(batch, n_classes)``, as ``predict_proba``,
    its classes in the metadata ``aekit.classes`` (JSON, the order of ``classes_``).
    Every file's metadata holds the feature names (``aekit.feature_names``, JSON) where
    the model has them: the order ``x``'s columns must follow.

    Returns
    -------
    dict mapping "encoder" (and "decoder", "classifier") to the written paths.
    """
    out = Path(out_dir)
    n_in, n_code = int(est.n_features_in_), int(est._n_features_out)
    meta = {"aekit.input": _input_units(est), "aekit.model": type(est).__name__}
    shape = fitted_image_shape(est)
    if shape is not None:
        meta["aekit.image_shape"] = ",".join(map(str, shape))
    if hasattr(est, "feature_names_in_"):
        names = json.dumps([str(n) for n in est.feature_names_in_], ensure_ascii=False)
        if len(names) <= MAX_NAMES_JSON:
            meta["aekit.feature_names"] = names
        else:
            log.warning("ONNX metadata: %d feature names are too long to include", len(est.feature_names_in_))
    paths = {name.removesuffix(".onnx"): out / name for name in onnx_files(est)}
    _onnx_file(est.encoder_, n_in, paths["encoder"], ("x", "code"), meta)
    if "classifier" in paths:
        classes = json.dumps([c.item() if isinstance(c, np.generic) else c for c in est.classes_], ensure_ascii=False)
        _onnx_file(
            _Classifier(est.encoder_, est.net_.head),
            n_in,
            paths["classifier"],
            ("x", "proba"),
            {**meta, "aekit.classes": classes},
        )
    if "decoder" in paths:
        _onnx_file(
            est.decoder_,
            n_code,
            paths["decoder"],
            ("code", "x_hat"),
            {**meta, "aekit.input": "float32 (batch, n_components) codes"},
        )
    return paths


def _tsv(rows: np.ndarray) -> str:
    return "".join("\t".join(f"{v:.7g}" for v in r) + "\n" for r in rows)


def _metadata(ids: np.ndarray, labels: np.ndarray | None) -> str:
    index = [_cell(v) for v in ids]
    if labels is None:  # one column: TensorBoard wants no header then
        return "".join(f"{i}\n" for i in index)
    name = "id" if own_ids(ids) is not None else "index"  # the rows' own ids, or their numbers
    return f"{name}\tlabel\n" + "".join(f"{i}\t{_cell(v)}\n" for i, v in zip(index, labels, strict=True))


def _cell(value: Any) -> str:
    """One TSV cell: tabs and every line break (a bare CR too, which ended a row) as spaces; never a spreadsheet
    formula (a TSV opens in one too)."""
    return spreadsheet_safe(_BREAKS.sub(" ", str(value)))


_BREAKS = re.compile("[\t\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")


def sprite(images: np.ndarray, max_px: int = SPRITE_MAX_PX) -> tuple[np.ndarray, tuple[int, int]]:
    """One square grid of uint8 ``(n, H, W, C)`` images, shrunk to fit ``max_px``; returns it and the tile (H, W)."""
    from PIL import Image

    n, h, w, c = images.shape
    cols = math.ceil(math.sqrt(n))
    scale = min(1.0, max_px / (cols * max(h, w)))
    th, tw = max(1, math.floor(h * scale)), max(1, math.floor(w * scale))
    if (th, tw) != (h, w):
        log.warning("sprite: %d images shrunk from %dx%d to %dx%d pixels to fit %d px", n, h, w, th, tw, max_px)
        images = np.stack(
            [
                np.asarray(
                    Image.fromarray(im.squeeze(-1) if c == 1 else im).resize((tw, th), Image.Resampling.LANCZOS)
                ).reshape(th, tw, c)
                for im in images
            ]
        )
    grid = np.zeros((cols * cols, th, tw, c), dtype=np.uint8)
    grid[:n] = images
    grid = grid.reshape(cols, cols, th, tw, c).transpose(0, 2, 1, 3, 4).reshape(cols * th, cols * tw, c)
    return (grid.squeeze(-1) if c == 1 else grid), (th, tw)


def to_projector(
    embedding: np.ndarray,
    out_dir: str | os.PathLike[str],
    labels: Any = None,
    images: Any = None,
    *,
    image_shape: Sequence[int] | None = None,
    tensor_name: str = "aekit codes",
    ids: Any = None,
) -> dict[str, Path]:
    """Write TensorBoard projector files.

    They are ``embedding.tsv``, ``metadata.tsv``, ``sprite.png`` and ``projector_config.pbtxt``.

    Parameters
    ----------
    embedding : array of shape (n_samples, n_dims)
        E.g. an autoencoder's codes; the projector runs its own PCA / t-SNE / UMAP.
    labels : array of shape (n_samples,), optional
    images : array of shape (n_samples, ...), optional
        As for ``aekit.explore.explore``; without images no sprite is written.
    ids : array of shape (n_samples,), optional
        Each row's id for the metadata's ``id`` column (a CSV's id column, an image's file);
        default the row number from 0 (the column is then ``index``).

    Returns
    -------
    dict mapping file kind to the written path.
    """
    from PIL import Image

    from aekit.explore import _check_rows, image_stack

    E = np.asarray(embedding)
    if E.ndim != 2 or len(E) == 0 or E.dtype.kind not in "biuf" or not np.all(np.isfinite(E)):
        raise InputError(
            f"embedding has shape {E.shape} (dtype {E.dtype}); expected finite numbers of shape (n_samples, n_dims)"
        )
    n = len(E)
    y = _check_rows("labels", labels, n)
    index = _check_rows("ids", ids, n)
    imgs = _check_rows("images", images, n)
    stack = image_stack(imgs, image_shape) if imgs is not None else None  # bad images fail before any file is written
    out = Path(out_dir)
    paths = {
        "embedding": out / "embedding.tsv",
        "metadata": out / "metadata.tsv",
        "config": out / "projector_config.pbtxt",
    }
    for key, text in (("embedding", _tsv(E)), ("metadata", _metadata(np.arange(n) if index is None else index, y))):
        with atomic_path(paths[key]) as tmp:
            tmp.write_text(text, encoding="utf-8", errors=UNDECODABLE)
    config = (
        f'embeddings {{\n  tensor_name: "{tensor_name}"\n'
        '  tensor_path: "embedding.tsv"\n  metadata_path: "metadata.tsv"\n'
    )
    if stack is not None:
        grid, (th, tw) = sprite(stack)
        paths["sprite"] = out / "sprite.png"
        with atomic_path(paths["sprite"]) as tmp:
            Image.fromarray(grid).save(tmp, format="PNG")
        config += (
            f'  sprite {{\n    image_path: "sprite.png"\n    single_image_dim: {tw}\n    single_image_dim: {th}\n  }}\n'
        )
    with atomic_path(paths["config"]) as tmp:
        tmp.write_text(config + "}\n", encoding="utf-8")
    return paths
