"""Timing helpers and the figures table.

These machines are shared and noisy, so no figure is an absolute time: each is a ratio to a floor (the
cheapest way to do the same work) measured in the same run, ideally interleaved with it so both see the
same noise.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def timed(fn: Callable[[], Any]) -> float:
    """Wall seconds of one call of ``fn``."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def per_call(fn: Callable[[], Any], n: int) -> list[float]:
    """``n`` calls of ``fn``, each timed on its own (for medians that shrug off a stray slow call)."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def median(samples: Iterable[float]) -> float:
    values = list(samples)
    if not values:
        raise ValueError("median of no samples: run at least one repetition")
    return statistics.median(values)


def ratio(value: float, floor: float) -> float:
    """value / floor; a zero floor has no meaningful ratio, so say so instead of dividing."""
    if floor <= 0:
        raise ValueError(f"floor must be > 0 to take a ratio (got {floor}); report the absolute value "
                         "instead")
    return value / floor


@dataclass(frozen=True)
class Target:
    """``op`` is "<=" (lower is better) or ">=" (higher is better); ``bound`` applies to the row's ratio
    (or to its value when the row has no floor)."""

    op: str
    bound: float

    def __post_init__(self) -> None:
        if self.op not in ("<=", ">="):
            raise ValueError(f"target op {self.op!r} is not '<=' or '>='")

    def met(self, x: float) -> bool:
        return x <= self.bound if self.op == "<=" else x >= self.bound

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


@dataclass
class Row:
    """One figure: ``value`` in ``unit``, its ``floor`` in the same unit, and the ratio between them."""

    area: str
    figure: str
    value: float
    unit: str
    floor: float | None = None
    target: Target | None = None
    note: str = ""
    ratio: float | None = field(init=False, default=None)
    met: bool | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.floor is not None and self.floor > 0:
            self.ratio = ratio(self.value, self.floor)
        if self.target is not None:
            judged = self.ratio if self.ratio is not None else self.value
            self.met = self.target.met(judged)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["target"] = str(self.target) if self.target else None
        return d


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 0.01:
        return f"{x:.3f}"
    return f"{x:.2e}"


def print_table(rows: list[Row], title: str = "acrsync benchmarks", console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=title, show_lines=False)
    for name, justify in (("area", "left"), ("figure", "left"), ("value", "right"), ("unit", "left"),
                          ("floor", "right"), ("ratio", "right"), ("target", "left"), ("met", "center"),
                          ("note", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for r in rows:
        met = "-" if r.met is None else ("[green]yes[/]" if r.met else "[red]no[/]")
        table.add_row(r.area, r.figure, fmt(r.value), r.unit, fmt(r.floor), fmt(r.ratio),
                      str(r.target) if r.target else "none set", met, r.note)
    console.print(table)


def machine() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "argv": sys.argv[1:]}


def write_results(path: Path, rows: list[Row], raw: dict, *, quick: bool) -> None:
    doc = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "quick": quick, "machine": machine(),
           "rows": [r.to_dict() for r in rows], "raw": raw}
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
