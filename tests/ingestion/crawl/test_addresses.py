"""The SSRF guard's address checks and allow-list, and name resolution through it."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest

from core.errors import InvalidInputError
from ingestion.crawl.addresses import AddressGuard, AllowList, address_refusal


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fd12:3456::1", "unique-local"),
        ("fec0::1", "site-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("192.0.0.192", "cloud metadata"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("2002:a00:1::", "private"),  # 6to4 around 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),  # NAT64 around 169.254.169.254
    ],
)
def test_non_public_addresses_are_refused_with_their_kind(address: str, kind: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_allow_list_takes_hosts_and_networks_but_metadata_needs_its_exact_address() -> None:
    allow = AllowList.parse(["Intranet.Example.", "10.0.0.0/8", "fd00::/8", "0.0.0.0/0"])
    ip = ipaddress.ip_address
    assert allow.allows("intranet.example", ip("192.168.3.3"))
    assert allow.allows("wiki", ip("10.9.9.9"))
    assert not allow.allows("wiki", ip("fe80::1"))
    # Neither a broad network nor an allowed name opens a metadata service...
    assert not allow.allows("wiki", ip("169.254.169.254"))
    assert not allow.allows("intranet.example", ip("fd00:ec2::254"))
    # ...its own address does.
    assert AllowList.parse(["169.254.169.254"]).allows("x", ip("169.254.169.254"))
    with pytest.raises(InvalidInputError):
        AllowList.parse(["10.0.0.0/99"])


def lookup_for(answers: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def lookup(host: str, port: int) -> Sequence[str]:
        return answers[host]

    return lookup


async def test_every_resolved_address_is_checked() -> None:
    guard = AddressGuard(
        AllowList(),
        lookup_for({"good.example": ["93.184.216.34"], "mixed.example": ["93.184.216.34", "10.0.0.5"]}),
    )
    assert await guard.resolve("good.example", 80) == [ipaddress.ip_address("93.184.216.34")]
    with pytest.raises(InvalidInputError, match=r"mixed\.example: it resolves to 10\.0\.0\.5, a private"):
        await guard.resolve("mixed.example", 80)


async def test_ip_literals_are_checked_without_a_lookup() -> None:
    guard = AddressGuard(AllowList.parse(["127.0.0.0/8"]), lookup_for({}))
    assert guard.check_literal("127.0.0.2")
    assert not guard.check_literal("example.com")
    with pytest.raises(InvalidInputError, match="link-local"):
        guard.check_literal("[fe80::1]")


async def test_localhost_is_refused_through_the_system_resolver() -> None:
    with pytest.raises(InvalidInputError, match="loopback"):
        await AddressGuard(AllowList()).resolve("localhost", 80)
    assert await AddressGuard(AllowList.parse(["localhost"])).resolve("localhost", 80)
