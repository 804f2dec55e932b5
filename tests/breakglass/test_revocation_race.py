"""A chained session minted while its parent is being revoked (red team, issue 12).

``revoke SESSION`` marks the session and every credential derived from it that exists at that moment. A
chained session whose AssumeRole authenticated its parent just before that commit, and stored the new
session just after, is not marked; its origin (the root break-glass session) is not revoked either. It must
still be refused: its direct parent is revoked.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from perimeterdb.auth.credentials import CredentialRecord, lineage_bound
from perimeterdb.auth.principal import Principal

NOW = time.time()


def _record(key: str) -> CredentialRecord:
    principal = Principal(arn="arn:aws:sts::222222222222:assumed-role/feature-team/c", account="222222222222",
                          kind="AssumedRole", userid="AROAX:c", principal_arn="arn:aws:iam::222222222222:role/feature-team")
    return CredentialRecord(key, "secret", principal, session_token="t", expires_at=NOW + 600)


def _rows(parent_revoked: bool) -> dict[str, dict[str, Any]]:
    origin = {"id": "ASIAORIGIN", "expires": NOW + 900, "principal": {"origin_session": "ASIAORIGIN"}}
    parent = {"id": "ASIAPARENT", "expires": NOW + 900,
              "principal": {"origin_session": "ASIAORIGIN", "parent_session": "ASIAORIGIN"}}
    if parent_revoked:
        parent["revoked"] = {"at": NOW, "by": "cli", "reason": "drill"}
    return {"ASIAORIGIN": origin, "ASIAPARENT": parent}


def _bound(parent_revoked: bool) -> CredentialRecord:
    rows = _rows(parent_revoked)
    child = {"id": "ASIACHILD", "expires": NOW + 600,
             "principal": {"origin_session": "ASIAORIGIN", "parent_session": "ASIAPARENT"}}

    async def lookup(key: str) -> dict[str, Any] | None:
        return rows.get(key)

    return asyncio.run(lineage_bound(child, _record("ASIACHILD"), lookup))


def test_a_child_of_a_revoked_parent_is_refused_even_if_its_origin_is_live() -> None:
    assert _bound(parent_revoked=True).active is False


def test_a_child_of_a_live_parent_works_and_is_break_glass() -> None:
    bound = _bound(parent_revoked=False)
    assert bound.active is True and bound.principal.break_glass is True
