"""The raw ASGI application: bytes in, bytes out. All meaning lives in ``pipeline.py``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from perimeterdb import errors
from perimeterdb.server import pipeline
from perimeterdb.server.network import public_origins
from perimeterdb.server.runtime import Runtime

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class PerimeterApp:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.background: list[asyncio.Task[None]] = []
        self.origin_for = public_origins()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for starter in getattr(self.runtime, "background_starters", []):
                    self.background.append(asyncio.create_task(starter()))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self.background:
                    task.cancel()
                audit = getattr(self.runtime, "audit", None)
                if audit is not None:  # uvicorn re-raises SIGTERM after this: Runtime.close() may not run
                    audit.seal()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        size = 0
        too_big = False
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > pipeline.MAX_REQUEST_BYTES:
                too_big = True
            elif chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        headers: dict[str, list[str]] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
        request = pipeline.IncomingRequest(
            method=scope["method"],
            raw_path=scope.get("raw_path", b"/").decode("latin-1") or scope["path"],
            query_string=scope.get("query_string", b""),
            headers=headers,
            body=b"" if too_big else b"".join(chunks),
            origin=self.origin_for(scope),
        )
        if too_big:
            response = pipeline.wire.HttpResponse(413, b"", [])
        else:
            try:
                response = await pipeline.handle(self.runtime, request)
            except Exception:
                # A bug outside the protocols' own handlers (the audit step, say): still DynamoDB's JSON 500,
                # not the HTTP server's plain-text one, and the traceback only in the log.
                log.exception("internal error outside the request handlers")
                response = pipeline.wire.json_error(
                    errors.internal(), pipeline.wire.new_request_id(), content_type=pipeline.JSON_10
                )
        response.headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": response.headers})
        await send({"type": "http.response.body", "body": response.body})
