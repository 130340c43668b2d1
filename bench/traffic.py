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

PRODUCTS = 200
SEQUENCE_BASE = 49_650_000_000_000_000_000_000_000_000_000_000_000_000_000_000
SOURCE_IP = "203.0.113.77"  # TEST-NET-3: what the API sees as the caller


@dataclass(frozen=True)
class TrafficSource:
    name: str
    detail: str


def _simulator_available() -> bool:
    try:
        import simulator.journeys  # noqa: F401
    except Exception:
        return False
    return True


def source() -> TrafficSource:
    if _simulator_available():
        return TrafficSource(
            "simulator",
            f"simulator.journeys.Simulation (default journey mix, {PRODUCTS} products)",
        )
    return TrafficSource("bench fallback", "bench.traffic fallback generator (simulator absent)")


def records(
    count: int, *, seed: int, start: datetime, rate: float, users: int = 1000
) -> list[dict[str, Any]]:
    """``count`` client records, timestamps from ``start`` at ``rate`` events/s overall."""
    if _simulator_available():
        return _simulator_records(count, seed=seed, start=start, rate=rate, users=users)
    return _fallback_records(count, seed=seed, start=start, rate=rate, users=users)


def _simulator_records(
    count: int, *, seed: int, start: datetime, rate: float, users: int
) -> list[dict[str, Any]]:
    from simulator.config import Catalogue, SimulatorConfig
    from simulator.journeys import Simulation

    config = dataclasses.replace(SimulatorConfig(), catalogue=Catalogue(products=PRODUCTS))
    simulation = Simulation(config, seed=seed, start=start, users=users, rate=rate)
    return [event.record for event in itertools.islice(simulation, count)]


# --- fallback generator (same record shape as the simulator's) ------------------------------

USER_AGENTS = (
    (
        "desktop",
        "Windows",
        "Chrome",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
    ),
    (
        "desktop",
        "Mac OS X",
        "Safari",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Safari/605.1.15",
    ),
    (
        "desktop",
        "Ubuntu",
        "Firefox",
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    ),
    (
        "mobile",
        "iOS",
        "Mobile Safari",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    ),
    (
        "mobile",
        "Android",
        "Chrome Mobile",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
    ),
    (
        "tablet",
        "iOS",
        "Mobile Safari",
        "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.7 Mobile/15E148 Safari/604.1",
    ),
    (
        "desktop",
        "Windows",
        "Edge",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    ),
)
CONTENT_PAGES = (
    "/home",
    "/deals",
    "/new-arrivals",
    "/category/electronics",
    "/category/apparel",
    "/category/home",
    "/category/sports",
    "/category/beauty",
    "/category/books",
    "/blog/gift-guide",
    "/help/shipping",
    "/help/returns",
    "/about",
    "/account",
)
REFERRERS = (None, "https://www.google.com/", "https://l.instagram.com/", "https://t.co/")
PLACES = (("US", "New York"), ("US", "Austin"), ("DE", "Berlin"), ("GB", "London"), ("FR", "Paris"))


def _zipf_weights(n: int, exponent: float = 1.1) -> list[float]:
    return [1.0 / (rank**exponent) for rank in range(1, n + 1)]


def _new_session(rng: random.Random) -> dict[str, Any]:
    device_type, platform, browser, agent = rng.choice(USER_AGENTS)
    country, city = rng.choice(PLACES)
    return {
        "user_id": f"user-{rng.getrandbits(48):012x}",
        "session_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "device": {"device_type": device_type, "platform": platform, "browser": browser},
        "agent": agent,
        "location": {"country": country, "city": city},
        "user_type": rng.choice(("new", "returning")),
        "steps": 0,
        "cart": None,
    }


def _next_step(
    rng: random.Random, session: dict[str, Any], product: str
) -> tuple[str, str, dict[str, Any], float | None]:
    """(event type, page, properties, value) of the session's next event."""
    roll = rng.random()
    if session["cart"] and roll < 0.3:
        if rng.random() < 0.8:
            session["steps"] = 99  # bought: the session ends
            order = {"order_id": f"ord-{rng.getrandbits(40):010x}", "currency": "USD"}
            return "purchase", "/checkout/confirmation", order, session["cart"]
        return "checkout", "/checkout", {"cart_items": 1, "cart_value": session["cart"]}, None
    if roll < 0.45:
        price = round(rng.uniform(5, 300), 2)
        return "page_view", f"/products/{product}", {"category": "home", "price": price}, None
    if roll < 0.75:
        page = rng.choices(CONTENT_PAGES, _zipf_weights(len(CONTENT_PAGES)))[0]
        return "page_view", page, {}, None
    if roll < 0.85:
        element = rng.choice(("reviews_tab", "share", "size_guide"))
        return "click", f"/products/{product}", {"element": element}, None
    if roll < 0.93:
        query = rng.choice(("headphones", "yoga mat", "desk lamp"))
        return "search", "/search", {"query": query}, None
    session["cart"] = round(rng.uniform(5, 300), 2)
    return "add_to_cart", f"/products/{product}", {"quantity": 1, "price": session["cart"]}, None


def _fallback_records(
    count: int, *, seed: int, start: datetime, rate: float, users: int
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    products = [f"sku-{1001 + index}" for index in range(PRODUCTS)]
    product_weights = _zipf_weights(PRODUCTS)
    out: list[dict[str, Any]] = []
    offset = 0.0
    active: list[dict[str, Any]] = []
    while len(out) < count:
        if len(active) < max(1, users // 4) or rng.random() < 0.15:
            active.append(_new_session(rng))
        session = rng.choice(active)
        offset += rng.expovariate(rate)
        product = rng.choices(products, product_weights)[0]
        event_type, page, properties, value = _next_step(rng, session, product)
        record: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "event_type": event_type,
            "user_id": session["user_id"],
            "session_id": session["session_id"],
            "timestamp": _iso_z(start + timedelta(seconds=offset)),
            "page": page,
        }
        referrer = rng.choice(REFERRERS)
        if referrer:
            record["referrer"] = referrer
        if page.startswith("/products/"):
            record["product_id"] = page.rsplit("/", 1)[1]
        if value is not None:
            record["value"] = value
        record |= {
            "properties": properties,
            "device": session["device"],
            "location": session["location"],
            "user_type": session["user_type"],
            "user_agent": session["agent"],
        }
        out.append(record)
        session["steps"] += 1
        if session["steps"] > rng.randint(3, 12):
            active.remove(session)
    return out


def _iso_z(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- canonical events --------------------------------------------------------------------


def to_events(batch: Sequence[dict[str, Any]], received_at: datetime | None = None) -> list[Event]:
    """The canonical events the API would put on the stream for these records (the real
    validation and enrichment path)."""
    validated = validate_records(
        batch, received_at=received_at or datetime.now(UTC), source_ip=SOURCE_IP
    )
    if validated.errors:
        raise ValueError(f"generated records failed validation: {validated.errors[:3]}")
    return [event for _, event in validated.events]


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
    page_weights = _zipf_weights(len(page_names))
    types = [name for name, _ in _TYPE_MIX]
    type_weights = [weight for _, weight in _TYPE_MIX]
    span = (end - start).total_seconds()
    step = span / max(1, count)
    received = datetime.now(UTC)
    devices = [Device(device_type=d, platform=p, browser=b) for d, p, b, _ in USER_AGENTS]
    places = [Location(country=c, city=city) for c, city in PLACES]
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
