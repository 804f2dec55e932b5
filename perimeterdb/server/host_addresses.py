"""The server host's own addresses: a connection from one of them comes from a process on this host.

A VPC endpoint listener is bound to an address of this host on the VPC's network (an endpoint address is
always inside the VPC's CIDR), so any local process that connects to it -- from the endpoint address
itself, another interface address or loopback -- would otherwise look like a client inside the VPC.
The server host is not inside any VPC: ``server/network.py`` refuses such connections unless the world
file says ``allow_host_processes: true`` for that VPC.

The addresses are read from the kernel, for the server's own network namespace: IPv4 from
``/proc/net/fib_trie`` (every route of type ``host LOCAL``, including whole local ranges such as
127.0.0.0/8), IPv6 from ``/proc/net/if_inet6``; loopback and unspecified addresses always count. Where
/proc is unavailable, the addresses the host name resolves to are used instead. The set is read at start,
re-read at most every ``max_age`` seconds, and re-read on a miss (at most every ``min_interval``
seconds), so an address added after start is seen; ``version`` moves when the set changes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["HostAddresses", "read_host_addresses"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _ip(text: str) -> Address | None:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _fib_trie(text: str) -> tuple[set[Address], set[Network]]:
    """Local IPv4 addresses (``/32 host LOCAL``) and local ranges (``/8 host LOCAL``) of a fib_trie dump."""
    addresses: set[Address] = set()
    networks: set[Network] = set()
    last: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|-- "):
            last = stripped[4:].strip()
        elif last is not None and stripped.endswith("host LOCAL") and stripped.startswith("/"):
            prefix = stripped[1:].split(" ", 1)[0]
            with contextlib.suppress(ValueError):
                if prefix == "32":
                    addresses.add(ipaddress.IPv4Address(last))
                else:
                    networks.add(ipaddress.IPv4Network(f"{last}/{prefix}", strict=False))
    return addresses, networks


def _if_inet6(text: str) -> set[Address]:
    out: set[Address] = set()
    for line in text.splitlines():
        parts = line.split()
        if parts and len(parts[0]) == 32:
            with contextlib.suppress(ValueError):
                out.add(ipaddress.IPv6Address(int(parts[0], 16)))
    return out


def read_host_addresses(proc: Path = Path("/proc/net")) -> tuple[frozenset[Address], frozenset[Network]]:
    """This host's addresses and local ranges, as the kernel of this network namespace has them."""
    addresses: set[Address] = set()
    networks: set[Network] = set()
    found = False
    with contextlib.suppress(OSError):
        v4, nets = _fib_trie((proc / "fib_trie").read_text())
        addresses |= v4
        networks |= nets
        found = True
    with contextlib.suppress(OSError):
        addresses |= _if_inet6((proc / "if_inet6").read_text())
        found = True
    if not found:
        with contextlib.suppress(OSError):
            for info in socket.getaddrinfo(socket.gethostname(), None):
                ip = _ip(str(info[4][0]))
                if ip is not None:
                    addresses.add(ip)
    return frozenset(addresses), frozenset(networks)


class HostAddresses:
    """``address in host`` -> is it one of this host's own addresses? (Refreshed as the docstring says.)"""

    def __init__(
        self,
        reader: Callable[[], tuple[frozenset[Address], frozenset[Network]]] = read_host_addresses,
        *,
        max_age: float = 30.0,
        min_interval: float = 1.0,
    ) -> None:
        self._reader = reader
        self.max_age = max_age
        self.min_interval = min_interval
        self.version = 0
        self._addresses: frozenset[Address] = frozenset()
        self._networks: frozenset[Network] = frozenset()
        self._read_at = float("-inf")
        self.refresh()

    def refresh(self) -> None:
        addresses, networks = self._reader()
        self._read_at = time.monotonic()
        if (addresses, networks) != (self._addresses, self._networks):
            self._addresses, self._networks = addresses, networks
            self.version += 1

    def maybe_refresh(self) -> None:
        """Re-read the set when it is older than ``max_age`` (cheap to call on every request)."""
        if time.monotonic() - self._read_at > self.max_age:
            self.refresh()

    def _known(self, ip: Address) -> bool:
        return ip in self._addresses or any(ip in net for net in self._networks if net.version == ip.version)

    def __contains__(self, address: object) -> bool:
        ip = _ip(str(address))
        if ip is None:
            return False
        if ip.is_loopback or ip.is_unspecified:
            return True
        self.maybe_refresh()
        if self._known(ip):
            return True
        if time.monotonic() - self._read_at >= self.min_interval:  # a miss: maybe an address added since
            self.refresh()
            return self._known(ip)
        return False
