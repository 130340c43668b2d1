"""The journey model: pure and seeded, no I/O.

A *journey* is one session of timed steps. ``plan_session`` turns a journey kind into steps
(event type, page, product, value, properties, think time before it). ``Simulation`` runs
``users`` concurrent user slots, each playing sessions back to back, merges their steps into
one time-ordered stream and dresses each step as a canonical event record (ids, user,
device, place, timestamp).

Determinism: behaviour comes from ``random.Random(seed)``; event, session and order ids from
``random.Random(f"{seed}|{start}")``; timestamps are ``start`` plus simulated offsets (whole
milliseconds). So the same seed, start, users, rate and configuration give the same events,
byte for byte, however fast they are sent. A different start gives new ids (no collisions
with an earlier run) and the same behaviour.
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from simulator.catalogue import (
    CRAWLER_AGENTS,
    DEVICES,
    DIRECT_PRODUCT_SOURCES,
    SEARCH_TERMS,
    SOURCES,
    DeviceProfile,
    Product,
    Shop,
    Source,
    Weighted,
    build_shop,
    draw_place,
)
from simulator.config import JOURNEYS, SimulatorConfig, ThinkTimes

MAX_REMEMBERED_USERS = 50_000
# No pause inside a session reaches the 30-minute visit timeout analytics apply (the
# aggregator's too): a session id always stays one visit, however think times are scaled.
MAX_STEP_GAP_S = 20 * 60
PRODUCT_CLICKS = ("image_gallery", "reviews_tab", "size_guide", "share", "wishlist")
PAGE_CLICKS = ("nav_menu", "hero_banner", "filter", "sort", "newsletter_signup", "footer_link")
PAYMENT_METHODS = Weighted(["card", "paypal", "apple_pay", "google_pay"], [0.62, 0.18, 0.13, 0.07])


@dataclass(frozen=True)
class Step:
    """One thing a visitor does. ``delay`` is the think time before it, in natural seconds."""

    event_type: str
    page: str
    delay: float
    referrer: str | None
    product_id: str | None = None
    value: float | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    url: str | None = None  # the page's full URL, as a browser tracker sends it


def think(rng: random.Random, median: float, sigma: float) -> float:
    """Log-normal think time: most steps near the median, a long tail of slow ones."""
    return median * math.exp(rng.gauss(0.0, sigma))


def new_uuid(ids: random.Random) -> str:
    return str(uuid.UUID(int=ids.getrandbits(128), version=4))


class _Session:
    """Builds a session's steps while tracking the current page, so referrers chain like a
    browser's (the landing page's referrer is the traffic source)."""

    def __init__(self, shop: Shop, times: ThinkTimes, rng: random.Random, source: Source):
        self.shop = shop
        self.times = times
        self.rng = rng
        self.source = source
        self.steps: list[Step] = []
        self.page: str | None = None
        self.page_referrer: str | None = None
        self.page_url: str | None = None

    def _delay(self, median: float) -> float:
        return 0.0 if not self.steps else think(self.rng, median, self.times.sigma)

    def view(
        self,
        page: str,
        product: Product | None = None,
        *,
        median: float | None = None,
        properties: dict[str, Any] | None = None,
        url: str | None = None,
        referrer_url: str | None = None,
    ) -> None:
        """A page view; its referrer is the current page (or ``referrer_url``: a result
        opened from a list the visitor went back to)."""
        props = dict(properties or {})
        page_url = url or self.shop.url(page)
        if not self.steps:
            referrer = self.source.referrer
            props.update(self.source.utm)
            if self.source.utm:  # campaign links land with their tags in the URL
                separator = "&" if "?" in page_url else "?"
                page_url += separator + urlencode(self.source.utm)
        else:
            referrer = referrer_url or self.page_url
        if product is not None:
            props.update(category=product.category, price=product.price)
        self.steps.append(
            Step(
                "page_view",
                page,
                self._delay(median or self.times.page_median),
                referrer,
                product.product_id if product else None,
                None,
                props,
                page_url,
            )
        )
        self.page, self.page_referrer = page, referrer
        self.page_url = page_url

    def act(
        self,
        event_type: str,
        *,
        median: float,
        product: Product | None = None,
        value: float | None = None,
        properties: dict[str, Any] | None = None,
        page: str | None = None,
        url: str | None = None,
    ) -> None:
        """An event on the current page, or on ``page`` if the action lands on a new one."""
        if page is not None and page != self.page:
            self.page_referrer = self.page_url
            self.page = page
            self.page_url = url or self.shop.url(page)
        self.steps.append(
            Step(
                event_type,
                self.page or "/home",
                self._delay(median),
                self.page_referrer,
                product.product_id if product else None,
                value,
                dict(properties or {}),
                self.page_url,
            )
        )

    def maybe_click(self, probability: float, product: Product | None = None) -> None:
        if self.rng.random() < probability:
            element = self.rng.choice(PRODUCT_CLICKS if product else PAGE_CLICKS)
            self.act(
                "click",
                median=self.times.page_median / 3,
                product=product,
                properties={"element": element},
            )


def _landing(session: _Session) -> None:
    shop = session.shop
    if session.rng.random() < 0.2:  # a search engine result straight to a product
        product = shop.product(session.rng)
        session.view(product.page, product)
    else:
        session.view(shop.landing_pages.draw(session.rng))


def _browser(session: _Session, config: SimulatorConfig) -> None:
    steps = config.browser
    rng, shop = session.rng, session.shop
    _landing(session)
    session.maybe_click(steps.click)
    pages = 1
    while pages < steps.max_pages and rng.random() < steps.continue_browsing:
        if rng.random() < steps.product_page:
            product = shop.product(rng)
            session.view(product.page, product)
            session.maybe_click(steps.click, product)
        else:
            session.view(shop.content_pages.draw(rng))
            session.maybe_click(steps.click)
        pages += 1


def _search(session: _Session, category: str) -> tuple[str, str | None]:
    rng = session.rng
    query = rng.choice(SEARCH_TERMS[category])
    session.act(
        "search",
        median=session.times.search_median,
        properties={"query": query, "results_count": rng.randint(3, 60), "category": category},
        page="/search",
        url=session.shop.url("/search?q=" + query.replace(" ", "+")),
    )
    return query, session.page_url


def _researcher(session: _Session, config: SimulatorConfig) -> None:
    steps = config.researcher
    rng, shop, times = session.rng, session.shop, session.times
    category = shop.categories.draw(rng)
    session.view(rng.choice(("/home", f"/category/{category}")))
    searches = rng.randint(steps.min_searches, steps.max_searches)
    to_compare = rng.randint(steps.min_compared, steps.max_compared)
    compared: list[Product] = []
    for index in range(searches):
        query, results_url = _search(session, category)
        share = to_compare // searches + (1 if index < to_compare % searches else 0)
        for _ in range(share):
            product = shop.product(rng, category)
            session.view(
                product.page,
                product,
                properties={
                    "list": "search_results",
                    "query": query,
                    "position": rng.randint(1, 12),
                },
                referrer_url=results_url,
            )
            compared.append(product)
            session.maybe_click(0.3, product)
    if len(compared) >= 2 and rng.random() < 0.5:
        session.act(
            "click",
            median=times.search_median,
            properties={"element": "compare", "products": [p.product_id for p in compared[-3:]]},
        )
    if compared and rng.random() < steps.add_to_cart:
        product = rng.choice(compared)
        if session.page != product.page:
            session.view(product.page, product, median=times.search_median)
        _add_to_cart(session, product, 1)
        on_cart = rng.random() < steps.view_cart
        if on_cart:
            session.view("/cart", median=times.cart_median)
        if rng.random() < steps.remove_from_cart:
            session.act(
                "remove_from_cart",
                median=times.cart_median,
                product=product,
                properties={"quantity": 1, "price": product.price},
            )


def _add_to_cart(session: _Session, product: Product, quantity: int) -> None:
    session.act(
        "add_to_cart",
        median=session.times.cart_median,
        product=product,
        properties={"quantity": quantity, "price": product.price, "category": product.category},
    )


def _quantity(rng: random.Random, maximum: int) -> int:
    return 1 if maximum <= 1 or rng.random() < 0.8 else rng.randint(2, maximum)


def _checkout_and_pay(
    session: _Session,
    cart: list[tuple[Product, int]],
    purchase_probability: float,
    ids: random.Random,
    *,
    buy_now: bool = False,
) -> None:
    rng, times = session.rng, session.times
    total = round(sum(product.price * quantity for product, quantity in cart), 2)
    items = sum(quantity for _, quantity in cart)
    checkout_props: dict[str, Any] = {"cart_items": items, "cart_value": total}
    if buy_now:
        checkout_props["buy_now"] = True
    session.act(
        "checkout",
        median=times.cart_median if buy_now else times.checkout_median / 2,
        product=cart[0][0] if len(cart) == 1 else None,
        properties=checkout_props,
        page="/checkout",
    )
    if rng.random() < purchase_probability:
        order_id = f"ord-{ids.getrandbits(40):010x}"
        session.act(
            "purchase",
            median=times.checkout_median,
            product=cart[0][0] if len(cart) == 1 else None,
            value=total,
            properties={
                "order_id": order_id,
                "items": items,
                "products": [product.product_id for product, _ in cart],
                "currency": "USD",
                "payment_method": PAYMENT_METHODS.draw(rng),
            },
            page="/checkout/confirmation",
        )


def _buyer(session: _Session, config: SimulatorConfig, ids: random.Random) -> None:
    steps = config.buyer
    rng, shop, times = session.rng, session.shop, session.times
    _landing(session)
    category = shop.categories.draw(rng)
    if rng.random() < 0.5:
        session.view(f"/category/{category}")
    viewed: list[Product] = []
    for _ in range(rng.randint(steps.min_products_viewed, steps.max_products_viewed)):
        product = shop.product(rng, category if rng.random() < 0.7 else None)
        session.view(product.page, product)
        viewed.append(product)
    cart = [(viewed[-1], _quantity(rng, steps.max_quantity))]
    _add_to_cart(session, *cart[0])
    while len(cart) < steps.max_items and rng.random() < steps.extra_item:
        in_cart = {product.product_id for product, _ in cart}
        candidates = [product for product in viewed if product.product_id not in in_cart]
        if candidates:
            product = rng.choice(candidates)
        else:
            product = shop.product(rng)
            if product.product_id in in_cart:
                break
        session.view(product.page, product, median=times.search_median)
        cart.append((product, _quantity(rng, steps.max_quantity)))
        _add_to_cart(session, *cart[-1])
    session.view("/cart", median=times.cart_median)
    if rng.random() < steps.checkout:
        _checkout_and_pay(session, cart, steps.purchase, ids)


def _quick_buyer(session: _Session, config: SimulatorConfig, ids: random.Random) -> None:
    steps = config.quick_buyer
    rng = session.rng
    product = session.shop.product(rng)
    session.view(product.page, product)
    buy_now = rng.random() < steps.buy_now
    if not buy_now:
        _add_to_cart(session, product, 1)
    _checkout_and_pay(session, [(product, 1)], steps.purchase, ids, buy_now=buy_now)


def plan_session(
    journey: str,
    config: SimulatorConfig,
    shop: Shop,
    rng: random.Random,
    ids: random.Random,
) -> list[Step]:
    """The steps of one session of the given journey kind."""
    source = DIRECT_PRODUCT_SOURCES.draw(rng) if journey == "quick_buyer" else SOURCES.draw(rng)
    session = _Session(shop, config.think, rng, source)
    if journey == "browser":
        _browser(session, config)
    elif journey == "researcher":
        _researcher(session, config)
    elif journey == "buyer":
        _buyer(session, config, ids)
    elif journey == "quick_buyer":
        _quick_buyer(session, config, ids)
    else:
        raise ValueError(f"unknown journey {journey!r}; known: {', '.join(JOURNEYS)}")
    return session.steps


def journey_mix(config: SimulatorConfig) -> Weighted[str]:
    weights = config.mix.weights()
    return Weighted(list(weights), list(weights.values()))


@dataclass(frozen=True)
class Cycle:
    """A user slot's average session: events, seconds from first to last event, idle gap."""

    events: float
    span: float
    gap: float

    @property
    def rate(self) -> float:
        """Events per second one user slot produces."""
        return self.events / (self.span + self.gap)


@lru_cache(maxsize=16)
def natural_cycle(config: SimulatorConfig, samples: int = 4000) -> Cycle:
    """The average session under ``config`` at natural think times (estimated by planning
    ``samples`` sessions with a fixed seed, so it is the same for every run)."""
    rng, ids = random.Random(0), random.Random(1)
    shop = build_shop(config.catalogue)
    mix = journey_mix(config)
    events = 0
    span = 0.0
    for _ in range(samples):
        steps = plan_session(mix.draw(rng), config, shop, rng, ids)
        events += len(steps)
        span += sum(step.delay for step in steps)
    times = config.think
    gap = times.session_gap_median * math.exp(times.sigma**2 / 2)  # log-normal mean
    return Cycle(events=events / samples, span=span / samples, gap=gap)


def time_scale(config: SimulatorConfig, users: int, rate: float) -> float:
    """Factor applied to every think time so ``users`` slots produce ``rate`` events/s of
    simulated time (1.0 for ``rate <= 0``: natural human pace)."""
    if rate <= 0:
        return 1.0
    return users * natural_cycle(config).rate / rate


@dataclass
class Visitor:
    user_id: str
    device: DeviceProfile
    country: str
    city: str
    sessions: int = 0


@dataclass(frozen=True)
class SimEvent:
    """One event of the stream: its simulated offset from the start, the journey it belongs
    to and the record as it is sent (canonical field names)."""

    offset_ms: int
    journey: str
    record: dict[str, Any]
    session_start: bool = False

    @property
    def event_id(self) -> str:
        return str(self.record["event_id"])

    @property
    def event_type(self) -> str:
        return str(self.record["event_type"])

    @property
    def session_id(self) -> str:
        return str(self.record["session_id"])


def iso_z(ts: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z: 2026-11-24T02:51:03.120Z."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Simulation:
    """``users`` concurrent user slots playing sessions back to back, as one time-ordered,
    endless iterator of events. Pure: nothing but the seed, start and arguments decide it."""

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        seed: int,
        start: datetime,
        users: int = 50,
        rate: float = 20.0,
    ) -> None:
        if users < 1:
            raise ValueError("users must be at least 1")
        config.validate()
        self.config = config
        self.seed = seed
        self.start = start.astimezone(UTC)
        self.users = users
        self.rate = rate
        self.shop = build_shop(config.catalogue)
        self.mix = journey_mix(config)
        self.scale = time_scale(config, users, rate)
        self._rng = random.Random(seed)
        self._ids = random.Random(f"{seed}|{iso_z(self.start)}")
        self._visitors: list[Visitor] = []  # visitors between sessions
        self._active: dict[int, Visitor] = {}  # slot -> visitor in a session
        self.sessions_started = 0

    @property
    def expected_rate(self) -> float:
        """Events per simulated second in the steady state."""
        return self.users * natural_cycle(self.config).rate / self.scale

    def _new_visitor(self) -> Visitor:
        rng = self._rng
        country, city = draw_place(rng)
        return Visitor(f"user-{rng.getrandbits(48):012x}", DEVICES.draw(rng), country, city)

    def _visitor(self, slot: int) -> tuple[Visitor, str]:
        """Who plays the slot's next session. The slot's previous visitor has left and may
        come back later; nobody is in two sessions at once."""
        rng, population = self._rng, self.config.population
        previous = self._active.pop(slot, None)
        if previous is not None:
            if len(self._visitors) < MAX_REMEMBERED_USERS:
                self._visitors.append(previous)
            else:
                self._visitors[rng.randrange(MAX_REMEMBERED_USERS)] = previous
        if rng.random() < population.returning_share:
            user_type = "returning"
            if self._visitors and rng.random() < population.revisit_in_run:
                index = rng.randrange(len(self._visitors))
                self._visitors[index], self._visitors[-1] = (
                    self._visitors[-1],
                    self._visitors[index],
                )
                visitor = self._visitors.pop()
            else:
                visitor = self._new_visitor()  # known to the site from before the run
        else:
            user_type = "new"
            visitor = self._new_visitor()
        visitor.sessions += 1
        self._active[slot] = visitor
        return visitor, user_type

    def _session_events(self, slot: int, begin_ms: int) -> tuple[list[SimEvent], int]:
        bot_share = self.config.population.bot_share
        if bot_share and self._rng.random() < bot_share:
            return self._crawler_events(begin_ms)
        journey = self.mix.draw(self._rng)
        visitor, user_type = self._visitor(slot)
        steps = plan_session(journey, self.config, self.shop, self._rng, self._ids)
        session_id = new_uuid(self._ids)
        self.sessions_started += 1
        device = visitor.device
        events: list[SimEvent] = []
        offset = float(begin_ms)
        for index, step in enumerate(steps):
            offset += min(step.delay * self.scale, MAX_STEP_GAP_S) * 1000.0
            offset_ms = round(offset)
            record: dict[str, Any] = {
                "event_id": new_uuid(self._ids),
                "event_type": step.event_type,
                "user_id": visitor.user_id,
                "session_id": session_id,
                "timestamp": iso_z(self.start + timedelta(milliseconds=offset_ms)),
                "page": step.page,
            }
            if step.referrer:
                record["referrer"] = step.referrer
            if step.url:
                record["page_url"] = step.url
            if step.product_id:
                record["product_id"] = step.product_id
            if step.value is not None:
                record["value"] = step.value
            record["properties"] = step.properties
            record["device"] = {
                "device_type": device.device_type,
                "platform": device.platform,
                "browser": device.browser,
            }
            record["location"] = {"country": visitor.country, "city": visitor.city}
            record["user_type"] = user_type
            record["user_agent"] = device.user_agent
            events.append(SimEvent(offset_ms, journey, record, index == 0))
        return events, round(offset)

    def _crawler_events(self, begin_ms: int) -> tuple[list[SimEvent], int]:
        """A crawler or headless browser walking the pages a browsing visit would see: page
        views with its user agent and nothing else (no user, device or place)."""
        steps = plan_session("browser", self.config, self.shop, self._rng, self._ids)
        session_id = new_uuid(self._ids)
        agent = CRAWLER_AGENTS.draw(self._rng)
        self.sessions_started += 1
        events: list[SimEvent] = []
        offset = float(begin_ms)
        for step in (step for step in steps if step.event_type == "page_view"):
            offset += min(step.delay * self.scale, MAX_STEP_GAP_S) * 1000.0
            record: dict[str, Any] = {
                "event_id": new_uuid(self._ids),
                "event_type": "page_view",
                "session_id": session_id,
                "timestamp": iso_z(self.start + timedelta(milliseconds=round(offset))),
                "page": step.page,
                "page_url": step.url,
                "user_agent": agent,
            }
            events.append(SimEvent(round(offset), "crawler", record, not events))
        return events, round(offset)

    def __iter__(self) -> Iterator[SimEvent]:
        cycle = natural_cycle(self.config)
        per_slot_gap_ms = (cycle.span + cycle.gap) / cycle.events * self.scale * 1000.0
        times = self.config.think
        # Slots start within one inter-event gap of each other, so the rate is near its
        # steady state from the start. (next offset, slot): ties break on the slot index.
        heap = [(round(self._rng.uniform(0, per_slot_gap_ms)), slot) for slot in range(self.users)]
        heapq.heapify(heap)
        pending: dict[int, list[SimEvent]] = {slot: [] for slot in range(self.users)}
        next_session: dict[int, int] = {}
        while True:
            offset_ms, slot = heapq.heappop(heap)
            queue = pending[slot]
            if not queue:
                events, end_ms = self._session_events(slot, offset_ms)
                queue.extend(reversed(events))
                idle = think(self._rng, times.session_gap_median, times.sigma) * self.scale
                next_session[slot] = end_ms + round(idle * 1000.0)
            yield queue.pop()
            heapq.heappush(heap, (queue[-1].offset_ms if queue else next_session[slot], slot))
