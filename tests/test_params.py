"""The parameter table (aekit.params): docstrings, __init__ defaults, CLI flags and validation all agree with it."""

import argparse
import ast
import inspect
import pickle
import re

import numpy as np
import pytest
import torch

import aekit
from aekit import Autoencoder, SupervisedAutoencoder
from aekit._utils import InputError
from aekit.cli import _on_command_line, _one_line, build_parser, main
from aekit.objectives import NOISE_KINDS
from aekit.params import FLAGS, PARAMS, PRESETS, Options, estimator_params, is_supervised, validate

ESTIMATORS = {False: Autoencoder, True: SupervisedAutoencoder}


def _doc_params(cls: type) -> dict[str, str]:
    """``name -> type spec`` of the numpydoc Parameters section of ``cls``'s own docstring."""
    doc = inspect.cleandoc(cls.__doc__)
    section = re.search(r"^Parameters\n-+\n(.*?)(?=^\w[^\n]*\n-+\n|\Z)", doc, re.M | re.S)
    assert section is not None, f"{cls.__name__} has no Parameters section"
    return {m[1]: m[2] for m in re.finditer(r"^(\w+) : (.*)$", section.group(1), re.M)}


def _documented(supervised: bool) -> dict[str, str]:
    own = _doc_params(ESTIMATORS[supervised])
    if supervised:  # "(all other parameters as in ``Autoencoder``)": the rest is documented once, there
        assert "all other parameters as in ``Autoencoder``" in SupervisedAutoencoder.__doc__
        assert set(own) == {p.name for p in PARAMS.values() if p.supervised}, (
            "SupervisedAutoencoder documents its own parameters"
        )
        return {**_doc_params(Autoencoder), **own}
    return own


@pytest.mark.parametrize("supervised", [False, True])
def test_docstring_init_and_table_name_the_same_parameters(supervised):
    cls = ESTIMATORS[supervised]
    table = estimator_params(supervised)
    assert sorted(_documented(supervised)) == sorted(table)
    signature = inspect.signature(cls.__init__).parameters
    assert sorted(set(signature) - {"self"}) == sorted(table)
    for name in table:
        assert signature[name].default == PARAMS[name].default, name
        assert type(signature[name].default) is type(PARAMS[name].default), name
    validate(cls().get_params())  # the defaults pass the table's own checks


@pytest.mark.parametrize("supervised", [False, True])
def test_docstring_defaults_and_choices_match_the_table(supervised):
    checked = 0
    for name, spec in _documented(supervised).items():
        p = PARAMS[name]
        kind, _, default = spec.partition(", default=")
        if default:
            assert ast.literal_eval(default) == p.default, f"{name}: docstring default={default}, table {p.default!r}"
            checked += 1
        if kind.startswith("{"):
            assert isinstance(p.constraint, Options), name
            assert ast.literal_eval(kind) == set(p.constraint.choices), (
                f"{name}: docstring {kind}, table {p.constraint.choices}"
            )
            checked += 1
    assert checked > 20  # the check did read the docstring


def _subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def test_every_train_flag_is_a_table_entry_and_back():
    train = _subparser("train")
    group = next(g for g in train._action_groups if g.title and g.title.startswith("model parameters"))
    assert [a.dest for a in group._group_actions] == list(FLAGS)
    for action in group._group_actions:
        p = PARAMS[action.dest]
        assert p.flag and action.option_strings == [p.flag_name]
        assert p.doc in action.help and f"default: {_on_command_line(p.default)}" in action.help
    others = [a for a in train._actions if a not in group._group_actions]
    assert not {a.dest for a in others} & set(FLAGS)
    assert {p.name for p in PARAMS.values() if not p.flag} == {"callbacks", "checkpoint_path", "verbose"}


def test_every_flag_reads_back_its_default_and_each_choice():
    """What the help text shows as the default is what the flag parses to (and so for every choice)."""
    train = _subparser("train")
    for name in FLAGS:
        p = PARAMS[name]
        values = [p.default, *(p.constraint.choices if isinstance(p.constraint, Options) else ())]
        for value in values:
            args = train.parse_args(["--out", "o", p.flag_name, _on_command_line(value)])
            got = getattr(args, name)
            assert got == value and type(got) is type(value), (name, value, got)


def test_denoise_options_come_from_the_same_constants():
    denoise = _subparser("denoise")
    noise = next(a for a in denoise._actions if a.dest == "noise")
    factor = next(a for a in denoise._actions if a.dest == "noise_factor")
    assert tuple(noise.choices) == NOISE_KINDS and factor.default == PARAMS["noise_factor"].default


@pytest.mark.parametrize(
    "params, param, match",
    [
        ({"epochs": 0}, "epochs", r"^epochs=0 must be 'auto' or an integer >= 1$"),  # AutoOr(Interval(int))
        ({"epochs": 2.0}, "epochs", "must be 'auto' or an integer"),
        ({"epochs": "AUTO"}, "epochs", "must be 'auto' or an integer"),
        ({"batch_size": 0}, "batch_size", r"^batch_size=0 must be an integer >= 1$"),  # Interval(int)
        ({"batch_size": True}, "batch_size", "must be an integer"),  # a bool is not a number
        (
            {"learning_rate": 0.0},
            "learning_rate",
            r"must be a number in \(0, 3.40282e\+38\]",
        ),  # Interval(float), open end
        ({"momentum": float("nan")}, "momentum", r"must be a number in \[0, 1\]"),
        ({"beta": float("inf")}, "beta", "must be a finite number"),
        ({"dropout": 1.0}, "dropout", r"dropout=1.0 must be a number in \[0, 1\)"),
        ({"precision": "half"}, "precision", r"^precision='half' must be one of \['float32', 'bfloat16'\]"),  # Options
        ({"compile": 1}, "compile", "compile=1 must be one of"),  # 1 is not True
        ({"noise": "blur"}, "noise", "noise='blur' must be one of"),
        ({"optimizer": "lbfgs"}, "optimizer", "optimizer='lbfgs' must be one of"),
        ({"conv_filters": ()}, "conv_filters", "positive integers"),  # Sizes
        ({"hidden_layer_sizes": "500"}, "hidden_layer_sizes", "positive integers"),
        ({"hidden_layer_sizes": 0}, "hidden_layer_sizes", r"positive integers .*\(or one integer\)"),
        ({"hidden_layer_sizes": True}, "hidden_layer_sizes", "positive integers"),  # not one layer of 1
        ({"image_shape": 28}, "image_shape", "2 or 3 positive integers"),  # one integer is no shape
        ({"image_shape": (28,)}, "image_shape", "2 or 3 positive integers"),
        ({"batchnorm": "yes"}, "batchnorm", "True or False"),  # Bool
        ({"device": 0}, "device", "device=0 must be a device name"),  # InstanceOf
        ({"random_state": -1}, "random_state", "must be an int >= 0"),  # RandomState
        ({"callbacks": [1]}, "callbacks", "callables"),
        ({"checkpoint_path": 3}, "checkpoint_path", "file path"),
        # rules between parameters
        ({"n_components": None}, "n_components", r"^n_components=None is only allowed with architecture='conv'"),
        (
            {"loss": "bce", "output_activation": "linear"},
            "loss",
            r"^loss='bce' needs output_activation='sigmoid'; for data outside \[0, 1\] use loss='auto' "
            r"\(or scale='minmax'",
        ),
        ({"scale": "robust"}, "scale", r"^scale='robust' must be one of \[None, 'minmax', 'standard', 'pixels'\]"),
        (
            {"batchnorm": True, "batch_size": 1},
            "batch_size",
            r"^batch_size=1 must be an integer >= 2 with batchnorm=True",
        ),
        (
            {"noise": "masking", "noise_factor": 5},
            "noise_factor",
            r"^noise_factor=5 is out of range for noise='masking'; expected a number in \[0, 1\]$",
        ),
        ({"noise": "salt_pepper", "noise_factor": 1.5}, "noise_factor", "out of range for noise='salt_pepper'"),
        ({"noise": "gaussian", "noise_factor": -0.1}, "noise_factor", "must be a finite number >= 0"),
    ],
)
def test_each_kind_of_constraint_rejects_with_the_parameter_named(params, param, match):
    with pytest.raises(InputError, match=match) as info:
        Autoencoder(**params)._validate_params()
    assert info.value.param == param


def test_head_parameters_are_checked_for_the_supervised_estimator_only():
    with pytest.raises(InputError, match=r"head_dropout=0.995 must be a number in \[0, 0.99\]") as info:
        SupervisedAutoencoder(head_dropout=0.995)._validate_params()
    assert info.value.param == "head_dropout"
    with pytest.raises(InputError, match="unknown parameters") as info:
        validate({**Autoencoder().get_params(), "head_dopout": 0.5})
    assert info.value.param == "head_dopout"


def test_one_integer_is_one_layer_as_in_scikit_learns_mlp(tmp_path):
    X = np.random.default_rng(0).random((64, 6)).astype(np.float32)
    y = np.arange(64) % 2
    sae = SupervisedAutoencoder(hidden_layer_sizes=np.int64(8), head_layer_sizes=4, epochs=1, random_state=0)
    sae.fit(X, y)
    widths = [tuple(m.weight.shape) for m in sae.net_.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [(8, 6), (2, 8), (8, 2), (6, 8), (4, 2), (2, 4)]
    assert sae.get_params()["hidden_layer_sizes"] == 8  # as given (scikit-learn's clone compares them)
    loaded = aekit.load(sae.save(tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(loaded.transform(X), sae.transform(X))
    assert Autoencoder(architecture="conv", conv_filters=4)._validate_params() is None
    # resuming with (8,) what was fitted with 8: one network, not "different parameters"
    ck = tmp_path / "ck.safetensors"
    Autoencoder(hidden_layer_sizes=8, epochs=1, random_state=0, checkpoint_path=str(ck)).fit(X)
    assert Autoencoder(hidden_layer_sizes=(8,), epochs=2, random_state=0).fit(X, resume_from=ck).n_iter_ == 2
    with pytest.raises(InputError, match=r"different parameters \['hidden_layer_sizes'\]"):
        Autoencoder(hidden_layer_sizes=(9,), epochs=2, random_state=0).fit(X, resume_from=ck)


def test_values_the_rules_allow():
    for ok in [
        {"architecture": "conv", "n_components": None},
        {"noise": "gaussian", "noise_factor": 5.0},  # a std, not a probability
        {"noise": None, "noise_factor": 5.0},  # unused
        {"noise": "masking", "noise_factor": 1},
        {"loss": "mse", "output_activation": "linear"},
        {"loss": "bce", "output_activation": "auto"},  # auto: the sigmoid bce needs
        {"loss": "auto", "output_activation": "linear", "scale": "standard"},
        {"batchnorm": True, "batch_size": 2},
        {"random_state": np.random.RandomState(0), "verbose": True, "callbacks": [print], "compile": False},
        {"epochs": np.int64(3), "learning_rate": 1, "image_shape": (1, 28, 28), "device": "cpu"},
    ]:
        Autoencoder(**ok)._validate_params()


def test_the_masking_rule_is_one_for_fit_and_the_command_line(tmp_path, capsys):
    X = np.random.default_rng(0).uniform(size=(16, 4)).astype(np.float32)
    with pytest.raises(InputError, match="noise_factor=5 is out of range") as info:
        Autoencoder(noise="masking", noise_factor=5, epochs=1).fit(X)
    assert info.value.param == "noise_factor"
    np.save(tmp_path / "x.npy", X)
    argv = ["train", str(tmp_path / "x.npy"), "--out", str(tmp_path / "r"), "--noise", "masking", "--noise-factor", "5"]
    assert main(argv) == 2
    rule = "is out of range for --noise 'masking'; expected a number in [0, 1]"
    assert capsys.readouterr().err == f"aekit: error: --noise-factor 5.0 {rule}\n"
    assert not (tmp_path / "r").exists()
    assert (
        main(
            [
                "train",
                str(tmp_path / "x.npy"),
                "--out",
                str(tmp_path / "r"),
                "--epochs",
                "1",
                "--hidden-layer-sizes",
                "4",
            ]
        )
        == 0
    )
    capsys.readouterr()  # the training's line per epoch (stderr is no terminal here)
    model = str(tmp_path / "r" / "model.safetensors")
    assert (
        main(
            [
                "denoise",
                model,
                str(tmp_path / "x.npy"),
                "--out",
                str(tmp_path / "d.npy"),
                "--add-noise",
                "--noise",
                "masking",
                "--noise-factor",
                "1.5",
            ]
        )
        == 2
    )
    assert capsys.readouterr().err == f"aekit: error: --noise-factor 1.5 {rule}\n"


def test_the_cli_maps_param_to_flag_from_data_not_text():
    err = InputError("{loss} needs {output_activation='sigmoid'}", param="loss", values={"loss": "bce"})
    assert str(err) == "loss='bce' needs output_activation='sigmoid'"
    assert (  # the value at fault keeps its quotes; a suggested value is shown as it is typed
        _one_line(err, frozenset({"loss", "output_activation"})) == "--loss 'bce' needs --output-activation sigmoid"
    )
    assert _one_line(err, frozenset({"loss"})) == "--loss 'bce' needs output_activation='sigmoid'"  # not a flag here
    assert _one_line(err, frozenset()) == str(err)  # e.g. `aekit embed`: no estimator flags
    # the message text is free: a plain message with param=... is not parsed, the flag is put in front
    plain = InputError("dropout=0.5 applies to dense layers only", param="dropout")
    assert _one_line(plain, frozenset({"dropout"})) == "--dropout: dropout=0.5 applies to dense layers only"
    assert InputError("a {brace} in data", values=None).render() == "a {brace} in data"
    again = pickle.loads(pickle.dumps(err))
    assert (again.param, str(again), again.render(lambda n, s: f"--{n} {s}")) == (
        "loss",
        str(err),
        "--loss 'bce' needs --output_activation 'sigmoid'",
    )


def test_bugs_are_tracebacks_and_sklearn_value_errors_are_input_errors(tmp_path, monkeypatch, capsys):
    with pytest.raises(InputError, match="NaN"):
        Autoencoder(epochs=1).fit(np.array([[0.1, np.nan], [0.2, 0.3]]))
    import aekit.cli as cli

    def buggy(args):
        raise TypeError("unsupported operand type(s)")

    monkeypatch.setattr(cli, "cmd_summary", buggy)  # build_parser binds the command when main runs
    with pytest.raises(TypeError, match="unsupported operand"):
        main(["summary", "784,10"])


def test_presets_name_table_parameters_with_valid_values():
    defaults = {p.name: p.default for p in PARAMS.values()}
    for name, preset in PRESETS.items():
        assert set(preset) <= set(PARAMS), name
        validate({**defaults, **preset})
        assert is_supervised(preset) == name.startswith("sae"), name


def test_options_from_the_command_line_match_a_choice_or_name_them_all():
    from aekit.params import PARAMS

    scale, loss = PARAMS["scale"].constraint, PARAMS["loss"].constraint
    assert scale.from_text("none") is None and scale.from_text("Standard") == "standard"
    assert loss.from_text("MSE") == "mse"  # any case, given back as the choice itself
    with pytest.raises(ValueError, match="expects one of none, minmax, standard, pixels"):
        scale.from_text("standrd")
