"""A vectorised open-addressing hash table in torch: int64 keys → int64 values.

Design (what a GPU or XLA kernel can run unchanged, and a CPU can run as a few big tensor ops):

- **Layout**: two flat int64 arrays, keys and values (structure of arrays), of ``capacity``
  slots plus P − 1 wrap-around copies of the first slots (P below), so that the P slots a
  lookup reads are always contiguous. ``capacity`` is the smallest power of two ≥ 2 × n, so the
  load factor is at most 0.5 and the slot of a hash is a mask rather than a modulo. An empty slot
  holds key ``EMPTY`` (-1) and value -1, so keys live in [0, 2⁶³ − 1]; queries may be any int64.
- **Hash**: Fibonacci (multiplicative) hashing: ``(key × ⌊2⁶⁴/φ⌋ mod 2⁶⁴) >> (64 − log2 capacity)``,
  the top bits of the product. Torch's int64 multiply wraps around (two's complement, as in C on
  every target torch supports), which is the mod 2⁶⁴ we want; the arithmetic right shift then
  ``& mask`` keeps exactly the top ``log2 capacity`` bits.
- **Collisions**: linear probing. The build records the largest displacement of any key from its
  home slot; a key is therefore always within ``probes = max displacement + 1`` slots of home.
- **Lookup**: every query reads its ``probes`` consecutive slots at once (one B × P gather of
  rows of an unfolded view, no data-dependent loop, no host synchronisation), compares them
  with the query and takes the matching slot. Keys are distinct, so at most one slot matches.
  A query of -1 "matches" empty slots, whose value is -1: the right answer, no special case.
  The price of the fixed trip count: P slots read per query (P is ~15–25 here: the longest
  cluster, not the mean), where a scalar loop stops at the key or the first empty slot after
  about 1.2–1.5 probes at these loads. In exchange the lookup is branch-free and its P slots are
  contiguous (2–4 cache lines), the form a GPU or a SIMD unit runs at full width.

The lookup, :func:`probe`, is a pure function of its arguments (tensors and Python ints), so an
adapter can move the tensors to its device and call it; nothing is captured in a closure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: ⌊2⁶⁴ / φ⌋ (0x9E3779B97F4A7C15), the Fibonacci-hashing multiplier, as a signed int64.
FIBONACCI = 0x9E3779B97F4A7C15 - (1 << 64)
#: the key of an empty slot; table keys must be non-negative.
EMPTY = -1
#: the most slots per key (capacity ≥ n / MAX_LOAD).
MAX_LOAD = 0.5


@dataclass(frozen=True)
class HashTable:
    """A built table: the arrays and the scalars :func:`probe` needs."""

    keys: torch.Tensor
    values: torch.Tensor
    shift: int
    mask: int
    probes: int

    @property
    def capacity(self) -> int:
        return self.mask + 1

    @property
    def load(self) -> float:
        return int((self.keys[:self.capacity] != EMPTY).sum()) / self.capacity

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.values.nbytes)

    def inputs(self, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                    int, int, int]:
        """The arguments of :func:`probe` for these queries."""
        return (self.keys, self.values, queries, self.shift, self.mask, self.probes)


def home_slot(keys: torch.Tensor, shift: int, mask: int) -> torch.Tensor:
    """Each key's home slot: the top bits of key × FIBONACCI (mod 2⁶⁴)."""
    return ((keys * FIBONACCI) >> shift) & mask


def capacity_bits(n: int) -> int:
    """log2 of the smallest power-of-two capacity ≥ n / MAX_LOAD (at least 2 slots)."""
    return max(1, (2 * n - 1).bit_length())


def build(keys: torch.Tensor, values: torch.Tensor) -> HashTable:
    """Insert distinct non-negative int64 ``keys`` with their ``values`` (vectorised).

    Insertion runs in rounds, all pending keys at once: each tries the slot at its current
    displacement; among keys trying the same free slot the lowest index wins (a deterministic
    ``scatter_reduce(amin)``, so the layout is the same on every run and thread count); the rest
    move one slot on. A key lands only past slots it found occupied, and occupied slots stay
    occupied, so every key is reachable from its home through occupied slots: a valid
    linear-probing table. Rounds = max displacement + 1 (tens, even at 10⁷ keys).
    """
    import torch

    keys = keys.to(torch.int64).flatten()
    values = values.to(torch.int64).flatten()
    if keys.shape != values.shape:
        raise ValueError(f"{keys.numel()} keys but {values.numel()} values")
    n = keys.numel()
    if n and int(keys.min()) < 0:
        raise ValueError("hash table keys must be non-negative (-1 marks an empty slot)")
    if torch.unique(keys).numel() != n:
        raise ValueError("hash table keys must be distinct")
    bits = capacity_bits(n)
    capacity, shift = 1 << bits, 64 - bits
    mask = capacity - 1
    table_keys = torch.full((capacity,), EMPTY, dtype=torch.int64)
    table_values = torch.full((capacity,), -1, dtype=torch.int64)
    owner = torch.full((capacity,), n, dtype=torch.int64)  # scratch: lowest claimant per slot
    home = home_slot(keys, shift, mask)
    pending = torch.arange(n, dtype=torch.int64)
    displacement = torch.zeros(n, dtype=torch.int64)
    longest = 0
    while pending.numel():
        slots = (home[pending] + displacement) & mask
        free = table_keys[slots] == EMPTY
        claimants, claimed = pending[free], slots[free]
        owner.scatter_reduce_(0, claimed, claimants, reduce="amin")
        won = owner[claimed] == claimants
        owner[claimed] = n
        table_keys[claimed[won]] = keys[claimants[won]]
        table_values[claimed[won]] = values[claimants[won]]
        placed = torch.zeros_like(free)
        placed[free] = won
        if bool(won.any()):
            longest = max(longest, int(displacement[placed].max()))
        pending, displacement = pending[~placed], displacement[~placed] + 1
    probes = longest + 1
    # Wrap-around copies: slots capacity … capacity + P − 2 repeat slots 0 … P − 2, so every
    # probe window is one contiguous run of P slots.
    return HashTable(keys=torch.cat((table_keys, table_keys[:probes - 1])),
                     values=torch.cat((table_values, table_values[:probes - 1])),
                     shift=shift, mask=mask, probes=probes)


def probe(table_keys: torch.Tensor, table_values: torch.Tensor, queries: torch.Tensor,
          shift: int, mask: int, probes: int) -> torch.Tensor:
    """The value of each query, or -1 where it is absent: ``probes`` slots read per query."""
    import torch

    home = home_slot(queries, shift, mask)
    # Row h of the unfolded view is slots h … h + P − 1 (the wrap-around copies make that
    # contiguous for every h < capacity): one gather of B × P keys, no index arithmetic.
    window = table_keys.unfold(0, probes, 1).index_select(0, home)
    match = window == queries.unsqueeze(1)
    slot = home + match.to(torch.uint8).argmax(dim=1)  # the first (only) match, else home
    return torch.where(match.any(dim=1), table_values.index_select(0, slot), -1)


def expected_probes(load: float, hit: bool) -> float:
    """Knuth's expected slots a scalar linear-probing lookup reads at load factor ``load``.

    Successful: ½(1 + 1/(1 − α)); unsuccessful: ½(1 + 1/(1 − α)²).
    """
    if hit:
        return 0.5 * (1 + 1 / (1 - load))
    return 0.5 * (1 + 1 / (1 - load) ** 2)
