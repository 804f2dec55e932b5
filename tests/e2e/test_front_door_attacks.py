"""Red-team regressions for the front door (issue 13): each test is an attack that worked against a real
server on loopback, kept so that it never works again.

Every test sends only to the loopback server it started, and every loop is bounded in count and time.
"""

from __future__ import annotations

import resource
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import raw
from tests.support.server import ServerProcess


@pytest.fixture()
def small(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server whose process may hold only 256 file descriptors (set on it once it runs): what 300
    connections exhaust, as 1100 would a server under the common default of 1024."""
    proc = ServerProcess(tmp_path / "data", extra_args=["--durability", "normal"]).start()
    assert proc.proc is not None
    resource.prlimit(proc.proc.pid, resource.RLIMIT_NOFILE, (256, 256))
    yield proc
    proc.stop()


def _list_tables(server: ServerProcess) -> int:
    key, secret = server.admin_keys()
    status, payload, _ = raw.call(server.endpoint, "ListTables", {}, key, secret)
    assert status == 200, payload
    return status


def _open(server: ServerProcess, count: int, first_bytes: bytes = b"") -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        if first_bytes:
            sock.sendall(first_bytes)
        socks.append(sock)
    return socks


def _keep_alive(server: ServerProcess, count: int) -> list[socket.socket]:
    """Connections that each complete one request, read the answer and then stay open, idle."""
    socks = _open(server, count)
    for sock in socks:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    for sock in socks:
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    return socks


@pytest.mark.parametrize("kind", ["silent", "half-head", "keep-alive"])
def test_idle_connections_cannot_exhaust_file_descriptors(small: ServerProcess, kind: str) -> None:
    """300 connections held open by an anonymous client (sending nothing, one byte of a head, or idle
    after a request) used to make accept() fail with EMFILE: every other client was reset. The oldest idle
    connection now makes room for a new one, and a legitimate client is served throughout."""
    if kind == "keep-alive":
        socks = _keep_alive(small, 150) + _open(small, 150)
    else:
        socks = _open(small, 300, b"P" if kind == "half-head" else b"")
    try:
        for _ in range(3):
            assert _list_tables(small) == 200
    finally:
        for sock in socks:
            sock.close()
    assert _list_tables(small) == 200
