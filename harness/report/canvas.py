"""What every report chart shares: the ``Plot`` it becomes, the page's size and style, one colour
per adapter, a Figure on matplotlib's Agg canvas and its PNG bytes.

matplotlib is imported inside the functions (``import harness`` stays light) and never through
pyplot: a ``Figure`` on an explicit Agg canvas needs no GUI and leaves the process's global
backend alone (a notebook calling the report keeps its own).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.report import units

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Row = dict[str, Any]

#: 9.6 in at 100 dpi: 960 px, the page's content width, so charts are never scaled up.
WIDTH_IN, DPI = 9.6, 100
#: A linear axis hides everything but the largest value once values span more than this ratio.
LOG_RATIO = 20.0


@dataclass(frozen=True)
class Plot:
    """One chart: PNG bytes, or ``png=None`` and a note that says why it was left out.

    A drawn chart may carry a note too (what it leaves out, e.g. lookups on the roofline)."""

    title: str
    png: bytes | None
    note: str = ""


@contextmanager
def style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3}):
        yield


def safe(text: object) -> str:
    """A name from the results as literal chart text: an unescaped ``$`` would start mathtext
    (which can fail on arbitrary text). Mathtext itself stays on for log-axis tick labels."""
    return str(text).replace("$", r"\$")


def new_figure(height_in: float, columns: int = 1) -> tuple[Figure, list[Axes]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)  # explicit Agg canvas: no pyplot, no global backend switch
    axes = figure.subplots(1, columns, squeeze=False)[0]
    return figure, list(axes)


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # No "Software" metadata: the page's bytes then depend only on the data.
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def colours(rows: Sequence[Row]) -> dict[str, str]:
    """One colour per adapter, in order of first appearance, the same in every chart."""
    adapters = list(dict.fromkeys(str(row["adapter"]) for row in rows))
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf"]
    return {name: palette[i % len(palette)] for i, name in enumerate(adapters)}


def label(row: Row, limit: int = 60) -> str:
    text = str(row.get("label") or row.get("case_id") or "?")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def seconds_axis(axis: Axes, which: str = "x") -> None:
    from matplotlib.ticker import FuncFormatter

    formatter = FuncFormatter(lambda value, _: units.seconds(value))
    (axis.xaxis if which == "x" else axis.yaxis).set_major_formatter(formatter)
