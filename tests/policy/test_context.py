from datetime import UTC, datetime

from perimeterdb.policy import ContextKeys, NetworkOrigin, PrincipalInfo, standard_keys

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_keys_are_case_insensitive() -> None:
    keys = ContextKeys({"aws:PrincipalTag/Team": "x", "b": True, "c": ["1", 2], "d": None})
    assert keys["AWS:principaltag/team"] == "x"
    assert keys["b"] == "true"
    assert keys["c"] == ("1", "2")
    assert "d" not in keys


def test_standard_keys_for_a_user_over_the_internet(alice: PrincipalInfo) -> None:
    k = standard_keys(
        alice, origin=NetworkOrigin("203.0.113.7"), now=NOW, region="us-east-1", resource_account="1"
    )
    assert k["aws:username"] == "alice"
    assert k["aws:SourceIp"] == "203.0.113.7"
    assert "aws:SourceVpc" not in k and "aws:VpcSourceIp" not in k
    assert "aws:MultiFactorAuthPresent" not in k  # long-term credentials
    assert k["aws:CurrentTime"] == "2026-06-01T12:00:00Z"
    assert k["aws:EpochTime"] == str(int(NOW.timestamp()))
    assert k["aws:PrincipalTag/team"] == "payments"


def test_standard_keys_through_an_endpoint(session: PrincipalInfo) -> None:
    origin = NetworkOrigin("10.0.0.5", vpc_id="vpc-1", vpce_id="vpce-1", vpce_account="1", vpce_org_id="o-1")
    k = standard_keys(session, origin=origin, now=NOW, region="us-east-1")
    assert "aws:SourceIp" not in k
    assert (
        k["aws:SourceVpce"] == "vpce-1" and k["aws:VpcSourceIp"] == "10.0.0.5" and k["aws:VpceOrgID"] == "o-1"
    )
    assert "aws:username" not in k
    assert k["aws:PrincipalArn"] == "arn:aws:iam::111122223333:role/app"


def test_anonymous_keys() -> None:
    anon = PrincipalInfo("anonymous", "anonymous", "anonymous", "Anonymous", "anonymous")
    k = standard_keys(anon, origin=NetworkOrigin("1.2.3.4"), now=NOW, region="us-east-1")
    assert "aws:PrincipalArn" not in k
    assert k["aws:PrincipalAccount"] == "anonymous" and k["aws:userid"] == "anonymous"
