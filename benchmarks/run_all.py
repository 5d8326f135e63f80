"""Run every benchmark in turn (``make bench``).

A plain list of commands, run from the repository root; add new benchmarks to
``COMMANDS``. Extra arguments are passed to none of them: run a script directly
to change its flags (see benchmarks/README.md).
"""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

COMMANDS = [
    [PY, "benchmarks/speed.py"],  # aekit vs Keras/TF training + transform speed -> benchmarks/results/speed.{md,json}
    [PY, "benchmarks/contention.py"],  # speed on a busy CPU, quiet / busy / GridSearchCV -> results/contention.*
    [PY, "benchmarks/quality.py"],  # the reference claims, aekit beside Keras -> benchmarks/results/quality.{md,json}
    [
        PY,
        "benchmarks/tsne.py",
    ],  # AE -> t-SNE vs the other routes, openTSNE and scikit-learn -> benchmarks/results/tsne.{md,json}
    [PY, "benchmarks/small_data.py"],  # defaults on small sklearn sets vs PCA/openTSNE/UMAP -> results/small_data.*
    [PY, "benchmarks/small_maps.py"],  # parametric t-SNE on those sets, epochs auto vs 30 -> results/small_maps.*
]
GPU_COMMANDS = [
    [PY, "benchmarks/gpu.py"],  # aekit on a CUDA GPU, eager vs compiled -> benchmarks/results/gpu.{md,json}
]


def main() -> int:
    import torch

    failed = []
    for cmd in COMMANDS + (GPU_COMMANDS if torch.cuda.is_available() else []):
        print(f"\n==> {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=ROOT).returncode
        print(
            f"<== {' '.join(cmd[1:])}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {time.perf_counter() - t0:.0f} "
            "s",
            flush=True,
        )
        if rc:
            failed.append(cmd)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
