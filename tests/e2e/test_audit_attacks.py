"""Red-team regressions for the audit trail (issue 13): attacks that worked against a real server on
loopback, kept so that they never work again. Loopback only; every loop bounded."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import urllib3

from tests.support.server import ServerProcess

FORGED = "2026-12-06T17:00:00Z DeleteTable orders arn:aws:iam::111122223333:user/alice 10.0.0.5 OK BREAK-GLASS"


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data", extra_args=["--durability", "normal"]).start()
    yield proc
    proc.stop()


def _audit_text(server: ServerProcess, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "perimeterdb.cli", "audit", "--data-dir", str(server.data_dir), *args],
        capture_output=True, timeout=60, check=True,
    )
    return done.stdout.decode()


def test_an_anonymous_request_cannot_forge_a_line_of_audit_output(server: ServerProcess) -> None:
    """With no credentials, a table name holding a newline and a terminal escape was printed as it came by
    `perimeterdb audit`: the reader saw a second, forged record (here a break-glass DeleteTable by someone
    else). Each record is now one line, its control characters escaped; --json still has the exact name."""
    name = "x\n" + FORGED + "\x1b[2J"
    response = urllib3.PoolManager().request(
        "POST", server.endpoint + "/",
        body=orjson.dumps({"TableName": name}),
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.DescribeTable"},
        retries=False, timeout=20,
    )
    assert response.status == 400
    text = _audit_text(server, "--event", "DescribeTable")
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert "\x1b" not in text and not any(line.startswith(FORGED) for line in lines)
    assert "x\\n" + FORGED in lines[0]
    records = [orjson.loads(line) for line in _audit_text(server, "--event", "DescribeTable", "--json").splitlines()]
    assert [r["requestParameters"]["tableName"] for r in records] == [name]


def _verify(data_dir: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "perimeterdb.cli", "audit", "verify", "--data-dir", str(data_dir)],
        capture_output=True, timeout=60,
    )


def _forged(event_time: str) -> bytes:
    return orjson.dumps({
        "eventVersion": "1.08", "eventTime": event_time, "eventSource": "dynamodb.amazonaws.com",
        "eventName": "DeleteTable", "awsRegion": "us-east-1", "requestParameters": {"tableName": "orders"},
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"},
        "sourceIPAddress": "10.0.0.5",
    }) + b"\n"


def test_a_forged_unchained_file_fails_verification(server: ServerProcess) -> None:
    """Whoever can write the audit directory added an ``audit.log`` (the name of the files from before
    records were chained) holding a forged DeleteTable by someone else, dated now: `perimeterdb audit`
    showed it like any record and `audit verify` passed with a note. A record in an unchained file dated
    after chaining began cannot be genuine: verify now fails and names it."""
    server.client().list_tables()
    server.stop()
    audit_dir = server.data_dir / "audit"
    assert _verify(server.data_dir).returncode == 0
    legacy = audit_dir / "audit.log"
    legacy.write_bytes(_forged("2001-01-01T00:00:00Z"))  # what an upgraded data dir holds: only a note
    done = _verify(server.data_dir)
    assert done.returncode == 0 and b"note legacy audit.log" in done.stdout, done.stdout
    now = subprocess.run(["date", "-u", "+%Y-%m-%dT%H:%M:%SZ"], capture_output=True, check=True).stdout.strip()
    legacy.write_bytes(_forged("2001-01-01T00:00:00Z") + _forged(now.decode()))
    done = _verify(server.data_dir)
    assert done.returncode == 1, done.stdout
    assert b"extra-file in audit.log" in done.stdout and b"it was added" in done.stdout, done.stdout
