"""Who is asking, network-wise: the peer, or what trusted proxies say it was.

X-Forwarded-For is read only when the TCP peer is one of MEDCODE_TRUSTED_PROXIES (CIDRs);
anyone else could write any address there. Each proxy appends the address it received
the request from, so the list is read from the right: trusted proxies are skipped, and
the first address that is not one of them is the client. An address a client put in the
header itself sits further left and is never reached.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _address(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    raw = raw.strip().strip('"')
    if raw.startswith("["):  # [v6]:port
        raw = raw[1:].partition("]")[0]
    elif raw.count(":") == 1:  # v4:port
        raw = raw.partition(":")[0]
    try:
        return ipaddress.ip_address(raw)
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
             trusted: Sequence[Network]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == n.version and address in n for n in trusted)


def client_address(peer: str | None, forwarded_for: Sequence[str],
                   trusted: Sequence[Network]) -> str | None:
    """The client's address: the right-most X-Forwarded-For entry that is not a trusted
    proxy, when the peer is trusted; the peer otherwise. ``forwarded_for`` holds every
    X-Forwarded-For header value, in order."""
    peer_address = _address(peer) if peer else None
    if peer_address is None or not trusted or not _trusted(peer_address, trusted):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer  # a malformed entry: trust nothing left of it
        if not _trusted(address, trusted):
            return str(address)
    return str(_address(hops[0])) if hops else peer  # all trusted: the left-most
