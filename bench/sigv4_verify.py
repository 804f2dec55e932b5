"""Micro-benchmark of ``perimeterdb.auth.verify.authenticate`` on a boto3-like signed DynamoDB POST.

No server: the request is signed in-process by ``bench/presign.py`` (as wrk's requests are) and ``authenticate`` runs against a trivial async credential callback, all inside one
event loop so the figure is the verifier's own cost plus one ``await``. Prints microseconds per call, best
of several rounds, for a long-term key and for a session (x-amz-security-token) credential.

The same signed request is verified over and over, so the verifier's caches (parsed Authorization head,
parsed X-Amz-Date, signing key) always hit, as they do for a busy client; in a server the date misses once
per second and client, which adds about 2 us to that one request.

    .venv/bin/python bench/sigv4_verify.py [--calls 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

import orjson
from presign import Credentials, sign_request

from perimeterdb.auth import verify
from perimeterdb.auth.credentials import CredentialRecord
from perimeterdb.auth.principal import Principal

ACCESS_KEY = "AKIAEXAMPLEEXAMPLE01"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_KEY = "ASIAEXAMPLEEXAMPLE02"
SESSION_TOKEN = "FwoGZXIvYXdzEBYaD" + "x" * 300  # real STS tokens are a few hundred characters
PRINCIPAL = Principal(
    arn="arn:aws:iam::111122223333:user/alice",
    principal_arn="arn:aws:iam::111122223333:user/alice",
    account="111122223333",
    kind="User",
    userid="AIDAEXAMPLE",
)


def signed_parts(access_key: str, token: str | None, body: bytes) -> verify.HttpRequestParts:
    """A GetItem request with boto3's header set, as the server hands it to the verifier."""
    amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    raw = sign_request("127.0.0.1:8000", "GetItem", body, Credentials(access_key, SECRET, token), amz_date)
    head = raw.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    lowered: dict[str, list[str]] = {}
    for line in head:
        name, _, value = line.partition(": ")
        lowered.setdefault(name.lower(), []).append(value)
    # Unsigned headers a real client also sends; the verifier must skip them.
    lowered["user-agent"] = ["Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux lang/python#3.11.7"]
    lowered["accept-encoding"] = ["identity"]
    return verify.HttpRequestParts("POST", "/", [], lowered, body)


async def time_authenticate(
    parts: verify.HttpRequestParts, record: CredentialRecord, calls: int, rounds: int
) -> float:
    async def credential_of(access_key: str) -> CredentialRecord | None:
        return record if access_key == record.access_key else None

    authenticate = verify.authenticate
    for _ in range(min(1000, calls)):  # warm the caches (signing key, parsed scopes) as a server would be
        await authenticate(parts, credential_of, service="dynamodb")
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            await authenticate(parts, credential_of, service="dynamodb")
        best = min(best, time.perf_counter() - start)
    return best / calls * 1e6


async def main(calls: int, rounds: int) -> None:
    body = orjson.dumps(
        {"TableName": "bench-kv", "Key": {"pk": {"S": "k00001"}}, "ConsistentRead": True, "pad": "p" * 200}
    )
    plain = CredentialRecord(ACCESS_KEY, SECRET, PRINCIPAL)
    session = CredentialRecord(
        SESSION_KEY, SECRET, PRINCIPAL, session_token=SESSION_TOKEN, expires_at=time.time() + 3600
    )
    cases = [
        ("long-term key", signed_parts(ACCESS_KEY, None, body), plain),
        ("session token", signed_parts(SESSION_KEY, SESSION_TOKEN, body), session),
    ]
    print(f"authenticate(), body {len(body)} bytes, {calls} calls, best of {rounds}:")
    for name, parts, record in cases:
        us = await time_authenticate(parts, record, calls, rounds)
        print(f"  {name:<14} {us:7.2f} us/call")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds))
