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
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Violation", "check_world_file", "describe"]


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    status: str  # "counterexample" | "unknown"
    detail: str


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


def check_world_file(path: Path, *, timeout: float = 20.0) -> list[Violation]:
    """Every invariant of the world file that does not hold in the world it declares."""
    world = yaml.safe_load(path.read_text()) or {}
    invariants = world.get("invariants") or []
    if not invariants:
        return []
    import asyncio

    from perimeterdb import prover
    from perimeterdb.cli_world import apply_world_file
    from perimeterdb.prover_world import snapshot_from_data_dir

    with tempfile.TemporaryDirectory(prefix="perimeterdb-invariants-") as scratch:
        data_dir = Path(scratch) / "data"
        apply_world_file(path, data_dir)
        snapshot = asyncio.run(snapshot_from_data_dir(data_dir))
    out = []
    for item in invariants:
        ((kind, spec),) = item.items()
        table = _table_arn(str(spec["table"]), world)
        if kind == "private":
            vpc = _vpc_id(str(spec["vpc"]), world)
            label = f"private: {table} only from {vpc}"
            result = prover.private(
                snapshot,
                table,
                vpc,
                except_=tuple(spec.get("except") or ()),
                any_principal=True,
                timeout=timeout,
            )
        else:
            label = f"public: {table} is not public"
            result = prover.public(snapshot, table, any_principal=True, timeout=timeout)
        if result.status != prover.HOLDS:
            out.append(Violation(label, result.status, describe(result)))
    return out


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
