"""Secrets and the key file: the server refuses a missing or foreign key file instead of silently making a
new one; a sealed secret that does not open is an unknown key (never a 500); the administrator's key pair
can be printed once instead of written into the data directory."""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.server import CLIENT_CONFIG, ServerProcess, free_port


def _serve_once(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``serve`` expecting it to refuse to start (bounded by a timeout)."""
    args = [sys.executable, "-m", "perimeterdb.cli", "serve", "--data-dir", str(data_dir),
            "--listen", f"127.0.0.1:{free_port()}", "--durability", "normal", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def _client(server: ServerProcess, key: str, secret: str, service: str = "dynamodb") -> Any:
    return boto3.client(service, endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=CLIENT_CONFIG)


def _refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("perimeterdb: ")]
    assert len(lines) == 1 and all(w in lines[0] for w in words), done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_a_missing_or_foreign_key_file_stops_the_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, extra_args=["--durability", "normal"]).start()
    key_id, secret = server.admin_keys()
    assert server.client().list_tables()["TableNames"] == []
    server.stop()
    assert (data / "secret.check").stat().st_mode & 0o777 == 0o600
    original = (data / "secret.key").read_bytes()

    # The key file's volume did not mount: refuse, and say what to do; nothing is created.
    (data / "secret.key").unlink()
    _refused(_serve_once(data), "is missing", "--key-file", "restore")
    assert not (data / "secret.key").exists()
    # A key file that is not the one the secrets were sealed under: refuse.
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    other.chmod(0o600)
    _refused(_serve_once(data, "--key-file", str(other)), "does not match", "--key-file")
    # A key file of the wrong size: refuse too.
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 7)
    _refused(_serve_once(data, "--key-file", str(short)), "32 bytes")
    _refused(_serve_once(data, "--key-file", str(tmp_path)), "cannot be read")  # a directory

    # The right key, from another volume: the old access key works again.
    moved = tmp_path / "volume" / "secret.key"
    moved.parent.mkdir()
    moved.write_bytes(original)
    moved.chmod(0o600)
    server.extra_args = ["--durability", "normal", "--key-file", str(moved)]
    server.start()
    try:
        assert _client(server, key_id, secret).list_tables()["TableNames"] == []
    finally:
        server.stop()


def test_a_data_dir_from_before_the_check_is_probed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, extra_args=["--durability", "normal"]).start()
    key_id, secret = server.admin_keys()
    server.stop()
    (data / "secret.check").unlink()  # as a data directory made before the check existed
    original = (data / "secret.key").read_bytes()
    (data / "secret.key").write_bytes(os.urandom(32))
    _refused(_serve_once(data), "does not open the secrets")
    assert not (data / "secret.check").exists(), "a refused start leaves no check behind"
    (data / "secret.key").write_bytes(original)
    server.start()
    try:
        assert _client(server, key_id, secret).list_tables()["TableNames"] == []
        assert (data / "secret.check").exists()
    finally:
        server.stop()


def test_a_sealed_secret_that_does_not_open_is_an_unknown_key_not_a_500(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=["--durability", "normal"]).start()
    try:
        iam = server.client("iam")
        iam.create_user(UserName="damaged")
        key = iam.create_access_key(UserName="damaged")["AccessKey"]
        iam.create_user(UserName="fine")
        fine = iam.create_access_key(UserName="fine")["AccessKey"]
        server.stop()
        conn = sqlite3.connect(server.data_dir / "perimeterdb.sqlite3", timeout=10)
        try:
            hk = key["AccessKeyId"].encode()
            (raw,) = conn.execute("SELECT val FROM rows WHERE space=? AND hk=?", ("meta:access-keys", hk)).fetchone()
            record = json.loads(raw)
            sealed = bytearray(base64.b64decode(record["secret"]))
            sealed[-1] ^= 0x01  # one flipped bit: the tag no longer verifies
            record["secret"] = base64.b64encode(bytes(sealed)).decode()
            conn.execute("UPDATE rows SET val=? WHERE space=? AND hk=?",
                         (json.dumps(record).encode(), "meta:access-keys", hk))
            conn.commit()
        finally:
            conn.close()
        server.start()
        damaged = _client(server, key["AccessKeyId"], key["SecretAccessKey"])
        for _ in range(3):
            with pytest.raises(ClientError) as exc:
                damaged.list_tables()
            response = exc.value.response
            assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
            assert response["Error"]["Code"] == "UnrecognizedClientException"
        sts = _client(server, fine["AccessKeyId"], fine["SecretAccessKey"], "sts")
        assert sts.get_caller_identity()["Arn"].endswith(":user/fine")
        log = server.log_path.read_text() if server.log_path else ""
        assert log.count("does not open") == 1, "logged once"
        assert key["SecretAccessKey"] not in log
    finally:
        server.stop()


def test_print_credentials_once_keeps_no_secret_on_disk(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, extra_args=["--durability", "normal", "--print-credentials-once"]).start()
    try:
        out = server.log_path.read_text() if server.log_path else ""
        key_id = re.search(r"aws_access_key_id = (\S+)", out)
        secret = re.search(r"aws_secret_access_key = (\S+)", out)
        assert key_id and secret
        assert not (data / "credentials").exists()
        for path in data.rglob("*"):
            if path.is_file():
                assert secret.group(1).encode() not in path.read_bytes(), path
        assert _client(server, key_id.group(1), secret.group(1)).list_tables()["TableNames"] == []
        server.stop()
        before = len(out)
        server.start()
        again = (server.log_path.read_text() if server.log_path else "")[before:]
        assert secret.group(1) not in again and "aws_secret_access_key" not in again, "printed only once"
    finally:
        server.stop()


def test_credentials_file_elsewhere_and_the_default_is_warned_about(tmp_path: Path) -> None:
    outside = tmp_path / "secrets" / "admin.ini"
    outside.parent.mkdir()
    data = tmp_path / "data"
    server = ServerProcess(data, extra_args=["--durability", "normal", "--credentials-file", str(outside)]).start()
    try:
        assert outside.stat().st_mode & 0o777 == 0o600 and not (data / "credentials").exists()
        text = outside.read_text()
        key_id = re.search(r"aws_access_key_id = (\S+)", text)
        secret = re.search(r"aws_secret_access_key = (\S+)", text)
        assert key_id and secret
        assert _client(server, key_id.group(1), secret.group(1)).list_tables()["TableNames"] == []
        assert "plain text" not in (server.log_path.read_text() if server.log_path else "")
    finally:
        server.stop()
    default = ServerProcess(tmp_path / "plain", extra_args=["--durability", "normal"]).start()
    try:
        assert (default.data_dir / "credentials").stat().st_mode & 0o777 == 0o600
        log = default.log_path.read_text() if default.log_path else ""
        assert "holds the administrator's secret access key in plain text" in log
    finally:
        default.stop()


def test_a_damaged_mfa_seed_refuses_every_code_without_a_500(tmp_path: Path) -> None:
    from perimeterdb.auth import totp
    from tests.e2e.conftest_identity import enable_virtual_mfa

    server = ServerProcess(tmp_path / "data", extra_args=["--durability", "normal"]).start()
    try:
        iam = server.client("iam")
        iam.create_user(UserName="mfa-user")
        key = iam.create_access_key(UserName="mfa-user")["AccessKey"]
        serial, seed = enable_virtual_mfa(iam, "mfa-user")
        server.stop()
        conn = sqlite3.connect(server.data_dir / "perimeterdb.sqlite3", timeout=10)
        try:
            (raw,) = conn.execute("SELECT val FROM rows WHERE space=? AND hk=?",
                                  ("meta:iam-mfa", serial.encode())).fetchone()
            record = json.loads(raw)
            sealed = bytearray(base64.b64decode(record["seed"]))
            sealed[-1] ^= 0x01
            record["seed"] = base64.b64encode(bytes(sealed)).decode()
            conn.execute("UPDATE rows SET val=? WHERE space=? AND hk=?",
                         (json.dumps(record).encode(), "meta:iam-mfa", serial.encode()))
            conn.commit()
        finally:
            conn.close()
        server.start()
        sts = _client(server, key["AccessKeyId"], key["SecretAccessKey"], "sts")
        with pytest.raises(ClientError) as exc:
            sts.get_session_token(SerialNumber=serial, TokenCode=totp.totp(seed, time.time()))
        response = exc.value.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert response["Error"]["Code"] == "AccessDenied"
    finally:
        server.stop()
