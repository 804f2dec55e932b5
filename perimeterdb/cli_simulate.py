"""``perimeterdb simulate``: decide one request against a world, offline, and say why.

The world is a data directory (or a world file applied to a scratch copy). The principal is named by ARN:
a user, a role (simulated as a session of it), an assumed-role session, or an account root. The request's
network origin defaults to the internet (``aws:SourceIp`` 127.0.0.1); ``--context aws:SourceVpce=…`` (with
``aws:SourceVpc``) simulates a request through a VPC endpoint instead, and any other ``--context
key=value`` overrides or adds a condition key (``key=`` with no value removes it).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from perimeterdb.auth.principal import Principal
from perimeterdb.config import Settings
from perimeterdb.server.network import NetworkOrigin

_IAM_ARN = re.compile(r"arn:aws:iam::(\d{12}):(user|role)/(?:.*/)?([^/]+)$")
_SESSION_ARN = re.compile(r"arn:aws:sts::(\d{12}):assumed-role/([^/]+)/(.+)$")
_ROOT_ARN = re.compile(r"arn:aws:iam::(\d{12}):root$")


class SimulationError(Exception):
    pass


async def principal_from_arn(identities: Any, arn: str) -> Principal:
    """The principal an ARN names in this world, as the authorizer would see it on a signed request."""
    if m := _ROOT_ARN.match(arn):
        account = m.group(1)
        return Principal(arn, arn, account, "Account", account)
    if m := _SESSION_ARN.match(arn):
        account, role_name, session = m.groups()
        return await _role_session(identities, account, role_name, session)
    if m := _IAM_ARN.match(arn):
        account, kind, name = m.groups()
        if kind == "role":
            return await _role_session(identities, account, name, "simulation")
        user = await identities.get_user(account, name)
        if user is None:
            raise SimulationError(f"no such user: {arn}")
        tags = tuple((t["Key"], t["Value"]) for t in user.get("tags", []))
        return Principal(user["arn"], user["arn"], account, "User", user["user_id"], username=name, tags=tags)
    raise SimulationError(f"not a principal ARN: {arn}")


async def _role_session(identities: Any, account: str, role_name: str, session: str) -> Principal:
    role = await identities.get_role(account, role_name)
    if role is None:
        raise SimulationError(f"no such role: {role_name} in account {account}")
    tags = tuple((t["Key"], t["Value"]) for t in role.get("tags", []))
    return Principal(
        arn=f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}",
        principal_arn=role["arn"],
        account=account,
        kind="AssumedRole",
        userid=f"{role['role_id']}:{session}",
        role_name=role_name,
        session_name=session,
        tags=tags,
        mfa_authenticated=False,
        token_issue_time=0.0,
    )


def parse_context(pairs: list[str]) -> dict[str, object | None]:
    out: dict[str, object | None] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SimulationError(f"--context takes key=value, not {pair!r}")
        if value == "":
            out[key] = None
        elif "," in value:
            out[key] = value.split(",")
        else:
            out[key] = value
    return out


class _NoHostAddresses:
    """The simulated client is where --from-ip says, never a process on the simulating machine."""

    version = 0

    def __contains__(self, _address: object) -> bool:
        return False


async def endpoint_origin(runtime: Any, vpce_id: str, from_ip: str | None) -> NetworkOrigin:
    """The origin of a request reaching endpoint ``vpce_id`` from ``from_ip`` (default: the first address
    of its VPC), derived by the server's own resolver (server/network.py), endpoint policy included."""
    import ipaddress

    from perimeterdb.server.network import OriginResolver
    from perimeterdb.world.network import load_network

    network = await load_network(runtime.engine)
    endpoint = next((e for e in network.endpoints if e.id == vpce_id), None)
    if endpoint is None:
        known = ", ".join(e.id for e in network.endpoints) or "none"
        raise SimulationError(f"no VPC endpoint {vpce_id} in this world (endpoints: {known})")
    vpc = network.vpc(endpoint.vpc_id)
    if from_ip is None:
        if vpc is None:
            raise SimulationError(f"endpoint {vpce_id} belongs to no VPC")
        from_ip = str(next(ipaddress.ip_network(vpc.cidr_blocks[0], strict=False).hosts()))
    org_of: dict[str, tuple[str, tuple[str, ...]]] = {}
    view = getattr(runtime.authorizer, "organizations", None)
    if vpc is not None and view is not None:
        placement = await view.placement(vpc.account)
        if placement is not None:
            org_of[vpc.account] = (placement.org_id, placement.org_paths)
    resolver = OriginResolver(network, org_of, host=_NoHostAddresses())  # type: ignore[arg-type]
    listen = endpoint.listen
    return resolver._resolve(from_ip, listen.host, listen.port, listen.tls is not None)


async def simulate(
    data_dir: Path, principal_arn: str, action: str, resource: str, context: dict[str, Any], *,
    via_endpoint: str | None = None, from_ip: str | None = None, session_policy: str | None = None,
) -> dict[str, Any]:
    from perimeterdb.server.runtime import open_runtime

    runtime = open_runtime(Settings(data_dir=data_dir, durability="normal"))
    try:
        principal = await principal_from_arn(runtime.identities, principal_arn)
        if session_policy is not None:
            if principal.kind != "AssumedRole":
                raise SimulationError("--session-policy applies to a role session: name a role or a session")
            principal = dataclasses.replace(principal, session_policies=(session_policy,))
        lowered = {k.lower(): k for k in context}
        vpce = context.get(lowered.get("aws:sourcevpce", ""))
        source_ip = from_ip or context.get(lowered.get("aws:sourceip", "")) or context.get(
            lowered.get("aws:vpcsourceip", "")
        )
        if via_endpoint is not None:
            origin = await endpoint_origin(runtime, via_endpoint, from_ip)
            if origin.refused:
                return {"decision": "Refused", "principal": principal.arn, "action": action, "resource": resource,
                        "determining": [], "errors": [],
                        "message": f"the server refuses the connection before any policy: {origin.refused}"}
        else:
            origin = NetworkOrigin(
                source_ip=str(source_ip or "127.0.0.1"),
                local_ip="127.0.0.1",
                local_port=0,
                secure=str(context.get(lowered.get("aws:securetransport", ""), "false")).lower() == "true",
                vpc_id=str(context[lowered["aws:sourcevpc"]]) if "aws:sourcevpc" in lowered else None,
                vpce_id=str(vpce) if vpce else None,
            )
        region = str(context.get(lowered.get("aws:requestedregion", ""), "us-east-1"))
        ctx, response = await runtime.authorizer.decide(
            principal, action, resource, origin, region, extra_keys=context
        )
        from perimeterdb.iam import guardrail

        # The server puts IAM calls on sealed roles to the sealed break-glass guardrail first (iam/guardrail.py).
        sealed = await guardrail.evaluate(
            principal, action, resource, runtime.identities, runtime.authorizer.organizations,
            region=region, source_ip=origin.source_ip,
        )
        if sealed is not None and sealed[1].decision.value == "ExplicitDeny":
            ctx, response = sealed
        from perimeterdb import policy

        result: dict[str, Any] = {
            "decision": response.decision.value,
            "principal": principal.arn,
            "action": action,
            "resource": resource,
            "determining": [
                {"kind": s.kind, "policy": s.policy_id, "sid": s.sid, "index": getattr(s, "index", None)}
                for s in response.determining
            ],
            "errors": list(response.errors),
        }
        if not response.allowed:
            result["message"] = policy.access_denied_message(ctx, response)
        else:
            exception = await perimeter_exception(runtime, principal, action, resource, origin, region, context)
            if exception is not None:
                result["perimeter_exception"] = exception
        return result
    finally:
        runtime.close()


async def perimeter_exception(
    runtime: Any,
    principal: Principal,
    action: str,
    resource: str,
    origin: NetworkOrigin,
    region: str,
    context: dict[str, Any],
) -> dict[str, Any] | None:
    """Was this allowed request let through by an ``aws:PrincipalArn`` exception of an SCP or RCP?

    Decided again without ``aws:PrincipalArn`` in the context (a negated condition on an absent key is
    true, so every such exception stops matching): an explicit deny by an SCP or RCP then means the
    exception is what let the request through. It is a hole in the perimeter unless the principal is a
    sealed break-glass role (world/sealed.py, world/holes.py)."""
    from perimeterdb.world.sealed import load_registry

    if principal.principal_arn.endswith(":root"):
        return None
    _ctx, without = await runtime.authorizer.decide(
        principal, action, resource, origin, region, extra_keys={**context, "aws:PrincipalArn": None}
    )
    if without.allowed or without.denied_by not in ("scp", "rcp"):
        return None
    registry = await load_registry(runtime.engine)
    sealed = registry.is_sealed_arn(principal.principal_arn)
    if sealed:
        account, name = principal.account, principal.principal_arn.rsplit("/", 1)[-1]
        role = await runtime.identities.get_role(account, name)
        sealed = role is not None and role.get("break_glass") is not None
    statements = [
        {"kind": s.kind, "policy": s.policy_id, "sid": s.sid, "index": s.index}
        for s in without.determining
        if s.kind in ("scp", "rcp")
    ]
    return {"principal_arn": principal.principal_arn, "sealed_break_glass": sealed, "hole": not sealed,
            "statements": statements}


def add_parser(commands: Any) -> None:
    p = commands.add_parser("simulate", help="decide one request against a world and explain the decision")
    p.add_argument("--data-dir", default="perimeterdb-data", help="the world: a server's data directory")
    p.add_argument("--world", help="a world file, applied to a scratch data directory first")
    p.add_argument(
        "--principal", required=True, help="the caller's ARN (user, role, assumed-role session, root)"
    )
    p.add_argument("--action", required=True, action="append",
                   help="e.g. dynamodb:GetItem; repeat it, or separate actions with commas, to decide several")
    p.add_argument(
        "--resource", required=True, help="e.g. arn:aws:dynamodb:us-east-1:111122223333:table/orders"
    )
    p.add_argument(
        "--context", action="append", default=[], metavar="KEY=VALUE", help="condition key override"
    )
    p.add_argument("--via-endpoint", metavar="VPCE_ID",
                   help="the request reaches this VPC endpoint (its policy applies), from --from-ip or the VPC")
    p.add_argument("--from-ip", metavar="IP", help="the client's address (aws:SourceIp, or aws:VpcSourceIp "
                                                   "through --via-endpoint)")
    p.add_argument("--session-policy", metavar="JSON|@FILE",
                   help="a session policy passed to AssumeRole (the principal must be a role or session)")
    p.add_argument("--json", action="store_true", help="print JSON for machines")


def _session_policy(text: str | None) -> str | None:
    if text is None:
        return None
    from perimeterdb.policy import PolicyKind, PolicyParseError
    from perimeterdb.policy.stored import check_policy

    document = Path(text[1:]).read_text() if text.startswith("@") else text
    try:
        check_policy(document, PolicyKind.SESSION)
    except (PolicyParseError, ValueError) as exc:
        raise SimulationError(f"--session-policy: invalid session policy: {exc}") from None
    return document


def run(args: argparse.Namespace) -> int:
    from perimeterdb.simulate_catalog import action_warning, key_warning

    actions = [a.strip() for item in args.action for a in item.split(",") if a.strip()]
    warnings = [w for w in (action_warning(a) for a in actions) if w]
    warnings += [w for w in (key_warning(k) for k in (kv.partition("=")[0] for kv in args.context)) if w]
    for warning in warnings:
        print(f"perimeterdb simulate: warning: {warning}", file=sys.stderr)
    try:
        context = parse_context(args.context)
        session_policy = _session_policy(args.session_policy)
        data_dir = Path(args.data_dir)
        scratch = None
        if args.world:
            scratch = tempfile.TemporaryDirectory(prefix="perimeterdb-simulate-")
            data_dir = Path(scratch.name) / "data"
            _apply_world(Path(args.world), data_dir)
        elif not (data_dir / "perimeterdb.sqlite3").exists():
            raise SimulationError(f"no perimeterdb data in {data_dir}")
        results = [asyncio.run(simulate(data_dir, args.principal, action, args.resource, context,
                                        via_endpoint=args.via_endpoint, from_ip=args.from_ip,
                                        session_policy=session_policy))
                   for action in actions]
    except (SimulationError, OSError) as exc:
        print(f"perimeterdb simulate: {exc}", file=sys.stderr)
        return 2
    for result in results:
        result["warnings"] = [w for w in warnings if w.startswith(result["action"])]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    else:
        for result in results:
            _print(result)
    return 0 if all(r["decision"] == "Allow" for r in results) else 1


_DECISIONS = {"Allow": "allowed", "ExplicitDeny": "explicitDeny", "ImplicitDeny": "implicitDeny",
              "Refused": "refused (network)"}


def _print(result: dict[str, Any]) -> None:
    """One block per action, in the IAM policy simulator's terms (allowed / explicitDeny / implicitDeny)."""
    decision = _DECISIONS.get(result["decision"], result["decision"])
    print(f"{result['action']:<34} {decision:<14} {result['resource']}")
    print(f"  principal: {result['principal']}")
    for s in result["determining"]:
        sid = f" sid={s['sid']}" if s["sid"] else ""
        print(f"  matched statement: {s['kind']} policy {s['policy']}{sid} (statement {s['index']})")
    for error in result["errors"]:
        print(f"  evaluation error: {error}")
    for warning in result.get("warnings", []):
        print(f"  warning: {warning}")
    if "message" in result:
        print(f"  AWS would say: {result['message']}")
    exception = result.get("perimeter_exception")
    if exception is not None:
        names = ", ".join(f"{s['kind']} {s['policy']}" + (f" sid={s['sid']}" if s["sid"] else "")
                          for s in exception["statements"])
        if exception["hole"]:
            print(f"  HOLE IN THE PERIMETER: allowed only through the aws:PrincipalArn exception of {names}; "
                  f"{exception['principal_arn']} is not a sealed break-glass role")
        else:
            print(f"  allowed through the break-glass exception of {names} "
                  f"(sealed break-glass role {exception['principal_arn']})")


def _apply_world(world_file: Path, data_dir: Path) -> None:
    from perimeterdb.cli_world import apply_world_file
    from perimeterdb.world.worldfile import WorldError

    try:
        apply_world_file(world_file, data_dir)
    except WorldError as exc:
        raise SimulationError(str(exc)) from None
