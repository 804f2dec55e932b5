"""The request path of AWS Organizations (JSON 1.1, ``X-Amz-Target: AWSOrganizationsV20161128.<Op>``).

1. method and content type (``application/x-amz-json-1.1``);
2. JSON decoding (``SerializationException``);
3. the operation (``UnknownOperationException``);
4. SigV4 (service ``organizations``), giving a Principal;
5. validation against botocore's ``organizations`` model;
6. the operation, which checks the caller's place in the organization and authorizes
   ``organizations:<Op>`` on the ARNs it touches;
7. the audit record; the response or the error, encoded once.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import orjson

from perimeterdb import errors
from perimeterdb.audit.records import generic_parameters
from perimeterdb.auth import verify as sigv4_verify
from perimeterdb.errors import ApiError
from perimeterdb.organizations.api import OPERATIONS, OrgCall
from perimeterdb.server import wire
from perimeterdb.shapes import validate_request

if TYPE_CHECKING:
    from perimeterdb.server.request import IncomingRequest
    from perimeterdb.server.runtime import Runtime

log = logging.getLogger(__name__)

TARGET_PREFIX = "AWSOrganizationsV20161128."
JSON_11 = "application/x-amz-json-1.1"


async def handle_organizations(rt: Runtime, req: IncomingRequest, target: str, request_id: str) -> wire.HttpResponse:
    op_name = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
    principal: Any = None
    params: dict[str, Any] | None = None
    region = "us-east-1"
    noted = SimpleNamespace(notes={})  # the authorizer notes each decision here, allowed or denied
    error: ApiError | None = None
    try:
        content_type = (req.header("content-type") or "").split(";")[0].strip()
        if req.method != "POST" or content_type not in (JSON_11, "application/json"):
            raise errors.unknown_operation()
        late = len(req.body) > rt.settings.limits.max_early_parse_bytes  # parsed once its sender is known
        try:
            body = orjson.loads(req.body) if req.body and not late else {}
        except orjson.JSONDecodeError:
            raise errors.serialization("") from None
        handler = OPERATIONS.get(op_name)
        if handler is None:
            raise errors.unknown_operation()
        parts = sigv4_verify.HttpRequestParts(req.method, req.raw_path, _pairs(req.query_string), req.headers,
                                              req.body)
        verified = await sigv4_verify.authenticate(parts, rt.identities.credential, service="organizations")
        principal = verified.credential.principal
        region = verified.region
        if late:
            try:
                body = orjson.loads(req.body)
            except orjson.JSONDecodeError:
                raise errors.serialization("") from None
        if not isinstance(body, dict):
            raise errors.serialization("")
        params = body
        validate_request("organizations", op_name, body)

        async def authorize(action: str, resource: str) -> None:
            await rt.authorizer.authorize(principal, action, resource, req.origin, region, noted)

        call = OrgCall(op_name, body, principal, rt.organizations, rt.identities, region, authorize)
        result = await handler(call)
        return wire.json_response(result, request_id, content_type=JSON_11)
    except ApiError as exc:
        error = exc
        return wire.json_error(exc, request_id, content_type=JSON_11)
    except Exception:
        log.exception("internal error in %s", target)
        error = errors.internal()
        return wire.json_error(error, request_id, content_type=JSON_11)
    finally:
        audit = getattr(rt, "audit", None)
        if audit is not None:
            await audit.record(
                event_source="organizations.amazonaws.com",
                event_name=op_name or target,
                region=region,
                request_id=request_id,
                principal=principal,
                origin=req.origin,
                request_parameters=generic_parameters(params),
                error=error,
                decisions=noted.notes.get("decisions", []),
                user_agent=req.header("user-agent"),
            )


def _pairs(raw: bytes) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
