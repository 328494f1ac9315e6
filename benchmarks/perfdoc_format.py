"""Number and text formatting shared by the generated blocks of ``docs/PERFORMANCE.md``."""
from __future__ import annotations

import textwrap
from typing import List


def num(x: float) -> str:
    """Three significant digits, no exponent: 0.0123, 1.23, 12.3, 123, 1,234."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def wrap(text: str) -> List[str]:
    """A prose paragraph wrapped at 118 columns (tables and lists are not passed through here)."""
    return textwrap.wrap(text, width=118, break_long_words=False, break_on_hyphens=False)


def fmt_flops(f: float) -> str:
    for unit, scale in (("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if f >= scale:
            return f"{f / scale:.3g} {unit}"
    return f"{f:.3g} FLOP"


def commit_label(run: dict) -> str:
    """The run's commit, short, and whether the tree had uncommitted changes."""
    return (run.get("commit") or "unknown")[:12] + (" (with uncommitted changes)" if run.get("dirty") else "")
