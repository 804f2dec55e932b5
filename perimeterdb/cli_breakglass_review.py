"""``perimeterdb break-glass review|signoff|unreviewed|alerts``: the review of break-glass sessions, and the
alerts still waiting for delivery.

    perimeterdb break-glass review [SESSION] [--json]        each session: who, why, approvals, duration,
                                                             every request and change, what it created;
                                                             without SESSION also the refused attempts
    perimeterdb break-glass signoff SESSION --reviewer NAME --note TEXT
    perimeterdb break-glass unreviewed [--json]              sessions without a sign-off (exit status 0)
    perimeterdb break-glass alerts [--json] [--all]          alerts not yet delivered to every channel

All take ``--data-dir`` (and ``--audit-dir``); they read the storage directly, so they run beside a live
server. SESSION is a session id (its access key id ``ASIA…``) or its ARN. ``cli_breakglass.py`` calls
``add_review_parsers`` to put these under ``perimeterdb break-glass``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any


def _common(p: argparse.ArgumentParser) -> None:
    if not any(a.dest == "data_dir" for a in p._actions):
        p.add_argument("--data-dir", default="perimeterdb-data")
    if not any(a.dest == "audit_dir" for a in p._actions):
        p.add_argument("--audit-dir", help="the audit log directory (default DATA_DIR/audit)")
    if not any(a.dest == "key_file" for a in p._actions):
        p.add_argument("--key-file", help="the server's --key-file, beside which the audit signing key lives")


def add_review_parsers(subparsers: Any) -> None:
    p = subparsers.add_parser("review", help="review break-glass sessions (all, or one)")
    p.add_argument("session", nargs="?", help="session id (ASIA…) or session ARN")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(handler=run_review)
    p = subparsers.add_parser("signoff", help="sign off a reviewed break-glass session (audited)")
    p.add_argument("session", help="session id (ASIA…) or session ARN")
    p.add_argument("--reviewer", required=True, help="who reviewed it (not who used it)")
    p.add_argument("--note", required=True, help="what the review found")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(handler=run_signoff)
    p = subparsers.add_parser("unreviewed", help="break-glass sessions without a sign-off")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(handler=run_unreviewed)
    p = subparsers.add_parser("alerts", help="break-glass alerts not yet delivered to every channel")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="the delivered ones too")
    _common(p)
    p.set_defaults(handler=run_alerts)


def _dirs(args: argparse.Namespace) -> tuple[Path, Path]:
    data_dir = Path(args.data_dir)
    audit_dir = Path(args.audit_dir) if getattr(args, "audit_dir", None) else data_dir / "audit"
    return data_dir, audit_dir


def _with_engine(args: argparse.Namespace, work: Any) -> int:
    from perimeterdb.storage.sqlite import SQLiteEngine

    data_dir, audit_dir = _dirs(args)
    database = data_dir / "perimeterdb.sqlite3"
    if not database.exists():
        print(f"no perimeterdb data in {data_dir}", file=sys.stderr)
        return 1
    engine = SQLiteEngine(database)
    try:
        return int(asyncio.run(work(engine, audit_dir)))
    finally:
        engine.close()


def _records(audit_dir: Path) -> Any:
    from perimeterdb.audit.log import read_records

    return read_records(audit_dir) if audit_dir.exists() else iter(())


def _out(line: str) -> None:
    """Print a line whose parts may come from requests (names, tags): control characters are escaped, so
    that nothing a session sent can move the cursor or rewrite the reviewer's terminal."""
    print("".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in line))


def _print_session(s: dict[str, Any]) -> None:
    who, why = s["who"], s["why"]
    flag = " REVIEW REQUIRED" if s["reviewRequired"] else ""
    _out(f"session {s['sessionId']} {s['sessionArn']} [{s['state']}]{flag}")
    _out(f"  who: {who['principal']} (source identity {who['sourceIdentity'] or '-'}) "
          f"from {who['vpcEndpointId'] or who['sourceIPAddress'] or '?'}")
    _out(f"  why: {why['justification']!r}; ticket {why['ticket'] or '-'}")
    approval = s["approval"]
    _out(f"  approval: {json.dumps(approval) if approval else 'none'}{' (emergency)' if s['emergency'] else ''}")
    _out(f"  assumed {s['assumedAt']} for {s['durationSeconds']} s, expires {s['expires']}"
          f"{'; revoked ' + json.dumps(s['revoked'], default=str) if s['revoked'] else ''}")
    if s["derivedSessions"]:
        _out(f"  derived sessions: {', '.join(s['derivedSessions'])}")
    _out(f"  {len(s['requests'])} request(s), {len(s['changes'])} change(s):")
    for r in s["requests"]:
        mark = "*" if r in s["changes"] else " "
        _out(f"   {mark} {r['time']} {r['action']} {','.join(r['resources']) or '-'} {r['decision']}"
              f"{' ' + r['errorCode'] if r['errorCode'] else ''} via {r['vpcEndpointId'] or r['sourceIPAddress']}")
    _out(f"  created {len(s['created'])}, still existing {len(s['stillExisting'])}:")
    for c in s["created"]:
        exists = {True: "still exists", False: "gone", None: "not checked"}[c.get("stillExists")]
        _out(f"    {c.get('eventTime')} {c.get('kind')} {c.get('name')} ({c.get('account')}) {exists}")
    for m in s["signoffs"]:
        _out(f"  signed off {m['time']} by {m['reviewer']}: {m['note']}")
    if not s["reviewed"]:
        _out("  NOT REVIEWED")


def run_review(args: argparse.Namespace) -> int:
    from perimeterdb.breakglass import review

    async def work(engine: Any, audit_dir: Path) -> int:
        found = await review.sessions(engine, _records(audit_dir), session=args.session)
        if args.session and not found:
            print(f"no break-glass session {args.session}", file=sys.stderr)
            return 1
        refused = [] if args.session else await review.refused_attempts(engine)
        if args.json:
            print(json.dumps({"sessions": found, **({} if args.session else {"refusedAttempts": refused})},
                             default=str, indent=1))
            return 0
        if not found:
            print("no break-glass sessions")
        for s in found:
            _print_session(s)
        if refused:
            _out(f"{len(refused)} refused break-glass attempt(s):")
        for a in refused:
            _out(f"  {a['time']} {a['roleArn']} by {a['principalArn'] or a['who']} from "
                 f"{a['vpcEndpointId'] or a['sourceIPAddress'] or '?'}: {a['errorCode']}: {a['errorMessage']}")
        return 0

    return _with_engine(args, work)


def run_signoff(args: argparse.Namespace) -> int:
    from perimeterdb.audit.keys import MissingSigningKey, operator_key_path
    from perimeterdb.breakglass import review

    async def work(engine: Any, audit_dir: Path) -> int:
        try:
            done = await review.sign_off(
                engine, audit_dir, args.session, args.reviewer, args.note,
                signing_key=operator_key_path(Path(args.data_dir), args.key_file),
            )
        except (review.ReviewError, MissingSigningKey) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(done))
        else:
            _out(f"signed off {done['sessionId']} by {done['reviewer']} at {done['time']} "
                  f"(audit event {done.get('eventID')})")
        return 0

    return _with_engine(args, work)


def run_unreviewed(args: argparse.Namespace) -> int:
    from perimeterdb.breakglass import review

    async def work(engine: Any, audit_dir: Path) -> int:
        pending = review.unreviewed(await review.sessions(engine, _records(audit_dir)))
        if args.json:
            print(json.dumps({"unreviewed": [
                {k: s[k] for k in ("sessionId", "sessionArn", "roleArn", "who", "why", "assumedAt", "expires",
                                   "state", "reviewRequired", "emergency")}
                | {"requests": len(s["requests"]), "changes": len(s["changes"]), "signoffs": len(s["signoffs"])}
                for s in pending
            ]}, default=str))
            return 0
        if not pending:
            print("every break-glass session is signed off")
        for s in pending:
            flag = " REVIEW REQUIRED" if s["reviewRequired"] else ""
            _out(f"{s['sessionId']} {s['sessionArn']} assumed {s['assumedAt']} [{s['state']}] "
                  f"{len(s['requests'])} request(s), {len(s['changes'])} change(s){flag}")
        return 0

    return _with_engine(args, work)


def run_alerts(args: argparse.Namespace) -> int:
    from perimeterdb.breakglass import outbox

    async def work(engine: Any, _audit_dir: Path) -> int:
        queued = await outbox.pending(engine)
        done = await outbox.delivered(engine) if args.all else []
        if args.json:
            print(json.dumps({"undelivered": queued, **({"delivered": done} if args.all else {})}, default=str))
            return 0
        if not queued:
            print("no undelivered break-glass alerts")
        for a in queued:
            missing = sorted(set(a["channels"]) - set(a["delivered"]))
            _out(f"UNDELIVERED {a['id']} queued {outbox.iso_time(a['queued'])} attempts {a['attempts']} "
                  f"to {','.join(missing)}: {'; '.join(f'{k}: {v}' for k, v in a['errors'].items()) or 'pending'}")
        for a in done:
            print(f"delivered {a['id']} queued {outbox.iso_time(a['queued'])} to {','.join(a['channels'])}")
        return 0

    return _with_engine(args, work)
