"""The JSON 1.0 wire: gzip bodies, content types, CRC32 and request ids, size limits."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson

from tests.support import raw


def test_gzip_request_body(server: Any) -> None:
    key, secret = server.admin_keys()
    body = gzip.compress(orjson.dumps({"Limit": 5}))
    headers = raw.signed_headers(server.endpoint, "DynamoDB_20120810.ListTables", body, key, secret)
    headers["Content-Encoding"] = "gzip"
    status, payload, _ = raw.post(server.endpoint, headers, body)
    assert status == 200, payload
    assert "TableNames" in payload


def test_crc32_matches_body(server: Any) -> None:
    import urllib3

    key, secret = server.admin_keys()
    body = b"{}"
    headers = raw.signed_headers(server.endpoint, "DynamoDB_20120810.ListTables", body, key, secret)
    response = urllib3.PoolManager().request("POST", server.endpoint + "/", body=body, headers=headers)
    assert int(response.headers["x-amz-crc32"]) == zlib.crc32(response.data)
    assert response.headers["content-type"] == "application/x-amz-json-1.0"


def test_plain_json_content_type_is_accepted(server: Any) -> None:
    key, secret = server.admin_keys()
    status, payload, headers = raw.call(
        server.endpoint, "ListTables", {}, key, secret, content_type="application/json"
    )
    assert status == 200, payload
    assert headers["content-type"] == "application/json"


def test_wrong_content_type_is_a_bare_404(server: Any) -> None:
    key, secret = server.admin_keys()
    status, payload, _ = raw.call(server.endpoint, "ListTables", {}, key, secret, content_type="text/plain")
    assert status == 404
    assert payload == b"<UnknownOperationException/>\n"


def test_wrong_member_type_is_a_serialization_error(server: Any) -> None:
    key, secret = server.admin_keys()
    status, payload, _ = raw.call(server.endpoint, "ListTables", {"Limit": "ten"}, key, secret)
    assert status == 400
    assert payload == {
        "__type": "com.amazon.coral.service#SerializationException",
        "Message": "class java.lang.String can not be converted to an Integer",
    }


def test_constraint_violations_are_listed(server: Any) -> None:
    key, secret = server.admin_keys()
    status, payload, _ = raw.call(server.endpoint, "ListTables", {"Limit": 0}, key, secret)
    assert status == 400
    assert payload["__type"].endswith("#ValidationException")
    assert payload["message"] == (
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )


def test_internal_errors_never_leak_tracebacks(server: Any) -> None:
    key, secret = server.admin_keys()
    status, payload, _ = raw.call(server.endpoint, "GetItem", {"TableName": "x" * 3, "Key": []}, key, secret)
    assert status == 400
    assert "Traceback" not in str(payload)


def test_map_value_constraints_are_reported_at_the_map(server: Any) -> None:
    key, secret = server.admin_keys()
    writes = [{"PutRequest": {"Item": {"pk": {"S": str(i)}}}} for i in range(26)]
    status, payload, _ = raw.call(
        server.endpoint, "BatchWriteItem", {"RequestItems": {"tab": writes}}, key, secret
    )
    assert status == 400
    assert payload["message"].startswith("1 validation error detected: Value '{tab=[")
    assert payload["message"].endswith(
        "' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: "
        "[Member must have length less than or equal to 25, Member must have length greater than or equal to 1]"
    )
