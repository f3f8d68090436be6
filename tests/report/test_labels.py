"""Point labels placed without overlap, or left off and said so."""

from __future__ import annotations

from harness.report import canvas, labels


def test_labels_of_coincident_points_fan_out_and_the_rest_are_left_off() -> None:
    figure, (axis,) = canvas.new_figure(3.0)
    axis.set_xlim(0, 10)
    axis.set_ylim(0, 10)
    # Thirty labels on one point: a ring of offsets holds some; the others cannot fit.
    points = [(5.0, 5.0, f"a label of some length {i}") for i in range(30)]
    left_off = labels.place(figure, axis, points)
    renderer = figure.canvas.get_renderer()
    frame = axis.get_window_extent(renderer)
    boxes = [text.get_window_extent(renderer) for text in axis.texts]
    assert len(boxes) + len(left_off) == 30 and 4 <= len(boxes) < 30
    assert left_off == list(range(len(boxes), 30))  # the first come, first placed
    for i, box in enumerate(boxes):
        assert not any(box.overlaps(other) for other in boxes[i + 1:])
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1  # inside the axes
        assert frame.y0 <= box.y0 and box.y1 <= frame.y1
    # The layout is frozen: saving does not move the axes from under the labels.
    before = axis.get_position().bounds
    canvas.png(figure)
    assert axis.get_position().bounds == before


def test_a_label_never_covers_another_points_marker() -> None:
    figure, (axis,) = canvas.new_figure(3.0)
    axis.set_xlim(0, 10)
    axis.set_ylim(0, 10)
    # The right-hand place of the first label holds the second point: it goes elsewhere.
    left_off = labels.place(figure, axis, [(5.0, 5.0, "first"), (5.15, 5.05, "second")])
    renderer = figure.canvas.get_renderer()
    first = axis.texts[0].get_window_extent(renderer)
    px, py = axis.transData.transform((5.15, 5.05))
    assert left_off == [] and not first.contains(px, py)
    # Where the marker check is the reason: the nearest place would have covered the point.
    nearest = axis.annotate("first", (5.0, 5.0), xytext=labels.OFFSETS[0][:2],
                            textcoords="offset points", ha=labels.OFFSETS[0][2],
                            va=labels.OFFSETS[0][3], fontsize=7)
    assert nearest.get_window_extent(renderer).contains(px, py)
