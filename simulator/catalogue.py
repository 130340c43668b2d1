"""The simulated shop and its visitors' world: a product catalogue and content pages with
Zipf-like popularity, referrers, device profiles with real user-agent strings, and places.

Everything here is fixed data or derived from the configuration alone (never from the run's
seed): a shop's catalogue does not change from one run to the next, so ``snapshot`` can know
the pages without knowing the seed.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

from simulator.config import Catalogue as CatalogueConfig

T = TypeVar("T")


class Weighted(Generic[T]):
    """Draw items with fixed weights (precomputed cumulative weights, O(log n) per draw)."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        if not items or len(items) != len(weights):
            raise ValueError("need one weight per item and at least one item")
        self.items = list(items)
        self._cumulative = list(itertools.accumulate(float(w) for w in weights))
        self.total = self._cumulative[-1]
        if self.total <= 0:
            raise ValueError("weights must not all be zero")

    def draw(self, rng: random.Random) -> T:
        index = bisect.bisect_right(self._cumulative, rng.random() * self.total)
        return self.items[min(index, len(self.items) - 1)]

    def probability(self, item: T) -> float:
        weight = 0.0
        previous = 0.0
        for candidate, cumulative in zip(self.items, self._cumulative, strict=True):
            if candidate == item:
                weight += cumulative - previous
            previous = cumulative
        return weight / self.total


def zipf_weights(n: int, exponent: float) -> list[float]:
    """Weight of rank r (1-based) is 1 / r**exponent."""
    return [1.0 / (rank**exponent) for rank in range(1, n + 1)]


def zipf(items: Sequence[T], exponent: float) -> Weighted[T]:
    return Weighted(items, zipf_weights(len(items), exponent))


# --- products ------------------------------------------------------------------------------

CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...], float]] = {
    # category: (adjectives, nouns, price multiplier)
    "electronics": (
        ("Wireless", "Smart", "Portable", "Noise-Cancelling", "4K", "Compact"),
        ("Headphones", "Speaker", "Monitor", "Keyboard", "Webcam", "Charger", "Earbuds"),
        2.5,
    ),
    "home": (
        ("Ceramic", "Bamboo", "Linen", "Cast-Iron", "Minimal", "Vintage"),
        ("Mug Set", "Lamp", "Throw Blanket", "Skillet", "Planter", "Cutting Board"),
        1.0,
    ),
    "apparel": (
        ("Organic", "Merino", "Classic", "Slim-Fit", "Waterproof", "Everyday"),
        ("T-Shirt", "Hoodie", "Jacket", "Sneakers", "Socks", "Jeans"),
        1.2,
    ),
    "sports": (
        ("Pro", "Lightweight", "Adjustable", "Trail", "Training", "Ultra"),
        ("Yoga Mat", "Dumbbells", "Running Vest", "Water Bottle", "Backpack", "Bike Light"),
        1.3,
    ),
    "books": (
        ("Illustrated", "Pocket", "Complete", "Practical", "Annotated", "Modern"),
        ("Cookbook", "Field Guide", "Novel", "Atlas", "Handbook", "Anthology"),
        0.5,
    ),
    "beauty": (
        ("Hydrating", "Vegan", "Mineral", "Daily", "Gentle", "Refreshing"),
        ("Face Serum", "Sunscreen", "Shampoo", "Lip Balm", "Hand Cream", "Cleanser"),
        0.7,
    ),
}
CATEGORY_SHARE = {
    "electronics": 0.28,
    "apparel": 0.22,
    "home": 0.18,
    "sports": 0.14,
    "beauty": 0.10,
    "books": 0.08,
}
SEARCH_TERMS = {
    "electronics": ("headphones", "bluetooth speaker", "usb c charger", "4k monitor", "earbuds"),
    "home": ("coffee mug", "desk lamp", "cast iron pan", "blanket", "plant pot"),
    "apparel": ("hoodie", "running shoes", "rain jacket", "merino socks", "jeans"),
    "sports": ("yoga mat", "dumbbells", "hydration vest", "water bottle", "bike light"),
    "books": ("cookbook", "travel guide", "sci-fi novel", "atlas", "gift book"),
    "beauty": ("sunscreen spf 50", "vegan shampoo", "face serum", "lip balm", "hand cream"),
}


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    category: str
    price: float

    @property
    def page(self) -> str:
        return f"/products/{self.product_id}"


def _price(rng: random.Random, median: float, sigma: float, multiplier: float) -> float:
    raw = median * multiplier * math.exp(rng.gauss(0.0, sigma))
    return max(2.99, round(math.floor(raw) + 0.99, 2))


@dataclass(frozen=True)
class Shop:
    """The catalogue and the site's pages, with their popularity."""

    site: str
    products: tuple[Product, ...]
    by_category: dict[str, Weighted[Product]]
    product_popularity: Weighted[Product]
    categories: Weighted[str]
    content_pages: Weighted[str]
    landing_pages: Weighted[str]

    def product(self, rng: random.Random, category: str | None = None) -> Product:
        if category is None:
            return self.product_popularity.draw(rng)
        return self.by_category[category].draw(rng)

    def url(self, page: str) -> str:
        return self.site + page

    def all_pages(self) -> list[str]:
        """Every page a page_view can name (for baselines)."""
        pages = set(self.content_pages.items) | set(self.landing_pages.items)
        pages |= {product.page for product in self.products}
        pages |= {"/search", "/cart", "/checkout"}
        return sorted(pages)


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
    "/blog/how-to-choose-headphones",
    "/help/shipping",
    "/help/returns",
    "/about",
    "/account",
    "/stores",
)
LANDING_PAGES = {
    "/home": 0.55,
    "/deals": 0.12,
    "/category/electronics": 0.07,
    "/category/apparel": 0.06,
    "/new-arrivals": 0.05,
    "/blog/gift-guide": 0.05,
    "/blog/how-to-choose-headphones": 0.04,
    "/category/home": 0.03,
    "/category/sports": 0.03,
}


@lru_cache(maxsize=8)
def build_shop(config: CatalogueConfig) -> Shop:
    """The shop for a catalogue configuration (deterministic: fixed internal seed)."""
    rng = random.Random(f"shop:{config.products}:{config.median_price}:{config.price_sigma}")
    categories = list(CATEGORY_SHARE)
    category_draw = Weighted(categories, [CATEGORY_SHARE[name] for name in categories])
    products: list[Product] = []
    used_names: set[str] = set()
    for index in range(config.products):
        category = category_draw.draw(rng)
        adjectives, nouns, multiplier = CATEGORIES[category]
        name = f"{rng.choice(adjectives)} {rng.choice(nouns)}"
        if name in used_names:
            name = f"{name} {rng.choice(('II', 'Plus', 'Mini', 'XL', 'Lite', 'Max'))}"
        used_names.add(name)
        products.append(
            Product(
                product_id=f"sku-{1001 + index}",
                name=name,
                category=category,
                price=_price(rng, config.median_price, config.price_sigma, multiplier),
            )
        )
    # Popularity rank is independent of the id order, like a real catalogue.
    ranked = products[:]
    rng.shuffle(ranked)
    by_category = {}
    for category in categories:
        in_category = [product for product in ranked if product.category == category]
        if in_category:
            by_category[category] = zipf(in_category, config.popularity_exponent)
    present = [name for name in categories if name in by_category]
    return Shop(
        site=config.site.rstrip("/"),
        products=tuple(products),
        by_category=by_category,
        product_popularity=zipf(ranked, config.popularity_exponent),
        categories=Weighted(present, [CATEGORY_SHARE[name] for name in present]),
        content_pages=zipf(CONTENT_PAGES, config.popularity_exponent),
        landing_pages=Weighted(list(LANDING_PAGES), list(LANDING_PAGES.values())),
    )


# --- referrers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where a visit comes from: the referrer URL (None: typed/bookmarked), campaign tags on
    the landing URL, and the channel a site owner files it under (the ledger's ground truth,
    written here by hand, not computed by the product)."""

    name: str
    referrer: str | None
    utm: tuple[tuple[str, str], ...] = ()
    channel: str = "Referral"


SOURCES = Weighted(
    [
        Source("direct", None, channel="Direct"),
        Source("google", "https://www.google.com/", channel="Organic Search"),
        Source("bing", "https://www.bing.com/", channel="Organic Search"),
        Source("duckduckgo", "https://duckduckgo.com/", channel="Organic Search"),
        Source("facebook", "https://www.facebook.com/", channel="Organic Social"),
        Source("instagram", "https://l.instagram.com/", channel="Organic Social"),
        Source("x", "https://t.co/", channel="Organic Social"),
        Source("reddit", "https://www.reddit.com/", channel="Organic Social"),
        Source(
            "newsletter",
            "https://mail.google.com/",
            (("utm_source", "newsletter"), ("utm_medium", "email"), ("utm_campaign", "weekly")),
            channel="Email",
        ),
        Source(
            "google_ads",
            "https://www.googleadservices.com/",
            (("utm_source", "google"), ("utm_medium", "cpc"), ("utm_campaign", "shopping")),
            channel="Paid Search",
        ),
    ],
    [0.28, 0.33, 0.05, 0.02, 0.07, 0.05, 0.03, 0.03, 0.08, 0.06],
)
# Quick buyers arrive on a product page from a link that points at it.
DIRECT_PRODUCT_SOURCES = Weighted(
    [s for s in SOURCES.items if s.name in {"direct", "newsletter", "google_ads", "instagram"}],
    [0.30, 0.30, 0.30, 0.10],
)


# Crawlers and headless browsers: a share of sessions, which analytics must leave out.
CRAWLER_AGENTS = Weighted(
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/131.0.0.0 Safari/537.36",
    ],
    [0.45, 0.2, 0.2, 0.15],
)


# --- devices -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceProfile:
    """A real user-agent string and what a UA parser derives from it (kept in step with
    ``clickstream.enrich.device_from_user_agent``; a unit test checks every profile)."""

    device_type: str
    platform: str
    browser: str
    user_agent: str


_DEVICE_PROFILES: list[tuple[float, DeviceProfile]] = [
    (
        0.20,
        DeviceProfile(
            "desktop",
            "Windows",
            "Chrome",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
        ),
    ),
    (
        0.06,
        DeviceProfile(
            "desktop",
            "Windows",
            "Edge",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        ),
    ),
    (
        0.03,
        DeviceProfile(
            "desktop",
            "Windows",
            "Firefox",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ),
    ),
    (
        0.06,
        DeviceProfile(
            "desktop",
            "Mac OS X",
            "Safari",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        ),
    ),
    (
        0.06,
        DeviceProfile(
            "desktop",
            "Mac OS X",
            "Chrome",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        ),
    ),
    (
        0.01,
        DeviceProfile(
            "desktop",
            "Mac OS X",
            "Firefox",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0",
        ),
    ),
    (
        0.02,
        DeviceProfile(
            "desktop",
            "Linux",
            "Chrome",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
        ),
    ),
    (
        0.01,
        DeviceProfile(
            "desktop",
            "Ubuntu",
            "Firefox",
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        ),
    ),
    (
        0.01,
        DeviceProfile(
            "desktop",
            "Chrome OS",
            "Chrome",
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
        ),
    ),
    (
        0.22,
        DeviceProfile(
            "mobile",
            "iOS",
            "Mobile Safari",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        ),
    ),
    (
        0.03,
        DeviceProfile(
            "mobile",
            "iOS",
            "Chrome Mobile iOS",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        ),
    ),
    (
        0.14,
        DeviceProfile(
            "mobile",
            "Android",
            "Chrome Mobile",
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Mobile Safari/537.36",
        ),
    ),
    (
        0.05,
        DeviceProfile(
            "mobile",
            "Android",
            "Samsung Internet",
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        ),
    ),
    (
        0.01,
        DeviceProfile(
            "mobile",
            "Android",
            "Firefox Mobile",
            "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
        ),
    ),
    (
        0.07,
        DeviceProfile(
            "tablet",
            "iOS",
            "Mobile Safari",
            "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        ),
    ),
    (
        0.02,
        DeviceProfile(
            "tablet",
            "Android",
            "Amazon Silk",
            "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Silk/131.3.1 like Chrome/131.0.6778.135 Safari/537.36",
        ),
    ),
]
DEVICES = Weighted([profile for _, profile in _DEVICE_PROFILES], [w for w, _ in _DEVICE_PROFILES])


# --- places --------------------------------------------------------------------------------

_PLACES: list[tuple[str, float, tuple[tuple[str, float], ...]]] = [
    (
        "US",
        0.40,
        (
            ("New York", 0.22),
            ("Los Angeles", 0.16),
            ("Chicago", 0.11),
            ("Houston", 0.09),
            ("Seattle", 0.08),
            ("San Francisco", 0.09),
            ("Austin", 0.07),
            ("Miami", 0.07),
            ("Boston", 0.06),
            ("Denver", 0.05),
        ),
    ),
    (
        "GB",
        0.12,
        (
            ("London", 0.50),
            ("Manchester", 0.18),
            ("Birmingham", 0.14),
            ("Edinburgh", 0.10),
            ("Bristol", 0.08),
        ),
    ),
    ("DE", 0.09, (("Berlin", 0.35), ("Munich", 0.25), ("Hamburg", 0.22), ("Cologne", 0.18))),
    ("CA", 0.07, (("Toronto", 0.45), ("Vancouver", 0.30), ("Montreal", 0.25))),
    ("FR", 0.06, (("Paris", 0.60), ("Lyon", 0.22), ("Marseille", 0.18))),
    ("IN", 0.08, (("Bengaluru", 0.35), ("Mumbai", 0.35), ("Delhi", 0.30))),
    ("BR", 0.05, (("São Paulo", 0.60), ("Rio de Janeiro", 0.40))),
    ("AU", 0.05, (("Sydney", 0.55), ("Melbourne", 0.45))),
    ("JP", 0.04, (("Tokyo", 0.70), ("Osaka", 0.30))),
    ("ES", 0.04, (("Madrid", 0.55), ("Barcelona", 0.45))),
]
COUNTRIES = Weighted([country for country, _, _ in _PLACES], [share for _, share, _ in _PLACES])
CITIES = {
    country: Weighted([city for city, _ in cities], [share for _, share in cities])
    for country, _, cities in _PLACES
}


def draw_place(rng: random.Random) -> tuple[str, str]:
    country = COUNTRIES.draw(rng)
    return country, CITIES[country].draw(rng)
