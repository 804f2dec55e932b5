"""SigV4 on the wire: every authentication failure gets DynamoDB's own error type and message."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.support import raw


def _type(body: Any) -> str:
    return body["__type"].split("#")[1]


def test_valid_signature_is_accepted(server: Any) -> None:
    key, secret = server.admin_keys()
    status, body, headers = raw.call(server.endpoint, "ListTables", {}, key, secret)
    assert status == 200, body
    assert "TableNames" in body
    assert len(headers["x-amzn-RequestId"]) == 52
    assert headers["x-amz-crc32"].isdigit()


def test_missing_authentication(server: Any) -> None:
    status, body, _ = raw.post(
        server.endpoint,
        {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.ListTables"},
        b"{}",
    )
    assert status == 400
    assert body == {
        "__type": "com.amazon.coral.service#MissingAuthenticationTokenException",
        "message": "Request is missing Authentication Token",
    }


def test_incomplete_signature(server: Any) -> None:
    status, body, _ = raw.post(
        server.endpoint,
        {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Authorization": "AWS4-",
        },
        b"{}",
    )
    assert status == 400
    assert _type(body) == "IncompleteSignatureException"
    assert body["message"] == (
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' "
        "parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires "
        "existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-"
    )


def test_unknown_access_key(server: Any) -> None:
    status, body, _ = raw.call(server.endpoint, "ListTables", {}, "AKIAAAAAAAAAAAAAAAAA", "x" * 40)
    assert status == 400
    assert body == {
        "__type": "com.amazon.coral.service#UnrecognizedClientException",
        "message": "The security token included in the request is invalid.",
    }


def test_wrong_secret(server: Any) -> None:
    key, secret = server.admin_keys()
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    status, body, _ = raw.call(server.endpoint, "ListTables", {}, key, wrong)
    assert status == 400
    assert _type(body) == "InvalidSignatureException"
    assert body["message"].startswith("The request signature we calculated does not match")


def test_tampered_body_fails_signature(server: Any) -> None:
    key, secret = server.admin_keys()
    headers = raw.signed_headers(server.endpoint, "DynamoDB_20120810.ListTables", b"{}", key, secret)
    status, body, _ = raw.post(server.endpoint, headers, b'{"Limit": 1}')
    assert status == 400
    assert _type(body) == "InvalidSignatureException"


def test_expired_signature(server: Any) -> None:
    key, secret = server.admin_keys()
    when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)
    status, body, _ = raw.call(server.endpoint, "ListTables", {}, key, secret, when=when)
    assert status == 400
    assert _type(body) == "InvalidSignatureException"
    assert body["message"].startswith(
        f"Signature expired: {when.strftime('%Y%m%dT%H%M%SZ')} is now earlier than"
    )
    assert body["message"].endswith(" - 5 min.)")


def test_future_signature(server: Any) -> None:
    key, secret = server.admin_keys()
    when = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)
    status, body, _ = raw.call(server.endpoint, "ListTables", {}, key, secret, when=when)
    assert status == 400
    assert body["message"].startswith("Signature not yet current:")
    assert body["message"].endswith(" + 5 min.)")


def test_signature_within_window_is_fine(server: Any) -> None:
    key, secret = server.admin_keys()
    when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=4)
    status, body, _ = raw.call(server.endpoint, "ListTables", {}, key, secret, when=when)
    assert status == 200, body


def test_wrong_service_in_scope(server: Any) -> None:
    key, secret = server.admin_keys()
    status, body, _ = raw.call(server.endpoint, "ListTables", {}, key, secret, service="s3")
    assert status == 400
    assert _type(body) == "InvalidSignatureException"
    assert "Credential should be scoped to correct service: 'dynamodb'" in body["message"]


def test_region_comes_from_the_scope(server: Any) -> None:
    west = server.client("dynamodb", region="eu-west-1")
    east = server.client("dynamodb", region="us-east-1")
    west.create_table(
        TableName="regional",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        assert "regional" in west.list_tables()["TableNames"]
        assert "regional" not in east.list_tables()["TableNames"]
        arn = west.describe_table(TableName="regional")["Table"]["TableArn"]
        assert arn.startswith("arn:aws:dynamodb:eu-west-1:")
    finally:
        west.delete_table(TableName="regional")


def test_unknown_operation(server: Any) -> None:
    key, secret = server.admin_keys()
    status, body, _ = raw.call(server.endpoint, "NoSuchThing", {}, key, secret)
    assert status == 400
    assert body == {"__type": "com.amazon.coral.service#UnknownOperationException"}


def test_malformed_json(server: Any) -> None:
    key, secret = server.admin_keys()
    status, body, _ = raw.call(server.endpoint, "ListTables", b"{not json", key, secret)
    assert status == 400
    assert body == {"__type": "com.amazon.coral.service#SerializationException"}


def test_health_check(server: Any) -> None:
    import urllib.request

    with urllib.request.urlopen(server.endpoint + "/") as response:
        assert response.read() == b"healthy: dynamodb.us-east-1.amazonaws.com"
