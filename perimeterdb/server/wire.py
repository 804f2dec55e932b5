"""How responses and errors look on the wire, for each protocol. The only module that knows.

- JSON 1.0 (DynamoDB) and JSON 1.1 (Organizations): a JSON body; errors carry ``__type`` =
  ``<namespace>#<Code>`` and ``message`` (``Message`` for AccessDeniedException).
- Query protocol (IAM, STS): XML bodies; errors in ``<ErrorResponse><Error>…</Error></ErrorResponse>``.

Every response carries ``x-amzn-RequestId``; JSON responses also carry ``x-amz-crc32`` of the body.
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import orjson

from perimeterdb.counted_ids import CountedIds
from perimeterdb.errors import ApiError

# 52 upper-case hex digits, as DynamoDB's request ids are: a 26-digit prefix per process and a counter.
_REQUEST_IDS = CountedIds(lambda: os.urandom(13).hex().upper(), 16**26)


def new_request_id() -> str:
    prefix, number = _REQUEST_IDS.next()
    return f"{prefix}{number:026X}"


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


_CONTENT_TYPES: dict[str, bytes] = {}


def json_response(payload: Any, request_id: str, *, status: int = 200, content_type: str) -> HttpResponse:
    """``payload`` None is an operation without output (TagResource…): an empty body, as DynamoDB sends."""
    body = orjson.dumps(payload) if payload is not None else b""
    type_header = _CONTENT_TYPES.get(content_type)
    if type_header is None:
        type_header = _CONTENT_TYPES.setdefault(content_type, content_type.encode())
    return HttpResponse(
        status,
        body,
        [
            (b"content-type", type_header),
            (b"x-amzn-requestid", request_id.encode()),
            (b"x-amz-crc32", b"%d" % zlib.crc32(body)),
        ],
    )


def json_error(error: ApiError, request_id: str, *, content_type: str) -> HttpResponse:
    payload: dict[str, Any] = {"__type": f"{error.namespace}#{error.code}"}
    if error.message:
        payload[error.message_key] = error.message
    payload.update(error.extra)
    return json_response(payload, request_id, status=error.status, content_type=content_type)


def xml_response(action: str, namespace: str, result_xml: str, request_id: str) -> HttpResponse:
    body = (
        f'<{action}Response xmlns="{namespace}">'
        + (f"<{action}Result>{result_xml}</{action}Result>" if result_xml is not None else "")
        + f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    ).encode()
    return HttpResponse(
        200, body, [(b"content-type", b"text/xml"), (b"x-amzn-requestid", request_id.encode())]
    )


def xml_error(error: ApiError, request_id: str, namespace: str) -> HttpResponse:
    fault = "Sender" if error.sender_fault else "Receiver"
    body = (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>{fault}</Type>'
        f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    status = error.status
    return HttpResponse(
        status, body, [(b"content-type", b"text/xml"), (b"x-amzn-requestid", request_id.encode())]
    )


def plain(status: int, text: str, request_id: str | None = None) -> HttpResponse:
    headers = [(b"content-type", b"text/plain")]
    body = text.encode()
    if request_id:
        headers.append((b"x-amzn-requestid", request_id.encode()))
        headers.append((b"x-amz-crc32", str(zlib.crc32(body)).encode()))
    return HttpResponse(status, body, headers)


# --- CORS and the host the client called ------------------------------------------------------------------

_CORS_EXPOSE = b"x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date"
_CORS_MAX_AGE = b"172800"
_ECHOABLE = re.compile(r"[\x20-\x7e]{1,4096}")  # printable ASCII only: nothing that could end a header
_HOST = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")


def add_cors(response: HttpResponse) -> None:
    """The headers DynamoDB adds to every response to a request with an ``Origin``: any origin is allowed
    (requests are signed, no cookie is ever read)."""
    response.headers.append((b"access-control-allow-origin", b"*"))
    response.headers.append((b"access-control-expose-headers", _CORS_EXPOSE))


def cors_preflight(method: str | None, headers: str | None, request_id: str) -> HttpResponse:
    """DynamoDB's answer to a preflight (OPTIONS with an Origin): 200, empty, echoing the method and headers
    asked for."""
    response = HttpResponse(200, b"", [(b"x-amzn-requestid", request_id.encode())])
    if headers is not None and _ECHOABLE.fullmatch(headers):
        response.headers.append((b"access-control-allow-headers", headers.encode()))
    if method is not None and _ECHOABLE.fullmatch(method):
        response.headers.append((b"access-control-allow-methods", method.encode()))
    response.headers.append((b"access-control-max-age", _CORS_MAX_AGE))
    return response


def called_host(header: str | None, fallback: str | None = None) -> str | None:
    """The host (and port) the client called, from its Host header when that is a plain host name or
    address, else ``fallback``: what ``GET /`` and DescribeEndpoints name."""
    if header is not None and _HOST.fullmatch(header):
        return header
    return fallback
