"""The Query protocol codec: flat form pairs in, model-shaped XML out."""

from __future__ import annotations

import pytest

from perimeterdb.errors import ApiError
from perimeterdb.iam import codec


def test_decode_lists_and_structures() -> None:
    body = codec.decode(
        "sts",
        "AssumeRole",
        {
            "RoleArn": "arn:aws:iam::123456789012:role/r",
            "RoleSessionName": "s1",
            "DurationSeconds": "900",
            "Tags.member.1.Key": "a",
            "Tags.member.1.Value": "1",
            "Tags.member.2.Key": "b",
            "Tags.member.2.Value": "2",
            "PolicyArns.member.1.arn": "arn:aws:iam::aws:policy/ReadOnlyAccess",
        },
    )
    assert body["DurationSeconds"] == 900
    assert body["Tags"] == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]
    assert body["PolicyArns"] == [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}]


def test_decode_reports_iam_validation_errors() -> None:
    with pytest.raises(ApiError) as exc:
        codec.decode("iam", "CreateUser", {})
    assert exc.value.code == "ValidationError"
    assert exc.value.message == (
        "1 validation error detected: Value null at 'userName' failed to satisfy "
        "constraint: Member must not be null"
    )
    with pytest.raises(ApiError) as exc:
        codec.decode(
            "sts", "AssumeRole", {"RoleArn": "x" * 20, "RoleSessionName": "s1", "DurationSeconds": "ten"}
        )
    assert exc.value.code == "ValidationError"


def test_encode_lists_with_member_wrappers() -> None:
    xml = codec.encode(
        "iam",
        "ListUsers",
        {
            "Users": [{"UserName": "a", "Path": "/", "UserId": "AIDA", "Arn": "arn", "CreateDate": 0}],
            "IsTruncated": False,
        },
    )
    assert xml.startswith("<Users><member><Path>/</Path><UserName>a</UserName>")
    assert "<CreateDate>1970-01-01T00:00:00Z</CreateDate>" in xml and xml.endswith(
        "<IsTruncated>false</IsTruncated>"
    )


def test_encode_escapes_text() -> None:
    xml = codec.encode("sts", "GetCallerIdentity", {"UserId": "<&>", "Account": "1", "Arn": "a"})
    assert "<UserId>&lt;&amp;&gt;</UserId>" in xml
