"""World invariants: properties a world file declares, proved before ``world apply`` changes anything.

    invariants:
      - private: {table: prod/orders, vpc: prod-vpc, except: [emergency]}
      - public: {table: prod/orders}

``private`` holds iff no request to the table from outside the VPC is allowed, except by the named
principals as they exist; ``public`` (the property "not public") holds iff no anonymous or
outside-organization principal is allowed (docs/prover.md). Both are checked in *any principal* mode: a
principal that someone could create tomorrow counts. A table is ``alias/name`` (an account alias of the
world file, or an account id) or an ARN; a VPC is its alias under ``network.vpcs`` or its id.

An invariant that does not hold refuses the change and names the counterexample; one the solvers cannot
decide (UNKNOWN) refuses it too (fail closed), with the reason.

``world apply`` (and ``serve --world``) stores the invariants, resolved to table ARNs and VPC ids, in one
row (``meta:invariants``), inside the same atomic write as the rest of the world file. The running server
reads that row: PutResourcePolicy, CreateTable's ResourcePolicy and the Organizations SCP/RCP changes
(AttachPolicy, DetachPolicy, UpdatePolicy, DeletePolicy) prove the invariants over the world as it would be
after the change (``proposed_table_policy``, ``proposed_engine``) and refuse a change that breaks one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from perimeterdb.storage.engine import Decision, Put, RowKey, StorageEngine

__all__ = [
    "ROW",
    "SERVER_TIMEOUT",
    "Invariant",
    "Violation",
    "check_world_file",
    "describe",
    "load",
    "message",
    "proposed_engine",
    "proposed_table_policy",
    "prove",
    "resolve",
    "stage",
]

ROW = RowKey("meta:invariants", b"", b"world", b"")
SERVER_TIMEOUT = 8.0  # seconds the running server gives the solvers per invariant before answering UNKNOWN


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    status: str  # "counterexample" | "unknown"
    detail: str


@dataclass(frozen=True, slots=True)
class Invariant:
    """One invariant, resolved: ``kind`` is ``private`` or ``public``; ``table`` an ARN; ``vpc`` an id."""

    kind: str
    table: str
    vpc: str | None = None
    except_: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        if self.kind == "private":
            return f"private: {self.table} only from {self.vpc}"
        return f"public: {self.table} is not public"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table, "vpc": self.vpc, "except": list(self.except_)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Invariant:
        return cls(str(data["kind"]), str(data["table"]), data.get("vpc"), tuple(data.get("except") or ()))


def _accounts(world: dict[str, Any]) -> dict[str, str]:
    return {alias: str(spec.get("id", alias)) for alias, spec in (world.get("accounts") or {}).items()}


def _table_arn(ref: str, world: dict[str, Any]) -> str:
    if ref.startswith("arn:"):
        return ref
    account, sep, name = ref.partition("/")
    if not sep:
        raise ValueError(f"table {ref!r}: write account/name (an account alias or id) or an ARN")
    account_id = _accounts(world).get(account, account)
    region = (world.get("regions") or ["us-east-1"])[0]
    return f"arn:aws:dynamodb:{region}:{account_id}:table/{name}"


def _vpc_id(ref: str, world: dict[str, Any]) -> str:
    vpcs = ((world.get("network") or {}).get("vpcs")) or {}
    spec = vpcs.get(ref)
    return str(spec["id"]) if isinstance(spec, dict) and "id" in spec else ref


def describe(result: Any) -> str:
    ce = result.counterexample
    if ce is None:
        return result.reason or result.status
    who = ce.principal.arn if not ce.fresh else f"a new {ce.principal.type} {ce.principal.principal_arn}"
    created = f" (could be created by {', '.join(ce.created_by)})" if ce.fresh and ce.created_by else ""
    return f"{who}{created} is allowed {ce.action} on {ce.resource} from {ce.origin}"


def resolve(world: dict[str, Any]) -> tuple[Invariant, ...]:
    """The ``invariants:`` of a parsed world file, resolved to table ARNs and VPC ids."""
    out = []
    for item in world.get("invariants") or []:
        ((kind, spec),) = item.items()
        table = _table_arn(str(spec["table"]), world)
        if kind == "private":
            vpc = _vpc_id(str(spec["vpc"]), world)
            out.append(Invariant("private", table, vpc, tuple(str(e) for e in spec.get("except") or ())))
        else:
            out.append(Invariant("public", table))
    return tuple(out)


def prove(snapshot: Any, invariants: tuple[Invariant, ...], *, timeout: float) -> list[Violation]:
    """Every invariant that does not hold in ``snapshot`` (any-principal mode), UNKNOWN included."""
    from perimeterdb import prover

    out = []
    for inv in invariants:
        try:
            if inv.kind == "private":
                result = prover.private(
                    snapshot, inv.table, str(inv.vpc), except_=inv.except_, any_principal=True, timeout=timeout
                )
            else:
                result = prover.public(snapshot, inv.table, any_principal=True, timeout=timeout)
        except Exception as exc:  # fail closed: a question the prover cannot ask is not a proof
            out.append(Violation(inv.label, "unknown", f"the prover could not answer ({type(exc).__name__}: {exc})"))
            continue
        if result.status != prover.HOLDS:
            out.append(Violation(inv.label, result.status, describe(result)))
    return out


def check_world_file(path: Path, *, timeout: float = 20.0) -> list[Violation]:
    """Every invariant of the world file that does not hold in the world it declares."""
    world = yaml.safe_load(path.read_text()) or {}
    invariants = resolve(world)
    if not invariants:
        return []
    from perimeterdb.cli_world import apply_world_file
    from perimeterdb.prover_world import snapshot_from_data_dir

    with tempfile.TemporaryDirectory(prefix="perimeterdb-invariants-") as scratch:
        data_dir = Path(scratch) / "data"
        apply_world_file(path, data_dir)
        snapshot = asyncio.run(snapshot_from_data_dir(data_dir))
    return prove(snapshot, invariants, timeout=timeout)


# --- stored invariants, checked by the running server ---------------------------------------------------


async def stage(engine: StorageEngine, world: dict[str, Any]) -> str | None:
    """Write the world file's invariants to ``ROW`` (through ``engine``, the apply's staging engine).

    A file with an ``invariants:`` key (even an empty list) replaces the stored set; a file without one
    leaves it alone, as apply leaves alone everything a file does not mention. The change line, or None.
    """
    if "invariants" not in world:
        return None
    resolved = resolve(world)
    value = json.dumps([i.to_json() for i in resolved], sort_keys=True).encode()
    if await engine.get(ROW) == value:
        return None
    await engine.atomic([ROW], lambda _: Decision([Put(ROW, value)]))
    return f"updated invariants ({len(resolved)} stored for PutResourcePolicy and SCP/RCP changes)"


async def load(engine: StorageEngine) -> tuple[Invariant, ...]:
    raw = await engine.get(ROW)
    if not raw:
        return ()
    return tuple(Invariant.from_json(d) for d in json.loads(raw))


async def _prove_async(snapshot: Any, invariants: tuple[Invariant, ...]) -> list[Violation]:
    """``prove`` off the event loop (the solvers run in child processes), bounded in time: fail closed."""
    budget = SERVER_TIMEOUT * len(invariants) + 5.0
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(prove, snapshot, invariants, timeout=SERVER_TIMEOUT), budget
        )
    except TimeoutError:
        return [Violation(i.label, "unknown", f"no answer within {budget:.0f} s") for i in invariants]


async def proposed_table_policy(
    engine: StorageEngine,
    table_arn: str,
    account: str,
    region: str,
    policy: str | None,
    tags: tuple[tuple[str, str], ...] | None = None,
) -> list[Violation]:
    """The stored invariants on ``table_arn`` that the table would break with ``policy`` as its resource
    policy (None: no policy) and ``tags`` (None: its current tags), the rest of the world as it is now.
    Nothing to check: []."""
    invariants = tuple(i for i in await load(engine) if i.table == table_arn)
    if not invariants:
        return []
    from perimeterdb.policy import PolicyKind
    from perimeterdb.prover import Table
    from perimeterdb.prover_world import runtime_over, snapshot_of

    runtime = runtime_over(engine)
    snapshot = await snapshot_of(runtime)
    compiled = runtime.authorizer.compiled(PolicyKind.RESOURCE, table_arn, policy) if policy else None
    old = snapshot.table(table_arn)
    if tags is None:
        tags = old.tags if old is not None else ()
    table = Table(table_arn, account, region, compiled, tags)
    tables = (*(t for t in snapshot.tables if t.arn != table_arn), table)
    return await _prove_async(dataclasses.replace(snapshot, tables=tables), invariants)


async def proposed_engine(staged: StorageEngine, box: Any = None) -> list[Violation]:
    """Every stored invariant the world read through ``staged`` (a staging engine holding a proposed
    change, e.g. an SCP detached) would break."""
    invariants = await load(staged)
    if not invariants:
        return []
    from perimeterdb.prover_world import runtime_over, snapshot_of

    snapshot = await snapshot_of(runtime_over(staged, box))
    return await _prove_async(snapshot, invariants)


def message(violations: list[Violation]) -> str:
    """One sentence per broken invariant, for an API refusal."""
    parts = []
    for v in violations:
        word = "does not hold" if v.status == "counterexample" else "could not be proved (refused: fail closed)"
        parts.append(f"invariant {v.invariant} {word}: {v.detail}")
    return "; ".join(parts)


def refuse(path: Path) -> bool:
    """For ``world apply``: print each broken invariant (stderr); True when the change must be refused."""
    import sys

    try:
        violations = check_world_file(path)
    except (ValueError, KeyError) as exc:
        print(f"{path}: invariants: {exc}", file=sys.stderr)
        return True
    for v in violations:
        word = "does not hold" if v.status == "counterexample" else "could not be proved"
        print(f"{path}: invariant {v.invariant} {word}: {v.detail}", file=sys.stderr)
    if violations:
        print(f"{path}: not applied (fix the world file, or the invariant)", file=sys.stderr)
    return bool(violations)
