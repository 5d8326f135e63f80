"""Shared by the benchmark scripts: the run's metadata and writing its results."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import sklearn
import torch

import aekit
from aekit.threads import numerics


def run_meta(**extra: object) -> dict:
    """Date, machine and versions for a results table."""
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{numerics()} of {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "aekit": aekit.__version__,
        **extra,
    }


def write_results(out: str | os.PathLike[str], name: str, data: dict, markdown: str) -> None:
    """``{out}/{name}.json`` and ``{out}/{name}.md``."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(data, indent=1))
    (out_dir / f"{name}.md").write_text(markdown)
    print(f"wrote {out_dir / f'{name}.md'}")
