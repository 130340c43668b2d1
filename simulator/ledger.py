"""The ground-truth ledger: what the simulator sent, what the pipeline accepted, and the
numbers the pipeline's aggregates should show for it. Pure arithmetic, plus JSON in and out.

The aggregates mirror the pipeline's definitions (``clickstream.aggregates``): events by
type; page views by page (``page_view`` events only); sessions = distinct session ids;
funnel step = distinct sessions with at least one event of that step's type and of every
earlier step's; revenue = sum of ``value`` over ``purchase`` events.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from clickstream.schema import FUNNEL_STEPS
from simulator.catalogue import CRAWLER_AGENTS, SOURCES

LEDGER_VERSION = 1
MAX_ERROR_SAMPLES = 20


# Ground truth for channels: the channel each source was meant as, found by its referrer
# (every source has its own), not by the product's classifier.
CHANNEL_BY_REFERRER = {source.referrer: source.channel for source in SOURCES.items}
BOT_AGENTS = frozenset(CRAWLER_AGENTS.items)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
VISIT_DIMENSIONS = ("channel", "device_type", "browser", "os", "country")


@dataclass
class Visit:
    """What the ledger keeps of one session: its span, page views and where it came from."""

    first: datetime
    last: datetime
    page_views: int = 0
    values: dict[str, str] = field(default_factory=dict)


def _visit_values(record: Mapping[str, Any]) -> dict[str, str]:
    device = record.get("device") or {}
    values = {
        "channel": CHANNEL_BY_REFERRER.get(record.get("referrer"), "Referral"),
        "device_type": device.get("device_type"),
        "browser": device.get("browser"),
        "os": device.get("platform"),
        "country": (record.get("location") or {}).get("country"),
    }
    return {name: str(value) for name, value in values.items() if value}


@dataclass
class Tally:
    """Counts over a set of event records. Crawler records count as bots and nothing else,
    as the pipeline counts them."""

    events: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    page_views: Counter[str] = field(default_factory=Counter)
    sessions: set[str] = field(default_factory=set)
    funnel: dict[str, set[str]] = field(default_factory=lambda: {s: set() for s in FUNNEL_STEPS})
    revenue: Decimal = Decimal(0)
    bots: int = 0
    visitors: set[str] = field(default_factory=set)
    visits: dict[str, Visit] = field(default_factory=dict)

    def add(self, record: Mapping[str, Any]) -> None:
        if record.get("user_agent") in BOT_AGENTS:
            self.bots += 1
            return
        event_type = str(record["event_type"])
        session = str(record.get("session_id") or f"user:{record.get('user_id')}")
        self._visit(session, record, event_type)
        if record.get("user_id"):
            self.visitors.add(str(record["user_id"]))
        self.events += 1
        self.by_type[event_type] += 1
        self.sessions.add(session)
        if event_type in self.funnel:
            self.funnel[event_type].add(session)
        if event_type == "page_view" and record.get("page"):
            self.page_views[str(record["page"])] += 1
        if event_type == "purchase" and record.get("value"):
            self.revenue += Decimal(str(record["value"]))

    def _visit(self, session: str, record: Mapping[str, Any], event_type: str) -> None:
        stamp = record.get("timestamp")  # the server's clock when a record has none
        when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) if stamp else _EPOCH
        visit = self.visits.get(session)
        if visit is None:
            visit = self.visits[session] = Visit(when, when, 0, _visit_values(record))
        elif when < visit.first:  # sent out of order: the earliest event says where from
            visit.first, visit.values = when, _visit_values(record)
        visit.last = max(visit.last, when)
        if event_type == "page_view" and record.get("page"):
            visit.page_views += 1

    def _funnel(self) -> dict[str, int]:
        """Sessions at each step that reached it and every step before it."""
        reached = set(self.sessions)
        counts: dict[str, int] = {}
        for step in FUNNEL_STEPS:
            reached &= self.funnel[step]
            counts[step] = len(reached)
        return counts

    def add_all(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            self.add(record)

    def as_dict(self) -> dict[str, Any]:
        visits_by: dict[str, Counter[str]] = {name: Counter() for name in VISIT_DIMENSIONS}
        for visit in self.visits.values():
            for name, value in visit.values.items():
                visits_by[name][value] += 1
        return {
            "events": self.events,
            "events_by_type": dict(sorted(self.by_type.items())),
            "page_views": dict(sorted(self.page_views.items())),
            "sessions": len(self.sessions),
            "funnel": self._funnel(),
            "revenue": float(round(self.revenue, 2)),
            "bots": self.bots,
            "visitors": len(self.visitors),
            "bounces": sum(1 for visit in self.visits.values() if visit.page_views == 1),
            # whole seconds of event time, as the pipeline counts them
            "visit_duration_s": sum(
                int(visit.last.timestamp()) - int(visit.first.timestamp())
                for visit in self.visits.values()
            ),
            "visits_by": {name: dict(sorted(c.items())) for name, c in visits_by.items()},
        }


@dataclass
class Delivery:
    """The outcome of handing one batch to the API (or the stream)."""

    accepted_ids: list[str] = field(default_factory=list)
    rejected: int = 0  # answered "not accepted" (validation, per-record failure, 4xx)
    undelivered: int = 0  # no definite answer after the retries (429/5xx/connection errors)
    retries: int = 0
    requests: int = 0
    possible_duplicates: int = 0  # records re-sent after an attempt that may have landed
    errors: list[str] = field(default_factory=list)


@dataclass
class Ledger:
    """Everything sent and accepted in a run; thread-safe ``record``."""

    meta: dict[str, Any] = field(default_factory=dict)
    sent: Tally = field(default_factory=Tally)
    accepted: Tally = field(default_factory=Tally)
    accepted_ids: list[str] = field(default_factory=list)
    journeys: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    undelivered: int = 0
    retries: int = 0
    requests: int = 0
    possible_duplicates: int = 0
    error_samples: list[str] = field(default_factory=list)
    errors_by_message: Counter[str] = field(default_factory=Counter)
    baseline: dict[str, Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(
        self,
        records: list[dict[str, Any]],
        delivery: Delivery,
        journeys: Iterable[str] = (),
    ) -> None:
        accepted = set(delivery.accepted_ids)
        with self._lock:
            self.sent.add_all(records)
            self.journeys.update(journeys)
            for record in records:
                if record["event_id"] in accepted:
                    self.accepted.add(record)
                    self.accepted_ids.append(str(record["event_id"]))
            self.rejected += delivery.rejected
            self.undelivered += delivery.undelivered
            self.retries += delivery.retries
            self.requests += delivery.requests
            self.possible_duplicates += delivery.possible_duplicates
            for message in delivery.errors:
                self.errors_by_message[message[:200]] += 1
                if len(self.error_samples) < MAX_ERROR_SAMPLES:
                    self.error_samples.append(message[:500])

    @property
    def not_accepted(self) -> int:
        return self.sent.events + self.sent.bots - self.accepted.events - self.accepted.bots

    def snapshot_counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "sent": self.sent.events + self.sent.bots,
                "accepted": self.accepted.events + self.accepted.bots,
                "rejected": self.rejected,
                "undelivered": self.undelivered,
                "retries": self.retries,
            }

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "version": LEDGER_VERSION,
                "meta": self.meta,
                "sent": self.sent.as_dict(),
                "accepted": self.accepted.as_dict(),
                "not_accepted": {
                    "total": self.not_accepted,
                    "rejected": self.rejected,
                    "undelivered": self.undelivered,
                },
                "journeys": dict(sorted(self.journeys.items())),
                "requests": self.requests,
                "retries": self.retries,
                "possible_duplicates": self.possible_duplicates,
                "errors": dict(self.errors_by_message.most_common(MAX_ERROR_SAMPLES)),
                "baseline": self.baseline,
                "accepted_event_ids": list(self.accepted_ids),
            }

    def write(self, path: str | Path) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(json.dumps(self.as_dict(), indent=1) + "\n", encoding="utf-8")
        temporary.replace(target)


def read_ledger(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise LedgerError(f"cannot read ledger {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != LEDGER_VERSION:
        raise LedgerError(f"{path} is not a simulator ledger (version {LEDGER_VERSION})")
    return data


class LedgerError(ValueError):
    """The ledger file is missing or not one of ours."""
