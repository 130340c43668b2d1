"""Space-Saving's guarantees, checked against exact counts (Hypothesis)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.summaries import SpaceSaving

values = st.lists(
    st.tuples(st.integers(0, 400).map(lambda i: f"/p/{i}"), st.integers(1, 20)), max_size=600
)


def summarise(stream, capacity):
    summary = SpaceSaving(capacity)
    summary.update(stream)
    return summary


def check(summary: SpaceSaving, exact: Counter) -> None:
    total = sum(exact.values())
    assert summary.total == total
    bound = summary.max_error()
    assert bound <= total / summary.capacity
    for value, count in exact.items():
        if count > bound:
            assert value in summary.counts, (value, count, bound)
    for value, (estimate, error) in summary.counts.items():
        assert estimate - error <= exact[value] <= estimate


@settings(max_examples=80, deadline=None)
@given(values, st.integers(2, 40))
def test_every_value_above_the_bound_is_kept_and_estimates_bracket_the_truth(stream, capacity):
    exact: Counter = Counter()
    for value, weight in stream:
        exact[value] += weight
    check(summarise(stream, capacity), exact)


@settings(max_examples=80, deadline=None)
@given(st.lists(values, min_size=1, max_size=6), st.integers(2, 40))
def test_merged_summaries_keep_the_same_guarantees(streams, capacity):
    exact: Counter = Counter()
    merged = SpaceSaving(capacity)
    for stream in streams:
        for value, weight in stream:
            exact[value] += weight
        merged.merge(summarise(stream, capacity))
    check(merged, exact)


def test_a_summary_survives_its_encoding():
    summary = summarise([("/a", 3), ("/b", 1), ("/c", 9)], 2)
    assert SpaceSaving.from_json(summary.to_json()) == summary


@settings(max_examples=80, deadline=None)
@given(st.lists(values, min_size=1, max_size=6), st.integers(2, 40))
def test_a_summary_of_exact_counts_merges_with_the_same_guarantees(streams, capacity):
    """What a reader does with the pending deltas: their exact counts, summarised at once."""
    exact: Counter = Counter()
    merged = SpaceSaving(capacity)
    for number, stream in enumerate(streams):
        counts: Counter = Counter()
        for value, weight in stream:
            counts[value] += weight
        exact.update(counts)
        merged.merge(
            SpaceSaving.of_counts(counts, capacity) if number % 2 else summarise(stream, capacity)
        )
    check(merged, exact)
    alone = SpaceSaving.of_counts(exact, capacity)
    check(alone, exact)
    assert all(error == 0 for _, error in alone.counts.values())
