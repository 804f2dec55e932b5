"""Check a request's SigV4 signature and say who signed it.

Authentication returns a value (the ``VerifiedRequest``) and never decides on permissions: the policy
engine consumes that value. The credential lookup is a callback so that this module stays free of storage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from perimeterdb import errors
from perimeterdb.auth import sigv4
from perimeterdb.auth.credentials import CredentialRecord

CLOCK_SKEW = timedelta(minutes=5)
_REQUIRED_PARTS = ("Credential", "Signature", "SignedHeaders")


@dataclass(frozen=True, slots=True)
class HttpRequestParts:
    method: str
    raw_path: str
    query_pairs: list[tuple[str, str]]
    headers: dict[str, list[str]]  # lower-case names
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    credential: CredentialRecord
    region: str
    service: str
    access_key: str


@dataclass(frozen=True, slots=True)
class SignatureClaim:
    """What the request claims about its signature, before checking it."""

    scope: sigv4.CredentialScope
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    session_token: str | None
    presigned: bool


def _format_time(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _parse_authorization(value: str, amz_date: str | None) -> SignatureClaim:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != sigv4.ALGORITHM:
        if algorithm.startswith("AWS4-"):
            if algorithm == "AWS4-":
                pass
            else:
                raise errors.incomplete_signature(f"Unsupported AWS 'algorithm': '{algorithm}'")
        else:
            raise errors.missing_authentication_token()
    params: dict[str, str] = {}
    for part in rest.split(","):
        part = part.strip()
        if not part:
            continue
        name, eq, val = part.partition("=")
        if not eq:
            raise errors.incomplete_signature(
                f"'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{value}'."
            )
        params[name.strip()] = val.strip()
    problems = [
        f"Authorization header requires '{p}' parameter." for p in _REQUIRED_PARTS if not params.get(p)
    ]
    if amz_date is None:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems:
        raise errors.incomplete_signature(" ".join(problems) + f" Authorization={value}")
    scope = sigv4.parse_credential(params["Credential"])
    if scope is None:
        raise errors.incomplete_signature(
            f"Credential should be scoped to a valid region, not '{params['Credential']}'. "
        )
    signed = tuple(h.strip().lower() for h in params["SignedHeaders"].split(";"))
    assert amz_date is not None
    return SignatureClaim(scope, signed, params["Signature"], amz_date, None, presigned=False)


def _parse_presigned(query: dict[str, str]) -> SignatureClaim:
    missing = [
        f"AWS query-string parameters must include '{p}'."
        for p in (
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Signature",
            "X-Amz-SignedHeaders",
            "X-Amz-Date",
        )
        if p not in query
    ]
    if missing:
        raise errors.incomplete_signature(" ".join(missing) + " Re-examine the query-string parameters.")
    if query["X-Amz-Algorithm"] != sigv4.ALGORITHM:
        raise errors.incomplete_signature(f"Unsupported AWS 'algorithm': '{query['X-Amz-Algorithm']}'")
    scope = sigv4.parse_credential(query["X-Amz-Credential"])
    if scope is None:
        raise errors.incomplete_signature(
            f"Credential should be scoped to a valid region, not '{query['X-Amz-Credential']}'. "
        )
    signed = tuple(h.lower() for h in query["X-Amz-SignedHeaders"].split(";"))
    return SignatureClaim(
        scope,
        signed,
        query["X-Amz-Signature"],
        query["X-Amz-Date"],
        query.get("X-Amz-Security-Token"),
        presigned=True,
    )


def read_claim(req: HttpRequestParts) -> SignatureClaim:
    """Find the signature in the header or the query string, or say what is missing."""
    authorization = req.header("authorization")
    query = dict(req.query_pairs)
    if authorization is not None and "X-Amz-Algorithm" in query:
        raise errors.invalid_signature(
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
        )
    if authorization is None:
        if "X-Amz-Algorithm" in query:
            return _parse_presigned(query)
        raise errors.missing_authentication_token()
    if authorization.strip() in ("", "AWS4"):
        raise errors.missing_authentication_token()
    amz_date = req.header("x-amz-date") or req.header("date")
    claim = _parse_authorization(authorization, amz_date)
    token = req.header("x-amz-security-token")
    return SignatureClaim(claim.scope, claim.signed_headers, claim.signature, claim.amz_date, token, False)


def _parse_amz_date(text: str) -> datetime:
    if len(text) == 16 and text[8] == "T" and text[15] == "Z" and text[:8].isdigit() and text[9:15].isdigit():
        try:  # the ISO-8601 basic form, parsed by hand: strptime costs tens of microseconds per request
            return datetime(
                int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[11:13]),
                int(text[13:15]), tzinfo=UTC,
            )
        except ValueError:
            pass
    try:  # the RFC 1123 form of the Date header
        return datetime.strptime(text, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    except ValueError:
        raise errors.incomplete_signature(
            f"Date must be in ISO-8601 'basic format'. Got '{text}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None


def check_clock(signed_at: datetime, now: datetime) -> None:
    if signed_at < now - CLOCK_SKEW:
        raise errors.invalid_signature(
            f"Signature expired: {_format_time(signed_at)} is now earlier than "
            f"{_format_time(now - CLOCK_SKEW)} ({_format_time(now)} - 5 min.)"
        )
    if signed_at > now + CLOCK_SKEW:
        raise errors.invalid_signature(
            f"Signature not yet current: {_format_time(signed_at)} is still later than "
            f"{_format_time(now + CLOCK_SKEW)} ({_format_time(now)} + 5 min.)"
        )


def verify(
    req: HttpRequestParts,
    claim: SignatureClaim,
    record: CredentialRecord | None,
    *,
    service: str,
    now: datetime | None = None,
) -> VerifiedRequest:
    """Verify the request's signature against the credential of its access key (``None``: unknown key).

    The caller reads the claim with ``read_claim`` and looks the key up; the checks here run in the order
    AWS runs them (date, scope, clock, key, token, signature) and raise the error a client would get.
    """
    scope = claim.scope
    signed_at = _parse_amz_date(claim.amz_date)
    now = now or datetime.now(UTC)
    if "host" not in claim.signed_headers:
        raise errors.invalid_signature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    if scope.terminator != "aws4_request":
        raise errors.invalid_signature(
            f"Credential should be scoped with a valid terminator: 'aws4_request', not '{scope.terminator}'."
        )
    if scope.date != claim.amz_date[:8] and scope.date != signed_at.strftime("%Y%m%d"):
        raise errors.invalid_signature(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{scope.date}' != '{signed_at.strftime('%Y%m%d')}', from ISO-8601 string '{claim.amz_date}'."
        )
    if scope.service != service:
        raise errors.invalid_signature(f"Credential should be scoped to correct service: '{service}'. ")
    check_clock(signed_at, now)
    if claim.presigned:
        expires = dict(req.query_pairs).get("X-Amz-Expires")
        if expires is not None:
            if not expires.isdigit() or int(expires) > 604800:
                raise errors.incomplete_signature("X-Amz-Expires must be a non-negative integer up to 604800")
            if now > signed_at + timedelta(seconds=int(expires)):
                raise errors.invalid_signature("Signature expired")

    if record is None or not record.active:
        raise errors.unrecognized_client()
    if record.session_token is not None or claim.session_token is not None:
        if not record.token_matches(claim.session_token):
            raise errors.unrecognized_client()
        if record.expires_at is not None and now.timestamp() >= record.expires_at:
            raise errors.expired_token()

    payload_hash = req.header("x-amz-content-sha256") or ""
    if claim.presigned or payload_hash != "UNSIGNED-PAYLOAD":
        payload_hash = hashlib.sha256(req.body).hexdigest()
    canonical = sigv4.canonical_request(
        req.method,
        req.raw_path,
        req.query_pairs,
        req.headers,
        claim.signed_headers,
        payload_hash,
        presigned=claim.presigned,
    )
    to_sign = sigv4.string_to_sign(claim.amz_date, scope.scope, canonical)
    key = sigv4.signing_key(record.secret, scope.date, scope.region, scope.service)
    if not sigv4.signatures_match(sigv4.signature(key, to_sign), claim.signature):
        raise errors.invalid_signature(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
        )
    return VerifiedRequest(record, scope.region, scope.service, scope.access_key)


async def authenticate(
    req: HttpRequestParts,
    credential_of: Callable[[str], Awaitable[CredentialRecord | None]],
    *,
    service: str,
) -> VerifiedRequest:
    """Read the claim, look its access key up, verify: the whole of SigV4 for one request."""
    claim = read_claim(req)
    return verify(req, claim, await credential_of(claim.scope.access_key), service=service)
