"""Pictures of the default structured grid's patterns, for docs/patterns.md.

    python -m harness.inputs.pattern_pictures docs/patterns      # one PNG per pattern, rows of 8 in float32

Each picture draws the rows a pattern makes along the last axis, one line per
value of its sweep (coloured by the parameter), on a signed log axis,
``sign(x) * log2(1 + |x|)``, so 1e-30 and 1e30 both show. Infinities are
drawn at the axis' ends, NaN as a gap. Needs matplotlib (the ``report`` extra).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch

from .patterns import input_patterns


def _signed_log(a: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.sign(a) * np.log2(1 + np.abs(a))


def _slug(name: str) -> str:
    name = name.replace("+inf", "plus inf").replace("-inf", "minus inf")
    return "_".join("".join(c if c.isalnum() else " " for c in name).split())


def draw(out_dir: str | Path, shape: tuple[int, ...] = (8,), dtype: torch.dtype = torch.float32) -> list[Path]:
    """One PNG per pattern of a real input of ``shape`` in ``dtype``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_pattern: dict[str, list] = {}
    for p in input_patterns(shape, dtype):
        by_pattern.setdefault(p.pattern, []).append(p)
    top = _signed_log(np.array(torch.finfo(dtype).max)) * 1.08
    written = []
    for name, points in by_pattern.items():
        fig, ax = plt.subplots(figsize=(4.2, 2.4), dpi=110)
        params = [p.parameter for p in points]
        finite = [v for v in params if not math.isnan(v)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        cmap = plt.get_cmap("viridis")
        for p in points:
            row = np.ravel(p.arrays[0])
            y = np.clip(_signed_log(row), -top, top)
            shade = 0.5 if math.isnan(p.parameter) or hi == lo else (p.parameter - lo) / (hi - lo)
            ax.plot(range(row.size), y, marker="o", ms=3, lw=0.8, color=cmap(shade), alpha=0.8)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylim(-top, top)
        ax.set_xticks(range(shape[-1]))
        ax.set_xlabel("entry of the row")
        ax.set_ylabel("sign(x) log2(1+|x|)")
        sweep = f"{points[0].parameter_name} in [{lo:.3g}, {hi:.3g}], {len(points)} rows" if finite else \
            f"{len(points)} rows"
        ax.set_title(f"{name}\n{sweep}", fontsize=8)
        fig.tight_layout()
        path = out / f"{_slug(name)}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in draw(sys.argv[1] if len(sys.argv) > 1 else "docs/patterns"):
        print(path)
