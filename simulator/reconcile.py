"""``reconcile``: compare a run's ledger with what the pipeline shows.

Expected numbers come from the ledger's *accepted* tally. Found numbers are the pipeline's
now minus its baseline (the reading the run recorded before sending, or ``--baseline FILE``
from ``snapshot``): aggregates are cumulative for the whole stack. The archive check reads
only the Parquet objects that appeared after the baseline.

Consumers are asynchronous, so the comparison is repeated until every metric matches or
``--wait`` seconds have passed; only then is a difference reported (exit status 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from clickstream.schema import FUNNEL_STEPS
from simulator.pipeline import ArchiveSummary, PipelineState

REVENUE_TOLERANCE = 0.01
VISITORS_RELATIVE_ERROR = 0.02  # the unique-visitor sketch's stated bound


@dataclass(frozen=True)
class Metric:
    name: str
    expected: float
    found: float | None  # None: could not be read
    tolerance: float = 0.0
    checked: bool = True  # informational rows are shown but never fail
    group: str = ""

    @property
    def difference(self) -> float | None:
        return None if self.found is None else self.found - self.expected

    @property
    def ok(self) -> bool:
        if not self.checked:
            return True
        difference = self.difference
        return difference is not None and abs(difference) <= self.tolerance


def _delta(now: int | float | None, before: int | float | None) -> float | None:
    if now is None:
        return None
    return now - (before or 0)


def _map_delta(
    now: Mapping[str, int] | None, before: Mapping[str, int] | None, key: str
) -> float | None:
    if now is None:
        return None
    return now.get(key, 0) - (before or {}).get(key, 0)


def compare(
    ledger: Mapping[str, Any],
    current: PipelineState,
    baseline: PipelineState | None,
    archive: ArchiveSummary | None = None,
    *,
    archive_expected: bool = False,
) -> list[Metric]:
    """Every metric: expected from the ledger, found = current - baseline. Pure."""
    base = baseline or PipelineState()
    accepted = ledger["accepted"]
    metrics = [
        Metric(
            "stats.total_events",
            accepted["events"],
            _delta(current.total_events, base.total_events),
            group="stats",
        ),
    ]
    types = set(accepted["events_by_type"])
    if current.events_by_type is not None:
        types |= {
            name
            for name in current.events_by_type
            if _map_delta(current.events_by_type, base.events_by_type, name)
        }
    for name in sorted(types):
        metrics.append(
            Metric(
                f"stats.events_by_type.{name}",
                accepted["events_by_type"].get(name, 0),
                _map_delta(current.events_by_type, base.events_by_type, name),
                group="stats",
            )
        )
    metrics.append(
        Metric(
            "stats.page_views",
            accepted["events_by_type"].get("page_view", 0),
            _delta(current.page_views_total, base.page_views_total),
            group="stats",
        )
    )
    metrics.append(
        Metric(
            "stats.sessions",
            accepted["sessions"],
            _delta(current.sessions, base.sessions),
            group="stats",
        )
    )
    revenue_found = _delta(current.revenue, base.revenue)
    metrics.append(
        Metric(
            "stats.revenue",
            accepted["revenue"],
            None if revenue_found is None else round(revenue_found, 2),
            tolerance=REVENUE_TOLERANCE,
            group="stats",
        )
    )
    metrics.append(
        Metric(
            "funnel.sessions",
            accepted["sessions"],
            _delta(current.funnel_sessions, base.funnel_sessions),
            group="funnel",
        )
    )
    for step in FUNNEL_STEPS:
        metrics.append(
            Metric(
                f"funnel.{step}",
                accepted["funnel"][step],
                _map_delta(current.funnel, base.funnel, step),
                group="funnel",
            )
        )
    expected_pages: Mapping[str, int] = accepted["page_views"]
    pages = set(expected_pages)
    if current.pages is not None:
        pages |= {p for p in current.pages if _map_delta(current.pages, base.pages, p)}
    metrics.append(
        Metric(
            "pages.views (all pages)",
            sum(expected_pages.values()),
            None
            if current.pages is None
            else sum(_map_delta(current.pages, base.pages, p) or 0 for p in pages),
            group="pages",
        )
    )
    for page in sorted(pages):
        metrics.append(
            Metric(
                f"pages.{page}",
                expected_pages.get(page, 0),
                _map_delta(current.pages, base.pages, page),
                group="page",
            )
        )
    metrics.extend(web_metrics(accepted, current, base))
    archived = accepted["events"] + accepted.get("bots", 0)  # bots are archived, not counted
    if archive is not None:
        metrics.extend(archive_metrics(archived, archive))
    elif archive_expected:  # could not be read: every archive row is "n/a"
        metrics.extend(
            Metric(m.name, m.expected, None, checked=m.checked, group=m.group)
            for m in archive_metrics(archived, ArchiveSummary(0, 0, 0, 0, 0, 0))
        )
    return metrics


def web_metrics(
    accepted: Mapping[str, Any], current: PipelineState, base: PipelineState
) -> list[Metric]:
    """Visitors (within the sketch's error), bounces, visit time, bots and visits by channel,
    device, browser, OS and country (exact)."""
    if "visitors" not in accepted:  # a ledger written before these were kept
        return []
    expected_visitors = accepted["visitors"]
    metrics = [
        # Distinct visitors do not subtract: checked only against an empty starting point.
        Metric(
            "stats.visitors",
            expected_visitors,
            current.visitors,
            tolerance=max(2.0, VISITORS_RELATIVE_ERROR * expected_visitors),
            checked=not base.visitors,
            group="visitors",
        ),
    ]
    # (metric, ledger key, reading): exact counts, so the baseline subtracts
    for name, key, field in (
        ("stats.bounces", "bounces", "bounces"),
        ("stats.visit_duration_s", "visit_duration_s", "visit_duration_s"),
        ("stats.bots_excluded", "bots", "bots"),
    ):
        found = _delta(getattr(current, field), getattr(base, field))
        metrics.append(Metric(name, accepted[key], found, group="visitors"))
    for dimension, expected in accepted["visits_by"].items():
        now = (current.visits_by or {}).get(dimension) if current.visits_by is not None else None
        before = (base.visits_by or {}).get(dimension)
        values = set(expected) | {v for v in now or {} if _map_delta(now, before, v)}
        for value in sorted(values):
            metrics.append(
                Metric(
                    f"visits.{dimension}.{value}",
                    expected.get(value, 0),
                    _map_delta(now, before, value),
                    group="breakdowns",
                )
            )
    return metrics


def archive_metrics(accepted_events: int, archive: ArchiveSummary) -> list[Metric]:
    return [
        # Re-cut (bisected) batches may archive a record twice until the hour is compacted;
        # exactly-once is judged on distinct ids, the extra rows are shown.
        Metric(
            "archive.rows (run's ids, before compaction)",
            accepted_events,
            archive.run_rows,
            checked=False,
            group="archive",
        ),
        Metric(
            "archive.distinct event_ids (run's ids)",
            accepted_events,
            archive.run_distinct_ids,
            group="archive",
        ),
        Metric("archive.accepted ids missing", 0, archive.missing_ids, group="archive"),
        Metric(
            "archive.rows in new objects (all)",
            accepted_events,
            archive.rows,
            checked=False,
            group="archive",
        ),
        Metric(
            "archive.distinct event_ids in new objects (all)",
            accepted_events,
            archive.distinct_ids,
            checked=False,
            group="archive",
        ),
    ]


def differences(metrics: list[Metric]) -> list[Metric]:
    return [metric for metric in metrics if not metric.ok]


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _fmt_diff(value: float | None) -> str:
    if value is None:
        return "n/a"
    return ("+" if value > 0 else "") + _fmt(value)


def render(metrics: list[Metric], *, show_all_pages: bool = False, title: str = "") -> Table:
    table = Table(title=title or "reconcile: ledger vs pipeline")
    table.add_column("metric")
    table.add_column("expected", justify="right")
    table.add_column("found", justify="right")
    table.add_column("difference", justify="right")
    page_rows = [m for m in metrics if m.group == "page"]
    shown_pages = {m.name for m in page_rows if show_all_pages or not m.ok}
    hidden = len(page_rows) - len(shown_pages)
    for metric in metrics:
        if metric.group == "page" and metric.name not in shown_pages:
            continue
        style = "" if metric.ok else "bold red"
        difference = _fmt_diff(metric.difference)
        if not metric.checked:
            style = "dim"  # (a log has no dim: the column says it too)
            difference = f"{difference} (not checked)"
        table.add_row(
            metric.name, _fmt(metric.expected), _fmt(metric.found), difference, style=style
        )
        if metric.name.startswith("pages.views") and hidden:
            table.add_row(
                f"  ({hidden} pages match; --all-pages lists them)", "", "", "", style="dim"
            )
    return table


@dataclass
class ReconcileResult:
    metrics: list[Metric]
    attempts: int
    waited: float
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not differences(self.metrics)


def reconcile_until_converged(
    measure: Callable[[], list[Metric]],
    *,
    wait: float,
    poll: float = 2.0,
    on_attempt: Callable[[int, list[Metric]], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[Metric], int, float]:
    """Measure until nothing differs or ``wait`` seconds have passed."""
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        metrics = measure()
        if on_attempt:
            on_attempt(attempt, metrics)
        elapsed = clock() - started
        if not differences(metrics) or elapsed >= wait:
            return metrics, attempt, elapsed
        sleep(min(poll, max(0.0, wait - elapsed)))


def diagnose(metrics: list[Metric]) -> list[str]:
    """Hints from the pattern of differences."""
    by_name = {metric.name: metric for metric in metrics}
    total = by_name.get("stats.total_events")
    archived = by_name.get("archive.distinct event_ids (run's ids)")
    if total is None or archived is None or total.difference is None:
        return []
    if archived.difference is not None and total.difference == archived.difference < 0:
        return [
            f"the aggregates and the archive both lack the same {-total.difference:,.0f} "
            "accepted event(s): they were lost between the API and the consumers (the stream), "
            "not by one consumer"
        ]
    return []


def _readings(count: int) -> str:
    return f"{count} reading" + ("" if count == 1 else "s")


def print_result(console: Console, result: ReconcileResult, *, show_all_pages: bool) -> None:
    console.print(render(result.metrics, show_all_pages=show_all_pages))
    for note in result.notes + diagnose(result.metrics):
        console.print(f"[yellow]note:[/yellow] {note}")
    bad = differences(result.metrics)
    if bad:
        console.print(
            f"[bold red]{len(bad)} metric(s) differ[/bold red] after {result.waited:.0f}s "
            f"({_readings(result.attempts)})."
        )
    else:
        console.print(
            f"[bold green]all {sum(m.checked for m in result.metrics)} metrics match[/bold green]"
            f" ({_readings(result.attempts)}, {result.waited:.1f}s)."
        )
