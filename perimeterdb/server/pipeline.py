"""THE request path, top to bottom: one readable function per protocol.

For a DynamoDB request (JSON 1.0), in the order DynamoDB's front end checks things:
 1. method and content type (anything else is a bare 404 ``<UnknownOperationException/>``);
 2. size limit;
 3. JSON decoding (``SerializationException``), of a body sent uncompressed;
 4. the operation from ``X-Amz-Target`` (``UnknownOperationException``);
 5. SigV4 over the raw request, giving a Principal; then a compressed body is inflated, with a bound
    (``content_encoding.py``), and decoded;
 6. (the network origin of the connection was derived by the app, ``server/network.py``;
    an endpoint listener reached from outside its VPC never gets this far);
 7. validation of the body against the operation's input shape;
 8. authorization of every (action, resource) pair the operation touches;
 9. the operation itself;
10. the response, or the error, encoded once;
11. the audit record, written before the response leaves.

IAM and STS (query protocol) go through ``query_protocol.py`` and Organizations (JSON 1.1) through
``organizations/http.py``, with the same steps.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

from perimeterdb import errors
from perimeterdb.audit import hooks as audit_hooks
from perimeterdb.auth import verify as sigv4_verify
from perimeterdb.breakglass.http import TARGET_PREFIX as BREAKGLASS_PREFIX
from perimeterdb.breakglass.http import handle_breakglass
from perimeterdb.dynamodb import condition_keys
from perimeterdb.dynamodb.call import Call
from perimeterdb.errors import ApiError
from perimeterdb.organizations.http import TARGET_PREFIX, handle_organizations
from perimeterdb.server import content_encoding, query_protocol, targets, wire
from perimeterdb.server.network import refuse
from perimeterdb.server.request import IncomingRequest
from perimeterdb.shapes import validate_request
from perimeterdb.world.regions import check_region

if TYPE_CHECKING:
    from perimeterdb.server.runtime import Runtime

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 16 * 1024 * 1024
JSON_10 = "application/x-amz-json-1.0"
_UNKNOWN_OPERATION_404 = b"<UnknownOperationException/>\n"


def _query_pairs(raw: bytes) -> list[tuple[str, str]]:
    if not raw:
        return []
    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True)


def _decode_body(req: IncomingRequest, limit: int) -> bytes:
    """The body with its Content-Encoding undone, inflated to at most ``limit`` bytes
    (``content_encoding.DecodedTooLarge`` beyond)."""
    encoding = req.headers.get("content-encoding")
    if encoding is None:  # what every SDK sends by default: nothing to undo
        return req.body
    return content_encoding.decode(req.body, ",".join(encoding), limit)


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.serialization("") from None


async def _dynamodb_keys(call: Call, resource: str, body: dict[str, Any]) -> dict[str, object]:
    """The dynamodb:* condition keys of a request on one table (its schema names the partition key)."""
    table = None
    if ":table/" in resource:
        account, region, name = call.resolve_table_name(resource.split("/index/")[0].split("/stream/")[0])
        table = await call.catalog.find(account, region, name)
    return condition_keys.request_keys(table, body)


def _lazy_dynamodb_keys(call: Call, resource: str, body: dict[str, Any]) -> Any:
    async def keys() -> dict[str, object]:
        return await _dynamodb_keys(call, resource, body)

    return keys


async def handle(rt: Runtime, req: IncomingRequest) -> wire.HttpResponse:
    response = await _route(rt, req)
    if "origin" in req.headers:  # a browser's cross-origin request: DynamoDB allows any origin (CORS)
        wire.add_cors(response)
    return response


async def _route(rt: Runtime, req: IncomingRequest) -> wire.HttpResponse:
    request_id = wire.new_request_id()
    rt.sync_caches()
    if req.method == "GET" and req.raw_path == "/" and b"Action=" not in req.query_string:
        host = wire.called_host(req.header("host"), f"dynamodb.{rt.settings.default_region}.amazonaws.com")
        return wire.plain(200, f"healthy: {host}", request_id)
    if req.origin.refused:  # a VPC endpoint's listener reached from outside its VPC
        return await refuse(rt, req, request_id)
    if req.method == "OPTIONS" and "origin" in req.headers:  # a CORS preflight, answered before any auth
        return wire.cors_preflight(
            req.header("access-control-request-method"),
            req.header("access-control-request-headers"),
            request_id,
        )
    target = req.header("x-amz-target") or ""
    if target.startswith("DynamoDB_"):
        return await handle_dynamodb(rt, req, target, request_id)
    if target.startswith(TARGET_PREFIX):
        return await handle_organizations(rt, req, target, request_id)
    if target.startswith(BREAKGLASS_PREFIX):  # the break-glass approval API (breakglass/http.py)
        return await handle_breakglass(rt, req, target, request_id)
    if not target and (req.method == "POST" or b"Action=" in req.query_string):
        return await query_protocol.handle_query(rt, req, request_id)  # IAM, STS (also presigned GETs)
    return wire.HttpResponse(404, _UNKNOWN_OPERATION_404, [(b"x-amzn-requestid", request_id.encode())])


async def handle_dynamodb(
    rt: Runtime, req: IncomingRequest, target: str, request_id: str
) -> wire.HttpResponse:
    content_type = req.header("content-type") or ""
    if content_type != JSON_10:  # what the SDKs send; anything else may carry parameters
        content_type = content_type.split(";")[0].strip()
    reply_type = JSON_10 if content_type == JSON_10 else "application/json"
    # 1. Method and content type.
    if req.method != "POST" or (req.body and content_type not in (JSON_10, "application/json")):
        return wire.HttpResponse(404, _UNKNOWN_OPERATION_404, [(b"x-amzn-requestid", request_id.encode())])
    body: Any = None
    principal: Any = None
    call: Call | None = None
    failure: ApiError | None = None
    try:
        # 2-3. Size and JSON. A compressed body is inflated only once its sender is known (step 5): the
        # signature covers the compressed bytes, and an anonymous client never gets anything inflated.
        if len(req.body) > MAX_REQUEST_BYTES:
            return wire.HttpResponse(413, b"", [(b"x-amzn-requestid", request_id.encode())])
        encoded = "content-encoding" in req.headers
        late = len(req.body) > rt.settings.limits.max_early_parse_bytes  # parsed once its sender is known
        if req.body and not encoded and not late:
            body = _json(req.body)
        # 4. The operation.
        api, _, op_name = target.partition(".")
        operation = targets.dynamodb_operation(op_name) if api == "DynamoDB_20120810" else None
        if operation is None:
            raise errors.unknown_operation()
        # 5. Who is calling.
        parts = sigv4_verify.HttpRequestParts(
            req.method, req.raw_path, _query_pairs(req.query_string), req.headers, req.body
        )
        verified = await sigv4_verify.authenticate(parts, rt.identities.credential, service="dynamodb")
        principal = verified.credential.principal
        await check_region(rt.engine, verified.region)  # the world's regions: (world/regions.py)
        if encoded:
            try:
                raw = _decode_body(req, rt.settings.limits.max_decoded_bytes)
            except content_encoding.DecodedTooLarge:
                return wire.HttpResponse(413, b"", [(b"x-amzn-requestid", request_id.encode())])
            body = _json(raw) if raw else None
        elif late:
            body = _json(req.body)
        if body is None:
            raise errors.serialization("")
        # 7. Validation against the model.
        validate_request("dynamodb", op_name, body)
        call = Call(
            account=principal.account,
            region=verified.region,
            principal=principal,
            catalog=rt.catalog,
            engine=rt.engine,
            settings=rt.settings,
            host=wire.called_host(req.header("host")),
        )

        # 8. Authorization of each (action, resource) pair, with DynamoDB's condition keys.
        async def authorize(action: str, resource: str, keys: Any = None) -> None:
            await rt.authorizer.authorize(
                principal, action, resource, req.origin, verified.region, call, extra_keys=keys
            )

        call.authorize = authorize
        for pair in operation.authorizations(body, call):
            action, resource = pair[0], pair[1]
            if len(pair) > 2:
                await authorize(action, resource, pair[2])
            else:  # the dynamodb:* keys are worked out only if a policy reads one (authz.LazyKeys)
                await authorize(action, resource, _lazy_dynamodb_keys(call, resource, body))
        # 9. The operation.
        result = await operation.run(body, call)
        # 10. The response.
        return wire.json_response(result, request_id, content_type=reply_type)
    except ApiError as error:
        failure = error
        return wire.json_error(error, request_id, content_type=reply_type)
    except Exception:
        log.exception("internal error in %s", target)
        failure = errors.internal()
        return wire.json_error(failure, request_id, content_type=reply_type)
    finally:
        # The audit record, written before the response leaves (audit/log.py: what survives a crash).
        await audit_hooks.dynamodb(rt, req, request_id, target, body, principal, call, failure)
