"""One frozen Settings value: everything the server was told at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Listener:
    host: str
    port: int
    tls: tuple[str, str] | None = None  # (certificate file, key file): serve HTTPS on this address

    @classmethod
    def parse(cls, text: str) -> Listener:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"--listen takes HOST:PORT, not {text!r}")
        return cls(host.strip("[]") or "127.0.0.1", int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("perimeterdb-data")
    listeners: tuple[Listener, ...] = (Listener("127.0.0.1", 8000),)
    log_level: str = "info"
    durability: str = "full"  # full | normal | off
    key_file: Path | None = None  # defaults to DATA_DIR/secret.key
    default_region: str = "us-east-1"
    ttl_interval: float = 2.0
    workers: int = 1
    world_file: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "perimeterdb.sqlite3"

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "credentials"

    @property
    def secret_key_path(self) -> Path:
        return self.key_file or self.data_dir / "secret.key"
