"""Pre-signed DynamoDB requests as raw HTTP/1.1 bytes, for wrk to replay.

A SigV4 signature stays valid for five minutes (the server's allowed clock skew), so a set of requests
signed just before a run can be replayed for its whole length; the harness signs again before every run.
Signing uses ``perimeterdb.auth.sigv4.sign_headers``, the same pure functions the server verifies with.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from perimeterdb.auth import sigv4

TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret: str
    session_token: str | None = None
    region: str = "us-east-1"


def sign_request(host: str, operation: str, body: bytes, creds: Credentials, amz_date: str) -> bytes:
    """One complete HTTP/1.1 request (keep-alive), signed for ``host``."""
    headers = {
        "Host": host,
        "Content-Type": CONTENT_TYPE,
        "X-Amz-Target": TARGET_PREFIX + operation,
        "X-Amz-Date": amz_date,
    }
    if creds.session_token:
        headers["X-Amz-Security-Token"] = creds.session_token
    headers["Authorization"] = sigv4.sign_headers(
        method="POST",
        path="/",
        query_pairs=[],
        headers=headers,
        body=body,
        access_key=creds.access_key,
        secret=creds.secret,
        region=creds.region,
        service="dynamodb",
        amz_date=amz_date,
    )
    headers["Content-Length"] = str(len(body))
    head = "POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


def sign_all(host: str, operation: str, bodies: list[dict[str, Any]], creds: Credentials) -> list[bytes]:
    amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return [sign_request(host, operation, orjson.dumps(b), creds, amz_date) for b in bodies]


def write_request_file(path: Path, requests: list[bytes]) -> None:
    """The replay file: a count line, then each request as a length line and its bytes."""
    parts = [f"{len(requests)}\n".encode()]
    for raw in requests:
        parts.append(f"{len(raw)}\n".encode())
        parts.append(raw)
    path.write_bytes(b"".join(parts))


def send_once(port: int, raw: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    """Send one raw request and return (status, body): checks a request set before wrk replays it."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
