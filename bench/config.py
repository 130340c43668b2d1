"""Run settings shared by the figures: full run (~10 min on 2 cores) or ``--quick`` (~2 min)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class RunConfig:
    quick: bool = False
    seed: int = 20261124
    repeats: int = 5

    def pick(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def pickf(self, full: float, quick: float) -> float:
        return quick if self.quick else full


@contextlib.contextmanager
def steady_heap() -> Iterator[None]:
    """Collect, then freeze what is alive (the bench's fixtures, moto's state) so the garbage
    collector only walks what the measured code allocates, as in a fresh Lambda heap;
    without this, gen-2 collections over the bench's own data add 50-250% at random."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
