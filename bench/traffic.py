"""Realistic traffic for the figures.

``records()`` yields client-side event records as the API receives them: from the project's
simulator (``simulator/``, user journeys with real user-agent strings, Zipf-popular pages and
products, funnels, purchases) when it imports, else from a smaller generator here with the
same shape. ``synthetic_events()`` builds canonical events fast (no validation) for the
10^6-event read-latency data set, where only what the aggregates see matters.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clickstream.aggregates import SequencedEvent
from clickstream.ingest import validate_records
from clickstream.schema import Device, Event, Location
from simulator.catalogue import CITIES, CONTENT_PAGES, COUNTRIES, DEVICES, zipf_weights

PRODUCTS = 200
SEQUENCE_BASE = 49_650_000_000_000_000_000_000_000_000_000_000_000_000_000_000
SOURCE_IP = "203.0.113.77"  # TEST-NET-3: what the API sees as the caller


@dataclass(frozen=True)
class TrafficSource:
    name: str
    detail: str


def source() -> TrafficSource:
    return TrafficSource(
        "simulator", f"simulator.journeys.Simulation (default journey mix, {PRODUCTS} products)"
    )


def records(
    count: int, *, seed: int, start: datetime, rate: float, users: int = 1000
) -> list[dict[str, Any]]:
    """``count`` client records, timestamps from ``start`` at ``rate`` events/s overall."""
    return _simulator_records(count, seed=seed, start=start, rate=rate, users=users)


def _simulator_records(
    count: int, *, seed: int, start: datetime, rate: float, users: int
) -> list[dict[str, Any]]:
    from simulator.config import Catalogue, SimulatorConfig
    from simulator.journeys import Simulation

    config = dataclasses.replace(SimulatorConfig(), catalogue=Catalogue(products=PRODUCTS))
    simulation = Simulation(config, seed=seed, start=start, users=users, rate=rate)
    return [event.record for event in itertools.islice(simulation, count)]


# --- canonical events --------------------------------------------------------------------


def to_canonical(
    batch: Sequence[dict[str, Any]], received_at: datetime | None = None
) -> list[dict[str, Any]]:
    """The canonical events the API would put on the stream for these records (the real
    validation and enrichment path), as the JSON objects it encodes."""
    validated = validate_records(
        batch, received_at=received_at or datetime.now(UTC), source_ip=SOURCE_IP
    )
    if validated.errors:
        raise ValueError(f"generated records failed validation: {validated.errors[:3]}")
    return [event for _, event in validated.records]


def to_events(batch: Sequence[dict[str, Any]], received_at: datetime | None = None) -> list[Event]:
    """``to_canonical`` as the model the consumers read."""
    return [Event.model_validate(event) for event in to_canonical(batch, received_at)]


def sequence_number(index: int) -> str:
    """A Kinesis-like sequence number (56 decimal digits, increasing with ``index``)."""
    return str(SEQUENCE_BASE + index * 1_000)


def sequenced(events: Sequence[Event], first_index: int = 0) -> list[SequencedEvent]:
    return [
        SequencedEvent(sequence_number(first_index + offset), event)
        for offset, event in enumerate(events)
    ]


_TYPE_MIX = (
    ("page_view", 0.66),
    ("click", 0.14),
    ("search", 0.07),
    ("add_to_cart", 0.055),
    ("checkout", 0.034),
    ("purchase", 0.032),
    ("remove_from_cart", 0.004),
)


def synthetic_events(
    count: int, *, seed: int, start: datetime, end: datetime, pages: int = 220
) -> Iterator[Event]:
    """Canonical events built directly (``model_copy`` of a template, no validation), in time
    order between ``start`` and ``end``: ~6-event sessions interleaved, the simulator's event
    type mix, Zipf-popular pages, purchase values. For data sets too large to pass through
    the API path in the bench's time budget."""
    rng = random.Random(seed)
    page_names = [
        *CONTENT_PAGES,
        *(f"/products/sku-{1001 + index}" for index in range(max(0, pages - 14))),
    ]
    page_weights = zipf_weights(len(page_names), 1.1)
    types = [name for name, _ in _TYPE_MIX]
    type_weights = [weight for _, weight in _TYPE_MIX]
    span = (end - start).total_seconds()
    step = span / max(1, count)
    received = datetime.now(UTC)
    devices = [
        Device(device_type=d.device_type, platform=d.platform, browser=d.browser)
        for d in DEVICES.items
    ]
    places = [Location(country=c, city=CITIES[c].items[0]) for c in COUNTRIES.items]
    template = Event.model_construct(
        event_id="",
        event_type="page_view",
        timestamp=start,
        received_at=received,
        properties={},
        device=devices[0],
        location=places[0],
        schema_version=1,
    )
    sessions: list[list[Any]] = []  # [session_id, user_id, remaining]
    batch_size = 10_000
    produced = 0
    while produced < count:
        size = min(batch_size, count - produced)
        drawn_pages = rng.choices(page_names, page_weights, k=size)
        drawn_types = rng.choices(types, type_weights, k=size)
        for index in range(size):
            if len(sessions) < 400 or rng.random() < 0.17:
                sessions.append(
                    [
                        str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                        f"user-{rng.getrandbits(48):012x}",
                        rng.randint(1, 12),
                    ]
                )
            slot = rng.randrange(len(sessions))
            session = sessions[slot]
            session[2] -= 1
            if session[2] <= 0:
                sessions[slot] = sessions[-1]
                sessions.pop()
            event_type = drawn_types[index]
            yield template.model_copy(
                update={
                    "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "event_type": event_type,
                    "timestamp": start + timedelta(seconds=(produced + index) * step),
                    "user_id": session[1],
                    "session_id": session[0],
                    "page": drawn_pages[index],
                    "value": round(rng.uniform(5, 300), 2) if event_type == "purchase" else None,
                    "device": devices[index % len(devices)],
                    "location": places[index % len(places)],
                }
            )
        produced += size
