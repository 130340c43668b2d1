"""Which address a request came from. ``X-Forwarded-For`` is written by whoever sends the
request, so it is believed only as far as trusted proxies (``CLICKSTREAM_TRUSTED_PROXIES``,
e.g. the CloudFront ranges in front of the API) appended to it: from the connection's own
address (API Gateway's ``requestContext.identity.sourceIp``) leftwards through the header,
past every trusted proxy, to the first address that is not one."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(raw: str) -> tuple[Network, ...]:
    """``"130.176.0.0/16, 2600:9000::/28, 10.1.2.3"`` as networks; a bad entry fails at
    start-up with its text."""
    networks = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"CLICKSTREAM_TRUSTED_PROXIES: {entry!r} is not an address or CIDR"
            ) from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(
    source_ip: str | None, forwarded_for: str | None, trusted: Sequence[Network]
) -> str | None:
    """The client's address: ``source_ip`` itself unless it is a trusted proxy; then the
    header's entries from the right while each is a trusted proxy too."""
    current = _address(source_ip or "")
    if current is None:
        return None
    hops = [hop for hop in (forwarded_for or "").split(",") if hop.strip()]
    while hops and any(current in network for network in trusted):
        previous = _address(hops.pop())
        if previous is None:  # garbage a proxy would not write: stop at what we know
            break
        current = previous
    return str(current)
