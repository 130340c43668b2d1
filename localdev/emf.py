"""Embedded Metric Format -> CloudWatch metrics, for the local stack.

On AWS, CloudWatch Logs extracts metrics from EMF log lines (what aws-lambda-powertools
``Metrics`` prints). Locally nothing does, so every process's stdout passes through
:func:`forward_emf_line`, which turns such a line into ``PutMetricData`` on the emulator.

An EMF line is a JSON object whose ``_aws.CloudWatchMetrics`` lists directives; each directive
names a namespace, dimension sets (lists of member names whose values are top-level members)
and metrics (name, unit, storage resolution) whose values are top-level members too — a
number or a list of numbers.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("localdev.emf")

MAX_DATUMS_PER_CALL = 500  # PutMetricData allows 1000 per request
MAX_VALUES_PER_DATUM = 150  # and 150 values per datum


def parse_emf(line: str) -> dict[str, Any] | None:
    """The EMF document in ``line``, or None when the line is not EMF."""
    text = line.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    meta = doc.get("_aws")
    if not isinstance(meta, dict) or not isinstance(meta.get("CloudWatchMetrics"), list):
        return None
    return doc


def _numbers(raw: Any) -> list[float]:
    items = raw if isinstance(raw, list) else [raw]
    values: list[float] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | float):
            continue
        if math.isfinite(item):
            values.append(float(item))
    return values


def _timestamp(meta: Mapping[str, Any]) -> datetime:
    raw = meta.get("Timestamp")
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return datetime.fromtimestamp(raw / 1000.0, tz=UTC)
    return datetime.now(tz=UTC)


def emf_metric_data(doc: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(namespace, MetricDatum) pairs for every metric x dimension set of an EMF document."""
    meta = doc["_aws"]
    timestamp = _timestamp(meta)
    for directive in meta.get("CloudWatchMetrics", []):
        if not isinstance(directive, dict) or not directive.get("Namespace"):
            continue
        namespace = str(directive["Namespace"])
        dimension_sets = directive.get("Dimensions") or [[]]
        for definition in directive.get("Metrics", []):
            name = definition.get("Name") if isinstance(definition, dict) else None
            if not name or name not in doc:
                continue
            values = _numbers(doc[name])
            if not values:
                continue
            for dim_keys in dimension_sets:
                dimensions = [
                    {"Name": str(key), "Value": str(doc[key])}
                    for key in dim_keys
                    if key in doc and doc[key] is not None
                ]
                if len(dimensions) != len(dim_keys):
                    continue  # a dimension without a value: CloudWatch Logs drops it too
                for start in range(0, len(values), MAX_VALUES_PER_DATUM):
                    datum: dict[str, Any] = {
                        "MetricName": str(name),
                        "Dimensions": dimensions,
                        "Timestamp": timestamp,
                        "Values": values[start : start + MAX_VALUES_PER_DATUM],
                    }
                    if definition.get("Unit"):
                        datum["Unit"] = str(definition["Unit"])
                    if definition.get("StorageResolution") in (1, 60):
                        datum["StorageResolution"] = int(definition["StorageResolution"])
                    yield namespace, datum


def forward_emf_line(line: str, cloudwatch_client: Any) -> bool:
    """PutMetricData the metrics of one EMF log line; False when the line is not EMF (or
    carries no metric value). Errors of the emulator propagate."""
    doc = parse_emf(line)
    if doc is None:
        return False
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for namespace, datum in emf_metric_data(doc):
        by_namespace.setdefault(namespace, []).append(datum)
    if not by_namespace:
        return False
    for namespace, data in by_namespace.items():
        for start in range(0, len(data), MAX_DATUMS_PER_CALL):
            cloudwatch_client.put_metric_data(
                Namespace=namespace, MetricData=data[start : start + MAX_DATUMS_PER_CALL]
            )
    log.debug("forwarded EMF metrics: %s", {ns: len(d) for ns, d in by_namespace.items()})
    return True
