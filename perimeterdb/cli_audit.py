"""``perimeterdb audit``: search the audit log; ``perimeterdb audit break-glass``: list break-glass sessions.

    perimeterdb audit --data-dir D [--principal ARN|KEY|ACCOUNT] [--table T] [--denied]
                      [--since 2026-01-01T00:00:00Z] [--until …] [--event PutItem] [--limit N] [--json]
    perimeterdb audit break-glass --data-dir D [--json]

Reads the log files directly (no server needed); the current and rotated files, oldest first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_parser(commands: Any) -> None:
    p = commands.add_parser("audit", help="search the audit log, or list break-glass sessions")
    p.add_argument("what", nargs="?", choices=["search", "break-glass"], default="search")
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
    p.set_defaults(handler=run)


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
    if args.what == "break-glass":
        sessions = break_glass_sessions(read_records(directory))
        for s in sessions:
            if args.json:
                print(json.dumps(s.as_json()))
                continue
            print(f"session {s.session_arn or '?'} (key {s.access_key_id}) role {s.role_arn}")
            print(f"  assumed {s.assumed_at} by {s.assumed_by}; justification: {s.justification!r}")
            print(f"  {len(s.actions)} request(s) from {s.first_seen} to {s.last_seen}")
            for a in s.actions:
                print(f"    {a['eventTime']} {a['eventName']} {','.join(a['tables'])} "
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
        print(json.dumps(record) if args.json else _line(record))
    return 0
