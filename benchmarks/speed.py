"""Training / inference speed: aekit (PyTorch) vs the reference Keras models (TensorFlow).

Same recipes, same data, same machine, one invocation. For every model two worker
subprocesses are started, one per stack (TF and torch never share a process), and
they train in lockstep, taking turns of ``--chunk`` training steps (default 50, a
fraction of a second; 0 = whole epochs): aekit steps 1-50, Keras steps 1-50, aekit
steps 51-100, ... A worker blocks on its stdin between turns, so only one of them
computes at a time, and the machine's speed swings (on the shared 2-core machine
these come and go within seconds) hit both stacks alike. An epoch's time is the sum
of its turns' compute time.

    python benchmarks/speed.py                                  # full run, writes benchmarks/results/
    python benchmarks/speed.py --epochs 2 --samples 6000 --out /tmp/speed-quick

Reported per model: per-epoch training time (median of epochs 2..E; epoch 1
includes warm-up / graph tracing), samples/s, the aekit/Keras time ratio (of epoch
medians, of best epochs, and of paired turns), achieved FLOP/s as a fraction of the
measured float32 matmul peak, transform throughput, and each worker's peak RSS.
For the dense models a third worker takes turns too and runs only the step's matrix
products (``floor_worker``): the fastest any implementation of the same arithmetic
with PyTorch's BLAS could train here.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from aekit.threads import cpu_model

HERE = Path(__file__).resolve().parent
BASE_MODELS = ("dense", "sae", "conv", "denoising")  # "denoising" is optional
# "<model>-bf16": mixed precision on both sides (aekit precision="bfloat16", Keras policy "mixed_bfloat16")
MODELS = BASE_MODELS + tuple(f"{m}-bf16" for m in BASE_MODELS)
DEFAULT_MODELS = "dense,sae,conv,dense-bf16,sae-bf16,conv-bf16"
OTHER_LOAD_WARN = 0.25  # cores used by other processes during a timed epoch above which the report warns
TRANSFORM_BATCH = 4096  # aekit.transform's internal batch; Keras predict gets the same (and its default, 32)

# ----------------------------------------------------------------------------- FLOP model

DENSE = (784, 500, 300, 100, 2, 100, 300, 500, 784)
HEAD = (2, 64, 128, 10)
# (k, c_in, c_out, H_out, W_out) of every conv layer, the first layer first
CONV = ((3, 1, 32, 28, 28), (3, 32, 16, 14, 14), (3, 16, 16, 7, 7), (3, 16, 32, 14, 14), (3, 32, 1, 28, 28))
FLOP_FORMULA = (
    "training FLOPs/sample = 3·Σ_layers forward − forward(first layer): forward, input-gradient and "
    "weight-gradient products each cost one forward, and the first layer needs no input gradient. "
    "Dense layer forward = 2·in·out; conv layer forward = 2·k·k·c_in·c_out·H_out·W_out. "
    "Activations, pooling, up-sampling, losses and optimizer updates are not counted."
)


def base_model(model: str) -> tuple[str, bool]:
    """``"conv-bf16"`` -> ``("conv", True)``: the recipe and whether it runs in mixed bfloat16."""
    base, _, suffix = model.partition("-")
    return base, suffix == "bf16"


def forward_flops(model: str) -> list[int]:
    """Forward FLOPs per sample of every weight layer, first layer first."""
    model = base_model(model)[0]
    dense = lambda sizes: [2 * a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)]  # noqa: E731
    if model == "dense":
        return dense(DENSE)
    if model == "sae":
        return dense(DENSE) + dense(HEAD)
    return [2 * k * k * cin * cout * h * w for k, cin, cout, h, w in CONV]  # conv, denoising


def train_flops(model: str) -> int:
    f = forward_flops(model)
    return 3 * sum(f) - f[0]


# ----------------------------------------------------------------------------- worker side
# A worker prints protocol messages as '@@{json}' lines on stdout and waits for a
# 'go' line on stdin before each turn (and before the final measurements).


def send(msg: dict) -> None:
    print("@@" + json.dumps(msg), flush=True)


def wait_go() -> None:
    if sys.stdin.readline().strip() != "go":
        sys.exit(0)  # the driver went away


class Turns:
    """A worker's clock: compute time per epoch, paused while the other stack has its turn.

    ``step()`` after every training step, ``epoch_end()`` after every epoch. Every
    ``chunk`` steps (and at each epoch end) the worker reports, blocks until the next
    'go' and restarts the clock. Messages carry ``seg_s`` and ``seg_cpu``: the wall time
    of the segment just timed and this process's CPU time (all threads) during it.
    """

    def __init__(self, chunk: int) -> None:
        self.chunk, self.steps, self.epoch_s, self.epoch_cpu = chunk, 0, 0.0, 0.0

    def start(self) -> None:
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def _pause(self) -> dict[str, float]:
        seg = {"seg_cpu": time.process_time() - self.c0, "seg_s": time.perf_counter() - self.t0}
        self.epoch_s += seg["seg_s"]
        self.epoch_cpu += seg["seg_cpu"]
        return seg

    def step(self) -> None:
        self.steps += 1
        if self.chunk and self.steps % self.chunk == 0:
            send({"event": "turn", **self._pause()})
            wait_go()
            self.start()

    def epoch_end(self, epoch: int, loss: float) -> None:
        seg = self._pause()
        send(
            {
                "event": "epoch",
                "epoch": epoch + 1,
                "time": self.epoch_s,
                "loss": float(loss),
                "cpu": self.epoch_cpu,
                **seg,
            }
        )
        self.steps, self.epoch_s, self.epoch_cpu = 0, 0.0, 0.0
        wait_go()
        self.start()


def throughput(fn, n: int, repeats: int = 3) -> float:
    """Samples/s of ``fn()`` over ``n`` samples: one warm-up call, best of ``repeats``."""
    fn()
    best = min(_timed(fn) for _ in range(repeats))
    return n / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def peak_worker(threads: int) -> None:
    """Best float32 (and bfloat16) torch.mm FLOP/s over a few square sizes."""
    import torch

    torch.set_num_threads(threads)
    msg = {"event": "final", "threads": threads}
    for dtype, key in ((torch.float32, "peak_flops"), (torch.bfloat16, "peak_flops_bf16")):
        sizes = {}
        for n in (512, 1024, 2048, 3072, 4096):
            a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
            torch.mm(a, b)  # warm-up
            t = min(_timed(lambda: torch.mm(a, b)) for _ in range(3 if n >= 3072 else 5))  # noqa: B023
            sizes[n] = 2 * n**3 / t
        msg[key] = max(sizes.values())
        msg["by_size" if dtype == torch.float32 else "by_size_bf16"] = sizes
    msg["cpu"] = time.process_time()
    send(msg)


def aekit_worker(model: str, epochs: int, data: str, threads: int, chunk: int) -> None:
    import aekit  # noqa: I001 - before torch, as users are told: aekit chooses OpenMP's wait before torch loads
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    if threads:  # 0: aekit's own choice (aekit.threads)
        torch.set_num_threads(threads)
    d = np.load(data)
    X, y, X_test = d["X"], d["y"], d["X_test"]
    model, bf16 = base_model(model)
    common = {"epochs": epochs, "random_state": 0, "device": "cpu", "precision": "bfloat16" if bf16 else "float32"}
    if model == "dense":
        est = aekit.Autoencoder(**common)
    elif model == "sae":
        est = aekit.SupervisedAutoencoder(**common)
    else:  # conv, denoising: the presets (denoising: on-the-fly noise, batch 256)
        est = aekit.Autoencoder(**{**aekit.PRESETS[model], **common})

    turns = Turns(chunk)
    register_optimizer_step_post_hook(lambda *_: turns.step())  # after every training step
    est.set_params(callbacks=[lambda epoch, logs: turns.epoch_end(epoch, logs["loss"])])
    send({"event": "ready"})
    wait_go()
    turns.start()
    if model == "sae":
        est.fit(X, y)
    else:
        est.fit(X)
    send(
        {
            "event": "final",
            "params": sum(p.numel() for p in est.net_.parameters()),
            "batch_size": est.batch_size,
            "loss": est.history_["loss"],
            "transform": {"aekit.transform": throughput(lambda: est.transform(X_test), len(X_test))},
            "maxrss_mib": maxrss_mib(),
            "threads": torch.get_num_threads(),
            "gomp_spincount": os.environ.get("GOMP_SPINCOUNT"),  # None: libgomp's default spin
            "openmp_choice": dict(aekit.threads.OPENMP_CHOICE),  # what its import saw
            "versions": {"torch": torch.__version__, "aekit": aekit.__version__, "numpy": np.__version__},
        }
    )


def keras_worker(model: str, epochs: int, data: str, threads: int, chunk: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
    import keras
    import keras_reference as kr
    import tensorflow as tf

    if threads:  # 0: TensorFlow's own choice
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    d = np.load(data)
    X, y, X_test = d["X"], d["y"], d["X_test"]
    model, bf16 = base_model(model)
    if bf16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    net, encoder = kr.build(model)
    x, target = kr.fit_arrays(model, X, y, seed=0)
    x_test = kr.images(X_test) if model in ("conv", "denoising") else X_test

    turns = Turns(chunk)

    class Gate(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            turns.step()

        def on_epoch_end(self, epoch, logs=None):
            turns.epoch_end(epoch, logs["loss"])

    send({"event": "ready"})
    wait_go()
    turns.start()
    hist = net.fit(
        x, target, batch_size=kr.BATCH_SIZE[model], epochs=epochs, shuffle=True, verbose=0, callbacks=[Gate()]
    )
    predict = lambda bs: encoder.predict(x_test, batch_size=bs, verbose=0)  # noqa: E731
    send(
        {
            "event": "final",
            "params": int(net.count_params()),
            "batch_size": kr.BATCH_SIZE[model],
            "loss": [float(v) for v in hist.history["loss"]],
            "transform": {
                f"encoder.predict(batch_size={TRANSFORM_BATCH})": throughput(
                    lambda: predict(TRANSFORM_BATCH), len(x_test)
                ),
                "encoder.predict(batch_size=32, default)": throughput(lambda: predict(32), len(x_test)),
            },
            "maxrss_mib": maxrss_mib(),
            "threads": {
                "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            },
            "jit_compile": bool(net.jit_compile),
            "dtype_policy": keras.mixed_precision.global_policy().name,
            "versions": kr.versions(),
        }
    )


def dense_layers(model: str) -> list[tuple[int, int, int]]:
    """``(input layer index, in, out)`` of every dense layer: the body, then (SAE) the head off the 2-D code."""
    body = [
        (i - 1, a, b) for i, (a, b) in enumerate(zip(DENSE[:-1], DENSE[1:], strict=True))
    ]  # input of layer i is layer i-1's output
    if base_model(model)[0] != "sae":
        return body
    code = DENSE.index(2) - 1  # the layer whose output is the code
    head = [
        (code if j == 0 else len(body) + j - 1, a, b) for j, (a, b) in enumerate(zip(HEAD[:-1], HEAD[1:], strict=True))
    ]
    return body + head


def product_buffers(model: str, b: int, dtype: Any) -> list[dict[str, Any]]:
    """Preallocated operands of every dense layer's products at batch size ``b`` (random values, seed 0)."""
    import torch

    layers = dense_layers(model)
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: (torch.rand(*shape, generator=g) * 2 - 1).to(dtype)  # noqa: E731
    acts = [r(b, DENSE[0])] + [r(b, out) for _, _, out in layers]  # acts[i + 1]: layer i's output
    return [
        {
            "x": acts[src + 1],
            "W": r(out, fan_in),
            "y": acts[i + 1],
            "g": r(b, out),
            "dx": r(b, fan_in),
            "dW": r(out, fan_in),
        }
        for i, (src, fan_in, out) in enumerate(layers)
    ]


def run_products(layers: list[dict[str, Any]]) -> None:
    """One training step's matrix products on ``product_buffers``: forward, then weight and input gradients."""
    import torch

    for layer in layers:
        torch.mm(layer["x"], layer["W"].t(), out=layer["y"])
    for i, layer in reversed(list(enumerate(layers))):
        torch.mm(layer["g"].t(), layer["x"], out=layer["dW"])
        if i:  # the first layer needs no input gradient
            torch.mm(layer["g"], layer["W"], out=layer["dx"])


def floor_worker(model: str, epochs: int, data: str, threads: int, chunk: int) -> None:
    """The matrix products of the model's training step and nothing else: a lower bound on its step time.

    Per step, per dense layer: the forward product ``h @ W.T``, the weight gradient ``g.T @ h`` and (except for
    the first layer) the input gradient ``g @ W``: exactly the products the FLOP model counts, at the recipe's
    batch size, as bare ``torch.mm(..., out=...)`` calls on preallocated tensors (no activations, loss, bias,
    optimizer or autograd). Same turns and epochs as the training workers. ``threads`` 0 (contention.py):
    aekit's own choice of thread count and OpenMP wait, so the floor runs as aekit's products would.
    """
    if not threads:
        import aekit  # noqa: F401, I001 - before torch: its OpenMP wait for the machine's load now

    import torch

    if threads:
        torch.set_num_threads(threads)
    else:
        from aekit.threads import threads_for_run

        torch.set_num_threads(threads_for_run() or torch.get_num_threads())
    n = int(np.load(data)["X"].shape[0])
    dtype = torch.bfloat16 if base_model(model)[1] else torch.float32
    bs = 128  # the dense AE's and the SAE's batch size

    sizes = [bs] * (n // bs) + ([n % bs] if n % bs else [])
    bufs = {b: product_buffers(model, b, dtype) for b in set(sizes)}

    def step(b: int) -> None:
        run_products(bufs[b])

    for b in bufs:
        step(b)  # warm-up
    turns = Turns(chunk)
    send({"event": "ready"})
    wait_go()
    turns.start()
    for epoch in range(epochs):
        for b in sizes:
            step(b)
            turns.step()
        turns.epoch_end(epoch, 0.0)
    send(
        {
            "event": "final",
            "batch_size": bs,
            "products_per_step": 3 * len(dense_layers(model)) - 1,
            "maxrss_mib": maxrss_mib(),
            "threads": torch.get_num_threads(),
            "gomp_spincount": os.environ.get("GOMP_SPINCOUNT"),  # None: libgomp's default spin
            **({} if threads else {"openmp_choice": dict(sys.modules["aekit"].threads.OPENMP_CHOICE)}),
        }
    )


# ----------------------------------------------------------------------------- driver side


class Worker:
    """One worker subprocess; stderr (and stray stdout) go to a log file."""

    def __init__(
        self,
        role: str,
        args: argparse.Namespace,
        model: str = "",
        data: str = "",
        logdir: Path = Path("."),
        env: dict[str, str | None] | None = None,
        name: str = "",
    ):
        self.name = f"{name or role}-{model}" if model else role
        self.logpath = logdir / f"{self.name}.log"
        self.log = open(self.logpath, "w")  # noqa: SIM115
        cmd = [
            sys.executable,
            str(HERE / "speed.py"),
            "--worker",
            role,
            "--models",
            model or "dense",
            "--epochs",
            str(args.epochs),
            "--threads",
            str(args.threads),
            "--chunk",
            str(args.chunk),
            "--data",
            data,
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            # env: added to this process's environment; a None value unsets the variable
            env=None if env is None else {k: v for k, v in {**os.environ, **env}.items() if v is not None},
        )

    def read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("@@"):
                return json.loads(line[2:])
            self.log.write(line)
        self.log.flush()
        tail = "".join(self.logpath.read_text().splitlines(keepends=True)[-20:])
        raise RuntimeError(f"worker {self.name} exited with code {self.proc.wait()}; log tail:\n{tail}")

    def go(self) -> dict:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def busy_seconds() -> float:
    """CPU seconds all processes on the machine have used since boot (from /proc/stat; 0 elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def summarize(stack: dict, epoch_msgs: list[dict], samples: int, flops: int, peak: float) -> dict:
    """Add per-epoch times and derived speed numbers to a worker's final message."""
    stack.pop("event", None)
    times = [m["time"] for m in epoch_msgs]
    stack["epoch_times"] = times
    stack["epoch_cpu_cores"] = [m["cpu"] / m["time"] for m in epoch_msgs]  # this stack's CPU use while timed
    stack["epoch_other_load_cores"] = [m["other_load_cores"] for m in epoch_msgs]  # everything else on the machine
    steady = times[1:] or times  # epoch 1 includes warm-up
    stack["median_epoch_s"] = statistics.median(steady)
    stack["first_epoch_s"] = times[0]
    stack["samples_per_s"] = samples / stack["median_epoch_s"]
    stack["flops_per_s"] = flops * stack["samples_per_s"]
    stack["fraction_of_peak"] = stack["flops_per_s"] / peak
    return stack


def run_model(
    model: str, args: argparse.Namespace, data: str, samples: int, peak: dict[bool, float], logdir: Path
) -> dict:
    print(f"[{model}] starting workers", flush=True)
    stacks = tuple(getattr(args, "stacks", ("aekit", "keras")))  # benchmarks/contention.py may run aekit alone
    stacks += ("floor",) if args.floor and base_model(model)[0] in ("dense", "sae") else ()
    # a stack "aekit@label" is another aekit worker with the environment args.stack_env[label] (contention.py)
    workers: dict[str, Worker] = {}
    epochs: dict[str, list[dict]] = {stack: [] for stack in stacks}
    turns: dict[str, list[tuple[int, float]]] = {stack: [] for stack in stacks}  # (epoch, seconds) of every full turn
    acc = {stack: [0.0, 0.0, 0.0] for stack in stacks}  # machine busy s, wall s, own CPU s since the last epoch message
    try:
        for stack in stacks:  # one after another: a worker's start-up (its imports) is no load on the next one's
            workers[stack] = Worker(
                stack.partition("@")[0],
                args,
                model,
                data,
                logdir,
                env=getattr(args, "stack_env", {}).get(stack.partition("@")[2]),
                name=stack,
            )
            assert workers[stack].read()["event"] == "ready"
        while any(len(epochs[s]) < args.epochs for s in workers):
            for stack, w in workers.items():  # alternate turns: aekit, keras, aekit, ...
                if len(epochs[stack]) == args.epochs:
                    continue
                busy0, t0 = busy_seconds(), time.perf_counter()
                msg = w.go()
                a = acc[stack]
                a[0] += busy_seconds() - busy0
                a[1] += time.perf_counter() - t0
                a[2] += msg["seg_cpu"]
                if msg["event"] != "epoch":
                    turns[stack].append((len(epochs[stack]) + 1, msg["seg_s"]))
                    continue
                msg["other_load_cores"] = max(0.0, a[0] - a[2]) / a[1]  # other processes' CPU use meanwhile
                acc[stack] = [0.0, 0.0, 0.0]
                epochs[stack].append(msg)
                print(
                    f"[{model}] {stack:5s} epoch {msg['epoch']}/{args.epochs}: "
                    f"{msg['time']:.2f} s  loss {msg['loss']:.4f}  "
                    f"cpu {msg['cpu'] / msg['time']:.1f} cores, other load {msg['other_load_cores']:.1f} cores",
                    flush=True,
                )
        final = {stack: w.go() for stack, w in workers.items()}  # transform throughput, memory
    finally:
        for w in workers.values():
            w.close()
    flops = train_flops(model)
    res = {
        "model": model,
        "samples": samples,
        "epochs": args.epochs,
        "forward_flops_per_sample": sum(forward_flops(model)),
        "train_flops_per_sample": flops,
    }
    for stack in workers:
        res[stack] = summarize(final[stack], epochs[stack], samples, flops, peak[base_model(model)[1]])
    if "keras" not in workers:
        return res
    res["ratio_aekit_over_keras"] = res["aekit"]["median_epoch_s"] / res["keras"]["median_epoch_s"]
    res["paired_turn_ratios"] = paired_ratios(turns["aekit"], turns["keras"])
    if "floor" in workers:
        res["floor_over_keras"] = res["floor"]["median_epoch_s"] / res["keras"]["median_epoch_s"]
        res["aekit_over_floor"] = res["aekit"]["median_epoch_s"] / res["floor"]["median_epoch_s"]
        res["paired_turn_ratios_floor"] = paired_ratios(turns["floor"], turns["keras"])
    return res


def paired_ratios(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> list[float]:
    """time(a) / time(b) of the same full turn (the k-th of the same epoch), epochs 2..E: a turn and its
    partner ran a fraction of a second apart, so slower and faster phases of the machine cancel."""
    by_epoch: dict[int, tuple[list[float], list[float]]] = {}
    for side, turns in enumerate((a, b)):
        for epoch, secs in turns:
            by_epoch.setdefault(epoch, ([], []))[side].append(secs)
    steady = [e for e in sorted(by_epoch) if e > 1] or sorted(by_epoch)
    return [x / y for e in steady for x, y in zip(*by_epoch[e], strict=False)]


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) < 2:
        return (xs[0],) * 3 if xs else (float("nan"),) * 3
    q1, q2, q3 = statistics.quantiles(xs, n=4)
    return q1, q2, q3


def machine() -> dict:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "platform": platform.platform(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def git_rev() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=HERE.parent, capture_output=True, text=True
        ).stdout.strip()
        return rev + (" + uncommitted changes in src/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ----------------------------------------------------------------------------- report


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _iqr(xs: list[float]) -> str:
    if not xs:
        return "—"
    q1, q2, q3 = quartiles(xs)
    return f"{q2:.2f} [{q1:.2f}, {q3:.2f}]"


def _best(x: dict, stack: str) -> float:
    """Fastest steady epoch (2..E) of one stack in a result row."""
    times = x[stack]["epoch_times"]
    return min(times[1:] or times)


def report(r: dict) -> str:
    v, m, peak = r["versions"], r["machine"], r["peak"]
    out = [
        "# Training speed: aekit (PyTorch) vs reference Keras (TensorFlow)",
        "",
        f"- date: {r['date']}",
        f"- machine: {m['cpu']}, {m['usable_cpus']} usable of {m['logical_cpus']} logical CPUs, "
        f"{m['memory_gib']} GiB RAM; {m['platform']}",
        f"- versions: python {v['python']}, torch {v['torch']}, tensorflow {v['tensorflow']}, keras {v['keras']} "
        f"(backend {v['keras_backend']}), aekit {v['aekit']} (git {r['git']}), numpy {v['numpy']}",
        f"- threads: {r['threads']} (torch.set_num_threads; TF intra-op), float32 matmul peak "
        f"{peak['peak_flops'] / 1e9:.1f} GFLOP/s (best torch.mm over square sizes "
        f"{', '.join(map(str, peak['by_size']))}; "
        f"other load meanwhile {peak['other_load_cores']:.1f} cores); "
        f"bfloat16 matmul peak {peak['peak_flops_bf16'] / 1e9:.1f} GFLOP/s "
        "(the same sizes; the -bf16 rows' fraction of peak is of this one)",
        f"- command: `{r['command']}`",
        f"- {r['samples']} MNIST training samples, {r['epochs']} epochs per stack, two subprocesses "
        + ("(three for the dense models: the floor below) " if any("floor" in x for x in r["results"]) else "")
        + "taking turns of "
        + (
            f"{r['chunk']} training steps (aekit, Keras, aekit, ...); an epoch's time is the sum of its turns"
            if r.get("chunk")
            else "whole epochs (aekit, Keras, aekit, ...)"
        ),
        "",
    ]
    other = max(
        [peak["other_load_cores"]]
        + [c for x in r["results"] for s in ("aekit", "keras") for c in x[s]["epoch_other_load_cores"]]
    )
    if other > OTHER_LOAD_WARN:
        out += [
            f"**Warning: other processes used up to {other:.1f} CPU cores during timed epochs; "
            "these timings are disturbed. Re-run on an idle machine.**",
            "",
        ]
    out += [
        "## Training (per epoch)",
        "",
        "Median of epochs 2..E (epoch 1 shown separately: it includes set-up, "
        "warm-up and tf.function tracing). ratio = aekit time / Keras time (< 1: "
        "aekit faster). TensorFlow's epoch times can be bimodal on this machine (some epochs run at ~half its CPU use "
        "and take 2-3x longer), which moves a median; the best-epoch ratio (fastest of epochs 2..E on each side) "
        "is the conservative reading. Paired turns: the ratio of each aekit turn to the Keras turn right after it "
        "(the same steps of the same epoch, epochs 2..E), median [quartiles]: "
        "the reading least moved by the machine's slower and faster phases.",
        "",
    ]
    rows = []
    for x in r["results"]:
        a, k = x["aekit"], x["keras"]
        rows.append(
            [
                x["model"],
                f"{a['params']:,}" + ("" if a["params"] == k["params"] else f" / {k['params']:,}"),
                a["batch_size"],
                f"{a['median_epoch_s']:.2f}",
                f"{k['median_epoch_s']:.2f}",
                f"{x['ratio_aekit_over_keras']:.2f}",
                f"{_best(x, 'aekit') / _best(x, 'keras'):.2f}",
                _iqr(x.get("paired_turn_ratios", [])),
                f"{a['samples_per_s']:,.0f}",
                f"{k['samples_per_s']:,.0f}",
                f"{a['flops_per_s'] / 1e9:.1f} ({a['fraction_of_peak']:.0%})",
                f"{k['flops_per_s'] / 1e9:.1f} ({k['fraction_of_peak']:.0%})",
                f"{a['first_epoch_s']:.2f} / {k['first_epoch_s']:.2f}",
                f"{a['loss'][-1]:.4f} / {k['loss'][-1]:.4f}",
            ]
        )
    out.append(
        md_table(
            [
                "model",
                "params",
                "batch",
                "aekit s/epoch",
                "Keras s/epoch",
                "ratio",
                "ratio, best epochs",
                "ratio, paired turns",
                "aekit samples/s",
                "Keras samples/s",
                "aekit GFLOP/s (of peak)",
                "Keras GFLOP/s (of peak)",
                "epoch 1 s aekit / Keras",
                "final train loss aekit / Keras",
            ],
            rows,
        )
    )
    out += [
        "",
        "Rows ending in -bf16: the same recipe in mixed precision on both sides: aekit `precision='bfloat16'` "
        "(float32 weights, optimizer and loss; products in bfloat16: "
        "for dense and SAE the RMSprop step keeps bfloat16 working copies of the weights, "
        "bit-identical to torch.autocast, which the conv AE uses), Keras dtype policy `mixed_bfloat16`.",
        "",
    ]
    cross = {x["model"]: x for x in r["results"]}
    rows = [
        [
            m,
            f"{x['aekit']['median_epoch_s']:.2f}",
            f"{cross[m[:-5]]['keras']['median_epoch_s']:.2f}",
            f"{x['aekit']['median_epoch_s'] / cross[m[:-5]]['keras']['median_epoch_s']:.2f}",
            f"{_best(x, 'aekit') / _best(cross[m[:-5]], 'keras'):.2f}",
            f"{x['aekit']['loss'][-1]:.4f} / {cross[m[:-5]]['aekit']['loss'][-1]:.4f} / "
            f"{cross[m[:-5]]['keras']['loss'][-1]:.4f}",
        ]
        for m, x in cross.items()
        if m.endswith("-bf16") and m[:-5] in cross
    ]
    if rows:
        out += [
            "aekit in bfloat16 against the reference stack as the reference text runs it (Keras, float32), "
            "from the rows above (same run, not alternated with each other):",
            "",
        ]
        out.append(
            md_table(
                [
                    "model",
                    "aekit bf16 s/epoch",
                    "Keras float32 s/epoch",
                    "ratio",
                    "ratio, best epochs",
                    "final train loss aekit bf16 / aekit float32 / Keras float32",
                ],
                rows,
            )
        )
        out.append("")
    floors = [x for x in r["results"] if "floor" in x]
    if floors:
        out += [
            "### The floor: the matrix products alone",
            "",
            "A third worker takes its turns beside the two stacks and runs only the matrix products of the model's "
            "training step (forward, input and weight gradients at the recipe's batch size, bare `torch.mm` into "
            "preallocated tensors: no activations, loss, biases, optimizer or autograd). An implementation that keeps "
            "the arithmetic (dtype, batch size) and this BLAS (the one PyTorch ships) cannot be faster than it, so "
            "floor / Keras is the best ratio reachable here and the floor's fraction of the peak the best fraction.",
            "",
        ]
        rows = [
            [
                x["model"],
                f"{x['floor']['median_epoch_s']:.2f}",
                f"{x['floor']['flops_per_s'] / 1e9:.1f} ({x['floor']['fraction_of_peak']:.0%})",
                f"{x['floor_over_keras']:.2f}",
                _iqr(x.get("paired_turn_ratios_floor", [])),
                f"{x['aekit_over_floor']:.2f}",
                f"{x['ratio_aekit_over_keras']:.2f}",
            ]
            for x in floors
        ]
        out.append(
            md_table(
                [
                    "model",
                    "floor s/epoch",
                    "floor GFLOP/s (of peak)",
                    "floor / Keras",
                    "floor / Keras, paired turns",
                    "aekit / floor",
                    "aekit / Keras",
                ],
                rows,
            )
        )
        out.append("")
    out += [f"FLOP model: {FLOP_FORMULA}", ""]
    out.append(
        md_table(
            ["model", "forward MFLOP/sample", "training MFLOP/sample"],
            [
                [x["model"], f"{x['forward_flops_per_sample'] / 1e6:.3f}", f"{x['train_flops_per_sample'] / 1e6:.3f}"]
                for x in r["results"]
                if not base_model(x["model"])[1]
            ],
        )
    )
    out += [
        "",
        "## Transform (encoder) throughput, 10,000 test images",
        "",
        f"Best of 3 after a warm-up call. aekit.transform batches internally (by {TRANSFORM_BATCH} for dense models, "
        f"128 for conv ones); Keras encoder.predict is timed at batch {TRANSFORM_BATCH} and at its default (32).",
        "",
    ]
    rows = []
    for x in r["results"]:
        a, k = x["aekit"]["transform"], x["keras"]["transform"]
        ka, kd = (k[key] for key in k)
        rows.append(
            [x["model"], f"{a['aekit.transform']:,.0f}", f"{ka:,.0f}", f"{kd:,.0f}", f"{a['aekit.transform'] / ka:.2f}"]
        )
    out.append(
        md_table(
            [
                "model",
                "aekit samples/s",
                f"Keras samples/s (batch {TRANSFORM_BATCH})",
                "Keras samples/s (batch 32)",
                f"aekit / Keras (batch {TRANSFORM_BATCH})",
            ],
            rows,
        )
    )
    out += ["", "## Peak memory (max RSS of each worker process: runtime + data + model)", ""]
    out.append(
        md_table(
            ["model", "aekit MiB", "Keras MiB"],
            [
                [x["model"], f"{x['aekit']['maxrss_mib']:,.0f}", f"{x['keras']['maxrss_mib']:,.0f}"]
                for x in r["results"]
            ],
        )
    )
    out += [
        "",
        "## Per-epoch times (s)",
        "",
        "CPU = cores this stack kept busy during its timed epochs (mean); other = cores used meanwhile by "
        "every other process on the machine, hypervisor steal included (from /proc/stat; should be ~0).",
        "",
    ]
    cores = lambda xs: f"{statistics.mean(xs):.1f}"  # noqa: E731
    out.append(
        md_table(
            ["model", "aekit", "Keras", "CPU aekit / Keras", "other aekit / Keras"],
            [
                [
                    x["model"],
                    ", ".join(f"{t:.2f}" for t in x["aekit"]["epoch_times"]),
                    ", ".join(f"{t:.2f}" for t in x["keras"]["epoch_times"]),
                    f"{cores(x['aekit']['epoch_cpu_cores'])} / {cores(x['keras']['epoch_cpu_cores'])}",
                    f"{cores(x['aekit']['epoch_other_load_cores'])} / {cores(x['keras']['epoch_other_load_cores'])}",
                ]
                for x in r["results"]
            ],
        )
    )
    notes = [
        "aekit: `Autoencoder(epochs=E, random_state=0, device='cpu')`, `SupervisedAutoencoder(...)`, "
        "`Autoencoder(**PRESETS['conv'], ...)`; turns counted by a global optimizer step hook, "
        "epochs ended by a fit callback.",
        "Keras: `benchmarks/keras_reference.py` models, `model.fit(..., shuffle=True)` on NumPy arrays, "
        "turns counted by a callback's on_train_batch_end, epochs ended by on_epoch_end; "
        f"jit_compile={r['results'][0]['keras'].get('jit_compile')} (Keras 'auto' disables XLA on CPU-only machines).",
    ]
    if any(x["model"] == "denoising" for x in r["results"]):
        notes.append(
            "denoising: aekit corrupts every batch on the fly (inside the timed epoch); "
            "Keras trains on a noisy copy drawn once."
        )
    out += ["", "## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description="aekit vs Keras/TensorFlow training speed on MNIST")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per stack and model (the median skips epoch 1)")
    parser.add_argument("--samples", type=int, default=60000, help="first N MNIST training samples")
    parser.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated, from {','.join(MODELS)}")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder for speed.md and speed.json")
    parser.add_argument(
        "--threads", type=int, default=2, help="compute threads for torch and TF (intra-op); 0: each library's choice"
    )
    parser.add_argument(
        "--chunk", type=int, default=50, help="training steps per turn before the other stack's turn (0: whole epochs)"
    )
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the third worker that times the dense models' bare matrix products (the floor)",
    )
    parser.add_argument("--worker", choices=("aekit", "keras", "floor", "peak"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if bad := [m for m in models if m not in MODELS]:
        parser.error(f"unknown model(s) {bad}; choose from {MODELS}")

    if args.worker:  # ------------------------------------------------ a worker subprocess
        if args.worker == "peak":
            return peak_worker(args.threads)
        fn = {"aekit": aekit_worker, "keras": keras_worker, "floor": floor_worker}[args.worker]
        return fn(models[0], args.epochs, args.data, args.threads, args.chunk)

    # ------------------------------------------------------------------- the driver
    if args.epochs < 1 or args.samples < 1 or args.chunk < 0:
        parser.error("--epochs and --samples must be >= 1, --chunk >= 0")
    import aekit  # the driver only loads the data; training happens in the workers

    mnist = aekit.load_mnist(os.environ.get("AEKIT_MNIST_DIR"))
    samples = min(args.samples, len(mnist.X_train))
    with tempfile.TemporaryDirectory(prefix="aekit-speed-") as tmp:
        data = str(Path(tmp) / "mnist.npz")
        np.savez(data, X=mnist.X_train[:samples], y=mnist.y_train[:samples], X_test=mnist.X_test, y_test=mnist.y_test)
        del mnist

        print("measuring the float32 matmul peak ...", flush=True)
        busy0, t0 = busy_seconds(), time.perf_counter()
        w = Worker("peak", args, logdir=Path(tmp))
        peak = w.read()
        w.close()
        peak["other_load_cores"] = max(0.0, busy_seconds() - busy0 - peak.pop("cpu")) / (time.perf_counter() - t0)
        peak.pop("event")
        print(
            f"peak {peak['peak_flops'] / 1e9:.1f} GFLOP/s float32, {peak['peak_flops_bf16'] / 1e9:.1f} bfloat16",
            flush=True,
        )

        peaks = {False: peak["peak_flops"], True: peak["peak_flops_bf16"]}
        results = [run_model(m, args, data, samples, peaks, Path(tmp)) for m in models]

    r = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "versions": {
            "python": platform.python_version(),
            **results[0]["keras"]["versions"],
            **results[0]["aekit"]["versions"],
        },
        "git": git_rev(),
        "threads": args.threads,
        "samples": samples,
        "epochs": args.epochs,
        "chunk": args.chunk,
        "peak": peak,
        "flop_formula": FLOP_FORMULA,
        "results": results,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.json").write_text(json.dumps(r, indent=1) + "\n")
    (out / "speed.md").write_text(report(r))
    print(f"\nwrote {out / 'speed.md'} and {out / 'speed.json'}\n")
    print(report(r))


if __name__ == "__main__":
    main()
