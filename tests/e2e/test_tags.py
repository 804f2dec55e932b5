"""TagResource, UntagResource and ListTagsOfResource: DynamoDB's limits and messages."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _arn(ddb: Any, table: str) -> str:
    return ddb.describe_table(TableName=table)["Table"]["TableArn"]  # type: ignore[no-any-return]


def _message(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Message"]  # type: ignore[no-any-return]


def test_tag_untag_list(ddb: Any, hash_table: str) -> None:
    arn = _arn(ddb, hash_table)
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == []
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": ""}])
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "2"}])
    tags = {t["Key"]: t["Value"] for t in ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]}
    assert tags == {"a": "2", "b": ""}
    ddb.untag_resource(ResourceArn=arn, TagKeys=["a", "never-there"])
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": ""}]


def test_tag_validation(ddb: Any, hash_table: str) -> None:
    arn = _arn(ddb, hash_table)
    cases = [
        ([], "Atleast one Tag needs to be provided as Input."),
        ([{"Key": "aws:x", "Value": "1"}], "Tag Key cannot be prefixed with aws:, Key: aws:x"),
        ([{"Key": "a#b", "Value": "1"}], "The Tag Key provided is invalid, Key: a#b"),
        (
            [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}],
            "Duplicate Tag Keys provided as input: Duplicate Tag Key found k",
        ),
        (
            [{"Key": f"k{i}", "Value": "v"} for i in range(51)],
            "Number of Tags exceed the current limit for the provided ResourceArn",
        ),
    ]
    for tags, message in cases:
        with pytest.raises(ClientError) as exc:
            ddb.tag_resource(ResourceArn=arn, Tags=tags)
        assert exc.value.response["Error"]["Code"] == "ValidationException"
        assert _message(exc) == message
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    with pytest.raises(ClientError) as exc:
        ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "one-more", "Value": "v"}])
    assert _message(exc) == "Number of Tags exceed the current limit for the provided ResourceArn"
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "k0", "Value": "changed"}])
    with pytest.raises(ClientError) as exc:
        ddb.untag_resource(ResourceArn=arn, TagKeys=[])
    assert _message(exc) == "Atleast one Tag Key needs to be provided as Input."


def test_resource_arn_forms(ddb: Any, hash_table: str) -> None:
    arn = _arn(ddb, hash_table)
    cases = [
        (
            "not-an-arn",
            "ValidationException",
            "One or more parameter values were invalid: ARNs must start with 'arn:': not-an-arn",
        ),
        (
            arn + "/index/x",
            "ValidationException",
            f"One or more parameter values were invalid: Invalid resource arn provided, only table or stream is accepted. Provided resource arn: {arn}/index/x",
        ),
        (
            arn + "-missing",
            "ResourceNotFoundException",
            f"Requested resource not found: ResourcArn: {arn}-missing not found",
        ),
    ]
    for resource, code, message in cases:
        with pytest.raises(ClientError) as exc:
            ddb.list_tags_of_resource(ResourceArn=resource)
        assert (exc.value.response["Error"]["Code"], _message(exc)) == (code, message)


def test_concurrent_tagging_keeps_every_tag(ddb: Any, server: Any, hash_table: str) -> None:
    arn = _arn(ddb, hash_table)

    def tag(i: int) -> None:
        server.client("dynamodb").tag_resource(ResourceArn=arn, Tags=[{"Key": f"t{i}", "Value": "v"}])

    threads = [threading.Thread(target=tag, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]) == 8
