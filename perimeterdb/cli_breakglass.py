"""``perimeterdb break-glass``: the procedure from the command line.

Against the server, signed with the caller's own credentials (the standard AWS chain: environment,
``--profile``, shared files), through the approval API (``breakglass/http.py``)::

    perimeterdb break-glass request --endpoint-url URL --role-arn ARN --justification TEXT [--ticket T]
    perimeterdb break-glass approve REQUEST_ID --endpoint-url URL [--comment TEXT]
    perimeterdb break-glass deny REQUEST_ID --endpoint-url URL [--comment TEXT]
    perimeterdb break-glass requests --endpoint-url URL [--status pending] [--json]

On the data directory, while the server runs (revocation takes effect on every worker's next request)::

    perimeterdb break-glass revoke SESSION_ID | --role ARN | --all  [--data-dir D] [--reason TEXT]
    perimeterdb break-glass sessions [--data-dir D] [--json]
    perimeterdb break-glass totp --seed BASE32      # the current code of a virtual MFA seed

``seal``/``unseal``/``list-sealed`` (``cli_sealed``) and ``review``/``signoff``/``unreviewed``/``alerts``
(``cli_breakglass_review``) are in the group too.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from perimeterdb import cli_breakglass_review, cli_sealed

TARGET_PREFIX = "PerimeterDBBreakGlass_20261206."


def _add_remote(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint-url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    p.add_argument("--profile", help="the AWS profile to sign with (default: the standard credential chain)")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--json", action="store_true", help="print the JSON answer")


def add_parser(commands: Any) -> None:
    group = commands.add_parser("break-glass", help="the break-glass procedure: approvals, revocation, review")
    sub = group.add_subparsers(dest="breakglass_command", required=True)

    p = sub.add_parser("request", help="ask for approval to assume a break-glass role")
    _add_remote(p)
    p.add_argument("--role-arn", required=True)
    p.add_argument("--justification", required=True, help="why (free text, at most 256 characters)")
    p.add_argument("--ticket", help="a ticket reference")
    p.set_defaults(handler=run_remote, operation="RequestAccess")
    for name, op in (("approve", "ApproveRequest"), ("deny", "DenyRequest")):
        p = sub.add_parser(name, help=f"{name} a pending request (a member of the role's approvers group)")
        _add_remote(p)
        p.add_argument("request_id")
        p.add_argument("--comment")
        p.set_defaults(handler=run_remote, operation=op)
    p = sub.add_parser("requests", help="list the requests you made or may decide")
    _add_remote(p)
    p.add_argument("--status", choices=["pending", "approved", "denied", "consumed", "expired"])
    p.add_argument("--role-arn")
    p.set_defaults(handler=run_remote, operation="ListRequests")

    p = sub.add_parser("revoke", help="revoke break-glass sessions and everything derived from them")
    p.add_argument("session_id", nargs="?", help="the session's access key id (ASIA…)")
    p.add_argument("--role", help="every live session of this role")
    p.add_argument("--all", action="store_true", help="every live break-glass session")
    p.add_argument("--reason")
    p.add_argument("--data-dir", default="perimeterdb-data")
    p.add_argument("--key-file", help="the server's --key-file, beside which the audit signing key lives")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run_revoke)
    p = sub.add_parser("sessions", help="live break-glass sessions and derived credentials")
    p.add_argument("--data-dir", default="perimeterdb-data")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run_sessions)
    p = sub.add_parser("totp", help="print the current TOTP code of a base32 MFA seed")
    p.add_argument("--seed", required=True, help="the Base32StringSeed of the virtual MFA device")
    p.set_defaults(handler=run_totp)

    cli_sealed.add_sealed_parsers(sub)  # seal, unseal, list-sealed (H1)
    cli_breakglass_review.add_review_parsers(sub)  # review, signoff, unreviewed, alerts (H3)


# --- the approval API, signed with botocore ----------------------------------------------------------------


def call_api(endpoint: str, operation: str, body: dict[str, Any], *, profile: str | None = None,
             region: str = "us-east-1", credentials: Any = None, timeout: float = 15.0) -> tuple[int, dict[str, Any]]:
    """One signed call to the approval API: (HTTP status, decoded JSON answer)."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    if credentials is None:
        session = botocore.session.Session(profile=profile)
        credentials = session.get_credentials()
        if credentials is None:
            raise SystemExit("no AWS credentials found (environment, --profile or shared files)")
    data = json.dumps(body).encode()
    request = AWSRequest(
        method="POST",
        url=endpoint.rstrip("/") + "/",
        data=data,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET_PREFIX + operation},
    )
    SigV4Auth(credentials, "breakglass", region).add_auth(request)
    prepared = urllib.request.Request(request.url, data=data, method="POST", headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"{}")
        except ValueError:
            return error.code, {"message": raw.decode(errors="replace")}


def run_remote(args: argparse.Namespace) -> int:
    op = args.operation
    body: dict[str, Any] = {}
    if op == "RequestAccess":
        body = {"RoleArn": args.role_arn, "Justification": args.justification}
        if args.ticket:
            body["Ticket"] = args.ticket
    elif op in ("ApproveRequest", "DenyRequest"):
        body = {"RequestId": args.request_id}
        if args.comment:
            body["Comment"] = args.comment
    else:
        body = {k: v for k, v in (("Status", args.status), ("RoleArn", args.role_arn)) if v}
    status, answer = call_api(args.endpoint_url, op, body, profile=args.profile, region=args.region)
    if status != 200:
        code = str(answer.get("__type", "Error")).rsplit("#", 1)[-1]
        print(f"{code}: {answer.get('message') or answer.get('Message') or ''}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    for request in answer.get("Requests") or [answer.get("Request") or {}]:
        print(f"{request.get('RequestId')} {request.get('Status')} {request.get('RoleArn')} "
              f"by {request.get('Requester')}: {request.get('Justification')!r}"
              + (f" ticket {request['Ticket']}" if request.get("Ticket") else "")
              + (f" approver {request['Approver']}" if request.get("Approver") else ""))
    return 0


# --- on the data directory ---------------------------------------------------------------------------------


def _database(data_dir: Path) -> Path:
    from perimeterdb.config import Settings

    return Settings(data_dir=data_dir).database_path


async def _engine_run(data_dir: Path, work: Any) -> Any:
    from perimeterdb.storage.sqlite import SQLiteEngine

    engine = SQLiteEngine(_database(data_dir), durability="full")
    try:
        return await work(engine)
    finally:
        engine.close()


def _audit_revocation(data_dir: Path, revoked: list[dict[str, Any]], args: argparse.Namespace) -> None:
    from perimeterdb.audit.keys import operator_key_path
    from perimeterdb.audit.log import AuditLog
    from perimeterdb.audit.records import event_id, iso_now

    log = AuditLog(data_dir / "audit", signing_key=operator_key_path(data_dir, args.key_file))
    try:
        log.write({
            "eventVersion": "1.08",
            "eventTime": iso_now(),
            "eventID": event_id(),
            "eventSource": "breakglass.perimeterdb",
            "eventName": "RevokeBreakGlassSessions",
            "eventType": "AwsServiceEvent",
            "userIdentity": {"type": "LocalOperator", "invokedBy": "perimeterdb break-glass revoke"},
            "requestParameters": {"sessionId": args.session_id, "role": args.role, "all": bool(args.all),
                                  "reason": args.reason},
            "breakGlass": True,
            "additionalEventData": {"breakGlass": True, "revoked": revoked},
        })
    finally:
        log.close()


def run_revoke(args: argparse.Namespace) -> int:
    from perimeterdb.audit.keys import MissingSigningKey, operator_key_path
    from perimeterdb.breakglass import revocation

    chosen = [bool(args.session_id), bool(args.role), bool(args.all)]
    if sum(chosen) != 1:
        print("say what to revoke: SESSION_ID, --role ARN or --all (exactly one)", file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir)
    if not _database(data_dir).exists():
        print(f"no perimeterdb data in {data_dir}", file=sys.stderr)
        return 1
    try:  # checked before revoking: a revocation is always audited
        operator_key_path(data_dir, args.key_file)
    except MissingSigningKey as exc:
        print(f"perimeterdb: {exc}", file=sys.stderr)
        return 2

    async def work(engine: Any) -> list[dict[str, Any]]:
        return await revocation.revoke(engine, session_id=args.session_id, role_arn=args.role,
                                       everything=args.all, reason=args.reason)

    revoked = asyncio.run(_engine_run(data_dir, work))
    _audit_revocation(data_dir, revoked, args)
    if args.json:
        print(json.dumps({"revoked": revoked}, indent=2))
    else:
        for item in revoked:
            print(f"revoked {item['kind']} {item['id']} {item['arn'] or ''}{' (derived)' if item['derived'] else ''}")
        if not revoked:
            print("nothing to revoke (no live session matched)")
    return 0


def run_sessions(args: argparse.Namespace) -> int:
    from perimeterdb.breakglass import revocation

    data_dir = Path(args.data_dir)
    if not _database(data_dir).exists():
        print(f"no perimeterdb data in {data_dir}", file=sys.stderr)
        return 1
    sessions = asyncio.run(_engine_run(data_dir, revocation.break_glass_sessions))
    for s in sessions:
        if args.json:
            print(json.dumps(s))
            continue
        state = "REVOKED" if s["revoked"] else "live"
        left = int((s["expires"] or time.time()) - time.time())
        print(f"{s['id']} {s['kind']} {s['arn']} {state} expires in {left}s"
              + (f" derived from {s['originSessionId']}" if s["derived"] else "")
              + (f"; justification: {s['justification']!r}" if s.get("justification") else "")
              + (" REVIEW REQUIRED" if s.get("reviewRequired") else ""))
    if not sessions and not args.json:
        print("no live break-glass sessions")
    return 0


def run_totp(args: argparse.Namespace) -> int:
    from perimeterdb.auth import totp

    seed = args.seed.strip().replace(" ", "").upper()
    try:
        raw = base64.b32decode(seed + "=" * (-len(seed) % 8))
    except ValueError:
        print("the seed is not base32", file=sys.stderr)
        return 2
    print(totp.totp(raw))
    return 0


def run(args: argparse.Namespace) -> int:
    return int(args.handler(args))
