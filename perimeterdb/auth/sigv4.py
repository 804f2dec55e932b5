"""AWS Signature Version 4, as pure functions shared by the verifier and the tests.

Nothing here knows about keys, principals or HTTP servers: callers hand in the parts of a request and get
canonical strings and signatures back. ``verify.py`` uses these to check requests; tests use them to sign.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True, slots=True)
class CredentialScope:
    access_key: str
    date: str  # YYYYMMDD
    region: str
    service: str
    terminator: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


def _uri_encode(text: str, *, safe: str) -> str:
    return quote(text, safe=safe + "-_.~")


@lru_cache(maxsize=1024)
def canonical_uri(raw_path: str) -> str:
    """The path as signed by the SDKs for non-S3 services: each segment decoded once, then encoded twice."""
    if not raw_path:
        return "/"
    segments = [_uri_encode(unquote(s), safe="") for s in raw_path.split("/")]
    return _uri_encode("/".join(segments), safe="/")


def canonical_query(pairs: list[tuple[str, str]], *, exclude_signature: bool = False) -> str:
    if not pairs:
        return ""  # DynamoDB's POSTs carry no query string: skip the sort and join
    items = []
    for name, value in pairs:
        if exclude_signature and name == "X-Amz-Signature":
            continue
        items.append((_uri_encode(name, safe=""), _uri_encode(value, safe="")))
    items.sort()
    return "&".join(f"{k}={v}" for k, v in items)


def canonical_header_value(values: list[str]) -> str:
    if len(values) == 1:
        value = values[0]
        if "  " not in value and value == value.strip() and "\t" not in value:
            return value  # the common case: nothing to trim or collapse
    return ",".join(" ".join(v.split()) for v in values)


def canonical_request(
    method: str,
    raw_path: str,
    query_pairs: list[tuple[str, str]],
    headers: dict[str, list[str]],
    signed_headers: tuple[str, ...],
    payload_hash: str,
    *,
    presigned: bool = False,
) -> str:
    # One list and one join: this runs for every request, and a generator plus nested joins cost more
    # than the hashing that follows. Each header line ends with "\n", and one more "\n" closes the block,
    # which the empty element below gives.
    lines = [method, canonical_uri(raw_path), canonical_query(query_pairs, exclude_signature=presigned)]
    for name in signed_headers:
        values = headers.get(name)
        if values is not None and len(values) == 1:
            value = values[0]
            # The test of canonical_header_value, inlined for the usual single, already-canonical value.
            if "  " not in value and value == value.strip() and "\t" not in value:
                lines.append(name + ":" + value)
                continue
        lines.append(name + ":" + canonical_header_value(values or []))
    lines.append("")
    lines.append(";".join(signed_headers))
    lines.append(payload_hash)
    return "\n".join(lines)


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


@lru_cache(maxsize=4096)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived key; cached because it changes only once a day per key, region and service."""
    k_date = hmac.new(("AWS4" + secret).encode("utf-8"), date.encode("utf-8"), hashlib.sha256).digest()
    k_region = hmac.new(k_date, region.encode("utf-8"), hashlib.sha256).digest()
    k_service = hmac.new(k_region, service.encode("utf-8"), hashlib.sha256).digest()
    return hmac.new(k_service, b"aws4_request", hashlib.sha256).digest()


@lru_cache(maxsize=4096)
def _keyed_hmac(key: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 already keyed with ``key``, only ever copied: with OpenSSL 3, keying a context
    costs more than hashing a request's string to sign, and a copy skips it. Lives as long as
    ``signing_key`` keeps the key itself."""
    return hmac.new(key, digestmod=hashlib.sha256)


def signature(key: bytes, to_sign: str) -> str:
    """HMAC-SHA256 of ``to_sign`` under ``key``, in hex."""
    mac = _keyed_hmac(key).copy()
    mac.update(to_sign.encode("utf-8"))
    return mac.hexdigest()


def signatures_match(expected: str, provided: str) -> bool:
    """Constant-time comparison, so that timing tells an attacker nothing about the right signature."""
    return hmac.compare_digest(expected.encode("ascii", "replace"), provided.encode("ascii", "replace"))


def parse_credential(text: str) -> CredentialScope | None:
    parts = text.split("/")
    if len(parts) != 5:
        return None
    return CredentialScope(*parts)


def sign_headers(
    *,
    method: str,
    path: str,
    query_pairs: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
    access_key: str,
    secret: str,
    region: str,
    service: str,
    amz_date: str,
) -> str:
    """Build an Authorization header value; used by tests and the benchmark's pre-signer."""
    lowered = {k.lower(): [v] for k, v in headers.items()}
    signed = tuple(sorted(lowered))
    payload_hash = hashlib.sha256(body).hexdigest()
    canonical = canonical_request(method, path, query_pairs, lowered, signed, payload_hash)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    sig = signature(
        signing_key(secret, amz_date[:8], region, service), string_to_sign(amz_date, scope, canonical)
    )
    return f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={';'.join(signed)}, Signature={sig}"
