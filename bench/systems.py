"""The systems under test, each a process on 127.0.0.1 with the credentials its requests are signed with.

- ``perimeterdb-authz``: perimeterdb with authorization fully on (configured by ``authz_setup``);
- ``perimeterdb-admin``: perimeterdb called with the bootstrap admin's key;
- ``moto``: ``moto_server`` from bench/.venv-peers;
- ``dynalite``: dynalite (Node) with a LevelDB store on disk;
- ``raw-asgi``: an empty ASGI handler on uvicorn + httptools, the HTTP ceiling.
"""

from __future__ import annotations

import configparser
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from common import DYNALITE_CLI, PEERS_VENV, PROJECT_PYTHON, ROOT, Process, free_port, wait_for_port
from presign import Credentials
from workloads import seed_items, table_specs

CLIENT_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"},
    connect_timeout=10,
    read_timeout=120,
    max_pool_connections=4,
)


@dataclass
class System:
    name: str
    label: str  # what RESULTS.md calls it
    port: int
    process: Process
    creds: Credentials
    data_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    seeded: bool = False
    public_port: int | None = None  # when ``port`` is a VPC endpoint's listener
    world_key: tuple[str, str] | None = None  # the world file's caller key (authz system)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(
        self, service: str = "dynamodb", creds: Credentials | None = None, *, port: int | None = None
    ) -> Any:
        c = creds or self.creds
        return boto3.client(
            service,
            endpoint_url=f"http://127.0.0.1:{port}" if port else self.endpoint,
            region_name=c.region,
            aws_access_key_id=c.access_key,
            aws_secret_access_key=c.secret,
            aws_session_token=c.session_token,
            config=CLIENT_CONFIG,
        )

    def stop(self) -> None:
        self.process.stop()


def admin_credentials(data_dir: Path) -> Credentials:
    parser = configparser.ConfigParser()
    parser.read(data_dir / "credentials")
    section = parser["default"]
    return Credentials(section["aws_access_key_id"], section["aws_secret_access_key"])


def start_perimeterdb(
    work: Path, name: str, label: str, extra_args: list[str] | None = None, *, data_dir: Path | None = None
) -> System:
    port = free_port()
    data_dir = data_dir or work / name / "data"
    (work / name).mkdir(parents=True, exist_ok=True)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    args = [
        str(PROJECT_PYTHON),
        "-m",
        "perimeterdb.cli",
        "serve",
        "--data-dir",
        str(data_dir),
        "--listen",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        *(extra_args or []),
    ]
    proc = Process(name, args, work / name / "server.log", cwd=ROOT).start()
    wait_for_port(port, proc, timeout=60)
    return System(name, label, port, proc, admin_credentials(data_dir), data_dir)


def start_moto(work: Path) -> System:
    port = free_port()
    args = [str(PEERS_VENV / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    proc = Process("moto", args, work / "moto" / "server.log").start()
    wait_for_port(port, proc, timeout=60)
    return System("moto", "moto_server", port, proc, Credentials("testing", "testing"))


def start_dynalite(work: Path) -> System:
    port = free_port()
    store = work / "dynalite" / "leveldb"
    store.mkdir(parents=True, exist_ok=True)
    args = [
        "node",
        str(DYNALITE_CLI),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--path",
        str(store),
        "--createTableMs",
        "0",
        "--deleteTableMs",
        "0",
        "--updateTableMs",
        "0",
    ]
    proc = Process("dynalite", args, work / "dynalite" / "server.log").start()
    wait_for_port(port, proc, timeout=60)
    return System("dynalite", "dynalite", port, proc, Credentials("testing", "testing"))


def start_raw_asgi(work: Path, workers: int = 1) -> System:
    port = free_port()
    args = [str(PROJECT_PYTHON), str(ROOT / "bench" / "raw_asgi.py"), str(port), str(workers)]
    proc = Process("raw-asgi", args, work / "raw-asgi" / "server.log").start()
    wait_for_port(port, proc, timeout=60)
    return System("raw-asgi", "raw ASGI (uvicorn+httptools)", port, proc, Credentials("testing", "testing"))


def create_tables(system: System, client: Any | None = None) -> None:
    client = client or system.client()
    for spec in table_specs():
        try:
            client.create_table(**spec)
        except client.exceptions.ResourceInUseException:
            pass
    deadline = time.monotonic() + 30
    for spec in table_specs():
        while time.monotonic() < deadline:
            status = client.describe_table(TableName=spec["TableName"])["Table"]["TableStatus"]
            if status == "ACTIVE":
                break
            time.sleep(0.1)


def seed(system: System, client: Any | None = None, *, create: bool = True) -> None:
    """Create the tables (unless they exist already) and load the seed items with BatchWriteItem."""
    client = client or system.client()
    if create:
        create_tables(system, client)
    for table, items in seed_items().items():
        for start in range(0, len(items), 25):
            chunk = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
            for _ in range(10):
                left = client.batch_write_item(RequestItems=chunk).get("UnprocessedItems") or {}
                if not left:
                    break
                chunk = left
    system.seeded = True
