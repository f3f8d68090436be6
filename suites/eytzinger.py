"""A static sorted index in Eytzinger (BFS) order, searched branch-free and vectorised in torch.

Layout: the sorted keys are padded at the end with ``PAD`` (int64 max) up to a perfect binary
tree of 2^D − 1 nodes, D = ⌈log2(n + 2)⌉ (so at least one pad), and stored breadth first in a
1-based array of 2^D slots: node k has children 2k and 2k + 1, the root is at 1 and slot 0 is
unused. The top levels, which every search visits, share a handful of cache lines, and a node's
two children are adjacent, where a sorted array scatters the first probes of a binary search
across the whole array (Khuong & Morin, "Array layouts for comparison-based searching", 2017).

Search: every query descends exactly D levels, ``k = 2k + (tree[k] < q)``, with no branch and
no data-dependent trip count (one gather, compare and multiply-add per level over the batch).
The final k ∈ [2^D, 2^(D+1)) spells the path taken:

- in a perfect tree, going right at level j passes the node and its left subtree, 2^(D−j) keys,
  so ``k − 2^D`` is the number of keys < q: the lower-bound rank in sorted order (the range
  query uses it to index prefix sums, as ``searchsorted`` does);
- the lower bound's own node is the last one where the path went left: strip the trailing ones
  and that zero, ``k >> (trailing_ones(k) + 1)`` (the standard trick; here computed as
  ``(k + 1) / (2 · lowbit(k + 1))`` since torch has no count-trailing-zeros). The point query
  reads the key and value stored at that node, with no second array to visit.

The pad guarantees a lower bound exists for every int64 query (q ≤ PAD), so no "not found"
case; a pad's value is -1, so a query equal to ``PAD`` that is not a real key reads -1, the
right answer. Real keys may span the whole int64 range, ``PAD`` included (a real key sorts
before the pads). The search functions are pure functions of tensors and Python ints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: the padding key: int64's largest value, ≥ every query.
PAD = (1 << 63) - 1


@dataclass(frozen=True)
class Eytzinger:
    """A built layout: keys and values in BFS order (slot 0 unused), and the depth D."""

    keys: torch.Tensor
    values: torch.Tensor
    depth: int

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.values.nbytes)


def depth_for(n: int) -> int:
    """D = ⌈log2(n + 2)⌉: the smallest perfect tree holding n keys and at least one pad."""
    return (n + 1).bit_length()


def bfs_to_sorted(depth: int) -> torch.Tensor:
    """For each BFS slot k in [1, 2^D), the 0-based sorted position of its node (slot 0: -1).

    A node at level d (k ∈ [2^d, 2^(d+1))) is the (k − 2^d)-th of its level; in-order it sits at
    (2(k − 2^d) + 1) · 2^(D−1−d) − 1.
    """
    import torch

    order = torch.full((1 << depth,), -1, dtype=torch.int64)
    for level in range(depth):
        first = 1 << level
        slots = torch.arange(first, 2 * first, dtype=torch.int64)
        order[first:2 * first] = (2 * (slots - first) + 1) * (1 << (depth - 1 - level)) - 1
    return order


def build(sorted_keys: torch.Tensor, sorted_values: torch.Tensor) -> Eytzinger:
    """The Eytzinger layout of keys sorted ascending (distinct) and their values."""
    import torch

    sorted_keys = sorted_keys.to(torch.int64).flatten()
    sorted_values = sorted_values.to(torch.int64).flatten()
    n = sorted_keys.numel()
    if sorted_values.numel() != n:
        raise ValueError(f"{n} keys but {sorted_values.numel()} values")
    if n > 1 and not bool((sorted_keys[1:] > sorted_keys[:-1]).all()):
        raise ValueError("keys must be sorted ascending and distinct")
    depth = depth_for(n)
    size = (1 << depth) - 1
    padded_keys = torch.full((size,), PAD, dtype=torch.int64)
    padded_keys[:n] = sorted_keys
    padded_values = torch.full((size,), -1, dtype=torch.int64)
    padded_values[:n] = sorted_values
    order = bfs_to_sorted(depth)
    keys = torch.full((1 << depth,), PAD, dtype=torch.int64)
    values = torch.full((1 << depth,), -1, dtype=torch.int64)
    keys[1:] = padded_keys[order[1:]]
    values[1:] = padded_values[order[1:]]
    return Eytzinger(keys=keys, values=values, depth=depth)


def descend(tree: torch.Tensor, queries: torch.Tensor, depth: int) -> torch.Tensor:
    """The leaf-level index k ∈ [2^D, 2^(D+1)) each query reaches after D branch-free steps."""
    import torch

    k = torch.ones_like(queries)
    for _ in range(depth):  # index_select: the plain 1-D gather (tree[k] costs ~1.6× on CPU)
        k = 2 * k + (tree.index_select(0, k) < queries)
    return k


def lower_bound_rank(tree: torch.Tensor, queries: torch.Tensor, depth: int) -> torch.Tensor:
    """The number of keys < q, for each query (its lower bound's rank in sorted order)."""
    return descend(tree, queries, depth) - (1 << depth)


def point(tree: torch.Tensor, values: torch.Tensor, queries: torch.Tensor,
          depth: int) -> torch.Tensor:
    """The value of each query, or -1 where it is absent."""
    import torch

    after = descend(tree, queries, depth) + 1
    node = after // (2 * (after & -after))  # k >> (trailing ones of k + 1)
    return torch.where(tree.index_select(0, node) == queries, values.index_select(0, node), -1)


def range_count_sum(tree: torch.Tensor, prefix: torch.Tensor, lo: torch.Tensor,
                    hi: torch.Tensor, depth: int) -> torch.Tensor:
    """Per query the count and the value sum of keys in [lo, hi), as a B × 2 int64 tensor.

    ``prefix`` holds n + 1 prefix sums of the values in sorted order (prefix[0] = 0); both
    lower-bound ranks are ≤ n (a pad bounds every query). An empty or inverted range gives (0, 0).
    """
    import torch

    start = lower_bound_rank(tree, lo, depth)
    end = torch.maximum(lower_bound_rank(tree, hi, depth), start)
    sums = prefix.index_select(0, end) - prefix.index_select(0, start)
    return torch.stack((end - start, sums), dim=1)
