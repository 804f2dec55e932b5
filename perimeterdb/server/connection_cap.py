"""A cap on the connections one server process holds, below its file-descriptor limit, so that idle
connections cannot starve the clients that have something to send.

Every connection costs a file descriptor. Without a cap, an anonymous client that opens as many connections
as the process may hold file descriptors (1024 by default on most systems) and sends nothing, or completes a
request and keeps the connection alive, makes ``accept()`` fail with EMFILE: every other client is reset
until the attacker lets go, and the attacker need only reopen a connection each time one times out.

The cap leaves room under the soft ``RLIMIT_NOFILE`` for the descriptors the server needs besides its
connections (SQLite, the audit log, listeners, outgoing webhooks). When a new connection arrives at the cap,
the connection that has waited longest without a request being served makes room for it: an idle keep-alive
connection or one whose head is not complete first, then one still sending its body. A connection whose
request the application is running is never closed here; when every connection is one of those, the new
connection is the one closed. The soft limit is raised to the hard one at start, so a host that allows more
descriptors gets more connections.
"""

from __future__ import annotations

import logging
import resource
from typing import Protocol

log = logging.getLogger(__name__)

_RESERVE = 64  # descriptors kept for everything but client connections, plus an eighth of the limit


class Connection(Protocol):
    def idle_rank(self) -> int | None:
        """0: nothing being served (idle, or the head still coming); 1: its body still coming; ``None``: the
        application is running its request, never to be closed for room."""

    def close_for_room(self) -> None: ...


def raise_descriptor_limit() -> None:
    """The soft RLIMIT_NOFILE raised to the hard limit (capped at 1 << 20), where the system allows it."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = min(hard if hard != resource.RLIM_INFINITY else 1 << 20, 1 << 20)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (OSError, ValueError):
        log.debug("could not raise the file-descriptor limit", exc_info=True)


def connection_cap() -> int:
    """The most connections this process holds: its soft descriptor limit less a reserve. Read each time
    (a cheap system call), so a limit lowered while running is honoured."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(16, soft - _RESERVE - soft // 8)


class ConnectionTable:
    """The live connections of one process, least recently active first."""

    def __init__(self) -> None:
        self._live: dict[Connection, None] = {}

    def __len__(self) -> int:
        return len(self._live)

    def admit(self, conn: Connection) -> bool:
        """Register ``conn``, closing another for room at the cap; ``False``: no room, close ``conn``."""
        if len(self._live) >= connection_cap():
            victim = self._victim()
            if victim is None:
                return False
            self._live.pop(victim, None)
            victim.close_for_room()
        self._live[conn] = None
        return True

    def touched(self, conn: Connection) -> None:
        """``conn`` began a request: it moves to the back of the line."""
        if conn in self._live:
            del self._live[conn]
            self._live[conn] = None

    def gone(self, conn: Connection) -> None:
        self._live.pop(conn, None)

    def _victim(self) -> Connection | None:
        later: Connection | None = None
        for conn in self._live:
            rank = conn.idle_rank()
            if rank == 0:
                return conn
            if rank == 1 and later is None:
                later = conn
        return later


CONNECTIONS = ConnectionTable()
