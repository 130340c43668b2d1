"""The client's address: the connection's, and X-Forwarded-For only as far as trusted
proxies wrote it. Whatever a client puts in the header itself changes nothing."""

from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clickstream.addresses import client_address, parse_networks

CLOUDFRONT = parse_networks("130.176.0.0/16, 2600:9000::/28")


@pytest.mark.parametrize(
    ("source", "forwarded", "trusted", "expected"),
    [
        # No trusted proxies: the header is ignored, whatever it says.
        ("198.51.100.7", "203.0.113.9", (), "198.51.100.7"),
        # Through CloudFront: the entry it appended is the viewer.
        ("130.176.1.2", "198.51.100.7", CLOUDFRONT, "198.51.100.7"),
        # A client that spoofs an entry: CloudFront appends the real address after it.
        ("130.176.1.2", "1.2.3.4, 198.51.100.7", CLOUDFRONT, "198.51.100.7"),
        # Two trusted hops, then the viewer.
        ("130.176.1.2", "198.51.100.7, 130.176.9.9", CLOUDFRONT, "198.51.100.7"),
        # A direct client that is not a proxy: its header means nothing.
        ("198.51.100.7", "130.176.1.2", CLOUDFRONT, "198.51.100.7"),
        # Garbage where a proxy's entry should be: stop at the last address known.
        ("130.176.1.2", "not-an-ip", CLOUDFRONT, "130.176.1.2"),
        ("2600:9000::1", "2001:db8::5", CLOUDFRONT, "2001:db8::5"),
        (None, "198.51.100.7", CLOUDFRONT, None),
    ],
)
def test_the_client_is_the_first_address_no_trusted_proxy_vouches_for(
    source, forwarded, trusted, expected
):
    assert client_address(source, forwarded, trusted) == expected


addresses = st.ip_addresses(v=4).map(str)


@given(spoofed=st.lists(addresses | st.text(max_size=20), max_size=5), viewer=addresses)
def test_nothing_a_client_writes_before_the_proxy_changes_the_answer(spoofed, viewer):
    if any(ipaddress.ip_address(viewer) in network for network in CLOUDFRONT):
        return
    header = ", ".join([*spoofed, viewer])
    assert client_address("130.176.1.2", header, CLOUDFRONT) == viewer


def test_a_bad_entry_in_the_setting_fails_naming_it():
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33'")):
        parse_networks("10.0.0.0/8, 10.0.0.0/33")
