"""The pure SigV4 functions agree with botocore's signer, and verification rejects what it must."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- An attacker edits a valid Authorization header (issue 13) ----------------------------------------------


def _edited(authorization: str, position: int, insert: str, delete: int) -> str:
    position %= len(authorization) + 1
    return authorization[:position] + insert + authorization[position + delete :]


@settings(max_examples=400, deadline=None)
@given(
    position=st.integers(0, 400),
    insert=st.text(alphabet=st.sampled_from(list(" ,=;/abcdefABCDEF0123456789Sighnature\t")), max_size=12),
    delete=st.integers(0, 3),
)
def test_an_edited_authorization_header_never_verifies(position: int, insert: str, delete: int) -> None:
    """Any edit of a valid header either leaves it equal to the original up to the spaces AWS ignores, or
    is refused with one of AWS's authentication errors (never accepted, never another exception)."""
    body = b"{}"
    request = _botocore_signed(body)
    parts = _parts(request, body)
    original = parts.headers["authorization"][0]
    edited = _edited(original, position, insert, delete)
    parts.headers["authorization"] = [edited]
    try:
        claim = read_claim(parts)
        record = (
            RECORD if claim.scope.access_key == KEY else None
        )  # the key is looked up, as authenticate does
        verify(parts, claim, record, service="dynamodb")
    except ApiError as error:
        assert error.code in (
            "IncompleteSignatureException",
            "InvalidSignatureException",
            "MissingAuthenticationTokenException",
            "UnrecognizedClientException",
        ), (edited, error)
        return
    # Accepted: then the edit changed nothing but the spaces around the parts, which AWS ignores too.
    assert _parameters(edited) == _parameters(original), edited


def _parameters(authorization: str) -> tuple[str, list[tuple[str, str]]]:
    algorithm, _, rest = authorization.strip().partition(" ")
    pairs = []
    for part in rest.split(","):
        if part.strip():
            name, _, value = part.partition("=")
            if (
                name.strip() == "SignedHeaders"
            ):  # its names are trimmed one by one (the set signed is the same)
                value = ";".join(h.strip() for h in value.split(";"))
            pairs.append((name.strip(), value.strip()))
    return algorithm, sorted(pairs)


def test_unsigned_x_amz_headers_are_named() -> None:
    body = b"{}"
    parts = _parts(_botocore_signed(body), body)
    parts.headers["x-amz-target"] = ["DynamoDB_20120810.DescribeLimits", "DynamoDB_20120810.ListTables"]
    with pytest.raises(ApiError) as exc:  # a second value changes the signed header: the signature fails
        verify(parts, read_claim(parts), RECORD, service="dynamodb")
    assert exc.value.code == "InvalidSignatureException"
    parts = _parts(_botocore_signed(body), body)
    parts.headers["x-amz-security-token"] = ["swapped-in"]
    with pytest.raises(ApiError) as exc:
        verify(parts, read_claim(parts), CredentialRecord(KEY, SECRET, PRINCIPAL), service="dynamodb")
    assert exc.value.code in ("UnrecognizedClientException", "InvalidSignatureException")


def test_a_signed_header_name_in_another_case_never_verifies() -> None:
    """SignedHeaders lists lowercase names; "x-amz-tArget" names no header, so the signature cannot hold
    (found by the edit property above)."""
    body = b"{}"
    request = _botocore_signed(body)
    parts = _parts(request, body)
    original = parts.headers["authorization"][0]
    assert "x-amz-target" in original
    parts.headers["authorization"] = [original.replace("x-amz-target", "x-amz-tArget")]
    with pytest.raises(ApiError):
        verify(parts, read_claim(parts), RECORD, service="dynamodb")
