"""Lookup structures behind fast inference (vocabularies, embedding and cache indexes).

Two workloads, each with several implementations of one structure, on the same seeded data:

- ``hash_lookup``: int64 key → int64 value, -1 when absent. ``dict`` (the interpreter's hash
  table, one query at a time), ``torch`` (a vectorised open-addressing table, see
  :mod:`suites.hashtable`) and ``pandas`` (``Index.get_indexer``: khash, a C hash table,
  answering the whole batch in one call).
- ``btree_lookup``: an ordered index, point lookups and range count-and-sum. ``btree`` (ZODB's C
  B-tree, one query at a time), ``searchsorted`` (a sorted column searched by
  ``torch.searchsorted``) and ``eytzinger`` (the same keys in BFS order, searched branch-free,
  see :mod:`suites.eytzinger`).

Keys are distinct random integers in [1, 2⁶³ − 1) (seeded: every run and every implementation
sees the same data); a key's value is ``key % 1_000_003``, small enough that sums of many values
fit in int64. Every task's check compares the answers with a plain Python ``dict`` (hash) or a
sorted list searched with ``bisect`` (ordered), computed on first use.

Work sizes: ``items`` is the batch (lookups per call); ``flops`` is 0 (no floating-point work,
so the roofline treats lookups as memory-bound); ``bytes`` is one analytic model per case, the
same for every implementation of it, so bytes/s compare like for like (see ``_hash_bytes`` and
``_ordered_bytes``); ``footprint_bytes`` is the memory the structure holds, measured.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from harness import Skip, Task, workload
from harness.workload import Check, WorkloadError, at_least
from suites.data import SEED, generator

if TYPE_CHECKING:
    import torch

#: keys and generated queries lie in [1, KEY_HIGH): positive, 63-bit.
KEY_HIGH = (1 << 63) - 1
#: a key's value is key % VALUE_MODULUS (< 2²⁰: sums of up to 2⁴³ values fit in int64).
VALUE_MODULUS = 1_000_003
#: expected keys in one range query: the width of [lo, lo + width) is set from it.
RANGE_KEYS = 32
#: fraction of point queries of the ordered index that are present (hits and misses cost the
#: same in a search tree; half and half makes the check exercise both answers).
ORDERED_HIT_RATE = 0.5

HASH_IMPLS = ("dict", "torch", "pandas")
ORDERED_IMPLS = ("btree", "searchsorted", "eytzinger")
HOST_ONLY = frozenset({"dict", "pandas", "btree"})
WORD = 8  # bytes per int64 key, value, query or answer


# --- data ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def key_set(n: int, seed: int = SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` distinct random keys in [1, KEY_HIGH): (sorted, in random order), the same on every
    call. Cached (two sizes), since every implementation and parameter of a size shares them."""
    import torch

    gen = generator(seed)
    pool = torch.empty(0, dtype=torch.int64)
    while pool.numel() < n:  # a collision among 63-bit draws is rare; draw again if one occurs
        draws = torch.randint(1, KEY_HIGH, (n - pool.numel(),), generator=gen)
        pool = torch.unique(torch.cat((pool, draws)))  # sorted
    return pool, pool[torch.randperm(n, generator=gen)]


def keys_for(n: int, seed: int = SEED) -> torch.Tensor:
    """The ``n`` keys in random order (the hash tables' insertion order)."""
    return key_set(n, seed)[1]


def value_of(keys: torch.Tensor) -> torch.Tensor:
    """Each key's value: a deterministic function of the key, small and non-negative."""
    return keys % VALUE_MODULUS


def point_queries(sorted_keys: torch.Tensor, batch: int, hit_rate: float,
                  seed: int = SEED + 1) -> torch.Tensor:
    """``batch`` queries, ``round(hit_rate × batch)`` of them keys (drawn with replacement, so
    repeats occur as in real traffic), the rest absent keys, shuffled."""
    import torch

    gen = generator(seed)
    hits = round(hit_rate * batch)
    found = sorted_keys[torch.randint(0, sorted_keys.numel(), (hits,), generator=gen)]
    misses = torch.empty(0, dtype=torch.int64)
    while misses.numel() < batch - hits:
        draws = torch.randint(1, KEY_HIGH, (batch - hits - misses.numel(),), generator=gen)
        at = torch.searchsorted(sorted_keys, draws).clamp(max=sorted_keys.numel() - 1)
        misses = torch.cat((misses, draws[sorted_keys[at] != draws]))
    queries = torch.cat((found, misses))
    return queries[torch.randperm(batch, generator=gen)]


def range_width(n: int) -> int:
    """The width of a range query: RANGE_KEYS keys expected among n keys spread over 2⁶³."""
    return max(1, min((RANGE_KEYS << 63) // max(n, 1), 1 << 62))


def range_queries(keys: torch.Tensor, batch: int,
                  seed: int = SEED + 2) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` ranges [lo, lo + width): a quarter start at a key (inclusive edge), a quarter
    end at a key (exclusive edge), half start anywhere; lo + width stays within int64."""
    import torch

    gen = generator(seed)
    width = range_width(keys.numel())
    lo = torch.randint(0, KEY_HIGH - width, (batch,), generator=gen)
    at_key = keys[torch.randint(0, keys.numel(), (batch,), generator=gen)]
    kind = torch.randint(0, 4, (batch,), generator=gen)
    lo = torch.where(kind == 0, at_key.clamp(max=KEY_HIGH - width), lo)
    lo = torch.where(kind == 1, (at_key - width).clamp(min=0), lo)
    return lo, lo + width


# --- references and the check --------------------------------------------------------------


def dict_answers(keys: torch.Tensor, values: torch.Tensor, queries: torch.Tensor) -> list[int]:
    """The reference for point lookups: a plain dict."""
    table = dict(zip(keys.tolist(), values.tolist(), strict=True))
    return [table.get(q, -1) for q in queries.tolist()]


def _sorted_lists(sorted_keys: torch.Tensor,
                  values: torch.Tensor) -> tuple[list[int], list[int]]:
    import itertools

    keys = sorted_keys.tolist()
    if not all(a < b for a, b in itertools.pairwise(keys)):
        raise AssertionError("reference keys are not sorted and distinct")
    return keys, values.tolist()


def bisect_point_answers(sorted_keys: torch.Tensor, values: torch.Tensor,
                         queries: torch.Tensor) -> list[int]:
    """The reference for ordered point lookups: ``bisect`` on a sorted Python list."""
    import bisect

    keys, vals = _sorted_lists(sorted_keys, values)
    out = []
    for q in queries.tolist():
        i = bisect.bisect_left(keys, q)
        out.append(vals[i] if i < len(keys) and keys[i] == q else -1)
    return out


def bisect_range_answers(sorted_keys: torch.Tensor, values: torch.Tensor, lo: torch.Tensor,
                         hi: torch.Tensor) -> list[tuple[int, int]]:
    """The reference for ranges: (count, sum of values) of keys in [lo, hi), by ``bisect``."""
    import bisect

    keys, vals = _sorted_lists(sorted_keys, values)
    out = []
    for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
        start = bisect.bisect_left(keys, a)
        end = max(start, bisect.bisect_left(keys, b))
        out.append((end - start, sum(vals[start:end])))
    return out


def normalise(output: Any) -> list[Any]:
    """An implementation's answers as a list of ints (point) or of (count, sum) tuples (range)."""
    import numpy as np
    import torch

    if isinstance(output, torch.Tensor):
        if output.dtype.is_floating_point or output.dtype.is_complex or output.dtype == torch.bool:
            raise AssertionError(f"expected integer answers, got {output.dtype}")
        rows = output.detach().cpu().tolist()
    elif isinstance(output, np.ndarray):
        if not np.issubdtype(output.dtype, np.integer):
            raise AssertionError(f"expected integer answers, got {output.dtype}")
        rows = output.tolist()
    elif isinstance(output, list | tuple):
        rows = list(output)
    else:
        raise AssertionError(f"expected a tensor, array or list, got {type(output).__name__}")
    return [tuple(int(x) for x in row) if isinstance(row, list | tuple) else int(row)
            for row in rows]


def answers_check(reference: Callable[[], Sequence[Any]]) -> Check:
    """A check that every answer equals ``reference()`` (computed once, on first use)."""
    cache: list[list[Any]] = []

    def check(output: Any) -> None:
        if not cache:
            cache.append(normalise(list(reference())))
        expected = cache[0]
        got = normalise(output)
        if len(got) != len(expected):
            raise AssertionError(f"{len(got)} answers for {len(expected)} queries")
        wrong = [i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b]
        if wrong:
            i = wrong[0]
            raise AssertionError(
                f"{len(wrong)} of {len(expected)} answers differ from the reference "
                f"(first: query {i}, got {got[i]}, expected {expected[i]})"
            )

    return check


# --- host implementations and their footprints ---------------------------------------------


def dict_lookup(table: dict[int, int], queries: list[int]) -> list[int]:
    """One ``dict.get`` per query, in the interpreter."""
    get = table.get
    return [get(q, -1) for q in queries]


def pandas_lookup(index: Any, values: Any, queries: Any) -> Any:
    """The whole batch in one ``Index.get_indexer`` call (khash in C), then a gather."""
    import numpy as np

    positions = index.get_indexer(queries)
    return np.where(positions >= 0, values[positions], -1)


def btree_point(tree: Any, queries: list[int]) -> list[int]:
    """One ``LLBTree.get`` per query: a descent through the B-tree's C nodes."""
    get = tree.get
    return [get(q, -1) for q in queries]


def btree_range(tree: Any, lo: list[int], hi: list[int]) -> list[tuple[int, int]]:
    """Per range, the B-tree's own range scan: descend to ``lo``, walk buckets up to ``hi``."""
    out = []
    for a, b in zip(lo, hi, strict=True):
        vals = tree.values(a, b, excludemax=True)
        out.append((len(vals), sum(vals)))
    return out


def sorted_point(keys: torch.Tensor, values: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """``searchsorted`` on a sorted key column ending in a PAD sentinel (value -1), so every
    query's lower bound exists and an absent one reads a non-matching key or the sentinel."""
    import torch

    at = torch.searchsorted(keys, queries)
    return torch.where(keys.index_select(0, at) == queries, values.index_select(0, at), -1)


def sorted_range(keys: torch.Tensor, prefix: torch.Tensor, lo: torch.Tensor,
                 hi: torch.Tensor) -> torch.Tensor:
    """Count and sum by two ``searchsorted`` per range and prefix sums of the values: what a
    columnar engine does (it never visits the keys in between)."""
    import torch

    start = torch.searchsorted(keys, lo)
    end = torch.maximum(torch.searchsorted(keys, hi), start)
    sums = prefix.index_select(0, end) - prefix.index_select(0, start)
    return torch.stack((end - start, sums), dim=1)


def dict_footprint(table: dict[int, int]) -> int:
    """``sys.getsizeof`` of the dict plus each key and value int object it holds."""
    size = sys.getsizeof
    return size(table) + sum(map(size, table)) + sum(map(size, table.values()))


def measured_build(make: Callable[[], Any]) -> tuple[Any, int, str]:
    """Build a structure with C allocations (BTrees), measuring the memory it keeps.

    Python-allocator memory (node objects) is counted by tracemalloc; C ``malloc`` memory (the
    key and value arrays) by glibc's ``mallinfo2`` (in-use bytes, before and after). Without
    glibc, the process's RSS growth (psutil) stands in, and the method says so.
    """
    import ctypes
    import gc
    import tracemalloc

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    def in_use() -> int:
        info = mallinfo2()
        return int(info.uordblks + info.hblkhd)

    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
        mallinfo2.restype = MallInfo2
    except (AttributeError, OSError):
        import psutil

        process = psutil.Process()
        gc.collect()
        before = process.memory_info().rss
        built = make()
        return built, max(0, process.memory_info().rss - before), "psutil RSS growth"
    gc.collect()
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    malloc_before, traced_before = in_use(), tracemalloc.get_traced_memory()[0]
    built = make()
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - traced_before
    malloc = in_use() - malloc_before
    if not tracing:
        tracemalloc.stop()
    return built, traced + malloc, "tracemalloc (Python objects) + glibc mallinfo2 (C arrays)"


def _llbtree() -> Any:
    try:
        from BTrees.LLBTree import LLBTree  # type: ignore[import-untyped]
    except ImportError:
        raise Skip("BTrees is not installed; pip install BTrees") from None
    return LLBTree


# --- varied inputs (to catch constant answers) ------------------------------------------------


def swapping(pairs: Sequence[tuple[Any, Any]]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A ``Task.vary`` that replaces the query inputs (matched by identity) with other queries
    and leaves the structure alone: changing a table or a sorted column would break it, and
    the generic change (roll every tensor) would too."""
    def vary(inputs: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(next((new for old, new in pairs if item is old), item) for item in inputs)
    return vary


def other_points(sorted_keys: torch.Tensor, batch: int) -> torch.Tensor:
    """Queries that all hit, in key order: answers unlike those of the seeded mix of hits and
    misses (all -1 at a zero hit rate), so an honest lookup's output must change."""
    import torch

    return sorted_keys[torch.arange(batch) % sorted_keys.numel()]


# --- work-size models -----------------------------------------------------------------------


def _hash_bytes(n_keys: int, batch: int, hit_rate: float) -> tuple[float, float]:
    """Bytes per call of a hash lookup batch, and the expected probes per query behind it.

    Model: a scalar linear-probing table of int64 keys and values at the load factor this
    suite's table has for n keys (capacity the next power of two ≥ 2n). Per query: read the
    query (8 B), read E[probes] keys (8 B each; Knuth's expected probes for hits and misses,
    mixed by hit rate), read the value of a hit (8 B), write the answer (8 B). The torch table
    reads more (P slots per query, ``meta['probes']``), dict and khash lay out their slots
    differently: one model for the case keeps bytes/s a like-for-like rate across them.
    """
    from suites.hashtable import capacity_bits, expected_probes

    load = n_keys / (1 << capacity_bits(n_keys))
    probes = (hit_rate * expected_probes(load, hit=True)
              + (1 - hit_rate) * expected_probes(load, hit=False))
    return float(batch * WORD * (2 + probes + hit_rate)), probes


def _ordered_bytes(n_keys: int, batch: int, op: str) -> float:
    """Bytes per call of an ordered-index batch.

    Model: a binary search over the n sorted int64 keys reads ⌈log2(n + 1)⌉ of them (8 B each).
    Point: read the query, search, read the value of a hit, write the answer. Range: read lo and
    hi, search both, read the values in range (RANGE_KEYS expected, 8 B each: the scan a tree
    does), write count and sum. The prefix-sum implementations read two prefix entries instead
    of the scan (that saving is the technique); the B-tree reads whole nodes and Eytzinger
    shares cache lines among the top levels: again one model per case, for like-for-like rates.
    """
    searched = math.ceil(math.log2(n_keys + 1)) * WORD
    if op == "point":
        return float(batch * (2 * WORD + searched + ORDERED_HIT_RATE * WORD))
    in_range = n_keys * range_width(n_keys) / 2**63
    return float(batch * (4 * WORD + 2 * searched + in_range * WORD))


#: rough bytes per key each structure holds while a case builds and checks it (the structure,
#: the key arrays it is built from, and the reference dict or list the check uses).
BYTES_PER_KEY = {"dict": 300, "pandas": 250, "torch": 250, "btree": 350, "searchsorted": 220,
                 "eytzinger": 250}


def _lookup_memory(n_keys: int, batch: int, impl: str) -> float:
    """Predicted peak bytes of a lookup case: its structure, plus queries and answers."""
    return float(n_keys * BYTES_PER_KEY.get(impl, 350) + batch * 200)


def _fraction(value: Any) -> None:
    if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise WorkloadError(f"must lie in [0, 1], got {value!r}")


# --- workloads ------------------------------------------------------------------------------


@workload(params={
    "n_keys": [1_000, 100_000, 10_000_000],
    "batch": [4096],
    "hit_rate": [0.9, 0.5, 0.0],
    "impl": list(HASH_IMPLS),
}, quick={"impl": list(HASH_IMPLS)},
    validate={"n_keys": at_least(1), "batch": at_least(1), "hit_rate": _fraction},
    memory=lambda n_keys, batch, impl, **_: _lookup_memory(n_keys, batch, impl))
def hash_lookup(n_keys: int, batch: int, hit_rate: float, impl: str) -> Task:
    """Hash-table point lookups (value or -1): Python dict vs a vectorised torch table vs khash.

    ``pandas`` is here to separate two effects that ``dict`` vs ``torch`` confounds: khash is a
    hash table much like dict's, but ``get_indexer`` answers the whole batch in one C call, so
    dict → pandas is what leaving the interpreter's per-query loop buys, and pandas → torch is
    what the vectorised, fixed-trip-count probing (the form an accelerator can run) costs or
    buys on the host.
    """
    sorted_keys, keys = key_set(n_keys)
    values = value_of(keys)
    queries = point_queries(sorted_keys, batch, hit_rate)
    nbytes, model_probes = _hash_bytes(n_keys, batch, hit_rate)
    meta: dict[str, Any] = {"model_probes": round(model_probes, 3)}
    fn: Callable[..., Any]
    inputs: tuple[Any, ...]
    other = other_points(sorted_keys, batch)
    swaps: list[tuple[Any, Any]]
    if impl == "dict":
        table = dict(zip(keys.tolist(), values.tolist(), strict=True))
        fn, inputs = dict_lookup, (table, queries.tolist())
        swaps = [(inputs[1], other.tolist())]
        footprint = dict_footprint(table)
        meta.update(footprint_method="sys.getsizeof of the dict and of each key and value int")
    elif impl == "torch":
        from suites import hashtable

        built = hashtable.build(keys, values)
        fn, inputs = hashtable.probe, built.inputs(queries)
        swaps = [(queries, other)]
        footprint = built.nbytes
        meta.update(footprint_method="tensor nbytes",
                    capacity=built.capacity, load_factor=round(n_keys / built.capacity, 4),
                    probes=built.probes)
    elif impl == "pandas":
        import pandas as pd

        index = pd.Index(keys.numpy())
        column = values.numpy()
        index.get_indexer(queries.numpy()[:1])  # build khash now: a first call is not a build
        fn, inputs = pandas_lookup, (index, column, queries.numpy())
        swaps = [(inputs[2], other.numpy())]
        footprint = int(index.memory_usage(deep=True) + column.nbytes)
        meta.update(footprint_method="Index.memory_usage(deep=True), khash engine included, "
                                     "+ values ndarray nbytes")
    else:  # pragma: no cover (the grid admits only HASH_IMPLS)
        raise WorkloadError(f"unknown impl {impl!r}")
    return Task(fn=fn, inputs=inputs, items=batch, flops=0.0, bytes=nbytes,
                check=answers_check(lambda: dict_answers(keys, values, queries)), meta=meta,
                items_unit="lookups", host_only=impl in HOST_ONLY, footprint_bytes=footprint,
                vary=swapping(swaps))


@workload(params={
    "n_keys": [1_000, 100_000, 10_000_000],
    "batch": [4096],
    "op": ["point", "range"],
    "impl": list(ORDERED_IMPLS),
}, quick={"impl": list(ORDERED_IMPLS), "op": ["point", "range"]},
    validate={"n_keys": at_least(1), "batch": at_least(1)},
    memory=lambda n_keys, batch, impl, **_: _lookup_memory(n_keys, batch, impl))
def btree_lookup(n_keys: int, batch: int, op: str, impl: str) -> Task:
    """Ordered-index lookups, point (value or -1) and range (count and sum of values in
    [lo, lo + width), ~32 keys): a C B-tree vs a sorted column vs the Eytzinger layout."""
    import torch

    sorted_keys = key_set(n_keys)[0]
    values = value_of(sorted_keys)
    meta: dict[str, Any] = {}
    if op == "point":
        queries = point_queries(sorted_keys, batch, ORDERED_HIT_RATE)
        reference: Callable[[], Sequence[Any]] = functools.partial(
            bisect_point_answers, sorted_keys, values, queries)
    elif op == "range":
        lo, hi = range_queries(sorted_keys, batch)
        reference = functools.partial(bisect_range_answers, sorted_keys, values, lo, hi)
        meta["range_width"] = range_width(n_keys)
    else:
        raise WorkloadError(f"op must be point or range, got {op!r}")

    def prefix_sums() -> torch.Tensor:
        return torch.cat((torch.zeros(1, dtype=torch.int64), values.cumsum(0)))

    fn: Callable[..., Any]
    inputs: tuple[Any, ...]
    # Other queries for the constant-answer probe: all-hit points, or the ranges shifted by one.
    if op == "point":
        alt_points = other_points(sorted_keys, batch)
    else:
        alt_lo, alt_hi = lo.roll(1), hi.roll(1)
    swaps: list[tuple[Any, Any]]
    if impl == "btree":
        tree_class = _llbtree()
        pairs = list(zip(sorted_keys.tolist(), values.tolist(), strict=True))

        def make() -> Any:
            tree = tree_class()
            tree.update(pairs)
            return tree

        tree, footprint, method = measured_build(make)
        del pairs
        if op == "point":
            fn, inputs = btree_point, (tree, queries.tolist())
            swaps = [(inputs[1], alt_points.tolist())]
        else:
            fn, inputs = btree_range, (tree, lo.tolist(), hi.tolist())
            swaps = [(inputs[1], alt_lo.tolist()), (inputs[2], alt_hi.tolist())]
        meta.update(footprint_method=method)
    elif impl == "searchsorted":
        from suites.eytzinger import PAD

        column = torch.cat((sorted_keys, torch.tensor([PAD])))  # PAD: every search ends
        if op == "point":
            beside = torch.cat((values, torch.tensor([-1])))  # the PAD sentinel's value is -1
            fn, inputs = sorted_point, (column, beside, queries)
            swaps = [(queries, alt_points)]
        else:
            beside = prefix_sums()
            fn, inputs = sorted_range, (column, beside, lo, hi)
            swaps = [(lo, alt_lo), (hi, alt_hi)]
        footprint = int(column.nbytes + beside.nbytes)
        meta.update(footprint_method="tensor nbytes")
    elif impl == "eytzinger":
        from suites import eytzinger

        layout = eytzinger.build(sorted_keys, values)
        if op == "point":
            fn, inputs = eytzinger.point, (layout.keys, layout.values, queries, layout.depth)
            footprint = layout.nbytes
            swaps = [(queries, alt_points)]
        else:
            prefix = prefix_sums()
            fn = eytzinger.range_count_sum
            inputs = (layout.keys, prefix, lo, hi, layout.depth)
            footprint = int(layout.keys.nbytes + prefix.nbytes)
            swaps = [(lo, alt_lo), (hi, alt_hi)]
        meta.update(footprint_method="tensor nbytes", depth=layout.depth)
    else:  # pragma: no cover (the grid admits only ORDERED_IMPLS)
        raise WorkloadError(f"unknown impl {impl!r}")
    return Task(fn=fn, inputs=inputs, items=batch, flops=0.0,
                bytes=_ordered_bytes(n_keys, batch, op), check=answers_check(reference),
                meta=meta, vary=swapping(swaps), items_unit="lookups", host_only=impl in HOST_ONLY,
                footprint_bytes=footprint)
