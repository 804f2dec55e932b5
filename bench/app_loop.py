"""The application's own cost per request, without HTTP: the ASGI app called in a loop, in process.

    .venv/bin/python bench/app_loop.py [--ops GetItem,PutItem] [--n 5000] [--profile]

It starts a real server from the bench world (authorization fully on: SCP, endpoint, role session,
resource policy), seeds it through that server, then opens a second runtime on the same data directory in
this process (as a ``serve --workers 2`` sibling would) and drives the ASGI app directly with the
pre-signed requests, as if they came through the VPC endpoint's listener. What it prints is the app's CPU
per request: the part of the server that is ours, to set beside the raw ASGI ceiling's ~55 µs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import world_setup
from presign import sign_all
from workloads import WORKLOADS, bodies

CONCURRENCY = 1


def scope_and_body(raw: bytes, endpoint_port: int) -> tuple[dict[str, Any], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = [tuple(line.split(b": ", 1)) for line in lines[1:]]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(k.lower(), v) for k, v in headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", endpoint_port),
        "scheme": "http",
    }
    return scope, body


async def drive(app: Any, requests: list[tuple[dict[str, Any], bytes]], n: int) -> tuple[float, int]:
    statuses: dict[int, int] = {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] = statuses.get(message["status"], 0) + 1

    async def worker(offset: int, count: int) -> None:
        for i in range(offset, offset + count):
            scope, body = requests[i % len(requests)]
            message = {"type": "http.request", "body": body, "more_body": False}

            async def receive(message: dict[str, Any] = message) -> dict[str, Any]:
                return message

            await app(scope, receive, send)

    start = time.process_time()
    per = n // CONCURRENCY
    await asyncio.gather(*(worker(k * per, per) for k in range(CONCURRENCY)))
    elapsed = time.process_time() - start
    bad = sum(v for k, v in statuses.items() if k != 200)
    return elapsed, bad


def ablate(loop: Any, app: Any, runtime: Any, requests: list[Any], n: int) -> None:
    """Each stage's cost as the difference it makes when taken out (best of three runs each)."""
    from perimeterdb.auth import verify
    from perimeterdb.server import pipeline

    def best() -> float:
        return min(loop.run_until_complete(drive(app, requests, n))[0] for _ in range(2)) / n * 1e6

    async def allow(*_args: Any, **_kwargs: Any) -> None:
        return None

    real_authenticate = verify.authenticate
    verified = loop.run_until_complete(
        real_authenticate(
            verify.HttpRequestParts("POST", "/", [], _headers(requests[0][0]), requests[0][1]),
            runtime.identities.credential,
            service="dynamodb",
        )
    )

    async def known(*_args: Any, **_kwargs: Any) -> Any:
        return verified

    real_get = runtime.engine.get
    stored: dict[Any, Any] = {}

    async def remembered(key: Any) -> Any:
        if key not in stored:
            stored[key] = await real_get(key)
        return stored[key]

    stages: list[tuple[str, Any, Any]] = [
        (
            "audit record",
            lambda: setattr(runtime, "audit", None),
            lambda a=runtime.audit: setattr(runtime, "audit", a),
        ),
        (
            "input validation",
            lambda: setattr(pipeline, "validate_request", lambda *a: None),
            lambda v=pipeline.validate_request: setattr(pipeline, "validate_request", v),
        ),
        (
            "authorization",
            lambda: setattr(runtime.authorizer, "authorize", allow),
            lambda: delattr(runtime.authorizer, "authorize"),
        ),
        (
            "SigV4 verification",
            lambda: setattr(verify, "authenticate", known),
            lambda: setattr(verify, "authenticate", real_authenticate),
        ),
        (
            "storage reads (GetItem)",
            lambda: setattr(runtime.engine, "get", remembered),
            lambda: delattr(runtime.engine, "get"),
        ),
    ]
    # The machine is shared: each stage is measured right beside a full run, alternating, best of each.
    for name, take_out, put_back in stages:
        with_all, without = [], []
        for _ in range(3):
            with_all.append(best())
            take_out()
            try:
                without.append(best())
            finally:
                put_back()
        full, rest = min(with_all), min(without)
        print(f"  {name:24s} ~{full - rest:5.1f} µs  ({full:6.1f} with it, {rest:6.1f} without)")


def _headers(scope: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in scope["headers"]:
        out.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", default="GetItem,PutItem,UpdateItem,Query")
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight (wrk uses 16)")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument(
        "--ablate",
        action="store_true",
        help="also measure with each stage taken out in turn (what each stage costs, by difference)",
    )
    args = parser.parse_args()
    global CONCURRENCY
    CONCURRENCY = args.concurrency

    from perimeterdb import cli_world
    from perimeterdb.config import Settings
    from perimeterdb.server.app import PerimeterApp
    from perimeterdb.server.runtime import open_runtime

    with tempfile.TemporaryDirectory(prefix="pdb-app-loop-") as tmp:
        work = Path(tmp)
        system, key = world_setup.start(work, "pdb", "authz")
        try:
            config = world_setup.configure(system, key)
            settings = Settings(data_dir=system.data_dir, listeners=())
            runtime = open_runtime(settings)
            app = PerimeterApp(runtime)
            cli_world.configure_app(app, runtime)
            # By operation name (the first workload of each: Query is Query 10), or by the table's name.
            by_name: dict[str, Any] = {}
            for w in WORKLOADS:
                by_name.setdefault(w.operation, w)
                by_name[w.name] = w
            loop = asyncio.new_event_loop()
            if args.uvloop:
                import uvloop

                loop = uvloop.new_event_loop()
            for op in args.ops.split(","):
                workload = by_name[op]
                raws = sign_all(system.host, workload.operation, bodies(workload), config.creds)
                requests = [scope_and_body(r, system.port) for r in raws]
                loop.run_until_complete(drive(app, requests, min(500, args.n)))  # warm caches
                profiler = cProfile.Profile() if args.profile else None
                if profiler:
                    profiler.enable()
                elapsed, bad = loop.run_until_complete(drive(app, requests, args.n))
                if profiler:
                    profiler.disable()
                print(
                    f"{op:12s} {1e6 * elapsed / args.n:8.1f} µs/request (app only){'  non-200: ' + str(bad) if bad else ''}"
                )
                if args.ablate:
                    ablate(loop, app, runtime, requests, args.n)
                if profiler:
                    stats = pstats.Stats(profiler)
                    stats.sort_stats("tottime").print_stats(30)
                    stats.sort_stats("cumulative").print_stats(45)
            runtime.close()
        finally:
            system.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
