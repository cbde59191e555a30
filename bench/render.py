"""The ratio rows rendered: the fixed-width (Markdown) table printed and the PNG bar chart.

Split from :mod:`bench.report`, which builds the rows and re-exports these functions, so the
arithmetic of the ratios and the way they are drawn can be read (and changed) separately.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.report import Row


def table(table_rows: list[Row]) -> str:
    """A fixed-width text table (also valid as the body of a Markdown table)."""
    header = ("metric", "unit", "LWR", "Pulsar 0.16", "LWR advantage", "target", "met")
    lines = [header] + [
        (
            r.metric,
            r.unit,
            _fmt(r.lwr),
            _fmt(r.pulsar),
            "" if r.advantage is None else f"{r.advantage:g}x",
            r.target,
            "" if r.met is None else ("yes" if r.met else "NO"),
        )
        for r in table_rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in lines
    ]
    rendered.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(rendered)


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:g}" if abs(value) < 10000 else f"{value:.0f}"


def as_dicts(table_rows: list[Row]) -> list[dict[str, Any]]:
    return [asdict(r) for r in table_rows]


def plot(table_rows: list[Row], path: Path, title: str) -> None:
    """Horizontal bars of LWR's advantage per metric (log scale), target marked on each bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in table_rows if r.advantage is not None]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(shown) + 1.5))
    labels = [r.metric for r in shown]
    values = [r.advantage or 0.0 for r in shown]
    colors = ["tab:gray" if r.met is None else ("tab:green" if r.met else "tab:red") for r in shown]
    ax.barh(labels, values, color=colors)
    for index, r in enumerate(shown):
        goal = _target_value(r.target)
        if goal is not None:
            ax.plot([goal, goal], [index - 0.4, index + 0.4], color="black", linewidth=2)
        ax.text(values[index], index, f" {values[index]:g}x", va="center", fontsize=8)
    ax.axvline(1.0, color="black", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("LWR advantage over Pulsar 0.16 (x, log scale; black tick = target)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _target_value(text: str) -> float | None:
    if text.startswith(">= ") and text.endswith("x"):
        return float(text[3:-1])
    if text == "> 1x":
        return 1.0
    return None
