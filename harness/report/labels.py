"""Point labels that never overlap: each label goes beside its point at the first of a ring of
offsets where its box meets no label already placed and no point's marker, and stays inside the
axes. A label with no free place is left off the chart and returned, for the chart's note to
name: a label on top of another is unreadable, and a missing one at least says so.

Placement needs the final display coordinates, so the figure's layout is settled first and then
frozen: a layout engine run again at save time would move the axes under the labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.transforms import Bbox

#: Offsets (points) from the point to the label's anchor, with its alignment, nearest first:
#: right, left, above, below, then the diagonals, at growing distances.
_RING = ((1, 0.3, "left", "center"), (-1, 0.3, "right", "center"),
         (0, 1, "center", "bottom"), (0, -1, "center", "top"),
         (1, 1, "left", "bottom"), (-1, 1, "right", "bottom"),
         (1, -1, "left", "top"), (-1, -1, "right", "top"))
OFFSETS = tuple((dx * r, dy * r, ha, va) for r in (6, 14, 24, 36) for dx, dy, ha, va in _RING)
#: Half the side of the square each marker occupies, in pixels (scatter's default 6-pt marker
#: at 100 dpi is about 8 px across).
MARKER_PX = 5.0


def place(figure: Figure, axis: Axes, points: Sequence[tuple[float, float, str]],
          fontsize: float = 7) -> list[int]:
    """Annotate each ``(x, y, text)`` (data coordinates) without overlap; return the indices
    of those that found no free place and were left off. Call it last: it freezes the
    layout."""
    from matplotlib.transforms import Bbox

    figure.draw_without_rendering()  # settles the layout: display coordinates are final
    figure.set_layout_engine("none")  # and stay so when the figure is saved
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = axis.get_window_extent(renderer)
    taken: list[Bbox] = []
    for x, y, _ in points:
        px, py = axis.transData.transform((x, y))
        taken.append(Bbox.from_extents(px - MARKER_PX, py - MARKER_PX,
                                       px + MARKER_PX, py + MARKER_PX))
    left_off = []
    for index, (x, y, text) in enumerate(points):
        for dx, dy, ha, va in OFFSETS:
            label = axis.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points",
                                  ha=ha, va=va, fontsize=fontsize, annotation_clip=False)
            box = label.get_window_extent(renderer)
            if _inside(box, frame) and not any(box.overlaps(other) for other in taken):
                taken.append(box)
                break
            label.remove()
        else:
            left_off.append(index)
    return left_off


def _inside(box: Bbox, frame: Bbox) -> bool:
    return bool(box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
                and box.y1 <= frame.y1)
