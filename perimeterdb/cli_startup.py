"""Start-up failures of ``perimeterdb serve`` as one line each, naming the address or path and what to do
(exit code 2; the traceback only with ``--log-level debug``).

- ``check_data_dir``: the data directory is a file, cannot be created, or is not writable;
- ``bind_listeners``: a listener's address is in use (whether given with ``--listen`` or stored: a VPC
  endpoint or public listener of an applied world), is not an address of this host, or needs privileges.

A plain ``serve`` binds every listener of the stored network (a world applied earlier): a VPC endpoint
whose address this host does not have is a start-up error, not silently skipped, because serving without
it would leave the VPC's clients without their endpoint. The line says which endpoint and what to do
(docs/getting-started.md).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

# (host, port) -> what the listener is for, filled by cli_world.prepare_serve from the stored network.
LISTENER_ROLES: dict[tuple[str, int], str] = {}


class StartupError(Exception):
    """One line for the operator: what failed, where, and what to do."""


def check_data_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise StartupError(f"the data directory {path} is a file, not a directory: remove it or choose "
                           "another --data-dir")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create the data directory {path}: {exc.strerror}: create it (owned by "
                           "this user) or choose another --data-dir") from None
    try:  # os.access says yes to root even on a read-only file system: try a real write
        with tempfile.NamedTemporaryFile(dir=path, prefix=".perimeterdb-write-check-"):
            pass
    except OSError as exc:
        raise StartupError(f"the data directory {path} is not writable by this user (uid {os.getuid()}): "
                           f"{exc.strerror}: fix its owner or permissions, or choose another --data-dir") from None


def _what(host: str, port: int) -> str:
    role = LISTENER_ROLES.get((host, port))
    return f"{host}:{port}" + (f" ({role})" if role else "")


def bind_error(host: str, port: int, exc: OSError) -> StartupError:
    where = _what(host, port)
    stored = (host, port) in LISTENER_ROLES
    change = ("change its listen address in the world file and apply it" if stored
              else "choose another --listen")
    if exc.errno == errno.EADDRINUSE:
        return StartupError(f"cannot listen on {where}: the address is already in use (another perimeterdb "
                            f"or another program): stop it, or {change}")
    if exc.errno == errno.EADDRNOTAVAIL:
        return StartupError(f"cannot listen on {where}: {host} is not an address of this host: add it "
                            f"(e.g. `ip addr add {host}/24 dev IFACE`), or {change}")
    if exc.errno == errno.EACCES:
        return StartupError(f"cannot listen on {where}: port {port} needs privileges: use a port above 1023, "
                            f"or {change}")
    return StartupError(f"cannot listen on {where}: {exc.strerror or exc}: {change}")


def bind_listeners(listeners: Sequence[Any], make: Callable[[Any], Any]) -> list[Any]:
    """Bind every listener (``make(listener)``); the first failure closes the ones bound and is raised as a
    ``StartupError``."""
    sockets: list[Any] = []
    try:
        for listener in listeners:
            try:
                sockets.append(make(listener))
            except OSError as exc:
                raise bind_error(listener.host, listener.port, exc) from exc
    except StartupError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def add_serve_arguments(parser: Any) -> None:
    parser.add_argument("--ephemeral", action="store_true",
                        help="keep the data in a temporary directory removed at exit (for test suites); "
                             "replaces --data-dir")


@contextlib.contextmanager
def ephemeral(args: Any) -> Iterator[None]:
    """``serve --ephemeral``: a fresh temporary data directory (0700), removed when the server exits (by
    SIGTERM, SIGINT or a start-up failure; only SIGKILL leaves it behind, in the system's temp directory)."""
    if not getattr(args, "ephemeral", False):
        yield
        return
    scratch = tempfile.mkdtemp(prefix="perimeterdb-ephemeral-")
    args.data_dir = scratch
    print(f"perimeterdb: ephemeral data directory {scratch} (removed at exit)", file=sys.stderr, flush=True)
    owner = os.getpid()

    def leave(signum: int, _frame: object) -> None:  # uvicorn re-raises the SIGTERM it handled, at its exit
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        if os.getpid() == owner:  # not in a forked worker
            shutil.rmtree(scratch, ignore_errors=True)
            signal.signal(signal.SIGTERM, previous)
