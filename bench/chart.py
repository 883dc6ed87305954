"""Horizontal bar chart of the benchmark's throughput: the pipeline's steps next to reference rates."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.patches import Patch

STEP_COLOUR = "#1f77b4"
END_TO_END_COLOUR = "#0b3d6b"
REFERENCE_COLOUR = "#ff7f0e"


def _format_rate(rate: float) -> str:
    # Three significant digits; the thresholds sit where rounding would carry into the next unit.
    if rate >= 999_500:
        return f"{rate / 1_000_000:,.3g} M/s"
    if rate >= 999.5:
        return f"{rate / 1_000:.3g} k/s"
    return f"{rate:.3g} /s"


def write_chart(
    path: Path,
    steps: list[tuple[str, float]],
    references: list[tuple[str, float]],
    title: str,
) -> None:
    """Write a PNG (about 1000x500 px) with one bar per step and per reference, in events/s.

    ``steps`` are the pipeline's steps, an "end to end" entry among them, drawn in blue (the end
    to end bar darker); ``references`` are other rates to compare with, drawn in orange below them.
    The x axis is logarithmic so rates orders of magnitude apart stay readable.
    """
    labels = [name for name, _ in steps] + [name for name, _ in references]
    rates = [rate for _, rate in steps] + [rate for _, rate in references]
    colours = [END_TO_END_COLOUR if name == "end to end" else STEP_COLOUR for name, _ in steps]
    colours += [REFERENCE_COLOUR] * len(references)
    if not rates:
        raise ValueError("nothing to draw: no steps and no references")
    if any(rate <= 0 for rate in rates):
        raise ValueError(f"rates must be positive on a log axis: {rates}")

    fig, ax = plt.subplots(figsize=(10, 5), dpi=100)
    try:
        positions = list(range(len(labels)))
        bars = ax.barh(positions, rates, color=colours)
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()
        ax.set_xscale("log")
        # Room to the right of the longest bar for its label, and a left edge below the shortest bar.
        ax.set_xlim(min(rates) / 3, max(rates) * 8)
        ax.set_xlabel("events/s (log scale)")
        ax.set_title(title)
        ax.grid(axis="x", which="major", linestyle=":", alpha=0.6)
        ax.set_axisbelow(True)
        for bar, rate in zip(bars, rates, strict=True):
            ax.annotate(
                _format_rate(rate),
                xy=(bar.get_width(), bar.get_y() + bar.get_height() / 2),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=9,
            )
        if steps and references:
            ax.axhline(len(steps) - 0.5, color="grey", linewidth=0.8)
        legend = {
            STEP_COLOUR: "pipeline step",
            END_TO_END_COLOUR: "pipeline end to end",
            REFERENCE_COLOUR: "reference",
        }
        handles = [Patch(color=colour, label=text) for colour, text in legend.items() if colour in colours]
        ax.legend(handles=handles, loc="best", fontsize=8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
