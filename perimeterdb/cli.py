"""The ``perimeterdb`` command: serve (and, as they land, simulate, audit, world, prove)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from perimeterdb import (
    cli_audit,
    cli_breakglass,
    cli_demo,
    cli_guardrails,
    cli_prove,
    cli_simulate,
    cli_startup,
    cli_world,
)
from perimeterdb.config import Listener, RequestLimits, Settings


def _socket_for(listener: Listener) -> socket.socket:
    family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit TCP_NODELAY from the listening socket on Linux. Without it, a response
    # written as headers then body waits for the client's delayed ACK: 40 ms per keep-alive request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((listener.host, listener.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def settings_from_args(args: argparse.Namespace) -> Settings:
    listeners = tuple(Listener.parse(t) for t in (args.listen or ["127.0.0.1:8000"]))
    return Settings(
        data_dir=Path(args.data_dir),
        listeners=listeners,
        log_level=args.log_level,
        durability=args.durability,
        key_file=Path(args.key_file) if args.key_file else None,
        ttl_interval=args.ttl_interval,
        workers=max(1, args.workers),
        world_file=Path(args.world) if args.world else None,
        extra=cli_audit.serve_extra(args),
        credentials_file=Path(args.credentials_file) if args.credentials_file else None,
        print_credentials_once=args.print_credentials_once,
        limits=RequestLimits(header_timeout=args.header_timeout, body_timeout=args.body_timeout),
    )


async def _bootstrap(settings: Settings) -> None:
    from perimeterdb.server.runtime import deliver_credentials, open_runtime, warn_about_credentials

    runtime = open_runtime(settings)
    try:
        created = await runtime.identities.bootstrap(settings.default_region)
        if created is not None:
            account, key = created
            deliver_credentials(settings, key)
            logging.getLogger("perimeterdb").info("created account %s with administrator 'admin'", account)
        warn_about_credentials(settings)
    finally:
        runtime.close()


def _uvicorn_servers(app: Any, settings: Settings, sockets: list[socket.socket]) -> list[Any]:
    """One uvicorn server for the plain listeners and one per TLS certificate, on one event loop.

    The first server owns the lifespan (background loops) and the signal handlers; when it stops, the
    others are told to stop too.
    """
    import uvicorn

    from perimeterdb.server.front_door import protocol_for

    class Secondary(uvicorn.Server):  # leaves signal handling to the first server
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    groups: dict[tuple[str, str] | None, list[socket.socket]] = {}
    for listener, sock in zip(settings.listeners, sockets, strict=True):
        groups.setdefault(listener.tls, []).append(sock)
    servers = []
    for index, (tls, group) in enumerate(groups.items()):
        config = uvicorn.Config(
            app,
            loop="uvloop" if sys.platform != "win32" else "asyncio",
            http=protocol_for(settings.limits),  # httptools, held to the front door's limits
            lifespan="on" if index == 0 else "off",
            access_log=False,
            log_level=settings.log_level,
            timeout_keep_alive=60,
            server_header=False,
            # The client's address is what the network perimeter is made of (aws:SourceIp, the VPC a
            # request comes from): never taken from X-Forwarded-For, which any local process could set.
            proxy_headers=False,
            ssl_certfile=tls[0] if tls else None,
            ssl_keyfile=tls[1] if tls else None,
        )
        server = uvicorn.Server(config) if index == 0 else Secondary(config)
        servers.append((server, group))
    return servers


async def _serve_all(servers: list[tuple[Any, list[socket.socket]]]) -> None:
    first, first_sockets = servers[0]
    others = [asyncio.create_task(server.serve(sockets=group)) for server, group in servers[1:]]
    try:
        await first.serve(sockets=first_sockets)
    finally:
        for server, _ in servers[1:]:
            server.should_exit = True
        if others:
            await asyncio.gather(*others, return_exceptions=True)


def _run_loop(main: Any) -> None:
    """Run the server's coroutine on uvloop where it exists (uvicorn's ``loop=`` setting only applies
    to ``uvicorn.run``, not to ``Server.serve`` on sockets we made): it halves the event loop's cost."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def _run_worker(settings: Settings, sockets: list[socket.socket], *, primary: bool) -> None:
    """One server process: its own runtime (storage connections, caches) on the shared sockets."""
    from perimeterdb.server.app import PerimeterApp
    from perimeterdb.server.runtime import open_runtime

    runtime = open_runtime(settings)
    runtime.primary = primary  # only one process runs the background loops (TTL, index backfills)
    app = PerimeterApp(runtime)
    cli_world.configure_app(app, runtime)  # VPC endpoint listeners -> network origins
    # Everything built so far lives as long as the process: move it out of the collector's sight, so
    # that full collections during requests do not walk it again and again (a p99 cost under load).
    gc.collect()
    gc.freeze()
    try:
        _run_loop(_serve_all(_uvicorn_servers(app, settings, sockets)))
    finally:
        runtime.close()


def _supervise(children: list[int]) -> int:
    """The parent of several workers: forward SIGTERM/SIGINT, and stop all when one dies."""

    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    remaining = set(children)
    while remaining:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        remaining.discard(pid)
        if code and remaining:
            status = 1
            forward(signal.SIGTERM, None)
    return status


def serve(settings: Settings) -> int:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    os.umask(0o077)  # every file the server creates (database, logs, keys) is the owner's alone
    from perimeterdb.cli_startup import StartupError, bind_listeners, check_data_dir

    try:  # start-up failures: one line naming the path or address and what to do, exit code 2
        check_data_dir(settings.data_dir)
        asyncio.run(_bootstrap(settings))
        settings = cli_world.prepare_serve(settings)  # --world, and the endpoint and public listeners
        sockets = bind_listeners(settings.listeners, _socket_for)
    except StartupError as exc:
        if settings.log_level == "debug":
            raise
        print(f"perimeterdb: {exc}", file=sys.stderr)
        return 2
    from perimeterdb.server.runtime import usage_line

    print(usage_line(settings), flush=True)
    if settings.workers <= 1:
        _run_worker(settings, sockets, primary=True)
        return 0
    # Several processes accept on the same listening sockets; the kernel spreads connections among them.
    # They share the storage, and the metadata generation keeps their caches coherent.
    children = []
    for index in range(settings.workers):
        pid = os.fork()
        if pid == 0:
            try:
                _run_worker(settings, sockets, primary=index == 0)
            finally:
                os._exit(0)
        children.append(pid)
    return _supervise(children)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perimeterdb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("serve", help="run the server")
    p.add_argument(
        "--data-dir", default="perimeterdb-data", help="where the data lives (default ./perimeterdb-data)"
    )
    p.add_argument(
        "--listen",
        action="append",
        metavar="HOST:PORT",
        help="address to listen on; repeatable (127.0.0.1:8000)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error", "critical"])
    p.add_argument(
        "--durability",
        default="full",
        choices=["full", "normal", "off"],
        help="full: every acknowledged write survives power loss; normal: survives a crash of the process",
    )
    p.add_argument("--key-file", help="the file that seals stored secrets (default DATA_DIR/secret.key)")
    p.add_argument(
        "--credentials-file",
        help="where the first start writes the administrator's key pair (default DATA_DIR/credentials)",
    )
    p.add_argument(
        "--print-credentials-once",
        action="store_true",
        help="print the first start's administrator key pair on stdout and write it nowhere",
    )
    p.add_argument("--ttl-interval", type=float, default=2.0, help="seconds between TTL expiry sweeps")
    p.add_argument(
        "--header-timeout", type=float, default=RequestLimits().header_timeout,
        help="seconds a client has to send a request's headers (default 10)",
    )
    p.add_argument(
        "--body-timeout", type=float, default=RequestLimits().body_timeout,
        help="seconds a client has to send a request's body after its headers (default 60)",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="server processes sharing the listeners (default 1)"
    )
    cli_world.add_serve_arguments(p)
    cli_startup.add_serve_arguments(p)  # --ephemeral
    cli_audit.add_serve_arguments(p)
    cli_simulate.add_parser(commands)
    cli_world.add_parser(commands)
    cli_audit.add_parser(commands)
    cli_guardrails.add_parser(commands)
    cli_breakglass.add_parser(commands)  # `break-glass request|approve|requests|revoke|sessions|…`
    cli_prove.add_parser(commands)  # `prove private|public|not-granted|no-new-access|who-can`
    cli_demo.add_parser(commands)  # `demo private-tables`: a loopback world and its walk-through
    return parser


def main(argv: list[str] | None = None) -> int:
    from perimeterdb.auth.secretbox import KeyFileError

    try:
        return _dispatch(argv)
    except KeyFileError as exc:  # a missing or foreign key file: one line saying what to do, no traceback
        print(f"perimeterdb: {exc}", file=sys.stderr)
        return 2


def _dispatch(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        with cli_startup.ephemeral(args):  # --ephemeral: a temporary data dir, removed at exit
            return serve(settings_from_args(args))
    if args.command == "simulate":
        return cli_simulate.run(args)
    if args.command in ("world", "audit", "guardrails", "break-glass", "prove", "demo"):
        return int(args.handler(args))
    return 2


if __name__ == "__main__":
    sys.exit(main())
