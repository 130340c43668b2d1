"""Unique-visitor sketches: error against exact counts, merging is a union."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.hll import HyperLogLog, visitor_hash

MAX_RELATIVE_ERROR = 0.02  # the bound at 10^6 visitors; the standard error is 0.81%


def sketch_of(keys) -> HyperLogLog:
    sketch = HyperLogLog()
    sketch.update(visitor_hash(key) for key in keys)
    return sketch


@pytest.mark.parametrize("distinct", [1, 7, 150, 4_000, 60_000, 1_000_000])
def test_the_estimate_is_within_two_percent_of_the_exact_count(distinct):
    # every visitor comes three times: repeats never add
    sketch = sketch_of(
        f"visitor-{i % distinct}" for i in range(distinct * (3 if distinct < 10**5 else 1))
    )
    assert abs(sketch.estimate() - distinct) <= max(1, MAX_RELATIVE_ERROR * distinct)


def test_small_counts_are_all_but_exact():
    for distinct in range(0, 300):
        assert abs(sketch_of(f"v{i}" for i in range(distinct)).count() - distinct) <= 2


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 5_000), max_size=400),
    st.lists(st.integers(0, 5_000), max_size=400),
)
def test_merging_two_sketches_is_the_sketch_of_the_union(left, right):
    merged = sketch_of(map(str, left))
    merged.merge(sketch_of(map(str, right)))
    assert merged.registers == sketch_of(map(str, left + right)).registers
    again = HyperLogLog(merged.registers)
    again.merge(sketch_of(map(str, right)))  # folding a contribution twice counts it once
    assert again.registers == merged.registers


def test_a_sketch_survives_its_stored_form_and_rejects_a_wrong_size():
    sketch = sketch_of(f"v{i}" for i in range(1000))
    assert HyperLogLog.from_bytes(sketch.to_bytes()).registers == sketch.registers
    assert len(sketch_of([]).to_bytes()) < 100  # a quiet minute costs almost nothing
    with pytest.raises(ValueError, match="registers"):
        HyperLogLog(b"\0" * 10)
