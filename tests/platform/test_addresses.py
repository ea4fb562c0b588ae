"""The client's address through trusted proxies (sync/addresses.py): pure, table-driven."""

from __future__ import annotations

import pytest

from sync.platform.addresses import client_address, trusted_networks

NGINX = "10.0.0.5"
BALANCER = "10.0.0.9"
PROXIES = trusted_networks(f"{NGINX}, {BALANCER}")

CASES = [
    # (test id, socket peer, X-Forwarded-For values, expected client)
    ("no proxy, no header: the peer", "203.0.113.7", [], "203.0.113.7"),
    ("an untrusted peer's header is ignored", "203.0.113.7", ["198.51.100.1"], "203.0.113.7"),
    ("a trusted peer without the header: the peer", NGINX, [], NGINX),
    ("the address nginx appended", NGINX, ["203.0.113.7"], "203.0.113.7"),
    (
        "a forged entry left of nginx's is not believed",
        NGINX,
        ["198.51.100.1, 203.0.113.7"],
        "203.0.113.7",
    ),
    (
        "through two trusted proxies: the right-most untrusted",
        NGINX,
        [f"198.51.100.1, 203.0.113.7, {BALANCER}"],
        "203.0.113.7",
    ),
    (
        "several header lines are one list, in order",
        NGINX,
        ["198.51.100.1", f"203.0.113.7, {BALANCER}"],
        "203.0.113.7",
    ),
    ("every entry trusted: the left-most", NGINX, [f"{BALANCER}, {NGINX}"], BALANCER),
    (
        "garbage a trusted proxy would never write: the hop that handed it over",
        NGINX,
        [f"not-an-address, {BALANCER}"],
        BALANCER,
    ),
    ("garbage right at the trusted peer: the peer", NGINX, ["x" * 5000], NGINX),
    ("an empty header: the peer", NGINX, [""], NGINX),
    ("spaces and empty entries do not matter", NGINX, [" , 203.0.113.7 ,  "], "203.0.113.7"),
    ("IPv4 inside IPv6 is the IPv4 client", "::ffff:203.0.113.7", [], "203.0.113.7"),
    ("an IPv6 peer, canonical", "2001:DB8:0:0::1", [], "2001:db8::1"),
    ("an IPv6 entry in brackets", NGINX, ["[2001:db8::7]"], "2001:db8::7"),
    ("an IPv6 zone is dropped", "fe80::1%eth0", [], "fe80::1"),
    ("a peer that is no address is kept as the server named it", "testclient", [], "testclient"),
    ("no peer at all", None, ["203.0.113.7"], None),
]


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_the_client_address_is_the_right_most_untrusted_hop(
    peer: str | None, forwarded_for: list[str], expected: str | None
) -> None:
    assert client_address(peer, forwarded_for, PROXIES) == expected


def test_nothing_is_trusted_by_default_so_the_header_is_ignored() -> None:
    assert trusted_networks("") == ()
    assert client_address("127.0.0.1", ["203.0.113.7"], trusted_networks("")) == "127.0.0.1"


def test_a_network_trusts_every_address_in_it() -> None:
    trusted = trusted_networks("192.168.1.0/24, fd00::/8")
    assert client_address("192.168.1.77", ["203.0.113.7"], trusted) == "203.0.113.7"
    assert client_address("fd00::42", ["203.0.113.7"], trusted) == "203.0.113.7"
    assert client_address("192.168.2.1", ["203.0.113.7"], trusted) == "192.168.2.1"


def test_a_network_written_with_host_bits_is_still_that_network() -> None:
    assert trusted_networks("10.0.0.5/24") == trusted_networks("10.0.0.0/24")


@pytest.mark.parametrize("setting", ["nginx", "10.0.0.300", "10.0.0.0/33", "10.0.0.5;10.0.0.6"])
def test_a_trusted_proxy_that_is_no_address_or_network_is_refused(setting: str) -> None:
    with pytest.raises(ValueError, match="does not appear to be"):
        trusted_networks(setting)
