"""The aggregates table. This module alone writes and reads its layout; the consumers, the
read API, erasure and the tests go through :class:`DynamoAggregateStore`.

Writes are shard-local and need no transaction. Each batch of a shard becomes one *delta*
item, the batch's increments (``clickstream.aggregates.Delta``) compressed, keyed by the
shard and the delta's ordinal in the shard's chain and put only if that ordinal is free: two
writers of one shard can never both append, and the latest delta's ``upto`` (the last
sequence number it holds) is the shard's watermark, so a redelivered record is never counted
twice. Every few minutes the shard's owner *folds* its pending deltas into per-key items
(counters per time bucket, exact counts per dimension value and day, top-N summaries per
hour and day, sessions, the feed), each of them shard-local and stamped with the last delta
folded into it (``w``). Readers merge: a per-key item plus the pending deltas of its shard
newer than its ``w``. Layout, bounds and costs: docs/aggregates.md.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import orjson
from botocore.exceptions import ClientError

from clickstream.aggregates import (
    DIMENSIONS,
    RECENT_EVENTS_KEPT,
    BucketKey,
    Delta,
    Goal,
    SequencedEvent,
    SessionState,
    aggregate,
    expires_at,
    hour_key,
    merge_sessions,
    newest_events,
    visit_state_key,
)
from clickstream.errors import conditional_check_failed
from clickstream.hll import HyperLogLog
from clickstream.summaries import SpaceSaving

DELTA_TTL_S = 7 * 86_400  # a pending delta is folded within minutes; 7 days is the margin
FOLD_AFTER_DELTAS = 120
FOLD_AFTER_S = 120.0
FOLD_MAX_DELTAS = 400  # per fold call: a long backlog is folded in several calls
MAX_DELTA_BYTES = 300_000  # compressed; DynamoDB's item limit is 400 KB
MAX_CHUNK_EVENTS = 500
SESSION_TTL_S = 86_400  # past its timeout and dedupe window, a session item expires
SESSION_CACHE_MAX = 200_000
MAX_KEY_BYTES = 200  # longer dimension values are keyed by their digest
FOLD_WRITERS = 16  # concurrent item writes in one fold: a fold touches hundreds of items
READERS = 16  # concurrent item reads in one answer: a top-N list reads each row's counts
_ORDINAL = "{:012d}"
_DIGEST_PREFIX = "#"


class StoreConflict(Exception):
    """Another writer appended to the shard's chain since it was read."""


@dataclass(frozen=True)
class Head:
    n: int
    upto: str | None


@dataclass
class ApplyResult:
    applied: int = 0
    skipped_duplicates: int = 0  # records at or below the shard's watermark (redelivery)
    duplicate_event_ids: int = 0  # a client's retry of an event already counted
    dedupe_ids_dropped: int = 0
    deltas_written: int = 0
    items_written: int = 0
    write_units: int = 0
    folded: int = 0  # deltas folded after this batch
    fold_error: str = ""  # why the fold after this batch failed (the batch itself is stored)


@dataclass
class WriteMeter:
    """Write requests and the write units they are billed (1 KB each, rounded up)."""

    items: int = 0
    units: int = 0
    units_by_kind: Counter[str] = field(default_factory=Counter)  # delta, session, c, k, top…

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, item_bytes: int, kind: str = "") -> None:
        units = max(1, math.ceil(item_bytes / 1024))
        with self._lock:  # a fold writes from several threads
            self.items += 1
            self.units += units
            self.units_by_kind[kind] += units


@dataclass
class ReadMeter:
    """Read requests and the read units they are billed (4 KB each; half when eventually
    consistent)."""

    requests: int = 0
    units: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, items: Iterable[Mapping[str, Any]], *, consistent: bool = True) -> None:
        """A GetItem's or a Query page's: their items' size together."""
        units = max(1, math.ceil(sum(_item_bytes(item) for item in items) / 4096))
        with self._lock:
            self.requests += 1
            self.units += units if consistent else units / 2

    def add_batch(self, found: Sequence[Mapping[str, Any]], keys_read: int) -> None:
        """A consistent BatchGetItem's: each key read is billed as a GetItem of its own, a
        key with no item too."""
        units = sum(max(1, math.ceil(_item_bytes(item) / 4096)) for item in found)
        with self._lock:
            self.requests += 1
            self.units += units + keys_read - len(found)


@dataclass
class PendingDelta:
    shard: str
    n: int
    upto: str
    arrived: float
    delta: Delta


@dataclass
class Counters:
    """One time bucket's counters, all shards merged."""

    values: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def get(self, name: str) -> int | float:
        return _plain(self.values.get(name, Decimal(0)))

    def by_prefix(self, prefix: str) -> dict[str, int | float]:
        return {
            name.removeprefix(prefix): _plain(value)
            for name, value in sorted(self.values.items())
            if name.startswith(prefix) and value
        }


@dataclass(frozen=True)
class Ranked:
    value: str
    count: int


@dataclass(frozen=True)
class TopValues:
    rows: list[Ranked]
    total: int  # the dimension's whole weight over the range (sum of every value)
    # No value outside the candidates read has more than this many, and no listed count is
    # more than this over; a value left out of ``rows`` has at most this or the last row's.
    max_error: int


def _plain(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def value_key(value: str) -> str:
    """A dimension value as a key: itself, or its digest when long."""
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) <= MAX_KEY_BYTES and not value.startswith(_DIGEST_PREFIX):
        return value
    return _DIGEST_PREFIX + hashlib.sha256(raw).hexdigest()[:32]


def user_hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()


def _encode(value: Any) -> bytes:
    return zlib.compress(orjson.dumps(value), 6)


def _decode(blob: bytes) -> Any:
    return orjson.loads(zlib.decompress(blob))


# "all": one sketch per shard since the start, so an all-time count reads one item per shard
VISITOR_GRANULARITIES = ("minute", "hour", "day", "all")


def _bucket_of_minute(granularity: str, minute: str) -> str:
    return {"minute": minute, "hour": minute[:13], "day": minute[:10], "all": "all"}[granularity]


def _visitor_buckets(minute: str) -> list[BucketKey]:
    return [(g, _bucket_of_minute(g, minute)) for g in VISITOR_GRANULARITIES]


def _visitors_in(delta: Delta, granularity: str, bucket: str) -> Iterator[set[int]]:
    for minute, hashes in delta.visitors.items():
        if _bucket_of_minute(granularity, minute) == bucket:
            yield hashes


def _is_hour(period: str) -> bool:
    """A delta's dimension key or a read's bound is an hour (``2026-11-24T02``); else a day
    (``2026-11-24``, or a delta written before hours were kept)."""
    return len(period) == 13


def _day_of(period: str) -> str:
    return period[:10]


def _hour_expiry(period: str) -> dict[str, dict[str, str]]:
    """An hour's items expire with its counters (90 days); a day's and all time's never."""
    return {"expires_at": {"N": str(expires_at(("hour", period)))}} if _is_hour(period) else {}


def _summary_kind(period: str) -> str:
    """Day and all-time summaries share ``top#``; hours have their own partition, so that a
    range of days never reads an hour's summary."""
    return "toph" if _is_hour(period) else "top"


def _summarize(sketch: SpaceSaving, value: str, count: int) -> None:
    """A summary keeps what was added; a decrement (a net dimension) only lowers its total,
    and its rows are read exactly."""
    if count > 0:
        sketch.add(value_key(value), count)
    else:
        sketch.total += count


def _item_bytes(item: Mapping[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (numbers counted generously)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        kind, inner = next(iter(value.items()))
        if kind in ("S", "B"):
            size += len(inner.encode() if isinstance(inner, str) else inner)
        else:
            size += 21
    return size


@dataclass
class _SessionCache:
    head: int
    states: dict[int, SessionState]
    # Sessions whose state here is known to be the newest anywhere: compared with their
    # folded item, or written by this process since.
    checked: set[int] = field(default_factory=set)


class DynamoAggregateStore:
    """The aggregates table on DynamoDB (``pk``/``sk`` strings, TTL on ``expires_at``)."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        stream_name: str = "",
        clock: Callable[[], float] = time.time,
        fold_after_deltas: int = FOLD_AFTER_DELTAS,
        fold_after_s: float = FOLD_AFTER_S,
        visitor_secret: str = "",
        goals: Sequence[Goal] = (),
        fold_writers: int = FOLD_WRITERS,
    ) -> None:
        self.dynamodb = dynamodb
        self.fold_writers = fold_writers
        self.visitor_secret = visitor_secret
        self.goals = tuple(goals)
        self.table = table
        self.stream_name = stream_name
        self.clock = clock
        self.fold_after_deltas = fold_after_deltas
        self.fold_after_s = fold_after_s
        self.meter = WriteMeter()
        self.reads = ReadMeter()
        self._heads: dict[str, Head] = {}
        self._folded: dict[str, int] = {}
        self._oldest_pending: dict[str, float] = {}
        self._sessions: dict[str, _SessionCache] = {}
        self._local = threading.local()
        self._delta_cache: dict[str, list[PendingDelta]] = {}
        self._delta_cache_lock = threading.Lock()
        self._hours_marked = False
        self._hours_since: str | None = None

    def shard(self, shard_id: str) -> str:
        return f"{self.stream_name}#{shard_id}" if self.stream_name else shard_id

    # --- low-level I/O -----------------------------------------------------------------------

    def _key(self, pk: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        kwargs = {"TableName": self.table, "ConsistentRead": True, **kwargs}
        while True:
            page = self.dynamodb.query(**kwargs)
            self.reads.add(page.get("Items", []), consistent=kwargs["ConsistentRead"])
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page or "Limit" in kwargs:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _range(self, pk: str, low: str, high: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return self._query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={":pk": {"S": pk}, ":low": {"S": low}, ":high": {"S": high}},
            **kwargs,
        )

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(
            TableName=self.table, Key=self._key(pk, sk), ConsistentRead=True
        ).get("Item")
        self.reads.add([item] if item else [])
        return dict(item) if item else None

    def _put(self, item: dict[str, Any], condition: str, values: dict[str, Any]) -> bool:
        """A conditional put; False when the condition failed."""
        kwargs: dict[str, Any] = {"TableName": self.table, "Item": item}
        kwargs["ConditionExpression"] = condition
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self.dynamodb.put_item(**kwargs)
        except ClientError as exc:
            if conditional_check_failed(exc):
                return False
            raise
        self.meter.add(_item_bytes(item), item["pk"]["S"].split("#", 1)[0])
        return True

    # --- the chain of deltas -----------------------------------------------------------------

    def _delta_sk(self, shard: str, n: int) -> str:
        return f"{shard}#{_ORDINAL.format(n)}"

    def _cursor(self, shard: str) -> tuple[int, str | None]:
        item = self._get("cursor", shard)
        if item is None:
            return 0, None
        return int(item["n"]["N"]), item["upto"]["S"] if "upto" in item else None

    def _latest_delta(self, shard: str) -> list[dict[str, Any]]:
        """The shard's newest delta item (none before its first batch)."""
        return list(
            self._query(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :shard)",
                ExpressionAttributeValues={":pk": {"S": "delta"}, ":shard": {"S": f"{shard}#"}},
                ScanIndexForward=False,
                Limit=1,
            )
        )

    def watermark(self, shard_id: str) -> str | None:
        """The last sequence number of ``shard_id`` written (None before its first batch):
        what a consumer may checkpoint, at most."""
        shard = self.shard(shard_id)
        cursor_n, cursor_upto = self._cursor(shard)
        latest = self._latest_delta(shard)
        if latest and int(latest[0]["n"]["N"]) > cursor_n:
            return str(latest[0]["upto"]["S"])
        return cursor_upto

    def _load_head(self, shard: str) -> Head:
        cursor_n, cursor_upto = self._cursor(shard)
        if cursor_n == 0 and cursor_upto is None:
            # Readers find a shard's pending deltas through its cursor: create it first.
            self._put(
                {**self._key("cursor", shard), "n": {"N": "0"}},
                "attribute_not_exists(pk)",
                {},
            )
        self._folded[shard] = cursor_n
        latest = self._latest_delta(shard)
        if latest and int(latest[0]["n"]["N"]) > cursor_n:
            return Head(int(latest[0]["n"]["N"]), latest[0]["upto"]["S"])
        return Head(cursor_n, cursor_upto)

    def _pending(
        self, shard: str, after: int, limit: int | None = None, *, consistent: bool = True
    ) -> list[PendingDelta]:
        kwargs: dict[str, Any] = {"Limit": limit} if limit else {}
        kwargs["ConsistentRead"] = consistent
        items = self._range(
            "delta", self._delta_sk(shard, after + 1), self._delta_sk(shard, 10**12 - 1), **kwargs
        )
        return [
            PendingDelta(
                shard=shard,
                n=int(item["n"]["N"]),
                upto=item["upto"]["S"],
                arrived=float(item["arrived"]["N"]),
                delta=Delta.from_json(_decode(item["body"]["B"])),
            )
            for item in items
        ]

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside share one read of the pending deltas: one answer, one view. That read
        may lag (eventually consistent): a delta it misses is not yet shown, and one folded
        meanwhile is not counted twice (its items' ``w`` says so)."""
        if getattr(self._local, "pending", None) is not None:
            yield  # already inside one: the outer answer's view holds
            return
        self._local.pending = self._read_pending(consistent=False)
        try:
            yield
        finally:
            self._local.pending = None

    def pending(self) -> dict[str, list[PendingDelta]]:
        """Every shard's deltas not yet folded (read before any folded item: see merging)."""
        shared: dict[str, list[PendingDelta]] | None = getattr(self._local, "pending", None)
        return shared if shared is not None else self._read_pending()

    def _read_pending(self, *, consistent: bool = True) -> dict[str, list[PendingDelta]]:
        by_shard: dict[str, list[PendingDelta]] = {}
        cursors = self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "cursor"}},
            ConsistentRead=consistent,
        )
        for cursor in list(cursors):
            shard = cursor["sk"]["S"]
            by_shard[shard] = self._pending_cached(shard, int(cursor["n"]["N"]), consistent)
        return by_shard

    def _pending_cached(self, shard: str, folded: int, consistent: bool) -> list[PendingDelta]:
        """A shard's pending deltas, reading only those this process has not read before: a
        delta never changes once written, and ordinals follow each other without gaps."""
        with self._delta_cache_lock:
            known = [p for p in self._delta_cache.get(shard, []) if p.n > folded]
        after = known[-1].n if known else folded
        for delta in self._pending(shard, after, consistent=consistent):
            if delta.n != after + 1:
                break  # a lagging read skipped one: keep only the unbroken run
            known.append(delta)
            after = delta.n
        with self._delta_cache_lock:
            self._delta_cache[shard] = known
        return list(known)

    def _append(self, shard: str, n: int, upto: str, delta: Delta, body: bytes) -> None:
        now = self.clock()
        if not self._hours_marked:
            self._mark_hours_kept(now, fresh=n == 1)
        item = {
            **self._key("delta", self._delta_sk(shard, n)),
            "n": {"N": str(n)},
            "upto": {"S": upto},
            "arrived": {"N": f"{now:.3f}"},
            "body": {"B": body},
            "expires_at": {"N": str(int(now) + DELTA_TTL_S)},
        }
        if not self._put(item, "attribute_not_exists(pk)", {}):
            raise StoreConflict(shard)

    def _mark_hours_kept(self, now: float, *, fresh: bool) -> None:
        """Note, once per table, the first hour whose breakdowns are all in hour summaries:
        all of them on a new table; on a table an earlier version wrote (day-keyed deltas),
        the hour after this version's first delta. Readers fall back to days before it."""
        since = "0000-00-00T00" if fresh else hour_key(datetime.fromtimestamp(now + 3600, UTC))
        self._put(
            {**self._key("layout", "hours"), "since": {"S": since}}, "attribute_not_exists(pk)", {}
        )
        self._hours_marked = True

    def hours_kept_since(self) -> str | None:
        """The first hour (``2026-11-24T02``) from which breakdowns can be read in hours; None
        before this version has written a delta."""
        if self._hours_since is None:
            item = self._get("layout", "hours")
            self._hours_since = item["since"]["S"] if item else None
        return self._hours_since

    # --- applying a batch --------------------------------------------------------------------

    def apply(
        self, shard_id: str, events: Sequence[SequencedEvent], *, max_conflict_retries: int = 3
    ) -> ApplyResult:
        """Count each event once, whatever redelivery or a client's retry brought it again."""
        shard = self.shard(shard_id)
        result = ApplyResult()
        before = (self.meter.items, self.meter.units)
        for attempt in range(max_conflict_retries + 1):
            head = self._heads.get(shard) or self._load_head(shard)
            fresh = [
                item
                for item in events
                if head.upto is None or int(item.sequence_number) > int(head.upto)
            ]
            try:
                self._append_chunks(shard, head, fresh, result)
                break
            except StoreConflict:
                self._heads.pop(shard, None)
                self._sessions.pop(shard, None)
                if attempt == max_conflict_retries:
                    raise
        result.skipped_duplicates = len(events) - result.applied - result.duplicate_event_ids
        if self._fold_due(shard):
            try:
                result.folded = self.fold(shard_id)
            except (ClientError, StoreConflict) as exc:
                # The batch is stored (in its delta) and counted by every reader: a fold that
                # fails is reported and tried again after the next batch, not the batch.
                result.fold_error = f"{type(exc).__name__}: {exc}"
                self._oldest_pending[shard] = self.clock() - self.fold_after_s
        result.items_written = self.meter.items - before[0]
        result.write_units = self.meter.units - before[1]
        return result

    def _append_chunks(
        self, shard: str, head: Head, fresh: Sequence[SequencedEvent], result: ApplyResult
    ) -> None:
        start = 0
        size = MAX_CHUNK_EVENTS
        while start < len(fresh):
            chunk = fresh[start : start + size]
            events = [item.event for item in chunk]
            delta = aggregate(
                events,
                self._session_states(shard, head, events),
                visitor_secret=self.visitor_secret,
                goals=self.goals,
            )
            body = _encode(delta.to_json())
            if len(body) > MAX_DELTA_BYTES and len(chunk) > 1:
                size = max(1, len(chunk) // 2)
                continue
            head = Head(head.n + 1, chunk[-1].sequence_number)
            self._append(shard, head.n, chunk[-1].sequence_number, delta, body)
            self._heads[shard] = head
            self._oldest_pending.setdefault(shard, self.clock())
            cache = self._sessions[shard]
            cache.states.update(delta.sessions)
            cache.checked.update(delta.sessions)
            cache.head = head.n
            result.applied += delta.applied
            result.duplicate_event_ids += delta.duplicates
            result.dedupe_ids_dropped += delta.dedupe_ids_dropped
            result.deltas_written += 1
            start += len(chunk)
            size = MAX_CHUNK_EVENTS

    def _session_states(
        self, shard: str, head: Head, events: Sequence[Any]
    ) -> dict[int, SessionState]:
        """The current state of the sessions in ``events``: the newest version among the
        pending deltas of every shard (a parent's, after a split) and the folded session items.
        This process's own writes are the newest while it is the chain's writer."""
        cache = self._sessions.get(shard)
        if cache is None or cache.head != head.n or len(cache.states) > SESSION_CACHE_MAX:
            pending = [p.delta for deltas in self.pending().values() for p in deltas]
            cache = _SessionCache(head=head.n, states=merge_sessions(pending))
            self._sessions[shard] = cache
        wanted = {visit_state_key(event, self.visitor_secret) for event in events}
        unchecked = sorted(wanted - cache.checked)
        for key, state in self._load_sessions(unchecked).items():
            known = cache.states.get(key)
            if known is None or state.version > known.version:
                cache.states[key] = state  # e.g. folded by a child, newer than a parent's delta
        cache.checked.update(unchecked)
        return {key: cache.states[key] for key in wanted if key in cache.states}

    def _session_key(self, key: int) -> dict[str, Any]:
        return self._key(f"session#{key:016x}", "state")

    def _load_sessions(self, keys: Sequence[int]) -> dict[int, SessionState]:
        found: dict[int, SessionState] = {}
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [self._session_key(key) for key in keys[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            while request:
                asked = len(request[self.table]["Keys"])
                response = self.dynamodb.batch_get_item(RequestItems=request)
                found_items = response.get("Responses", {}).get(self.table, [])
                request = response.get("UnprocessedKeys") or {}
                left = len(request.get(self.table, {}).get("Keys", []))
                self.reads.add_batch(found_items, asked - left)
                for item in found_items:
                    key = int(item["pk"]["S"].removeprefix("session#"), 16)
                    found[key] = SessionState.from_json(orjson.loads(item["state"]["B"]))
        return found

    # --- folding -----------------------------------------------------------------------------

    def _fold_due(self, shard: str) -> bool:
        head = self._heads.get(shard)
        if head is None:
            return False
        pending = head.n - self._folded.get(shard, 0)
        oldest = self._oldest_pending.get(shard)
        too_old = oldest is not None and self.clock() - oldest >= self.fold_after_s
        return pending >= self.fold_after_deltas or (pending > 0 and too_old)

    def fold(self, shard_id: str, *, max_deltas: int = FOLD_MAX_DELTAS) -> int:
        """Fold a shard's pending deltas into the per-key items; returns deltas folded. Safe to
        run concurrently with the shard's writer and with another fold (every item update is
        conditional on what it already holds)."""
        return self._fold(self.shard(shard_id), max_deltas)

    def fold_all(self) -> int:
        """Fold every shard with pending deltas (closed shards after a reshard, idle ones). A
        shard that fails does not stop the others; the failures are raised together after."""
        cursors = self._query(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "cursor"}}
        )
        folded = 0
        failures: list[Exception] = []
        for cursor in list(cursors):
            try:
                folded += self._fold(cursor["sk"]["S"], FOLD_MAX_DELTAS)
            except (ClientError, StoreConflict) as exc:
                failures.append(exc)
        if failures:
            raise ExceptionGroup(f"{len(failures)} shard(s) could not be folded", failures)
        return folded

    def _fold(self, shard: str, max_deltas: int) -> int:
        base, _ = self._cursor(shard)
        deltas = self._pending(shard, base, max_deltas)
        if not deltas:
            self._after_fold(shard, base)
            return 0
        top = deltas[-1]
        writes = [
            *self._fold_counters(shard, base, top.n, deltas),
            *self._fold_dimensions(shard, base, top.n, deltas),
            *self._fold_sessions(deltas),
            *self._fold_visitors(shard, deltas),
            lambda: self._fold_recent(shard, top.n, deltas, set()),
        ]
        self._run_all(writes)
        moved = self._put(
            {**self._key("cursor", shard), "n": {"N": str(top.n)}, "upto": {"S": top.upto}},
            "attribute_not_exists(n) OR n < :top",
            {":top": {"N": str(top.n)}},
        )
        self._after_fold(shard, top.n if moved else self._cursor(shard)[0])
        return len(deltas)

    def _run_all(self, writes: Sequence[Callable[[], object]]) -> None:
        """Run a fold's item writes side by side (each is conditional on its own item, so
        their order does not matter); the first failure is raised after all have run."""
        if len(writes) <= 1 or self.fold_writers <= 1:
            for write in writes:
                write()
            return
        with ThreadPoolExecutor(min(self.fold_writers, len(writes))) as pool:
            futures = [pool.submit(write) for write in writes]
        for future in futures:
            future.result()

    def _after_fold(self, shard: str, folded: int) -> None:
        self._folded[shard] = folded
        head = self._heads.get(shard)
        if head is None or head.n <= folded:
            self._oldest_pending.pop(shard, None)
        else:
            self._oldest_pending[shard] = self.clock()

    def _add_to_item(
        self,
        pk: str,
        sk: str,
        contributions: Sequence[tuple[int, Mapping[str, Decimal | int]]],
        base: int,
        top: int,
        extra: Mapping[str, dict[str, str]] | None = None,
    ) -> None:
        """ADD the contributions of deltas newer than what the item holds, once."""
        condition = "attribute_not_exists(#w) OR #w <= :base"
        held = base
        for _ in range(4):
            totals: dict[str, Decimal] = defaultdict(Decimal)
            for n, amounts in contributions:
                if n > held:
                    for name, amount in amounts.items():
                        totals[name] += Decimal(amount)
            totals = {name: amount for name, amount in totals.items() if amount}
            if not totals:
                # Nothing to add (a net dimension's +1 and -1 within these deltas, e.g. an
                # exit page passed on): the item stays as it is, and its older ``w`` makes
                # readers add these deltas while pending, which is adding nothing.
                return
            names = {"#w": "w"}
            values: dict[str, Any] = {":top": {"N": str(top)}, ":base": {"N": str(held)}}
            adds = []
            for index, (name, amount) in enumerate(sorted(totals.items())):
                names[f"#a{index}"] = name
                values[f":a{index}"] = {"N": str(amount)}
                adds.append(f"#a{index} :a{index}")
            sets = ["#w = :top"]
            for name, value in (extra or {}).items():
                names[f"#{name}"] = name
                values[f":{name}"] = value
                sets.append(f"#{name} = if_not_exists(#{name}, :{name})")
            expression = "SET " + ", ".join(sets) + (" ADD " + ", ".join(adds) if adds else "")
            try:
                self.dynamodb.update_item(
                    TableName=self.table,
                    Key=self._key(pk, sk),
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if not conditional_check_failed(exc):
                    raise
                item = self._get(pk, sk) or {}
                held = int(item["w"]["N"]) if "w" in item else 0
                if held >= top:
                    return
                condition = "#w = :base"
                continue
            self.meter.add(len(pk) + len(sk) + 40 * (len(totals) + 2), pk.split("#", 1)[0])
            return
        raise StoreConflict(f"{pk} {sk}")

    def _fold_counters(
        self, shard: str, base: int, top: int, deltas: Sequence[PendingDelta]
    ) -> list[Callable[[], None]]:
        by_key: dict[BucketKey, list[tuple[int, Mapping[str, Decimal]]]] = defaultdict(list)
        for pending in deltas:
            for key, counters in pending.delta.counters.items():
                by_key[key].append((pending.n, counters))
        writes: list[Callable[[], None]] = []
        for (granularity, bucket), contributions in by_key.items():
            ttl = expires_at((granularity, bucket))
            writes.append(
                partial(
                    self._add_to_item,
                    f"c#{granularity}",
                    f"{bucket}#{shard}",
                    contributions,
                    base,
                    top,
                    {"expires_at": {"N": str(ttl)}} if ttl else None,
                )
            )
        return writes

    def _fold_dimensions(
        self, shard: str, base: int, top: int, deltas: Sequence[PendingDelta]
    ) -> list[Callable[[], None]]:
        writes = self._fold_exact_counts(shard, base, top, deltas)
        for dimension, spec in DIMENSIONS.items():
            keys = {key for p in deltas for (dim, key) in p.delta.dimensions if dim == dimension}
            for day in sorted({_day_of(key) for key in keys}):
                of_day = {key for key in keys if _day_of(key) == day}
                writes.append(partial(self._fold_summary, dimension, day, shard, deltas, of_day))
            for hour in sorted(filter(_is_hour, keys)):
                writes.append(partial(self._fold_summary, dimension, hour, shard, deltas, {hour}))
            if keys and spec.all_time:
                writes.append(partial(self._fold_summary, dimension, "all", shard, deltas, keys))
        return writes

    def _fold_exact_counts(
        self, shard: str, base: int, top: int, deltas: Sequence[PendingDelta]
    ) -> list[Callable[[], None]]:
        """Exact counts per value and day, and per hour for net dimensions."""
        # (kind, dimension, value key, day or hour) -> contributions
        exact: dict[tuple[str, str, str, str], list[tuple[int, Mapping[str, int]]]]
        exact = defaultdict(list)
        values_of: dict[tuple[str, str], str] = {}
        for pending in deltas:
            for (dimension, hour), counts in pending.delta.dimensions.items():
                spec = DIMENSIONS[dimension]
                if not spec.exact:
                    continue
                periods = [("k", _day_of(hour))]
                if spec.net and _is_hour(hour):
                    periods.append(("kh", hour))
                for value, count in counts.items():
                    key = value_key(value)
                    if key != value or (dimension, key) not in values_of:
                        values_of[(dimension, key)] = value
                    for kind, period in periods:
                        exact[(kind, dimension, key, period)].append((pending.n, {"count": count}))
        writes: list[Callable[[], None]] = []
        for (kind, dimension, key, period), contributions in exact.items():
            extra = _hour_expiry(period)
            if key != values_of[(dimension, key)]:
                extra["v"] = {"S": values_of[(dimension, key)]}
            writes.append(
                partial(
                    self._add_to_item, f"{kind}#{dimension}#{key}", f"{period}#{shard}",
                    contributions, base, top, extra or None,
                )
            )  # fmt: skip
        return writes

    def _fold_summary(
        self,
        dimension: str,
        period: str,
        shard: str,
        deltas: Sequence[PendingDelta],
        keys: set[str],
    ) -> None:
        """Add the deltas' counts under ``keys`` (their hours, or days) to the summary of one
        period: a day, an hour or all time."""
        pk, sk = f"{_summary_kind(period)}#{dimension}", f"{period}#{shard}"
        ttl = _hour_expiry(period)
        for _ in range(4):
            item = self._get(pk, sk)
            held = int(item["w"]["N"]) if item else 0
            sketch = SpaceSaving.from_json(_decode(item["summary"]["B"])) if item else SpaceSaving()
            added = 0
            for pending in deltas:
                if pending.n <= held:
                    continue
                for key in keys:
                    for value, count in pending.delta.dimensions.get((dimension, key), {}).items():
                        _summarize(sketch, value, count)
                        added += 1
            if not added:
                return
            new_item = {
                **self._key(pk, sk),
                "w": {"N": str(deltas[-1].n)},
                "summary": {"B": _encode(sketch.to_json())},
                **ttl,
            }
            condition = "w = :held" if item else "attribute_not_exists(pk)"
            if self._put(new_item, condition, {":held": {"N": str(held)}} if item else {}):
                return
        raise StoreConflict(f"{pk} {sk}")

    def _fold_visitors(
        self, shard: str, deltas: Sequence[PendingDelta]
    ) -> list[Callable[[], None]]:
        buckets: set[BucketKey] = set()
        for pending in deltas:
            for minute in pending.delta.visitors:
                buckets.update(_visitor_buckets(minute))
        return [
            partial(self._fold_sketch, granularity, bucket, shard, deltas)
            for granularity, bucket in sorted(buckets)
        ]

    def _fold_sketch(
        self, granularity: str, bucket: str, shard: str, deltas: Sequence[PendingDelta]
    ) -> None:
        """Merge the deltas' visitors into one bucket's sketch (a register-wise max, so only
        a lost update could undercount; the ``w`` condition rules that out)."""
        pk, sk = f"hll#{granularity}", f"{bucket}#{shard}"
        ttl = expires_at((granularity, bucket))
        for _ in range(4):
            item = self._get(pk, sk)
            held = int(item["w"]["N"]) if item else 0
            sketch = HyperLogLog.from_bytes(item["sketch"]["B"]) if item else HyperLogLog()
            added = False
            for pending in deltas:
                if pending.n > held:
                    for hashes in _visitors_in(pending.delta, granularity, bucket):
                        sketch.update(hashes)
                        added = True
            if not added:
                return
            new_item = {
                **self._key(pk, sk),
                "w": {"N": str(deltas[-1].n)},
                "sketch": {"B": sketch.to_bytes()},
                **({"expires_at": {"N": str(ttl)}} if ttl else {}),
            }
            condition = "w = :held" if item else "attribute_not_exists(pk)"
            if self._put(new_item, condition, {":held": {"N": str(held)}} if item else {}):
                return
        raise StoreConflict(f"{pk} {sk}")

    def _fold_sessions(self, deltas: Sequence[PendingDelta]) -> list[Callable[[], object]]:
        expires = str(int(self.clock()) + SESSION_TTL_S)
        writes: list[Callable[[], object]] = []
        for key, state in merge_sessions(p.delta for p in deltas).items():
            item = {
                **self._session_key(key),
                "version": {"N": str(state.version)},
                "state": {"B": orjson.dumps(state.to_json())},
                "expires_at": {"N": expires},
            }
            writes.append(
                partial(
                    self._put,
                    item,
                    "attribute_not_exists(version) OR version < :v",
                    {":v": {"N": str(state.version)}},
                )
            )
        return writes

    def _fold_recent(
        self, shard: str, top: int, deltas: Sequence[PendingDelta], _erased: set[str]
    ) -> None:
        """The shard's feed, newest events kept, erased users left out. The erasure markers
        are read *after* the item, and the put is conditional on the item's generation ``g``,
        which an erasure's cleaning bumps: a fold that read the markers before an erasure
        either wrote before the cleaning (which then removes what it wrote) or fails its
        condition and reads the markers again."""
        for _ in range(4):
            item = self._get("recent", shard)
            held = int(item["w"]["N"]) if item else 0
            if held >= top:
                return
            generation = int(item["g"]["N"]) if item and "g" in item else 0
            erased = self._erased()
            events = _decode(item["events"]["B"]) if item else []
            events += [event for p in deltas if p.n > held for event in p.delta.recent]
            kept = [
                event
                for event in newest_events(events)
                if "user_id" not in event or user_hash(event["user_id"]) not in erased
            ]
            new_item = {
                **self._key("recent", shard),
                "w": {"N": str(top)},
                "g": {"N": str(generation)},
                "events": {"B": _encode(kept)},
            }
            if item is None:
                condition, values = "attribute_not_exists(pk)", {}
            elif "g" in item:
                condition = "w = :held AND g = :g"
                values = {":held": {"N": str(held)}, ":g": {"N": str(generation)}}
            else:
                condition, values = (
                    "w = :held AND attribute_not_exists(g)",
                    {":held": {"N": str(held)}},
                )
            if self._put(new_item, condition, values):
                # An erasure recorded since the markers were read cleans the stored feeds
                # after recording; one recorded before this check is caught here.
                late = self._erased() - erased
                if late and any(
                    "user_id" in event and user_hash(event["user_id"]) in late for event in kept
                ):
                    self._clean_feed(shard, lambda e: user_hash(e["user_id"]) in late)  # noqa: B023
                return
        raise StoreConflict(f"recent {shard}")

    # --- reading -----------------------------------------------------------------------------

    @staticmethod
    def _newer(pending: Mapping[str, list[PendingDelta]], shard: str, held: int) -> Iterable[Delta]:
        return (p.delta for p in pending.get(shard, []) if p.n > held)

    def counters(self, granularity: str, low: str, high: str) -> dict[str, Counters]:
        """Counters per bucket from ``low`` to ``high`` (bucket keys, inclusive), all shards."""
        pending = self.pending()  # first: a fold finishing meanwhile is then seen, not lost
        merged: dict[str, Counters] = defaultdict(Counters)
        held: dict[tuple[str, str], int] = {}
        for item in self._range(f"c#{granularity}", f"{low}#", f"{high}#~"):
            bucket, shard = item["sk"]["S"].split("#", 1)
            held[(bucket, shard)] = int(item["w"]["N"])
            for name, value in item.items():
                if name not in ("pk", "sk", "w", "expires_at"):
                    merged[bucket].values[name] += Decimal(value["N"])
        for shard, deltas in pending.items():
            for p in deltas:
                for (g, bucket), values in p.delta.counters.items():
                    if (
                        g == granularity
                        and low <= bucket <= high
                        and p.n > held.get((bucket, shard), 0)
                    ):
                        for name, amount in values.items():
                            merged[bucket].values[name] += amount
        return dict(merged)

    def visitor_sketches(self, granularity: str, low: str, high: str) -> dict[str, HyperLogLog]:
        """Unique-visitor sketch per bucket from ``low`` to ``high`` (bucket keys, inclusive),
        all shards merged, pending deltas included."""
        pending = self.pending()
        sketches: dict[str, HyperLogLog] = {}
        held: dict[tuple[str, str], int] = {}
        for item in self._range(f"hll#{granularity}", f"{low}#", f"{high}#~"):
            bucket, shard = item["sk"]["S"].split("#", 1)
            held[(bucket, shard)] = int(item["w"]["N"])
            sketch = HyperLogLog.from_bytes(item["sketch"]["B"])
            if bucket in sketches:
                sketches[bucket].merge(sketch)
            else:
                sketches[bucket] = sketch
        for shard, deltas in pending.items():
            for p in deltas:
                for minute, hashes in p.delta.visitors.items():
                    bucket = _bucket_of_minute(granularity, minute)
                    if low <= bucket <= high and p.n > held.get((bucket, shard), 0):
                        sketches.setdefault(bucket, HyperLogLog()).update(hashes)
        return sketches

    def unique_visitors(self, granularity: str, low: str, high: str) -> int:
        """Distinct visitors over the whole range (not the sum of its buckets)."""
        union = HyperLogLog()
        for sketch in self.visitor_sketches(granularity, low, high).values():
            union.merge(sketch)
        return union.count()

    def total(self, granularity: str, low: str, high: str) -> Counters:
        """The counters of a range summed (``all``/``all``: since the start)."""
        result = Counters()
        for counters in self.counters(granularity, low, high).values():
            for name, value in counters.values.items():
                result.values[name] += value
        return result

    def dimension_count(
        self,
        dimension: str,
        value: str,
        low: str,
        high: str,
        pending: Mapping[str, list[PendingDelta]] | None = None,
    ) -> int:
        """Exact count of one value over days (or, for a net dimension, hours) ``low`` to
        ``high``, inclusive."""
        return self.dimension_counts(dimension, [value], low, high, pending)[value]

    def dimension_counts(
        self,
        dimension: str,
        values: Sequence[str],
        low: str,
        high: str,
        pending: Mapping[str, list[PendingDelta]] | None = None,
    ) -> dict[str, int]:
        """Exact counts of several values over days ``low`` to ``high`` (inclusive; hours for
        a net dimension, the only ones counted exactly per hour): the pending deltas are gone
        through once, the values' items read side by side."""
        pending = self.pending() if pending is None else pending
        waiting, _ = self._pending_values(dimension, low, high, pending)
        kind = "kh" if _is_hour(low) else "k"

        def count(value: str) -> int:
            key = value_key(value)
            total = 0
            held: dict[tuple[str, str], int] = {}
            for item in self._range(f"{kind}#{dimension}#{key}", f"{low}#", f"{high}#~"):
                period, shard = item["sk"]["S"].split("#", 1)
                held[(period, shard)] = int(item["w"]["N"])
                total += int(item.get("count", {"N": "0"})["N"])
            return total + sum(
                amount
                for shard, period, n, amount in waiting.get(key, ())
                if n > held.get((period, shard), 0)
            )

        if len(values) <= 1:
            return {value: count(value) for value in values}
        with ThreadPoolExecutor(min(READERS, len(values))) as pool:
            return dict(zip(values, pool.map(count, values), strict=True))

    def _pending_values(
        self, dimension: str, low: str, high: str, pending: Mapping[str, list[PendingDelta]]
    ) -> tuple[dict[str, list[tuple[str, str, int, int]]], dict[str, str]]:
        """A dimension's pending counts over ``low``..``high`` (days, or hours), by value key:
        ``(shard, day or hour, delta n, count)`` each; and each key's value."""
        hourly = _is_hour(low)
        waiting: dict[str, list[tuple[str, str, int, int]]] = defaultdict(list)
        names: dict[str, str] = {}
        for shard, deltas in pending.items():
            for p in deltas:
                for (dim, key), counts in p.delta.dimensions.items():
                    if dim != dimension or (hourly and not _is_hour(key)):
                        continue
                    period = key if hourly else _day_of(key)
                    if low <= period <= high:
                        for value, amount in counts.items():
                            value_hash = value_key(value)
                            names[value_hash] = value
                            waiting[value_hash].append((shard, period, p.n, amount))
        return waiting, names

    def top(self, dimension: str, low: str | None, high: str | None, limit: int) -> TopValues:
        """The ``limit`` most frequent values over days, or hours, ``low``..``high`` (None:
        all time), from the frequent-items summaries; each row's count is then read exactly
        where it is kept exactly (days; hours of a net dimension), else it is the summaries'
        estimate and ``max_error`` bounds its overcount."""
        pending = self.pending()
        merged = SpaceSaving()
        held: dict[tuple[str, str], int] = {}
        periods = (
            self._range(f"{_summary_kind(low)}#{dimension}", f"{low}#", f"{high}#~")
            if low and high
            else (
                self._query(
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :all)",
                    ExpressionAttributeValues={
                        ":pk": {"S": f"top#{dimension}"},
                        ":all": {"S": "all#"},
                    },
                )
            )
        )
        for item in periods:
            period, shard = item["sk"]["S"].split("#", 1)
            held[(period, shard)] = int(item["w"]["N"])
            merged.merge(SpaceSaving.from_json(_decode(item["summary"]["B"])))
        low_key, high_key = low or "0000-00-00", high or "9999-99-99"
        waiting, names = self._pending_values(dimension, low_key, high_key, pending)
        recent: Counter[str] = Counter()
        for key, contributions in waiting.items():
            for shard, period, n, amount in contributions:
                if n > held.get((period if low and high else "all", shard), 0):
                    recent[key] += amount
        merged.merge(SpaceSaving.of_counts(recent))
        wanted = max(limit * 2, limit + 10)
        candidates = merged.top(wanted)
        # A value not among the candidates has an estimate (an upper bound of its count) no
        # larger than the last candidate's, and one not in the summaries at most their floor.
        passed_over = candidates[-1][1] if len(candidates) == wanted else 0
        spec = DIMENSIONS[dimension]
        counted_exactly = spec.net or (spec.exact and not _is_hour(low_key))
        named = {key: self._value_name(dimension, key, names) for key, _, _ in candidates}
        recount = [
            named[key]
            for key, _, error in candidates
            if spec.net or (error and counted_exactly)  # else exact: never evicted
        ]
        exact = self.dimension_counts(dimension, recount, low_key, high_key, pending)
        rows = []
        for key, estimate, _ in candidates:
            count = exact.get(named[key], estimate)
            if count > 0:
                rows.append(Ranked(named[key], count))
        rows.sort(key=lambda row: (-row.count, row.value))
        max_error = max(merged.max_error(), passed_over)
        if not counted_exactly:  # listed estimates are upper bounds, at most this far over
            max_error = max(max_error, max((error for _, _, error in candidates), default=0))
        return TopValues(rows[:limit], merged.total, max_error)

    def _value_name(self, dimension: str, key: str, names: Mapping[str, str]) -> str:
        if not key.startswith(_DIGEST_PREFIX) or key in names:
            return names.get(key, key)
        for item in self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"k#{dimension}#{key}"}},
            Limit=1,
        ):
            if "v" in item:
                return str(item["v"]["S"])
        return key

    def _feed(self) -> list[dict[str, Any]]:
        pending = self.pending()
        events: list[dict[str, Any]] = []
        held: dict[str, int] = {}
        for item in self._query(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "recent"}}
        ):
            held[item["sk"]["S"]] = int(item["w"]["N"])
            events.extend(_decode(item["events"]["B"]))
        for shard in pending:
            events.extend(
                e for d in self._newer(pending, shard, held.get(shard, 0)) for e in d.recent
            )
        return events

    def recent(self, limit: int = RECENT_EVENTS_KEPT) -> list[dict[str, Any]]:
        """Newest events across shards, without erased users."""
        events = self._feed()
        erased = self._erased() if events else set()
        kept = [e for e in events if "user_id" not in e or user_hash(e["user_id"]) not in erased]
        return newest_events(kept)[:limit]

    # --- erasure -----------------------------------------------------------------------------

    def _erased(self) -> set[str]:
        return {
            item["sk"]["S"]
            for item in self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": "erased"}},
                ProjectionExpression="sk",
            )
        }

    def erased_users(self) -> set[str]:
        """The SHA-256 of every erased user id (the archiver and the compactor leave their
        rows out)."""
        return self._erased()

    def shown_in_feed(self, user_id: str) -> int:
        """How many of the user's events the feeds hold (stored and not yet folded)."""
        return sum(1 for e in self._feed() if e.get("user_id") == user_id)

    def mark_erased(self, user_id: str, at: str) -> bool:
        """Record the erasure (idempotent); False when it was already recorded. From then on
        no feed, fold, archived batch or compaction keeps the user's events. The aggregator
        never writes this marker, so no concurrent batch can undo it."""
        item = {**self._key("erased", user_hash(user_id)), "at": {"S": at}}
        return self._put(item, "attribute_not_exists(pk)", {})

    def clean_feeds(self, user_id: str) -> int:
        """Remove the user's events from every shard's stored feed; returns how many were
        removed. Each rewrite is conditional on the feed's fold watermark ``w`` and generation
        ``g`` being what was read, and bumps ``g``: a concurrent fold either lands first (and
        this re-reads) or fails its own condition (and re-reads the markers)."""
        shards = [
            item["sk"]["S"]
            for item in self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": "recent"}},
                ProjectionExpression="sk",
            )
        ]
        return sum(
            self._clean_feed(shard, lambda e: e.get("user_id") == user_id) for shard in shards
        )

    def _clean_feed(self, shard: str, gone: Callable[[dict[str, Any]], bool]) -> int:
        for _ in range(8):
            item = self._get("recent", shard)
            if item is None:
                return 0
            events = _decode(item["events"]["B"])
            kept = [e for e in events if "user_id" not in e or not gone(e)]
            if len(kept) == len(events):
                return 0
            generation = int(item["g"]["N"]) if "g" in item else 0
            new_item = {**item, "g": {"N": str(generation + 1)}, "events": {"B": _encode(kept)}}
            condition = "w = :w AND " + ("g = :g" if "g" in item else "attribute_not_exists(g)")
            values = {":w": item["w"]}
            if "g" in item:
                values[":g"] = item["g"]
            if self._put(new_item, condition, values):
                return len(events) - len(kept)
        raise StoreConflict(f"recent {shard}")

    def erase_user(self, user_id: str, at: str) -> int:
        """Record the erasure and clean the stored feeds; returns how many events the feed
        showed (0 when the user was already erased)."""
        shown = sum(1 for e in self._feed() if e.get("user_id") == user_id)
        if not self.mark_erased(user_id, at):
            self.clean_feeds(user_id)
            return 0
        self.clean_feeds(user_id)
        return shown

    # --- the first layout --------------------------------------------------------------------

    def drop_first_layout(self) -> int:
        """Delete the items the first layout wrote (one transaction per batch, shared items);
        this layout never reads them. Returns items deleted."""
        deleted = 0
        for pk in ("total", "minute", "hour", "day", "pages", "shard"):
            keys = [
                {"pk": item["pk"], "sk": item["sk"]}
                for item in self._query(
                    KeyConditionExpression="pk = :pk",
                    ExpressionAttributeValues={":pk": {"S": pk}},
                    ProjectionExpression="pk, sk",
                )
            ]
            for start in range(0, len(keys), 25):
                request = {
                    self.table: [
                        {"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]
                    ]
                }
                while request:
                    request = (
                        self.dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems")
                        or {}
                    )
                deleted += len(keys[start : start + 25])
        return deleted
