"""The ceiling: an empty ASGI handler on the same HTTP server as perimeterdb (uvicorn + httptools + uvloop).

    python bench/raw_asgi.py PORT [WORKERS]

It reads the whole body and answers ``{}`` with the headers a DynamoDB reply carries, on a listener set up
as perimeterdb's is (TCP_NODELAY on the listening socket, keep-alive 60 s, no access log), and with as
many processes on that socket as ``perimeterdb serve --workers`` would run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
import uvloop

BODY = b"{}"
HEADERS = [
    (b"content-type", b"application/x-amz-json-1.0"),
    (b"x-amzn-requestid", b"0" * 52),
    (b"x-amz-crc32", b"2745614147"),
    (b"content-length", str(len(BODY)).encode()),
]


async def app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    port = int(sys.argv[1])
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=60,
        server_header=False,
        proxy_headers=False,  # as perimeterdb's listeners
    )
    if workers <= 1:
        # As perimeterdb's server does (cli._run_loop): uvloop, since Server.serve ignores loop="uvloop".
        uvloop.run(uvicorn.Server(config).serve(sockets=[sock]))
        return
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            try:
                uvloop.run(uvicorn.Server(config).serve(sockets=[sock]))
            finally:
                os._exit(0)
        children.append(pid)

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in children:
        with contextlib.suppress(ChildProcessError):
            os.wait()


if __name__ == "__main__":
    main()
