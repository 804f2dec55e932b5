"""A real perimeterdb server process for tests: started on a free port, stopped or killed on demand."""

from __future__ import annotations

import configparser
import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

CLIENT_CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM this server when the test process dies, however it dies, so an
    interrupted test run leaves no server behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port() -> int:
    """A free port below the ephemeral range (see shared/reference/measurements.md)."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


@dataclass
class ServerProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    listen: list[str] | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> ServerProcess:
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"
        listen = self.listen or [f"127.0.0.1:{self.port}"]
        args = [sys.executable, "-m", "perimeterdb.cli", "serve", "--data-dir", str(self.data_dir)]
        for item in listen:
            args += ["--listen", item]
        args += self.extra_args
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.endpoint + "/", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def admin_keys(self) -> tuple[str, str]:
        parser = configparser.ConfigParser()
        parser.read(self.data_dir / "credentials")
        return parser["default"]["aws_access_key_id"], parser["default"]["aws_secret_access_key"]

    def client(self, service: str = "dynamodb", *, region: str = "us-east-1", **kwargs: Any) -> Any:
        key, secret = self.admin_keys()
        params: dict[str, Any] = {
            "endpoint_url": self.endpoint,
            "region_name": region,
            "aws_access_key_id": key,
            "aws_secret_access_key": secret,
            "config": CLIENT_CONFIG,
        }
        params.update(kwargs)
        return boto3.client(service, **params)
