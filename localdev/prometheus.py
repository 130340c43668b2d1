"""EMF -> Prometheus for the local stack's ``/metrics`` endpoints, through one table,
:data:`TWINS` (docs/local-stack.md)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from localdev.emf import emf_metric_data, parse_emf

log = logging.getLogger("localdev.prometheus")

MetricKind = Literal["counter", "gauge", "histogram"]
SERVICE = ("service",)  # the product's one dimension
API_LABELS = (("service", "service"), ("route", "route"))  # route: a property of the line
BATCH_SIZE_BUCKETS = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 10000.0)
BATCH_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class PrometheusTwin:
    """Where one EMF metric, read with one of its dimension sets, goes in Prometheus."""

    emf_name: str
    dimensions: tuple[str, ...]  # the EMF dimension set read: exactly these names
    name: str  # the Prometheus metric (a counter's samples get ``_total``)
    kind: MetricKind
    documentation: str
    labels: tuple[tuple[str, str], ...] = ()  # (Prometheus label, EMF member: dimension or not)
    constant_labels: tuple[tuple[str, str], ...] = ()
    scale: float = 1.0  # e.g. milliseconds -> seconds
    buckets: tuple[float, ...] = ()
    namespace: str | None = None  # None: the product's namespace, whatever it is called
    # (label, EMF member): the value is split by a property holding {label value: count}
    split: tuple[str, str] | None = None

    @property
    def label_names(self) -> tuple[str, ...]:
        split = (self.split[0],) if self.split else ()
        names = (name for name, _ in (*self.labels, *self.constant_labels))
        return (*names, *split)


def _same(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, name) for name in names)


TWINS: tuple[PrometheusTwin, ...] = (
    # the API (service="clickstream-api"), per ingest route
    PrometheusTwin(
        "EventsAccepted",
        SERVICE,
        "clickstream_events_accepted",
        "counter",
        "Events the stream took, per ingest route",
        API_LABELS,
    ),
    PrometheusTwin(
        "EventsRejected",
        SERVICE,
        "clickstream_events_rejected",
        "counter",
        "Events not accepted, per ingest route and reason (stream_refused, or invalid_<field>)",
        API_LABELS,
        split=("reason", "rejected_by_reason"),
    ),
    PrometheusTwin(
        "PutRecordsRetries",
        SERVICE,
        "clickstream_putrecords_retries",
        "counter",
        "PutRecords calls after a request's first (only the failed entries are sent again)",
        API_LABELS,
    ),
    PrometheusTwin(
        "PutRecordsThrottled",
        SERVICE,
        "clickstream_putrecords_throttled",
        "counter",
        "PutRecords entries (or whole calls) refused with ProvisionedThroughputExceeded",
        API_LABELS,
    ),
    PrometheusTwin(
        "PutRecordsFailed",
        SERVICE,
        "clickstream_putrecords_failed",
        "counter",
        "Requests answered 503: the stream took none of their valid events",
        API_LABELS,
    ),
    PrometheusTwin(
        "AuthRejected",
        ("service",),
        "clickstream_auth_rejected",
        "counter",
        "Requests refused for their key or token",
        _same("service"),
    ),
    # the consumers (service="clickstream-aggregator" / "clickstream-archiver")
    PrometheusTwin(
        "BatchSize",
        SERVICE,
        "clickstream_consumer_batch_size",
        "histogram",
        "Records per consumer invocation",
        _same("service"),
        buckets=BATCH_SIZE_BUCKETS,
    ),
    PrometheusTwin(
        "BatchDuration",
        SERVICE,
        "clickstream_consumer_batch_duration_seconds",
        "histogram",
        "Time a consumer invocation took",
        _same("service"),
        scale=0.001,
        buckets=BATCH_SECONDS_BUCKETS,
    ),
    PrometheusTwin(
        "DuplicatesSkipped",
        SERVICE,
        "clickstream_duplicates_skipped",
        "counter",
        "Records not counted again: redelivered (at or below the shard's watermark) or an "
        "event id already counted",
        _same("service"),
        constant_labels=(("kind", "redelivered"),),
    ),
    PrometheusTwin(
        "DuplicateEventIds",
        SERVICE,
        "clickstream_duplicates_skipped",
        "counter",
        "Records not counted again: redelivered (at or below the shard's watermark) or an "
        "event id already counted",
        _same("service"),
        constant_labels=(("kind", "event_id"),),
    ),
    PrometheusTwin(
        "PoisonRecords",
        SERVICE,
        "clickstream_poison_records",
        "counter",
        "Undecodable records quarantined (raw bytes to S3 bad/, a message to the DLQ)",
        _same("service"),
    ),
    PrometheusTwin(
        "ConsumerErrors",
        SERVICE,
        "clickstream_consumer_errors",
        "counter",
        "Consumer invocations whose write failed (the batch is retried)",
        _same("service"),
    ),
    PrometheusTwin(
        "EventsAggregated",
        SERVICE,
        "clickstream_events_aggregated",
        "counter",
        "Events counted into the aggregates",
        _same("service"),
    ),
    PrometheusTwin(
        "EventsArchived",
        SERVICE,
        "clickstream_events_archived",
        "counter",
        "Events written to the Parquet archive",
        _same("service"),
    ),
    # Lambda's own figure, printed by the local runner per shard
    PrometheusTwin(
        "IteratorAge",
        ("FunctionName",),
        "clickstream_consumer_millis_behind_latest",
        "gauge",
        "How far a consumer's reader is behind the shard's tip (GetRecords MillisBehindLatest)",
        (("function", "FunctionName"), ("shard", "ShardId")),
        namespace="AWS/Lambda",
    ),
)


@dataclass(frozen=True)
class Observation:
    """One EMF metric value list, as the Prometheus metric and labels it goes to."""

    twin: PrometheusTwin
    labels: tuple[tuple[str, str], ...]
    values: tuple[float, ...]


def _twin_index(twins: Iterable[PrometheusTwin]) -> dict[tuple[str, frozenset[str]], list[Any]]:
    index: dict[tuple[str, frozenset[str]], list[Any]] = {}
    for twin in twins:
        index.setdefault((twin.emf_name, frozenset(twin.dimensions)), []).append(twin)
    return index


_INDEX = _twin_index(TWINS)


def observations(
    doc: Mapping[str, Any], twins: tuple[PrometheusTwin, ...] = TWINS
) -> list[Observation]:
    """What an EMF document adds to the Prometheus metrics: each metric x dimension set the
    table knows (an EMF metric reported with several dimension sets is read with one only,
    so nothing is counted twice); a label whose member is missing drops the value."""
    index = _INDEX if twins is TWINS else _twin_index(twins)
    found: list[Observation] = []
    for namespace, datum in emf_metric_data(doc):
        key = (datum["MetricName"], frozenset(d["Name"] for d in datum["Dimensions"]))
        for twin in index.get(key, []):
            if twin.namespace is not None and twin.namespace != namespace:
                continue
            members = [doc.get(member) for _, member in twin.labels]
            if any(value is None or isinstance(value, dict | list) for value in members):
                continue
            labels = tuple(
                (name, str(value)) for (name, _), value in zip(twin.labels, members, strict=True)
            )
            labels += twin.constant_labels
            if twin.split is None:
                values = tuple(value * twin.scale for value in datum["Values"])
                found.append(Observation(twin, labels, values))
            else:
                found += _split(twin, twin.split, labels, doc.get(twin.split[1]), datum["Values"])
    return found


UNSPECIFIED = "unspecified"


def _split(
    twin: PrometheusTwin,
    split: tuple[str, str],
    labels: tuple[tuple[str, str], ...],
    parts: Any,
    values: list[float],
) -> list[Observation]:
    """One observation per part of a value split by a property ({label value: count}); what
    the parts do not account for is labelled ``unspecified``."""
    label, _ = split
    counts = {
        str(key): float(count)
        for key, count in (parts.items() if isinstance(parts, dict) else [])
        if isinstance(count, int | float) and not isinstance(count, bool) and count > 0
    }
    rest = sum(values) - sum(counts.values())
    if rest > 0:
        counts[UNSPECIFIED] = counts.get(UNSPECIFIED, 0.0) + rest
    return [
        Observation(twin, (*labels, (label, key)), (count * twin.scale,))
        for key, count in sorted(counts.items())
    ]


class PrometheusMetrics:
    """The table's metrics in one registry, fed EMF documents or log lines."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        twins: tuple[PrometheusTwin, ...] = TWINS,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.twins = twins
        self._metrics: dict[str, Any] = {}
        for twin in twins:
            if twin.name not in self._metrics:
                self._metrics[twin.name] = _new_metric(twin, self.registry)

    def record(self, doc: Mapping[str, Any]) -> int:
        """Apply an EMF document; the number of observations it held."""
        found = observations(doc, self.twins)
        for observation in found:
            metric = self._metrics[observation.twin.name]
            child = metric.labels(**dict(observation.labels)) if observation.labels else metric
            kind = observation.twin.kind
            if kind == "counter":
                child.inc(sum(value for value in observation.values if value > 0))
            elif kind == "gauge":
                child.set(observation.values[-1])
            else:
                for value in observation.values:
                    child.observe(value)
        return len(found)

    def record_line(self, line: str) -> bool:
        """Apply one log line when it is EMF; False when it is not."""
        doc = parse_emf(line)
        return doc is not None and self.record(doc) > 0


def _new_metric(twin: PrometheusTwin, registry: CollectorRegistry) -> Any:
    common: dict[str, Any] = {"labelnames": twin.label_names, "registry": registry}
    if twin.kind == "counter":
        return Counter(twin.name, twin.documentation, **common)
    if twin.kind == "gauge":
        return Gauge(twin.name, twin.documentation, **common)
    return Histogram(twin.name, twin.documentation, buckets=twin.buckets, **common)


DLQ_METRIC = "clickstream_dlq_messages"


class DeadLetterQueueDepth(Collector):
    """The dead-letter queue's depth, asked of SQS on each scrape (CloudWatch gets it from
    SQS itself as ApproximateNumberOfMessagesVisible / NotVisible)."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_name = queue_url.rstrip("/").rsplit("/", 1)[-1]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            DLQ_METRIC,
            "Messages in the dead-letter queue: visible, or received and not yet deleted",
            labels=["queue", "state"],
        )

    def describe(self) -> Iterator[Metric]:
        yield self._family()  # so registering it asks SQS nothing

    def collect(self) -> Iterator[Metric]:
        try:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
        except (BotoCoreError, ClientError) as exc:  # the scrape goes on without it
            log.warning("dead-letter queue depth unavailable: %s", exc)
            return
        family = self._family()
        family.add_metric(
            [self.queue_name, "visible"], float(attributes["ApproximateNumberOfMessages"])
        )
        family.add_metric(
            [self.queue_name, "in_flight"],
            float(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )
        yield family


class EmfTee:
    """A text stream that writes through to ``sink`` and hands each complete line to
    ``on_line``: how a process observes the EMF lines it prints itself. Lines are
    assembled per thread, as ``print`` writes a line and its newline in two calls."""

    def __init__(self, sink: IO[str], on_line: Callable[[str], Any]) -> None:
        self.sink = sink
        self.on_line = on_line
        self._pending = threading.local()

    def write(self, text: str) -> int:
        written = self.sink.write(text)
        before: str = getattr(self._pending, "text", "")
        if not before and "{" not in text:
            return written  # (most output: no metric starts here)
        pending = before + text
        *lines, rest = pending.split("\n")
        self._pending.text = rest if rest.lstrip().startswith("{") else ""
        for line in lines:
            if line.lstrip().startswith("{"):
                try:
                    self.on_line(line)
                except Exception:  # a metric must never break the output
                    log.exception("could not record a metric line")
        return written

    def flush(self) -> None:
        self.sink.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)


def twins_markdown() -> str:
    """The README's table: each Prometheus metric and its CloudWatch twin."""
    rows = [
        "| Prometheus metric | type | labels | CloudWatch twin (namespace: metric [dimensions]) |",
        "|---|---|---|---|",
    ]
    for twin in TWINS:
        suffix = "_total" if twin.kind == "counter" else ""
        labels = ", ".join(
            [f"`{name}`" for name, _ in twin.labels]
            + [f'`{name}="{value}"`' for name, value in twin.constant_labels]
            + ([f"`{twin.split[0]}`"] if twin.split else [])
        )
        namespace = twin.namespace or "Clickstream"
        properties = [member for _, member in twin.labels if member not in twin.dimensions]
        properties += [twin.split[1]] if twin.split else []
        note = f"; by {', '.join(properties)}: properties of the line" if properties else ""
        rows.append(
            f"| `{twin.name}{suffix}` | {twin.kind} | {labels} | {namespace}: "
            f"`{twin.emf_name}` [{', '.join(twin.dimensions)}]{note} |"
        )
    rows.append(
        f"| `{DLQ_METRIC}` | gauge | `queue`, `state` | AWS/SQS: "
        "`ApproximateNumberOfMessagesVisible` (state=visible), "
        "`ApproximateNumberOfMessagesNotVisible` (state=in_flight) [QueueName] |"
    )
    return "\n".join(rows) + "\n"
