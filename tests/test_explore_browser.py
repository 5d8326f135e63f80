"""The explore page in a real browser: Debian's chromium driven by Playwright, network blocked.

Skips with one line when chromium or Playwright is missing: `make browser` (as root
with apt) or `apt-get install chromium`, and `pip install playwright`.
"""

import contextlib
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bokeh", reason="pip install 'aekit[explore]'")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "browser tests need Debian's chromium at /usr/bin/chromium: "
        "run `make browser` as root (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need Playwright: pip install playwright")

from aekit.explore import explore  # noqa: E402

pytestmark = pytest.mark.browser
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
N, COLS, KNOWN, KNOWN_AT = 300, 20, 17, (24.0, 18.0)

# screen position of a data point: the figure's view maps data to canvas pixels
TO_SCREEN = """([x, y]) => { const m = Bokeh.documents[0].get_model_by_name("map"), v = Bokeh.index.find_one(m);
  const r = v.canvas_view.el.getBoundingClientRect();
  return [r.left + v.frame.x_scale.compute(x), r.top + v.frame.y_scale.compute(y)]; }"""
# the hover card's image, read back at its native tile resolution (drawn 3x, nearest neighbour)
TIP_PIXELS = """() => { const img = document.querySelector("#aekit-tip img"), c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight; const g = c.getContext("2d"); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data, out = [];
  for (let y = 1; y < c.height; y += 3) for (let x = 1; x < c.width; x += 3) out.push(d[4 * (y * c.width + x)]);
  return out; }"""


@pytest.fixture(scope="module")
def data():
    """Points on an integer grid (selection edges fall between them), point KNOWN alone in a corner."""
    i = np.arange(N)
    E = np.stack([i % COLS, i // COLS], axis=1).astype(np.float64)
    E[KNOWN] = KNOWN_AT
    images = np.random.default_rng(0).integers(0, 256, (N, 16, 16), dtype=np.uint8)
    return E, i % 5, images


@pytest.fixture(scope="module")
def page_file(data, tmp_path_factory):
    E, y, images = data
    return explore(E, y, images, path=tmp_path_factory.mktemp("explore") / "explore.html", title="browser test")


@pytest.fixture
def browser_page(page_file, tmp_path):
    with opened(page_file, tmp_path) as found:
        yield found


@contextlib.contextmanager
def opened(page_file, tmp_path):
    """The page in chromium, every request outside the file refused and recorded, errors recorded."""
    outside, errors = [], []
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            args=ARGS,
            headless=True,
            viewport={"width": 1300, "height": 850},
            accept_downloads=True,
        )

        def route(r):  # anything but the file itself is recorded and refused
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                outside.append(r.request.url)
                r.abort()

        ctx.route("**/*", route)
        page = ctx.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_file.as_uri())
        page.wait_for_function(
            "window.Bokeh && Bokeh.documents.length && "
            "Bokeh.index.find_one(Bokeh.documents[0].get_model_by_name('map'))",
            timeout=30_000,
        )
        yield page, outside, errors
        ctx.close()


def test_loads_offline_without_errors(browser_page, tmp_path):
    page, outside, errors = browser_page
    page.wait_for_timeout(300)
    assert errors == [] and outside == []
    assert page.get_by_text(
        "300 points"
    ).is_visible()  # (locators see into Bokeh's shadow DOM, page.content() does not)
    page.screenshot(path=str(tmp_path / "explore.png"))
    assert (tmp_path / "explore.png").stat().st_size > 10_000


def _hover_known(page, shown="document.querySelector('#aekit-tip').style.display === 'block'"):
    """Move the mouse onto the known point (from beside it, as a hand would) and wait until ``shown`` holds."""
    x, y = page.evaluate(TO_SCREEN, list(KNOWN_AT))
    page.mouse.move(x - 40, y - 40)
    page.mouse.move(x, y, steps=4)
    page.wait_for_function(shown, timeout=10_000)


def test_hover_shows_thumbnail(browser_page, data, tmp_path):
    page, outside, errors = browser_page
    _hover_known(page, "document.querySelector('#aekit-tip img') && document.querySelector('#aekit-tip img').complete")
    tip = page.locator("#aekit-tip")
    assert (
        tip.get_attribute("data-index") == str(KNOWN)
        and f"#{KNOWN}" in tip.inner_text()
        and "label 2" in tip.inner_text()
    )
    pixels = np.array(page.evaluate(TIP_PIXELS)).reshape(16, 16)
    np.testing.assert_array_equal(pixels, data[2][KNOWN])  # the known point's own image, pixel for pixel
    page.screenshot(path=str(tmp_path / "explore_hover.png"))
    page.mouse.move(5, 5)  # off the map: the card goes
    assert page.locator("#aekit-tip").is_hidden()
    assert errors == [] and outside == []


def test_select_region_and_save_indices(browser_page, data, tmp_path):
    page, outside, errors = browser_page
    E, y, _ = data
    lo, hi = (2.5, 2.5), (6.5, 5.5)  # grid points x in 3..6, y in 3..5: 12 points
    expected = sorted(
        int(i) for i in np.flatnonzero((E[:, 0] > lo[0]) & (E[:, 0] < hi[0]) & (E[:, 1] > lo[1]) & (E[:, 1] < hi[1]))
    )
    assert len(expected) == 12
    page.locator('[title="Box Select"]').first.click()
    x0, y0 = page.evaluate(TO_SCREEN, [lo[0], hi[1]])
    x1, y1 = page.evaluate(TO_SCREEN, [hi[0], lo[1]])
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=10)
    page.mouse.up()
    page.wait_for_function("aekitExplore.picked.length > 0", timeout=10_000)
    assert page.get_by_text("12 selected").is_visible()
    page.screenshot(path=str(tmp_path / "explore_selection.png"))
    with page.expect_download() as dl:
        page.get_by_role("button", name="Save JSON").click()
    saved = json.loads(Path(dl.value.path()).read_text())
    assert dl.value.suggested_filename == "selection.json"
    assert saved["indices"] == expected and saved["labels"] == [str(y[i]) for i in expected]
    with page.expect_download() as dl:
        page.get_by_role("button", name="Save CSV").click()
    lines = Path(dl.value.path()).read_text().splitlines()
    assert lines[0] == "index,label" and [int(r.split(",")[0]) for r in lines[1:]] == expected
    # a hidden class leaves the saved selection
    page.evaluate(
        "() => { for (const m of Bokeh.documents[0].all_models) if (m.name === 'class 0') m.visible = false; }"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("aekitExplore.picked.map(p => p[0])") == [i for i in expected if y[i] != 0]
    page.get_by_role("button", name="Clear").click()
    page.wait_for_function("aekitExplore.picked.length === 0", timeout=5_000)
    assert errors == [] and outside == []
    for name in ("explore_hover.png", "explore_selection.png"):
        src = tmp_path / name
        if src.exists():
            shutil.copy(src, tmp_path / f"kept_{name}")


def test_ids_show_on_hover_and_are_saved_with_the_selection(data, tmp_path):
    E, y, images = data
    ids = np.array([f"<b>row{i}</b>" if i == KNOWN else f"row{i}" for i in range(N)], dtype=object)  # markup: text
    ids[3] = "row\r3"  # a bare CR must be quoted in the saved CSV, or a reader starts a new row there
    ids[5] = "=HYPERLINK(1)"  # a formula to a spreadsheet: saved as text ("'=..."), the JSON keeps it as it is
    y = y.copy()
    y[3] = -1  # unlabelled: "unlabelled (-1)" in the legend, -1 in a saved selection (it joins back to the data)
    path = explore(E, y, images, path=tmp_path / "ids.html", ids=ids)
    with opened(path, tmp_path) as (page, outside, errors):
        _hover_known(page)
        tip = page.locator("#aekit-tip")
        assert f"<b>row{KNOWN}</b>" in tip.inner_text() and tip.locator("b b").count() == 0
        assert page.get_by_text("unlabelled (-1)").count() >= 1  # the legend
        picked = f"[[{KNOWN}, 3, 0], [3, 0, 1], [5, 1, 2]]"  # classes -1, 0, 1, 2, ...
        page.evaluate(f"() => {{ aekitExplore.picked = {picked}; }}")
        with page.expect_download() as dl:
            page.get_by_role("button", name="Save CSV").click()
        with open(dl.value.path(), newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows == [
            ["index", "id", "label"],
            [str(KNOWN), f"<b>row{KNOWN}</b>", "2"],
            ["3", "row\r3", "-1"],
            ["5", "'=HYPERLINK(1)", "0"],
        ]
        with page.expect_download() as dl:
            page.get_by_role("button", name="Save JSON").click()
        saved = json.loads(Path(dl.value.path()).read_text())
        assert saved["ids"] == [f"<b>row{KNOWN}</b>", "row\r3", "=HYPERLINK(1)"] and saved["labels"] == ["2", "-1", "0"]
        assert errors == [] and outside == []


def test_direction_controls_in_ids_and_labels_are_shown_not_obeyed(data, tmp_path):
    # "\u202egpj.exe" read as "exe.jpg" on the page: the hover card and legend show the control as <U+202E>,
    # and a saved selection keeps the data's own text (it joins back to the data)
    E, y, images = data
    ids = np.array([f"row{i}" for i in range(N)], dtype=object)
    ids[KNOWN] = "\u202egpj.exe"
    labels = np.where(np.arange(N) % 2 == 0, "\u202ecat", "dog").astype(object)
    path = explore(E, labels, images, path=tmp_path / "bidi.html", ids=ids)
    with opened(path, tmp_path) as (page, outside, errors):
        _hover_known(page)
        tip = page.locator("#aekit-tip").inner_text()
        assert "<U+202E>gpj.exe" in tip and "\u202e" not in tip
        assert page.get_by_text("<U+202E>cat").count() >= 1  # the legend
        page.evaluate(f"() => {{ aekitExplore.picked = [[{KNOWN}, 0, 0]]; }}")
        with page.expect_download() as dl:
            page.get_by_role("button", name="Save CSV").click()
        with open(dl.value.path(), newline="", encoding="utf-8") as fh:
            assert list(csv.reader(fh))[1][1] == "\u202egpj.exe"
        assert errors == [] and outside == []


def test_values_colour_the_points_show_on_hover_and_are_saved(data, tmp_path):
    """Points coloured by a number (reconstruction errors): the outlier's value on hover and in a saved selection."""
    E, y, images = data
    values = np.random.default_rng(1).random(N)
    values[KNOWN] = 1234.5  # an outlier: above the colour scale's top, drawn red
    path = explore(E, y, images, path=tmp_path / "values.html", values=values, value_name="reconstruction error")
    with opened(path, tmp_path) as (page, outside, errors):
        _hover_known(page)
        assert "reconstruction error 1235" in page.locator("#aekit-tip").inner_text()
        mapper = page.evaluate(
            "() => { const m = Bokeh.documents[0].get_model_by_name('value-bar').color_mapper;"
            " return [m.low, m.high, m.high_color]; }"
        )
        assert mapper[0] == pytest.approx(values.min()) and mapper[1] < 1.0 and mapper[2] == "red"
        page.evaluate(f"() => {{ aekitExplore.picked = [[{KNOWN}, {y[KNOWN]}, 0, 1234.5], [3, {y[3]}, 1, 0.25]]; }}")
        with page.expect_download() as dl:
            page.get_by_role("button", name="Save CSV").click()
        with open(dl.value.path(), newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows == [["index", "label", "reconstruction error"], [str(KNOWN), "2", "1234.5"], ["3", "3", "0.25"]]
        assert errors == [] and outside == []
