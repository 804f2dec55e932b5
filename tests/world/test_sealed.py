"""Sealed break-glass identities (world/sealed.py), the holes finder (world/holes.py) and the guardrail's
decision (iam/guardrail.py), without a server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from perimeterdb import policy
from perimeterdb.iam.guardrail import decide_guardrail
from perimeterdb.policy import PolicyKind, PolicyRef, PolicySet
from perimeterdb.world.holes import ExistingRole, exception_problem, policy_holes, world_policies, world_roles
from perimeterdb.world.sealed import (
    GUARDRAIL_POLICY_SID,
    GUARDRAIL_SID,
    POLICY_ACTIONS,
    ROLE_ACTIONS,
    SCP_SIZE_LIMIT,
    Registry,
    SealedRole,
    SealError,
    guardrail_documents,
    parse_platform_principal,
    registry_from_world,
    split_role,
)
from perimeterdb.world.worldfile import WorldError, parse_world, world_holes

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "private-tables.yaml"
PROD, PROD2, MGMT = "222222222222", "444444444444", "111111111111"
PLATFORM = "arn:aws:iam::*:role/platform"
REGISTRY = Registry((SealedRole("emergency", "/", (PROD,)),), (PLATFORM,))


def _principal(arn: str, account: str = PROD) -> policy.PrincipalInfo:
    return policy.PrincipalInfo(arn=arn, principal_arn=arn, account=account, type="User", userid="AIDAX")


def _session(role: str, account: str = PROD) -> policy.PrincipalInfo:
    return policy.PrincipalInfo(
        arn=f"arn:aws:sts::{account}:assumed-role/{role}/s",
        principal_arn=f"arn:aws:iam::{account}:role/{role}",
        account=account,
        type="AssumedRole",
        userid="AROAX:s",
    )


# --- names and declarations -------------------------------------------------------------------------------


def test_split_role_paths_and_bad_names() -> None:
    assert split_role("emergency") == ("/", "emergency")
    assert split_role("/ops/emergency") == ("/ops/", "emergency")
    assert split_role("ops/emergency") == ("/ops/", "emergency")
    for bad in ("", "emer gency", "a" * 65, "/ops/*", "/o*s/emergency"):
        with pytest.raises(SealError):
            split_role(bad)


def test_platform_principals_must_be_exact_roles() -> None:
    assert parse_platform_principal(PLATFORM) == ("*", "/", "platform")
    assert parse_platform_principal(f"arn:aws:iam::{MGMT}:role/ops/platform") == (MGMT, "/ops/", "platform")
    for bad in ("arn:aws:iam::*:role/platform-*", "arn:aws:iam::*:user/alice", "*", "arn:aws:iam::*:role/p?"):
        with pytest.raises(SealError):
            parse_platform_principal(bad)


def test_names_are_found_regardless_of_case() -> None:
    assert REGISTRY.find("EMERGENCY") == REGISTRY.roles[0]
    assert REGISTRY.find("Emergency") == REGISTRY.roles[0]
    assert REGISTRY.find("emergency-2") is None
    assert REGISTRY.protected("PLATFORM") is not None  # the platform role is protected too
    assert REGISTRY.is_sealed_arn(f"arn:aws:iam::{PROD}:role/emergency")
    assert not REGISTRY.is_sealed_arn(f"arn:aws:iam::{PROD2}:role/emergency")  # not declared there
    assert not REGISTRY.is_sealed_arn(f"arn:aws:iam::{PROD}:role/Emergency")
    assert not REGISTRY.is_sealed_arn(f"arn:aws:iam::{PROD}:role/x/emergency")


def test_seal_refuses_a_second_spelling_and_merges_accounts() -> None:
    with pytest.raises(SealError):
        REGISTRY.sealed(SealedRole("Emergency", "/", (), "cli"))
    with pytest.raises(SealError):
        REGISTRY.sealed(SealedRole("emergency", "/ops/", (), "cli"))
    merged = REGISTRY.sealed(SealedRole("emergency", "/", (PROD2,), "cli"))
    assert merged.find("emergency").accounts == (PROD, PROD2)  # type: ignore[union-attr]
    assert merged.unsealed("EMERGENCY").find("emergency") is None


def test_world_declarations_replace_the_previous_world_but_keep_cli_seals() -> None:
    registry = Registry((SealedRole("old", "/", (), "world"), SealedRole("incident", "/", (), "cli")))
    updated = registry.with_world([SealedRole("emergency", "/", (PROD,))], [PLATFORM], "error")
    assert [r.name for r in updated.roles] == ["emergency", "incident"]
    assert updated.platform_principals == (PLATFORM,) and updated.holes == "error"
    assert Registry.from_json(json.loads(json.dumps(updated.to_json()))) == updated


def test_registry_from_the_example_world() -> None:
    world = yaml.safe_load(EXAMPLE.read_text())
    roles, platform, mode = registry_from_world(world, {"prod": PROD})
    assert roles == [SealedRole("emergency", "/", (PROD,), "world")]
    assert platform == [] and mode == "warn"
    world["break_glass"]["sealed_roles"] = ["/ops/incident", "Emergency"]
    with pytest.raises(SealError):  # a second spelling of a declared break-glass role
        registry_from_world(world, {})
    world["break_glass"]["sealed_roles"] = ["/ops/incident"]
    roles, _, _ = registry_from_world(world, {})
    assert [(r.path, r.name, r.accounts) for r in roles] == [("/", "emergency", (PROD,)), ("/ops/", "incident", ())]


def test_world_file_rejects_a_wildcard_platform_principal() -> None:
    world = yaml.safe_load(EXAMPLE.read_text())
    world["break_glass"]["platform_principals"] = ["arn:aws:iam::*:role/platform-*"]
    with pytest.raises(WorldError, match="platform principal"):
        parse_world(yaml.safe_dump(world))
    world["break_glass"]["platform_principals"] = ["arn:aws:iam::*:user/alice"]
    with pytest.raises(WorldError, match="platform_principals"):
        parse_world(yaml.safe_dump(world))


# --- the guardrail SCP ----------------------------------------------------------------------------------------


def test_guardrail_document_shape() -> None:
    (document,) = guardrail_documents(REGISTRY, [f"arn:aws:iam::{PROD}:policy/extra"])
    roles, policies = document["Statement"]
    assert roles["Sid"] == GUARDRAIL_SID and roles["Effect"] == "Deny"
    assert roles["Action"] == list(ROLE_ACTIONS)
    assert roles["Resource"] == ["arn:aws:iam::*:role/emergency", "arn:aws:iam::*:role/platform"]
    assert roles["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": PLATFORM}}
    assert policies["Sid"] == GUARDRAIL_POLICY_SID and policies["Action"] == list(POLICY_ACTIONS)
    assert policies["Resource"] == f"arn:aws:iam::{PROD}:policy/extra"
    policy.parse_policy(json.dumps(document), PolicyKind.SCP)  # a valid SCP for our engine
    assert guardrail_documents(Registry()) == []


def test_guardrail_documents_split_under_the_scp_limit() -> None:
    many = Registry(tuple(SealedRole(f"break-glass-role-number-{i:04d}", "/emergency/access/") for i in range(400)))
    documents = guardrail_documents(many)
    assert len(documents) > 1
    sids = []
    covered = set()
    for document in documents:
        assert len(json.dumps(document, separators=(",", ":"))) <= SCP_SIZE_LIMIT
        policy.parse_policy(json.dumps(document), PolicyKind.SCP)
        for statement in document["Statement"]:
            sids.append(statement["Sid"])
            covered |= set(statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]])
    assert len(sids) == len(set(sids))
    assert covered == {r.pattern for r in many.roles}


@pytest.mark.parametrize("action", ["iam:DeleteRole", "iam:UpdateAssumeRolePolicy", "iam:TagRole", "iam:CreateRole"])
def test_guardrail_decision_denies_members_like_an_scp(action: str) -> None:
    resource = f"arn:aws:iam::{PROD}:role/emergency"
    ctx, response = decide_guardrail(REGISTRY, _session("feature-team"), action, resource, in_management_account=False)
    assert response.decision is policy.Decision.EXPLICIT_DENY
    assert response.denied_by == "scp"
    assert [(s.kind, s.sid) for s in response.determining] == [("guardrail", GUARDRAIL_SID)]
    assert policy.access_denied_message(ctx, response).endswith("with an explicit deny in a service control policy")


def test_guardrail_decision_spares_the_platform_and_the_management_account() -> None:
    resource = f"arn:aws:iam::{PROD}:role/emergency"
    _, response = decide_guardrail(REGISTRY, _session("platform"), "iam:PutRolePolicy", resource, in_management_account=False)
    assert response.allowed
    _, response = decide_guardrail(
        REGISTRY, _principal(f"arn:aws:iam::{MGMT}:user/platform-admin", MGMT), "iam:PutRolePolicy",
        f"arn:aws:iam::{MGMT}:role/emergency", in_management_account=True,
    )
    assert response.allowed
    # Another role of the member account is untouched by the guardrail.
    _, response = decide_guardrail(
        REGISTRY, _session("feature-team"), "iam:PutRolePolicy", f"arn:aws:iam::{PROD}:role/feature-team",
        in_management_account=False,
    )
    assert response.allowed


def test_printed_guardrail_attached_as_an_scp_denies_through_decide() -> None:
    """The documents `perimeterdb guardrails` prints, attached next to FullAWSAccess in an SCP level, deny
    the same calls through the ordinary decision (no server-side enforcement involved)."""
    documents = guardrail_documents(REGISTRY, [f"arn:aws:iam::{PROD}:policy/extra"])
    scps = tuple(policy.load_policy(json.dumps(d), PolicyKind.SCP, PolicyRef("scp", f"p-guard{i}")) for i, d in enumerate(documents))
    full = policy.load_policy('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
                              PolicyKind.SCP, PolicyRef("scp", "p-FullAWSAccess"))
    admin = policy.load_policy('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
                               PolicyKind.IDENTITY, PolicyRef("identity", "admin"))

    def decide(who: policy.PrincipalInfo, action: str, resource: str, management: bool = False) -> policy.Response:
        keys = {"aws:PrincipalArn": who.principal_arn, "aws:PrincipalAccount": who.account}
        ctx = policy.build_context(who, action, resource, resource_account=who.account, keys=keys)
        return policy.decide(ctx, PolicySet(identity=(admin,), scp_levels=((full,), (full, *scps)),
                                            principal_in_org=True, principal_in_management_account=management))

    team = _session("feature-team")
    for action in ROLE_ACTIONS:
        response = decide(team, action, f"arn:aws:iam::{PROD}:role/emergency")
        assert response.decision is policy.Decision.EXPLICIT_DENY, action
        assert response.denied_by == "scp"
    for action in POLICY_ACTIONS:
        assert decide(team, action, f"arn:aws:iam::{PROD}:policy/extra").decision is policy.Decision.EXPLICIT_DENY
    assert decide(team, "iam:CreateRole", f"arn:aws:iam::{PROD2}:role/emergency").denied_by == "scp"
    assert decide(team, "iam:DeleteRole", f"arn:aws:iam::{PROD}:role/feature-team").allowed
    assert decide(_session("platform"), "iam:DeleteRole", f"arn:aws:iam::{PROD}:role/emergency").allowed
    assert decide(_session("platform", PROD2), "iam:CreateRole", f"arn:aws:iam::{PROD2}:role/emergency").allowed


# --- holes ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "value", "hole"),
    [
        ("ArnNotLike", "arn:aws:iam::*:role/emergency", False),
        ("ArnNotLike", f"arn:aws:iam::{PROD}:role/emergency", False),
        ("StringNotLike", f"arn:aws:iam::{PROD}:role/emergency", False),
        ("ArnNotEquals", "arn:aws:iam::*:role/emergency", False),
        ("ArnNotLikeIfExists", "arn:aws:iam::*:role/emergency", False),
        ("ArnNotLike", PLATFORM, False),
        # StringLike's * crosses ':': arn:aws:iam::<account>:user/x:role/emergency matches too.
        ("StringNotLike", "arn:aws:iam::*:role/emergency", True),
        ("StringNotLikeIfExists", "arn:aws:iam::*:role/emergency", True),
        ("StringNotLike", PLATFORM, True),
        ("StringNotLike", "arn:aws:iam::*:role/emergency*", True),
        ("ArnNotLike", "arn:aws:iam::*:role/emerg?ncy", True),
        ("StringNotLike", "arn:aws:iam::*:role/*/emergency", True),
        ("StringNotLike", "arn:aws:iam::*:role/ops/emergency", True),
        ("StringNotLike", "arn:aws:iam::*:role/Emergency", True),
        ("StringNotLike", "arn:aws:iam::*:role/feature-team", True),
        ("StringNotLike", "arn:aws:iam::*:user/oncall", True),
        ("StringNotLike", f"arn:aws:iam::{PROD}:root", True),
        ("StringNotLike", "*", True),
        ("StringNotLike", "arn:aws:iam::*:*", True),
        ("StringNotLike", "arn:aws:iam::*:role/${aws:username}", True),
        ("StringNotEqualsIgnoreCase", "arn:aws:iam::*:role/emergency", True),
        ("ForAnyValue:StringNotLike", "arn:aws:iam::*:role/emergency-*", True),
    ],
)
def test_exception_values(operator: str, value: str, hole: bool) -> None:
    assert (exception_problem(value, operator, REGISTRY) is not None) is hole


def test_in_an_rcp_the_exception_must_name_the_accounts_of_the_sealed_role() -> None:
    assert exception_problem("arn:aws:iam::*:role/emergency", "ArnNotLike", REGISTRY, rcp=True) is not None
    assert exception_problem(f"arn:aws:iam::{PROD2}:role/emergency", "ArnNotLike", REGISTRY, rcp=True) is not None
    assert exception_problem(f"arn:aws:iam::{PROD}:role/emergency", "ArnNotLike", REGISTRY, rcp=True) is None
    rcp = _scp({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/emergency"}})
    (hole,) = policy_holes([("R", "RESOURCE_CONTROL_POLICY", rcp)], REGISTRY)
    assert "outside the organization" in hole.reason and hole.describe().startswith("hole in the perimeter: RCP R")
    assert policy_holes([("S", "SERVICE_CONTROL_POLICY", rcp)], REGISTRY) == []


def test_string_not_equals_takes_the_wildcard_literally() -> None:
    # StringNotEquals compares literally: "…role/emergency*" only exempts a role named "emergency*", which
    # IAM's name rules do not even allow; it is still not the sealed role's ARN.
    assert exception_problem("arn:aws:iam::*:role/emergency*", "StringNotEquals", REGISTRY) is not None


def _scp(*conditions: dict[str, Any], effect: str = "Deny") -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": f"S{i}", "Effect": effect, "Action": "dynamodb:*", "Resource": "*", "Condition": c}
        for i, c in enumerate(conditions)
    ]}


def test_policy_holes_name_policy_statement_and_value() -> None:
    doc = _scp(
        {"StringNotEquals": {"aws:SourceVpc": "vpc-1"}, "ArnNotLike": {"aws:PrincipalArn": [
            "arn:aws:iam::*:role/emergency", "arn:aws:iam::*:role/emergency*"]}},
        {"ArnLike": {"aws:principalarn": "arn:aws:iam::*:role/feature-*"}},
    )
    found = policy_holes([("Perimeter", "SERVICE_CONTROL_POLICY", doc)], REGISTRY)
    assert [(h.statement, h.value) for h in found] == [
        ("S0", "arn:aws:iam::*:role/emergency*"),
        ("S1", "arn:aws:iam::*:role/feature-*"),
    ]
    assert "every other principal is exempt" in found[1].reason
    assert "SCP Perimeter statement S0" in found[0].describe()
    # Allow statements and other keys are no exception to a deny.
    assert policy_holes([("A", "SERVICE_CONTROL_POLICY", _scp({"StringNotLike": {"aws:PrincipalArn": "*"}}, effect="Allow"))], REGISTRY) == []
    assert policy_holes([("B", "RESOURCE_CONTROL_POLICY", _scp({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}))], REGISTRY) == []


def test_an_existing_role_with_the_sealed_name_that_is_not_declared_is_a_hole() -> None:
    doc = _scp({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/emergency"}})
    roles = [ExistingRole(f"arn:aws:iam::{PROD}:role/emergency", True), ExistingRole(f"arn:aws:iam::{PROD2}:role/emergency", False)]
    (hole,) = policy_holes([("P", "SERVICE_CONTROL_POLICY", doc)], REGISTRY, roles)
    assert f"arn:aws:iam::{PROD2}:role/emergency" in hole.reason
    assert policy_holes([("P", "SERVICE_CONTROL_POLICY", doc)], REGISTRY, roles[:1]) == []


def test_world_holes_of_the_example_and_a_widened_copy() -> None:
    text = EXAMPLE.read_text()
    assert world_holes(parse_world(text)) == []
    widened = parse_world(text.replace('role/emergency"', 'role/emergency*"'))
    (hole,) = world_holes(widened)
    assert hole.policy == "DenyDynamoDBOutsideVPC" and hole.value == "arn:aws:iam::*:role/emergency*"
    data = yaml.safe_load(text)
    del data["accounts"]["prod"]["roles"]["emergency"]["break_glass"]  # an ordinary role, exempt by name
    (hole,) = world_holes(parse_world(yaml.safe_dump(data)))
    assert "not a sealed break-glass role" in hole.reason
    assert world_policies(data)[0][0] == "DenyDynamoDBOutsideVPC"
    assert ExistingRole(f"arn:aws:iam::{PROD}:role/emergency", False) in world_roles(data)


def test_platform_roles_trusted_outside_the_management_account_are_reported() -> None:
    from perimeterdb.world.holes import platform_trust_problems
    from perimeterdb.world.worldfile import platform_warnings

    def trust(*principals: Any) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": p, "Action": "sts:AssumeRole"} for p in principals]}

    arn = f"arn:aws:iam::{PROD}:role/platform"
    assert platform_trust_problems(arn, trust({"AWS": f"arn:aws:iam::{MGMT}:root"}), MGMT) == []
    assert platform_trust_problems(arn, trust({"AWS": MGMT}), MGMT) == []
    assert len(platform_trust_problems(arn, trust({"AWS": [f"arn:aws:iam::{PROD}:root", "*"]}, "*"), MGMT)) == 3
    assert len(platform_trust_problems(arn, trust({"AWS": f"arn:aws:iam::{MGMT}:root"}), None)) == 1
    world = yaml.safe_load(EXAMPLE.read_text())
    world["break_glass"]["platform_principals"] = ["arn:aws:iam::*:role/feature-team"]
    warnings = platform_warnings(parse_world(yaml.safe_dump(world)))  # feature-team in prod and in dev
    assert sorted(w.split(" trusts ")[1].split(":")[4] for w in warnings) == [PROD, "333333333333"]


def test_guardrail_documents_split_long_paths() -> None:
    long = Registry(tuple(SealedRole(f"r{i}{'x' * 60}", "/" + "p" * 200 + "/") for i in range(300)))
    documents = guardrail_documents(long)
    resources = [r for d in documents for s in d["Statement"] for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]
    assert sorted(resources) == sorted(r.pattern for r in long.roles)
    assert all(len(json.dumps(d, separators=(",", ":"))) <= SCP_SIZE_LIMIT for d in documents)
