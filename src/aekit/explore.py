"""An interactive map in one HTML file: hover a point to see its image, select a region, save the indices.

``explore`` writes a self-contained page (Bokeh with its scripts inlined, WebGL
points) that opens from ``file://`` without a network. Image thumbnails travel as
PNG sprite sheets of ``SHEET_TILES`` tiles each, base64 in the page, decoded by
the browser only when a point on that sheet is first shown; tabular data shows
the row index and a few feature values instead.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aekit._utils import UNDECODABLE, InputError, atomic_path, unlabelled

log = logging.getLogger(__name__)

#: tiles per sprite sheet (64 × 64): each sheet decodes to a few MB in the browser, never one huge image
SHEET_TILES = 4096
#: feature values shown on hover for tabular data (the first columns)
HOVER_FEATURES = 8


@dataclass(frozen=True)
class Thumbnails:
    """Thumbnails packed for the page: sheets (PNG bytes), tile size, and each point's slot (-1: none)."""

    sheets: list[bytes]
    tile: tuple[int, int]  # (height, width) in pixels
    slot: np.ndarray  # (n,) int32: position of the point's tile over all sheets, -1 without thumbnail
    note: str  # "" or a message saying thumbnails were subsampled


def check_writable(path: str | os.PathLike[str], flag: str = "path") -> Path:
    """``path`` as a Path, after checking a file can be created beside it (one clear line if not)."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{flag} {p} is a folder; expected a file name such as {p / 'explore.html'}")
    if p.suffix.lower() not in (".html", ".htm"):  # a map written over a .png, or over the data it shows
        raise InputError(f"{flag} {p}: the map is one HTML page; use a file name ending in .html")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:  # atomic_path creates missing folders
        parent = parent.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=".aekit-write-check.", dir=parent)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise InputError(
            f"{flag} {p}: cannot write in {parent} ({exc.strerror or exc}); choose a writable location"
        ) from None
    return p


def _check_embedding(embedding: Any) -> np.ndarray:
    E = np.asarray(embedding)
    if E.ndim != 2 or E.shape[1] != 2 or E.shape[0] == 0:
        raise InputError(
            f"embedding has shape {E.shape}; expected (n_samples, 2) with n_samples >= 1 (reduce to 2-D first, "
            "e.g. AETSNE)"
        )
    if E.dtype.kind not in "biuf" or not np.all(np.isfinite(E)):
        raise InputError("embedding holds non-numeric or non-finite values; expected finite 2-D coordinates")
    return E.astype(np.float32)


def _check_values(values: Any, n: int) -> np.ndarray | None:
    """``values`` as finite float64 ``(n,)`` (None stays None), or one line naming what is wrong."""
    v = _check_rows("values", values, n)
    if v is None:
        return None
    try:
        v = np.asarray(v, dtype=np.float64).reshape(n)
    except (TypeError, ValueError):
        raise InputError(f"values must be one number per point, shape ({n},); found {np.shape(values)}") from None
    if not np.all(np.isfinite(v)):
        raise InputError(f"values: {int((~np.isfinite(v)).sum())} of {n} are NaN or infinite; pass finite numbers")
    return v


def _check_rows(name: str, values: Any, n: int) -> np.ndarray | None:
    if values is None:
        return None
    a = np.asarray(values)
    if a.ndim == 0 or len(a) != n:
        found = "a scalar" if a.ndim == 0 else f"{len(a)} rows"
        raise InputError(f"{name} has {found} but the embedding has {n} points; pass one row per point (same order)")
    return a


def image_stack(images: np.ndarray, image_shape: Sequence[int] | None) -> np.ndarray:
    """``images`` as uint8 ``(n, H, W, C)`` with C in {1, 3}.

    Accepts ``(n, H, W)``, ``(n, C, H, W)`` (aekit's channels-first) or flat rows
    ``(n, n_features)`` with ``image_shape`` ``(H, W)`` or ``(C, H, W)`` (a square
    of ``n_features`` pixels when omitted). uint8 is taken as 0-255 pixels, floats
    in [0, 1] are scaled by 255, other floats by their own min and max.
    """
    a = np.asarray(images)
    if a.dtype.kind not in "biuf":
        raise InputError(f"images have dtype {a.dtype}; expected numbers (uint8 pixels or floats)")
    if a.ndim == 2:
        shape = tuple(image_shape) if image_shape is not None else _square(a.shape[1])
        if math.prod(shape) != a.shape[1]:
            raise InputError(
                f"images have {a.shape[1]} values per row but {{image_shape}} holds {math.prod(shape)}; "
                "pass the images' true shape",
                param="image_shape",
                values={"image_shape": shape},
            )
        a = a.reshape(len(a), *shape)
    elif image_shape is not None and tuple(a.shape[1:]) != tuple(image_shape):
        raise InputError(
            f"images have shape {a.shape[1:]} per point but {{image_shape}}; pass matching images or drop it",
            param="image_shape",
            values={"image_shape": tuple(image_shape)},
        )
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4 or a.shape[1] not in (1, 3) or min(a.shape[2:]) < 1:
        raise InputError(
            f"images have shape {a.shape}; expected (n, H, W), (n, 1 or 3, H, W) or flat rows with image_shape"
        )
    a = np.moveaxis(a, 1, -1)  # (n, H, W, C)
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    a = a.astype(np.float32)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 1.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputError("images hold NaN or infinite values; expected finite pixels")
    if lo < 0 or hi > 1:  # not [0, 1] data: stretch its own range
        a = (a - lo) / (hi - lo or 1.0)
    return np.ascontiguousarray(np.rint(a * 255), dtype=np.uint8)


def _square(n_features: int) -> tuple[int, int]:
    side = math.isqrt(n_features)
    if side * side != n_features:
        from aekit.modules import example_image_shape  # (an error path: the network module loads only here)

        raise InputError(
            f"images have {n_features} values per row, not a square; pass their shape, "
            f"e.g. {{image_shape={example_image_shape(n_features)}}} (height, width)",
            param="image_shape",
            values={},
        )
    return side, side


def pack_thumbnails(
    images: np.ndarray,
    *,
    max_thumbnails: int = 100_000,
    thumbnail_size: int = 32,
    random_state: int = 0,
    tiles_per_sheet: int = SHEET_TILES,
) -> Thumbnails:
    """Pack ``(n, H, W, C)`` uint8 images into PNG sprite sheets of ``tiles_per_sheet`` tiles.

    Images larger than ``thumbnail_size`` on their longer side are shrunk; above
    ``max_thumbnails`` images a random subset (seeded by ``random_state``) gets one.
    """
    from PIL import Image

    n, h, w, c = images.shape
    if not (isinstance(max_thumbnails, (int, np.integer)) and max_thumbnails >= 0):
        raise InputError(f"max_thumbnails={max_thumbnails!r} must be an integer >= 0")
    slot = np.full(n, -1, dtype=np.int32)
    keep = np.arange(n)
    note = ""
    if n > max_thumbnails:
        keep = np.sort(np.random.default_rng(random_state).choice(n, max_thumbnails, replace=False))
        note = (
            f"thumbnails for a random {max_thumbnails:,} of {n:,} points (max_thumbnails); "
            "the others show their index and label only"
        )
        log.warning(note)
    slot[keep] = np.arange(len(keep), dtype=np.int32)
    scale = min(1.0, thumbnail_size / max(h, w))
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    cols = int(math.isqrt(tiles_per_sheet))
    sheets = []
    for start in range(0, len(keep), cols * cols):
        part = images[keep[start : start + cols * cols]]
        if (th, tw) != (h, w):
            part = np.stack(
                [
                    np.asarray(
                        Image.fromarray(im.squeeze(-1) if c == 1 else im).resize((tw, th), Image.Resampling.LANCZOS)
                    ).reshape(th, tw, c)
                    for im in part
                ]
            )
        rows = -(-len(part) // cols)
        grid = np.zeros((rows * cols, th, tw, c), dtype=np.uint8)
        grid[: len(part)] = part
        grid = grid.reshape(rows, cols, th, tw, c).transpose(0, 2, 1, 3, 4).reshape(rows * th, cols * tw, c)
        buf = io.BytesIO()  # PNG level 6: level 9 is barely smaller and far slower (docs/performance.md)
        Image.fromarray(grid.squeeze(-1) if c == 1 else grid).save(buf, format="PNG", compress_level=6)
        sheets.append(buf.getvalue())
    return Thumbnails(sheets, (th, tw), slot, note)


def _palette(k: int) -> list[str]:
    from bokeh.palettes import Category10, Category20, Turbo256

    if k <= 10:
        return list(Category10[10][:k])
    if k <= 20:
        return list(Category20[20][:k])
    return [Turbo256[int(i)] for i in np.linspace(0, 255, k)]


#: more labels than this make a legend nobody reads (and a slow page): said in a warning
LEGEND_CLASSES = 256

#: the legend's name of the points labelled -1
UNLABELLED_NAME = "unlabelled (-1)"


#: Unicode's direction controls: a label holding one would be drawn reversed (the legend, the hover card)
_DIRECTION = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(text: str) -> str:
    """``text`` as the page draws it: direction controls as ``<U+202E>``, not obeyed (the page's script does the
    same for ids; saved selections keep the data's own text)."""
    return _DIRECTION.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)


def _classes(labels: np.ndarray | None, n: int) -> tuple[list[str], np.ndarray, list[str]]:
    """Class names (legend order), each point's class number, and each class's label as the data hold it."""
    if labels is None:
        return ["all points"], np.zeros(n, dtype=np.int64), ["all points"]
    # unlabelled by the rule training follows (-1; the text "-1" among text labels, not "-1.0"): one legend entry,
    # first; every other label its own class, even one that reads like that entry
    missing = unlabelled(labels)
    lab = labels if labels.dtype.kind in "biuf" else np.array([str(v) for v in labels], dtype=object)
    classes, codes = np.unique(lab[~missing], return_inverse=True)
    values = [str(c) for c in classes]
    names = [f"{c} (a label)" if c == UNLABELLED_NAME else shown(c) for c in values]
    out = np.zeros(n, dtype=np.int64)
    out[~missing] = codes.reshape(-1) + int(missing.any())
    first = [UNLABELLED_NAME] if missing.any() else []
    return first + names, out, (["-1"] if missing.any() else []) + values


def _features(features: np.ndarray | None, names: Sequence[str] | None) -> tuple[list[str], np.ndarray | None]:
    if features is None:
        return [], None
    F = features.reshape(len(features), -1)
    if names is not None and len(names) != F.shape[1]:
        raise InputError(
            f"feature_names has {len(names)} names but features have {F.shape[1]} columns; pass one name per column"
        )
    shown = list(names if names is not None else [f"x{i + 1}" for i in range(F.shape[1])])[:HOVER_FEATURES]  # as CSVs
    return [str(s) for s in shown], F[:, :HOVER_FEATURES].astype(np.float32)


def _marker_size(n: int) -> float:
    return 7.0 if n <= 2_000 else 5.0 if n <= 20_000 else 3.5


#: with values, the share of points with the highest ones, drawn in a colour of their own (the outliers to look at)
VALUE_TOP = 0.01
VALUE_COLOUR = "red"


def _value_colours(v: np.ndarray) -> Any:
    """Viridis from the lowest value to the ``1 - VALUE_TOP`` quantile, the values above it red: a few extreme
    values (outliers, whose errors are often orders of magnitude above the rest) neither flatten the scale nor
    hide among it."""
    from bokeh.models.mappers import LinearColorMapper
    from bokeh.palettes import Viridis256

    low, high = float(np.min(v)), float(np.quantile(v, 1 - VALUE_TOP))
    if not high > low:  # (nearly) one value: a scale of some width
        high = low + max(abs(low), 1.0) * 1e-6
    return LinearColorMapper(palette=Viridis256, low=low, high=high, high_color=VALUE_COLOUR)


def _document(
    E: np.ndarray,
    classes: list[str],
    codes: np.ndarray,
    slot: np.ndarray,
    feat: tuple[list[str], np.ndarray | None],
    title: str,
    axis_labels: Sequence[str],
    intro: str,
    values: tuple[str, np.ndarray] | None = None,
) -> Any:
    """The Bokeh layout: the map (one renderer per class, for the legend's show/hide) and the side panel.

    ``values``: ``(name, (n,) float)``, each point's number (e.g. its reconstruction error): the points are
    coloured by it instead of by class, the top ``VALUE_TOP`` share in one colour of its own."""
    from bokeh.layouts import column, row
    from bokeh.models import BoxSelectTool, ColumnDataSource, CustomJS, HoverTool, LassoSelectTool
    from bokeh.models.annotations import ColorBar, Legend, LegendItem, Title  # (mypy: bokeh.models re-exports)
    from bokeh.models.renderers import DataRenderer
    from bokeh.models.widgets import Button, Div
    from bokeh.plotting import figure

    p = figure(
        width=860,
        height=760,
        output_backend="webgl",
        tools="pan,wheel_zoom,reset,save",
        active_scroll="wheel_zoom",
        x_axis_label=axis_labels[0],
        y_axis_label=axis_labels[1],
        toolbar_location="above",
        name="map",
    )
    p.title = Title(text=title, text_font_size="15px")
    renderers, items = [], []
    names, F = feat
    colors: list[Any] = _palette(len(classes))
    mapper = None
    if values is not None:
        mapper = _value_colours(values[1])
        colors = [{"field": "v", "transform": mapper}] * len(classes)
    for k, (name, color) in enumerate(zip(classes, colors, strict=True)):
        members = np.flatnonzero(codes == k)
        if values is not None:  # the highest drawn last, on top: an outlier is not hidden under its neighbours
            members = members[np.argsort(values[1][members], kind="stable")]
        data = {"x": E[members, 0], "y": E[members, 1], "idx": members.astype(np.int32), "slot": slot[members]}
        if F is not None:
            data.update({f"f{j}": F[members, j] for j in range(len(names))})
        if values is not None:
            data["v"] = values[1][members]
        r = p.scatter(
            "x",
            "y",
            source=ColumnDataSource(data),
            size=_marker_size(len(E)),
            fill_color=color,
            line_color=None,
            fill_alpha=0.75,
            selection_fill_alpha=1.0,
            nonselection_fill_alpha=0.12,
            name=f"class {name}",
        )
        renderers.append(r)
        # coloured by values, a class's legend glyph takes its lowest point's colour (Viridis' dark end), not red
        items.append(LegendItem(label=name, renderers=[r], index=None if values is None else 0))  # type: ignore[list-item]  # bokeh's GlyphRenderer[T] is invariant
    legend = Legend(
        items=items,
        click_policy="hide",
        title="label (click: show/hide)",
        label_text_font_size="13px",
        glyph_height=18,
        glyph_width=18,
    )
    p.add_layout(legend, "right")
    if mapper is not None and values is not None:
        top = f"{VALUE_COLOUR} above {mapper.high:.3g}: the top {100 * VALUE_TOP:g}%"
        bar = ColorBar(color_mapper=mapper, title=f"{values[0]} ({top})", width=12, name="value-bar")
        p.add_layout(bar, "left")
    state = {"renderers": renderers, "classes": classes}
    info = Div(text=intro, width=300, styles={"font-size": "13px"})
    sel = Div(
        text="<i>Box or lasso select (toolbar) to list points here.</i>",
        width=300,
        name="selection",
        styles={"font-size": "13px"},
    )
    targets: list[DataRenderer] = list(renderers)  # the tools' type hints want this (invariant) list type
    p.add_tools(
        HoverTool(
            tooltips=None,
            renderers=targets,
            callback=CustomJS(args=state, code="aekitExplore.hover(cb_data, renderers, classes)"),
        ),
        BoxSelectTool(renderers=targets),
        LassoSelectTool(renderers=targets),
    )
    on_select = CustomJS(args={**state, "div": sel}, code="aekitExplore.selected(renderers, classes, div)")
    for r in renderers:
        r.data_source.selected.js_on_change("indices", on_select)
        r.js_on_change("visible", on_select)  # hiding a class drops it from the saved selection
    buttons = []
    for label, code in (
        ("Save CSV", "aekitExplore.download('csv', classes)"),
        ("Save JSON", "aekitExplore.download('json', classes)"),
        ("Clear", "aekitExplore.clear(renderers)"),
        ("Show all", "aekitExplore.showAll(renderers, true)"),
        ("Hide all", "aekitExplore.showAll(renderers, false)"),
    ):
        b = Button(label=label, width=58 if len(label) < 6 else 90, name=label.lower().replace(" ", "-"))
        b.js_on_click(CustomJS(args=state, code=code))
        buttons.append(b)
    side = column(info, row(*buttons[:3]), row(*buttons[3:]), sel, width=320)
    return row(p, side)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 8px; }
#aekit-tip { position: fixed; display: none; pointer-events: none; z-index: 10; background: #fff;
  border: 1px solid #999; border-radius: 4px; padding: 6px; box-shadow: 0 2px 8px rgba(0,0,0,.25);
  font: 12px system-ui, sans-serif; max-width: 260px; }
#aekit-tip img { display: block; image-rendering: pixelated; margin-bottom: 4px; }
#aekit-tip table { border-collapse: collapse; } #aekit-tip td { padding: 0 6px 0 0; }
"""

# The page's own script: thumbnails cut from the lazily decoded sprite sheets, the hover card that
# follows the mouse, the selection panel and its downloads. Bokeh's callbacks call into it.
_JS = r"""
(function () {
  "use strict";
  const AE = window.aekitExplore = {sheets: [], hits: new Map(), picked: [], mouse: [0, 0], last: null, sel: null};
  const cfg = () => AE.cfg || (AE.cfg = JSON.parse(document.getElementById("aekit-config").textContent));
  document.addEventListener("mousemove", (e) => {
    AE.mouse = [e.clientX, e.clientY];
    const onCanvas = (n) => n.tagName === "CANVAS" || (n.classList && n.classList.contains("bk-Canvas"));
    if (!e.composedPath().some(onCanvas)) AE.tip(null);
  }, true);
  function sheet(k) {  // sheet k as a decoded image, or null while it loads (then everything shown is redrawn)
    let img = AE.sheets[k];
    if (!img) {
      img = AE.sheets[k] = new Image();
      img.onload = () => { if (AE.last) AE.tip(AE.last); if (AE.sel) AE.selected(...AE.sel); };
      img.src = "data:image/png;base64," + document.getElementById("aekit-sheet-" + k).textContent.trim();
    }
    return img.complete && img.naturalWidth ? img : null;
  }
  AE.thumb = function (slot, scale) {  // a data URL of one thumbnail; "" while loading, null without one
    const c = cfg();
    if (slot < 0 || !c.sheets) return null;
    const img = sheet(Math.floor(slot / c.per_sheet));
    if (!img) return "";
    const t = slot % c.per_sheet, cv = document.createElement("canvas");
    cv.width = c.tile[1] * scale; cv.height = c.tile[0] * scale;
    const g = cv.getContext("2d");
    g.imageSmoothingEnabled = false;
    g.drawImage(img, (t % c.cols) * c.tile[1], Math.floor(t / c.cols) * c.tile[0], c.tile[1], c.tile[0],
                0, 0, cv.width, cv.height);
    return cv.toDataURL();
  };
  // direction controls shown as <U+202E>, not obeyed: an id "\u202Egpj.exe" must not read as "exe.jpg"
  const esc = (s) => String(s)
    .replace(/[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g,
             (ch) => "<U+" + ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0") + ">")
    .replace(/[&<>"]/g, (ch) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})[ch]);
  AE.name = (i) => (cfg().ids ? esc(cfg().ids[i]) : "#" + i);  // a point's own id where the data have one
  function card(src, i, cls, classes, scale) {
    const c = cfg(), d = src.data, url = AE.thumb(d.slot[i], scale);
    let h = url ? `<img src="${url}" alt="point ${d.idx[i]}">` : (url === "" ? "<i>loading…</i><br>" : "");
    h += `<b>${AE.name(d.idx[i])}</b>` + (c.labelled ? ` &nbsp;label <b>${esc(classes[cls])}</b>` : "");
    if (c.value_name !== null) h += `<br>${esc(c.value_name)} <b>${Number(d.v[i]).toPrecision(4)}</b>`;
    if (c.features.length) {
      const tr = (f, j) => `<tr><td>${esc(f)}</td><td>${Number(d["f" + j][i]).toPrecision(4)}</td></tr>`;
      h += "<table>" + c.features.map(tr).join("") + "</table>";
    }
    return h;
  }
  AE.tip = function (hit) {  // hit: {r, i, cls, classes, more} or null
    let el = document.getElementById("aekit-tip");
    AE.last = hit;
    if (!hit) { el.style.display = "none"; return; }
    el.innerHTML = card(hit.r.data_source, hit.i, hit.cls, hit.classes, 3) +
      (hit.more ? `<br><i>+${hit.more} more here (zoom in)</i>` : "");
    el.dataset.index = hit.r.data_source.data.idx[hit.i];
    el.style.display = "block";
    const [x, y] = AE.mouse, w = el.offsetWidth, h = el.offsetHeight;
    el.style.left = (x + 16 + w > innerWidth ? x - 16 - w : x + 16) + "px";
    el.style.top = Math.max(4, y + 16 + h > innerHeight ? y - 16 - h : y + 16) + "px";
  };
  AE.hover = function (cb, renderers, classes) {  // one call per renderer per mouse move: keep the nearest hit of all
    const r = cb.renderer, ids = cb.index.indices, g = cb.geometry;
    AE.hits.set(r.id, ids.length ? {r, ids, g} : null);
    let best = null, count = 0;
    for (const [k, rr] of renderers.entries()) {
      const h = AE.hits.get(rr.id);
      if (!h || !rr.visible) continue;
      count += h.ids.length;
      const d = rr.data_source.data;
      for (const i of h.ids) {
        const dist = (d.x[i] - h.g.x) ** 2 + (d.y[i] - h.g.y) ** 2;
        if (!best || dist < best.dist) best = {r: rr, i, cls: k, classes, dist};
      }
    }
    if (best) best.more = count - 1;
    AE.tip(best);
  };
  AE.selected = function (renderers, classes, div) {  // the selection panel: counts, a gallery, what the buttons save
    AE.sel = [renderers, classes, div];
    const picked = [], per = new Map();
    renderers.forEach((r, k) => {
      if (!r.visible) return;
      const d = r.data_source.data;
      for (const i of r.data_source.selected.indices) {
        picked.push([d.idx[i], k, d.slot[i], d.v ? d.v[i] : null]);
        per.set(k, (per.get(k) || 0) + 1);
      }
    });
    picked.sort((a, b) => a[0] - b[0]);
    AE.picked = picked;
    // classes with nothing selected fade too
    renderers.forEach((r) => { r.glyph.fill_alpha = picked.length ? 0.12 : 0.75; });
    if (!picked.length) { div.text = "<i>Box or lasso select (toolbar) to list points here.</i>"; return; }
    let h = `<b>${picked.length.toLocaleString()} selected</b>`;
    if (cfg().labelled) {
      const counts = [...per.entries()].sort((a, b) => b[1] - a[1]);
      h += "<br>" + counts.map(([k, m]) => `${esc(classes[k])}: ${m}`).join(", ");
    }
    const step = Math.max(1, picked.length / 60), gal = [];
    for (let j = 0; j < Math.min(60, picked.length); j++) {
      const q = picked[Math.floor(j * step)], url = AE.thumb(q[2], 1);
      const style = "margin:1px;image-rendering:pixelated;width:40px";
      if (url) gal.push(`<img src="${url}" title="${AE.name(q[0])}" style="${style}">`);
    }
    if (gal.length) h += `<div style="margin-top:6px">${gal.join("")}</div>`;
    else if (!cfg().sheets) {
      h += (cfg().ids ? "<br>ids: " : "<br>indices: ") + picked.slice(0, 40).map((q) => AE.name(q[0])).join(", ")
        + (picked.length > 40 ? ", …" : "");
    }
    div.text = h;
  };
  AE.download = function (fmt, classes) {
    const c = cfg(), p = AE.picked;
    let text;
    if (fmt === "csv") {
      // never a spreadsheet formula ("=cmd..." as "'=cmd...", numbers kept; aekit._utils.spreadsheet_safe), then quoted
      const safe = (s) => (/^[=+\-@\t\r']/.test(s) && !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s) ? "'" + s : s);
      const q = (s) => { s = safe(String(s)); return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s; };
      const value = c.value_name !== null;
      const line = (e) => e[0] + (c.ids ? "," + q(c.ids[e[0]]) : "")
        + (c.labelled ? "," + q(c.labels[e[1]]) : "") + (value ? "," + e[3] : "") + "\n";
      text = "index" + (c.ids ? ",id" : "") + (c.labelled ? ",label" : "") + (value ? "," + q(c.value_name) : "")
        + "\n" + p.map(line).join("");
    } else {
      const o = {indices: p.map((e) => e[0])};
      if (c.ids) o.ids = p.map((e) => c.ids[e[0]]);
      if (c.labelled) o.labels = p.map((e) => c.labels[e[1]]);
      if (c.value_name !== null) o.values = p.map((e) => e[3]);
      text = JSON.stringify(o);
    }
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], {type: fmt === "csv" ? "text/csv" : "application/json"}));
    a.download = "selection." + fmt;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  };
  AE.clear = (renderers) => renderers.forEach((r) => { r.data_source.selected.indices = []; });
  AE.showAll = (renderers, on) => renderers.forEach((r) => { r.visible = on; });
})();
"""


def _page(layout: Any, title: str, thumbs: Thumbnails | None, cfg: dict[str, Any]) -> str:
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    sheets = "".join(
        f'<script type="text/plain" id="aekit-sheet-{k}">{base64.b64encode(s).decode()}</script>\n'
        for k, s in enumerate(thumbs.sheets if thumbs else [])
    )
    # no "<" in the script element: "</script>" would end it and "<!--<script" would swallow the page after it
    config = json.dumps(cfg).replace("<", "\\u003c")
    template = (
        "{% block postamble %}<style>" + _CSS + "</style><script>" + _JS + "</script>{% endblock %}\n"
        "{% block inner_body %}"
        + '<div id="aekit-tip"></div>'
        + f'<script type="application/json" id="aekit-config">{config}</script>\n'
        + sheets
        + "{{ super() }}{% endblock %}"
    )
    return file_html(layout, resources=INLINE, title=title, template=template)


def explore_html(
    embedding: Any,
    labels: Any = None,
    images: Any = None,
    *,
    image_shape: Sequence[int] | None = None,
    features: Any = None,
    feature_names: Sequence[str] | None = None,
    title: str = "aekit explore",
    axis_labels: Sequence[str] = ("dim 1", "dim 2"),
    max_thumbnails: int = 100_000,
    thumbnail_size: int = 32,
    random_state: int = 0,
    ids: Any = None,
    values: Any = None,
    value_name: str = "value",
) -> str:
    """The page of ``explore`` as a string (see there)."""
    E = _check_embedding(embedding)
    n = len(E)
    y = _check_rows("labels", labels, n)
    v = _check_values(values, n)
    point_ids = _check_rows("ids", ids, n)
    imgs = _check_rows("images", images, n)
    F = _check_rows("features", features, n)
    stack = image_stack(imgs, image_shape) if imgs is not None else None
    thumbs = (
        pack_thumbnails(stack, max_thumbnails=max_thumbnails, thumbnail_size=thumbnail_size, random_state=random_state)
        if stack is not None
        else None
    )
    classes, codes, label_values = _classes(y, n)
    if len(classes) > LEGEND_CLASSES:  # e.g. an id column passed as the labels: a slow page, a cut legend
        log.warning(
            "%d labels for %d points: the legend shows the first few dozen and the page grows with each; "
            "if these are row ids, pass them as ids and the classes as labels",
            len(classes),
            n,
        )
    names, Fs = _features(F, feature_names)
    slot = thumbs.slot if thumbs else np.full(n, -1, dtype=np.int32)
    parts = [f"<b>{n:,} points</b>" + (f", {len(classes)} labels" if y is not None else "")]
    if thumbs:
        parts.append(thumbs.note or "every point has a thumbnail")
    if v is not None:
        parts.append(f"Colour: each point's {value_name} (the top {100 * VALUE_TOP:g}% in {VALUE_COLOUR}).")
    parts.append(
        "Hover: a point's "
        + ("image, " if thumbs else "values, " if names else "")
        + ("index, label and " + value_name if v is not None else "index and label")
        + ". Wheel: zoom; drag: pan. "
        "Box/lasso (toolbar): select, then save the indices. Legend: click a label to hide or show it."
    )
    intro = "<br>".join(html.escape(s) if not s.startswith("<b>") else s for s in parts)
    shown_values = None if v is None else (shown(value_name), v)
    layout = _document(E, classes, codes, slot, (names, Fs), title, axis_labels, intro, shown_values)
    cfg = {
        "labelled": y is not None,
        "features": names,
        "sheets": len(thumbs.sheets) if thumbs else 0,
        "tile": list(thumbs.tile) if thumbs else [0, 0],
        "cols": int(math.isqrt(SHEET_TILES)),
        "per_sheet": SHEET_TILES,
        "ids": None if point_ids is None else [str(v) for v in point_ids.tolist()],
        # the labels as the data hold them, for saved selections (the legend's names are for reading)
        "labels": label_values,
        "value_name": None if v is None else value_name,
    }
    return _page(layout, title, thumbs, cfg)


def explore(
    embedding: Any,
    labels: Any = None,
    images: Any = None,
    *,
    path: str | os.PathLike[str],
    image_shape: Sequence[int] | None = None,
    features: Any = None,
    feature_names: Sequence[str] | None = None,
    title: str = "aekit explore",
    axis_labels: Sequence[str] = ("dim 1", "dim 2"),
    max_thumbnails: int = 100_000,
    thumbnail_size: int = 32,
    random_state: int = 0,
    ids: Any = None,
    values: Any = None,
    value_name: str = "value",
) -> Path:
    """Write an interactive map of a 2-D embedding as one self-contained HTML file.

    Points are coloured by label (legend click hides or shows a class); hovering
    shows the point's thumbnail (image data) or feature values (tabular data), its
    index and label; box/lasso selection lists the points and saves their indices
    as CSV or JSON. Needs ``bokeh`` and ``pillow`` (``pip install aekit[explore]``).

    Parameters
    ----------
    embedding : array of shape (n_samples, 2)
    labels : array of shape (n_samples,), optional
    images : array of shape (n_samples, H, W), (n_samples, C, H, W) or (n_samples, n_features), optional
        uint8 pixels or floats (in [0, 1], else stretched to it); flat rows need
        ``image_shape`` unless they are a square.
    path : path
        The HTML file; written atomically (a failure leaves no partial file).
    image_shape : (H, W) or (C, H, W), optional
    features : array of shape (n_samples, n_features), optional
        Tabular data: the first ``HOVER_FEATURES`` columns show on hover.
    feature_names : sequence of str, optional
    title, axis_labels : str
    max_thumbnails : int, default=100_000
        Above this many points a random subset gets thumbnails (a message says so).
    thumbnail_size : int, default=32
        Longer side of a thumbnail in pixels; larger images are shrunk.
    random_state : int, default=0
        Seeds the subset of thumbnails.
    ids : array of shape (n_samples,), optional
        Each point's own id (a CSV's id column, an image's file), shown on hover and saved
        with the selection beside its index.
    values : array of shape (n_samples,), optional
        A number per point, e.g. its reconstruction error (``-estimator.score_samples(X)``): the
        points are coloured by it (Viridis, the top ``VALUE_TOP`` share red) instead of by label,
        it shows on hover and is saved with the selection.
    value_name : str, default="value"
        What ``values`` are, for the colour bar, the hover card and the saved selection's column.

    Returns
    -------
    Path of the written file.
    """
    p = check_writable(path)
    page = explore_html(
        embedding,
        labels,
        images,
        image_shape=image_shape,
        features=features,
        feature_names=feature_names,
        title=title,
        axis_labels=axis_labels,
        max_thumbnails=max_thumbnails,
        thumbnail_size=thumbnail_size,
        random_state=random_state,
        ids=ids,
        values=values,
        value_name=value_name,
    )
    with atomic_path(p) as tmp:
        tmp.write_text(page, encoding="utf-8", errors=UNDECODABLE)
    return p
