"""X-Forwarded-For is read only behind trusted proxies, from the right."""

from __future__ import annotations

import pytest

from services.shared.client_address import client_address, trusted_networks

PROXIES = trusted_networks(["10.0.0.0/8", "2001:db8::/32"])


@pytest.mark.parametrize(("peer", "headers", "expected"), [
    # No proxy trusted: the header is ignored, whoever wrote it.
    ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
    # Behind one trusted proxy: the address it saw.
    ("10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
    # A client's own forged entry sits left of what the proxy appended: never read.
    ("10.0.0.2", ["1.2.3.4, 198.51.100.7"], "198.51.100.7"),
    # Two trusted hops, and the header split over two lines.
    ("10.0.0.2", ["6.6.6.6, 198.51.100.7", "10.1.1.1"], "198.51.100.7"),
    # IPv6 and ports.
    ("2001:db8::5", ["[2001:db9::1]:443"], "2001:db9::1"),
    ("10.0.0.2", ["198.51.100.7:5555"], "198.51.100.7"),
    # Garbage right of the client: trust nothing further.
    ("10.0.0.2", ["198.51.100.7, not-an-ip"], "10.0.0.2"),
    # A trusted peer with no header.
    ("10.0.0.2", [], "10.0.0.2"),
    # Every hop trusted (an internal caller): the left-most.
    ("10.0.0.2", ["10.9.9.9, 10.0.0.3"], "10.9.9.9"),
])
def test_right_most_untrusted(peer: str, headers: list[str], expected: str) -> None:
    assert client_address(peer, headers, PROXIES) == expected


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_address("10.0.0.2", ["198.51.100.7"], ()) == "10.0.0.2"
    assert client_address(None, ["198.51.100.7"], PROXIES) is None
