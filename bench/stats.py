"""Pure helpers: percentiles, medians, rates and formatting (unit-tested, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks
    (numpy's default). NaN for no values."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is not within [0, 100]")
    ordered = sorted(values)
    if not ordered:
        return math.nan
    if len(ordered) == 1:
        return float(ordered[0])
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    fraction = position - low
    if fraction == 0:
        return float(ordered[low])
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)


def median(values: Iterable[float]) -> float:
    return percentile(values, 50.0)


def ratio(value: float, baseline: float) -> float:
    """``value / baseline``; NaN when the baseline is zero or missing."""
    if not baseline or math.isnan(baseline) or math.isnan(value):
        return math.nan
    return value / baseline


def paired_ratios(values: Sequence[float], baselines: Sequence[float]) -> list[float]:
    """``value / baseline`` of each pair measured back to back: a machine that speeds up or
    slows down between pairs moves both sides of a pair alike, so the ratios spread less
    than the two medians' ratio does."""
    if len(values) != len(baselines):
        raise ValueError(f"{len(values)} values against {len(baselines)} baselines")
    return [ratio(value, baseline) for value, baseline in zip(values, baselines, strict=True)]


def per_thousand(count: float, events: int) -> float:
    return math.nan if events <= 0 else count * 1000.0 / events


def weighted_expand(pairs: Iterable[tuple[float, int]]) -> list[float]:
    """``[(latency, weight)]`` as a flat list, each latency repeated ``weight`` times (for
    percentiles over events when latencies are measured per batch)."""
    out: list[float] = []
    for value, weight in pairs:
        out.extend([value] * max(0, weight))
    return out


def counter_catch_up(
    acks: Sequence[tuple[float, float, int]], polls: Sequence[tuple[float, float]]
) -> list[tuple[float, int]]:
    """Per-batch visibility latency from a monotonically growing counter.

    ``acks``: ``(sent_at, acked_at, accepted)`` per POSTed batch; ``polls``: ``(observed_at,
    counter_delta)`` in observation order, the counter's growth since the run began. Batches
    are ordered by acknowledgement; batch k is taken as visible at the first poll whose
    counter reaches the cumulative accepted count through k ("counter catch-up"). Returns
    ``(latency_s, accepted)`` per batch; latency is ``inf`` when never observed.
    """
    ordered = sorted((a for a in acks if a[2] > 0), key=lambda a: a[1])
    out: list[tuple[float, int]] = []
    cumulative = 0
    index = 0
    for sent_at, _acked_at, accepted in ordered:
        cumulative += accepted
        while index < len(polls) and polls[index][1] < cumulative:
            index += 1
        if index == len(polls):
            out.append((math.inf, accepted))
        else:
            out.append((max(0.0, polls[index][0] - sent_at), accepted))
    return out


def fmt_number(value: float | None, digits: int = 3) -> str:
    """Readable numbers: thousands separators for large ones, ``digits`` significant figures
    for small ones; '-' for missing, 'inf' for infinity."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
    return f"{value:.{decimals}f}"


def crossing(series: list[tuple[float, int]], level: float) -> float | None:
    """First time the series reaches ``level`` (linear between samples)."""
    previous: tuple[float, int] | None = None
    for at, value in series:
        if value >= level:
            if previous is None or value == previous[1]:
                return at
            fraction = (level - previous[1]) / (value - previous[1])
            return previous[0] + fraction * (at - previous[0])
        previous = (at, value)
    return None


def slope_rate(series: list[tuple[float, int]], total: int) -> float | None:
    """Events/s between reaching 10% and 90% of ``total``: the component's processing rate
    while it has a backlog, without its start-up and last-batch window."""
    low, high = crossing(series, 0.1 * total), crossing(series, 0.9 * total)
    if low is None or high is None or high <= low:
        return None
    return 0.8 * total / (high - low)
