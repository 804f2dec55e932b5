"""Micro-benchmarks of the pieces of the request path, each in this process, best of several rounds.

- SigV4: read the claim and verify a signed GetItem request (the server's own functions);
- the policy decision: bench/policy_decision.py (the policy engineer's benchmark), run as it is;
- expressions: parse (uncached), compile a request's expressions (cached parse + binding), evaluate a
  condition, apply an update;
- storage: SQLiteEngine point read, a write alone (one fsync each) and 64 writes at once (group commit).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from common import BENCH, PROJECT_PYTHON, ROOT


@dataclass(frozen=True)
class Micro:
    name: str
    us: float  # microseconds per operation
    note: str = ""


def best_of(fn: Callable[[], object], iterations: int, rounds: int = 5) -> float:
    for _ in range(min(200, iterations)):
        fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        best = min(best, (time.perf_counter() - start) / iterations * 1e6)
    return best


def sigv4_micro(scale: float) -> list[Micro]:
    from presign import Credentials, sign_request

    from perimeterdb.auth import verify
    from perimeterdb.auth.credentials import CredentialRecord
    from perimeterdb.auth.principal import Principal

    creds = Credentials("AKIAEXAMPLEEXAMPLE01", "secret" * 6)
    body = orjson.dumps({"TableName": "bench-kv", "Key": {"pk": {"S": "k00001"}}})
    amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    raw = sign_request("127.0.0.1:8000", "GetItem", body, creds, amz_date)
    head = raw.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    headers: dict[str, list[str]] = {}
    for line in head:
        name, value = line.split(": ", 1)
        headers.setdefault(name.lower(), []).append(value)
    principal = Principal(
        arn="arn:aws:iam::111122223333:user/alice",
        principal_arn="arn:aws:iam::111122223333:user/alice",
        account="111122223333",
        kind="User",
        userid="AIDAEXAMPLE",
    )
    record = CredentialRecord(creds.access_key, creds.secret, principal)
    parts = verify.HttpRequestParts("POST", "/", [], headers, body)

    def once() -> None:
        claim = verify.read_claim(parts)
        verify.verify(parts, claim, record, service="dynamodb")

    def signing_only() -> None:
        sign_request("127.0.0.1:8000", "GetItem", body, creds, amz_date)

    n = int(20000 * scale)
    return [
        Micro("SigV4: read claim + verify (GetItem, 1 request)", best_of(once, n)),
        Micro("SigV4: sign one request (client side, for scale)", best_of(signing_only, n)),
    ]


def policy_micro() -> list[Micro]:
    script = BENCH / "policy_decision.py"
    if not script.exists():
        return [Micro("policy decision", float("nan"), "bench/policy_decision.py is missing")]
    out = subprocess.run(
        [str(PROJECT_PYTHON), str(script)], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    found = re.findall(r"(\d+)\s+statements:\s+([\d.]+)\s*us", out.stdout)
    if not found:
        return [
            Micro("policy decision", float("nan"), f"no figures from policy_decision.py: {out.stderr[-300:]}")
        ]
    return [
        Micro(f"policy decision, cached principal, {n} statements (bench/policy_decision.py)", float(us))
        for n, us in found
    ]


def expression_micro(scale: float) -> list[Micro]:
    from perimeterdb.dynamodb import expressions as ex
    from perimeterdb.dynamodb.expressions import parser

    condition = "attribute_exists(pk) AND #n >= :zero AND (begins_with(v, :p) OR size(v) > :len)"
    update = "SET v = :v, #c = if_not_exists(#c, :zero) + :one ADD #n :one REMOVE gone"
    names = {"#n": "n", "#c": "count"}
    values = {
        ":zero": {"N": "0"},
        ":one": {"N": "1"},
        ":p": {"S": "0000"},
        ":len": {"N": "10"},
        ":v": {"S": "x" * 1000},
    }
    item = {"pk": {"S": "k1"}, "v": {"S": "0000" + "y" * 996}, "n": {"N": "5"}, "gone": {"S": "z"}}
    parse_condition = parser.parse_condition.__wrapped__  # type: ignore[attr-defined]
    parse_update = parser.parse_update.__wrapped__  # type: ignore[attr-defined]

    def compile_both() -> ex.BoundExpressions:
        return ex.compile_request_expressions(
            condition=condition, update=update, names=names, values=values, operation="UpdateItem"
        )

    bound = compile_both()
    assert bound.condition is not None and bound.update is not None
    assert ex.evaluate_condition(bound.condition, item)
    n = int(5000 * scale)
    return [
        Micro(
            "expression: parse a 4-clause condition (uncached)",
            best_of(lambda: parse_condition(condition, "ConditionExpression"), n),
        ),
        Micro(
            "expression: parse a SET/ADD/REMOVE update (uncached)", best_of(lambda: parse_update(update), n)
        ),
        Micro(
            "expression: compile a request's condition + update (cached parse, bind, check)",
            best_of(compile_both, n),
        ),
        Micro(
            "expression: evaluate the condition on a 1 KB item",
            best_of(lambda: ex.evaluate_condition(bound.condition, item), n * 4),
        ),  # type: ignore[arg-type]
        Micro(
            "expression: apply the update to a 1 KB item",
            best_of(lambda: ex.apply_update(bound.update, item), n * 4),
        ),  # type: ignore[arg-type]
    ]


def storage_micro(scale: float) -> list[Micro]:
    from perimeterdb.storage.engine import Decision, Put, RowKey
    from perimeterdb.storage.sqlite import SQLiteEngine

    results: list[Micro] = []
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        engine = SQLiteEngine(Path(tmp) / "db.sqlite3", durability="full")
        try:
            keys = [RowKey("t:bench", i.to_bytes(4, "big"), f"k{i}".encode(), b"") for i in range(2000)]
            value = b"v" * 1000

            def put(k: RowKey, seed: int) -> Callable[[list[bytes | None]], Decision]:
                return lambda _: Decision([Put(k, value[:-12] + f"{seed:012d}".encode())])

            async def load() -> None:
                await asyncio.gather(*(engine.atomic([k], put(k, 0)) for k in keys))

            async def reads(count: int) -> float:
                start = time.perf_counter()
                for i in range(count):
                    await engine.get(keys[(i * 7919) % len(keys)])
                return (time.perf_counter() - start) / count * 1e6

            async def writes_alone(count: int) -> float:
                start = time.perf_counter()
                for i in range(count):
                    await engine.atomic([keys[i % len(keys)]], put(keys[i % len(keys)], i + 1))
                return (time.perf_counter() - start) / count * 1e6

            async def writes_together(count: int, width: int) -> float:
                start = time.perf_counter()
                done = 0
                while done < count:
                    await asyncio.gather(
                        *(
                            engine.atomic(
                                [keys[(done + j) % len(keys)]],
                                put(keys[(done + j) % len(keys)], done + j + 7),
                            )
                            for j in range(width)
                        )
                    )
                    done += width
                return (time.perf_counter() - start) / done * 1e6

            async def main() -> None:
                await load()
                n = int(20000 * scale)
                results.append(
                    Micro(
                        "storage: point read (1 KB row, 2000 rows)", min([await reads(n) for _ in range(3)])
                    )
                )
                w = max(50, int(300 * scale))
                results.append(
                    Micro(
                        "storage: write alone (durability=full: one commit + fsync each)",
                        min([await writes_alone(w) for _ in range(2)]),
                    )
                )
                results.append(
                    Micro(
                        "storage: 64 concurrent writes (group commit), per write",
                        min([await writes_together(w * 8, 64) for _ in range(2)]),
                    )
                )

            asyncio.run(main())
        finally:
            engine.close()
    return results


def run_all(scale: float) -> list[Micro]:
    out: list[Micro] = []
    for part in (
        lambda: sigv4_micro(scale),
        policy_micro,
        lambda: expression_micro(scale),
        lambda: storage_micro(scale),
    ):
        try:
            out.extend(part())
        except Exception as exc:  # a broken piece is reported, the rest still runs
            out.append(Micro("micro-benchmark failed", float("nan"), f"{type(exc).__name__}: {exc}"))
    return out
