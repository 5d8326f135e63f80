"""Training speed on a busy CPU: aekit vs the reference Keras models, quiet and under contention.

Conditions, one after the other, each for every model:

- ``quiet``: nothing else started by this script;
- ``busy1``, ``busy2``: one or two competing processes that each keep a core busy
  (``python -c "while True: pass"``, started before the condition's workers and killed after);
- ``gridsearch``: aekit inside ``GridSearchCV(n_jobs=2)`` (2 learning rates × 2 folds, fits of
  ``--samples`` rows each, two at a time); Keras has no scikit-learn estimator in its stack, so
  it does not run here.

In the first three, aekit and Keras train side by side in the worker processes of
``benchmarks/speed.py``, taking turns of ``--chunk`` steps (aekit, Keras, aekit, ...), so the
machine's own swings hit both alike. Each stack uses its library's own thread choice
(``--threads 0``): aekit's policy (``aekit.threads``), TensorFlow's default. Reported: the median
epoch time of epochs 2..E (epoch 1 includes warm-up), the slowdown against quiet, the fair-share
slowdown, aekit/Keras, and the load average around each condition.

Fair share: a stack that kept ``c`` cores busy when quiet (measured), beside ``b`` busy processes
on ``n`` cores, gets ``n·c/(c + b)`` cores if the scheduler is fair, so its fair slowdown is
``max(1, (c + b)/n)``. Inside ``GridSearchCV(n_jobs=j)`` each fit's fair share is ``n/j`` cores:
fair slowdown ``max(1, c·j/n)``.

    python benchmarks/contention.py                 # full run: ~20-40 min on 2 idle cores, writes benchmarks/results/
    python benchmarks/contention.py --quick --out /tmp/contention-quick     # smoke test, ~2 min
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # speed.py: its workers and turns
import speed  # noqa: E402

#: OpenMP's wait as this process was started with: aekit's workers decide theirs at their own ``import aekit``
#: (each condition's load), so what this driver's import adds is taken out again before workers start
USER_SPIN = os.environ.get("GOMP_SPINCOUNT")

CONDITIONS = ("quiet", "busy1", "busy2", "gridsearch")
MODELS = ("dense", "sae", "conv")
GRID_JOBS = 2


@contextlib.contextmanager
def busy_processes(n: int) -> Iterator[list[subprocess.Popen]]:
    """``n`` processes that each keep one core busy, killed on exit."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def keras_available() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("keras") is not None and importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


# ----------------------------------------------------------------------------- GridSearchCV


class EpochClock:
    """A fit callback that appends ``(pid, epoch, time)`` to a file at every epoch end (works across processes)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, epoch: int, logs: dict) -> None:
        with open(self.path, "a") as f:
            import torch

            msg = {"pid": os.getpid(), "epoch": epoch, "t": time.perf_counter(), "threads": torch.get_num_threads()}
            f.write(json.dumps(msg) + "\n")


def epoch_times_from_clock(path: Path) -> list[float]:
    """Epochs 2..E of every fit: the time between consecutive epoch ends of one process."""
    last: dict[int, tuple[int, float]] = {}
    times = []
    for line in path.read_text().splitlines():
        m = json.loads(line)
        prev = last.get(m["pid"])
        if prev is not None and m["epoch"] == prev[0] + 1:
            times.append(m["t"] - prev[1])
        last[m["pid"]] = (m["epoch"], m["t"])
    return times


def gridsearch(model: str, args: argparse.Namespace, X: np.ndarray, y: np.ndarray, tmp: Path) -> dict:
    """aekit's epochs inside GridSearchCV(n_jobs=2): 2 learning rates × 2 folds, each fit on ``len(X) / 2`` rows."""
    from sklearn.model_selection import GridSearchCV, KFold

    import aekit

    clock = tmp / f"grid-{model}.jsonl"
    clock.unlink(missing_ok=True)
    common = {"epochs": args.epochs, "random_state": 0, "device": "cpu", "callbacks": [EpochClock(str(clock))]}
    if model == "sae":
        est = aekit.SupervisedAutoencoder(**common)
    elif model == "conv":
        est = aekit.Autoencoder(**{**aekit.PRESETS["conv"], **common})
    else:
        est = aekit.Autoencoder(**common)
    grid = GridSearchCV(est, {"learning_rate": [0.002, 0.001]}, cv=KFold(2), n_jobs=GRID_JOBS, refit=False)
    t0 = time.perf_counter()
    grid.fit(X, y) if model == "sae" else grid.fit(X)
    times = epoch_times_from_clock(clock)
    threads = sorted({json.loads(line)["threads"] for line in clock.read_text().splitlines()})
    print(f"[{model}] gridsearch: {len(times)} timed epochs, median {statistics.median(times):.2f} s", flush=True)
    return {
        "model": model,
        "aekit": {"epoch_times": times, "median_epoch_s": statistics.median(times)},
        "wall_s": time.perf_counter() - t0,
        "fits": len(grid.cv_results_["params"]) * 2,
        "rows_per_fit": len(X) // 2,
        "threads_per_fit": threads,
    }


# ----------------------------------------------------------------------------- driver


def run(args: argparse.Namespace) -> dict:
    import aekit

    if USER_SPIN is None:
        os.environ.pop("GOMP_SPINCOUNT", None)

    mnist = aekit.load_mnist(os.environ.get("AEKIT_MNIST_DIR"))
    samples = min(args.samples, len(mnist.X_train) // 2)
    stacks = ("aekit", *(f"aekit@{label}" for label in args.variants)) + (("keras",) if args.keras else ())
    ns = argparse.Namespace(
        epochs=args.epochs, threads=0, chunk=args.chunk, floor=args.floor, stacks=stacks, stack_env=args.variants
    )
    out: dict = {"conditions": {}}
    with tempfile.TemporaryDirectory(prefix="aekit-contention-") as tmp_name:
        tmp = Path(tmp_name)
        data = str(tmp / "mnist.npz")
        n_test = 1000  # the workers' transform timing: short, it is not what this benchmark is about
        np.savez(data, X=mnist.X_train[:samples], y=mnist.y_train[:samples], X_test=mnist.X_test[:n_test], y_test=[])
        for cond in args.conditions:
            load0 = os.getloadavg()
            t0 = time.perf_counter()
            print(f"== {cond} (load average {load0[0]:.2f})", flush=True)
            rows = []
            if cond == "gridsearch":
                # twice the rows: each fit of the 2-fold search trains on `samples` rows, as in the other conditions
                Xg, yg = mnist.X_train[: 2 * samples], mnist.y_train[: 2 * samples]
                rows = [gridsearch(m, args, Xg, yg, tmp) for m in args.models]
            else:
                with busy_processes({"quiet": 0, "busy1": 1, "busy2": 2}[cond]):
                    for m in args.models:
                        r = speed.run_model(m, ns, data, samples, {False: 1.0, True: 1.0}, tmp)
                        for s in (*stacks, "floor"):
                            if s not in r:
                                continue
                            r[s].pop("versions", None) if "@" in s else None
                            for k in ("flops_per_s", "fraction_of_peak"):  # no peak measured here
                                r[s].pop(k, None)
                        rows.append(r)
            out["conditions"][cond] = {
                "results": rows,
                "loadavg_before": load0,
                "loadavg_after": os.getloadavg(),
                "wall_s": time.perf_counter() - t0,
            }
    out["samples"] = samples
    out["stacks"] = stacks + (("floor",) if args.floor else ())
    return out


def derive(r: dict, cores: int) -> None:
    """Slowdowns against quiet, fair-share slowdowns and aekit/Keras, in place."""
    quiet = {x["model"]: x for x in r["conditions"].get("quiet", {}).get("results", [])}
    busy_n = {"quiet": 0, "busy1": 1, "busy2": 2}
    for cond, c in r["conditions"].items():
        for x in c["results"]:
            q = quiet.get(x["model"])
            for stack in r["stacks"]:
                if stack not in x or q is None or stack not in q:
                    continue
                s = x[stack]
                s["slowdown"] = s["median_epoch_s"] / q[stack]["median_epoch_s"]
                c_q = statistics.mean(q[stack]["epoch_cpu_cores"][1:] or q[stack]["epoch_cpu_cores"])
                if cond == "gridsearch":
                    s["fair_slowdown"] = max(1.0, c_q * GRID_JOBS / cores)
                else:
                    s["fair_slowdown"] = max(1.0, (c_q + busy_n[cond]) / cores)
                s["over_fair"] = s["slowdown"] / s["fair_slowdown"]
            if "keras" in x:
                x["ratio_aekit_over_keras"] = x["aekit"]["median_epoch_s"] / x["keras"]["median_epoch_s"]


def report(r: dict) -> str:
    m, v = r["machine"], r["versions"]
    out = [
        "# Training speed under CPU contention: aekit vs reference Keras",
        "",
        f"- date: {r['date']}",
        f"- machine: {m['cpu']}, {m['usable_cpus']} usable of {m['logical_cpus']} logical CPUs, "
        f"{m['memory_gib']} GiB RAM; {m['platform']}",
        f"- versions: {', '.join(f'{k} {val}' for k, val in v.items())}; aekit git {r['git']}",
        f"- command: `{r['command']}`",
        f"- {r['samples']} MNIST training images, {r['epochs']} epochs per stack and condition, turns of "
        f"{r['chunk']} steps; each library's own thread choice; OpenMP/thread variables set for aekit's "
        f"workers: {r['aekit_openmp']} (`aekit spin`: what each worker chose at its `import aekit`)",
        "",
    ]
    if r.get("note"):
        out += [f"**{r['note']}**", ""]
    out += [
        "Median epoch time of epochs 2..E (s); slowdown = that / quiet; fair = the fair-share slowdown "
        "(`max(1, (c + b)/n)` for a stack that kept c cores busy when quiet beside b busy processes on n cores; "
        "`max(1, c·2/n)` for one fit of `GridSearchCV(n_jobs=2)`); ×fair = slowdown / fair (goal ≤ 1.25). "
        "Load average: 1-minute, before → after the condition; `other` in speed.py's sense = cores used by "
        "every other process while a stack's epochs were timed (busy processes included).",
        "",
    ]
    rows = []
    for cond, c in r["conditions"].items():
        for x in c["results"]:
            row = [cond, x["model"]]
            for stack in ("aekit", "keras"):
                s = x.get(stack)
                if s is None:
                    row += ["—"] * 4
                    continue
                row += [
                    f"{s['median_epoch_s']:.2f}",
                    f"{s['slowdown']:.2f}" if "slowdown" in s else "—",
                    f"{s['fair_slowdown']:.2f}" if "fair_slowdown" in s else "—",
                    f"{s['over_fair']:.2f}" if "over_fair" in s else "—",
                ]
            row.append(f"{x['ratio_aekit_over_keras']:.2f}" if "ratio_aekit_over_keras" in x else "—")
            row.append(spin(x["aekit"]))
            other = x["aekit"].get("epoch_other_load_cores")
            row.append(f"{statistics.mean(other):.1f}" if other else "—")
            row.append(f"{c['loadavg_before'][0]:.2f} → {c['loadavg_after'][0]:.2f}")
            rows.append(row)
    out.append(
        speed.md_table(
            [
                "condition",
                "model",
                "aekit s/epoch",
                "aekit slowdown",
                "aekit fair",
                "aekit ×fair",
                "Keras s/epoch",
                "Keras slowdown",
                "Keras fair",
                "Keras ×fair",
                "aekit / Keras",
                "aekit spin",
                "other cores (aekit epochs)",
                "load average",
            ],
            rows,
        )
    )
    variants = [s for s in r["stacks"] if "@" in s]
    if variants:
        out += [
            "",
            "### aekit variants (other OpenMP/thread environments, taking turns beside the stacks above)",
            "",
            ", ".join(f"`{s}`: {r['variant_env'][s.partition('@')[2]]}" for s in variants),
            "",
        ]
        rows = [
            [cond, x["model"], s, f"{x[s]['median_epoch_s']:.2f}"]
            + [f"{x[s][k]:.2f}" if k in x[s] else "—" for k in ("slowdown", "over_fair")]
            + [f"{x[s]['median_epoch_s'] / x['aekit']['median_epoch_s']:.2f}", spin(x[s])]
            for cond, c in r["conditions"].items()
            for x in c["results"]
            for s in variants
            if s in x
        ]
        out.append(
            speed.md_table(
                ["condition", "model", "variant", "s/epoch", "slowdown", "×fair", "variant / aekit", "spin"], rows
            )
        )
    floors = [(cond, c, x) for cond, c in r["conditions"].items() for x in c["results"] if "floor" in x]
    if floors:
        out += [
            "",
            "### The floor under contention: the matrix products alone",
            "",
            "A worker taking turns beside the stacks above runs only the matrix products of the dense models' "
            "training step (`speed.py`'s floor: bare `torch.mm` into preallocated tensors), with aekit's thread "
            "count and OpenMP wait. Its slowdown is what PyTorch's thread team loses to the busy processes on "
            "the step's unavoidable arithmetic: a training step at that thread count cannot lose less.",
            "",
        ]
        rows = [
            [cond, x["model"], f"{x['floor']['median_epoch_s']:.2f}"]
            + [f"{x['floor'][k]:.2f}" if k in x["floor"] else "—" for k in ("slowdown", "fair_slowdown", "over_fair")]
            + [
                f"{x['aekit'].get('over_fair', float('nan')):.2f}",
                f"{x['aekit']['median_epoch_s'] / x['floor']['median_epoch_s']:.2f}",
                spin(x["floor"]),
            ]
            for cond, c, x in floors
        ]
        out.append(
            speed.md_table(
                [
                    "condition",
                    "model",
                    "floor s/epoch",
                    "floor slowdown",
                    "floor fair",
                    "floor ×fair",
                    "aekit ×fair",
                    "aekit / floor",
                    "floor spin",
                ],
                rows,
            )
        )
    out += ["", "## Per-epoch times (s)", ""]
    rows = [
        [cond, x["model"]]
        + [", ".join(f"{t:.2f}" for t in x[s]["epoch_times"]) if s in x else "—" for s in ("aekit", "keras")]
        for cond, c in r["conditions"].items()
        for x in c["results"]
    ]
    out += [speed.md_table(["condition", "model", "aekit", "Keras"], rows), ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description="aekit vs Keras training speed on a busy CPU")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per stack, model and condition (>= 2)")
    parser.add_argument("--samples", type=int, default=12800, help="MNIST training images per fit")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {','.join(MODELS)}")
    parser.add_argument("--conditions", default=",".join(CONDITIONS), help=f"from {','.join(CONDITIONS)}")
    parser.add_argument("--chunk", type=int, default=20, help="training steps per turn (0: whole epochs)")
    parser.add_argument("--no-keras", dest="keras", action="store_false", help="aekit only")
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the worker that times the dense models' bare matrix products (speed.py's floor) in each condition",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL:K=V[,K=V]",
        help="another aekit worker taking turns with this environment (K= unsets K); e.g. "
        "'libgomp:AEKIT_OMP_SPIN=0,GOMP_SPINCOUNT=' (libgomp's default spin), 'passive:OMP_WAIT_POLICY=PASSIVE'",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 epochs of 640 images, turns of 2 steps")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder for contention.md and .json")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.samples, args.chunk = 2, 640, 2
    try:
        args.variants = {
            label: {k: v or None for k, _, v in (kv.partition("=") for kv in env.split(",") if kv)}
            for label, _, env in (spec.partition(":") for spec in args.variant)
        }
    except ValueError:
        parser.error("--variant expects LABEL:K=V[,K=V]")
    args.models = [m for m in args.models.split(",") if m]
    args.conditions = [c for c in args.conditions.split(",") if c]
    if bad := [m for m in args.models if m not in MODELS] + [c for c in args.conditions if c not in CONDITIONS]:
        parser.error(f"unknown model(s)/condition(s) {bad}")
    if args.epochs < 2:
        parser.error("--epochs must be >= 2: epoch 1 includes warm-up and is not timed")
    note = ""
    if args.keras and not keras_available():
        args.keras = False
        note = "Keras/TensorFlow are not installed (pip install 'aekit[bench]'): aekit only."
    r = run(args)
    r.update(
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        command=" ".join([Path(sys.executable).name, *sys.argv]),
        machine=speed.machine(),
        versions=versions(r),
        git=speed.git_rev(),
        epochs=args.epochs,
        chunk=args.chunk,
        aekit_openmp=openmp_setting(),
        variant_env={k: ", ".join(f"{n}={v or '(unset)'}" for n, v in e.items()) for k, e in args.variants.items()},
        note=note,
    )
    derive(r, r["machine"]["usable_cpus"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "contention.json").write_text(json.dumps(r, indent=1) + "\n")
    (out / "contention.md").write_text(report(r))
    print(f"\nwrote {out / 'contention.md'}\n")
    print(report(r))


def openmp_setting() -> str:
    """The OpenMP/thread environment aekit's workers start from (each then decides its spin at ``import aekit``)."""
    keys = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "AEKIT_OMP_SPIN", "AEKIT_THREADS", "OMP_NUM_THREADS")
    return ", ".join(f"{k}={os.environ[k]}" for k in keys if k in os.environ) or "none set"


def spin(stack: dict) -> str:
    """How an aekit worker's threads waited: the ``GOMP_SPINCOUNT`` it ran with, or libgomp's default."""
    if "gomp_spincount" not in stack:
        return "—"
    seen = stack.get("openmp_choice", {}).get("others_runnable")
    seen = "" if seen is None else f"; {seen:g} other tasks runnable at import"
    return ("default" if stack["gomp_spincount"] is None else f"bounded ({stack['gomp_spincount']})") + seen


def versions(r: dict) -> dict:
    """From the workers' final messages (TensorFlow never loads in this process)."""
    v = {"python": platform.python_version()}
    for c in r["conditions"].values():
        for x in c["results"]:
            for stack in ("keras", "aekit"):
                v.update(x.get(stack, {}).get("versions", {}))
    if len(v) == 1:  # gridsearch only
        import torch

        import aekit

        v.update(torch=torch.__version__, aekit=aekit.__version__)
    return v


if __name__ == "__main__":
    main()
