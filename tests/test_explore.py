"""The explore page without a browser: what it holds, its sprite sheets, and bad input."""

import base64
import io
import json
import re

import numpy as np
import pytest

pytest.importorskip("bokeh", reason="pip install 'aekit[explore]'")
from PIL import Image  # noqa: E402

from aekit._utils import InputError  # noqa: E402
from aekit.cli import main  # noqa: E402
from aekit.explore import SHEET_TILES, explore, explore_html, image_stack, pack_thumbnails  # noqa: E402


def _sheet(page: str, k: int) -> np.ndarray:
    b64 = re.search(rf'<script type="text/plain" id="aekit-sheet-{k}">([^<]*)</script>', page).group(1)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def _config(page: str) -> dict:
    return json.loads(
        re.search(r'<script type="application/json" id="aekit-config">(.*?)</script>', page, re.S).group(1)
    )


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    n = 200
    return rng.standard_normal((n, 2)), rng.integers(0, 4, n), rng.integers(0, 256, (n, 12, 10), dtype=np.uint8)


@pytest.fixture(scope="module")
def page(small):
    E, y, imgs = small
    return explore_html(E, y, imgs, title="t <b>")


def test_page_is_self_contained(page):
    # every script inlined: no src= or href= to anything but data: (Bokeh's inline resources)
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r'<link[^>]+href="(?!data:)', page)
    assert "aekitExplore" in page and "webgl" in page
    assert "t &lt;b&gt;" in page  # the title is escaped


def test_sprite_tiles_are_the_images(small, page):
    _, _, imgs = small
    cfg = _config(page)
    assert cfg["sheets"] == 1 and cfg["tile"] == [12, 10] and cfg["labelled"]
    sheet = _sheet(page, 0)
    cols = cfg["cols"]
    for i in (0, 17, 199):  # slot i = point i when every point has a thumbnail
        r, c = divmod(i, cols)
        np.testing.assert_array_equal(sheet[r * 12 : (r + 1) * 12, c * 10 : (c + 1) * 10], imgs[i])


def test_thumbnails_subsampled_above_limit(small):
    E, y, imgs = small
    th = pack_thumbnails(image_stack(imgs, None), max_thumbnails=50, tiles_per_sheet=16)
    assert (th.slot >= 0).sum() == 50 and "50 of 200" in th.note
    assert len(th.sheets) == 4  # 50 tiles, 16 per sheet
    assert sorted(th.slot[th.slot >= 0]) == list(range(50))
    page = explore_html(E, y, imgs, max_thumbnails=50)
    assert "random 50 of 200" in page


def test_large_images_shrunk_and_float_scaled():
    imgs = np.linspace(0, 1, 3 * 64 * 48, dtype=np.float32).reshape(3, 64, 48)
    th = pack_thumbnails(image_stack(imgs, None), thumbnail_size=32)
    assert th.tile == (32, 24)
    flat = image_stack(np.full((2, 6), 0.5), (2, 3))
    assert flat.shape == (2, 2, 3, 1) and flat.dtype == np.uint8 and flat.max() == 128
    rgb = image_stack(np.zeros((2, 3, 4, 5), dtype=np.uint8), None)
    assert rgb.shape == (2, 4, 5, 3)
    assert SHEET_TILES == 64 * 64


def test_tabular_hover_features():
    rng = np.random.default_rng(1)
    X = rng.random((30, 12))
    page = explore_html(rng.random((30, 2)), None, features=X, feature_names=[f"col{i}" for i in range(12)])
    cfg = _config(page)
    assert cfg["features"] == [f"col{i}" for i in range(8)] and cfg["sheets"] == 0 and not cfg["labelled"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": np.zeros(5)}, "labels has 5 rows but the embedding has 200 points"),
        ({"images": np.zeros((7, 4, 4))}, "images has 7 rows but the embedding has 200 points"),
        ({"images": np.zeros((200, 50))}, "50 values per row, not a square"),
        (
            {"images": np.zeros((200, 784)), "image_shape": (20, 20)},
            r"784 values per row but image_shape=\(20, 20\) holds 400",
        ),
        (
            {"images": np.zeros((200, 28, 28)), "image_shape": (20, 20)},
            r"shape \(28, 28\) per point but image_shape=\(20, 20\)",
        ),
        ({"features": np.zeros((3, 2))}, "features has 3 rows"),
    ],
)
def test_bad_input_one_line_no_file(small, tmp_path, kwargs, match):
    E = small[0]
    out = tmp_path / "page.html"
    with pytest.raises(InputError, match=match):
        explore(E, path=out, **kwargs)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file


def test_bad_embedding(tmp_path):
    with pytest.raises(InputError, match=r"shape \(10, 3\); expected \(n_samples, 2\)"):
        explore(np.zeros((10, 3)), path=tmp_path / "p.html")
    with pytest.raises(InputError, match="non-finite"):
        explore(np.full((10, 2), np.nan), path=tmp_path / "p.html")


def test_unwritable_output(small, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write in"):
        explore(small[0], path=blocker / "page.html")
    with pytest.raises(InputError, match="is a folder"):
        explore(small[0], path=tmp_path)


def test_cli_explore_embedding(tmp_path, capsys):
    rng = np.random.default_rng(2)
    X = rng.integers(0, 256, (120, 64)).astype(np.uint8)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "emb.npy", rng.standard_normal((120, 2)))
    out = tmp_path / "map.html"
    args = ["explore", str(tmp_path / "X.npy"), "--embedding", str(tmp_path / "emb.npy"), "--out", str(out)]
    assert main([*args, "--image-shape", "8,8"]) == 0
    assert _config(out.read_text())["tile"] == [8, 8]
    assert main(args) == 2 and "exists; pass --overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0 and _config(out.read_text())["features"][:2] == [
        "x1",
        "x2",
    ]  # tabular without --image-shape (numbered from 1, as the CSV outputs)
    np.save(tmp_path / "short.npy", np.zeros((7, 2)))
    code = main(
        [
            "explore",
            str(tmp_path / "X.npy"),
            "--embedding",
            str(tmp_path / "short.npy"),
            "--out",
            str(tmp_path / "b.html"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "has 7 rows but" in err and len(err.strip().splitlines()) == 1
    code = main(
        [
            "explore",
            str(tmp_path / "X.npy"),
            "--embedding",
            str(tmp_path / "emb.npy"),
            "--image-shape",
            "5,5",
            "--out",
            str(tmp_path / "c.html"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "64 values per row but --image-shape 5,5" in err and not (tmp_path / "c.html").exists()
    assert main(["explore", str(tmp_path / "X.npy"), "--out", str(tmp_path / "d.html")]) == 2
    assert "exactly one of --model" in capsys.readouterr().err
    wide = [
        "explore",
        str(tmp_path / "X.npy"),
        "--embedding",
        str(tmp_path / "X.npy"),
        "--out",
        str(tmp_path / "e.html"),
    ]
    assert main(wide) == 2  # the data given as the embedding: the flag and the command that makes one are named
    assert "holds an array of shape (120, 64); expected 2-D coordinates (n, 2), as aekit visualize" in (
        capsys.readouterr().err
    )


def test_cli_explore_model(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.uniform(size=(120, 16)).astype(np.float32)
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(120) % 3)
    d = str(tmp_path / "d.npz")
    assert (
        main(
            [
                "train",
                d,
                "--out",
                str(tmp_path / "r"),
                "--epochs",
                "1",
                "--hidden-layer-sizes",
                "8",
                "--n-components",
                "2",
            ]
        )
        == 0
    )
    model = str(tmp_path / "r" / "model.safetensors")
    # a 2-D code is the map itself (wider codes go through AETSNE, as `aekit visualize`; t-SNE is slow for this suite)
    assert main(["explore", d, "--model", model, "--out", str(tmp_path / "m.html")]) == 0
    page = (tmp_path / "m.html").read_text()
    assert '"z1"' in page and _config(page)["features"][0] == "x1" and _config(page)["labelled"]
    # the model first, as embed and evaluate take it (a trial: "unrecognized arguments")
    assert main(["explore", model, d, "--out", str(tmp_path / "m2.html")]) == 0
    assert _config((tmp_path / "m2.html").read_text()) == _config(page)
    with pytest.raises(SystemExit):  # two data files: still refused
        main(["explore", d, d, "--out", str(tmp_path / "m4.html")])


def test_demo_tsne_section_page(tmp_path):
    from types import SimpleNamespace

    from aekit.demo import _explore_page

    rng = np.random.default_rng(4)
    data = SimpleNamespace(X_test=rng.random((50, 784), dtype=np.float32), y_test=np.arange(50) % 10)
    line = _explore_page(SimpleNamespace(data=data, out=tmp_path), rng.standard_normal((50, 2)))
    assert "ae_tsne_explore.html" in line and _config((tmp_path / "ae_tsne_explore.html").read_text())["tile"] == [
        28,
        28,
    ]


def test_cli_explore_matches_an_embedding_csv_to_the_data_by_id(tmp_path, capsys):
    import pandas as pd

    rng = np.random.default_rng(4)
    table = pd.DataFrame(rng.uniform(size=(60, 4)), columns=list("abcd"))
    table.insert(0, "id", [f"r{i}" for i in range(60)])
    table["label"] = [f"c{i % 3}" for i in range(60)]
    table.to_csv(tmp_path / "t.csv", index=False)
    emb = pd.DataFrame({"id": table["id"], "label": table["label"], "z1": np.arange(60.0), "z2": -np.arange(60.0)})
    emb.sample(frac=1.0, random_state=0).to_csv(tmp_path / "shuffled.csv", index=False)  # sorted elsewhere
    base = ["explore", str(tmp_path / "t.csv"), "--id-column", "id", "--label-column", "label"]
    out = tmp_path / "m.html"
    assert main([*base, "--embedding", str(tmp_path / "shuffled.csv"), "--out", str(out)]) == 0
    assert "rows matched to" in capsys.readouterr().err
    config = _config(out.read_text())
    assert config["ids"] == [f"r{i}" for i in range(60)]  # shown on hover and saved with a selection
    emb.iloc[:50].to_csv(tmp_path / "part.csv", index=False)  # rows of other data
    assert main([*base, "--embedding", str(tmp_path / "part.csv"), "--out", str(tmp_path / "p.html")]) == 2
    err = capsys.readouterr().err
    assert "has no row of id 'r50'" in err and len(err.strip().splitlines()) == 1
    from aekit.commands import aligned_by_id

    z = emb.sample(frac=1.0, random_state=0)
    got = aligned_by_id(z[["z1", "z2"]].to_numpy(), list(z["id"]), table["id"].to_numpy(), "--embedding e", "t.csv")
    np.testing.assert_array_equal(got[:, 0], np.arange(60.0))  # each point back beside its own row
    twice = list(z["id"])
    twice[7] = twice[3]  # a repeated id in place of a row: named as the repeat (a docs run: "repeats an id")
    with pytest.raises(InputError, match=f"repeats the id '{twice[3]}'"):
        aligned_by_id(z[["z1", "z2"]].to_numpy(), twice, table["id"].to_numpy(), "--embedding e", "t.csv")


def test_label_minus_one_is_named_unlabelled_in_the_legend():
    from aekit.explore import _classes

    names, codes, _ = _classes(np.array([2, -1, 0, 2]), 4)
    assert names == ["unlabelled (-1)", "0", "2"] and codes.tolist() == [2, 0, 1, 2]
    assert _classes(np.array(["cat", "-1"]), 2)[0] == ["unlabelled (-1)", "cat"]  # a CSV's text labels too
    # as training reads them: the text "-1" is unlabelled, "-1.0" and a label named like the entry are classes
    names, codes, values = _classes(np.array(["-1", "-1.0", "unlabelled (-1)", " -1"], dtype=object), 4)
    assert names == ["unlabelled (-1)", "-1.0", "unlabelled (-1) (a label)"] and codes.tolist() == [0, 1, 2, 0]
    assert values == ["-1", "-1.0", "unlabelled (-1)"]  # what a saved selection writes: the data's own labels


def test_markup_in_labels_ids_and_names_stays_text():
    # "<!--<script" in the page's JSON put the browser's parser in a state where the config element
    # swallowed the rest of the page (a blank page); "</script>" would end the element
    E = np.random.default_rng(0).standard_normal((10, 2))
    odd = ["<!--<script>", "</script><b>x"]
    ids = [f"<!--{i}" for i in range(10)]
    page = explore_html(E, odd * 5, features=E, feature_names=["<!--a", "b</script>"], ids=ids)
    assert "<!--<script" not in page and "<!--0" not in page and "</script><b>" not in page
    cfg = _config(page)  # the text itself reaches the page's script
    assert set(odd) <= set(cfg["labels"]) and cfg["ids"] == ids and cfg["features"] == ["<!--a", "b</script>"]


def test_labels_that_look_like_ids_are_warned_of(caplog):
    E = np.random.default_rng(0).standard_normal((300, 2))
    explore_html(E, np.arange(300))
    assert "300 labels for 300 points" in caplog.text and "pass them as ids" in caplog.text


def test_cli_explore_a_folder_of_images_shows_thumbnails_at_the_size_it_was_read(tmp_path, capsys):
    # without --model or --image-shape the folder's rows were shown as numbered features x1 ... x3072
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(4)
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    np.save(tmp_path / "emb.npy", rng.standard_normal((12, 2)))
    out = tmp_path / "map.html"
    assert main(["explore", str(tmp_path / "imgs"), "--embedding", str(tmp_path / "emb.npy"), "--out", str(out)]) == 0
    config = _config(out.read_text())
    assert config["tile"] == [12, 10] and not config.get("features")


def test_values_colour_the_map_and_bad_values_are_refused(small, tmp_path):
    E, y, imgs = small
    v = np.random.default_rng(5).random(len(E))
    page = explore_html(E, y, imgs, values=v, value_name="reconstruction error")
    assert _config(page)["value_name"] == "reconstruction error" and "value-bar" in page
    assert "(red above" in page and "the top 1%)" in page  # the colour bar says what red means
    assert _config(explore_html(E, y, imgs))["value_name"] is None
    bad = v.copy()
    bad[7] = np.nan
    with pytest.raises(InputError, match=r"values: 1 of 200 are NaN or infinite"):
        explore(E, path=tmp_path / "p.html", values=bad)
    with pytest.raises(InputError, match="values has 3 rows"):
        explore(E, path=tmp_path / "p.html", values=v[:3])
    assert list(tmp_path.iterdir()) == []


def test_cli_explore_colours_by_the_reconstruction_error(tmp_path, capsys, monkeypatch):
    """--error: the model's errors, or the column `embed --error` wrote (matched by id); refused without either."""
    import pandas as pd

    from aekit import ParametricTSNE
    from aekit import explore as explore_module

    rng = np.random.default_rng(6)
    table = pd.DataFrame(rng.uniform(size=(80, 6)), columns=list("abcdef"))
    table.insert(0, "id", [f"r{i}" for i in range(80)])
    table.to_csv(tmp_path / "t.csv", index=False)
    data = [str(tmp_path / "t.csv"), "--id-column", "id"]
    small = ["--epochs", "1", "--hidden-layer-sizes", "8", "--n-components", "2"]
    assert main(["train", *data, *small, "--out", str(tmp_path / "r")]) == 0
    model = str(tmp_path / "r" / "model.safetensors")
    seen = []
    real = explore_module.explore
    monkeypatch.setattr(explore_module, "explore", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    assert main(["explore", *data, "--model", model, "--error", "--out", str(tmp_path / "m.html")]) == 0
    from aekit import load

    expected = -load(model).score_samples(table[list("abcdef")].to_numpy(np.float32))
    np.testing.assert_allclose(seen[-1]["values"], expected, rtol=1e-5)
    assert seen[-1]["value_name"] == "reconstruction error"
    # the column of `embed --error`, read back in the data's order whatever the CSV's order
    assert main(["embed", model, *data, "--error", "--out", str(tmp_path / "codes.csv")]) == 0
    codes = pd.read_csv(tmp_path / "codes.csv")
    codes.sample(frac=1.0, random_state=0).to_csv(tmp_path / "shuffled.csv", index=False)
    emb = ["--embedding", str(tmp_path / "shuffled.csv")]
    assert main(["explore", *data, *emb, "--error", "--out", str(tmp_path / "e.html")]) == 0
    np.testing.assert_allclose(seen[-1]["values"], expected, rtol=1e-5)
    capsys.readouterr()
    codes.drop(columns="reconstruction_error").to_csv(tmp_path / "plain.csv", index=False)
    emb = ["--embedding", str(tmp_path / "plain.csv")]
    assert main(["explore", *data, *emb, "--error", "--out", str(tmp_path / "p.html")]) == 2
    err = capsys.readouterr().err
    assert "has no reconstruction_error column; write one with `aekit embed MODEL DATA" in err
    ParametricTSNE(perplexity=5, epochs=1, hidden_layer_sizes=(8,), random_state=0).fit(
        table[list("abcdef")].to_numpy(np.float32)
    ).save(tmp_path / "map.safetensors")
    argv = ["explore", *data, "--model", str(tmp_path / "map.safetensors"), "--error", "--out"]
    assert main([*argv, str(tmp_path / "q.html")]) == 2
    assert "a map without a decoder" in capsys.readouterr().err
    assert not (tmp_path / "p.html").exists() and not (tmp_path / "q.html").exists()
