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
class RequestLimits:
    """What the front door (server/front_door.py) lets in, checked before anything is inflated, parsed or
    stored. AWS documents no figures for its API front ends; these are the usual web-server bounds (nginx
    and Apache use 8-16 KiB per header line), and DynamoDB's own 16 MiB request limit for the body."""

    max_request_line: int = 16 * 1024  # the request target (path and query string), in bytes: 414 beyond
    max_header_line: int = 16 * 1024  # one header, name and value: 431 beyond
    max_header_bytes: int = 64 * 1024  # the request line and every header together: 431 beyond
    max_body_bytes: int = 16 * 1024 * 1024  # announced or received, before decoding: 413 beyond
    max_decoded_bytes: int = 16 * 1024 * 1024  # a gzip or deflate body once inflated: 413 beyond
    # A JSON body is parsed before its signature is checked (DynamoDB's order of errors) only up to this size;
    # a larger one only once its sender is known: 16 MiB of "[{},{},...]" is 320 MB of objects. A form body
    # (IAM, STS) is refused past it (400 MalformedQueryString): 16 MiB of "a=&a=&..." took 10 s and 800 MB.
    max_early_parse_bytes: int = 1024 * 1024
    max_form_fields: int = 10_000  # name=value pairs of a form body or query string (IAM, STS)
    header_timeout: float = 10.0  # seconds from the connection (or the request's first byte) to its last header
    body_timeout: float = 60.0  # seconds from the last header to the body's last byte


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("perimeterdb-data")
    listeners: tuple[Listener, ...] = (Listener("127.0.0.1", 8000),)
    log_level: str = "info"
    durability: str = "full"  # full | normal | off
    key_file: Path | None = None  # defaults to DATA_DIR/secret.key
    credentials_file: Path | None = None  # where the first start writes the admin key pair (DATA_DIR/credentials)
    print_credentials_once: bool = False  # print the first start's admin key pair, write it nowhere
    default_region: str = "us-east-1"
    ttl_interval: float = 2.0
    workers: int = 1
    world_file: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)
    limits: RequestLimits = RequestLimits()

    @property
    def database_path(self) -> Path:
        return self.data_dir / "perimeterdb.sqlite3"

    @property
    def credentials_path(self) -> Path:
        return self.credentials_file or self.data_dir / "credentials"

    @property
    def secret_key_path(self) -> Path:
        return self.key_file or self.data_dir / "secret.key"
