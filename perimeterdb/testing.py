"""perimeterdb for test suites: a real server in a subprocess, on a free port, with a fresh account.

    from perimeterdb.testing import PerimeterServer

    with PerimeterServer() as server:
        ddb = server.client("dynamodb")                   # or boto3.Session(**server.credentials.session_kwargs())
        ddb.list_tables()

As a pytest plugin (registered through the ``pytest11`` entry point, so installing perimeterdb is enough):
the session-scoped fixture ``perimeterdb_server`` is a started ``PerimeterServer``; ``perimeterdb_credentials``
its administrator's ``Credentials``. The server runs ``perimeterdb serve --ephemeral``: its data lives in a
temporary directory removed when it stops. Unlike moto or DynamoDB Local, requests are signed and checked:
use the credentials given, and expect AccessDenied where AWS would deny (docs/testing-with-perimeterdb.md).
"""

from __future__ import annotations

import configparser
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Credentials", "PerimeterServer"]


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = ""
    region: str = "us-east-1"

    def session_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.Session``."""
        return {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key,
                "region_name": self.region}

    def __repr__(self) -> str:  # never print the secret in a test report
        return f"Credentials(access_key_id={self.access_key_id!r}, region={self.region!r})"


def _die_with_parent() -> None:
    """In the server process: Linux sends it SIGTERM when the test process dies, however it dies, so a
    killed test run leaves no server (and, through --ephemeral, no data) behind."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class PerimeterServer:
    """A ``perimeterdb serve --ephemeral`` subprocess (like moto's ``ThreadedMotoServer``)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None, region: str = "us-east-1",
                 world: str | os.PathLike[str] | None = None, extra_args: Sequence[str] = (),
                 start_timeout: float = 60.0) -> None:
        self.host = host
        self.port = port
        self.region = region
        self.world = Path(world) if world is not None else None
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._scratch: Path | None = None
        self._credentials: Credentials | None = None

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            raise RuntimeError("the server is not started")
        return self._credentials

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` on this server, signed with the administrator's key."""
        import boto3

        params: dict[str, Any] = {"endpoint_url": self.endpoint_url, **self.credentials.session_kwargs(), **kwargs}
        return boto3.client(service, **params)

    def start(self) -> PerimeterServer:
        if self.proc is not None:
            return self
        self._scratch = Path(tempfile.mkdtemp(prefix="perimeterdb-test-"))
        fixed = self.port is not None
        for _attempt in range(1 if fixed else 5):
            port = self.port if fixed else _free_port(self.host)
            if self._launch(port):
                self.port = port
                return self
        log = (self._scratch / "server.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"perimeterdb did not start:\n{log}")

    def _launch(self, port: int | None) -> bool:
        assert self._scratch is not None
        credentials = self._scratch / "credentials"
        args = [sys.executable, "-m", "perimeterdb", "serve", "--ephemeral", "--listen", f"{self.host}:{port}",
                "--credentials-file", str(credentials), "--durability", "normal", "--log-level", "warning"]
        if self.world is not None:
            args += ["--world", str(self.world)]
        args += self.extra_args
        with open(self._scratch / "server.log", "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, preexec_fn=_die_with_parent)
        host = f"[{self.host}]" if ":" in self.host else self.host
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://{host}:{port}/", timeout=1) as answer:
                    if answer.status == 200 and credentials.exists():
                        parser = configparser.ConfigParser()
                        parser.read(credentials)
                        self._credentials = Credentials(parser["default"]["aws_access_key_id"],
                                                        parser["default"]["aws_secret_access_key"], self.region)
                        return True
            time.sleep(0.05)
        self._terminate()
        return False

    def _terminate(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # the server removes its ephemeral data directory on the way out
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self) -> None:
        self._terminate()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        self._credentials = None

    def __enter__(self) -> PerimeterServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


try:  # the pytest plugin (entry point pytest11): fixtures only where pytest is installed
    import pytest
except ImportError:  # pragma: no cover - perimeterdb.testing used without pytest
    pass
else:

    @pytest.fixture(scope="session")
    def perimeterdb_server() -> Iterator[PerimeterServer]:
        """A perimeterdb server for the test session (ephemeral data, a fresh account)."""
        with PerimeterServer() as server:
            yield server

    @pytest.fixture(scope="session")
    def perimeterdb_credentials(perimeterdb_server: PerimeterServer) -> Credentials:
        """The administrator's credentials of ``perimeterdb_server``'s account."""
        return perimeterdb_server.credentials
