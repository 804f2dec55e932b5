"""server/host_addresses.py: reading the kernel's local addresses, and refreshing on a miss."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from perimeterdb.server.host_addresses import HostAddresses, read_host_addresses

FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 10.77.5.0/24 2 0 2
           |-- 10.77.5.0
              /24 link UNICAST
           |-- 10.77.5.1
              /32 host LOCAL
        |-- 10.77.5.255
           /32 link BROADCAST
"""
IF_INET6 = """fd000000000000000000000000000002 04 40 00 82     eth0
00000000000000000000000000000001 01 80 10 80       lo
"""


def test_reads_local_ipv4_ipv6_and_local_ranges(tmp_path: Path) -> None:
    (tmp_path / "fib_trie").write_text(FIB_TRIE)
    (tmp_path / "if_inet6").write_text(IF_INET6)
    addresses, networks = read_host_addresses(tmp_path)
    assert {str(a) for a in addresses} == {"127.0.0.1", "10.77.5.1", "fd00::2", "::1"}
    assert networks == {ipaddress.ip_network("127.0.0.0/8")}
    host = HostAddresses(lambda: (addresses, networks))
    assert "10.77.5.1" in host and "127.9.9.9" in host and "::ffff:10.77.5.1" in host and "fd00::2" in host
    assert "10.77.5.10" not in host and "10.77.5.255" not in host and "not an ip" not in host


def test_a_miss_rereads_so_an_address_added_after_start_counts() -> None:
    current = {ipaddress.ip_address("10.77.5.1")}
    reads = []

    def reader() -> tuple[frozenset, frozenset]:  # type: ignore[type-arg]
        reads.append(1)
        return frozenset(current), frozenset()

    host = HostAddresses(reader, min_interval=0.0)
    version = host.version
    assert "10.77.6.1" not in host
    current.add(ipaddress.ip_address("10.77.6.1"))
    assert "10.77.6.1" in host and host.version == version + 1 and len(reads) >= 3
