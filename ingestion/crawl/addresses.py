"""The crawler's SSRF guard: which addresses it may connect to, checked after name resolution.

An admin-triggered crawler is an SSRF vector: a link, a redirect or a DNS answer could point it at
the machine itself, the private network or a cloud metadata service. Every address a host name
resolves to is checked; the fetcher connects to those checked addresses only, so a second DNS
answer (rebinding) cannot swap them. The admin may allow hosts and networks by name or CIDR.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from core.errors import InvalidInputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Resolves a host name (and port) to address strings; tests pass one that needs no DNS.
Lookup = Callable[[str, int], Awaitable[Sequence[str]]]

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (a global address by the IANA tables)
        "168.63.129.16",  # Azure WireServer (a global address)
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


def address_refusal(ip: IPAddress) -> str | None:
    """What kind of address the crawler refuses ``ip`` as ("loopback", ...), or None when public."""
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return address_refusal(embedded)
        if ip.is_site_local:
            return "site-local"
        if ip in _UNIQUE_LOCAL:
            return "unique-local"
    for kind, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("non-public", not ip.is_global),
    ):
        if flag:
            return kind
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), which is where it leads."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True, slots=True)
class AllowList:
    """Hosts and networks the admin lets the crawler reach although not public."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Sequence[str]) -> AllowList:
        """Entries are host names, addresses or CIDR networks."""
        hosts, networks = set(), []
        for entry in entries:
            entry = entry.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                if "/" in entry or ":" in entry:
                    raise InvalidInputError(
                        f"allowed host {entry!r} is neither a host name nor a network"
                    ) from None
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, ip: IPAddress) -> bool:
        """Whether ``host`` may be reached at ``ip``.

        A metadata address needs itself listed: a broad network or a host name that happens to
        resolve there does not open it.
        """
        if ip in METADATA_ADDRESSES:
            return any(net.num_addresses == 1 and ip in net for net in self.networks)
        return host in self.hosts or any(ip in net for net in self.networks)


class AddressGuard:
    """Resolves host names and refuses those that lead anywhere but the public internet."""

    def __init__(self, allow: AllowList, lookup: Lookup | None = None) -> None:
        self._allow = allow
        self._lookup = lookup or _system_lookup

    def check(self, host: str, ip: IPAddress) -> None:
        """Raise unless ``host`` may be reached at ``ip``."""
        host = host.lower().rstrip(".")
        kind = address_refusal(ip)
        if kind is None or self._allow.allows(host, ip):
            return
        what = f"{ip} is a {kind} address" if host == str(ip) else f"it resolves to {ip}, a {kind} address"
        raise InvalidInputError(
            f"refused {host}: {what}; an admin may allow it with --allow-host "
            "or the setting ingestion.crawl.allow_hosts"
        )

    def check_literal(self, host: str) -> bool:
        """Check ``host`` if it is an IP address (those never reach :meth:`resolve`)."""
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        self.check(str(ip), ip)
        return True

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address of ``host``, each checked; raises if any one is refused."""
        if self.check_literal(host):
            return [ipaddress.ip_address(host.strip("[]"))]
        try:
            found = await self._lookup(host, port)
        except OSError as exc:
            raise InvalidInputError(f"cannot resolve {host}: {exc}") from None
        # IPv6 link-local answers carry a scope ID ("fe80::1%eth0") that ip_address does not read.
        addresses = list(dict.fromkeys(ipaddress.ip_address(a.split("%", 1)[0]) for a in found))
        if not addresses:
            raise InvalidInputError(f"cannot resolve {host}: no address")
        for ip in addresses:
            self.check(host, ip)
        return addresses


async def _system_lookup(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]
