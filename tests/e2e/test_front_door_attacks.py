"""Red-team regressions for the front door (issue 13): each test is an attack that worked against a real
server on loopback, kept so that it never works again.

Every test sends only to the loopback server it started, and every loop is bounded in count and time.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import urllib3
from botocore.exceptions import ClientError

from tests.support import raw
from tests.support.server import ServerProcess


@pytest.fixture()
def small(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server whose process may hold only 256 file descriptors (set on it once it runs): what 300
    connections exhaust, as 1100 would a server under the common default of 1024."""
    proc = ServerProcess(tmp_path / "data", extra_args=["--durability", "normal"]).start()
    assert proc.proc is not None
    resource.prlimit(proc.proc.pid, resource.RLIMIT_NOFILE, (256, 256))
    yield proc
    proc.stop()


def _list_tables(server: ServerProcess) -> int:
    key, secret = server.admin_keys()
    status, payload, _ = raw.call(server.endpoint, "ListTables", {}, key, secret)
    assert status == 200, payload
    return status


def _open(server: ServerProcess, count: int, first_bytes: bytes = b"") -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        if first_bytes:
            sock.sendall(first_bytes)
        socks.append(sock)
    return socks


def _keep_alive(server: ServerProcess, count: int) -> list[socket.socket]:
    """Connections that each complete one request, read the answer and then stay open, idle."""
    socks = _open(server, count)
    for sock in socks:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    for sock in socks:
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    return socks


@pytest.mark.parametrize("kind", ["silent", "half-head", "keep-alive"])
def test_idle_connections_cannot_exhaust_file_descriptors(small: ServerProcess, kind: str) -> None:
    """300 connections held open by an anonymous client (sending nothing, one byte of a head, or idle
    after a request) used to make accept() fail with EMFILE: every other client was reset. The oldest idle
    connection now makes room for a new one, and a legitimate client is served throughout."""
    if kind == "keep-alive":
        socks = _keep_alive(small, 150) + _open(small, 150)
    else:
        socks = _open(small, 300, b"P" if kind == "half-head" else b"")
    try:
        for _ in range(3):
            assert _list_tables(small) == 200
    finally:
        for sock in socks:
            sock.close()
    assert _list_tables(small) == 200


@pytest.fixture(scope="module")
def solo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("attacks") / "data", extra_args=["--durability", "normal"]).start()
    yield proc
    proc.stop()


def test_a_wildcard_heavy_policy_cannot_freeze_the_server(solo: ServerProcess) -> None:
    """A feature team's own policy with many wildcards (``table/*a*a…*a*b``), matched against a name the
    caller chooses, used to backtrack exponentially inside the event loop (4 wildcards: 8 s for 200
    characters; 12: longer than anyone waits) and so froze the server for every client. The request is now
    decided (denied: the name does not end in b) and answered, and the server answers others meanwhile."""
    iam = solo.client("iam")
    name = "wildcards-" + uuid.uuid4().hex[:8]
    iam.create_user(UserName=name)
    pattern = "arn:aws:dynamodb:*:*:table/" + "*a" * 12 + "*b"
    iam.put_user_policy(
        UserName=name,
        PolicyName="p",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "dynamodb:DescribeTable", "Resource": pattern}]}
        ),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    ddb = solo.client(
        "dynamodb", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    with pytest.raises(ClientError) as denied:
        ddb.describe_table(TableName="a" * 255)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as missing:  # the same policy still allows what it names
        ddb.describe_table(TableName="a" * 200 + "b")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert _list_tables(solo) == 200


def _rss_mb(server: ServerProcess) -> float:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_unknown_access_keys_do_not_grow_the_server(solo: ServerProcess) -> None:
    """Each access key named in a request was looked up and its miss cached for good (until the next
    identity change): 20 000 anonymous requests naming 8 KB random keys grew the server by 140 MB, and
    nothing bounded it. 4000 requests naming 15 KB keys (60 MB of names) now leave it about as it was."""
    date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    conn = http.client.HTTPConnection("127.0.0.1", solo.port, timeout=20)
    _list_tables(solo)
    before = _rss_mb(solo)
    try:
        for _ in range(4000):
            key = "AKIA" + os.urandom(7500).hex()
            conn.request("POST", "/", body=b"{}", headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
                "X-Amz-Date": date,
                "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/{date[:8]}/us-east-1/dynamodb/aws4_request, "
                                 "SignedHeaders=host;x-amz-date;x-amz-target, Signature=" + "0" * 64,
            })
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 400
    finally:
        conn.close()
    grown = _rss_mb(solo) - before
    assert grown < 25, f"the server grew by {grown:.0f} MB"
    assert _list_tables(solo) == 200


def test_unknown_operation_names_do_not_grow_the_server(solo: ServerProcess) -> None:
    """Every X-Amz-Target name was remembered for good (an unbounded cache of operation modules, misses
    included): anonymous requests naming 15 KB random operations grew the server by their size, forever."""
    conn = http.client.HTTPConnection("127.0.0.1", solo.port, timeout=20)
    _list_tables(solo)
    before = _rss_mb(solo)
    try:
        for _ in range(4000):
            conn.request("POST", "/", body=b"{}", headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.List" + os.urandom(7500).hex(),
            })
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 400
    finally:
        conn.close()
    grown = _rss_mb(solo) - before
    assert grown < 25, f"the server grew by {grown:.0f} MB"
    assert _list_tables(solo) == 200


def _peak_mb(server: ServerProcess) -> float:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture()
def fresh(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data", extra_args=["--durability", "normal"]).start()
    yield proc
    proc.stop()


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_BIG_BODIES = {
    # IAM/STS: the form was parsed before the signature: 10 s of the event loop and 800 MB at the peak.
    "form-fields": (_FORM, b"a=&" * (5 * 1024 * 1024)),
    "form-escapes": (_FORM, b"a=" + b"%41" * (5 * 1024 * 1024)),
    # DynamoDB and Organizations: the JSON was parsed before the signature: 16 MiB of small objects.
    "dynamodb-json": ({"Content-Type": "application/x-amz-json-1.0",
                       "X-Amz-Target": "DynamoDB_20120810.ListTables"}, b"[" + b"{}," * (5 * 1024 * 1024) + b"0]"),
    "organizations-json": ({"Content-Type": "application/x-amz-json-1.1",
                            "X-Amz-Target": "AWSOrganizationsV20161128.ListAccounts"},
                           b"[" + b"{}," * (5 * 1024 * 1024) + b"0]"),
}


@pytest.mark.parametrize("kind", sorted(_BIG_BODIES))
def test_an_anonymous_body_is_not_parsed_at_any_cost(fresh: ServerProcess, kind: str) -> None:
    """15 MiB bodies, unsigned, that are cheap to send and dear to parse. They are refused (4xx) without
    becoming hundreds of MB of objects: a form body past 1 MiB is refused before parsing, a JSON body past
    1 MiB is parsed only once its signature holds."""
    headers, body = _BIG_BODIES[kind]
    before = _peak_mb(fresh)
    response = urllib3.PoolManager().request(
        "POST", fresh.endpoint + "/", body=body, headers=headers, retries=False, timeout=60
    )
    assert 400 <= response.status < 500, response.data[:300]
    grown = _peak_mb(fresh) - before
    assert grown < 150, f"the server's peak memory grew by {grown:.0f} MB"
    assert _list_tables(fresh) == 200


def test_a_signed_batch_over_a_mib_is_still_served(fresh: ServerProcess) -> None:
    """The late parse keeps large requests working: a 2.4 MB BatchWriteItem is written; the same body
    with a wrong signature gets the signature's error, and a large malformed one signed gets
    SerializationException."""
    ddb = fresh.client()
    ddb.create_table(TableName="big", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    items = [{"PutRequest": {"Item": {"k": {"S": str(i)}, "v": {"S": "x" * 300_000}}}} for i in range(8)]
    body = orjson.dumps({"RequestItems": {"big": items}})
    assert len(body) > 2 * 1024 * 1024
    key, secret = fresh.admin_keys()
    status, payload, _ = raw.call(fresh.endpoint, "BatchWriteItem", body, key, secret)
    assert status == 200 and payload == {"UnprocessedItems": {}}, payload
    pages = ddb.get_paginator("scan").paginate(TableName="big", Select="COUNT")
    assert sum(page["Count"] for page in pages) == 8
    status, payload, _ = raw.call(fresh.endpoint, "BatchWriteItem", body, key, "wrong" + secret[5:])
    assert status == 400 and payload["__type"].endswith("#InvalidSignatureException"), payload
    status, payload, _ = raw.call(fresh.endpoint, "BatchWriteItem", body[:-1], key, secret)
    assert status == 400 and payload["__type"].endswith("#SerializationException"), payload


@pytest.mark.xfail(strict=True, reason="open: a TLS listener's pending handshakes are not under the connection "
                   "cap (uvloop calls the protocol only after the handshake, which may take 60 s)")
def test_idle_connections_to_a_tls_listener_cannot_exhaust_file_descriptors(tmp_path: Path) -> None:
    """300 connections to a TLS listener that never start their handshake hold 300 descriptors for the
    handshake's timeout (60 s), outside the cap: a 256-descriptor server then resets every client on every
    listener. Kept as a strict xfail: it passes, and so fails the suite, the day this is closed."""
    from tests.e2e.test_tls import _self_signed
    from tests.support.server import free_port

    cert, key = _self_signed(tmp_path)
    tls_port = free_port()
    world = {"version": 1, "regions": ["us-east-1"],
             "accounts": {"main": {"id": "444455556666", "name": "main"}},
             "network": {"public_listeners": [
                 {"listen": f"127.0.0.1:{tls_port}", "tls": {"cert": str(cert), "key": str(key)}}]}}
    (tmp_path / "world.yaml").write_text(json.dumps(world))
    server = ServerProcess(tmp_path / "data", extra_args=["--world", str(tmp_path / "world.yaml")]).start()
    socks: list[socket.socket] = []
    try:
        assert server.proc is not None
        resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (256, 256))
        socks = [socket.create_connection(("127.0.0.1", tls_port), timeout=10) for _ in range(300)]
        time.sleep(1)  # the server accepts them all (and runs out of descriptors) before the client comes
        assert _list_tables(server) == 200
    finally:
        for sock in socks:
            sock.close()
        server.stop()
