"""The range tables behind ip-filter: most specific entry wins, families kept apart."""

from __future__ import annotations

import ipaddress

import pytest
from kairos_ipfilter import AddressFilter, IpFilterConfig, RangeMap, parse_network


def nets(*values: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [parse_network(v) for v in values]


def test_deny_only_admits_everything_else() -> None:
    check = AddressFilter([], nets("203.0.113.0/24", "2001:db8::/32"))
    assert not check.admits("203.0.113.9")
    assert not check.admits("2001:db8::1")
    assert check.admits("203.0.114.1")
    assert check.admits("::1")


def test_allow_list_refuses_unlisted_addresses() -> None:
    check = AddressFilter(nets("10.0.0.0/8", "192.0.2.7"), [])
    assert check.admits("10.200.3.4")
    assert check.admits("192.0.2.7")
    assert not check.admits("192.0.2.8")
    assert not check.admits("2001:db8::1")


def test_most_specific_entry_wins_both_ways() -> None:
    check = AddressFilter(nets("10.0.0.0/8", "10.1.2.3"), nets("10.1.0.0/16"))
    assert check.admits("10.2.0.1")  # only the /8 allow covers it
    assert not check.admits("10.1.9.9")  # the /16 deny is more specific
    assert check.admits("10.1.2.3")  # the /32 allow is more specific still
    assert not check.admits("11.0.0.1")  # allow list set, nothing covers it


def test_same_block_in_both_lists_is_denied() -> None:
    check = AddressFilter(nets("198.51.100.0/24"), nets("198.51.100.0/24"))
    assert not check.admits("198.51.100.1")


def test_ipv4_mapped_ipv6_is_checked_as_ipv4() -> None:
    check = AddressFilter([], nets("127.0.0.0/8"))
    assert not check.admits("::ffff:127.0.0.1")


def test_unparsable_address_is_refused() -> None:
    check = AddressFilter([], nets("10.0.0.0/8"))
    assert not check.admits("")
    assert not check.admits("not-an-ip")


def test_range_map_merges_adjacent_blocks_and_matches_brute_force() -> None:
    blocks = [
        (parse_network("10.0.0.0/25"), "deny"),
        (parse_network("10.0.0.128/25"), "deny"),
        (parse_network("10.0.0.64/26"), "allow"),
        (parse_network("10.0.1.0/24"), "allow"),
    ]
    ranges = RangeMap(blocks)  # type: ignore[arg-type]
    assert len(ranges) == 4  # deny .0-.63, allow .64-.127, deny .128-.255, allow 1.x
    for last in range(0, 256):
        for third in (0, 1, 2):
            ip = ipaddress.ip_address(f"10.0.{third}.{last}")
            covering = [(n, v) for n, v in blocks if ip in n]
            expected = max(covering, key=lambda c: c[0].prefixlen)[1] if covering else None
            assert ranges.lookup(int(ip)) == expected


def test_config_names_bad_ranges() -> None:
    with pytest.raises(ValueError, match=r"host bits set; did you mean '10.0.0.0/8'"):
        IpFilterConfig(allow=["10.1.2.3/8"])
    with pytest.raises(ValueError, match="not an IP address or CIDR range"):
        IpFilterConfig(deny=["example.com"])
