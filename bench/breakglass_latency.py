"""Break-glass costs, measured on a real server (loopback, ``--workers 2``, durability full):

1. AssumeRole latency of a break-glass role (MFA code + justification; the alert durably queued in the
   outbox before the credentials are minted) against an ordinary role, with and without an MFA code;
2. the time from ``revoke`` (the same call the CLI makes, on the data directory) to the first request
   refused, with a client that keeps sending GetCallerIdentity on a kept-alive connection.

    .venv/bin/python bench/breakglass_latency.py [--users 30] [--revocations 5]

Each user has an own MFA device (a TOTP code is accepted once per device), so one run needs no waiting for
time steps. Requests are sent one at a time (no concurrency): the figures are latencies, not throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from perimeterdb.auth import totp  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

ACCOUNT = "222222222222"
CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)
WHY = [{"Key": "justification", "Value": "bench: measuring the cost of the break-glass procedure"}]


def _world(path: Path, users: int, keys: dict[str, dict[str, str]], seeds: dict[str, bytes]) -> None:
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]}]}
    may = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*",
                                                   "Action": ["sts:AssumeRole", "sts:TagSession"]}]}
    world = {
        "version": 1,
        "regions": ["us-east-1"],
        "accounts": {"prod": {
            "id": ACCOUNT, "name": "prod", "email": "prod@example.com",
            "users": {f"u{i}": {"mfa": {"name": f"u{i}", "seed_base32": base64.b32encode(seeds[f"u{i}"]).decode()},
                                "inline": {"assume": may}, "access_keys": [keys[f"u{i}"]]} for i in range(users)},
            "roles": {
                "emergency": {"trust": trust, "break_glass": {"max_session_seconds": 3600},
                              "policies": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]},
                "ordinary": {"trust": trust, "policies": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]},
            },
        }},
    }
    path.write_text(yaml.safe_dump(world, sort_keys=False))


def _sts(server: ServerProcess, key: dict[str, str], token: str | None = None) -> Any:
    return boto3.client("sts", endpoint_url=server.endpoint, region_name="us-east-1", config=CONFIG,
                        aws_access_key_id=key["id"], aws_secret_access_key=key["secret"], aws_session_token=token)


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[max(0, int(len(ordered) * 0.9) - 1)]
    return (f"n={len(values)} median {statistics.median(values):.1f} ms, p90 {p90:.1f} ms, "
            f"min {ordered[0]:.1f} ms, max {ordered[-1]:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--revocations", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (data, logs, alerts)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bg-bench-"))
    keys = {f"u{i}": {"id": f"AKIABGBENCH{i:0>9}"[:20], "secret": secrets.token_urlsafe(30)[:40]}
            for i in range(args.users)}
    seeds = {f"u{i}": secrets.token_bytes(20) for i in range(args.users)}
    world = scratch / "world.yaml"
    _world(world, args.users, keys, seeds)
    server = ServerProcess(scratch / "data", extra_args=["--world", str(world), "--workers", "2"]).start(timeout=60)
    try:
        clients = {u: _sts(server, k) for u, k in keys.items()}
        for client in clients.values():  # connections and credential caches warm in both workers
            client.get_caller_identity()
        # Wait for a step with room for two codes per user (steps now and now+1 are both accepted).
        if 30 - time.time() % 30 < 20:
            time.sleep(30 - time.time() % 30 + 0.5)
        step = totp.time_step()
        glass, ordinary_mfa, ordinary = [], [], []
        for i, (user, client) in enumerate(clients.items()):
            serial = f"arn:aws:iam::{ACCOUNT}:mfa/{user}"
            codes = iter([totp.hotp(seeds[user], step), totp.hotp(seeds[user], step + 1)])  # in call order
            runs = [
                (glass, lambda c, s=serial, client=client: client.assume_role(
                    RoleArn=f"arn:aws:iam::{ACCOUNT}:role/emergency", RoleSessionName="bg", SerialNumber=s,
                    TokenCode=c, Tags=WHY), True),
                (ordinary_mfa, lambda c, s=serial, client=client: client.assume_role(
                    RoleArn=f"arn:aws:iam::{ACCOUNT}:role/ordinary", RoleSessionName="plain", SerialNumber=s,
                    TokenCode=c, Tags=WHY), True),
                (ordinary, lambda c, client=client: client.assume_role(
                    RoleArn=f"arn:aws:iam::{ACCOUNT}:role/ordinary", RoleSessionName="plain", Tags=WHY), False),
            ]
            for bucket, fn, needs_code in runs[i % 3:] + runs[: i % 3]:  # rotate the order: no position favoured
                code = next(codes) if needs_code else None
                bucket.append(_timed(lambda fn=fn, code=code: fn(code)))
        print("AssumeRole latency (loopback, 2 workers, durability full, one request at a time):")
        print(f"  break-glass role (MFA code, justification, alert queued): {_summary(glass)}")
        print(f"  ordinary role with an MFA code:                           {_summary(ordinary_mfa)}")
        print(f"  ordinary role without MFA:                                {_summary(ordinary)}")
        print("revoke -> first refused request (a client sending GetCallerIdentity in a loop):")
        asyncio.run(_revocations(server, keys, seeds, args.revocations))
    finally:
        server.stop()
        if args.keep:
            print(f"scratch directory kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


async def _revocations(server: ServerProcess, keys: dict[str, dict[str, str]], seeds: dict[str, bytes],
                       count: int) -> None:
    from perimeterdb.breakglass import revocation
    from perimeterdb.config import Settings
    from perimeterdb.storage.sqlite import SQLiteEngine

    if 30 - time.time() % 30 < 10:
        time.sleep(30 - time.time() % 30 + 0.5)
    step = totp.time_step() + 2  # later than the codes used above
    waits = []
    users = list(keys)[:count]
    while totp.time_step() + 1 < step:
        time.sleep(0.5)
    for user in users:
        creds = _sts(server, keys[user]).assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/emergency", RoleSessionName="rv",
            SerialNumber=f"arn:aws:iam::{ACCOUNT}:mfa/{user}", TokenCode=totp.hotp(seeds[user], step), Tags=WHY,
        )["Credentials"]
        session = _sts(server, {"id": creds["AccessKeyId"], "secret": creds["SecretAccessKey"]},
                       creds["SessionToken"])
        session.get_caller_identity()
        refused_at: list[float] = []
        stop = threading.Event()

        def hammer(session: Any = session, refused_at: list[float] = refused_at, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                try:
                    session.get_caller_identity()
                except ClientError as error:
                    if error.response["Error"]["Code"] == "InvalidClientTokenId":
                        refused_at.append(time.perf_counter())
                        return

        thread = threading.Thread(target=hammer, daemon=True)
        thread.start()
        time.sleep(0.2)
        engine = SQLiteEngine(Settings(data_dir=server.data_dir).database_path, durability="full")
        try:
            started = time.perf_counter()
            await revocation.revoke(engine, session_id=creds["AccessKeyId"], reason="bench")
            committed = time.perf_counter()
        finally:
            engine.close()
        thread.join(timeout=10)
        stop.set()
        if not refused_at:
            print(f"  {user}: NOT refused within 10 s")
            continue
        waits.append((refused_at[0] - started) * 1000)
        print(f"  revoke committed in {(committed - started) * 1000:.1f} ms; first refusal "
              f"{(refused_at[0] - started) * 1000:.1f} ms after revoke started")
    if waits:
        print(f"  revoke -> first refused request: {_summary(waits)}")
    print(json.dumps({"revoke_to_refused_ms": waits}))


if __name__ == "__main__":
    sys.exit(main())
