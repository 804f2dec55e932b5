"""A local webhook receiver for the alert tests: a real HTTP server on 127.0.0.1 that records what it gets.

It can fail the first ``fail_first`` requests (status 500), be slow (``delay``), and notes when one alert id
arrives while another delivery of the same id is still in flight (``overlaps``).
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.support.server import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int
    at: float = 0.0  # time.perf_counter() when it arrived


@dataclass
class Receiver:
    port: int
    fail_first: int = 0
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    overlaps: list[str] = field(default_factory=list)
    in_flight: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/pdb"

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.status == 204]

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return False


def _handler(state: Receiver) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            alert_id = self.headers.get("X-PerimeterDB-Alert-Id") or ""
            with state.lock:
                if alert_id in state.in_flight:
                    state.overlaps.append(alert_id)
                state.in_flight.add(alert_id)
                failing = sum(1 for _ in state.received) < state.fail_first
            if state.delay:
                time.sleep(state.delay)
            status = 500 if failing else 204
            arrived = time.perf_counter()
            with state.lock:
                state.in_flight.discard(alert_id)
                state.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body, status, arrived))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def receiver(port: int | None = None, *, fail_first: int = 0, delay: float = 0.0) -> Iterator[Receiver]:
    state = Receiver(port or free_port(), fail_first=fail_first, delay=delay)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", state.port), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
