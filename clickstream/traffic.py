"""Where visits come from and who makes them, as pure functions of an event: referrer
domain, UTM parameters, channel, the visitor key unique-visitor sketches count, and bots.

The channel rules follow GA4's default channel grouping in spirit, reduced to the groups site
owners read first. The referrer lists are short tables of the big search, social and email
sites, written here because the maintained parser (Snowplow's referer-parser) has no kept
Python release; anything else with an external referrer is a referral.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

from crawlerdetect import CrawlerDetect

DIRECT = "Direct"
ORGANIC_SEARCH = "Organic Search"
PAID_SEARCH = "Paid Search"
ORGANIC_SOCIAL = "Organic Social"
PAID_SOCIAL = "Paid Social"
PAID_OTHER = "Paid Other"
EMAIL = "Email"
REFERRAL = "Referral"
CHANNELS = (
    DIRECT,
    ORGANIC_SEARCH,
    PAID_SEARCH,
    ORGANIC_SOCIAL,
    PAID_SOCIAL,
    PAID_OTHER,
    EMAIL,
    REFERRAL,
)

SEARCH_CLICK_IDS = ("gclid", "gbraid", "wbraid", "dclid", "msclkid", "yclid")
SOCIAL_CLICK_IDS = ("fbclid", "ttclid", "twclid", "li_fat_id", "rdt_cid", "sccid", "epik")
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")
_SEARCH = {
    "google", "bing", "duckduckgo", "yahoo", "baidu", "yandex", "ecosia", "naver", "seznam",
    "qwant", "startpage", "brave", "sogou", "ask", "aol", "search",
}  # fmt: skip
_SOCIAL = {
    "facebook", "fb", "instagram", "t", "twitter", "x", "linkedin", "lnkd", "reddit",
    "youtube", "youtu", "pinterest", "tiktok", "snapchat", "threads", "bsky", "mastodon",
    "vk", "weibo", "quora", "tumblr", "discord", "whatsapp", "telegram", "news.ycombinator",
}  # fmt: skip
_EMAIL_HOSTS = {"mail.google.com", "outlook.live.com", "outlook.office.com", "mail.yahoo.com"}
_EMAIL_WORDS = {"email", "e-mail", "e_mail", "newsletter", "mail"}
_PAID_MEDIUMS = {"cpc", "ppc", "paid", "paidsearch", "paid_search", "cpm", "cpv", "cpa", "display"}
_SOCIAL_MEDIUMS = {"social", "social-network", "social-media", "sm", "social network"}
_PAID_SOCIAL_MEDIUMS = {"paid_social", "paidsocial", "paid-social", "social_paid"}
_HOSTNAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?|\[?[0-9a-f:.]+\]?")
_MAX_VALUE = 200  # a source or campaign longer than this is cut: it is a label, not data


@lru_cache(maxsize=4096)
def host_of(url: str | None) -> str | None:
    """``https://www.Example.com:8443/x`` -> ``example.com``; None for what is not a URL."""
    if not url:
        return None
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname
    except ValueError:
        return None
    if not host or not _HOSTNAME.fullmatch(host):
        return None
    return host.removeprefix("www.")[:_MAX_VALUE]


def referrer_domain(referrer: str | None, page_url: str | None) -> str | None:
    """The external site a visit came from; None when there is none or it is the site
    itself (navigation inside the site is not a source)."""
    domain = host_of(referrer)
    if domain is None or domain == host_of(page_url):
        return None
    return domain


@lru_cache(maxsize=4096)
def query_of(page_url: str | None) -> dict[str, str]:
    """The page URL's query parameters, first value of each, names lower-cased."""
    if not page_url or "?" not in page_url:
        return {}
    try:
        query = urlsplit(page_url).query
    except ValueError:
        return {}
    return {name.lower(): values[0][:_MAX_VALUE] for name, values in parse_qs(query).items()}


def _site_name(domain: str) -> str:
    """``l.facebook.com`` -> ``facebook``, ``google.co.uk`` -> ``google``, ``t.co`` -> ``t``."""
    labels = domain.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in {"co", "com", "ac", "org"}:
        labels = labels[:-2]
    elif len(labels) >= 2:
        labels = labels[:-1]
    return labels[-1] if labels else domain


def _kind_of_site(name: str, domain: str) -> str | None:
    if domain in _EMAIL_HOSTS or name in {"mail", "outlook", "gmail"}:
        return EMAIL
    if domain == "news.ycombinator.com" or name in _SOCIAL:
        return ORGANIC_SOCIAL
    if name in _SEARCH:
        return ORGANIC_SEARCH
    return None


def channel(referrer: str | None, page_url: str | None) -> str:
    """The visit's channel from its landing URL (UTM tags, click ids) and referrer."""
    query = query_of(page_url)
    medium = query.get("utm_medium", "").lower()
    source = query.get("utm_source", "").lower()
    domain = referrer_domain(referrer, page_url)
    source_kind = _kind_of_site(_site_name(host_of(source) or source), source) if source else None
    referrer_kind = _kind_of_site(_site_name(domain), domain) if domain else None
    kind = source_kind or referrer_kind
    if any(name in query for name in SEARCH_CLICK_IDS):
        return PAID_SEARCH
    if any(name in query for name in SOCIAL_CLICK_IDS) or medium in _PAID_SOCIAL_MEDIUMS:
        return PAID_SOCIAL
    if medium in _PAID_MEDIUMS:
        return {ORGANIC_SEARCH: PAID_SEARCH, ORGANIC_SOCIAL: PAID_SOCIAL}.get(
            kind or "", PAID_OTHER
        )
    if medium in _EMAIL_WORDS or source in _EMAIL_WORDS:
        return EMAIL
    if medium in _SOCIAL_MEDIUMS:
        return ORGANIC_SOCIAL
    if medium == "organic":
        return ORGANIC_SEARCH
    if kind:
        return kind
    if domain or source:
        return REFERRAL
    return DIRECT


def source(referrer: str | None, page_url: str | None) -> str:
    """What a site owner calls the source: ``utm_source`` if tagged, else the referring
    domain, else Direct."""
    tagged = query_of(page_url).get("utm_source")
    return tagged or referrer_domain(referrer, page_url) or DIRECT


def utm(page_url: str | None) -> dict[str, str]:
    """``utm_source``, ``utm_medium``, ``utm_campaign`` of the landing URL, where tagged."""
    query = query_of(page_url)
    return {name: query[name] for name in UTM_FIELDS if query.get(name)}


def daily_salt(secret: str, day: str) -> bytes:
    """The salt of one UTC day: yesterday's visitor hashes cannot be joined to today's."""
    return hmac.new(secret.encode(), day.encode(), hashlib.sha256).digest()


def visitor_key(
    *,
    user_id: str | None,
    anonymous_id: str | None,
    ip_truncated: str | None,
    user_agent: str | None,
    session_key: str,
    salt: bytes,
) -> str:
    """Who a unique-visitor count counts: the user id, else the anonymous (device) id, else
    a daily salted hash of the truncated address and user agent (as Plausible does), else the
    session. Only a 64-bit hash of this ever reaches an aggregate."""
    if user_id:
        return f"u:{user_id}"
    if anonymous_id:
        return f"a:{anonymous_id}"
    if ip_truncated or user_agent:
        material = f"{ip_truncated or ''}|{user_agent or ''}".encode()
        return "h:" + hmac.new(salt, material, hashlib.sha256).hexdigest()
    return f"s:{session_key}"


@lru_cache(maxsize=1)
def _crawler_detect() -> CrawlerDetect:
    return CrawlerDetect()  # compiles its pattern list (~70 ms): once, on first use


@lru_cache(maxsize=8192)
def is_bot_user_agent(user_agent: str | None) -> bool:
    """Crawlers, headless browsers and HTTP tools, from CrawlerDetect's maintained list."""
    return bool(user_agent) and bool(_crawler_detect().isCrawler(user_agent))
