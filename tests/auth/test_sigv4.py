"""The pure SigV4 functions agree with botocore's signer, and verification rejects what it must."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from perimeterdb.auth import sigv4
from perimeterdb.auth.credentials import CredentialRecord
from perimeterdb.auth.principal import Principal
from perimeterdb.auth.verify import HttpRequestParts, read_claim, verify
from perimeterdb.errors import ApiError

KEY, SECRET = "AKIAEXAMPLEEXAMPLE00", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PRINCIPAL = Principal(
    "arn:aws:iam::111122223333:user/u", "arn:aws:iam::111122223333:user/u", "111122223333", "User", "AIDA1"
)
RECORD = CredentialRecord(KEY, SECRET, PRINCIPAL)


def _botocore_signed(body: bytes, *, path: str = "/", query: bool = False) -> AWSRequest:
    request = AWSRequest(
        method="POST",
        url=f"http://localhost:8000{path}",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
        },
    )
    auth = SigV4QueryAuth if query else SigV4Auth
    signer = auth(Credentials(KEY, SECRET), "dynamodb", "us-east-1")
    signer.add_auth(request)
    return request


def _parts(request: AWSRequest, body: bytes) -> HttpRequestParts:
    from urllib.parse import parse_qsl, urlsplit

    url = urlsplit(request.url)
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    headers["host"] = [url.netloc]
    return HttpRequestParts(
        "POST", url.path or "/", parse_qsl(url.query, keep_blank_values=True), headers, body
    )


def test_botocore_header_signature_verifies() -> None:
    body = b'{"Limit": 3}'
    parts = _parts(_botocore_signed(body), body)
    verified = verify(parts, read_claim(parts), RECORD, service="dynamodb")
    assert verified.region == "us-east-1"
    assert verified.credential.principal is PRINCIPAL


def test_botocore_presigned_url_verifies() -> None:
    signed = _botocore_signed(b"{}", query=True)  # botocore moves the body into the query string
    parts = _parts(signed, b"")
    claim = read_claim(parts)
    assert claim.presigned
    verify(parts, claim, RECORD, service="dynamodb")


def test_changed_body_fails() -> None:
    parts = _parts(_botocore_signed(b"{}"), b'{"x": 1}')
    with pytest.raises(ApiError) as exc:
        verify(parts, read_claim(parts), RECORD, service="dynamodb")
    assert exc.value.code == "InvalidSignatureException"


def test_unknown_key_is_unrecognized() -> None:
    parts = _parts(_botocore_signed(b"{}"), b"{}")
    with pytest.raises(ApiError) as exc:
        verify(parts, read_claim(parts), None, service="dynamodb")
    assert exc.value.code == "UnrecognizedClientException"


def test_inactive_key_is_unrecognized() -> None:
    parts = _parts(_botocore_signed(b"{}"), b"{}")
    inactive = CredentialRecord(KEY, SECRET, PRINCIPAL, active=False)
    with pytest.raises(ApiError) as exc:
        verify(parts, read_claim(parts), inactive, service="dynamodb")
    assert exc.value.code == "UnrecognizedClientException"


def test_session_token_must_match_and_not_be_expired() -> None:
    now = dt.datetime.now(dt.UTC)
    record = CredentialRecord(KEY, SECRET, PRINCIPAL, session_token="tok", expires_at=now.timestamp() + 60)
    parts = _parts(_botocore_signed(b"{}"), b"{}")
    with pytest.raises(ApiError) as exc:  # no token presented
        verify(parts, read_claim(parts), record, service="dynamodb")
    assert exc.value.code == "UnrecognizedClientException"
    parts.headers["x-amz-security-token"] = ["tok"]
    expired = CredentialRecord(KEY, SECRET, PRINCIPAL, session_token="tok", expires_at=now.timestamp() - 1)
    with pytest.raises(ApiError) as exc:
        verify(parts, read_claim(parts), expired, service="dynamodb")
    assert exc.value.code == "ExpiredTokenException"


def test_signing_key_matches_aws_documented_example() -> None:
    # The derived-key example of AWS's SigV4 documentation (secret, 20120215, us-east-1, iam).
    key = sigv4.signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_canonical_query_sorts_and_encodes() -> None:
    assert sigv4.canonical_query([("b", "2"), ("a", "x y"), ("a", "1")]) == "a=1&a=x%20y&b=2"


def test_constant_time_compare_used() -> None:
    assert sigv4.signatures_match("ab", "ab")
    assert not sigv4.signatures_match("ab", "ac")
    assert hashlib.sha256(b"").hexdigest() == sigv4.EMPTY_SHA256
