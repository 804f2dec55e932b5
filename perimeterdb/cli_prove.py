"""``perimeterdb prove``: questions about every possible request, answered with a proof or a counterexample.

    perimeterdb prove private --table T --vpc V [--except ROLE ...]
    perimeterdb prove public --table T
    perimeterdb prove not-granted (--principal ARN | --any) --actions A ... --resources ARN ...
    perimeterdb prove no-new-access OLD NEW          (two policy files, or two world files)
    perimeterdb prove who-can --action A --resource ARN

Every question reads a world: ``--data-dir DIR`` (default ./perimeterdb-data) or ``--world FILE``.
``--any-principal`` also considers principals that do not exist yet (see docs/prover.md); ``--json`` prints
JSON. Exit codes: 0 holds, 1 counterexample, 2 unknown (a timeout, or something the encoding does not
cover: the reason is printed), 3 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

EXIT = {"holds": 0, "counterexample": 1, "unknown": 2}
USAGE = 3


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(USAGE, f"{self.prog}: error: {message}\n")


def add_parser(commands: Any) -> None:
    p = commands.add_parser("prove", help="prove a property of every request, or find a counterexample")
    p.__class__ = _Parser  # usage errors exit with 3, as documented
    queries = p.add_subparsers(dest="query", required=True, parser_class=_Parser)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--data-dir", default="perimeterdb-data", help="the world: a server's data directory")
        q.add_argument("--world", help="a world file (applied to a scratch data directory)")
        q.add_argument(
            "--any-principal",
            action="store_true",
            help="also principals that could be created (any name, path, tags, account)",
        )
        q.add_argument("--timeout", type=float, default=20.0, help="seconds for the solvers (default 20)")
        q.add_argument("--json", action="store_true", help="print JSON for machines")
        q.set_defaults(handler=run)

    q = queries.add_parser("private", help="no request to the table from outside the VPC is allowed")
    q.add_argument("--table", required=True, help="table name or ARN")
    q.add_argument("--vpc", required=True, help="VPC id")
    q.add_argument(
        "--except",
        dest="except_",
        nargs="+",
        default=[],
        metavar="ROLE",
        help="principals excepted (role names or ARNs): only as they exist",
    )
    common(q)
    q = queries.add_parser("public", help="no anonymous or outside-organization principal is allowed")
    q.add_argument("--table", required=True)
    common(q)
    q = queries.add_parser("not-granted", help="the principal (or anyone) is allowed none of the actions")
    who = q.add_mutually_exclusive_group(required=True)
    who.add_argument("--principal", help="principal ARN (user or role)")
    who.add_argument("--any", action="store_true", help="every principal (with --any-principal: any at all)")
    q.add_argument("--actions", nargs="+", required=True)
    q.add_argument("--resources", nargs="+", required=True)
    common(q)
    q = queries.add_parser(
        "no-new-access", help="the new policy (or world) allows nothing the old one denies"
    )
    q.add_argument("old", help="policy JSON file, or world file")
    q.add_argument("new", help="policy JSON file, or world file")
    q.add_argument(
        "--kind",
        default="identity",
        choices=["identity", "resource", "boundary", "session", "scp", "rcp", "vpce", "trust"],
        help="the policies' kind (policy files; default identity)",
    )
    common(q)
    q = queries.add_parser("who-can", help="which principals and origins are allowed an action on a resource")
    q.add_argument("--action", required=True)
    q.add_argument("--resource", required=True)
    common(q)


def _snapshot(args: argparse.Namespace) -> Any:
    from perimeterdb.prover_world import load_snapshot

    if args.world:
        if not Path(args.world).exists():
            raise UsageError(f"no such world file: {args.world}")
        return load_snapshot(world_file=Path(args.world))
    data_dir = Path(args.data_dir)
    if not (data_dir / "perimeterdb.sqlite3").exists():
        raise UsageError(f"no perimeterdb data in {data_dir} (give --data-dir or --world)")
    return load_snapshot(data_dir=data_dir)


def run(args: argparse.Namespace) -> int:
    from perimeterdb import prover

    if not prover.available_solvers():
        print(
            "perimeterdb prove: no SMT solver installed: pip install 'perimeterdb[prover]'", file=sys.stderr
        )
        return EXIT["unknown"]
    try:
        if args.query == "no-new-access":
            result = _no_new_access(args)
        elif args.query == "who-can":
            return _who_can(args)
        else:
            snapshot = _snapshot(args)
            result = _ask(args, snapshot)
    except (UsageError, LookupError, ValueError) as exc:
        print(f"perimeterdb prove: {exc}", file=sys.stderr)
        return USAGE
    _print(result, args.json)
    return EXIT[result.status]


def _ask(args: argparse.Namespace, snapshot: Any) -> Any:
    from perimeterdb import prover

    common = {"any_principal": args.any_principal, "timeout": args.timeout}
    if args.query == "private":
        return prover.private(snapshot, args.table, args.vpc, except_=tuple(args.except_), **common)
    if args.query == "public":
        return prover.public(snapshot, args.table, **common)
    return prover.not_granted(
        snapshot, tuple(args.actions), tuple(args.resources), principal=args.principal, **common
    )


def _no_new_access(args: argparse.Namespace) -> Any:
    from perimeterdb import policy, prover

    old, new = Path(args.old), Path(args.new)
    for path in (old, new):
        if not path.exists():
            raise UsageError(f"no such file: {path}")
    if old.suffix in (".yaml", ".yml") or new.suffix in (".yaml", ".yml"):
        from perimeterdb.prover_world import load_snapshot

        return prover.no_new_world_access(
            load_snapshot(world_file=old),
            load_snapshot(world_file=new),
            any_principal=args.any_principal,
            timeout=args.timeout,
        )
    kind = policy.PolicyKind(args.kind)
    try:
        compiled = [
            policy.load_policy(json.loads(p.read_text()), kind, policy.PolicyRef(kind.value, p.name, p.name))
            for p in (old, new)
        ]
    except (policy.PolicyParseError, json.JSONDecodeError) as exc:
        raise UsageError(f"not a valid {kind.value} policy: {exc}") from None
    return prover.no_new_access(compiled[0], compiled[1], timeout=args.timeout)


def _who_can(args: argparse.Namespace) -> int:
    from perimeterdb import prover

    try:
        snapshot = _snapshot(args)
        found, unknown = prover.who_can(
            snapshot, args.action, args.resource, any_principal=args.any_principal, timeout=args.timeout
        )
    except (UsageError, LookupError, ValueError) as exc:
        print(f"perimeterdb prove: {exc}", file=sys.stderr)
        return USAGE
    if args.json:
        print(
            json.dumps(
                {
                    "action": args.action,
                    "resource": args.resource,
                    "allowed": [w.to_json() for w in found],
                    "unknown": unknown,
                },
                indent=2,
            )
        )
    else:
        print(f"who can {args.action} on {args.resource}:")
        if not found:
            print("  nobody")
        for w in found:
            needs = f" (requires {', '.join(w.requires)})" if w.requires else ""
            print(f"  {w.principal}, from {w.origin}{needs}")
        for u in unknown:
            print(f"  UNKNOWN: {u}")
    return EXIT["unknown"] if unknown else 0


def _print(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_json(), indent=2, default=str))
        return
    print(
        f"{result.status.upper()}: {result.query} ({result.seconds:.2f} s, {result.cases} cases"
        f"{', ' + result.solver if result.solver else ''})"
    )
    if result.status == "holds":
        print("  holds for every request")
    if result.reason:
        print(f"  reason: {result.reason}")
    ce = result.counterexample
    if ce is not None:
        p = ce.principal
        exists = "an existing principal" if not ce.fresh else "a principal that does not exist yet"
        print(f"  principal: {p.arn} ({p.type}, {exists})")
        if ce.created_by:
            print(f"    could be created by: {', '.join(ce.created_by)}")
        print(f"  action:    {ce.action}")
        print(f"  resource:  {ce.resource}")
        print(f"  origin:    {ce.origin}")
        for key, value in sorted(ce.keys.items()):
            print(f"    {key} = {value}")
        for s in ce.response.determining:
            print(f"  allowed by {s.kind} policy {s.policy_id}{' sid=' + s.sid if s.sid else ''}")
    for note in result.notes:
        print(f"  note: {note}")
