"""Delivering batches: ``POST /events`` over HTTP (requests.Session) or ``PutRecords``
straight to the stream (``--direct-kinesis``, reusing ``clickstream.ingest``).

HTTP retry policy: 429, 5xx and connection errors/timeouts are retried with capped,
full-jitter exponential backoff, and a ``Retry-After`` header is honoured (capped); any
other 4xx is final. Whatever is not accepted is counted in the ``Delivery`` (never silently
dropped): per-record ``errors`` in a 200 are *rejected*, a batch still failing after the
last attempt is *undelivered*.
"""

from __future__ import annotations

import email.utils
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import requests

from simulator.ledger import Delivery

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
WRITE_KEY_ENV = "CLICKSTREAM_WRITE_KEY"  # sent as X-Write-Key on POST /events
API_KEY_ENV = "CLICKSTREAM_API_KEY"  # sent as X-Api-Key on the read endpoints


def write_key_headers(write_key: str | None = None) -> dict[str, str]:
    """``X-Write-Key`` from the argument, else ``$CLICKSTREAM_WRITE_KEY`` (none if unset)."""
    key = write_key if write_key is not None else os.environ.get(WRITE_KEY_ENV, "")
    return {"X-Write-Key": key} if key else {}


def api_key_headers(api_key: str | None = None) -> dict[str, str]:
    """``X-Api-Key`` from the argument, else ``$CLICKSTREAM_API_KEY`` (none if unset)."""
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
    return {"X-Api-Key": key} if key else {}


class Sender(Protocol):
    def send(self, records: list[dict[str, Any]]) -> Delivery: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base: float = 0.2
    cap: float = 5.0
    retry_after_cap: float = 30.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)] (attempt counts from 1)."""
        draw = (rng or random).uniform
        return draw(0.0, min(self.cap, self.base * 2 ** (attempt - 1)))

    def delay(
        self, attempt: int, retry_after: float | None, rng: random.Random | None = None
    ) -> float:
        jittered = self.backoff(attempt, rng)
        if retry_after is None:
            return jittered
        return min(self.retry_after_cap, max(retry_after, 0.0)) + jittered * 0.1


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _error_text(body: Any, status: int) -> list[str]:
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return [
                f"{status} {e.get('field', '?')}: {e.get('message', '?')}"
                if isinstance(e, dict)
                else f"{status} {e}"
                for e in errors
            ]
        message = body.get("message") or body.get("error") or body.get("Message")
        if message:
            return [f"{status} {message}"]
    return [f"HTTP {status}"]


class HttpSender:
    """``POST {endpoint}/events`` with ``{"records": [...]}`` and the write key (401/403 are
    final: every record of the batch is counted rejected)."""

    def __init__(
        self,
        endpoint: str,
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 30.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        write_key: str | None = None,
    ) -> None:
        self.url = endpoint.rstrip("/") + "/events"
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", "clickstream-simulator/1")
        self.session.headers.update(write_key_headers(write_key))
        self.sleep = sleep
        self.rng = rng

    def close(self) -> None:
        self.session.close()

    def send(self, records: list[dict[str, Any]]) -> Delivery:
        """Deliver a batch; records answered ``retryable`` (valid, but the stream refused
        them) are sent again with the same backoff, as a careful SDK does."""
        delivery = Delivery()
        total = len(records)
        ids = {str(record["event_id"]) for record in records}
        may_have_landed = False
        last_error = "no attempt made"
        for attempt in range(1, self.policy.max_attempts + 1):
            if attempt > 1:
                delivery.retries += 1
                if may_have_landed:
                    delivery.possible_duplicates += len(records)
            delivery.requests += 1
            retry_after: float | None = None
            try:
                response = self.session.post(
                    self.url, json={"records": records}, timeout=self.timeout
                )
            except requests.ConnectionError as exc:
                # A refused connection never reached the API; a reset or read timeout may have.
                may_have_landed = may_have_landed or not _refused(exc)
                last_error = f"connection error: {type(exc).__name__}"
            except requests.Timeout as exc:
                may_have_landed = True
                last_error = f"timeout: {type(exc).__name__}"
            else:
                status = response.status_code
                body = _json_or_none(response)
                if status == 200 and isinstance(body, dict):
                    accepted = [str(i) for i in body.get("event_ids") or [] if str(i) in ids]
                    delivery.accepted_ids += accepted
                    again = _retryable(records, body)
                    if again and attempt < self.policy.max_attempts:
                        records = again
                        ids = {str(record["event_id"]) for record in records}
                        last_error = _error_text(body, status)[0]
                        self.sleep(self.policy.delay(attempt, None, self.rng))
                        continue
                    delivery.rejected = total - len(delivery.accepted_ids) - len(again)
                    delivery.undelivered = len(again)
                    if delivery.rejected or again:
                        delivery.errors.extend(_error_text(body, status))
                    return delivery
                if status not in RETRYABLE_STATUS and not 200 <= status < 300:
                    delivery.rejected = total - len(delivery.accepted_ids)
                    delivery.errors.extend(_error_text(body, status))
                    return delivery
                # 429/5xx, or a 2xx we cannot read: try again.
                may_have_landed = may_have_landed or status not in (429, 503)
                last_error = _error_text(body, status)[0]
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt < self.policy.max_attempts:
                self.sleep(self.policy.delay(attempt, retry_after, self.rng))
        delivery.undelivered = len(records)
        delivery.rejected = total - len(delivery.accepted_ids) - len(records)
        delivery.errors.append(
            f"undelivered after {self.policy.max_attempts} attempts: {last_error}"
        )
        return delivery


def _retryable(records: list[dict[str, Any]], body: dict[str, Any]) -> list[dict[str, Any]]:
    """The records a 200 answered ``retryable`` (by index in the request)."""
    indexes = {
        error.get("index")
        for error in body.get("errors") or []
        if isinstance(error, dict) and error.get("retryable")
    }
    return [record for index, record in enumerate(records) if index in indexes]


def short_error(text: str, limit: int = 160) -> str:
    """One line of an exception's text: urllib3's nested reprs are unreadable in a table."""
    if "Connection refused" in text:
        head = text.split(":", 1)[0]
        return f"{head}: connection refused"
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _refused(exc: requests.ConnectionError) -> bool:
    text = repr(exc)
    return "Connection refused" in text or "NewConnectionError" in text


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class KinesisSender:
    """Validate and enrich like the API does, then ``PutRecords`` to the stream with
    ``clickstream.ingest.put_events`` (per-record retries of the failed entries)."""

    def __init__(self, stream_name: str | None = None, *, max_attempts: int | None = None):
        from clickstream.settings import get_settings

        settings = get_settings()
        self.stream_name = stream_name or settings.stream_name
        self.max_attempts = max_attempts or settings.max_put_attempts

    def close(self) -> None:
        return None

    def send(self, records: list[dict[str, Any]]) -> Delivery:
        from clickstream import aws
        from clickstream.ingest import put_events, validate_records

        delivery = Delivery(requests=1)
        batch = validate_records(records, received_at=datetime.now(UTC))
        for error in batch.errors:
            delivery.errors.append(f"invalid {error.field}: {error.message}")
        rejected_indexes = {error.index for error in batch.errors}
        try:
            outcome = put_events(
                aws.client("kinesis"),
                self.stream_name,
                batch.records,
                max_attempts=self.max_attempts,
            )
        except Exception as exc:  # anything the SDK raises past put_events' own handling
            delivery.undelivered = len(batch.records)
            delivery.rejected = len(rejected_indexes)
            delivery.errors.append(f"PutRecords failed: {type(exc).__name__}: {exc}")
            return delivery
        delivery.retries = max(0, outcome.attempts - 1)
        delivery.accepted_ids = [event["event_id"] for _, event in outcome.accepted]
        delivery.rejected = len(rejected_indexes)
        delivery.undelivered = len(outcome.rejected)
        delivery.errors.extend(error.message for error in outcome.rejected)
        return delivery


def chunks(records: Sequence[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [list(records[index : index + size]) for index in range(0, len(records), size)]
