"""Data larger than memory: one epoch of the reference dense AE streamed from a memory-mapped .npy.

Builds a synthetic uint8 ``(N, 784)`` ``.npy`` from the MNIST training images (random shifts of
up to 2 pixels and Gaussian pixel noise, written in chunks: it never sits in memory), then,
each in its own subprocess so that its peak resident memory (VmHWM) is its own:

- ``stream``: one epoch of the reference dense AE (``Autoencoder(data_loading="stream")``) on
  all N rows, memory-mapped;
- ``memory`` and ``stream-slice``: one epoch on the first ``--slice`` rows, in memory (the
  reference path) and streamed, side by side: the throughput ratio;
- ``embed``: ``aekit embed`` of all N rows into a ``.npy`` (written chunk by chunk);
- ``--ddp ROWS``: one epoch of the reference dense AE on the first ROWS MNIST training images,
  in memory, by one process (with all cores' threads, and with one thread) and by 2 data-parallel
  gloo processes under ``torch.distributed.run`` (the cores shared out), with the largest
  difference of their codes.

    python benchmarks/scale.py --rows 1000000 --data /tmp/scale.npy
    python benchmarks/scale.py --rows 10000000 --data /big/disk/scale.npy   # ~7.5 GB on disk
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import run_meta, write_results

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 100_000


def make_data(path: Path, n: int, seed: int = 0) -> None:
    """``n`` MNIST-like uint8 rows: a random training image, shifted by up to 2 pixels, plus noise (std 12)."""
    from aekit.mnist import load_mnist

    images = load_mnist().X_train.reshape(-1, 28, 28)
    images = (images * 255).round().astype(np.uint8) if images.dtype != np.uint8 else images
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, 784))
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        pick = images[rng.integers(0, len(images), m)].astype(np.int16)
        dy, dx = rng.integers(-2, 3, 2)  # one shift per chunk keeps this fast; chunks differ
        pick = np.roll(pick, (int(dy), int(dx)), axis=(1, 2))
        pick += rng.normal(0, 12, pick.shape).astype(np.int16)
        out[start : start + m] = np.clip(pick, 0, 255).astype(np.uint8).reshape(m, 784)
    out.flush()
    del out


def _vmhwm() -> int:
    """Peak resident memory of this process, bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def worker(kind: str, data: Path, rows: int, model: Path) -> None:
    """One measurement in this process; prints a JSON line."""
    import aekit

    X = np.load(data, mmap_mode="r")[:rows]
    mode = {"stream": "stream", "stream-slice": "stream", "memory": "memory"}[kind]
    if mode == "memory":
        X = np.array(X)  # the reference path reads an array in memory
    est = aekit.Autoencoder(epochs=1, random_state=0, data_loading=mode, compile=False)
    t0 = time.perf_counter()
    est.fit(X)
    fit_s = time.perf_counter() - t0
    if kind == "stream":
        est.save(model)
    epoch_s = est.history_["time"][0]
    print(
        json.dumps(
            {
                "kind": kind,
                "rows": int(X.shape[0]),
                "fit_s": fit_s,
                "epoch_s": epoch_s,
                "samples_per_s": X.shape[0] / epoch_s,
                "loss": est.history_["loss"][0],
                "peak_rss": _vmhwm(),
            }
        )
    )


def ddp_worker(rows: int, codes: Path) -> None:
    """One epoch on ``rows`` MNIST images, in memory; under torchrun rank 0 reports (a JSON line) and saves codes."""
    import aekit
    from aekit import distributed
    from aekit.mnist import load_mnist

    X = load_mnist().X_train[:rows]
    est = aekit.Autoencoder(epochs=1, random_state=0, data_loading="memory", compile=False, device="cpu")
    est.fit(X)
    if distributed.is_writer():
        np.save(codes, est.transform(X))
        ranks = distributed.world_size()
        epoch_s = est.history_["time"][0]
        threads = os.environ.get("OMP_NUM_THREADS")
        loss = est.history_["loss"][0]
        row = {"kind": f"ddp-{ranks}x{threads}", "rows": rows, "ranks": ranks, "epoch_s": epoch_s, "loss": loss}
        print(json.dumps({**row, "samples_per_s": rows / epoch_s, "threads": threads}))


def ddp_compare(rows: int, work: Path) -> list[dict]:
    """The reference epoch by one process (all cores' threads, then one) and by 2 ranks (cores shared out)."""
    results = []
    cores = os.cpu_count() or 1
    for ranks, threads in ((1, cores), (1, 1), (2, max(1, cores // 2))):
        codes = work / f"ddp_codes_{ranks}x{threads}.npy"
        head = [sys.executable] if ranks == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        head += [] if ranks == 1 else [f"--nproc-per-node={ranks}"]
        cmd = [*head, __file__, "--worker", "ddp", "--rows", str(rows), "--codes", str(codes)]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": str(threads)}
        load = os.getloadavg()[0]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        results.append({**json.loads(out.strip().splitlines()[-1]), "load_before": load})
        print(results[-1], flush=True)
    one = np.load(work / f"ddp_codes_1x{cores}.npy")
    results[-1]["max_code_diff"] = float(np.abs(one - np.load(work / f"ddp_codes_{results[-1]['kind'][4:]}.npy")).max())
    return results


def tsne_worker(data: Path, rows: int, fit: int) -> None:
    """AE(20) -> t-SNE on ``rows`` rows: t-SNE fitted on all of them (fit=0) or on ``fit``, the rest placed."""
    import aekit
    from aekit.visualize import AETSNE

    X = np.load(data, mmap_mode="r")[:rows]
    ae = aekit.Autoencoder(**aekit.PRESETS["dense20"], epochs=1, random_state=0).fit(np.asarray(X))
    vis = AETSNE(ae, max_fit_samples=fit or None, random_state=0).fit(X)
    print(
        json.dumps(
            {"kind": f"tsne-{fit or 'all'}", "rows": rows, "fit": fit or rows, **vis.timings_, "peak_rss": _vmhwm()}
        )
    )


def run_child(cmd: list[str]) -> tuple[str, int, float]:
    """Run ``cmd``; its stdout, peak RSS from wait4 (bytes; includes the parent's at fork) and wall seconds."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode})")
    return out, usage.ru_maxrss * 1024, time.perf_counter() - t0


def measure(kind: str, data: Path, rows: int, model: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--data", str(data), "--rows", str(rows), "--model", str(model)]
    out, _, _ = run_child(cmd)
    result = json.loads(out.strip().splitlines()[-1])
    print(result, flush=True)
    return result


def embed(data: Path, model: Path, codes: Path) -> dict:
    """``aekit embed`` of every row, run in a worker process (its own VmHWM, not the parent's at fork)."""
    codes.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--worker", "embed", "--data", str(data), "--model", str(model)]
    out, _, wall = run_child(cmd + ["--codes", str(codes)])
    result = json.loads(out.strip().splitlines()[-1])
    result["wall_s"] = wall
    print(result, flush=True)
    return result


def embed_worker(data: Path, model: Path, codes: Path) -> None:
    from aekit.cli import main

    t0 = time.perf_counter()
    rc = main(["embed", str(model), str(data), "--out", str(codes)])
    seconds = time.perf_counter() - t0
    n = np.load(codes, mmap_mode="r").shape[0]
    print(
        json.dumps(
            {
                "kind": "embed",
                "rc": rc,
                "rows": n,
                "embed_s": seconds,
                "samples_per_s": n / seconds,
                "peak_rss": _vmhwm(),
            }
        )
    )


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def markdown(meta: dict, results: list[dict], args: argparse.Namespace, data_bytes: int) -> str:
    by = {r["kind"]: r for r in results}
    lines = [
        "# Data larger than memory: streaming a memory-mapped .npy",
        "",
        *(f"- {k}: {v}" for k, v in meta.items()),
        f"- command: `python benchmarks/scale.py --rows {args.rows} --slice {args.slice}`",
        f"- data: synthetic uint8 ({args.rows:,}, 784) .npy, {gb(data_bytes)} on disk, built from the MNIST training "
        "images (random shifts of up to 2 pixels, Gaussian noise std 12), written in chunks",
        "- model: the reference dense AE (784-500-300-100-2, RMSprop, batch 128), one epoch, `compile=False` on both "
        "paths; each row is its own subprocess; peak RSS is the process's VmHWM",
        "",
        "## One epoch",
        "",
        "| run | rows | epoch s | samples/s | peak RSS | train loss |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("stream", "memory", "stream-slice"):
        r = by.get(kind)
        if r:
            lines.append(
                f"| {kind} | {r['rows']:,} | {r['epoch_s']:.1f} | {r['samples_per_s']:,.0f} | {gb(r['peak_rss'])} | "
                f"{r['loss']:.4f} |"
            )
    if "memory" in by and "stream-slice" in by:
        ratio = by["stream-slice"]["samples_per_s"] / by["memory"]["samples_per_s"]
        lines += ["", f"Throughput, streamed / in memory, on the same {args.slice:,} rows: **{ratio:.2f}**."]
    if "embed" in by:
        r = by["embed"]
        lines += [
            "",
            "## aekit embed (all rows, codes written chunk by chunk into a .npy)",
            "",
            "| rows | embed s | samples/s | wall s (with start-up) | peak RSS |",
            "|---|---|---|---|---|",
            f"| {r['rows']:,} | {r['embed_s']:.1f} | {r['samples_per_s']:,.0f} | {r['wall_s']:.1f} | "
            f"{gb(r['peak_rss'])} |",
        ]
    tsne = [r for r in results if r["kind"].startswith("tsne")]
    if tsne:
        lines += [
            "",
            "## AE(20) -> t-SNE at large N: map fitted on a subsample, the rest placed (`AETSNE(max_fit_samples=)`)",
            "",
            "| rows | t-SNE fitted on | t-SNE fit s | placement s | total t-SNE s | peak RSS |",
            "|---|---|---|---|---|---|",
        ]
        for r in tsne:
            lines.append(
                f"| {r['rows']:,} | {r['fit']:,} | {r['tsne_s']:.1f} | {r['placement_s']:.1f} | "
                f"{r['tsne_s'] + r['placement_s']:.1f} | {gb(r['peak_rss'])} |"
            )
    ddp = [r for r in results if r["kind"].startswith("ddp")]
    if len(ddp) == 3:
        lines += ["", *ddp_markdown(ddp)]
    if args.note:
        lines += ["", args.note]
    return "\n".join(lines) + "\n"


def ddp_markdown(ddp: list[dict]) -> list[str]:
    """The data-parallel section: one process (all threads, one thread), then 2 ranks."""
    many, single, two = ddp
    lines = [
        "## Data-parallel: 2 gloo ranks against one process, on the same cores",
        "",
        f"The reference dense AE, one epoch on the first {two['rows']:,} MNIST training images, in memory; "
        "each run its own process(es), one after the other; 2 ranks through `torch.distributed.run --standalone`.",
        "",
        "| run | threads per process | load average before | epoch s | samples/s | train loss |",
        "|---|---|---|---|---|---|",
    ]
    for r in ddp:
        lines.append(
            f"| {r['ranks']} process{'es' if r['ranks'] > 1 else ''} | {r['threads']} | {r['load_before']:.1f} | "
            f"{r['epoch_s']:.1f} | {r['samples_per_s']:,.0f} | {r['loss']:.6f} |"
        )
    best = max(many["samples_per_s"], single["samples_per_s"])
    lines += [
        "",
        f"Throughput, 2 ranks / the faster single process: **{two['samples_per_s'] / best:.2f}**; largest "
        f"difference between the codes of the 2-rank model and the single process's: {two['max_code_diff']:.2g}.",
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--slice", type=int, default=200_000, help="rows of the side-by-side throughput comparison")
    ap.add_argument("--data", type=Path, default=Path("scale.npy"))
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--skip", nargs="*", default=[], help="runs to skip: stream, memory, stream-slice, embed")
    ap.add_argument("--note", default="", help="a line appended to the report (e.g. why N is smaller)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--codes", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--tsne-fit", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--ddp", type=int, metavar="ROWS", help="also 2 data-parallel ranks vs one process on ROWS rows")
    ap.add_argument(
        "--tsne",
        nargs=2,
        type=int,
        metavar=("ROWS", "FIT"),
        help="also AE(20) -> t-SNE on ROWS rows: exact (all rows) vs fitted on FIT rows with the rest placed",
    )
    args = ap.parse_args()
    model = args.model or args.data.with_suffix(".model.safetensors")
    if args.worker == "tsne":
        tsne_worker(args.data, args.rows, args.tsne_fit)
        return
    if args.worker == "ddp":
        ddp_worker(args.rows, args.codes)
        return
    if args.worker == "embed":
        embed_worker(args.data, model, args.codes)
        return
    if args.worker:
        worker(args.worker, args.data, args.rows, model)
        return
    if not args.data.exists() or np.load(args.data, mmap_mode="r").shape[0] < args.rows:
        t0 = time.perf_counter()
        make_data(args.data, args.rows)
        print(f"built {args.data} in {time.perf_counter() - t0:.0f} s", flush=True)
    results = []
    for kind, rows in (("memory", args.slice), ("stream-slice", args.slice), ("stream", args.rows)):
        if kind not in args.skip:
            results.append(measure(kind, args.data, rows, model))
    if "embed" not in args.skip:
        results.append(embed(args.data, model, args.data.with_suffix(".codes.npy")))
    if args.tsne:
        for fit in (0, args.tsne[1]):
            cmd = [sys.executable, __file__, "--worker", "tsne", "--data", str(args.data), "--rows", str(args.tsne[0])]
            out, _, _ = run_child(cmd + ["--tsne-fit", str(fit)])
            results.append(json.loads(out.strip().splitlines()[-1]))
            print(results[-1], flush=True)
    if args.ddp:
        results += ddp_compare(args.ddp, args.data.parent)
    meta = run_meta(threads=os.cpu_count())
    write_results(
        args.out, "scale", {"meta": meta, "results": results}, markdown(meta, results, args, args.data.stat().st_size)
    )


if __name__ == "__main__":
    main()
