"""The ceiling: an empty ASGI handler on the same HTTP server as perimeterdb (uvicorn + httptools + uvloop).

    python bench/raw_asgi.py PORT

It reads the whole body and answers ``{}`` with the headers a DynamoDB reply carries, on a listener set up
as perimeterdb's is (TCP_NODELAY on the listening socket, keep-alive 60 s, no access log).
"""

from __future__ import annotations

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
    )
    # As perimeterdb's server does (cli._run_loop): uvloop, since Server.serve ignores loop="uvloop".
    uvloop.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    main()
