"""The lint habits (`make lint`) as tests, so that `make test` enforces them too.

mypy reads ``[tool.mypy]`` in pyproject.toml and keeps its cache in ``.mypy_cache/`` at the
repository root (shared with `make lint`): the first run on a machine analyses torch's
type hints (about a minute of CPU), later runs take seconds.
"""

import re
import subprocess
import sys

import pytest

from .conftest import ROOT


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip(tool, reason=f"{tool} is not installed (pip install -e '.[dev]')")
    return subprocess.run([sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_mypy_passes_on_src() -> None:
    done = _run("mypy")  # files and settings from pyproject.toml
    assert done.returncode == 0, done.stdout + done.stderr
    checked = re.search(r"Success: no issues found in (\d+) source files", done.stdout)
    assert checked, done.stdout
    # the configuration really covers the package, not an empty or mistyped path
    assert int(checked.group(1)) == len(list((ROOT / "src" / "aekit").glob("*.py")))


def test_ruff_passes() -> None:
    done = _run("ruff", "check", "src", "tests", "benchmarks")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_module_is_reached_from_a_plain_import_aekit() -> None:
    """The docs write aekit.data.load_rows, aekit.summary.dense_table, ...: each module loads on first use."""
    code = (
        "import aekit, pathlib; "
        "files = pathlib.Path(aekit.__file__).parent.glob('*.py'); "
        "names = sorted(p.stem for p in files if not p.stem.startswith('_')); "
        "print([n for n in names if not hasattr(aekit, n)])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
