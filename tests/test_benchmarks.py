"""The speed benchmark's own arithmetic (benchmarks/ is not a package: loaded from its file)."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from .conftest import ROOT


@pytest.fixture(scope="module")
def speed():
    spec = importlib.util.spec_from_file_location("speed", ROOT / "benchmarks" / "speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model", ["dense", "sae", "dense-bf16"])
def test_floor_runs_exactly_the_counted_products(speed, model):
    layers = speed.dense_layers(model)
    widths = [speed.DENSE[0]] + [out for _, _, out in layers]  # widths[i + 1]: layer i's output
    flops = 0
    for i, (src, fan_in, out) in enumerate(layers):
        assert widths[src + 1] == fan_in  # each layer reads an output of the right width
        flops += 2 * fan_in * out * (2 if i == 0 else 3)  # forward + weight gradient (+ input gradient)
    assert flops == speed.train_flops(model)
    if model == "sae":  # the head reads the 2-D code
        assert layers[8][:2] == (3, 2)


def test_floor_worker_reports_epochs_of_turns(speed, tmp_path):
    data = tmp_path / "d.npz"
    np.savez(data, X=np.zeros((300, 784), np.float32))
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "speed.py"),
        "--worker",
        "floor",
        "--models",
        "sae",
        "--epochs",
        "2",
        "--threads",
        "1",
        "--chunk",
        "2",
        "--data",
        str(data),
    ]
    out = subprocess.run(cmd, input="go\n" * 20, capture_output=True, text=True, timeout=120, check=True).stdout
    msgs = [line[2:] for line in out.splitlines() if line.startswith("@@")]
    events = [json.loads(m)["event"] for m in msgs]
    # 300 samples = 3 steps (128, 128, 44) per epoch: one full turn of 2 steps, then the epoch's end
    assert events == ["ready", "turn", "epoch", "turn", "epoch", "final"]
    assert json.loads(msgs[-1])["products_per_step"] == 32


def test_paired_ratios_pair_turns_of_the_same_epoch_and_skip_the_first(speed):
    a = [(1, 9.0), (2, 1.0), (2, 2.0), (3, 3.0)]
    b = [(1, 1.0), (2, 2.0), (2, 4.0), (3, 2.0), (3, 5.0)]
    assert speed.paired_ratios(a, b) == [0.5, 0.5, 1.5]
    assert speed.paired_ratios([(1, 2.0)], [(1, 4.0)]) == [0.5]  # one epoch: it is all there is
    assert speed.quartiles([1.0, 2.0, 3.0])[1] == 2.0


@pytest.fixture(scope="module")
def contention():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # contention.py imports speed.py from its folder
    spec = importlib.util.spec_from_file_location("contention", ROOT / "benchmarks" / "contention.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_contention_epoch_clock_times_epochs_2_on_per_process(contention, tmp_path):
    path = tmp_path / "clock.jsonl"
    lines = [(1, 0, 10.0), (2, 0, 11.0), (1, 1, 12.0), (2, 1, 14.0), (1, 2, 15.0), (1, 0, 20.0), (1, 1, 20.5)]
    path.write_text("".join(json.dumps({"pid": p, "epoch": e, "t": t}) + "\n" for p, e, t in lines))
    # pid 1: 12-10, 15-12, then a new fit (epoch 0 again): 20.5-20; pid 2: 14-11
    assert contention.epoch_times_from_clock(path) == [2.0, 3.0, 3.0, 0.5]


def test_contention_fair_share(contention):
    def stack(t, cpu):
        return {"median_epoch_s": t, "epoch_cpu_cores": [9.0, cpu]}  # epoch 1 (warm-up) is not counted

    r = {
        "stacks": ("aekit", "keras"),
        "conditions": {
            "quiet": {"results": [{"model": "dense", "aekit": stack(1.0, 2.0), "keras": stack(2.0, 1.5)}]},
            "busy2": {"results": [{"model": "dense", "aekit": stack(3.0, 1.0), "keras": stack(4.0, 1.0)}]},
            "gridsearch": {"results": [{"model": "dense", "aekit": {"median_epoch_s": 1.5}}]},
        },
    }
    contention.derive(r, cores=2)
    busy, grid = r["conditions"]["busy2"]["results"][0], r["conditions"]["gridsearch"]["results"][0]
    assert busy["aekit"]["slowdown"] == 3.0 and busy["aekit"]["fair_slowdown"] == 2.0  # (2 + 2) / 2
    assert busy["keras"]["fair_slowdown"] == 1.75 and busy["ratio_aekit_over_keras"] == 0.75
    assert grid["aekit"]["fair_slowdown"] == 2.0 and grid["aekit"]["over_fair"] == 0.75  # 2 cores · 2 jobs / 2


@pytest.mark.slow
def test_contention_quick_run_writes_results(tmp_path):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "contention.py"), "--quick", "--no-keras", "--models", "dense"]
    cmd += ["--conditions", "quiet,busy1", "--variant", "passive:OMP_WAIT_POLICY=PASSIVE", "--out", str(tmp_path)]
    subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    r = json.loads((tmp_path / "contention.json").read_text())
    x = r["conditions"]["busy1"]["results"][0]
    assert x["aekit"]["slowdown"] > 0 and x["aekit@passive"]["median_epoch_s"] > 0
    assert "| busy1 | dense |" in (tmp_path / "contention.md").read_text()
