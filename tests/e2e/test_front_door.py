"""The front door closes early: request limits enforced on a real server before anything is inflated,
parsed or stored (server/front_door.py, server/content_encoding.py).

Every test sends only to the loopback server it started, and every loop is bounded in count and time.
"""

from __future__ import annotations

import gzip
import os
import socket
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import raw
from tests.support.server import ServerProcess

TARGET = "DynamoDB_20120810.ListTables"
JSON = "application/x-amz-json-1.0"


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with short timeouts, so that slow clients are cut off within the test's patience."""
    data_dir: Path = tmp_path_factory.mktemp("front-door") / "data"
    proc = ServerProcess(
        data_dir,
        extra_args=["--durability", "normal", "--header-timeout", "1.5", "--body-timeout", "2"],
    ).start()
    yield proc
    proc.stop()


def _connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    return sock


def _send(sock: socket.socket, data: bytes) -> bool:
    """Send what the server lets us; False once it has closed the connection on us."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server says before it closes the connection (the socket's timeout bounds the wait;
    a server that keeps the connection open fails the test with socket.timeout)."""
    data = b""
    try:
        while True:
            piece = sock.recv(65536)
            if not piece:
                return data
            data += piece
    except ConnectionResetError:
        return data


def _status(answer: bytes) -> int | None:
    if not answer.startswith(b"HTTP/1.1 "):
        return None
    return int(answer[9:12])


def _assert_still_serving(server: ServerProcess) -> None:
    key, secret = server.admin_keys()
    status, payload, _ = raw.call(server.endpoint, "ListTables", {}, key, secret)
    assert status == 200, payload


def _refused_with(sock: socket.socket, status: int) -> None:
    answer = _read_until_closed(sock)
    # The answer may be lost to a reset when the server closes with our unread bytes in its buffer;
    # what must never happen is any other answer, or the connection staying open.
    assert answer == b"" or _status(answer) == status, answer[:200]


def test_a_4mb_header_is_refused_before_it_is_read(door: ServerProcess) -> None:
    sock = _connect(door)
    _send(sock, b"POST / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (4 << 20) + b"\r\n\r\n")
    _refused_with(sock, 431)
    _assert_still_serving(door)


def test_one_header_line_over_16k_is_refused(door: ServerProcess) -> None:
    sock = _connect(door)
    assert _send(sock, b"POST / HTTP/1.1\r\nHost: x\r\nUser-Agent: " + b"u" * 17000 + b"\r\n\r\n")
    assert _status(_read_until_closed(sock)) == 431


def test_many_small_headers_over_64k_are_refused(door: ServerProcess) -> None:
    sock = _connect(door)
    head = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(1000))
    _send(sock, b"POST / HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n")
    _refused_with(sock, 431)


def test_a_long_request_target_is_refused(door: ServerProcess) -> None:
    sock = _connect(door)
    assert _send(sock, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _status(_read_until_closed(sock)) == 414


def test_headers_within_the_limits_are_served(door: ServerProcess) -> None:
    key, secret = door.admin_keys()
    body = b"{}"
    headers = raw.signed_headers(door.endpoint, TARGET, body, key, secret)
    headers["X-Padding"] = "p" * 15000  # unsigned, not x-amz-*: allowed, and within one line's limit
    status, payload, _ = raw.post(door.endpoint, headers, body)
    assert status == 200, payload


def test_slowloris_head_is_cut_off(door: ServerProcess) -> None:
    """One byte at a time never completes a head: the connection is closed after the header timeout,
    however often a byte arrives (the loop is bounded: 40 bytes, 0.25 s apart)."""
    sock = _connect(door)
    assert _send(sock, b"POST / HTTP/1.1\r\n")
    closed = False
    for _ in range(40):
        time.sleep(0.25)
        if not _send(sock, b"X"):
            closed = True
            break
    sock.settimeout(20)
    answer = _read_until_closed(sock)
    assert closed or answer, "the connection stayed open for 10 s of trickled header bytes"
    assert answer == b"" or _status(answer) == 408, answer[:200]
    _assert_still_serving(door)


def test_a_silent_connection_is_closed(door: ServerProcess) -> None:
    sock = _connect(door)
    assert _read_until_closed(sock) == b""  # closed without a word (a timeout here fails the test)


def test_a_slow_body_is_cut_off(door: ServerProcess) -> None:
    sock = _connect(door)
    assert _send(
        sock,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: " + JSON.encode() + b"\r\n"
        b"X-Amz-Target: " + TARGET.encode() + b"\r\nContent-Length: 100\r\n\r\n",
    )
    for _ in range(40):
        time.sleep(0.25)
        if not _send(sock, b" "):
            break
    _refused_with(sock, 408)


def test_an_announced_body_over_16mb_is_refused_unread(door: ServerProcess) -> None:
    sock = _connect(door)
    assert _send(
        sock,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: " + JSON.encode() + b"\r\n"
        b"X-Amz-Target: " + TARGET.encode() + b"\r\nContent-Length: 999999999\r\n\r\n{}",
    )
    assert _status(_read_until_closed(sock)) == 413


def test_a_chunked_body_over_16mb_is_refused_while_read(door: ServerProcess) -> None:
    sock = _connect(door)
    assert _send(
        sock,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: " + JSON.encode() + b"\r\n"
        b"X-Amz-Target: " + TARGET.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    chunk = b"100000\r\n" + b" " * 0x100000 + b"\r\n"  # 1 MiB
    sent = 0
    while sent < 20 and _send(sock, chunk):  # at most 20 MiB
        sent += 1
    _refused_with(sock, 413)
    _assert_still_serving(door)


def test_gzip_bomb_is_not_inflated_before_authentication(door: ServerProcess) -> None:
    """An unsigned ~1 MB body that inflates to 1 GiB: refused for its missing signature, never inflated."""
    bomb = gzip.compress(b" " * (1 << 30), 9)
    assert len(bomb) < 2 << 20
    headers = {"Content-Type": JSON, "X-Amz-Target": TARGET, "Content-Encoding": "gzip"}
    status, payload, _ = raw.post(door.endpoint, headers, bomb)
    assert status == 400, payload
    assert payload["__type"].endswith("#MissingAuthenticationTokenException"), payload
    rss_kb = int(Path(f"/proc/{door.proc.pid}/status").read_text().split("VmHWM:")[1].split()[0])
    assert rss_kb < 512 * 1024, f"peak memory {rss_kb} kB after a gzip bomb"
    _assert_still_serving(door)


def test_signed_gzip_bomb_stops_inflating_at_16mb(door: ServerProcess) -> None:
    """Signed, the same bomb is inflated only up to the 16 MiB limit, then refused with 413."""
    key, secret = door.admin_keys()
    bomb = gzip.compress(b" " * (1 << 30), 9)
    headers = raw.signed_headers(door.endpoint, TARGET, bomb, key, secret)
    headers["Content-Encoding"] = "gzip"
    status, _, _ = raw.post(door.endpoint, headers, bomb)
    assert status == 413
    rss_kb = int(Path(f"/proc/{door.proc.pid}/status").read_text().split("VmHWM:")[1].split()[0])
    assert rss_kb < 512 * 1024, f"peak memory {rss_kb} kB after a signed gzip bomb"


def test_signed_gzip_body_inflating_past_16mb_is_refused(door: ServerProcess) -> None:
    key, secret = door.admin_keys()
    body = gzip.compress(b'{"Limit": 5' + b" " * (17 << 20) + b"}")
    headers = raw.signed_headers(door.endpoint, TARGET, body, key, secret)
    headers["Content-Encoding"] = "gzip"
    status, _, _ = raw.post(door.endpoint, headers, body)
    assert status == 413


def _signed_encoded(server: ServerProcess, body: bytes, encoding: str) -> tuple[int, Any]:
    key, secret = server.admin_keys()
    headers = raw.signed_headers(server.endpoint, TARGET, body, key, secret)
    headers["Content-Encoding"] = encoding
    status, payload, _ = raw.post(server.endpoint, headers, body)
    return status, payload


def test_zlib_deflate_is_accepted(door: ServerProcess) -> None:
    status, payload = _signed_encoded(door, zlib.compress(orjson.dumps({"Limit": 5})), "deflate")
    assert status == 200, payload
    assert "TableNames" in payload


def test_gzip_of_two_members_is_accepted(door: ServerProcess) -> None:
    body = orjson.dumps({"Limit": 5})
    status, payload = _signed_encoded(door, gzip.compress(body[:5]) + gzip.compress(body[5:]), "gzip")
    assert status == 200, payload


def test_raw_deflate_is_accepted(door: ServerProcess) -> None:
    deflater = zlib.compressobj(wbits=-15)
    data = deflater.compress(orjson.dumps({"Limit": 5})) + deflater.flush()
    status, payload = _signed_encoded(door, data, "deflate")
    assert status == 200, payload


@pytest.mark.parametrize(
    ("data", "encoding", "needle"),
    [
        (b"{}", "br", "Unsupported Content-Encoding"),
        (b"{}", "gzip, gzip", "Unsupported Content-Encoding"),
        (b"{}", "gzip", "could not be decompressed"),
        (b"", "gzip", "could not be decompressed"),
        (gzip.compress(b"{}") + b"junk", "gzip", "data after its compressed content"),
        (gzip.compress(b"{}")[:-1], "gzip", "could not be decompressed"),
        (zlib.compress(b"{}") + b"junk", "deflate", "data after its compressed content"),
    ],
)
def test_bad_encodings_are_a_4xx_not_a_5xx(
    door: ServerProcess, data: bytes, encoding: str, needle: str
) -> None:
    status, payload = _signed_encoded(door, data, encoding)
    assert status == 400, payload
    assert payload["__type"].endswith("#SerializationException"), payload
    assert needle in payload["Message"], payload


def test_random_compressed_junk_never_gives_a_5xx(door: ServerProcess) -> None:
    """Bounded: 40 bodies of random bytes under each encoding, signed."""
    for i in range(40):
        junk = os.urandom(1 + i * 7)
        for encoding in ("gzip", "deflate"):
            status, payload = _signed_encoded(door, junk, encoding)
            assert 400 <= status < 500, (encoding, junk, payload)
