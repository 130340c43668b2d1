"""Space-Saving: a fixed-size summary of the most frequent values, mergeable across shards
and days. Written here because the maintained implementation (Apache DataSketches) needs
numpy, which does not fit in the functions beside the pyarrow layer.

Guarantees (Metwally et al. 2005; merging: Berinde et al. 2010): with capacity ``k`` over a
total weight ``N``, every value whose true count exceeds ``N / k`` is in the summary, and each
kept estimate exceeds its true count by at most its ``error`` (itself at most ``N / k``).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CAPACITY = 128


@dataclass
class SpaceSaving:
    capacity: int = CAPACITY
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # value -> (estimate, error)
    total: int = 0

    def _floor(self) -> int:
        """What a value not kept may have had at most."""
        if len(self.counts) < self.capacity:
            return 0
        return min(estimate for estimate, _ in self.counts.values())

    def add(self, value: str, weight: int = 1) -> None:
        self.total += weight
        if value in self.counts:
            estimate, error = self.counts[value]
            self.counts[value] = (estimate + weight, error)
        elif len(self.counts) < self.capacity:
            self.counts[value] = (weight, 0)
        else:
            evicted = min(self.counts, key=lambda key: (self.counts[key][0], key))
            floor = self.counts.pop(evicted)[0]
            self.counts[value] = (floor + weight, floor)

    @classmethod
    def of_counts(cls, counts: Mapping[str, int], capacity: int = CAPACITY) -> SpaceSaving:
        """A summary of exact counts: the ``capacity`` largest, each with no error (a value
        left out had at most the smallest kept). A negative count (a net dimension's
        decrement) only lowers the total."""
        kept = heapq.nlargest(
            capacity, ((v, c) for v, c in counts.items() if c > 0), key=lambda kv: (kv[1], kv[0])
        )
        return cls(capacity, {value: (count, 0) for value, count in kept}, sum(counts.values()))

    def update(self, weights: Iterable[tuple[str, int]]) -> None:
        for value, weight in weights:
            self.add(value, weight)

    def merge(self, other: SpaceSaving) -> None:
        mine, theirs = self._floor(), other._floor()
        merged: dict[str, tuple[int, int]] = {}
        for value in self.counts.keys() | other.counts.keys():
            a_estimate, a_error = self.counts.get(value, (mine, mine))
            b_estimate, b_error = other.counts.get(value, (theirs, theirs))
            merged[value] = (a_estimate + b_estimate, a_error + b_error)
        kept = heapq.nlargest(self.capacity, merged.items(), key=lambda kv: (kv[1][0], kv[0]))
        self.counts = dict(kept)
        self.total += other.total

    def max_error(self) -> int:
        """No value outside the summary has a true count above this."""
        return self._floor()

    def top(self, limit: int) -> list[tuple[str, int, int]]:
        """``(value, estimate, error)``, largest estimates first."""
        ranked = heapq.nlargest(limit, self.counts.items(), key=lambda kv: (kv[1][0], kv[0]))
        return [(value, estimate, error) for value, (estimate, error) in ranked]

    def to_json(self) -> list[Any]:
        return [self.capacity, self.total, [[v, e, r] for v, (e, r) in self.counts.items()]]

    @classmethod
    def from_json(cls, value: Sequence[Any]) -> SpaceSaving:
        capacity, total, rows = value
        return cls(capacity, {v: (e, r) for v, e, r in rows}, total)
