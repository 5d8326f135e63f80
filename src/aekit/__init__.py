"""aekit: autoencoders for dimensionality reduction, denoising and visualization.

The public names are imported on first use (``aekit.Autoencoder`` imports torch then), so
that ``import aekit`` and ``aekit --version`` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aekit.threads import configure_openmp

configure_openmp()  # before anything loads torch: OpenMP reads its wait policy once, when it is loaded

__version__ = "0.1.0"

if TYPE_CHECKING:
    from aekit._utils import TrainingWarning
    from aekit.data import load_array, read_idx
    from aekit.estimators import PRESETS, Autoencoder, ParametricTSNE, SupervisedAutoencoder, labelled_accuracy, load
    from aekit.mnist import load_mnist
    from aekit.summary import dense_table, format_table, module_table

__all__ = [
    "PRESETS",
    "Autoencoder",
    "ParametricTSNE",
    "SupervisedAutoencoder",
    "TrainingWarning",
    "dense_table",
    "format_table",
    "labelled_accuracy",
    "load",
    "load_array",
    "load_mnist",
    "module_table",
    "read_idx",
    "__version__",
]

#: public name -> the module that defines it
_PUBLIC = {
    "load_array": "data",
    "load_mnist": "mnist",
    "read_idx": "data",
    "PRESETS": "estimators",
    "Autoencoder": "estimators",
    "SupervisedAutoencoder": "estimators",
    "ParametricTSNE": "estimators",
    "load": "estimators",
    "labelled_accuracy": "estimators",
    "TrainingWarning": "_utils",
    "dense_table": "summary",
    "format_table": "summary",
    "module_table": "summary",
}

_SUBMODULES = (  # every module of the package (the guide names e.g. aekit.data.load_rows, aekit.sources.ImageFolder)
    "batches",
    "commands",
    "csvdata",
    "data",
    "distributed",
    "estimators",
    "mnist",
    "outputs",
    "params",
    "resources",
    "scaling",
    "schema",
    "sources",
    "summary",
    "threads",
    "metrics",
    "health",
    "plots",
    "visualize",
    "tsne",
    "objectives",
    "optim",
    "training",
    "accel",
    "modules",
    "files",
    "base",
    "demo",
    "cli",
    "explore",
    "export",
)


def __getattr__(name: str) -> Any:  # aekit.Autoencoder, aekit.metrics, ... on first use (matplotlib only when plotting)
    import importlib

    if name in _PUBLIC:
        value = getattr(importlib.import_module(f"aekit.{_PUBLIC[name]}"), name)
        globals()[name] = value  # later look-ups are plain attribute reads
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"aekit.{name}")
    raise AttributeError(f"module 'aekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC, *_SUBMODULES})
