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
