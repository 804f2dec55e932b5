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
        assert response.read() == f"healthy: 127.0.0.1:{server.port}".encode()  # the host called


# --- SigV4 as AWS requires it (issue 13) ---------------------------------------------------------------------

_TARGET = "DynamoDB_20120810.ListTables"


def _now_amz() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _hand_signed(
    server: Any, signed: dict[str, str], body: bytes, *, payload_hash: str | None = None
) -> dict[str, str]:
    """Headers whose Authorization covers exactly ``signed`` (plus host), signed with perimeterdb's own
    SigV4 functions; ``payload_hash`` replaces the body's hash in the canonical request."""
    import hashlib

    from perimeterdb.auth import sigv4

    key, secret = server.admin_keys()
    host = server.endpoint.split("//", 1)[1]
    lowered = {k.lower(): [v] for k, v in {**signed, "host": host}.items()}
    names = tuple(sorted(lowered))
    amz_date = signed.get("X-Amz-Date") or _now_amz()
    canonical = sigv4.canonical_request(
        "POST", "/", [], lowered, names, payload_hash or hashlib.sha256(body).hexdigest()
    )
    scope = f"{amz_date[:8]}/us-east-1/dynamodb/aws4_request"
    signature = sigv4.signature(
        sigv4.signing_key(secret, amz_date[:8], "us-east-1", "dynamodb"),
        sigv4.string_to_sign(amz_date, scope, canonical),
    )
    headers = dict(signed)
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers


def _base_headers(target: str = _TARGET) -> dict[str, str]:
    return {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target, "X-Amz-Date": _now_amz()}


def test_hand_signed_request_is_accepted(server: Any) -> None:
    """The control for the tests below: the same signer, with every header signed, is accepted."""
    status, body, _ = raw.post(server.endpoint, _hand_signed(server, _base_headers(), b"{}"), b"{}")
    assert status == 200, body


def test_unsigned_payload_does_not_let_a_changed_body_through(server: Any) -> None:
    headers = _hand_signed(
        server,
        {**_base_headers(), "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"},
        b"",
        payload_hash="UNSIGNED-PAYLOAD",
    )
    for body in (b"{}", b'{"Limit": 1}'):
        status, payload, _ = raw.post(server.endpoint, headers, body)
        assert status == 400, payload
        assert _type(payload) == "InvalidSignatureException", payload
        assert payload["message"].startswith("The request signature we calculated does not match"), payload


def test_botocore_with_unsigned_payload_is_refused(server: Any) -> None:
    """botocore signs over the x-amz-content-sha256 header's value when it is set: UNSIGNED-PAYLOAD."""
    key, secret = server.admin_keys()
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method="POST",
        url=server.endpoint + "/",
        data=b'{"Limit": 1}',
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": _TARGET,
            "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD",
        },
    )
    SigV4Auth(Credentials(key, secret), "dynamodb", "us-east-1").add_auth(request)
    status, payload, _ = raw.post(server.endpoint, dict(request.headers.items()), b'{"Limit": 2}')
    assert status == 400 and _type(payload) == "InvalidSignatureException", payload


def test_mismatched_content_sha256_is_refused(server: Any) -> None:
    import hashlib

    other = hashlib.sha256(b'{"Limit": 1}').hexdigest()
    headers = _hand_signed(
        server, {**_base_headers(), "X-Amz-Content-Sha256": other}, b"", payload_hash=other
    )
    status, payload, _ = raw.post(server.endpoint, headers, b'{"Limit": 2}')
    assert status == 400 and _type(payload) == "InvalidSignatureException", payload


def test_unsigned_target_cannot_replay_a_signature_as_another_operation(server: Any) -> None:
    signed = _base_headers()
    del signed["X-Amz-Target"]
    headers = _hand_signed(server, signed, b"{}")
    headers["X-Amz-Target"] = "DynamoDB_20120810.DescribeLimits"
    status, payload, _ = raw.post(server.endpoint, headers, b"{}")
    assert status == 400, payload
    assert _type(payload) == "InvalidSignatureException", payload
    assert "not signed" in payload["message"] and "x-amz-target" in payload["message"], payload


def test_every_x_amz_header_must_be_signed(server: Any) -> None:
    headers = _hand_signed(server, _base_headers(), b"{}")
    headers["X-Amz-Anything"] = "1"
    status, payload, _ = raw.post(server.endpoint, headers, b"{}")
    assert status == 400 and _type(payload) == "InvalidSignatureException", payload
    assert "x-amz-anything" in payload["message"], payload


def test_x_amz_date_must_be_signed(server: Any) -> None:
    signed = _base_headers()
    amz_date = signed.pop("X-Amz-Date")
    # Signed with the same date in the scope, but the X-Amz-Date header itself left out of SignedHeaders.
    headers = _hand_signed(server, {**signed}, b"{}")
    headers["X-Amz-Date"] = amz_date
    status, payload, _ = raw.post(server.endpoint, headers, b"{}")
    assert status == 400 and _type(payload) == "InvalidSignatureException", payload
    assert payload["message"] == "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.", payload


def test_host_must_be_signed(server: Any) -> None:
    headers = _hand_signed(server, _base_headers(), b"{}")
    auth = headers["Authorization"]
    headers["Authorization"] = auth.replace("SignedHeaders=content-type;host;", "SignedHeaders=content-type;")
    assert headers["Authorization"] != auth
    status, payload, _ = raw.post(server.endpoint, headers, b"{}")
    assert status == 400 and _type(payload) == "InvalidSignatureException", payload
    assert payload["message"] == "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."


def test_presigned_query_must_sign_host(server: Any) -> None:
    """A presigned STS GetCallerIdentity URL (what EKS and Vault use) works, and the same URL whose
    X-Amz-SignedHeaders leaves host out is refused."""
    import urllib3
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    key, secret = server.admin_keys()
    http = urllib3.PoolManager()
    results = {}
    for signed_extra in ({}, {"X-K8s-Aws-Id": "cluster"}):
        request = AWSRequest(
            method="GET",
            url=server.endpoint + "/?Action=GetCallerIdentity&Version=2011-06-15",
            headers=signed_extra,
        )
        SigV4QueryAuth(Credentials(key, secret), "sts", "us-east-1").add_auth(request)
        response = http.request("GET", request.url, headers=signed_extra, retries=False)
        results[bool(signed_extra)] = response.status
        assert response.status == 200, response.data
        if signed_extra:
            assert "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id" in request.url, request.url
            stripped = request.url.replace(
                "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id", "X-Amz-SignedHeaders=x-k8s-aws-id"
            )
            response = http.request("GET", stripped, headers=signed_extra, retries=False)
            assert response.status in (400, 403), response.data
            assert b"'Host' or ':authority' must be a 'SignedHeader'" in response.data, response.data
    assert results == {False: 200, True: 200}


def test_fields_after_the_signature_are_refused(server: Any) -> None:
    good = _hand_signed(server, _base_headers(), b"{}")
    for suffix in (", Foo=bar", ", Signature=" + "0" * 64, ",junk", "garbage"):
        headers = dict(good)
        headers["Authorization"] = good["Authorization"] + suffix
        status, payload, _ = raw.post(server.endpoint, headers, b"{}")
        assert status in (400, 403), (suffix, payload)
        assert _type(payload) in ("IncompleteSignatureException", "InvalidSignatureException"), (
            suffix,
            payload,
        )


def test_space_separated_authorization_on_an_expired_request_says_expired(server: Any) -> None:
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ")
    headers = _hand_signed(server, {**_base_headers(), "X-Amz-Date": old}, b"{}")
    headers["Authorization"] = headers["Authorization"].replace(", ", " ")
    status, payload, _ = raw.post(server.endpoint, headers, b"{}")
    assert status == 400 and _type(payload) == "InvalidSignatureException", payload
    assert payload["message"].startswith("Signature expired"), payload


def test_a_date_header_must_be_signed_when_it_gives_the_date(server: Any) -> None:
    from email.utils import formatdate

    signed = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": _TARGET}
    date = formatdate(usegmt=True)
    amz_date = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    # Signed with the Date header's moment, but with Date left out of SignedHeaders.
    headers = _hand_signed(server, signed, b"{}")
    headers["Date"] = date
    assert "X-Amz-Date" not in headers and amz_date[:8] in headers["Authorization"]
    status, payload, _ = raw.post(server.endpoint, headers, b"{}")
    assert status == 400 and _type(payload) == "InvalidSignatureException", payload
    assert payload["message"] == "'Date' must be a 'SignedHeader' in the AWS Authorization.", payload
