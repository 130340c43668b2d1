"""Placing visitors: the payload first, the CDN's viewer headers next, a MaxMind-format
database last (a real .mmdb file, written here with mmdb-writer)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from clickstream.enrich import to_event
from clickstream.geo import location_from_headers, locator
from clickstream.schema import IncomingEvent, Location

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def city_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-City", ipv4_compatible=True)
    writer.insert_network(
        IPSet(["203.0.113.0/24"]),
        {"country": {"iso_code": "JP"}, "city": {"names": {"en": "Osaka", "ja": "大阪市"}}},
    )
    writer.insert_network(IPSet(["2001:db8::/32"]), {"registered_country": {"iso_code": "NL"}})
    path = Path(tmp_path_factory.mktemp("geo")) / "GeoLite2-City.mmdb"
    writer.to_db_file(str(path))
    return str(path)


def place(record: dict, headers: dict[str, str], database: str | None, ip: str | None) -> Location:
    event = to_event(
        IncomingEvent.model_validate({"event_type": "page_view", **record}),
        received_at=NOW,
        source_ip=ip,
        locate=locator(headers, database),
    )
    return event.location


def test_the_payload_wins_then_the_headers_then_the_database(city_database):
    headers = {"CloudFront-Viewer-Country": "br", "CloudFront-Viewer-City": "S%C3%A3o%20Paulo"}
    assert place({"country": "FR"}, headers, city_database, "203.0.113.9") == Location(country="FR")
    assert place({}, headers, city_database, "203.0.113.9") == Location(
        country="BR", city="São Paulo"
    )
    assert place({}, {}, city_database, "203.0.113.9") == Location(country="JP", city="Osaka")
    assert place({}, {}, city_database, "2001:db8::1") == Location(country="NL")
    assert place({"ip": "203.0.113.7"}, {}, city_database, "198.51.100.1").country == "JP"


@pytest.mark.parametrize("ip", [None, "198.51.100.1", "not-an-ip", "203.0.113.9, 10.0.0.1"])
def test_unknown_addresses_and_no_database_place_nothing_or_the_first_hop(city_database, ip):
    expected = "JP" if ip and ip.startswith("203.") else None
    assert place({}, {}, city_database, ip).country == expected
    assert place({}, {}, None, ip) == Location()


@pytest.mark.parametrize("country", ["XX", "T1", ""])
def test_unknown_country_headers_are_no_place(country):
    assert location_from_headers({"cloudfront-viewer-country": country}) is None
