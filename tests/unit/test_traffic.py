"""Where visits come from: channels, sources, UTM tags, visitor keys, bots."""

from __future__ import annotations

import pytest

from clickstream.traffic import (
    DIRECT,
    EMAIL,
    ORGANIC_SEARCH,
    ORGANIC_SOCIAL,
    PAID_OTHER,
    PAID_SEARCH,
    PAID_SOCIAL,
    REFERRAL,
    channel,
    daily_salt,
    is_bot_user_agent,
    referrer_domain,
    source,
    utm,
    visitor_key,
)
from tests.factories import user_agents

SITE = "https://shop.example/products/1"


@pytest.mark.parametrize(
    ("referrer", "page_url", "expected"),
    [
        (None, SITE, DIRECT),
        ("https://shop.example/cart", SITE, DIRECT),  # navigation inside the site
        ("https://www.google.com/search?q=shoes", SITE, ORGANIC_SEARCH),
        ("https://www.google.co.uk/", SITE, ORGANIC_SEARCH),
        ("https://duckduckgo.com/", SITE, ORGANIC_SEARCH),
        ("https://www.bing.com/", f"{SITE}?msclkid=abc", PAID_SEARCH),
        (None, f"{SITE}?gclid=abc", PAID_SEARCH),
        (None, f"{SITE}?utm_source=google&utm_medium=cpc", PAID_SEARCH),
        (None, f"{SITE}?fbclid=abc", PAID_SOCIAL),
        (None, f"{SITE}?utm_source=facebook&utm_medium=paid", PAID_SOCIAL),
        (None, f"{SITE}?utm_source=partner&utm_medium=cpc", PAID_OTHER),
        ("https://l.facebook.com/l.php", SITE, ORGANIC_SOCIAL),
        ("https://t.co/xyz", SITE, ORGANIC_SOCIAL),
        ("https://news.ycombinator.com/item?id=1", SITE, ORGANIC_SOCIAL),
        (None, f"{SITE}?utm_source=newsletter&utm_medium=email", EMAIL),
        ("https://mail.google.com/", SITE, EMAIL),
        ("https://blog.example.org/review", SITE, REFERRAL),
        (None, f"{SITE}?utm_source=podcast", REFERRAL),
        ("not a url at all", SITE, DIRECT),
    ],
)
def test_channels(referrer, page_url, expected):
    assert channel(referrer, page_url) == expected


def test_source_is_the_utm_source_else_the_referring_domain_else_direct():
    assert source("https://www.google.com/", f"{SITE}?utm_source=Spring+Mail") == "Spring Mail"
    assert source("https://www.google.com/", SITE) == "google.com"
    assert source("https://shop.example/", SITE) == DIRECT
    assert referrer_domain("https://WWW.Example.COM:8443/x", SITE) == "example.com"
    assert utm(f"{SITE}?UTM_Campaign=bf&utm_medium=email&x=1") == {
        "utm_campaign": "bf",
        "utm_medium": "email",
    }
    assert len(source(None, f"{SITE}?utm_source={'x' * 5000}")) == 200


def test_a_visitor_is_the_user_else_the_device_else_a_daily_salted_hash():
    salt = daily_salt("secret", "2026-11-24")
    common = {"ip_truncated": "203.0.113.0", "user_agent": "UA", "session_key": "s1", "salt": salt}
    assert visitor_key(user_id="u1", anonymous_id="a1", **common) == "u:u1"
    assert visitor_key(user_id=None, anonymous_id="a1", **common) == "a:a1"
    hashed = visitor_key(user_id=None, anonymous_id=None, **common)
    assert hashed.startswith("h:") and "203.0.113" not in hashed
    tomorrow = {**common, "salt": daily_salt("secret", "2026-11-25")}
    assert visitor_key(user_id=None, anonymous_id=None, **tomorrow) != hashed
    nothing = {**common, "ip_truncated": None, "user_agent": None}
    assert visitor_key(user_id=None, anonymous_id=None, **nothing) == "s:s1"


@pytest.mark.parametrize(
    "user_agent",
    [
        user_agents()["googlebot"],
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "curl/8.5.0",
        "python-requests/2.32.3",
    ],
)
def test_crawlers_and_headless_browsers_are_bots(user_agent):
    assert is_bot_user_agent(user_agent)


@pytest.mark.parametrize(
    "name", ["iphone_safari", "windows_chrome", "ipad_safari", "android_chrome"]
)
def test_browsers_are_not_bots(name):
    assert not is_bot_user_agent(user_agents()[name])
    assert not is_bot_user_agent(None)
