"""Wall-time attribution: self times, threads running at once, call windows."""

from __future__ import annotations

import pytest

from harness.profiling.attribution import Span, attribute, merge, self_segments


def test_nested_spans_keep_only_their_self_time() -> None:
    spans = [Span("call", 0, 10), Span("linear", 1, 5), Span("addmm", 2, 4)]
    found = attribute(spans, [(0, 10)])
    assert found.time == {"call": 6, "linear": 2, "addmm": 2}
    assert found.uncovered == 0 and found.busy == 10 and found.windows == 10


def test_threads_running_at_once_share_the_instant() -> None:
    spans = [Span("a", 0, 4, "t1"), Span("b", 2, 6, "t2")]
    found = attribute(spans, [(0, 8)])
    assert found.time == {"a": 3, "b": 3}
    assert sum(found.time.values()) == found.busy == 6
    assert found.uncovered == 2


def test_only_time_inside_the_windows_counts() -> None:
    spans = [Span("warm-up op", 0, 2), Span("op", 3, 6), Span("op", 9, 12)]
    found = attribute(spans, [(2.5, 7), (8, 10)])
    assert found.time == {"op": 4}
    assert found.count == {"op": 2}
    assert found.windows == pytest.approx(6.5) and found.uncovered == pytest.approx(2.5)


def test_weights_total_over_the_spans_in_the_windows() -> None:
    spans = [Span("mm", 0, 1, weight=5), Span("mm", 2, 3, weight=7), Span("mm", 9, 9.5,
                                                                          weight=100)]
    assert attribute(spans, [(0, 4)]).weight == {"mm": 12}


def test_a_child_outliving_its_parent_is_clipped() -> None:
    segments = self_segments([Span("parent", 0, 4), Span("child", 3, 6)])
    assert sorted((s.key, s.start, s.end) for s in segments) == [
        ("child", 3, 4), ("parent", 0, 3)]


def test_merge_unions_intervals() -> None:
    assert merge([(5, 6), (0, 2), (1, 3), (3, 3)]) == [(0, 3), (5, 6)]
