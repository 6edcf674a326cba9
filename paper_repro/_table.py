"""Atomic writers for the reproduction tables (Markdown and JSON).

Every table holds a *comparison* block (quantity, the paper's value, ours, and
a plain verdict), optional detail tables, the choices that are ours and the
places where our numbers differ from the paper's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from estimators._files import atomic_replace

__all__ = ["Comparison", "Detail", "Report", "fmt", "render_markdown", "to_jsonable", "write_atomic", "write_table"]


@dataclass(frozen=True)
class Comparison:
    """One row of the paper-versus-ours block."""

    quantity: str
    paper: str
    ours: str
    verdict: str


@dataclass(frozen=True)
class Detail:
    """A titled detail table: ``header`` and ``rows`` of already formatted cells."""

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    note: str = ""


@dataclass(frozen=True)
class Report:
    """A reproduction's page: the comparison block, details, differences, choices and figure names."""

    title: str
    source: str
    comparisons: Sequence[Comparison]
    details: Sequence[Detail] = ()
    choices: Sequence[str] = ()
    differences: Sequence[str] = ()
    figures: Sequence[str] = field(default=())


def fmt(value, digits: int = 4) -> str:
    """A number for a table cell (``n/a`` for None/NaN)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    value = float(value)
    if not math.isfinite(value):
        return "n/a"
    if abs(value) < 1e-12:  # floating-point dust of a quantity that is zero
        return "0"
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"


def to_jsonable(obj):
    """Numpy scalars/arrays, tuples and dataclass-like mappings as plain JSON values."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and :func:`os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_replace(path, mode="w") as handle:
        handle.write(text)
    return path


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(r) for r in rows)]


def render_markdown(report: Report) -> str:
    """The Markdown page of a report."""
    out = [f"# {report.title}", "", f"Source: {report.source}", "", "## Paper versus ours", ""]
    out += _md_table(("quantity", "paper", "ours", "verdict"),
                     [(c.quantity, c.paper, c.ours, c.verdict) for c in report.comparisons])
    for detail in report.details:
        out += ["", f"## {detail.title}", ""]
        out += _md_table(detail.header, detail.rows)
        if detail.note:
            out += ["", detail.note]
    for heading, items in (("Where our numbers differ", report.differences),
                           ("Choices that are ours", report.choices)):
        if items:
            out += ["", f"## {heading}", ""] + [f"- {item}" for item in items]
    if report.figures:
        out += ["", "## Figures", ""] + [f"- `{name}`" for name in report.figures]
    return "\n".join(out) + "\n"


def write_table(out_dir: Path, report: Report, data: Mapping) -> tuple[Path, Path]:
    """Write ``table.md`` (from ``report``) and ``table.json`` (``data`` plus the report's text).

    The JSON holds ``data`` as given (numpy values converted) and adds
    ``comparison``, ``choices`` and ``differences`` unless ``data`` has them.
    """
    payload = dict(to_jsonable(data))
    payload.setdefault("comparison", [c.__dict__ for c in report.comparisons])
    payload.setdefault("choices", list(report.choices))
    payload.setdefault("differences", list(report.differences))
    payload.setdefault("figures", list(report.figures))
    md = write_atomic(Path(out_dir) / "table.md", render_markdown(report))
    js = write_atomic(Path(out_dir) / "table.json", json.dumps(payload, indent=2, allow_nan=False) + "\n")
    return md, js
