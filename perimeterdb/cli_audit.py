"""``perimeterdb audit``: search the audit log; ``perimeterdb audit break-glass``: list break-glass sessions.

    perimeterdb audit --data-dir D [--principal ARN|KEY|ACCOUNT] [--table T] [--denied]
                      [--since 2026-01-01T00:00:00Z] [--until …] [--event PutItem] [--limit N] [--json]
    perimeterdb audit break-glass --data-dir D [--json]
    perimeterdb audit verify --data-dir D [--key-file F | --public-key HEXFILE] [--anchor JSON] [--json]

Reads the log files directly (no server needed): every file of every writer, merged in time order.
``verify`` checks the hash chains and the signed digests (docs/audit.md); it exits 1 when a record was
changed, removed or reordered, or a file is missing or extra, and says which first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_parser(commands: Any) -> None:
    p = commands.add_parser("audit", help="search the audit log, or list break-glass sessions")
    p.add_argument("what", nargs="?", choices=["search", "break-glass", "verify"], default="search")
    p.add_argument("--data-dir", default="perimeterdb-data")
    p.add_argument("--audit-dir", help="the audit log directory (default DATA_DIR/audit)")
    p.add_argument("--principal", help="ARN (or part of it), access key id or account id")
    p.add_argument("--table", help="table name")
    p.add_argument("--denied", action="store_true", help="denied requests only")
    p.add_argument("--since", help="ISO 8601 time (inclusive)")
    p.add_argument("--until", help="ISO 8601 time (inclusive)")
    p.add_argument("--event", help="event name, e.g. PutItem")
    p.add_argument("--break-glass", dest="break_glass", action="store_true", help="break-glass records only")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--json", action="store_true", help="JSON lines (the full records)")
    p.add_argument("--key-file", help="verify: the secret key file; the digest key is beside it "
                   "(default DATA_DIR/secret.key)")
    p.add_argument("--public-key", help="verify: a file holding the digest public key (hex)")
    p.add_argument("--anchor", help="verify: an earlier `verify --json` output (or its heads) kept off the "
                   "host: every digest it names must still be there")
    p.set_defaults(handler=run)


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """``perimeterdb serve``'s audit options."""
    p.add_argument("--audit-file-bytes", type=int, default=None,
                   help="start a new audit log file past this size (default 64 MiB); none is ever deleted")
    p.add_argument("--audit-budget-bytes", type=int, default=None,
                   help="past this many bytes of audit log, anonymous failures are only counted (default 8 GiB)")
    p.add_argument("--audit-digest-interval", type=float, default=None,
                   help="seconds between signed digests while records are written (default 60)")


def serve_extra(args: argparse.Namespace) -> dict[str, str]:
    """The ``Settings.extra`` entries of the audit options given."""
    out = {}
    for option, key in (("audit_file_bytes", "audit_max_bytes"), ("audit_budget_bytes", "audit_budget_bytes"),
                        ("audit_digest_interval", "audit_digest_interval")):
        value = getattr(args, option, None)
        if value is not None:
            if value <= 0:
                raise SystemExit(f"--{option.replace('_', '-')} must be positive")
            out[key] = str(value)
    return out


def _verify(args: argparse.Namespace, directory: Path) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from perimeterdb.audit.chain import check_anchors, first_fatal, verify_directory
    from perimeterdb.audit.log import KEY_NAME

    key: Ed25519PublicKey | None = None
    try:
        if args.public_key:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(Path(args.public_key).read_text().strip()))
        else:
            secret = Path(args.key_file) if args.key_file else Path(args.data_dir) / "secret.key"
            key = Ed25519PrivateKey.from_private_bytes(secret.parent.joinpath(KEY_NAME).read_bytes()).public_key()
    except (OSError, ValueError) as exc:
        print(f"cannot read the digest key: {exc}", file=sys.stderr)
        return 2
    report = verify_directory(directory, key)
    if args.anchor:
        try:
            anchored = json.loads(Path(args.anchor).read_text())
        except (OSError, ValueError) as exc:
            print(f"cannot read the anchor file: {exc}", file=sys.stderr)
            return 2
        heads = anchored.get("heads") if isinstance(anchored, dict) else anchored
        if not isinstance(heads, list) or not all(isinstance(h, dict) for h in heads):
            print("the anchor file holds no list of heads", file=sys.stderr)
            return 2
        check_anchors(directory, heads, report)
    if args.json:
        print(json.dumps(report.as_json()))
        return 0 if report.ok else 1
    for problem in report.problems:
        where = f"{problem.file}:{problem.line}" if problem.line else problem.file
        level = "FAIL" if problem.fatal else "note"
        print(f"{level} {problem.kind} {where}: {problem.message}")
    first = first_fatal(report.problems)
    if first is None:
        print(f"OK: {report.records} records in {report.files} files of {report.writers} writers, "
              f"{report.digests} signed digests")
        return 0
    print(f"FAILED: first problem: {first.kind} in {first.file}"
          + (f" line {first.line}" if first.line else "") + f": {first.message}")
    return 1


def _out(line: str) -> None:
    """Print a text line whose parts come from requests (an anonymous client's table name, target or
    address): control characters are escaped, so that no request can start a forged line of its own
    (a newline) or rewrite the reader's terminal (escape sequences)."""
    print("".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in line))


def _line(record: dict[str, Any]) -> str:
    ident = record.get("userIdentity") or {}
    params = record.get("requestParameters") or {}
    table = params.get("tableName", "") if isinstance(params, dict) else ""
    outcome = record.get("errorCode") or "OK"
    via = record.get("vpcEndpointId") or record.get("sourceIPAddress") or ""
    flag = " BREAK-GLASS" if record.get("breakGlass") else ""
    return f"{record.get('eventTime')} {record.get('eventName')} {table} {ident.get('arn', '-')} {via} {outcome}{flag}"


def run(args: argparse.Namespace) -> int:
    from perimeterdb.audit.log import read_records
    from perimeterdb.audit.search import Query, break_glass_sessions, search

    directory = Path(args.audit_dir) if args.audit_dir else Path(args.data_dir) / "audit"
    if not directory.exists():
        print(f"no audit log in {directory}", file=sys.stderr)
        return 1
    if args.what == "verify":
        return _verify(args, directory)
    if args.what == "break-glass":
        sessions = break_glass_sessions(read_records(directory))
        for s in sessions:
            if args.json:
                print(json.dumps(s.as_json()))
                continue
            _out(f"session {s.session_arn or '?'} (key {s.access_key_id}) role {s.role_arn}")
            _out(f"  assumed {s.assumed_at} by {s.assumed_by}; justification: {s.justification!r}")
            _out(f"  {len(s.actions)} request(s) from {s.first_seen} to {s.last_seen}")
            for a in s.actions:
                _out(f"    {a['eventTime']} {a['eventName']} {','.join(a['tables'])} "
                      f"{a['vpcEndpointId'] or a['sourceIPAddress']} {a['errorCode'] or 'OK'}")
        if not sessions and not args.json:
            print("no break-glass sessions")
        return 0
    query = Query(
        principal=args.principal,
        table=args.table,
        denied_only=args.denied,
        since=args.since,
        until=args.until,
        event_name=args.event,
        break_glass_only=args.break_glass,
    )
    for record in search(read_records(directory), query, args.limit):
        if args.json:
            print(json.dumps(record))
        else:
            _out(_line(record))
    return 0
