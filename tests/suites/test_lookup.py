"""The lookup suite: every implementation against dict/bisect, its own structures under
property tests, checks that catch wrong answers, work sizes, and the quick preset on ``cpu``."""

from __future__ import annotations

import bisect
import importlib.util
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import Skip, Task
from harness.adapters.cpu import CpuAdapter
from harness.workload import Case
from suites import eytzinger, hashtable
from suites.lookup import (
    HASH_IMPLS,
    KEY_HIGH,
    ORDERED_IMPLS,
    btree_lookup,
    hash_lookup,
    key_set,
    keys_for,
    range_width,
    sorted_point,
    sorted_range,
)

HAS_BTREES = importlib.util.find_spec("BTrees") is not None
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def needs(impl: str) -> None:
    if impl == "btree" and not HAS_BTREES:
        pytest.skip("BTrees is not installed")


def answers(task: Task) -> Any:
    return task.fn(*task.inputs)


def as_list(output: Any) -> list[Any]:
    rows = output.tolist() if hasattr(output, "tolist") else list(output)
    return [tuple(r) if isinstance(r, list | tuple) else r for r in rows]


# --- every implementation agrees with the reference -----------------------------------------


@pytest.mark.parametrize("n_keys", [1_000, 100_000])
@pytest.mark.parametrize("hit_rate", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("impl", HASH_IMPLS)
def test_hash_impls_agree_with_a_dict(impl: str, hit_rate: float, n_keys: int) -> None:
    task = hash_lookup.build(n_keys=n_keys, batch=4096, hit_rate=hit_rate, impl=impl)
    assert task.check is not None
    out = answers(task)
    task.check(out)
    found = sum(v != -1 for v in as_list(out))
    assert found == round(hit_rate * 4096)  # values are never -1, so misses are exactly the -1s


@pytest.mark.parametrize("n_keys", [1_000, 100_000])
@pytest.mark.parametrize("op", ["point", "range"])
@pytest.mark.parametrize("impl", ORDERED_IMPLS)
def test_ordered_impls_agree_with_bisect(impl: str, op: str, n_keys: int) -> None:
    needs(impl)
    task = btree_lookup.build(n_keys=n_keys, batch=4096, op=op, impl=impl)
    assert task.check is not None
    out = answers(task)
    task.check(out)
    rows = as_list(out)
    if op == "range":
        counts = [c for c, _ in rows]
        assert 20 < sum(counts) / len(counts) < 45  # ~RANGE_KEYS per range
        assert min(counts) >= 0
    else:
        assert 0 < sum(v != -1 for v in rows) < len(rows)


def test_implementations_see_the_same_data() -> None:
    a = hash_lookup.build(n_keys=1_000, batch=64, hit_rate=0.5, impl="torch")
    b = hash_lookup.build(n_keys=1_000, batch=64, hit_rate=0.5, impl="pandas")
    assert as_list(answers(a)) == as_list(answers(b))
    assert torch.equal(keys_for(1_000), key_set.__wrapped__(1_000)[1])  # seeded, not cached
    keys = keys_for(1_000)
    assert torch.equal(key_set(1_000)[0], keys.sort().values)
    assert keys.unique().numel() == 1_000 and int(keys.min()) >= 1 and int(keys.max()) < KEY_HIGH


# --- the checks catch wrong answers ---------------------------------------------------------


@pytest.mark.parametrize("impl", HASH_IMPLS)
def test_hash_check_counts_wrong_answers(impl: str) -> None:
    task = hash_lookup.build(n_keys=1_000, batch=256, hit_rate=0.5, impl=impl)
    assert task.check is not None
    wrong = as_list(answers(task))
    wrong[3] = wrong[3] + 1
    wrong[7] = -1 if wrong[7] != -1 else 5
    with pytest.raises(AssertionError, match="2 of 256 answers differ"):
        task.check(wrong)
    with pytest.raises(AssertionError, match="255 answers for 256 queries"):
        task.check(wrong[:-1])


@pytest.mark.parametrize("impl", ORDERED_IMPLS)
def test_range_check_catches_a_wrong_sum_or_count(impl: str) -> None:
    needs(impl)
    task = btree_lookup.build(n_keys=1_000, batch=128, op="range", impl=impl)
    assert task.check is not None
    out = answers(task)
    rows = as_list(out)
    rows[0] = (rows[0][0], rows[0][1] + 1)
    with pytest.raises(AssertionError, match="1 of 128 answers differ"):
        task.check(rows)
    if isinstance(out, torch.Tensor):
        bad = out.clone()
        bad[5, 0] += 1
        with pytest.raises(AssertionError, match="1 of 128"):
            task.check(bad)
        with pytest.raises(AssertionError, match="integer answers"):
            task.check(out.double())


# --- work sizes, metadata, the quick preset -------------------------------------------------


def quick_cases() -> list[Case]:
    return [Case(suite="lookup", workload=wl, params=params)
            for wl in (hash_lookup, btree_lookup) for params in wl.grid("quick")]


def test_quick_preset_has_every_impl_at_the_smallest_size() -> None:
    hashes = hash_lookup.grid("quick")
    assert {p["impl"] for p in hashes} == set(HASH_IMPLS)
    assert {(p["n_keys"], p["batch"], p["hit_rate"]) for p in hashes} == {(1_000, 4096, 0.9)}
    ordered = btree_lookup.grid("quick")
    assert {(p["impl"], p["op"]) for p in ordered} == {
        (i, o) for i in ORDERED_IMPLS for o in ("point", "range")}
    assert {p["n_keys"] for p in ordered} == {1_000}
    assert max(p["n_keys"] for p in hash_lookup.grid("full")) == 10_000_000


@pytest.mark.parametrize("case", quick_cases(), ids=lambda c: c.id)
def test_quick_case_passes_on_the_cpu_adapter(case: Case) -> None:
    needs(str(case.params["impl"]))
    task = case.build()
    assert task.check is not None
    assert task.flops == 0.0
    assert task.bytes is not None and task.bytes > 0
    assert task.items == case.params["batch"]
    assert task.items_unit == "lookups"
    assert task.footprint_bytes is not None and task.footprint_bytes > 0
    assert task.meta["footprint_method"]
    assert task.host_only == (case.params["impl"] in {"dict", "pandas", "btree"})
    if not task.host_only:
        # Pure functions of their inputs: nothing captured that an adapter could not move.
        assert task.fn.__closure__ is None
        assert all(isinstance(x, torch.Tensor | int) for x in task.inputs)
    adapter = CpuAdapter(threads=1)
    try:
        step = adapter.prepare(task)
        with adapter.running():
            task.check(adapter.to_host(step()))
    finally:
        adapter.close()


def test_bytes_model_grows_with_size_and_footprints_are_plausible() -> None:
    small = btree_lookup.build(n_keys=1_000, batch=64, op="point", impl="searchsorted")
    big = btree_lookup.build(n_keys=100_000, batch=64, op="point", impl="searchsorted")
    assert small.bytes is not None and big.bytes is not None and big.bytes > small.bytes
    assert big.footprint_bytes == (100_001 + 100_001) * 8
    table = hash_lookup.build(n_keys=1_000, batch=64, hit_rate=0.9, impl="torch")
    assert table.meta["capacity"] == 2048 and table.meta["load_factor"] <= 0.5
    assert table.footprint_bytes == (2048 + table.meta["probes"] - 1) * 16
    d = hash_lookup.build(n_keys=1_000, batch=64, hit_rate=0.9, impl="dict")
    # At least the int objects themselves.
    assert d.footprint_bytes is not None and d.footprint_bytes > 1_000 * 2 * 28


@pytest.mark.skipif(not HAS_BTREES, reason="BTrees is not installed")
def test_btree_footprint_is_measured() -> None:
    task = btree_lookup.build(n_keys=100_000, batch=64, op="point", impl="btree")
    # 16 bytes of key and value per entry at least; buckets are not overfull beyond 4×.
    assert task.footprint_bytes is not None and 16 * 100_000 <= task.footprint_bytes < 64 * 100_000


def test_bad_parameters_are_refused() -> None:
    from harness.workload import WorkloadError

    with pytest.raises(WorkloadError):
        hash_lookup.check_params({"hit_rate": 1.5})
    with pytest.raises(WorkloadError):
        btree_lookup.check_params({"n_keys": 0})


def test_missing_btrees_is_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "BTrees.LLBTree", None)  # import now raises ImportError
    with pytest.raises(Skip, match="BTrees is not installed"):
        btree_lookup.build(n_keys=1_000, batch=8, op="point", impl="btree")


def test_range_width_stays_inside_int64() -> None:
    for n in (1, 5, 31, 32, 1_000, 10_000_000):
        assert 1 <= range_width(n) <= 1 << 62


# --- the torch hash table ---------------------------------------------------------------------

EDGE_KEYS = [0, 1, 2, INT64_MAX - 1, INT64_MAX]
hash_keys = st.sets(
    st.one_of(st.sampled_from(EDGE_KEYS), st.integers(0, INT64_MAX),
              st.integers(0, 300)),  # dense keys: long clusters of neighbouring home slots
    max_size=300)


@PROPERTY
@given(keys=hash_keys, data=st.data())
def test_hash_table_matches_a_dict(keys: set[int], data: st.DataObject) -> None:
    keys_list = sorted(keys)
    values = data.draw(st.lists(st.integers(INT64_MIN, INT64_MAX), min_size=len(keys_list),
                                max_size=len(keys_list)))
    present = st.sampled_from(keys_list) if keys_list else st.nothing()
    queries = data.draw(st.lists(st.one_of(present, st.integers(INT64_MIN, INT64_MAX),
                                           st.sampled_from([-1, 0, INT64_MAX, INT64_MIN])),
                                 min_size=1, max_size=100))  # repeats included
    queries += keys_list  # every key, the one at the longest displacement too
    table = hashtable.build(torch.tensor(keys_list, dtype=torch.int64),
                            torch.tensor(values, dtype=torch.int64))
    assert table.capacity >= 2 * len(keys_list) and table.load <= 0.5
    reference = dict(zip(keys_list, values, strict=True))
    got = hashtable.probe(*table.inputs(torch.tensor(queries, dtype=torch.int64)))
    assert got.tolist() == [reference.get(q, -1) for q in queries]


def test_hash_table_probes_is_the_longest_displacement() -> None:
    keys = keys_for(1_000)
    table = hashtable.build(keys, keys % 7)
    slots = torch.nonzero(table.keys[:table.capacity] != hashtable.EMPTY).flatten()
    stored = table.keys[slots]
    assert sorted(stored.tolist()) == sorted(keys.tolist())
    displacement = (slots - hashtable.home_slot(stored, table.shift, table.mask)) & table.mask
    assert int(displacement.max()) + 1 == table.probes
    wrapped = table.keys[table.capacity:]  # the wrap-around copies of the first slots
    assert torch.equal(wrapped, table.keys[:table.probes - 1])
    again = hashtable.build(keys, keys % 7)  # deterministic layout
    assert torch.equal(again.keys, table.keys) and again.probes == table.probes


def test_hash_table_refuses_negative_or_duplicate_keys() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        hashtable.build(torch.tensor([3, -2]), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="distinct"):
        hashtable.build(torch.tensor([3, 3]), torch.tensor([1, 2]))


def test_fibonacci_hash_wraps_like_unsigned_64_bit_arithmetic() -> None:
    keys = [0, 1, 12345, INT64_MAX, (1 << 62) + 7]
    shift, mask = 64 - 10, (1 << 10) - 1
    got = hashtable.home_slot(torch.tensor(keys), shift, mask).tolist()
    assert got == [((k * 0x9E3779B97F4A7C15) % (1 << 64)) >> shift for k in keys]


# --- the Eytzinger layout (and the sorted column beside it) ----------------------------------

ordered_keys = st.sets(st.one_of(st.sampled_from([INT64_MIN, -1, 0, INT64_MAX - 1, INT64_MAX]),
                                 st.integers(INT64_MIN, INT64_MAX), st.integers(-50, 50)),
                       max_size=200)
any_int64 = st.integers(INT64_MIN, INT64_MAX)


@PROPERTY
@given(keys=ordered_keys, data=st.data())
def test_eytzinger_and_searchsorted_match_bisect(keys: set[int], data: st.DataObject) -> None:
    keys_list = sorted(keys)
    n = len(keys_list)
    values = data.draw(st.lists(st.integers(0, 1 << 20), min_size=n, max_size=n))
    near = st.sampled_from(keys_list) if keys_list else st.nothing()
    edges = st.sampled_from([INT64_MIN, INT64_MAX])
    queries = data.draw(st.lists(st.one_of(near, any_int64, edges), min_size=1, max_size=60))
    queries += keys_list
    lo = data.draw(st.lists(st.one_of(near, any_int64), min_size=len(queries),
                            max_size=len(queries)))
    # hi: anywhere, so ranges may be empty (hi == lo) or inverted (hi < lo: also empty).
    hi = [data.draw(st.one_of(st.just(a), near, any_int64)) for a in lo]
    sorted_keys = torch.tensor(keys_list, dtype=torch.int64)
    sorted_values = torch.tensor(values, dtype=torch.int64)
    q, lo_t, hi_t = (torch.tensor(x, dtype=torch.int64) for x in (queries, lo, hi))

    def lower(x: int) -> int:
        return bisect.bisect_left(keys_list, x)

    expected_point = [values[lower(x)] if lower(x) < n and keys_list[lower(x)] == x else -1
                      for x in queries]
    expected_range = [(max(0, lower(b) - lower(a)), sum(values[lower(a):lower(b)]))
                      for a, b in zip(lo, hi, strict=True)]
    prefix = torch.cat((torch.zeros(1, dtype=torch.int64), sorted_values.cumsum(0)))

    layout = eytzinger.build(sorted_keys, sorted_values)
    assert layout.keys.numel() == 1 << layout.depth and (1 << layout.depth) - 1 >= n + 1
    ranks = eytzinger.lower_bound_rank(layout.keys, q, layout.depth)
    assert ranks.tolist() == [lower(x) for x in queries]
    assert eytzinger.point(layout.keys, layout.values, q, layout.depth).tolist() == expected_point
    got = eytzinger.range_count_sum(layout.keys, prefix, lo_t, hi_t, layout.depth)
    assert as_list(got) == expected_range

    column = torch.cat((sorted_keys, torch.tensor([eytzinger.PAD])))
    padded = torch.cat((sorted_values, torch.tensor([-1])))
    assert sorted_point(column, padded, q).tolist() == expected_point
    assert as_list(sorted_range(column, prefix, lo_t, hi_t)) == expected_range


def test_eytzinger_order_is_a_permutation_of_sorted_positions() -> None:
    for depth in range(1, 11):
        order = eytzinger.bfs_to_sorted(depth)[1:]
        assert sorted(order.tolist()) == list(range((1 << depth) - 1))
        # In-order traversal of the BFS tree visits sorted positions 0, 1, 2, ...
        visit: list[int] = []

        def inorder(k: int, order: torch.Tensor = order, visit: list[int] = visit) -> None:
            if k < len(order) + 1:
                inorder(2 * k)
                visit.append(int(order[k - 1]))
                inorder(2 * k + 1)

        inorder(1)
        assert visit == list(range((1 << depth) - 1))


def test_eytzinger_refuses_unsorted_keys() -> None:
    with pytest.raises(ValueError, match="sorted"):
        eytzinger.build(torch.tensor([3, 1]), torch.tensor([0, 0]))
