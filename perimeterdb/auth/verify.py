"""Check a request's SigV4 signature and say who signed it.

Authentication returns a value (the ``VerifiedRequest``) and never decides on permissions: the policy
engine consumes that value. The credential lookup is a callback so that this module stays free of storage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from perimeterdb import errors
from perimeterdb.auth import sigv4
from perimeterdb.auth.credentials import CredentialRecord

CLOCK_SKEW = timedelta(minutes=5)
_REQUIRED_PARTS = ("Credential", "Signature", "SignedHeaders")


# The three per-request types are NamedTuples rather than frozen dataclasses: they stay immutable and keep
# their names, fields and positional order, but a frozen dataclass's __init__ (object.__setattr__ per field)
# costs about a microsecond, several times per request.


class HttpRequestParts(NamedTuple):
    method: str
    raw_path: str
    query_pairs: list[tuple[str, str]]
    headers: dict[str, list[str]]  # lower-case names
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


class VerifiedRequest(NamedTuple):
    credential: CredentialRecord
    region: str
    service: str
    access_key: str


class SignatureClaim(NamedTuple):
    """What the request claims about its signature, before checking it."""

    scope: sigv4.CredentialScope
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    session_token: str | None
    presigned: bool


# NamedTuple's generated __new__ is a Python function; the hot path builds its tuples directly instead,
# which is all that __new__ does after binding its arguments. Typed loosely: the callers name the type.
_new_tuple: Callable[..., Any] = tuple.__new__


def _format_time(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _key_values(rest: str) -> tuple[dict[str, str], str | None]:
    """The ``name=value`` pairs after the algorithm, and the first part that is not one of the three
    parameters exactly once (no ``=``, an unknown name, or a repeat), if any.

    AWS's SigV4 documentation gives the header as exactly ``Credential``, ``SignedHeaders`` and ``Signature``
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html, "Add the
    signature to the request"): anything else there, such as a field appended after the signature, is refused
    rather than ignored.
    """
    params: dict[str, str] = {}
    for part in rest.split(","):
        part = part.strip()
        if not part:
            continue
        name, eq, val = part.partition("=")
        name = name.strip()
        if not eq or name not in _PARAMETER_NAMES or name in params:
            return params, part
        params[name] = val.strip()
    return params, None


_PARAMETER_NAMES = frozenset(_REQUIRED_PARTS)


_FAST_PREFIX = sigv4.ALGORITHM + " "
_SIGNATURE_PART = ", Signature="
# Longer heads skip the cache (and take the general parser): they are not what SDKs send, and the bound
# keeps the cache's memory small whatever clients put in the header.
_CACHED_HEAD_MAX = 1024


@lru_cache(maxsize=1024)
def _parse_authorization_head(head: str) -> tuple[sigv4.CredentialScope, tuple[str, ...]] | None:
    """The scope and signed headers of an Authorization header cut just before its ``, Signature=``.

    That head repeats on every request a client signs for the same key, day and header set, so its parse is
    cached; only the signature after it changes. ``None`` whenever the head is anything but well formed, and
    the caller then runs the general parser, which raises the exact error.
    """
    if not head.startswith(_FAST_PREFIX):
        return None
    params, bad = _key_values(head[len(_FAST_PREFIX) :])
    credential, signed = params.get("Credential"), params.get("SignedHeaders")
    if bad is not None or not credential or not signed:
        return None
    scope = sigv4.parse_credential(credential)
    if scope is None:
        return None
    return scope, tuple(h.strip() for h in signed.split(";"))  # lowercase names, taken as sent


def _check_clock_first(amz_date: str | None) -> None:
    """DynamoDB checks the request's date before the form of its Authorization header: a malformed header on
    an expired request gets "Signature expired" (issue 17). Only on the error path, so it costs nothing."""
    if amz_date is not None:
        signed_at = _parse_iso_basic(amz_date) if len(amz_date) == 16 else None
        if signed_at is not None:
            check_clock(signed_at, datetime.now(UTC))


def _parse_authorization(
    value: str, amz_date: str | None, session_token: str | None = None
) -> SignatureClaim:
    # The fast path, for the form every SDK sends: "AWS4-HMAC-SHA256 Credential=.., SignedHeaders=..,
    # Signature=<hex>". When the text after the last ", Signature=" has no comma and nothing to strip, the
    # general parser below would read exactly the head's parameters plus that signature (the last part, so
    # it wins), and the cached parse of the head stands in for it. (str.isalnum would also do, but it costs
    # a Unicode-database lookup per character.)
    cut = value.rfind(_SIGNATURE_PART)
    if 0 < cut <= _CACHED_HEAD_MAX and amz_date is not None:
        signature = value[cut + len(_SIGNATURE_PART) :]
        if signature and "," not in signature and signature.strip() == signature:
            head = _parse_authorization_head(value[:cut])
            if head is not None:
                return _new_tuple(
                    SignatureClaim, (head[0], head[1], signature, amz_date, session_token, False)
                )
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != sigv4.ALGORITHM:
        if algorithm.startswith("AWS4-"):
            if algorithm == "AWS4-":
                pass
            else:
                raise errors.incomplete_signature(f"Unsupported AWS 'algorithm': '{algorithm}'")
        else:
            raise errors.missing_authentication_token()
    params, bad = _key_values(rest)
    if bad is not None:
        _check_clock_first(amz_date)
        if "=" not in bad:
            raise errors.incomplete_signature(
                f"'{bad}' not a valid key=value pair (missing equal-sign) in Authorization header: '{value}'."
            )
        raise errors.incomplete_signature(
            f"'{bad}' is not an expected parameter of the Authorization header (Credential, SignedHeaders and "
            f"Signature, once each): '{value}'."
        )
    problems = [
        f"Authorization header requires '{p}' parameter." for p in _REQUIRED_PARTS if not params.get(p)
    ]
    if amz_date is None:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems:
        _check_clock_first(amz_date)
        raise errors.incomplete_signature(" ".join(problems) + f" Authorization={value}")
    scope = sigv4.parse_credential(params["Credential"])
    if scope is None:
        raise errors.incomplete_signature(
            f"Credential should be scoped to a valid region, not '{params['Credential']}'. "
        )
    # SignedHeaders is "an alphabetically sorted, semicolon-separated list of lowercase request header
    # names" (AWS SigV4, "Create a canonical request"). Taken as sent, not lowered: a name in another case
    # names no header here, so such a signature never verifies.
    signed = tuple(h.strip() for h in params["SignedHeaders"].split(";"))
    assert amz_date is not None
    return SignatureClaim(scope, signed, params["Signature"], amz_date, session_token, False)


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
    signed = tuple(query["X-Amz-SignedHeaders"].split(";"))  # lowercase names, taken as sent (see above)
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
    headers = req.headers  # looked up directly rather than through req.header(): this runs per request
    values = headers.get("authorization")
    authorization = values[0] if values else None
    has_algorithm = bool(req.query_pairs) and "X-Amz-Algorithm" in dict(req.query_pairs)
    if authorization is not None and has_algorithm:
        raise errors.invalid_signature(
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
        )
    if authorization is None:
        if has_algorithm:
            return _parse_presigned(dict(req.query_pairs))
        raise errors.missing_authentication_token()
    if authorization.strip() in ("", "AWS4"):
        raise errors.missing_authentication_token()
    values = headers.get("x-amz-date")
    amz_date = values[0] if values else None
    if not amz_date:
        values = headers.get("date")
        amz_date = values[0] if values else None
    values = headers.get("x-amz-security-token")
    return _parse_authorization(authorization, amz_date, values[0] if values else None)


@lru_cache(maxsize=256)
def _parse_iso_basic(text: str) -> datetime | None:
    """A 16-character ``YYYYMMDDTHHMMSSZ`` parsed by hand (strptime costs tens of microseconds), or ``None``.

    Cached because every request signed in the same second carries the same string, and even the hand
    parse costs about two microseconds; datetimes are immutable, so sharing them is safe.
    """
    if len(text) == 16 and text[8] == "T" and text[15] == "Z" and text[:8].isdigit() and text[9:15].isdigit():
        try:
            return datetime(
                int(text[0:4]),
                int(text[4:6]),
                int(text[6:8]),
                int(text[9:11]),
                int(text[11:13]),
                int(text[13:15]),
                tzinfo=UTC,
            )
        except ValueError:
            pass
    return None


def _parse_amz_date(text: str) -> datetime:
    # Only 16-character strings reach the cache, so its keys stay small whatever the header holds.
    parsed = _parse_iso_basic(text) if len(text) == 16 else None
    if parsed is not None:
        return parsed
    try:  # the RFC 1123 form of the Date header
        return datetime.strptime(text, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    except ValueError:
        raise errors.incomplete_signature(
            f"Date must be in ISO-8601 'basic format'. Got '{text}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None


def check_clock(signed_at: datetime, now: datetime) -> None:
    # One subtraction and two timedelta compares instead of two datetime shifts: exact either way, since
    # aware datetime arithmetic is in whole microseconds.
    drift = signed_at - now
    if drift < -CLOCK_SKEW:
        raise errors.invalid_signature(
            f"Signature expired: {_format_time(signed_at)} is now earlier than "
            f"{_format_time(now - CLOCK_SKEW)} ({_format_time(now)} - 5 min.)"
        )
    if drift > CLOCK_SKEW:
        raise errors.invalid_signature(
            f"Signature not yet current: {_format_time(signed_at)} is still later than "
            f"{_format_time(now + CLOCK_SKEW)} ({_format_time(now)} + 5 min.)"
        )


def _check_signed_headers(
    headers: dict[str, list[str]], signed_headers: tuple[str, ...], presigned: bool
) -> None:
    """The headers a signature must cover, from AWS's SigV4 documentation
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html, "Create a
    canonical request", CanonicalHeaders and SignedHeaders):

    - "the host header (or :authority for HTTP/2) must be included": also in a presigned URL's
      X-Amz-SignedHeaders (checked first, with the date and scope, in ``verify``);
    - "x-amz-date ... if it is used in the request" must be: when the date comes from that header, or the
      Date header when that is where it comes from (a presigned URL carries it in its signed query string);
    - "any x-amz-* headers that you plan to include in your request must also be added": so a signature
      made for one X-Amz-Target (ListTables) cannot be replayed with another (DescribeLimits), and a
      session token cannot be swapped.
    """
    names = tuple(headers)  # the header set repeats from request to request: its good verdicts are kept
    remembered = (names, signed_headers, presigned)
    if remembered in _HEADER_SETS_SIGNED:
        return
    if not presigned:
        if "x-amz-date" in headers:
            if "x-amz-date" not in signed_headers:
                raise errors.invalid_signature(
                    "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."
                )
        elif "date" not in signed_headers:  # the date came from the Date header: the same rule holds for it
            raise errors.invalid_signature("'Date' must be a 'SignedHeader' in the AWS Authorization.")
    unsigned = [name for name in headers if name[:6] == "x-amz-" and name not in signed_headers]
    if unsigned:
        raise errors.invalid_signature(
            "There were headers present in the request which were not signed: HeadersNotSigned: "
            + ", ".join(sorted(unsigned))
        )
    if len(_HEADER_SETS_SIGNED) >= _HEADER_SETS_MAX:  # clients choose header names: keep the memory bounded
        _HEADER_SETS_SIGNED.clear()
    _HEADER_SETS_SIGNED.add(remembered)


_HEADER_SETS_SIGNED: set[tuple[tuple[str, ...], tuple[str, ...], bool]] = set()
_HEADER_SETS_MAX = 1024


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
    # Unpacked once: the fields are read many times below, and tuple unpacking is cheaper than attributes.
    scope, signed_headers, provided, amz_date, session_token, presigned = claim
    method, raw_path, query_pairs, headers, body = req
    signed_at = _parse_amz_date(amz_date)
    now = now or datetime.now(UTC)
    if "host" not in signed_headers:  # (see _check_signed_headers)
        raise errors.invalid_signature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    if scope.terminator != "aws4_request":
        raise errors.invalid_signature(
            f"Credential should be scoped with a valid terminator: 'aws4_request', not '{scope.terminator}'."
        )
    if scope.date != amz_date[:8] and scope.date != signed_at.strftime("%Y%m%d"):
        raise errors.invalid_signature(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{scope.date}' != '{signed_at.strftime('%Y%m%d')}', from ISO-8601 string '{amz_date}'."
        )
    if scope.service != service:
        raise errors.invalid_signature(f"Credential should be scoped to correct service: '{service}'. ")
    check_clock(signed_at, now)
    if presigned:
        expires = dict(query_pairs).get("X-Amz-Expires")
        if expires is not None:
            # ASCII digits only, and few enough for int(): str.isdigit() is also true of "²" and of 5,000 digits.
            if not (expires.isascii() and expires.isdigit()) or len(expires) > 6 or int(expires) > 604800:
                raise errors.incomplete_signature("X-Amz-Expires must be a non-negative integer up to 604800")
            if now > signed_at + timedelta(seconds=int(expires)):
                raise errors.invalid_signature("Signature expired")

    # A revoked (inactive) break-glass credential is refused all the same, but only once its signature is
    # checked: then the refusal names it, so that its use is audited as break-glass and alerted.
    revoked = record is not None and not record.active and record.principal.break_glass
    if record is None or not (record.active or revoked):
        raise errors.unrecognized_client()
    if record.session_token is not None or session_token is not None:
        if not record.token_matches(session_token):
            raise errors.unrecognized_client()
    # Sessions, and access keys derived from a break-glass session (auth/credentials.lineage_bound), expire.
    if not revoked and record.expires_at is not None and now.timestamp() >= record.expires_at:
        raise errors.expired_token()

    try:
        _check_signed_headers(headers, signed_headers, presigned)
    except errors.ApiError:
        if revoked:  # answered as for an unknown key: nothing tells a revoked key id from a made-up one
            raise errors.unrecognized_client() from None
        raise
    # The payload hash is always that of the body received. "UNSIGNED-PAYLOAD" (and x-amz-content-sha256
    # generally) is Amazon S3's alone ("Signature Calculations for the Authorization Header", Amazon S3 API
    # Reference); for every other service the canonical request ends with Hex(SHA256(payload)) of the
    # request body (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html,
    # "HashedPayload"). A request signed over anything else, such as an unsigned or swapped body, fails
    # the signature check like any other altered request.
    payload_hash = hashlib.sha256(body).hexdigest()
    canonical = sigv4.canonical_request(
        method, raw_path, query_pairs, headers, signed_headers, payload_hash, presigned=presigned
    )
    to_sign = sigv4.string_to_sign(amz_date, scope.scope, canonical)
    key = sigv4.signing_key(record.secret, scope.date, scope.region, scope.service)
    if not sigv4.signatures_match(sigv4.signature(key, to_sign), provided):
        if revoked:
            raise errors.unrecognized_client()
        raise errors.invalid_signature(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
        )
    if revoked:
        refusal = errors.unrecognized_client()
        refusal.revoked_principal = record.principal  # type: ignore[attr-defined]  # audit/log.py reads it
        raise refusal
    return _new_tuple(VerifiedRequest, (record, scope.region, scope.service, scope.access_key))


async def authenticate(
    req: HttpRequestParts,
    credential_of: Callable[[str], Awaitable[CredentialRecord | None]],
    *,
    service: str,
) -> VerifiedRequest:
    """Read the claim, look its access key up, verify: the whole of SigV4 for one request."""
    claim = read_claim(req)
    return verify(req, claim, await credential_of(claim.scope.access_key), service=service)
