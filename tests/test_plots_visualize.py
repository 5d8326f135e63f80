import copy
import warnings

import numpy as np
import pytest

from aekit import Autoencoder, SupervisedAutoencoder, load, plots
from aekit._utils import InputError
from aekit.visualize import AETSNE, compare_routes, plot_routes

from .conftest import SMALL


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def test_plots_write_pngs(tmp_path, blobs):
    X, y = blobs
    ax = plots.latent_scatter(X[:, :2], y, title="t")
    assert len(ax.figure.axes) == 2  # scatter + colour bar
    assert _is_png(plots.save(ax.figure, tmp_path / "s.png"))
    X64 = np.random.default_rng(0).uniform(size=(12, 784))
    assert _is_png(plots.save(plots.image_grid([X64, X64], ["a", "b"], n=6), tmp_path / "g.png"))
    ax = plots.training_curves({"loss": [3, 2, 1], "val_loss": [3, 2.5, 2], "lr": [1, 1, 1]})
    assert {line.get_label() for line in ax.get_lines()} == {"loss", "val_loss"}
    fig = plots.latent_manifold(lambda z: np.tile(z[:, :1], (1, 784)).clip(0, 1), (-1, -1), (1, 1), n=4)
    assert _is_png(plots.save(fig, tmp_path / "m.png"))
    with pytest.raises(InputError, match="codes of shape"):
        plots.latent_scatter(X[:, :1], y)


# every plot function, then save: run in a fresh interpreter under a chosen backend
_ALL_PLOTS = """
import sys, warnings
import numpy as np
import matplotlib
before = matplotlib.get_backend()
pyplot = sys.argv[1] == "pyplot"
if pyplot:
    import matplotlib.pyplot as plt
from aekit import plots
from aekit.visualize import plot_routes
Z = np.random.default_rng(0).uniform(-1, 1, (50, 2))
y = np.arange(50) % 3
route = {"embedding": Z, "knn5_cv": 0.5, "trustworthiness": 0.9, "seconds": 1.0}
def draw_all():
    return [plots.latent_scatter(Z, y, bounds=(-1, 1)),
            plots.image_grid([Z[:4, :1].repeat(4, 1)], ["a"], image_shape=(2, 2), n=4),
            plots.training_curves({"loss": [2, 1], "reconstruction": [1, 0.5], "classification": [3, 2]}),
            plots.latent_manifold(lambda g: np.tile(g[:, :1], (1, 4)), (-1, -1), (1, 1), n=3, image_shape=(2, 2)),
            plot_routes({"a": route, "b": route}, y), plots.subplots(1, 2)[1],
            plots.train_test_maps(Z, y, Z[:10] * 0.5, y[:10])]
if pyplot:
    figs = draw_all()
    assert len(plt.get_fignums()) == 7, plt.get_fignums()  # pyplot figures: plt.show() shows them
    for i, f in enumerate(figs):
        plots.save(f, sys.argv[2] + f"/{i}.png")
    assert plt.get_fignums() == [], plt.get_fignums()  # save closes what it wrote
    plots.latent_scatter(Z)
    if "template" in before:  # a backend with a show (svg, a file backend, has none)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Agg would warn "non-interactive, and thus cannot be shown"
            plt.show()
else:
    with plots.offscreen():
        for i, f in enumerate(draw_all()):
            plots.save(f, sys.argv[2] + f"/{i}.png")
    assert "matplotlib.pyplot" not in sys.modules  # plain Figures: no pyplot, no GUI toolkit
print(before, "->", matplotlib.get_backend())
"""


@pytest.mark.parametrize(
    ("backend", "mode"),
    [("module://matplotlib.backends.backend_template", "pyplot"), ("svg", "pyplot"), ("pdf", "offscreen")],
)
def test_plots_never_change_the_users_backend(tmp_path, backend, mode):
    import os
    import subprocess
    import sys

    env = {**os.environ, "MPLBACKEND": backend}
    r = subprocess.run(
        [sys.executable, "-c", _ALL_PLOTS, mode, str(tmp_path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == [backend, "->", backend]
    assert all(_is_png(tmp_path / f"{i}.png") or (tmp_path / f"{i}.png").stat().st_size > 200 for i in range(6))


def test_save_takes_a_figure_an_axes_or_an_axes_array(tmp_path):
    ax = plots.training_curves({"loss": [3, 2, 1]})
    assert _is_png(plots.save(ax, tmp_path / "ax.png"))  # the Axes training_curves returns
    _, axes = plots.subplots(2, 2)
    axes[1, 1].plot([0, 1], [0, 1])
    assert _is_png(plots.save(axes, tmp_path / "axes.png"))
    with pytest.raises(InputError, match=r"save\(fig=\.\.\.\) takes a matplotlib Figure or Axes, found str"):
        plots.save("figure.png", tmp_path / "x.png")


def test_train_test_maps_share_one_frame_and_one_colour_bar(tmp_path):
    rng = np.random.default_rng(0)
    Z_tr, Z_te = rng.uniform(0, 1, (200, 2)), rng.uniform(5, 6, (40, 2))  # the new points lie outside the training map
    fig = plots.train_test_maps(Z_tr, np.arange(200) % 3, Z_te, np.arange(40) % 3, titles=("train", "test"))
    scatter_axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in scatter_axes] == ["train", "test"] and len(fig.axes) == 3  # + one colour bar
    limits = {(ax.get_xlim(), ax.get_ylim()) for ax in scatter_axes}
    assert len(limits) == 1  # the same frame: a new point is drawn where the training map would put it
    (x0, x1), (y0, y1) = limits.pop()
    assert x0 < 0 and x1 > 6 and y0 < 0 and y1 > 6  # both sets inside it
    assert _is_png(plots.save(fig, tmp_path / "maps.png"))


def test_marker_size_and_alpha_follow_the_number_of_points():
    rng = np.random.default_rng(0)

    def style(n, **kw):
        coll = plots.latent_scatter(rng.standard_normal((n, 2)), np.arange(n) % 3, **kw).collections[0]
        return float(coll.get_sizes()[0]), float(coll.get_alpha())

    s150, a150 = style(150)
    s70k, a70k = style(70_000)
    assert s150 >= 20 and a150 >= 0.8  # a small data set is clearly visible
    assert s70k <= 1.5 and a70k <= 0.3  # a large one is not one blob
    assert (s150, a150) == pytest.approx(plots.marker_style(150))
    assert style(150, s=5.0, alpha=0.5) == (5.0, 0.5)  # the caller's choice wins
    sizes = [plots.marker_style(n)[0] for n in (10, 100, 1000, 10_000, 100_000)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]


def test_saturated_codes_are_flagged_in_the_title():
    rng = np.random.default_rng(0)
    stuck = np.tanh(5 * rng.standard_normal((200, 2)))  # most |z| > 0.99
    spread = np.tanh(0.3 * rng.standard_normal((200, 2)))
    frac = plots.saturated_fraction(stuck, plots.code_bounds("tanh"))
    assert frac > 0.5 and plots.saturated_fraction(spread, (-1, 1)) == 0.0
    title = plots.latent_scatter(stuck, title="codes", bounds=plots.code_bounds("tanh")).get_title()
    assert title.startswith("codes\nsaturated: ") and f"{100 * frac:.0f}% of codes" in title
    assert plots.latent_scatter(spread, title="codes", bounds=(-1, 1)).get_title() == "codes"
    assert plots.latent_scatter(stuck, title="codes").get_title() == "codes"  # no bounds known: nothing claimed
    assert "saturated" in plots.latent_scatter(stuck * 0.5 + 0.5, bounds=plots.code_bounds("sigmoid")).get_title()
    assert plots.code_bounds("relu") is None and plots.code_bounds(None) is None


def test_training_curves_loss_equal_to_reconstruction_drawn_once_in_one_colour():
    h = {
        "loss": [0.3, 0.2, 0.15],
        "reconstruction": [0.3, 0.2, 0.15],
        "val_loss": [0.31, 0.22, 0.18],
        "val_reconstruction": [0.31, 0.22, 0.18],
        "lr": [1, 1, 1],
        "time": [1, 2, 3],
    }
    ax = plots.training_curves(h)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"reconstruction (= loss)", "val_reconstruction (= loss)"}
    train, val = lines["reconstruction (= loss)"], lines["val_reconstruction (= loss)"]
    assert train.get_linestyle() == "-" and val.get_linestyle() == "--"
    assert train.get_color() == val.get_color()
    assert ax.get_ylabel() == "loss (mean per element)" and len(ax.figure.axes) == 1
    for a in (
        ax,
        plots.training_curves({"loss": [0.3]}),
        plots.training_curves({"loss": list(np.linspace(1, 0.1, 37))}),
    ):
        a.figure.canvas.draw()
        ticks = [t for t in a.get_xticks() if a.get_xlim()[0] <= t <= a.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks  # whole epochs, also for a single one
    vae = plots.training_curves({"loss": [0.3, 0.2], "reconstruction": [0.29, 0.19], "kl": [0.01, 0.01]})
    colours = {line.get_label(): line.get_color() for line in vae.get_lines()}
    assert set(colours) == {"loss", "reconstruction", "kl"} and len(set(colours.values())) == 3
    other = {
        line.get_label(): line.get_color()
        for line in plots.training_curves({"huber": [2, 1], "val_huber": [3, 2], "loss": [1, 1]}).get_lines()
    }
    assert other["huber"] == other["val_huber"] != other["loss"]  # a term unknown to the plot keeps one colour too


def test_training_curves_cross_entropy_on_its_own_per_sample_axis():
    h = {
        "loss": [0.5, 0.3],
        "reconstruction": [0.3, 0.2],
        "classification": [2.0, 1.0],
        "accuracy": [0.5, 0.8],
        "val_loss": [0.6, 0.4],
        "val_classification": [2.1, 1.2],
    }
    ax = plots.training_curves(h)
    left, right = ax.figure.axes
    assert left is ax and "cross-entropy" not in ax.get_ylabel() and "per element" in ax.get_ylabel()
    assert right.get_ylabel() == "cross-entropy (mean per labelled sample)"
    assert {line.get_label() for line in right.get_lines()} == {"classification", "val_classification"}
    assert {line.get_label() for line in left.get_lines()} == {
        "loss (weighted total)",
        "val_loss (weighted total)",
        "reconstruction",
    }
    legend = [t.get_text() for t in right.get_legend().get_texts()]
    assert legend.index("val_classification") == legend.index("classification") + 1  # validation next to its term
    assert not any("accuracy" in t for t in legend)


def test_aetsne_fit_transform_and_new_points(blobs):
    X, y = blobs
    vis = AETSNE(Autoencoder(**SMALL), perplexity=10, random_state=0)
    emb = vis.fit_transform(X)
    assert emb.shape == (180, 2)
    assert vis.transform(X[:5]).shape == (5, 2)
    twin = copy.deepcopy(vis)  # openTSNE's embedding keeps its affinities: the copy places new points too
    np.testing.assert_allclose(twin.transform(X[:5]), vis.transform(X[:5]), rtol=1e-5, atol=1e-5)
    again = AETSNE(Autoencoder(**SMALL), perplexity=10, random_state=0).fit_transform(X)
    assert np.allclose(emb, again)
    fitted = vis.autoencoder_
    vis2 = AETSNE(fitted, perplexity=10, random_state=0).fit(X)
    assert vis2.autoencoder_ is fitted  # a fitted autoencoder is used as is
    with pytest.raises(InputError, match="perplexity"):
        AETSNE(Autoencoder(**SMALL), perplexity=100).fit(X)
    with pytest.raises(InputError, match="needs y"):
        AETSNE(SupervisedAutoencoder(**SMALL), perplexity=10).fit(X)


def test_aetsne_on_a_dataframe_gives_its_autoencoder_the_names(blobs):
    pd = pytest.importorskip("pandas")
    X, _ = blobs
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(20)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # scikit-learn's "X does not have valid feature names"
        vis = AETSNE(Autoencoder(**SMALL), perplexity=10, random_state=0).fit(frame)
        assert list(vis.autoencoder_.feature_names_in_) == list(frame.columns)
        assert vis.transform(frame[:5]).shape == (5, 2)  # the frame's names reach the autoencoder, unwarned
    # a given autoencoder that names its features checks them: columns in another order were read by position
    with pytest.raises(InputError, match=r"X\[model.feature_names_in_\]"):
        AETSNE(vis.autoencoder_, perplexity=10).fit(frame[frame.columns[::-1]])


def test_aetsne_takes_an_autoencoder_set_to_give_dataframes(blobs, tmp_path):
    pytest.importorskip("pandas")
    X, _ = blobs  # a saved set_output(transform="pandas") comes back with the model now
    ae = load(Autoencoder(**{**SMALL, "n_components": 3}).set_output(transform="pandas").fit(X).save(tmp_path / "m"))
    vis = AETSNE(ae, perplexity=10, random_state=0, max_fit_samples=120).fit(X)  # codes[rows] read columns
    assert vis.embedding_.shape == (180, 2) and np.isfinite(vis.transform(X[:5])).all()


def test_aetsne_advice_names_what_aetsne_takes(blobs, monkeypatch):
    """The default autoencoder's range advice said "Pass scale='standard'", a parameter AETSNE does not take."""
    from aekit import visualize

    monkeypatch.setitem(visualize.PRESETS, "dense20", {**SMALL, "epochs": 2})
    X, _ = blobs
    with pytest.warns(UserWarning) as record:
        AETSNE(perplexity=10, random_state=0).fit(X * 30)  # far beyond a few units
    texts = [str(w.message) for w in record if "in magnitude" in str(w.message)]
    said = "Pass autoencoder=Autoencoder(n_components=20, scale='standard')"
    assert len(texts) == 1 and said in texts[0] and "scale='standard'" not in texts[0].replace(said, ""), texts
    assert record[0].filename == __file__  # still the user's line
    # an autoencoder of the user's: its own words
    with pytest.warns(UserWarning, match=r"Pass scale='standard'( \(a table\), or scale='pixels' if .* pixels)?$"):
        AETSNE(Autoencoder(**{**SMALL, "epochs": 2}), perplexity=10, random_state=0).fit(X * 31)


def test_compare_routes(tmp_path, blobs, monkeypatch):
    from aekit import visualize

    X, y = blobs
    routes = compare_routes(
        X, y, ae2=Autoencoder(**SMALL), ae20=Autoencoder(**{**SMALL, "n_components": 5}), perplexity=10
    )
    assert list(routes) == ["AE → 2-D", "t-SNE from raw", "AE(5) → t-SNE"]  # named by the code size it has
    for r in routes.values():
        assert r["embedding"].shape == (180, 2)
        assert 0 <= r["knn5_cv"] <= 1 and 0 <= r["trustworthiness"] <= 1
        assert r["trust_points"] == 180  # all of them (below TRUST_SAMPLES): what a report may state
    assert routes["t-SNE from raw"]["knn5_cv"] > 0.9  # separable blobs
    assert _is_png(plots.save(plot_routes(routes, y), tmp_path / "c.png"))

    def first_coordinates(codes, inputs, perplexity, seed, n_jobs, neighbors, n_components=2):
        return np.asarray(codes, dtype=np.float64)[:, :n_components].copy()  # (which routes, not how good)

    monkeypatch.setattr(visualize, "_opentsne", first_coordinates)
    trained = Autoencoder(**SMALL).fit(X)
    trained.history_["time"] = [100.0, 23.0]  # as if its epochs had been slow
    routes = compare_routes(X, y, ae20=trained, perplexity=10, skip_2d=True)
    assert list(routes) == ["t-SNE from raw", "AE(2) → t-SNE"]  # no AE → 2-D route, none trained for it
    assert routes["AE(2) → t-SNE"]["ae_seconds"] == 123.0  # a model trained before: its training still counts
    from aekit import ParametricTSNE

    tsne_map = ParametricTSNE(hidden_layer_sizes=(8,), perplexity=10, epochs=2, random_state=0).fit(X)
    routes = compare_routes(X, y, ae2=tsne_map, ae20=Autoencoder(**SMALL).fit(X), perplexity=10)
    assert list(routes)[0] == "parametric t-SNE"  # a map given for the 2-D panel is not called an AE
    routes = compare_routes(X, y, ae2=tsne_map, ae20=tsne_map, perplexity=10)  # `visualize --model MAP --compare`
    assert list(routes) == ["parametric t-SNE", "t-SNE from raw"]  # no t-SNE drawn over the map's own codes


def test_compare_routes_leaves_unlabelled_rows_out_of_accuracy(tmp_path, blobs, monkeypatch):
    """A trial's --compare read 64.9% with 70% of its labels -1 (scored as a class) and 100.0% with them all."""
    from aekit import metrics, visualize

    def first_coordinates(codes, inputs, perplexity, seed, n_jobs, neighbors, n_components=2):
        return np.asarray(codes, dtype=np.float64)[:, :n_components].copy()

    monkeypatch.setattr(visualize, "_opentsne", first_coordinates)
    X, y = blobs
    partial = np.where(np.arange(len(y)) % 3 == 0, y, -1)
    routes = compare_routes(X, partial, ae20=Autoencoder(**SMALL).fit(X), perplexity=10, skip_2d=True)
    kept = partial != -1
    for r in routes.values():
        assert r["knn5_cv"] == metrics.knn_cv_accuracy(r["embedding"][kept], partial[kept])
        assert r["knn5_cv"] != metrics.knn_cv_accuracy(r["embedding"], partial)  # -1 as a class: not this
    none = compare_routes(X, np.full(len(y), -1), ae20=Autoencoder(**SMALL).fit(X), perplexity=10, skip_2d=True)
    assert all(np.isnan(r["knn5_cv"]) for r in none.values())
    fig = plot_routes(none, np.full(len(y), -1))
    assert "k-NN n/a (too few labelled samples or classes)" in fig.axes[0].get_title()


def test_latent_scatter_draws_unlabelled_rows_grey_not_as_a_class():
    Z = np.random.default_rng(0).normal(size=(90, 2))
    y = np.array([-1, 0, 1] * 30)
    ax = plots.latent_scatter(Z, y)
    ticks = [t.get_text() for t in ax.figure.axes[-1].get_yticklabels()]
    assert ticks == ["0", "1"]  # the colour bar names the classes only
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["unlabelled (-1)"]
    grey, classes = ax.collections
    assert len(grey.get_offsets()) == 30 and len(classes.get_offsets()) == 60
    text = plots.latent_scatter(Z, np.array(["-1", "cat", "dog"] * 30, dtype=object))  # a CSV's text labels
    assert [t.get_text() for t in text.figure.axes[-1].get_yticklabels()] == ["cat", "dog"]


@pytest.mark.filterwarnings("ignore::aekit.TrainingWarning")  # 3 epochs: which inputs, not how good
def test_compare_routes_measures_every_route_in_the_models_scale(monkeypatch):
    # 3 of 10 features x500: on raw X they rule the distances, so every route must be scored after scale
    from aekit import metrics, visualize

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    X = (rng.uniform(size=(3, 10))[y] + 0.1 * rng.standard_normal((120, 10))).astype(np.float32)
    X[:, :3] *= 500
    standard = (X - X.mean(axis=0)) / X.std(axis=0)
    seen, models = [], []
    real_tsne, real_fit = visualize.tsne, visualize.fit_stage
    monkeypatch.setattr(visualize, "tsne", lambda data, **k: seen.append((data, k)) or real_tsne(data, **k))
    monkeypatch.setattr(visualize, "fit_stage", lambda est, *a: models.append(est) or real_fit(est, *a))
    routes = compare_routes(X, y, ae20=Autoencoder(**{**SMALL, "scale": "standard"}), perplexity=10)
    (raw, _), (_, ae_args) = seen
    np.testing.assert_allclose(raw, standard, rtol=1e-4, atol=1e-4)  # t-SNE from raw: on the standardised data
    np.testing.assert_allclose(ae_args["input_space"], standard, rtol=1e-4, atol=1e-4)
    for r in routes.values():
        assert r["units_scale"] == "standard"
        assert r["trustworthiness"] == pytest.approx(metrics.trustworthiness(standard, r["embedding"]), abs=1e-6)
    assert [m.scale for m in models] == ["standard", "standard"]  # the default 2-D AE reads X as AE(20) does

    class Trained(Exception):
        pass

    def stop(*a):
        raise Trained

    monkeypatch.setattr(visualize, "fit_stage", stop)  # warned before the other model trains
    with pytest.warns(UserWarning, match="ae2 has scale=None but ae20 has scale='standard'"), pytest.raises(Trained):
        compare_routes(X, y, ae2=Autoencoder(**SMALL), ae20=models[0], perplexity=10)


def test_neighbour_search_rule_and_bad_choice_fails_before_training(monkeypatch):
    from aekit import visualize

    assert visualize.knn_method("auto", 20) == "exact"  # low-dimensional codes: exact search
    assert visualize.knn_method("auto", 784) == "auto"  # raw pixels: openTSNE's approximate choice
    assert visualize.knn_method("annoy", 20) == "annoy"
    ae = Autoencoder(**SMALL)
    monkeypatch.setattr(Autoencoder, "fit", lambda *a, **k: pytest.fail("trained before checking neighbors"))
    with pytest.raises(InputError, match="neighbors='kdtree'"):
        AETSNE(ae, neighbors="kdtree").fit(np.zeros((50, 4)))
    with pytest.raises(InputError, match="neighbors="):
        visualize.tsne(np.zeros((50, 4)), library="sklearn", neighbors="kdtree")


def test_input_distances_match_brute_force_and_sort():
    from aekit.visualize import input_distances

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 7)).astype(np.float32)
    idx = rng.integers(0, 40, size=(40, 6))
    got_idx, got_d = input_distances(X, X, idx, chunk=7)  # several chunks
    want = np.linalg.norm(X[:, None, :] - X[idx], axis=2)
    order = np.argsort(want, axis=1, kind="stable")
    assert np.allclose(got_d, np.take_along_axis(want, order, 1), atol=1e-5)
    assert np.all(np.diff(got_d, axis=1) >= 0)  # nearest first
    # the re-sorted indices point at rows at exactly those distances
    assert np.allclose(np.linalg.norm(X[:, None, :] - X[got_idx], axis=2), got_d, atol=1e-5)
    assert got_d.dtype == np.float64 and got_idx.dtype == np.int64


def test_aetsne_input_distances_use_code_neighbours_and_input_geometry(blobs):
    """The affinities' neighbours come from the codes, their distances from the inputs."""
    from aekit.visualize import InputDistanceIndex

    X, y = blobs
    ae = Autoencoder(**{**SMALL, "n_components": 3}).fit(X)
    vis = AETSNE(ae, perplexity=10, random_state=0).fit(X)
    assert vis.distances == "input"
    index = vis._tsne.affinities.knn_index
    assert isinstance(index, InputDistanceIndex)
    nb, dist = index.build()
    code_nb, _ = index.code_index.build()
    assert all(set(a) == set(b) for a, b in zip(nb, code_nb, strict=True))  # the codes' neighbour sets
    assert np.allclose(dist, np.linalg.norm(X[:, None, :] - X[nb], axis=2), atol=1e-5)  # input distances
    new = vis.transform(X[:6])
    assert new.shape == (6, 2) and np.isfinite(new).all()
    code = AETSNE(ae, perplexity=10, random_state=0, distances="code").fit(X)
    assert not np.allclose(code.embedding_, vis.embedding_)  # the option changes the affinities
    assert code.transform(X[:6]).shape == (6, 2)
    with pytest.raises(InputError, match="distances='pixels'"):
        AETSNE(ae, distances="pixels").fit(X)


def test_aetsne_input_distances_are_the_scaled_models(blobs):
    """With scale="standard" the input distances are measured as the model reads the data, not in raw units."""
    X, _ = blobs
    wide = X.copy()
    wide[:, 0] *= 1000.0  # one feature that would rule raw distances
    ae = Autoencoder(**{**SMALL, "n_components": 3, "scale": "standard"}).fit(wide)
    vis = AETSNE(ae, perplexity=10, random_state=0).fit(wide)
    nb, dist = vis._tsne.affinities.knn_index.build()
    read = (wide - ae.input_offset_) / ae.input_scale_
    np.testing.assert_allclose(dist, np.linalg.norm(read[:, None, :] - read[nb], axis=2), rtol=1e-4, atol=1e-4)
    raw = np.linalg.norm(wide[:, None, :] - wide[nb], axis=2)
    assert not np.allclose(dist, raw, rtol=0.1)
    index = vis._tsne.affinities.knn_index
    placed = []
    index.query = lambda data, k: placed.append(data) or type(index).query(index, data, k)
    vis.transform(wide[:4])  # new points too: their inputs as the model reads them
    np.testing.assert_allclose(placed[0][:, : X.shape[1]], read[:4], rtol=1e-5, atol=1e-5)


def test_tsne_with_input_space_both_libraries(blobs):
    from aekit.visualize import tsne

    X, y = blobs
    codes = Autoencoder(**{**SMALL, "n_components": 3}).fit(X).transform(X)
    for library in ("opentsne", "sklearn"):
        emb = tsne(codes, perplexity=10, library=library, input_space=X, n_jobs=1)
        assert emb.shape == (180, 2) and np.isfinite(emb).all()
        from aekit.metrics import knn_cv_accuracy

        assert knn_cv_accuracy(emb, y) > 0.9  # the blobs stay separated
    with pytest.raises(InputError, match="input_space has 10 rows"):
        tsne(codes, input_space=X[:10])


def test_save_writes_the_format_its_suffix_names(tmp_path, blobs):
    Z = blobs[0][:, :2]
    for suffix, magic in ((".pdf", b"%PDF"), (".svg", b"<?xml"), (".png", b"\x89PNG")):
        plots.save(plots.latent_scatter(Z).figure, tmp_path / f"a{suffix}")
        assert (tmp_path / f"a{suffix}").read_bytes().startswith(magic)
    with pytest.raises(InputError, match="cannot write a figure as '.xyz'"):
        plots.save(plots.latent_scatter(Z).figure, tmp_path / "a.xyz")
    assert not (tmp_path / "a.xyz").exists()


def test_aetsne_scales_uint8_images_like_the_autoencoder(blobs):
    X, y = blobs
    X8 = np.round(X * 255).astype(np.uint8)
    ae = Autoencoder(**SMALL).fit(X8)
    a = AETSNE(ae, perplexity=5, random_state=0).fit_transform(X8)
    b = AETSNE(ae, perplexity=5, random_state=0).fit_transform(X8.astype(np.float32) / 255)
    np.testing.assert_allclose(a, b, atol=1e-4)
    # a model that scales by itself (scale="pixels", "minmax") reads the uint8 values as they are: AETSNE
    # divided them by 255 first, and the model then once more
    for scale in ("pixels", "minmax"):
        ae = Autoencoder(**SMALL, scale=scale).fit(X8)
        a = AETSNE(ae, perplexity=5, random_state=0).fit(X8)
        b = AETSNE(ae, perplexity=5, random_state=0).fit(X8.astype(np.float32))
        np.testing.assert_allclose(a.embedding_, b.embedding_, atol=1e-4)
        np.testing.assert_allclose(a.transform(X8[:5]), b.transform(X8[:5].astype(np.float32)), atol=1e-4)


def test_aetsne_feature_names_pandas_output_and_bad_n_components(blobs):
    pd = pytest.importorskip("pandas")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    X, _ = blobs
    vis = AETSNE(Autoencoder(**SMALL), perplexity=10, random_state=0).set_output(transform="pandas")
    emb = vis.fit_transform(X)
    assert isinstance(emb, pd.DataFrame) and list(emb.columns) == ["aetsne0", "aetsne1"]
    assert list(vis.get_feature_names_out()) == ["aetsne0", "aetsne1"]
    pipe = make_pipeline(MinMaxScaler(), AETSNE(Autoencoder(**SMALL), perplexity=10, random_state=0)).set_output(
        transform="pandas"
    )
    assert pipe.fit_transform(X).shape == (180, 2)
    with pytest.raises(InputError, match="n_components=0 must be an integer >= 1"):
        AETSNE(Autoencoder(**SMALL), n_components=0).fit(X)


def test_aetsne_interrupted_keeps_its_autoencoder_and_unfitted_has_no_feature_names(blobs):
    from sklearn.exceptions import NotFittedError

    X, _ = blobs

    def stop(epoch, logs):
        if epoch == 1:
            raise KeyboardInterrupt

    vis = AETSNE(Autoencoder(**{**SMALL, "epochs": 4, "callbacks": [stop]}), perplexity=10)
    with pytest.raises(KeyboardInterrupt):
        vis.fit(X)
    assert vis.autoencoder_.n_iter_ == 2 and not hasattr(vis, "embedding_")
    with pytest.raises(NotFittedError):
        AETSNE().get_feature_names_out()


def test_images_are_drawn_whatever_their_units_and_channels():
    """uint8 pixels were drawn white (colour limits fixed at 0..1); RGB (3, H, W) images raised; a label
    count that does not match the codes is named."""
    rng = np.random.default_rng(0)
    with plots.offscreen():
        u8 = (rng.random((5, 64)) * 255).astype(np.uint8)
        shown = plots.image_grid([u8], ["u8"], image_shape=(8, 8)).axes[0].images[0].get_array()
        np.testing.assert_allclose(shown, u8[0].reshape(8, 8) / 255.0)
        wide = rng.normal(size=(5, 64)) * 40  # standardised or 0-255 floats: stretched into view
        shown = plots.image_grid([wide], ["w"], image_shape=(8, 8)).axes[0].images[0].get_array()
        assert 0 <= shown.min() and shown.max() <= 1 and shown.max() - shown.min() > 0.5
        rgb = rng.random((5, 3 * 4 * 6))
        assert plots.image_grid([rgb], ["rgb"], image_shape=(3, 4, 6)).axes[0].images[0].get_array().shape == (4, 6, 3)
        fig = plots.latent_manifold(
            lambda g: rng.random((len(g), 3 * 4 * 6)), [-1, -1], [1, 1], n=3, image_shape=(3, 4, 6)
        )
        assert fig.axes[0].images[0].get_array().shape == (12, 18, 3)
        with pytest.raises(InputError, match="y has 10 labels for 50 codes"):
            plots.latent_scatter(rng.random((50, 2)), np.arange(10))


def test_labels_with_control_characters_are_drawn_without_missing_glyphs(tmp_path):
    labels = np.array(["cat\tdog", "line\nbreak", "café"] * 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of a glyph that no font has (\t drawn as a box)
        ax = plots.latent_scatter(np.random.default_rng(0).random((30, 2)), labels)
        plots.save(ax, tmp_path / "s.png")
    assert [t.get_text() for t in ax.figure.axes[1].get_yticklabels()] == ["café", "cat dog", "line break"]


@pytest.mark.parametrize(("distances", "max_fit_samples"), [("input", None), ("code", None), ("input", 60)])
def test_aetsne_saves_and_loads_without_pickle(blobs, tmp_path, distances, max_fit_samples):
    X, _ = blobs
    est = AETSNE(
        Autoencoder(**SMALL), perplexity=5, random_state=0, distances=distances, max_fit_samples=max_fit_samples
    ).fit(X)
    folder = est.save(tmp_path / "map")
    assert sorted(p.name for p in folder.iterdir()) == ["autoencoder.safetensors", "tsne.safetensors"]
    back = AETSNE.load(folder)
    # exact neighbour search rebuilds the fit's own index: new points land where they did before saving
    np.testing.assert_array_equal(back.transform(X[:10]), est.transform(X[:10]))
    np.testing.assert_array_equal(back.embedding_, est.embedding_)
    assert {k: v for k, v in back.get_params().items() if not k.startswith("autoencoder")} == {
        k: v for k, v in est.get_params().items() if not k.startswith("autoencoder")
    }
    with pytest.raises(FileExistsError, match="holds a saved map; pass overwrite=True"):
        est.save(folder, overwrite=False)
    # a parameter set after fit acts at the next fit: the file keeps the one the map was fitted with (a trial)
    est.set_params(perplexity=40).save(tmp_path / "later")
    assert AETSNE.load(tmp_path / "later").perplexity == 5
    AETSNE.load(folder).set_params(perplexity=40).save(tmp_path / "again")  # a loaded map, as fitted (a review)
    assert AETSNE.load(tmp_path / "again").perplexity == 5
    with pytest.raises(InputError, match=r"is a saved AE -> t-SNE map .*AETSNE.load"):
        load(folder)  # aekit.load reads model files: it names the way to read a map
    seeded = AETSNE(est.autoencoder_, perplexity=5, random_state=np.random.RandomState(0)).fit(X)
    assert isinstance(AETSNE.load(seeded.save(tmp_path / "rs")).random_state, int)  # saved as the seed it gave


@pytest.fixture(scope="module")
def saved_map(tmp_path_factory):
    X = np.random.default_rng(0).random((60, 10)).astype(np.float32)
    return AETSNE(Autoencoder(**SMALL), perplexity=5, random_state=0).fit(X).save(tmp_path_factory.mktemp("m") / "map")


def _edit_map(folder, tensors=None, meta=None):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = folder / "tsne.safetensors"
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata())
    data = load_file(path)
    (tensors or (lambda t: None))(data)
    (meta or (lambda m: None))(metadata)
    save_file(data, path, metadata=metadata)


@pytest.mark.parametrize(
    ("tensors", "meta", "match"),
    [
        (lambda t: t["map"].__setitem__((0, 0), float("nan")), None, r"tensor map holds NaN or inf"),
        (lambda t: t.__setitem__("codes", t["codes"][:, :1].clone()), None, r"tensor codes is \(\d+, 1\) float64"),
        (lambda t: t.__setitem__("extra", t["map"].clone()), None, r"tensors \[.*'extra'.*\], expected"),
        (lambda t: t.pop("inputs"), None, r"expected \['codes', 'embedding_', 'inputs', 'map'\]"),
        (lambda t: t["embedding_"].__setitem__((0, 1), float("inf")), None, r"embedding_ holds NaN or inf"),
        (None, lambda m: m.pop("aekit_map"), r"not a t-SNE map of format 1"),
        (
            None,
            lambda m: m.__setitem__(
                "descent", m["descent"].replace('"n_interpolation_points": 3', '"n_interpolation_points": 99999')
            ),
            r"descent.n_interpolation_points is 99999",
        ),
        (None, lambda m: m.__setitem__("params", m["params"].replace('"input"', '"elsewhere"')), r"params.distances"),
        (lambda t: t.__setitem__("map", t["map"] * 1e4), None, r"interpolation boxes a side, more than"),  # memory
        (lambda t: t.__setitem__("map", t["map"].bfloat16()), None, r"tensor map is torch.bfloat16, no array"),
        (lambda t: t.__setitem__("embedding_", t["embedding_"][0, 0].clone()), None, r"tensor embedding_ is \(\)"),
        (None, lambda m: m.__setitem__("params", m["params"].replace('"n_jobs": -1', '"n_jobs": 0')), r"n_jobs"),
        (None, lambda m: m.__setitem__("autoencoder_sha256", "0" * 64), r"saved with another autoencoder"),
    ],
)
def test_a_tampered_map_is_refused_in_one_line(saved_map, tmp_path, tensors, meta, match):
    import shutil

    folder = shutil.copytree(saved_map, tmp_path / "map")
    _edit_map(folder, tensors, meta)
    with pytest.raises(InputError, match=match) as info:
        AETSNE.load(folder)
    assert "\n" not in str(info.value) and "tsne.safetensors" in str(info.value)


def test_visualize_saves_its_map_and_embed_places_new_points_in_it(blobs, tmp_path, capsys, monkeypatch):
    from aekit import visualize
    from aekit.cli import main

    X, y = blobs
    lines = [f"r{i},{','.join(f'{v:.4f}' for v in X[i])},{y[i]}" for i in range(len(X))]
    header = "id," + ",".join(f"f{j}" for j in range(X.shape[1])) + ",label"
    (tmp_path / "d.csv").write_text(header + "\n" + "\n".join(lines) + "\n")
    (tmp_path / "new.csv").write_text(header + "\n" + "\n".join(lines[::10]) + "\n")
    rows = ["--id-column", "id", "--label-column", "label"]
    small = ["--epochs", "3", "--hidden-layer-sizes", "16", "--n-components", "3", "--perplexity", "5"]
    out = tmp_path / "v"
    assert main(["visualize", str(tmp_path / "d.csv"), *rows, *small, "--save-map", "--out", str(out)]) == 0
    assert f"aekit embed {out} DATA" in capsys.readouterr().out
    assert load(out / "autoencoder.safetensors").verbose == 0  # the command's display is not the model's
    codes = tmp_path / "z.csv"
    assert main(["embed", str(out), str(tmp_path / "new.csv"), *rows, "--out", str(codes)]) == 0
    placed = np.loadtxt(codes, delimiter=",", skiprows=1, usecols=(2, 3))
    assert codes.read_text().splitlines()[:2][0] == "id,label,tsne1,tsne2"
    assert codes.read_text().splitlines()[1].startswith("r0,0,")
    # the map's own rows land near where the map put them: nearer than to any point of another class
    fitted = np.load(out / "embedding.npy")
    gaps = np.linalg.norm(placed[:, None] - fitted[None], axis=2)  # (18, 180)
    assert (y[gaps.argmin(axis=1)] == y[::10]).all()
    capsys.readouterr()
    assert main(["embed", str(tmp_path / "new.csv"), str(out), "--out", str(tmp_path / "s.csv")]) == 2  # swapped
    assert f"the model comes first: aekit embed {out} " in capsys.readouterr().err
    new = np.loadtxt(tmp_path / "new.csv", delimiter=",", skiprows=1, usecols=range(1, 21))
    np.testing.assert_allclose(AETSNE.load(out).transform(new), placed, rtol=1e-5, atol=1e-4)
    # the map's AE keeps the header's names and the id and label columns, as `train`'s model does: another
    # CSV's columns are read by name (they were read by position, with a note, whatever their order)
    ae = load(out / "autoencoder.safetensors")
    assert list(ae.feature_names_in_) == [f"f{j}" for j in range(20)]
    assert ae.data_columns_ == {"id_column": "id", "label_column": "label"}
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(tmp_path / "new.csv")
    frame[frame.columns[::-1]].to_csv(tmp_path / "reversed.csv", index=False)
    capsys.readouterr()
    assert main(["embed", str(out), str(tmp_path / "reversed.csv"), "--out", str(tmp_path / "r.csv")]) == 0
    assert "by position" not in capsys.readouterr().err
    assert (tmp_path / "r.csv").read_text() == codes.read_text()  # ids and labels taken again, by their names
    # a later run without --save-map leaves no map of the earlier run beside its embedding (its t-SNE: the
    # first coordinates, this part being about files)
    monkeypatch.setattr(visualize, "_opentsne", lambda codes, *a, **k: np.asarray(codes, dtype=np.float64)[:, :2])
    assert main(["visualize", str(tmp_path / "d.csv"), *rows, *small, "--overwrite", "--out", str(out)]) == 0
    assert not (out / "tsne.safetensors").exists() and not (out / "autoencoder.safetensors").exists()
    capsys.readouterr()
    assert main(["embed", str(out), str(tmp_path / "new.csv"), *rows, "--out", str(tmp_path / "z2.csv")]) == 2
    assert f"error: {out} is a folder" in capsys.readouterr().err  # no map there any more


@pytest.mark.parametrize("gone", ["autoencoder.safetensors", "tsne.safetensors"])
def test_a_map_missing_one_of_its_files_is_said_to_be_incomplete(saved_map, tmp_path, gone):
    import shutil

    folder = shutil.copytree(saved_map, tmp_path / "map")
    (folder / gone).unlink()
    with pytest.raises(InputError, match=rf"incomplete.*{gone}|{gone}.*incomplete|without (its )?{gone}") as info:
        AETSNE.load(folder) if gone == "autoencoder.safetensors" else load(folder)
    assert "aekit visualize --save-map" in str(info.value)


def test_a_map_of_a_folder_of_images_reads_other_folders_at_its_size(tmp_path):
    # visualize read the folder whole as flat rows: its AE (and so the saved map) did not know their size, and
    # embedding a folder of other-sized images was refused where a trained model reads it at its own size
    Image = pytest.importorskip("PIL.Image")
    from aekit.cli import main

    rng = np.random.default_rng(0)
    for folder, side, n in (("a", 8, 40), ("b", 16, 5)):
        (tmp_path / folder).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(tmp_path / folder / f"{i}.png")
    small = ["--epochs", "1", "--hidden-layer-sizes", "8", "--perplexity", "5"]
    assert main(["visualize", str(tmp_path / "a"), *small, "--save-map", "--out", str(tmp_path / "v")]) == 0
    assert AETSNE.load(tmp_path / "v").autoencoder_.image_shape_ == (1, 8, 8)
    assert main(["embed", str(tmp_path / "v"), str(tmp_path / "b"), "--out", str(tmp_path / "z.npy")]) == 0
    assert np.load(tmp_path / "z.npy").shape == (5, 2)


def test_training_curves_take_the_estimator_and_scatter_takes_mixed_labels(tmp_path):
    X = np.random.default_rng(0).random((50, 6), dtype=np.float32)
    est = Autoencoder(**SMALL).fit(X)
    assert plots.training_curves(est).get_lines()  # was AttributeError: 'Autoencoder' object has no attribute 'items'
    ax = plots.latent_scatter(est.transform(X), ["a", None, np.nan, "b", "a"] * 10)  # was a TypeError of sorting
    assert [t.get_text() for t in ax.figure.axes[1].get_yticklabels()] == ["None", "a", "b", "nan"]
    with pytest.raises(InputError, match="training_curves takes an estimator's history_"):
        plots.training_curves(5)


def test_image_pictures_take_the_images_own_shape():
    """A trial's 8 x 8 digits and 3 x 32 x 32 patches met "cannot reshape array of size 640 into shape (10,28,28)",
    and a 20-D VAE's latent_manifold the model's message about codes."""
    from aekit import plots
    from aekit._utils import InputError

    rng = np.random.default_rng(0)
    with plots.offscreen():
        cases = [
            (rng.random((4, 64)), (8, 8)),
            (rng.random((4, 3 * 32 * 32)), (32, 32, 3)),
            (rng.random((4, 32, 32, 3)), (32, 32, 3)),  # channels last (a review: matplotlib's TypeError)
            (rng.random((4, 28, 28, 1)), (28, 28)),
        ]
        for images, shape in cases:
            fig = plots.image_grid([images], ["x"])
            assert fig.axes[0].images[0].get_array().shape == shape
        with pytest.raises(InputError, match=r"image_shape \(28, 28\) holds 784 values but each image has 64"):
            plots.image_grid([rng.random((4, 64))], ["x"], image_shape=(28, 28))
        with pytest.raises(InputError, match="images of 10 values are no square; pass image_shape"):
            plots.image_grid([rng.random((4, 10))], ["x"])

        def wide(codes):
            raise InputError("inverse_transform expects codes of shape (n_samples, 20), found (225, 2)")

        with pytest.raises(InputError, match="latent_manifold decodes a grid of 2-D codes, but this decoder"):
            plots.latent_manifold(wide, (-1, -1), (1, 1))
