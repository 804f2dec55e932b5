"""The audit step of one DynamoDB request, alone: ``audit.hooks.dynamodb`` (record built and written).

    .venv/bin/python bench/audit_record.py [--n 20000] [--rounds 5] [--op GetItem|PutItem] [--profile]

No server: an ``AuditLog`` in a temporary directory with a real ``BreakGlass`` (its identity store is a
stand-in that answers one ordinary role), an assumed-role session ``Principal``, a ``NetworkOrigin``
through a VPC endpoint, a realistic request body and the ``authz.Decided`` value the authorizer would
have left in ``call.notes`` (the same ``Response`` object every call, as the authorizer's decision cache
hands out). ``rt``/``req``/``call`` are stand-ins carrying only what the hook reads.

Prints µs per call, best of ``--rounds`` rounds of ``--n`` calls, for the log on disk, for the same log
writing to /dev/null (our code alone) and for a bare ``write(2)`` of a record-sized line (the floor: on a
shared machine it swings between about 2 and 5 µs with the load). Then checks the records read back, and that ``audit verify``'s check of the chain and digests passes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from perimeterdb.audit import hooks as audit_hooks  # noqa: E402
from perimeterdb.audit.chain import verify_directory  # noqa: E402
from perimeterdb.audit.log import AuditLog, read_records  # noqa: E402
from perimeterdb.auth.principal import Principal  # noqa: E402
from perimeterdb.authz import Decided  # noqa: E402
from perimeterdb.policy.compile import StatementRef  # noqa: E402
from perimeterdb.policy.decide import Decision, Response  # noqa: E402
from perimeterdb.server.network import NetworkOrigin  # noqa: E402
from perimeterdb.world.breakglass import BreakGlass  # noqa: E402

ACCOUNT = "111122223333"
TABLE_ARN = f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/orders"
USER_AGENT = "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1 lang/python#3.11.9"


class _Identities:
    """The identity store as BreakGlass sees it: a generation and one ordinary (not break-glass) role."""

    generation = 7

    async def get_role(self, account: str, name: str) -> dict[str, Any] | None:
        return {"name": name, "arn": f"arn:aws:iam::{account}:role/{name}"}


def principal() -> Principal:
    now = time.time()
    return Principal(
        arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/bench-app/app-session",
        principal_arn=f"arn:aws:iam::{ACCOUNT}:role/bench-app",
        account=ACCOUNT,
        kind="AssumedRole",
        userid="AROAEXAMPLEROLEID0001:app-session",
        role_name="bench-app",
        session_name="app-session",
        tags=(("team", "orders"), ("env", "prod")),
        mfa_authenticated=False,
        token_issue_time=now - 60,
        session_kind="AssumeRole",
        access_key_id="ASIAEXAMPLESESSION01",
        expires_at=now + 3600,
        role_id="AROAEXAMPLEROLEID0001",
        source_arn=f"arn:aws:iam::{ACCOUNT}:user/deployer",
    )


def origin() -> NetworkOrigin:
    return NetworkOrigin(
        source_ip="10.0.1.25",
        local_ip="127.0.0.1",
        local_port=8443,
        secure=True,
        vpc_id="vpc-0a1b2c3d4e5f60718",
        vpce_id="vpce-0123456789abcdef0",
        vpce_account=ACCOUNT,
        vpce_policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}',
        vpce_org_id="o-exampleorg1",
        vpce_org_paths=("o-exampleorg1/r-ab12/ou-ab12-prod0001/",),
        vpc_region="eu-west-1",
    )


def decisions(op: str) -> list[Decided]:
    # One (action, resource) pair per single-item request, as the pipeline authorizes it. GetItem is
    # allowed by the role's identity policy (two statements, one of a managed policy); PutItem by a
    # same-account resource policy statement naming the role, as decide.py reports each.
    if op == "GetItem":
        response = Response(
            Decision.ALLOW,
            (
                StatementRef("identity", "bench-app/app-access", "TableRead", 0),
                StatementRef(
                    "identity",
                    f"arn:aws:iam::{ACCOUNT}:policy/orders-rw",
                    "ReadWrite",
                    3,
                    f"arn:aws:iam::{ACCOUNT}:policy/orders-rw",
                ),
            ),
        )
    else:
        response = Response(Decision.ALLOW, (StatementRef("resource", TABLE_ARN, "AppWrites", 1),))
    return [Decided(f"dynamodb:{op}", TABLE_ARN, response)]


def body(op: str) -> dict[str, Any]:
    key = {"pk": {"S": "customer#0042"}, "sk": {"S": "order#2024-05-01#000917"}}
    if op == "GetItem":
        return {"TableName": "orders", "Key": key, "ConsistentRead": True}
    item = dict(key, total={"N": "129.90"}, status={"S": "paid"}, lines={"L": [{"S": "x" * 900}]})
    return {
        "TableName": "orders",
        "Item": item,
        "ConditionExpression": "attribute_not_exists(pk)",
        "ReturnValues": "ALL_OLD",
    }


def _hook_loop(audit: AuditLog, op: str, cpu: list[float] | None = None) -> Callable[[int], Awaitable[float]]:
    """A loop of ``count`` audit steps against ``audit``; returns µs per step (wall clock), and appends the
    CPU µs per step (this process's CPU time: steadier than the wall clock on a shared machine) to ``cpu``."""
    rt = SimpleNamespace(audit=audit, settings=SimpleNamespace(default_region="eu-west-1"))
    req = SimpleNamespace(origin=origin(), header={"user-agent": USER_AGENT}.get)
    call = SimpleNamespace(region="eu-west-1", notes={"decisions": decisions(op)})
    who, request = principal(), body(op)
    target = f"DynamoDB_20120810.{op}"
    hook = audit_hooks.dynamodb

    async def loop(count: int) -> float:
        start, start_cpu = time.perf_counter(), time.process_time()
        for i in range(count):
            await hook(rt, req, f"REQ{i:08d}", target, request, who, call, None)
        if cpu is not None:
            cpu.append((time.process_time() - start_cpu) / count * 1e6)
        return (time.perf_counter() - start) / count * 1e6

    return loop


def _write_floor(directory: Path, size: int, count: int) -> float:
    """µs per bare ``write(2)`` of a ``size``-byte line to an O_APPEND file: the step's irreducible part."""
    directory.mkdir()
    fd = os.open(directory / "floor.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    line = b"x" * (size - 1) + b"\n"
    try:
        start = time.perf_counter()
        for _ in range(count):
            os.write(fd, line)
        return (time.perf_counter() - start) / count * 1e6
    finally:
        os.close(fd)
        (directory / "floor.log").unlink()
        directory.rmdir()


async def run(op: str, n: int, rounds: int, profile: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        data = Path(tmp)
        glass = BreakGlass(None, _Identities(), data)  # type: ignore[arg-type]
        # The server's settings (64 MiB files, 10 kept), on the temporary directory's disk.
        on_disk = AuditLog(data / "file", break_glass=glass)
        # The same log writing to /dev/null (its file's descriptor replaced by /dev/null's after the first
        # record): our code's cost (chaining included), without the kernel's copy into the page cache and
        # the disk's writeback, which vary with the machine's load.
        to_null = AuditLog(data / "null", break_glass=glass, max_bytes=1 << 62)
        disk_cpu: list[float] = []
        disk_loop, null_loop = _hook_loop(on_disk, op, disk_cpu), _hook_loop(to_null, op)
        await disk_loop(min(n, 2000))  # warm caches (first record, break-glass lookup, allocator)
        await null_loop(1)
        null_fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null_fd, to_null._fd)  # type: ignore[arg-type]
        os.close(null_fd)
        await null_loop(min(n, 2000))
        assert on_disk.path is not None
        line_size = on_disk.path.stat().st_size // min(n, 2000)
        disk, null, floor = [], [], []
        for i in range(rounds):  # interleaved, so that a burst of load elsewhere hits all three alike
            disk.append(await disk_loop(n))
            null.append(await null_loop(n))
            floor.append(_write_floor(data / f"floor{i}", line_size, n))
        print(f"audit step ({op}), best of {rounds} x {n} calls, µs per call:")
        print(f"  to a file on disk  {min(disk):6.2f}   (CPU time: {min(disk_cpu):.2f})")
        print(f"  to /dev/null       {min(null):6.2f}   (the step without the file write's kernel cost)")
        print(f"  bare write(2)      {min(floor):6.2f}   (one {line_size}-byte O_APPEND write: the floor)")
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            await null_loop(n)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        on_disk.close()
        to_null.close()
        report = verify_directory(data / "file", on_disk._key.public_key())
        assert report.ok, report.problems[:3]
        written = list(read_records(data / "file"))
        last = written[-1]
        assert last["eventName"] == op and last["userIdentity"]["arn"] == principal().arn, last
        ids = [r["eventID"] for r in written]
        assert len(set(ids)) == len(ids), "eventID not unique"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--op", default="GetItem", choices=("GetItem", "PutItem"))
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.op, args.n, args.rounds, args.profile))


if __name__ == "__main__":
    main()
