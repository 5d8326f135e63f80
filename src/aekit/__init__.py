"""aekit: autoencoders for dimensionality reduction, denoising and visualization."""

from types import ModuleType

__version__ = "0.1.0"

from aekit.data import load_array, load_mnist, read_idx  # noqa: E402
from aekit.estimators import PRESETS, Autoencoder, SupervisedAutoencoder, load  # noqa: E402
from aekit.summary import dense_table, format_table, module_table  # noqa: E402

__all__ = [
    "PRESETS",
    "Autoencoder",
    "SupervisedAutoencoder",
    "dense_table",
    "format_table",
    "load",
    "load_array",
    "load_mnist",
    "module_table",
    "read_idx",
    "__version__",
]

_SUBMODULES = (
    "metrics", "plots", "visualize", "objectives", "optim", "training", "accel", "modules", "files", "demo", "cli",
    "explore", "export",
)


def __getattr__(name: str) -> ModuleType:  # aekit.metrics, aekit.plots, ... on first use (matplotlib only when plotting)
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"aekit.{name}")
    raise AttributeError(f"module 'aekit' has no attribute {name!r}")
