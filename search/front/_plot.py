"""Pareto plots of an exported front: a PNG (matplotlib) and an interactive HTML page (plotly).

Both show every completed trial in grey, the exported front highlighted with its ranks, the
competition's reference model and the F1 = 0.5 cliff, so how far each candidate sits from the
cliff is visible at a glance. The x axis is the study's second objective: MACs, or for a latency
study the measured batch-1 latency (then the reference model, known only by its MACs, is left
out). Neither embeds a date or a random id: a rerun writes the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from runner.training.metrics import F1_CLIFF, REF_F1, REF_MACS
from search.front._pareto import LATENCY_AXIS, FrontEntry, StudyPoint

FRONT_COLOUR = "#d62728"
CLIFF_COLOUR = "#9467bd"
REFERENCE_LABEL = f"reference model ({REF_MACS:,} MACs, F1 {REF_F1})"
AXIS_TITLES = {"macs": "MACs", LATENCY_AXIS: "batch-1 latency (ms, ONNX Runtime, one thread)"}


def _by_cost(front: Sequence[FrontEntry], axis: str) -> list[FrontEntry]:
    """Cheapest first; entries without that cost are left out."""
    measured = [e for e in front if e.cost(axis) is not None]
    return sorted(measured, key=lambda e: (e.cost(axis), e.f1))


def _stairs(exported: Sequence[FrontEntry], axis: str) -> list[FrontEntry]:
    """The exported entries no other one beats: a step line through them bounds what the
    export attains (each step holds a point's F1 until the next, costlier point). Exported
    models below it come from another study's front or fill a gap in the MACs range."""
    best = -1.0
    stairs = []
    for entry in exported:  # cheapest first
        if entry.f1 > best:
            stairs.append(entry)
            best = entry.f1
    return stairs


def _measured(points: Sequence[StudyPoint], axis: str) -> list[StudyPoint]:
    return [p for p in points if p.cost(axis) is not None]


def write_png(
    path: Path,
    title: str,
    front: Sequence[FrontEntry],
    points: Sequence[StudyPoint],
    axis: str = "macs",
) -> None:
    """The Pareto plot as a PNG; the cost on a log axis because candidates span decades."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no window

    fig = Figure(figsize=(8, 5.5), dpi=100)
    ax = fig.subplots()
    for feasible, marker, label in ((True, "o", "trials"), (False, "x", "over a budget")):
        group = [p for p in _measured(points, axis) if p.feasible is feasible]
        if group:
            ax.scatter(
                [p.cost(axis) for p in group],
                [p.f1 for p in group],
                c="0.7",
                s=18,
                marker=marker,
                label=label,
                zorder=1,
            )
    exported = _by_cost(front, axis)
    stairs = _stairs(exported, axis)
    ax.plot(
        [e.cost(axis) for e in stairs],
        [e.f1 for e in stairs],
        "-",
        color=FRONT_COLOUR,
        drawstyle="steps-post",
        label="exported front",
        zorder=3,
    )
    ax.scatter(
        [e.cost(axis) for e in exported], [e.f1 for e in exported], c=FRONT_COLOUR, s=24, zorder=3
    )
    for entry in exported:
        ax.annotate(
            str(entry.rank),
            (entry.cost(axis), entry.f1),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
            color=FRONT_COLOUR,
        )
    if axis == "macs":
        ax.scatter(
            [REF_MACS], [REF_F1], marker="*", s=160, c="black", label=REFERENCE_LABEL, zorder=4
        )
    ax.axhline(F1_CLIFF, color=CLIFF_COLOUR, linestyle="--", label=f"F1 = {F1_CLIFF} cliff")
    ax.set(
        xscale="log",
        xlabel=AXIS_TITLES[axis],
        ylabel="validation macro F1",
        title=title,
        ylim=(0, 1),
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})


def _hover(entry: FrontEntry) -> str:
    return (
        f"rank {entry.rank}: trial {entry.label}"
        + (" (fills a gap)" if entry.fills_gap else "")
        + f"<br>F1 {entry.f1:.4f}, "
        f"MACs {entry.macs:,}, params {entry.params:,}"
        + ("" if entry.latency_ms is None else f", {entry.latency_ms:.3f} ms")
        + f"<br>score {entry.score:.4f}, "
        f"{entry.cliff:+.4f} from the cliff"
    )


def write_html(
    path: Path,
    title: str,
    front: Sequence[FrontEntry],
    points: Sequence[StudyPoint],
    axis: str = "macs",
) -> None:
    """The same plot as an interactive page; plotly.js goes once beside it (works offline)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    points = _measured(points, axis)
    fig.add_scatter(
        x=[p.cost(axis) for p in points],
        y=[p.f1 for p in points],
        mode="markers",
        name="trials",
        marker={"color": "lightgrey", "symbol": ["circle" if p.feasible else "x" for p in points]},
        text=[f"trial {p.label}" for p in points],
    )
    exported = _by_cost(front, axis)
    stairs = _stairs(exported, axis)
    fig.add_scatter(
        x=[e.cost(axis) for e in stairs],
        y=[e.f1 for e in stairs],
        mode="lines",
        name="exported front",
        line={"shape": "hv", "color": FRONT_COLOUR},
        hoverinfo="skip",
    )
    fig.add_scatter(
        x=[e.cost(axis) for e in exported],
        y=[e.f1 for e in exported],
        mode="markers+text",
        name="exported models",
        marker={"color": FRONT_COLOUR},
        text=[str(e.rank) for e in exported],
        textposition="top right",
        hovertext=[_hover(e) for e in exported],
        hoverinfo="text",
    )
    if axis == "macs":
        fig.add_scatter(
            x=[REF_MACS],
            y=[REF_F1],
            mode="markers",
            name=REFERENCE_LABEL,
            marker={"symbol": "star", "size": 14, "color": "black"},
        )
    fig.add_hline(
        y=F1_CLIFF,
        line_dash="dash",
        line_color=CLIFF_COLOUR,
        annotation_text=f"F1 = {F1_CLIFF} cliff",
    )
    fig.update_layout(
        title=title,
        xaxis={"type": "log", "title": AXIS_TITLES[axis]},
        yaxis={"title": "validation macro F1", "range": [0, 1]},
    )
    fig.write_html(path, include_plotlyjs="directory", div_id="pareto-front", full_html=True)
