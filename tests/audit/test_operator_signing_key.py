"""Operator tools that add records to the server's log sign them with the server's key, wherever it is.

A server started with ``--key-file`` on another volume keeps its audit signing key beside that file. A
``break-glass revoke`` that made a key of its own would write digests that ``audit verify`` rejects.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from perimeterdb.audit.keys import KEY_NAME, MissingSigningKey, operator_key_path
from tests.support.server import ServerProcess


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perimeterdb", *args], capture_output=True, text=True,
                          timeout=120)


def test_the_key_is_found_beside_the_key_file_and_never_made(tmp_path: Path) -> None:
    with pytest.raises(MissingSigningKey, match="--key-file"):
        operator_key_path(tmp_path / "data", None)
    (tmp_path / "vol").mkdir()
    (tmp_path / "vol" / KEY_NAME).write_bytes(b"k" * 32)
    assert operator_key_path(tmp_path / "data", str(tmp_path / "vol" / "secret.key")) == tmp_path / "vol" / KEY_NAME
    assert not (tmp_path / "data").exists()


def test_revoke_with_the_key_file_elsewhere_keeps_the_log_verifiable(tmp_path: Path) -> None:
    data, vol = tmp_path / "data", tmp_path / "vol"
    vol.mkdir()
    key_file = vol / "secret.key"
    server = ServerProcess(data, extra_args=["--key-file", str(key_file)]).start()
    try:
        server.client("dynamodb").list_tables()
        without = _cli("break-glass", "revoke", "--all", "--data-dir", str(data))
        assert without.returncode == 2 and "--key-file" in without.stderr, without
        done = _cli("break-glass", "revoke", "--all", "--data-dir", str(data), "--key-file", str(key_file))
        assert done.returncode == 0, done
    finally:
        server.stop()
    assert not (data / "audit" / KEY_NAME).exists() and not (data / KEY_NAME).exists()
    verified = _cli("audit", "verify", "--data-dir", str(data), "--key-file", str(key_file))
    assert verified.returncode == 0, verified.stdout + verified.stderr
