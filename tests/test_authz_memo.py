"""The authorizer's remembered decisions: reused only while everything the evaluation read is unchanged."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from perimeterdb import authz
from perimeterdb.auth.principal import Principal
from perimeterdb.errors import ApiError
from perimeterdb.server.network import NetworkOrigin
from perimeterdb.world.identities import PrincipalPolicies, StoredPolicy

ACCOUNT = "111122223333"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t"


class _Identities:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = json.dumps(document)
        self.generation = 1

    async def policies_for(self, principal: Principal) -> PrincipalPolicies:
        return PrincipalPolicies(
            generation=self.generation,
            identity=(StoredPolicy("inline:u:p", self.document),),
            boundary=None,
            session=None,
        )


class _Catalog:
    async def find(self, account: str, region: str, name: str) -> None:
        return None


def _allow(condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


PRINCIPAL = Principal(
    arn=f"arn:aws:iam::{ACCOUNT}:user/u",
    principal_arn=f"arn:aws:iam::{ACCOUNT}:user/u",
    account=ACCOUNT,
    kind="User",
    userid="AIDAEXAMPLE",
    username="u",
)
ORIGIN = NetworkOrigin(source_ip="10.77.0.5", local_ip="10.77.0.1", local_port=8000, secure=False)


def _decide(authorizer: authz.Authorizer, keys: Any = None) -> bool:
    async def go() -> bool:
        _, response = await authorizer.decide(
            PRINCIPAL, "dynamodb:GetItem", TABLE, ORIGIN, "us-east-1", extra_keys=keys
        )
        return response.allowed

    return asyncio.run(go())


def test_a_clock_condition_is_evaluated_again_when_the_clock_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    authorizer = authz.Authorizer(
        _Identities(_allow({"NumericLessThan": {"aws:EpochTime": "2000000000"}})), _Catalog()
    )
    monkeypatch.setattr(authz.time, "time", lambda: 1_999_999_998.0)
    assert _decide(authorizer)
    assert _decide(authorizer)  # remembered
    monkeypatch.setattr(authz.time, "time", lambda: 2_000_000_001.0)
    assert not _decide(authorizer)
    monkeypatch.setattr(authz.time, "time", lambda: 1_999_999_999.0)
    assert _decide(authorizer)


def test_lazy_request_keys_are_computed_only_when_a_policy_reads_them() -> None:
    calls: list[int] = []

    def lazy(value: str) -> Any:
        async def keys() -> dict[str, object]:
            calls.append(1)
            return {"dynamodb:LeadingKeys": [value]}

        return keys

    plain = authz.Authorizer(_Identities(_allow()), _Catalog())
    assert _decide(plain, lazy("a"))
    assert _decide(plain, lazy("b"))
    assert calls == [1]  # asked once, on the first (recorded) evaluation; never read since

    calls.clear()
    reading = authz.Authorizer(
        _Identities(_allow({"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["a"]}})), _Catalog()
    )
    assert _decide(reading, lazy("a"))
    assert not _decide(reading, lazy("b"))
    assert _decide(reading, lazy("a"))
    assert len(calls) == 3


def test_request_keys_may_not_stand_in_for_global_keys() -> None:
    authorizer = authz.Authorizer(
        _Identities(_allow({"StringEquals": {"aws:SourceIp": "10.77.0.5"}})), _Catalog()
    )
    assert _decide(authorizer, {"dynamodb:Select": "ALL_ATTRIBUTES"})
    assert not _decide(authorizer, {"aws:SourceIp": "10.77.9.9"})  # overrides, and is not remembered
    assert _decide(authorizer, {"dynamodb:Select": "ALL_ATTRIBUTES"})


def test_invalidate_retires_every_remembered_decision() -> None:
    identities = _Identities(_allow())
    authorizer = authz.Authorizer(identities, _Catalog())
    assert _decide(authorizer)
    identities.document = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
        }
    )
    identities.generation = 2
    assert _decide(authorizer)  # nobody said anything changed: the remembered answer stands
    authorizer.invalidate()
    assert not _decide(authorizer)

    async def denied() -> None:
        await authorizer.authorize(PRINCIPAL, "dynamodb:GetItem", TABLE, ORIGIN, "us-east-1")

    with pytest.raises(ApiError):
        asyncio.run(denied())
