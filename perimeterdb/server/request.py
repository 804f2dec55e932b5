"""One HTTP request as the app hands it to a protocol handler: method, path, headers, body and the
network origin of its connection. Its own module so that the pipeline and the handlers it dispatches to
(``query_protocol``, ``organizations/http``, ``breakglass/http``) all import it from below, not from each
other."""

from __future__ import annotations

from dataclasses import dataclass

from perimeterdb.server.network import NetworkOrigin


@dataclass(slots=True)  # not frozen: built for every request, and frozen dataclasses are slow to build
class IncomingRequest:
    method: str
    raw_path: str
    query_string: bytes
    headers: dict[str, list[str]]
    body: bytes
    origin: NetworkOrigin

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None
