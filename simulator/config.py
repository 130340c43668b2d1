"""The simulator's knobs: journey mix, step probabilities, think times, population and
catalogue sizes. Plain dataclasses with realistic defaults; any subset can be overridden from
a JSON file (``--config FILE``) whose shape mirrors the dataclasses, e.g.::

    {"mix": {"browser": 0.5, "researcher": 0.3, "buyer": 0.15, "quick_buyer": 0.05},
     "researcher": {"add_to_cart": 0.5},
     "population": {"returning_share": 0.4}}

Unknown keys are errors (a typo must not be silently ignored).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

JOURNEYS = ("browser", "researcher", "buyer", "quick_buyer")


@dataclass(frozen=True)
class JourneyMix:
    """Share of sessions per journey (normalised, so they need not sum to exactly 1)."""

    browser: float = 0.60
    researcher: float = 0.20
    buyer: float = 0.15
    quick_buyer: float = 0.05

    def weights(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in JOURNEYS}


@dataclass(frozen=True)
class BrowserSteps:
    """Lands, views pages and products, leaves."""

    continue_browsing: float = 0.65  # after each page: view another (geometric length)
    max_pages: int = 12
    product_page: float = 0.45  # a further page is a product page rather than a content page
    click: float = 0.25  # a page also gets a click event (banner, nav, filter)


@dataclass(frozen=True)
class ResearcherSteps:
    """Searches, compares products, may add to cart and abandon."""

    min_searches: int = 1
    max_searches: int = 3
    min_compared: int = 2
    max_compared: int = 5
    add_to_cart: float = 0.35  # adds one of the compared products (then abandons)
    remove_from_cart: float = 0.30  # given an add: takes it out again before leaving
    view_cart: float = 0.50  # given an add: looks at /cart before leaving


@dataclass(frozen=True)
class BuyerSteps:
    """Full funnel: page_view -> add_to_cart -> checkout -> purchase."""

    min_products_viewed: int = 1
    max_products_viewed: int = 4
    extra_item: float = 0.35  # puts another viewed product in the cart (repeatable)
    max_items: int = 4
    max_quantity: int = 3
    checkout: float = 1.0  # reaches checkout (the 15% are buyers: they do by default)
    purchase: float = 1.0  # completes payment once at checkout


@dataclass(frozen=True)
class QuickBuyerSteps:
    """Direct purchase path: lands on a product page (ad, e-mail, bookmark) and buys it."""

    buy_now: float = 0.60  # "buy now" straight to checkout, skipping add_to_cart
    purchase: float = 1.0


@dataclass(frozen=True)
class ThinkTimes:
    """Seconds a person spends before the next step (log-normal: median, spread), in
    "natural" time. With ``--rate R`` they are scaled so the configured users produce R
    events/s in total; with ``--rate 0`` they are used as they are."""

    page_median: float = 18.0
    search_median: float = 9.0
    cart_median: float = 12.0
    checkout_median: float = 35.0
    sigma: float = 0.6
    session_gap_median: float = 45.0  # a user slot idles this long before the next session


@dataclass(frozen=True)
class Population:
    returning_share: float = 0.35  # sessions by a user who visited before (user_type returning)
    # Of those, the share that picks a visitor whose earlier session was in this run (when
    # there is one); the rest are visitors from before the run.
    revisit_in_run: float = 0.5
    # Sessions by crawlers and headless browsers (left out of the aggregates, counted as bots).
    bot_share: float = 0.03


@dataclass(frozen=True)
class Catalogue:
    products: int = 120
    popularity_exponent: float = 1.1  # Zipf exponent for product and page popularity
    median_price: float = 39.0
    price_sigma: float = 0.9
    site: str = "https://shop.example.com"


@dataclass(frozen=True)
class SimulatorConfig:
    mix: JourneyMix = field(default_factory=JourneyMix)
    browser: BrowserSteps = field(default_factory=BrowserSteps)
    researcher: ResearcherSteps = field(default_factory=ResearcherSteps)
    buyer: BuyerSteps = field(default_factory=BuyerSteps)
    quick_buyer: QuickBuyerSteps = field(default_factory=QuickBuyerSteps)
    think: ThinkTimes = field(default_factory=ThinkTimes)
    population: Population = field(default_factory=Population)
    catalogue: Catalogue = field(default_factory=Catalogue)

    def validate(self) -> None:
        weights = self.mix.weights()
        if any(value < 0 for value in weights.values()) or sum(weights.values()) <= 0:
            raise ConfigError("mix: shares must be >= 0 and not all zero")
        for section in (self.browser, self.researcher, self.buyer, self.quick_buyer):
            for item in dataclasses.fields(section):
                value = getattr(section, item.name)
                if isinstance(value, float) and not 0.0 <= value <= 1.0:
                    raise ConfigError(f"{item.name}: probability {value} is not within [0, 1]")
        if self.researcher.min_searches > self.researcher.max_searches:
            raise ConfigError("researcher: min_searches > max_searches")
        if self.researcher.min_compared > self.researcher.max_compared:
            raise ConfigError("researcher: min_compared > max_compared")
        if self.buyer.min_products_viewed > self.buyer.max_products_viewed:
            raise ConfigError("buyer: min_products_viewed > max_products_viewed")
        if self.catalogue.products < 5:
            raise ConfigError("catalogue.products must be at least 5")
        for name in ("returning_share", "revisit_in_run", "bot_share"):
            if not 0.0 <= getattr(self.population, name) <= 1.0:
                raise ConfigError(f"population.{name} is not within [0, 1]")


class ConfigError(ValueError):
    """The configuration (file) is not usable."""


T = TypeVar("T")


def _override(instance: T, values: dict[str, Any], where: str) -> T:
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected a JSON object")
    known = {item.name: item for item in dataclasses.fields(instance)}  # type: ignore[arg-type]
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}{key}: unknown setting (known: {', '.join(known)})")
        current = getattr(instance, key)
        if dataclasses.is_dataclass(current):
            changes[key] = _override(current, value, f"{where}{key}.")
        else:
            changes[key] = _coerce(current, value, f"{where}{key}")
    return dataclasses.replace(instance, **changes)  # type: ignore[type-var]


def _coerce(current: Any, value: Any, where: str) -> Any:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected {type(current).__name__}, got {value!r}")
    if isinstance(current, int) and isinstance(value, int):
        return value
    if isinstance(current, float) and isinstance(value, int | float):
        return float(value)
    if isinstance(current, str) and isinstance(value, str):
        return value
    raise ConfigError(f"{where}: expected {type(current).__name__}, got {value!r}")


def config_from_dict(values: dict[str, Any]) -> SimulatorConfig:
    config = _override(SimulatorConfig(), values, "")
    config.validate()
    return config


def load_config(path: str | Path | None) -> SimulatorConfig:
    """The defaults, overridden by the JSON file at ``path`` if one is given."""
    if path is None:
        return SimulatorConfig()
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    return config_from_dict(values)


def config_as_dict(config: SimulatorConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
