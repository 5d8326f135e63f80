"""Issue 21: the fix an error suggests exists as a flag of the subcommand that shows it.

For every subcommand the errors reachable there are triggered (``CASES``) and the one line on stderr is read back:

- every ``--flag`` it names is an option of *that* subcommand and, with the word after it as its value (for a
  flag that takes one), parses when appended to the failing command line (argparse, no unknown arguments);
- no estimator parameter and no option of the subcommand is named in the library's keyword form
  (``loss='mse'``): on the command line that is no flag at all.

The checks read the rendered message only, so a suggestion added later (``--scale``, ``--loss auto``,
``--epochs auto``) is checked by the same cases: add a case for a new error, not a new check.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aekit import Autoencoder
from aekit.cli import build_parser, main
from aekit.params import PARAMS

SMALL = ["--hidden-layer-sizes", "8", "--n-components", "2", "--epochs", "1", "--batch-size", "32"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:
    """Data in [0, 1] (.npz with labels, 16 features), 5 features, CSVs outside [0, 1] (one with text ids), a model."""
    d = tmp_path_factory.mktemp("suggest")
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(60, 16)).astype(np.float32)
    np.savez(d / "unit.npz", X=X, y=np.arange(60) % 3)
    np.save(d / "unit5.npy", X[:, :5])
    np.save(d / "emb3.npy", np.zeros((3, 2), np.float32))
    species = np.array(["setosa", "versicolor", "virginica"])[np.arange(60) % 3]
    rows = [",".join([*(f"{v:.3f}" for v in r), s]) for r, s in zip(rng.uniform(0, 8, (60, 4)), species, strict=True)]
    (d / "tab.csv").write_text("a,b,c,d,species\n" + "\n".join(rows) + "\n")
    from PIL import Image

    (d / "imgs" / "a").mkdir(parents=True)
    for i in range(12):  # a folder of 4x4 grey images: 16 values each, as the model takes
        Image.fromarray((rng.random((4, 4)) * 255).astype(np.uint8)).save(d / "imgs" / "a" / f"{i}.png")
    (d / "embtext.csv").write_text("name,d1,d2\n" + "".join(f"p{i},{i},{i}\n" for i in range(60)))
    (d / "ids.csv").write_text("sample,a,b,c,d,species\n" + "".join(f"s{i},{r}\n" for i, r in enumerate(rows)))
    Autoencoder(hidden_layer_sizes=(8,), n_components=2, epochs=1, batch_size=32, random_state=0, device="cpu").fit(
        X
    ).save(d / "ae.safetensors")
    names = ("unit.npz", "unit5.npy", "emb3.npy", "tab.csv", "ids.csv", "embtext.csv", "ae.safetensors")
    files = {n.split(".")[0]: str(d / n) for n in names}
    return {"dir": str(d), **files, "imgs": str(d / "imgs"), "missing": str(d / "missing.safetensors")}


#: (subcommand, case, command line): ``{name}`` are the world's files, ``{t}`` a fresh folder for the outputs
CASES: list[tuple[str, str, str]] = [
    # train
    ("train", "data-range", "train {tab} --label-column species --loss bce --out {t}/o"),
    ("train", "data-range-supervised", "train {tab} --label-column species --supervised --loss bce --out {t}/o"),
    ("train", "bce-on-linear", "train {unit} --loss bce --output-activation linear --out {t}/o"),
    ("train", "label-column-name", "train {tab} --label-column kind --out {t}/o"),
    ("train", "text-column-ids", "train {ids} --label-column species --out {t}/o"),
    ("train", "tsne-perplexity", "train {unit5} --method tsne --out {t}/o"),
    ("train", "text-column-ids-or-labels", "train {ids} --out {t}/o"),
    ("train", "label-column-index", "train {tab} --label-column 9 --out {t}/o"),
    ("train", "label-column-npy", "train {unit5} --label-column 0 --out {t}/o"),
    ("train", "no-labels", "train {unit5} --supervised --out {t}/o"),
    ("train", "preset-supervised", "train {unit5} --preset sae_long --out {t}/o"),
    ("train", "head-flag-unsupervised", "train {unit5} --head-dropout 0.5 --out {t}/o"),
    ("train", "image-shape-not-square", "train {unit5} --architecture conv --n-components none --out {t}/o"),
    ("train", "image-shape-size", "train {unit} --architecture conv --image-shape 3,3 --out {t}/o"),
    ("train", "image-shape-pooling", "train {unit} --architecture conv --image-shape 2,8 --out {t}/o"),
    ("train", "image-shape-length", "train {unit} --architecture conv --image-shape 1,1,4,4 --out {t}/o"),
    ("train", "conv-dropout", "train {unit} --architecture conv --dropout 0.5 --out {t}/o"),
    ("train", "noise-factor", "train {unit} --noise masking --noise-factor 1.5 --out {t}/o"),
    ("train", "n-components-none", "train {unit} --n-components none --out {t}/o"),
    ("train", "validation-fraction", "train {unit5} --limit 1 --validation-fraction 0.5 --out {t}/o"),
    ("train", "bad-limit", "train {unit} --limit 0 --out {t}/o"),
    ("train", "missing-data", "train {missing} --out {t}/o"),
    ("train", "resume-without-checkpoint", "train {unit} --resume --out {t}/o"),
    # embed
    ("embed", "missing-model", "embed {missing} {unit} --out {t}/c.csv"),
    ("embed", "feature-count", "embed {ae} {unit5} --out {t}/c.csv"),
    ("embed", "feature-count-csv", "embed {ae} {tab} --out {t}/c.csv"),
    ("embed", "label-column", "embed {ae} {tab} --label-column kind --out {t}/c.csv"),
    ("embed", "out-suffix", "embed {ae} {unit} --out {t}/c.txt"),
    ("embed", "image-folder-size", "embed {ae} {imgs} --image-shape 2,2 --out {t}/c.csv"),
    # evaluate
    ("evaluate", "missing-model", "evaluate {missing} {unit}"),
    ("evaluate", "feature-count", "evaluate {ae} {unit5}"),
    ("evaluate", "train-data-feature-count", "evaluate {ae} {unit} --train-data {tab}"),
    ("evaluate", "label-column", "evaluate {ae} {tab} --label-column kind"),
    ("evaluate", "image-folder-size", "evaluate {ae} {imgs} --image-shape 2,2"),
    # denoise
    ("denoise", "missing-model", "denoise {missing} {unit} --out {t}/d.npy"),
    ("denoise", "feature-count", "denoise {ae} {unit5} --out {t}/d.npy"),
    ("denoise", "noise-factor", "denoise {ae} {unit} --add-noise --noise masking --noise-factor 1.5 --out {t}/d.npy"),
    ("denoise", "noise-factor-negative", "denoise {ae} {unit} --add-noise --noise-factor -1 --out {t}/d.npy"),
    ("denoise", "seed", "denoise {ae} {unit} --add-noise --seed -1 --out {t}/d.npy"),
    ("denoise", "image-folder-size", "denoise {ae} {imgs} --image-shape 2,2 --out {t}/d.npy"),
    # visualize
    ("visualize", "data-range", "visualize {tab} --label-column species --perplexity 5 --loss bce --out {t}/v"),
    ("visualize", "data-range-compare", "visualize {tab} --label-column species --compare --loss bce --out {t}/v"),
    ("visualize", "missing-model", "visualize {unit} --model {missing} --out {t}/v"),
    ("visualize", "feature-count", "visualize {unit5} --model {ae} --perplexity 5 --out {t}/v"),
    ("visualize", "label-column", "visualize {tab} --label-column kind --out {t}/v"),
    ("visualize", "compare-without-labels", "visualize {unit5} --compare --out {t}/v"),
    ("visualize", "perplexity-too-large", "visualize {unit} --model {ae} --out {t}/v"),
    ("visualize", "image-folder-size", "visualize {imgs} --model {ae} --image-shape 2,2 --out {t}/v"),
    ("visualize", "model-and-estimator-flags", "visualize {unit} --model {ae} --loss mse --out {t}/v"),
    ("visualize", "noise-factor", "visualize {unit} --noise masking --noise-factor 1.5 --out {t}/v"),
    # explore
    ("explore", "missing-model", "explore {unit} --model {missing} --out {t}/x.html"),
    ("explore", "feature-count", "explore {unit5} --model {ae} --out {t}/x.html"),
    ("explore", "model-or-embedding", "explore {unit} --out {t}/x.html"),
    ("explore", "embedding-rows", "explore {unit} --embedding {emb3} --out {t}/x.html"),
    ("explore", "embedding-text-column", "explore {unit} --embedding {embtext} --out {t}/x.html"),
    ("explore", "image-folder-size", "explore {imgs} --model {ae} --image-shape 2,2 --out {t}/x.html"),
    ("explore", "image-shape", "explore {unit} --model {ae} --image-shape 3,3 --out {t}/x.html"),
    (
        "explore",
        "image-shape-tabular",
        "explore {unit5} --embedding {emb3} --limit 3 --image-shape 2,2 --out {t}/x.html",
    ),
    # export
    ("export", "missing-model", "export {missing} --format onnx --out {t}/e"),
    ("export", "feature-count", "export {ae} {unit5} --format projector --out {t}/e"),
    ("export", "projector-needs-data", "export {ae} --format projector --out {t}/e"),
    ("export", "image-folder-size", "export {ae} {imgs} --format projector --image-shape 2,2 --out {t}/e"),
    ("export", "image-shape", "export {ae} {unit} --format projector --image-shape 3,3 --out {t}/e"),
    # summary
    ("summary", "layers", "summary 784,x"),
    ("summary", "one-layer", "summary 784"),
    ("summary", "missing-model", "summary --model {missing}"),
    ("summary", "two-sources", "summary 784,10 --preset conv"),
    # demo (refused before any MNIST is read or any model trained)
    ("demo", "only", "demo --only densest --out {t}/demo"),
    ("demo", "epochs", "demo --epochs 0 --out {t}/demo"),
    ("demo", "mnist-dir", "demo --mnist-dir {missing} --out {t}/demo"),
]


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


#: ``--flag`` and the word after it (`` `` or ``=``)
_FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)(?:[ =]([^\s]+))?")


def suggestion_problems(argv: list[str], message: str) -> list[str]:
    """What in ``message`` (shown by ``aekit argv``) names no flag of the subcommand, or one that does not parse."""
    parser = build_parser()
    sub = _subparser(parser, argv[0])
    problems = []
    for flag, word in _FLAG.findall(message):
        action = sub._option_string_actions.get(flag)
        if action is None:
            problems.append(f"{flag} is no option of `aekit {argv[0]}`")
            continue
        value = word.rstrip(",;:.)").strip("'\"") if word else ""
        extra = [flag] if action.nargs == 0 else [flag, value] if value else []
        if not extra:  # named without a value ("name it: --label-column")
            continue
        try:
            _, unknown = parser.parse_known_args([*argv, *extra])
        except SystemExit:
            problems.append(f"{' '.join(extra)} does not parse with `aekit {argv[0]}`")
            continue
        if unknown:
            problems.append(f"{' '.join(extra)} leaves {unknown} unknown to `aekit {argv[0]}`")
    names = set(PARAMS) | {a.dest for a in sub._actions if a.option_strings}
    for name in re.findall(r"(?<![\w-])([a-z_]+)=", message):
        if name in names:
            problems.append(f"{name}= is the library's keyword, not a flag of `aekit {argv[0]}`")
    return problems


def test_the_checker_catches_a_flag_the_subcommand_lacks():
    argv = ["visualize", "x.npy", "--out", "v"]
    assert suggestion_problems(argv, "use --perplexity 5") == []
    assert suggestion_problems(argv, "use --no-such-flag 1") == ["--no-such-flag is no option of `aekit visualize`"]
    assert suggestion_problems(["embed", "m", "x.npy", "--out", "c.npy"], "use loss='mse'") == [
        "loss= is the library's keyword, not a flag of `aekit embed`"
    ]
    assert suggestion_problems(argv, "use --perplexity five") == [
        "--perplexity five does not parse with `aekit visualize`"
    ]


def test_every_subcommand_has_cases():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(action.choices) == {command for command, _, _ in CASES}


@pytest.mark.parametrize(("command", "case", "line"), CASES, ids=[f"{c}-{k}" for c, k, _ in CASES])
def test_suggested_fixes_are_flags_of_the_subcommand(world, tmp_path, capsys, command, case, line):
    argv = line.format(t=tmp_path, **world).split()
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, (rc, err)
    lines = [x for x in err.splitlines() if x.startswith("aekit")]
    assert len(lines) == 1 and lines[0].startswith("aekit: error: ") and "Traceback" not in err, err
    message = lines[0].removeprefix("aekit: error: ")
    assert suggestion_problems(argv, message) == [], message
    assert list(Path(tmp_path).iterdir()) == []  # a refused command leaves no file and no folder behind


def test_the_conv_warning_names_the_image_shape_flag(tmp_path):
    """A conv body reading flat rows beyond [0, 1] as 8 x 8 images: its advice, image_shape=(8, 8), as a flag."""
    X = np.random.default_rng(0).normal(size=(40, 64)).astype(np.float32)  # 64-sample windows, not pixels
    np.save(tmp_path / "windows.npy", X)
    argv = ["train", str(tmp_path / "windows.npy"), "--architecture", "conv", "--epochs", "1"]
    argv += ["--conv-filters", "4", "--out", str(tmp_path / "run")]
    done = subprocess.run([sys.executable, "-m", "aekit", *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    warned = [x.removeprefix("aekit: warning: ") for x in done.stderr.splitlines() if "as an image of 8 x 8" in x]
    assert len(warned) == 1 and "pass --image-shape 8,8 (their shape)" in warned[0], done.stderr
    assert "--architecture dense" in warned[0] and suggestion_problems(argv, warned[0]) == []


def test_warnings_name_flags_not_keywords(tmp_path):
    # the library's advice (scale='standard', optimizer='adam') is shown on the command line as the flags
    rng = np.random.default_rng(0)
    X = (rng.uniform(size=(64, 4)) * np.array([1e-3, 1.0, 10.0, 1e3])).astype(np.float32)  # wildly different scales
    np.save(tmp_path / "spread.npy", X)
    argv = ["train", str(tmp_path / "spread.npy"), "--out", str(tmp_path / "run"), *SMALL]
    done = subprocess.run([sys.executable, "-m", "aekit", *argv], capture_output=True, text=True)  # as users see it
    assert done.returncode == 0, done.stderr
    warned = [x.removeprefix("aekit: warning: ") for x in done.stderr.splitlines() if "warning:" in x]
    assert any("Pass --scale standard" in w for w in warned), warned
    for message in warned:
        assert suggestion_problems(argv, message) == [], message


def test_as_flags_leaves_calls_and_other_names_alone():
    from aekit.cli import as_flags

    text = "try optimizer='adam', scale='minmax' or epochs=60; set_params(precision='bfloat16'); n_iter_=3, x='y'"
    assert as_flags(text) == (
        "try --optimizer adam, --scale minmax or epochs=60; set_params(precision='bfloat16'); n_iter_=3, x='y'"
    )
    assert as_flags("pass image_shape=(3, 32, 32) or shape=(8, 8)") == "pass --image-shape 3,32,32 or shape=(8, 8)"
    assert as_flags("lower learning_rate, or try another random_state; lower the rate; a lower loss") == (
        "lower --learning-rate, or try another --random-state; lower the rate; a lower loss"
    )
    assert as_flags("pass a smaller n_components, or set noise_factor in X's units") == (
        "pass a smaller --n-components, or set --noise-factor in X's units"  # a docs run's two warnings
    )
    from aekit.cli import _COMMAND_FLAGS

    token = _COMMAND_FLAGS.set(frozenset({"--seed", "--scale"}))  # visualize's: its seed is --seed (a review)
    try:
        text = "try another random_state, scale='minmax', lower learning_rate"
        assert as_flags(text) == "try another --seed, --scale minmax, lower learning_rate"  # no such flag: as is
    finally:
        _COMMAND_FLAGS.reset(token)
    for kept in ("(best loss=0.01234)", "with random_state=None", "/data/batch_size='32'/x.csv", "column 'scale='x''"):
        assert as_flags(kept) == kept  # values, facts, paths and quoted names are no advice


def test_the_saturated_codes_advice_reads_as_a_flag_on_the_command_line():
    """A trial's CLI warning said "(scale='standard')": a call's argument to as_flags, so no flag."""

    from aekit.cli import as_flags
    from aekit.health import codes_on_corners

    corners = np.sign(np.random.default_rng(0).normal(size=(50, 2))).astype(np.float32)
    note = codes_on_corners(corners, "tanh", None)
    assert note is not None and "standardise the data with --scale standard," in as_flags(note)
    assert suggestion_problems(["train", "data.csv", "--out", "run"], as_flags(note)) == []
