"""HyperLogLog: a mergeable sketch of how many distinct visitors a bucket saw. Written here
for the same reason as ``summaries.SpaceSaving`` (DataSketches needs numpy).

Precision 14: 16,384 one-byte registers, a standard error of 1.04/sqrt(16384) = 0.81%, so
within 2% at 10^6 distinct visitors about 98% of the time. The estimate is Ertl's improved
raw estimator ("New cardinality estimation algorithms for HyperLogLog sketches", 2017), which
is unbiased from one visitor up without empirical bias tables. Registers hold ranks of a
64-bit hash; a sketch stores no id, and merging is a register-wise max (idempotent, so a
contribution folded twice counts once).
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Iterable

PRECISION = 14
REGISTERS = 1 << PRECISION
_RANK_BITS = 64 - PRECISION  # ranks go from 1 to _RANK_BITS + 1
_ALPHA_INF = 1 / (2 * math.log(2))


def visitor_hash(visitor: str) -> int:
    """The 64-bit hash a sketch keeps of a visitor key."""
    return int.from_bytes(hashlib.blake2b(visitor.encode(), digest_size=8).digest(), "little")


class HyperLogLog:
    __slots__ = ("registers",)

    def __init__(self, registers: bytes | bytearray | None = None) -> None:
        self.registers = bytearray(registers) if registers is not None else bytearray(REGISTERS)
        if len(self.registers) != REGISTERS:
            raise ValueError(f"a sketch has {REGISTERS} registers, not {len(self.registers)}")

    def add_hash(self, hashed: int) -> None:
        index = hashed >> _RANK_BITS
        rest = hashed & ((1 << _RANK_BITS) - 1)
        rank = _RANK_BITS - rest.bit_length() + 1
        if rank > self.registers[index]:
            self.registers[index] = rank

    def update(self, hashes: Iterable[int]) -> None:
        for hashed in hashes:
            self.add_hash(hashed)

    def merge(self, other: HyperLogLog) -> None:
        self.registers = bytearray(map(max, self.registers, other.registers))

    def estimate(self) -> float:
        histogram = [0] * (_RANK_BITS + 2)
        for rank in self.registers:
            histogram[rank] += 1
        m = REGISTERS
        z = m * _tau(1 - histogram[_RANK_BITS + 1] / m)
        for k in range(_RANK_BITS, 0, -1):
            z = 0.5 * (z + histogram[k])
        z += m * _sigma(histogram[0] / m)
        return _ALPHA_INF * m * m / z if z else 0.0

    def count(self) -> int:
        return round(self.estimate())

    def to_bytes(self) -> bytes:
        """Compressed registers: a few dozen bytes for a quiet minute, ~10 KB when full."""
        return zlib.compress(bytes(self.registers), 6)

    @classmethod
    def from_bytes(cls, blob: bytes) -> HyperLogLog:
        return cls(zlib.decompress(blob))


def _sigma(x: float) -> float:
    if x == 1:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if z == previous:
            return z


def _tau(x: float) -> float:
    if x in (0, 1):
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1 - x) ** 2 * y
        if z == previous:
            return z / 3
