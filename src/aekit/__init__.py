"""aekit: autoencoders for dimensionality reduction, denoising and visualization."""

__version__ = "0.1.0"

TYPE_CHECKING = False  # (not typing's: `import aekit` imports nothing, see below; type checkers know the name)
if TYPE_CHECKING:
    from aekit.data import load_array, load_mnist, read_idx
    from aekit.estimators import PRESETS, Autoencoder, SupervisedAutoencoder, load
    from aekit.summary import dense_table, format_table, module_table

# the public names load on first use: `import aekit` (and the `aekit` command, before its Ctrl-C guard) stays light
_EXPORTS = {
    "load_array": "data", "load_mnist": "data", "read_idx": "data",
    "PRESETS": "estimators", "Autoencoder": "estimators", "SupervisedAutoencoder": "estimators", "load": "estimators",
    "dense_table": "summary", "format_table": "summary", "module_table": "summary",
}

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

_SUBMODULES = ("metrics", "plots", "visualize", "objectives", "training", "modules", "files", "demo", "cli", "explore", "export", "outputs")


def __getattr__(name: str):  # noqa: ANN202 - aekit.metrics, aekit.plots, ... on first use (matplotlib only when plotting)
    import importlib

    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"aekit.{_EXPORTS[name]}"), name)
        globals()[name] = value  # once loaded, a plain attribute
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"aekit.{name}")
    raise AttributeError(f"module 'aekit' has no attribute {name!r}")
