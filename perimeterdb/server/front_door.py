"""The front door: HTTP/1.1 connections held to size and time limits before the application sees a byte.

uvicorn's httptools protocol parses a request's head with no bound on its size and keeps a connection for as
long as the client trickles bytes: a 4 MB header is read into memory, and a client sending one byte every
20 s keeps its connection (and a slot) forever. This protocol is that one with the front door's limits
(``config.RequestLimits``) checked as the bytes arrive:

- the head (request line and headers) is counted as it is received and refused past its limits, before the
  parser has collected it: 414 for a long request target, 431 for a long header line or too many bytes;
- the head must be complete within ``header_timeout`` of the connection (or of the request's first byte):
  a slow or silent client gets 408 and is closed;
- a body larger than ``max_body_bytes`` is refused with 413 on its announced ``Content-Length`` before any of
  it is read, and while it is read when it comes chunked;
- the body must be complete within ``body_timeout`` of the last header.

Every refusal closes the connection: after a refused head, the rest of the stream cannot be trusted to be
where a next request starts. The application is never called for a request refused here.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from perimeterdb.config import RequestLimits
from perimeterdb.server.connection_cap import CONNECTIONS, raise_descriptor_limit

_IDLE, _HEAD, _BODY = 0, 1, 2
_REASONS = {
    408: b"Request Timeout",
    413: b"Request Entity Too Large",
    414: b"Request-URI Too Large",
    431: b"Request Header Fields Too Large",
}


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; ``send_400_response`` then answers ``status``."""


class FrontDoorProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the limits of ``limits`` (set by ``protocol_for``)."""

    limits: ClassVar[RequestLimits] = RequestLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = _HEAD  # a new connection owes its first request's head
        self._head_bytes = 0
        self._parsed_head = 0
        self._body_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._refusal: int | None = None

    # --- timers ------------------------------------------------------------------------------------------

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if self._phase == _HEAD and not self.transport.is_closing():
            if self._head_bytes:
                self._answer_and_close(408)
            else:  # nothing was sent: nothing to answer
                self.transport.close()

    def _body_timed_out(self) -> None:
        self._timer = None
        if self._phase == _BODY and not self.transport.is_closing():
            self._answer_and_close(408)

    # --- the connection ------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not CONNECTIONS.admit(self):  # at the cap with every connection busy (server/connection_cap.py)
            transport.abort()
            return
        self._arm(self.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        CONNECTIONS.gone(self)
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        phase = self._phase
        if phase != _BODY:
            if phase == _IDLE:  # the first bytes of the next request: its head is now owed
                self._phase = _HEAD
                self._head_bytes = 0
                self._arm(self.limits.header_timeout, self._head_timed_out)
            self._head_bytes += len(data)
        super().data_received(data)
        # Counted before the parser collects a header line, so a head that never ends is refused as soon as
        # it passes the limit, not when its last byte comes. (The count of a chunk may include the tail of
        # the previous request's body: it can only overstate a head, never let a longer one through.)
        if (
            self._phase == _HEAD
            and self._head_bytes > self.limits.max_header_bytes
            and not self.transport.is_closing()
        ):
            self._answer_and_close(431)

    def idle_rank(self) -> int | None:
        """For the connection cap: 0 nothing being served, 1 a body still coming, None a request running."""
        if self._phase == _BODY:
            return 1
        cycle = self.cycle
        return None if cycle is not None and not cycle.response_complete else 0

    def close_for_room(self) -> None:
        """Closed by the connection cap for a newer connection: at once (abort: a client that does not read
        cannot hold the descriptor with an unsent buffer)."""
        self._disarm()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.abort()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error, which is where a refusal from a callback lands."""
        refusal, self._refusal = self._refusal, None
        if refusal is not None:
            self._answer_and_close(refusal)
        else:
            super().send_400_response(msg)

    def _refuse(self, status: int) -> _Refused:
        self._refusal = status
        return _Refused(status)

    def _answer_and_close(self, status: int) -> None:
        """A bare answer with ``Connection: close``, then the connection closed; a request already handed to
        the application sees a disconnect and answers nothing."""
        self._disarm()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        if self.transport.is_closing():
            return
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n" % (status, _REASONS[status])
        )
        self.transport.close()

    # --- parser callbacks ------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._parsed_head = 0
        CONNECTIONS.touched(self)
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._parsed_head += len(url)
        if len(self.url) > self.limits.max_request_line:
            raise self._refuse(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        # Also counted here, exactly, for a head that arrives whole in one read (the count of raw bytes in
        # data_received only sees a head that is still incomplete).
        line = len(name) + len(value) + 4  # ": " and CRLF
        self._parsed_head += line
        if line > self.limits.max_header_line or self._parsed_head > self.limits.max_header_bytes:
            raise self._refuse(431)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        self._body_bytes = 0
        for name, value in self.headers:
            if name == b"content-length":
                # httptools has already refused a malformed or repeated-and-different length.
                if value.strip().isdigit() and int(value) > self.limits.max_body_bytes:
                    raise self._refuse(413)
                break
        self._arm(self.limits.body_timeout, self._body_timed_out)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body_bytes:  # a chunked body: its size is known only now
            raise self._refuse(413)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        self._phase = _IDLE
        super().on_message_complete()


def protocol_for(limits: RequestLimits) -> type[FrontDoorProtocol]:
    """The protocol class for uvicorn's ``http=`` setting, holding connections to ``limits``."""
    raise_descriptor_limit()  # more descriptors, more room under the connection cap
    return type("FrontDoorProtocol", (FrontDoorProtocol,), {"limits": limits})
