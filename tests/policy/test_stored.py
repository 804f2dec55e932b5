"""policy/stored.py: check before storing, compile stored policies without raising, broken ones deny (and
the repair rule for a broken resource policy)."""

from __future__ import annotations

import json

import pytest

from perimeterdb.policy import (
    ContextKeys,
    Decision,
    PolicyKind,
    PolicyParseError,
    PolicyRef,
    PolicySet,
    PrincipalInfo,
    RequestContext,
    decide,
)
from perimeterdb.policy.stored import BROKEN_SID, BrokenPolicy, check_policy, compile_stored
from tests.policy.conftest import ACCOUNT, TABLE, policy

ALLOW_ALL = {"Sid": "A", "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}
BAD = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*",
                                             "Condition": {"NoSuchOperator": {"a": "b"}}}]}
)
OTHER = "444455556666"


def _ctx(p: PrincipalInfo, action: str = "dynamodb:GetItem") -> RequestContext:
    return RequestContext(p, action, TABLE, ACCOUNT, ContextKeys({}))


def _broken(kind: PolicyKind, pid: str = "bad") -> BrokenPolicy:
    found = compile_stored(BAD, kind, PolicyRef(kind.value, pid, pid, None))
    assert isinstance(found, BrokenPolicy)
    return found


def test_check_policy_refuses_what_cannot_be_compiled() -> None:
    with pytest.raises(PolicyParseError) as exc:
        check_policy(BAD, PolicyKind.IDENTITY)
    assert "NoSuchOperator" in str(exc.value)
    assert check_policy(json.dumps({"Statement": ALLOW_ALL}), PolicyKind.IDENTITY).statements


@pytest.mark.parametrize("document", [BAD, "{not json", "[]", '{"Statement": 3}', ""])
@pytest.mark.parametrize("kind", list(PolicyKind))
def test_compile_stored_never_raises(document: str, kind: PolicyKind) -> None:
    found = compile_stored(document, kind, PolicyRef(kind.value, "x"))
    assert isinstance(found, BrokenPolicy) and "cannot be compiled" in found.error


@pytest.mark.parametrize(
    "field", ["identity", "boundary", "session", "resource", "vpce", "scp", "rcp"]
)
def test_a_broken_policy_of_any_kind_is_an_explicit_deny_naming_it(alice: PrincipalInfo, field: str) -> None:
    kinds = {"identity": PolicyKind.IDENTITY, "boundary": PolicyKind.BOUNDARY, "session": PolicyKind.SESSION,
             "resource": PolicyKind.RESOURCE, "vpce": PolicyKind.VPCE, "scp": PolicyKind.SCP,
             "rcp": PolicyKind.RCP}
    broken = _broken(kinds[field])
    allow = policy(PolicyKind.IDENTITY, ALLOW_ALL)
    sets = {
        "identity": PolicySet(identity=(allow, broken)),
        "boundary": PolicySet(identity=(allow,), boundary=broken),
        "session": PolicySet(identity=(allow,), session=(broken,)),
        "resource": PolicySet(identity=(allow,), resource=broken),
        "vpce": PolicySet(identity=(allow,), vpce=broken),
        "scp": PolicySet(identity=(allow,), scp_levels=((broken,),), principal_in_org=True),
        "rcp": PolicySet(identity=(allow,), rcp_levels=((broken,),), resource_in_org=True),
    }
    p = alice
    if field == "session":
        p = PrincipalInfo(f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s", f"arn:aws:iam::{ACCOUNT}:role/app",
                          ACCOUNT, "AssumedRole", "AROAAPPAPPAPPAPPAPP1:s")
    r = decide(_ctx(p), sets[field])
    assert r.decision is Decision.EXPLICIT_DENY and r.denied_by == kinds[field].value
    assert [(s.policy_id, s.sid) for s in r.determining] == [("bad", BROKEN_SID)]
    assert any("cannot be compiled" in e for e in r.errors)


def test_a_broken_scp_does_not_bind_the_management_account(alice: PrincipalInfo) -> None:
    ps = PolicySet(identity=(policy(PolicyKind.IDENTITY, ALLOW_ALL),), scp_levels=((_broken(PolicyKind.SCP),),),
                   principal_in_org=True, principal_in_management_account=True)
    assert decide(_ctx(alice, "dynamodb:ListTables"), ps).decision is Decision.ALLOW


def test_repair_rule_only_for_a_same_account_principal_its_identity_policies_allow(alice: PrincipalInfo) -> None:
    broken = _broken(PolicyKind.RESOURCE)
    allow = policy(PolicyKind.IDENTITY, ALLOW_ALL)
    repair = _ctx(alice, "dynamodb:DeleteResourcePolicy")
    allowed = decide(repair, PolicySet(identity=(allow,), resource=broken, repair=True))
    assert allowed.decision is Decision.ALLOW and any("repair rule" in e for e in allowed.errors)
    # Without an identity grant: no access (the broken policy does not become a grant).
    assert decide(repair, PolicySet(resource=broken, repair=True)).decision is Decision.IMPLICIT_DENY
    # Without the repair flag (any other action): denied.
    assert decide(repair, PolicySet(identity=(allow,), resource=broken)).decision is Decision.EXPLICIT_DENY
    # A boundary or an SCP still limits the repair.
    only_get = policy(PolicyKind.BOUNDARY, {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"})
    assert decide(repair, PolicySet(identity=(allow,), boundary=only_get, resource=broken, repair=True)).decision \
        is Decision.IMPLICIT_DENY
    deny_scp = policy(PolicyKind.SCP, {"Effect": "Deny", "Action": "dynamodb:Delete*", "Resource": "*"})
    full = policy(PolicyKind.SCP, {"Effect": "Allow", "Action": "*", "Resource": "*"})
    r = decide(repair, PolicySet(identity=(allow,), resource=broken, repair=True,
                                 scp_levels=((full, deny_scp),), principal_in_org=True))
    assert r.decision is Decision.EXPLICIT_DENY and r.denied_by == "scp"
    # Another account's principal gets nothing from the repair rule.
    outsider = PrincipalInfo(f"arn:aws:iam::{OTHER}:user/eve", f"arn:aws:iam::{OTHER}:user/eve", OTHER, "User",
                             "AIDAEVEEVEEVEEVEEVE1", "eve")
    r = decide(_ctx(outsider, "dynamodb:DeleteResourcePolicy"),
               PolicySet(identity=(allow,), resource=broken, repair=True))
    assert r.decision is Decision.EXPLICIT_DENY
