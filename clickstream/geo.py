"""Where a visitor is, when the payload does not say: the CDN's viewer-location headers
(CloudFront's ``CloudFront-Viewer-Country``/``-City``, forwarded by API Gateway), else an
optional MaxMind-format database (GeoLite2/GeoIP2 City or Country) named in settings and
read with MaxMind's own reader. Nothing is downloaded at run time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

import maxminddb

from clickstream.schema import Location

COUNTRY_HEADERS = ("cloudfront-viewer-country", "x-viewer-country", "cf-ipcountry")
CITY_HEADERS = ("cloudfront-viewer-city", "x-viewer-city")
_UNKNOWN_COUNTRIES = {"", "XX", "T1"}  # unknown / Tor, as CDNs send them


def location_from_headers(headers: Mapping[str, str]) -> Location | None:
    lowered = {name.lower(): value for name, value in headers.items()}
    country = next((lowered[h].strip() for h in COUNTRY_HEADERS if h in lowered), "")
    if country.upper() in _UNKNOWN_COUNTRIES:
        return None
    city = next((unquote(lowered[h]).strip() for h in CITY_HEADERS if h in lowered), "")
    return Location(country=country.upper()[:64], city=city[:128] or None)


@lru_cache(maxsize=4)
def open_database(path: str) -> maxminddb.Reader:
    return maxminddb.open_database(path)


@lru_cache(maxsize=4096)
def _lookup(path: str, address: str) -> Location:
    try:
        record: Any = open_database(path).get(address)
    except ValueError:  # not an address
        return Location()
    if not isinstance(record, dict):
        return Location()
    country = (record.get("country") or record.get("registered_country") or {}).get("iso_code")
    city = ((record.get("city") or {}).get("names") or {}).get("en")
    return Location(country=country, city=city)


def locator(headers: Mapping[str, str], database: str | None) -> Callable[[str | None], Location]:
    """How one request's records are placed: the request's headers first, then the address
    in the database (a record's own ``ip`` before the connection's)."""
    from_headers = location_from_headers(headers)

    def locate(address: str | None) -> Location:
        if from_headers is not None:
            return from_headers
        if database and address:
            return _lookup(database, address.split(",", 1)[0].strip())
        return Location()

    return locate
