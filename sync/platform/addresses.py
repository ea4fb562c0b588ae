"""Who is on the other end: the client's address, through the proxies we trust.

Throttles count failures per address, so the address must be one a client cannot
choose. The socket peer is that address, unless the peer is a reverse proxy listed in
``FIELDSYNC_TRUSTED_PROXIES``: then it is read from ``X-Forwarded-For``, right to left,
since each proxy *appends* the address it saw. The right-most entry no trusted proxy
wrote is the client; everything left of it was sent by the client and may be forged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def trusted_networks(setting: str) -> tuple[Network, ...]:
    """``FIELDSYNC_TRUSTED_PROXIES`` (``"10.0.0.5, 192.168.1.0/24, ::1"``) as networks;
    ``ValueError`` for an entry that is neither an address nor a network."""
    return tuple(
        ipaddress.ip_network(entry.strip(), strict=False)
        for entry in setting.split(",")
        if entry.strip()
    )


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]
) -> str | None:
    """The client's address, given the socket ``peer``, every ``X-Forwarded-For``
    header value in the order received, and the ``trusted`` proxies' networks.

    What comes back is an address in its canonical form (IPv4 inside IPv6 unwrapped),
    or the peer as the server gave it when the peer is no address (a test client, a
    Unix socket): never text a client wrote that is not an address.
    """
    hop = _parse(peer)
    if hop is None or not _within(hop, trusted):
        return str(hop) if hop is not None else peer
    entries = [entry for value in forwarded_for for entry in value.split(",") if entry.strip()]
    for entry in reversed(entries):
        address = _parse(entry)
        if address is None:
            # A trusted proxy writes addresses: this entry came from the client (or the
            # client is itself one of our proxies). The hop that handed it over is the
            # farthest address we know to be true.
            break
        hop = address
        if not _within(hop, trusted):
            break
    return str(hop)


def _parse(text: str | None) -> Address | None:
    if text is None:
        return None
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):  # an IPv6 address as URLs write it
        text = text[1:-1]
    # A zone (``fe80::1%eth0``) names an interface of the machine that wrote it; it is
    # the same client, and free text besides.
    text = text.partition("%")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # A dual-stack socket shows an IPv4 client as ::ffff:a.b.c.d; it is one client.
        return address.ipv4_mapped
    return address


def _within(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)
