"""Near-real-time aggregates, the pure part: what one batch of a shard adds to the counters,
given the state of the sessions it touches. Nothing here does I/O; ``clickstream.store``
owns the table and writes what this computes (the layout and its bounds: docs/aggregates.md).

A batch becomes one :class:`Delta`: increments per time bucket (``minute``, ``hour``,
``day``, ``all``), counts per dimension value and hour (pages, event types, sources…), the new
state of every session it touched, and the newest events for the live feed.

Sessions are followed per session, in the session's own event time: a visit ends after 30
minutes without an event of that session, so one client's clock can only ever move its own
sessions. A client's retry (the same ``event_id`` again) is recognised from the session's
recently seen ids, kept for ``DEDUPE_WINDOW`` of arrival time; the partition key follows
the session, so a retry lands on the shard that holds them.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from clickstream.hll import visitor_hash
from clickstream.schema import FUNNEL_STEPS, STANDARD_EVENT_TYPES, Event, page_path
from clickstream.traffic import channel, daily_salt, referrer_domain, source, utm, visitor_key

MINUTE_TTL = timedelta(days=3)
HOUR_TTL = timedelta(days=90)
SESSION_TIMEOUT = timedelta(minutes=30)
# A retried event_id is recognised for at least this long after it first arrived.
DEDUPE_WINDOW = timedelta(minutes=15)
# Ids remembered per session inside the window; past this the oldest are dropped (and
# counted: ``Delta.dedupe_ids_dropped``). 2,048 ids keep a session's state under ~40 KB.
MAX_SEEN_IDS = 2048
RECENT_EVENTS_KEPT = 50
REVENUE_QUANTUM = Decimal("0.000001")
FEED_PAGE_CHARS = 300  # the feed shows a page; its full path is in the archive
GRANULARITIES = ("minute", "hour", "day", "all")


@dataclass(frozen=True)
class DimensionSpec:
    """How a dimension is kept: every dimension has a top-N summary per shard and hour, and
    one per shard and day."""

    exact: bool = False  # also an exact count per value and day (unbounded values)
    all_time: bool = False  # also an all-time summary
    # counts go down as well as up (exit pages): rows are read exactly, so the exact counts
    # are kept per hour too
    net: bool = False


# What each breakdown counts: page views and events per event; the visit's own dimensions
# (where it came from, on what, from where) once per visit, on the visit's first event;
# exit pages per visit, moving with each page view; goals once per visit that converts.
DIMENSIONS: dict[str, DimensionSpec] = {
    "page": DimensionSpec(exact=True, all_time=True),
    "event_type": DimensionSpec(exact=True, all_time=True),
    "entry_page": DimensionSpec(exact=True, all_time=True),
    # net counts have no all-time summary: all-time exit pages are read from the days
    "exit_page": DimensionSpec(exact=True, net=True),
    "goal": DimensionSpec(all_time=True),
    "source": DimensionSpec(all_time=True),
    "referrer": DimensionSpec(all_time=True),
    "channel": DimensionSpec(all_time=True),
    "utm_medium": DimensionSpec(all_time=True),
    "utm_campaign": DimensionSpec(all_time=True),
    "device_type": DimensionSpec(all_time=True),
    "browser": DimensionSpec(all_time=True),
    "os": DimensionSpec(all_time=True),
    "country": DimensionSpec(all_time=True),
    "city": DimensionSpec(all_time=True),
}
MAX_GOALS_PER_VISIT = 64  # goal hashes a visit remembers; past this a goal may count twice
NOT_GOALS = frozenset({"page_view"})
CUSTOM_TYPE = "custom"
_SESSION_BIT = 1
_STEP_BITS = {step: 1 << (index + 1) for index, step in enumerate(FUNNEL_STEPS)}
_SOURCED_BIT = 1 << (len(FUNNEL_STEPS) + 1)  # the visit has been counted under its source
_STANDARD = frozenset(STANDARD_EVENT_TYPES)

BucketKey = tuple[str, str]  # (granularity, bucket): ("minute", "2026-11-24T02:51")
# (dimension, hour): ("page", "2026-11-24T02"); a delta written before hours were kept has
# a day there ("2026-11-24"), which the store folds into the day alone.
DimensionKey = tuple[str, str]


@dataclass(frozen=True)
class SequencedEvent:
    """An event with its position in the shard, as the consumers receive it."""

    sequence_number: str
    event: Event


@dataclass(frozen=True)
class SessionState:
    """What is remembered of one session (one visit at a time, ids for dedupe)."""

    version: int = 0  # events of this session counted so far: newer state wins
    steps: int = 0  # bit mask: visit counted, funnel steps reached in this visit (any order)
    first_seen: int = 0  # event time of the visit's first event, epoch seconds
    last_seen: int = 0  # event time of the visit's latest event, epoch seconds
    page_views: int = 0  # page views in this visit
    seen_ids: tuple[tuple[int, int], ...] = ()  # (event id hash, arrival epoch s)
    last_page: str = ""  # the visit's latest page: its exit page so far
    goals: tuple[int, ...] = ()  # goals this visit converted (32-bit hashes of their names)
    visitor: int = 0  # the visit's visitor hash, from its first event: one visit, one visitor
    earliest: int = 0  # event time of the visit's earliest event (0: first_seen), epoch s

    def to_json(self) -> list[Any]:
        return [
            self.version,
            self.steps,
            self.first_seen,
            self.last_seen,
            self.page_views,
            _pack_seen(self.seen_ids),
            self.last_page,
            list(self.goals),
            self.visitor,
            self.earliest,
        ]

    @classmethod
    def from_json(cls, value: Sequence[Any]) -> SessionState:
        version, steps, first_seen, last_seen, page_views, seen, *visit = value
        # states written before exits, goals and visitors were kept
        last_page, goals, visitor, earliest = (*visit, *_VISIT_DEFAULTS[len(visit) :])[:4]
        return cls(
            version, steps, first_seen, last_seen, page_views, _unpack_seen(seen), last_page,
            tuple(goals), visitor, earliest,
        )  # fmt: skip


# last_page, goals, visitor and earliest of a state written before they were kept
_VISIT_DEFAULTS: tuple[Any, ...] = ("", [], 0, 0)

# A remembered id: 8 bytes of its hash and its arrival, 12 bytes (16 in base64) instead of
# about 33 as JSON numbers; a session's state rides in every delta that touches it.
_SEEN = struct.Struct(">QI")


def _pack_seen(seen: Sequence[tuple[int, int]]) -> str:
    return base64.b64encode(b"".join(_SEEN.pack(h, t) for h, t in seen)).decode()


def _unpack_seen(packed: str) -> tuple[tuple[int, int], ...]:
    return tuple((h, t) for h, t in _SEEN.iter_unpack(base64.b64decode(packed)))


@dataclass
class Delta:
    """A batch's effect on the aggregates, everything keyed so that it can be merged."""

    counters: dict[BucketKey, dict[str, Decimal]] = field(default_factory=dict)
    dimensions: dict[DimensionKey, dict[str, int]] = field(default_factory=dict)
    sessions: dict[int, SessionState] = field(default_factory=dict)
    recent: list[dict[str, Any]] = field(default_factory=list)
    # Visitor hashes per minute bucket, for the unique-visitor sketches.
    visitors: dict[str, set[int]] = field(default_factory=dict)
    applied: int = 0
    duplicates: int = 0  # same event_id seen again inside the dedupe window
    dedupe_ids_dropped: int = 0
    bots: int = 0  # events from crawlers and headless browsers, left out

    def add(self, key: BucketKey, attribute: str, amount: Decimal | int = 1) -> None:
        item = self.counters.setdefault(key, defaultdict(Decimal))
        item[attribute] += Decimal(amount)

    def count(self, dimension: str, hour: str, value: str, amount: int = 1) -> None:
        values = self.dimensions.setdefault((dimension, hour), defaultdict(int))
        values[value] += amount

    def to_json(self) -> dict[str, Any]:
        return {
            "c": [[g, b, {k: str(v) for k, v in c.items()}] for (g, b), c in self.counters.items()],
            # "h", not the day-keyed "d" of earlier versions: an earlier version's folder
            # fails on this delta instead of folding its hours as days.
            "h": [[dim, hour, dict(v)] for (dim, hour), v in self.dimensions.items()],
            "s": [[key, state.to_json()] for key, state in self.sessions.items()],
            "r": self.recent,
            "v": [[minute, sorted(hashes)] for minute, hashes in self.visitors.items()],
            "n": [self.applied, self.duplicates, self.dedupe_ids_dropped, self.bots],
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Delta:
        delta = cls(recent=list(value["r"]))
        for granularity, bucket, counters in value["c"]:
            delta.counters[(granularity, bucket)] = {k: Decimal(v) for k, v in counters.items()}
        for dimension, hour, counts in value.get("h", value.get("d", [])):
            delta.dimensions[(dimension, hour)] = dict(counts)
        for key, state in value["s"]:
            delta.sessions[int(key)] = SessionState.from_json(state)
        for minute, hashes in value.get("v", []):
            delta.visitors[minute] = set(hashes)
        delta.applied, delta.duplicates, delta.dedupe_ids_dropped, *bots = value["n"]
        delta.bots = bots[0] if bots else 0
        return delta


@lru_cache(maxsize=8192)
def _utc_bucket_keys(epoch_minute: int) -> tuple[str, str, str]:
    minute = datetime.fromtimestamp(epoch_minute * 60, UTC).strftime("%Y-%m-%dT%H:%M")
    return minute, minute[:13], minute[:10]


def bucket_keys(ts: datetime) -> tuple[str, str, str]:
    """Minute, hour and day bucket of a time: ``2026-11-24T02:51``, ``…T02``, ``2026-11-24``.
    Memoised per UTC minute: ``strftime`` per event was a fifth of the aggregator's CPU."""
    if ts.tzinfo is not None and ts.utcoffset() == timedelta(0):
        return _utc_bucket_keys(int(ts.timestamp() // 60))
    minute = ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    return minute, minute[:13], minute[:10]


def buckets_of(epoch_seconds: int) -> list[BucketKey]:
    minute, hour, day = _utc_bucket_keys(epoch_seconds // 60)
    return [("minute", minute), ("hour", hour), ("day", day), ("all", "all")]


def minute_key(ts: datetime) -> str:
    return bucket_keys(ts)[0]


def hour_key(ts: datetime) -> str:
    return bucket_keys(ts)[1]


def day_key(ts: datetime) -> str:
    return bucket_keys(ts)[2]


def expires_at(key: BucketKey) -> int | None:
    """TTL of a bucket's counters: minutes live 3 days, hours 90, days and totals forever."""
    granularity, bucket = key
    if granularity == "minute":
        start = datetime.strptime(bucket, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
        return int((start + MINUTE_TTL).timestamp())
    if granularity == "hour":
        start = datetime.strptime(bucket, "%Y-%m-%dT%H").replace(tzinfo=UTC)
        return int((start + HOUR_TTL).timestamp())
    return None


def revenue_of(value: float | None) -> Decimal:
    """A purchase's value as counted: to the millionth (DynamoDB numbers hold 38 digits and
    nothing below 1e-130, and ingest allows any value up to 1e12)."""
    return Decimal(str(value)).quantize(REVENUE_QUANTUM) if value else Decimal(0)


def session_hash(session_key: str) -> int:
    """63-bit digest of a session key (fits JSON integers and DynamoDB numbers exactly)."""
    digest = hashlib.blake2b(session_key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def visit_state_key(event: Event, secret: str) -> int:
    """Which session state holds an event's visit. An event naming no session, device or
    user (the tracker's cookieless mode) is placed by the same daily salted hash of address
    and user agent its unique visitor is counted by, not made a visit of its own."""
    if event.session_id or event.anonymous_id or event.user_id:
        return session_hash(event.session_key)
    if not (event.ip_truncated or event.user_agent):
        return session_hash(event.session_key)
    return session_hash(visitor_key_of(event, secret))


def event_id_hash(event_id: str) -> int:
    digest = hashlib.blake2b(event_id.encode(), digest_size=8, person=b"event-id").digest()
    return int.from_bytes(digest, "little") >> 1


def compact_event(event: Event) -> dict[str, Any]:
    """The few fields the recent-events feed shows."""
    compact = {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "timestamp": event.timestamp.isoformat().replace("+00:00", "Z"),
        "received_at": event.received_at.isoformat().replace("+00:00", "Z"),
        "user_id": event.user_id,
        "session_id": event.session_id,
        "page": event.page[:FEED_PAGE_CHARS] if event.page else None,
        "product_id": event.product_id,
        "value": event.value,
        "device_type": event.device.device_type,
        "country": event.location.country,
    }
    return {key: value for key, value in compact.items() if value is not None}


def event_type_counter(event_type: str) -> str:
    """Counter attribute of a type in the bucket items: standard types by name, every custom
    type under one ``type:custom`` (their names are counted in the ``event_type`` dimension,
    so the bucket items stay the same size whatever the number of types)."""
    return f"type:{event_type if event_type in _STANDARD else CUSTOM_TYPE}"


def _remember_id(
    state: SessionState, id_hash: int, arrival: int
) -> tuple[tuple[tuple[int, int], ...], int]:
    horizon = arrival - int(DEDUPE_WINDOW.total_seconds())
    kept = [(h, t) for h, t in state.seen_ids if t >= horizon]
    kept.append((id_hash, arrival))
    dropped = max(0, len(kept) - MAX_SEEN_IDS)
    return tuple(kept[dropped:]), dropped


def is_duplicate(state: SessionState, id_hash: int, arrival: int) -> bool:
    horizon = arrival - int(DEDUPE_WINDOW.total_seconds())
    return any(h == id_hash and t >= horizon for h, t in state.seen_ids)


@dataclass(frozen=True)
class Goal:
    """A conversion goal: an event type, optionally only with some property values."""

    name: str
    event_type: str
    properties: Mapping[str, Any] = field(default_factory=dict)

    def matches(self, event: Event) -> bool:
        return event.event_type == self.event_type and all(
            str(event.properties.get(name)) == str(value) for name, value in self.properties.items()
        )


def goals_of(event: Event, goals: Sequence[Goal]) -> list[str]:
    """Goals an event converts: its own type (every event type but page views is a goal)
    and the configured goals it matches."""
    names = [] if event.event_type in NOT_GOALS else [event.event_type]
    return names + [goal.name for goal in goals if goal.matches(event)]


def _goal_hash(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "little")


@lru_cache(maxsize=16)
def _salt(secret: str, day: str) -> bytes:
    return daily_salt(secret, day)


def aggregate(
    events: Sequence[Event],
    sessions: Mapping[int, SessionState],
    *,
    visitor_secret: str = "",
    goals: Sequence[Goal] = (),
) -> Delta:
    """Pre-aggregate a batch in memory. Pure: ``sessions`` holds the state of (at least) the
    sessions the batch touches; the returned delta holds their next state. Bots are counted
    as such and nothing else, and a retry of a bot's event is a duplicate like any other."""
    delta = Delta()
    states: dict[int, SessionState] = {}
    counted: list[Event] = []
    for event in events:
        key = visit_state_key(event, visitor_secret)
        state = states.get(key) or sessions.get(key) or SessionState()
        id_hash = event_id_hash(event.event_id)
        arrival = int(event.received_at.timestamp())
        if is_duplicate(state, id_hash, arrival):
            delta.duplicates += 1
            continue
        if event.is_bot:
            states[key] = _count_bot(delta, event, state, id_hash, arrival)
            continue
        states[key] = _count_event(delta, event, state, id_hash, arrival, goals, visitor_secret)
        counted.append(event)
        delta.applied += 1
    delta.sessions = states
    delta.recent = newest_events([compact_event(event) for event in counted])
    return delta


def visitor_key_of(event: Event, secret: str) -> str:
    return visitor_key(
        user_id=event.user_id,
        anonymous_id=event.anonymous_id,
        ip_truncated=event.ip_truncated,
        user_agent=event.user_agent,
        session_key=event.session_key,
        salt=_salt(secret, day_key(event.timestamp)),
    )


def visitor_of(event: Event, secret: str) -> int:
    """The hash a visit's first event gives its visitor (later events of the visit, which
    may lack a user agent or gain a user id, count as the same visitor)."""
    return visitor_hash(visitor_key_of(event, secret))


def client_values(event: Event) -> dict[str, str]:
    """What a visit is counted under for the client it came from: any of its events says."""
    values = {
        "device_type": event.device.device_type,
        "browser": event.device.browser,
        "os": event.device.platform,
        "country": event.location.country,
        "city": event.location.city,
    }
    return {name: value for name, value in values.items() if value}


def is_landing(event: Event) -> bool:
    """An event that can say where its visit came from: not a navigation inside the site
    (whose referrer is the site itself). Batches may bring a visit's events out of order;
    its source waits for such an event instead of taking the first one processed."""
    return not event.referrer or referrer_domain(event.referrer, event.page_url) is not None


def source_values(event: Event) -> dict[str, str]:
    """What a visit is counted under for where it came from, from its landing event."""
    tags = utm(event.page_url)
    values = {
        "source": source(event.referrer, event.page_url),
        "referrer": referrer_domain(event.referrer, event.page_url),
        "channel": channel(event.referrer, event.page_url),
        "utm_medium": tags.get("utm_medium"),
        "utm_campaign": tags.get("utm_campaign"),
    }
    return {name: value for name, value in values.items() if value}


def _count_bot(
    delta: Delta, event: Event, state: SessionState, id_hash: int, arrival: int
) -> SessionState:
    """A bot's event counts as a bot and nothing else; its session remembers only its id."""
    _add_all(delta, buckets_of(int(event.timestamp.timestamp())), "bots")
    delta.bots += 1
    seen_ids, dropped = _remember_id(state, id_hash, arrival)
    delta.dedupe_ids_dropped += dropped
    return replace(state, version=state.version + 1, seen_ids=seen_ids)


def _count_event(
    delta: Delta,
    event: Event,
    state: SessionState,
    id_hash: int,
    arrival: int,
    goals: Sequence[Goal],
    visitor_secret: str,
) -> SessionState:
    ts = int(event.timestamp.timestamp())
    event_buckets = buckets_of(ts)
    hour = event_buckets[1][1]
    for key in event_buckets:
        delta.add(key, "events")
        delta.add(key, event_type_counter(event.event_type))
        if event.event_type == "purchase" and (revenue := revenue_of(event.value)):
            delta.add(key, "revenue", revenue)
    delta.count("event_type", hour, event.event_type)
    page = page_path(event.page, event.page_url) if event.event_type == "page_view" else None
    if page:
        delta.count("page", hour, page)

    seen_ids, dropped = _remember_id(state, id_hash, arrival)
    delta.dedupe_ids_dropped += dropped
    state, sourced = _visit(delta, event, state, ts, visitor_secret)
    delta.visitors.setdefault(event_buckets[0][1], set()).add(state.visitor)
    visit_buckets = buckets_of(state.first_seen)
    new_bits = _SESSION_BIT | _STEP_BITS.get(event.event_type, 0) | sourced
    counted = state.steps & _SESSION_BIT | funnel_steps_counted(state.steps)
    counting = _SESSION_BIT | funnel_steps_counted(state.steps | new_bits)
    for attribute, bit in (("sessions", _SESSION_BIT), *_funnel_attributes()):
        if counting & bit and not counted & bit:
            _add_all(delta, visit_buckets, attribute)
    earliest = _count_duration(delta, state, ts, visit_buckets)
    if page:
        _count_page_view(delta, state, page, visit_buckets)
    converted = _count_goals(delta, state, goals_of(event, goals), visit_buckets[1][1])
    return SessionState(
        version=state.version + 1,
        steps=state.steps | new_bits,
        first_seen=state.first_seen,
        last_seen=max(state.last_seen, ts),
        page_views=state.page_views + (1 if page else 0),
        seen_ids=seen_ids,
        last_page=page or state.last_page,
        goals=converted,
        visitor=state.visitor,
        earliest=earliest,
    )


def _visit(
    delta: Delta, event: Event, state: SessionState, ts: int, visitor_secret: str
) -> tuple[SessionState, int]:
    """The visit an event belongs to (a new one after the timeout), counted under its
    client when it starts and under its source at its landing event; returns the state and
    the source bit when this event gave the source."""
    if state.steps and ts - state.last_seen > SESSION_TIMEOUT.total_seconds():
        # idle past the timeout: a new visit
        state = replace(state, steps=0, page_views=0, last_page="", goals=(), visitor=0)
    if not state.steps:
        state = replace(state, first_seen=ts, last_seen=ts, earliest=ts)
        for dimension, value in client_values(event).items():
            delta.count(dimension, hour_key(event.timestamp), value)
    if not state.visitor:
        state = replace(state, visitor=visitor_of(event, visitor_secret))
    if state.steps & _SOURCED_BIT or not is_landing(event):
        return state, 0
    visit_hour = buckets_of(state.first_seen)[1][1]
    for dimension, value in source_values(event).items():
        delta.count(dimension, visit_hour, value)
    return state, _SOURCED_BIT


def _count_duration(
    delta: Delta, state: SessionState, ts: int, visit_buckets: Sequence[BucketKey]
) -> int:
    """A visit's duration is its latest minus its earliest event time, whatever order its
    events are processed in; returns the visit's earliest time."""
    earliest = state.earliest or state.first_seen
    if ts > state.last_seen:
        _add_all(delta, visit_buckets, "duration_s", ts - state.last_seen)
    elif ts < earliest and earliest - ts <= SESSION_TIMEOUT.total_seconds():
        _add_all(delta, visit_buckets, "duration_s", earliest - ts)  # an earlier event, late
        return ts
    return earliest


def _count_goals(
    delta: Delta, state: SessionState, reached: Sequence[str], visit_hour: str
) -> tuple[int, ...]:
    """Each goal counts once per visit that reaches it."""
    converted = list(state.goals)
    for goal in reached:
        goal_hash = _goal_hash(goal)
        if goal_hash not in converted:
            delta.count("goal", visit_hour, goal)
            converted.append(goal_hash)
    return tuple(converted[-MAX_GOALS_PER_VISIT:])


def _count_page_view(
    delta: Delta, state: SessionState, page: str, visit_buckets: Sequence[BucketKey]
) -> None:
    """Bounces, entry and exit pages: what a page view changes about its visit."""
    visit_hour = visit_buckets[1][1]
    if state.page_views == 0:
        _add_all(delta, visit_buckets, "bounces")  # one page view so far: a bounce
        delta.count("entry_page", visit_hour, page)
    elif state.page_views == 1:
        _add_all(delta, visit_buckets, "bounces", -1)  # a second one: no longer
    if page != state.last_page:  # the visit's exit page moves to this one
        delta.count("exit_page", visit_hour, page)
        if state.last_page:
            delta.count("exit_page", visit_hour, state.last_page, -1)


def _add_all(delta: Delta, keys: Iterable[BucketKey], attribute: str, amount: int = 1) -> None:
    for key in keys:
        delta.add(key, attribute, amount)


def funnel_steps_counted(reached: int) -> int:
    """The funnel steps a visit counts under: each step it reached along with every step
    before it, in any order (batches may bring a visit's events out of order). A purchase
    without a checkout is revenue and a goal, not the funnel's last step."""
    counted = 0
    for bit in _STEP_BITS.values():
        if not reached & bit:
            break
        counted |= bit
    return counted


def _funnel_attributes() -> Iterable[tuple[str, int]]:
    return ((f"funnel:{step}", bit) for step, bit in _STEP_BITS.items())


def newest_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The feed's order: newest arrival first (a client's clock cannot pin an event on top);
    the events of one request, which arrive together, newest event time first."""
    ordered = sorted(
        events,
        key=lambda item: (
            item.get("received_at", item["timestamp"]),
            item["timestamp"],
            item["event_id"],
        ),
        reverse=True,
    )
    return ordered[:RECENT_EVENTS_KEPT]


def merge_sessions(deltas: Iterable[Delta]) -> dict[int, SessionState]:
    """The newest known state of each session among several deltas."""
    newest: dict[int, SessionState] = {}
    for delta in deltas:
        for key, state in delta.sessions.items():
            if key not in newest or state.version > newest[key].version:
                newest[key] = state
    return newest
