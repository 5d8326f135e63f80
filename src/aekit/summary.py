"""Parameter tables: weights, biases and totals per layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from aekit._utils import InputError


@dataclass(frozen=True)
class LayerRow:
    name: str  # e.g. "encoder.0 Linear(784 → 100)"
    weights: int
    biases: int
    other: int = 0  # e.g. BatchNorm scale/shift

    @property
    def total(self) -> int:
        return self.weights + self.biases + self.other


def dense_table(sizes: Sequence[int]) -> list[LayerRow]:
    """Rows for a chain of Dense layers ``sizes[0] → sizes[1] → ...``.

    >>> sum(r.total for r in dense_table([784, 100, 20, 100, 784]))
    161804
    """
    sizes = list(sizes)
    if len(sizes) < 2 or not all(isinstance(s, int) and s >= 1 for s in sizes):
        raise InputError(f"layer sizes {sizes} must be at least two positive integers, e.g. 784,100,20,100,784")
    return [LayerRow(f"Dense {a} → {b}", a * b, b) for a, b in zip(sizes[:-1], sizes[1:], strict=False)]


def module_table(module: nn.Module) -> list[LayerRow]:
    """Rows for every leaf module of ``module`` that owns parameters."""
    rows = []
    for name, m in module.named_modules():
        own = list(m.named_parameters(recurse=False))
        if not own:
            continue
        w = sum(p.numel() for n, p in own if n == "weight" and not isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)))
        b = sum(p.numel() for n, p in own if n == "bias" and not isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)))
        other = sum(p.numel() for _, p in own) - w - b
        rows.append(LayerRow(f"{name} {_describe(m)}", w, b, other))
    return rows


def _describe(m: nn.Module) -> str:
    if isinstance(m, nn.Linear):
        return f"Dense {m.in_features} → {m.out_features}"
    if isinstance(m, nn.Conv2d):
        k = "×".join(map(str, m.kernel_size))
        up = getattr(m, "upsample", 1)
        return ("" if up == 1 else f"UpSample ×{up} → ") + f"Conv2D {m.in_channels} → {m.out_channels} {k}"
    return type(m).__name__


def format_table(rows: Sequence[LayerRow]) -> str:
    """A plain-text table with a total line."""
    width = max([len(r.name) for r in rows] + [5])
    has_other = any(r.other for r in rows)
    head = (
        f"{'layer':<{width}}  {'weights':>10}  {'biases':>8}"
        + (f"  {'other':>8}" if has_other else "")
        + f"  {'total':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.name:<{width}}  {r.weights:>10,}  {r.biases:>8,}"
            + (f"  {r.other:>8,}" if has_other else "")
            + f"  {r.total:>10,}"
        )
    lines.append("-" * len(head))
    tw, tb, to = sum(r.weights for r in rows), sum(r.biases for r in rows), sum(r.other for r in rows)
    lines.append(
        f"{'total':<{width}}  {tw:>10,}  {tb:>8,}" + (f"  {to:>8,}" if has_other else "") + f"  {tw + tb + to:>10,}"
    )
    return "\n".join(lines)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
