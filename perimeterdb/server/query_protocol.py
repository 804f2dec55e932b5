"""The request path of the Query-protocol services (IAM, STS), top to bottom.

1. the parameters: the query string and the form-encoded body (``Action=…&Version=…``);
2. SigV4: the claim, whose credential scope names the service (``iam`` or ``sts``);
3. the action and version (``MissingAction``, ``InvalidAction``);
4. the signature, against the access key's credential (errors in the query protocol's spelling:
   ``SignatureDoesNotMatch``, ``InvalidClientTokenId``, ``ExpiredToken``, …); IAM is global and must be
   signed for us-east-1;
5. the input, decoded and validated against the botocore model (``ValidationError``);
6. the operation, which authorizes itself once it knows the resource ARN;
7. the XML response, or the XML error, encoded once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from perimeterdb import iam, sts
from perimeterdb.audit import hooks as audit_hooks
from perimeterdb.auth import verify as sigv4_verify
from perimeterdb.config import RequestLimits
from perimeterdb.errors import ApiError
from perimeterdb.iam import codec
from perimeterdb.iam import errors as qerrors
from perimeterdb.iam.call import QueryCall
from perimeterdb.iam.condition_keys import iam_context
from perimeterdb.server import wire

if TYPE_CHECKING:
    from perimeterdb.server.request import IncomingRequest
    from perimeterdb.server.runtime import Runtime

log = logging.getLogger(__name__)

IAM_REGION = "us-east-1"
_FORM = "application/x-www-form-urlencoded"
_SERVICES = {
    "iam": (iam.OPERATIONS, iam.VERSION, qerrors.IAM_NS),
    "sts": (sts.OPERATIONS, sts.VERSION, qerrors.STS_NS),
}


def _pairs(raw: bytes, what: str, limits: RequestLimits) -> list[tuple[str, str]]:
    # Parsed before the signature is checked (the action names the service): bounded in size and fields
    # (config.RequestLimits), so that no anonymous body costs seconds and hundreds of MB to parse.
    if len(raw) > limits.max_early_parse_bytes:
        raise qerrors.malformed_query(f"The {what} is larger than {limits.max_early_parse_bytes} bytes.")
    try:
        return parse_qsl(
            raw.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=limits.max_form_fields
        )
    except UnicodeDecodeError:
        raise qerrors.malformed_query(f"The {what} is not valid UTF-8 form data.") from None
    except ValueError:
        raise qerrors.malformed_query(
            f"The {what} is not valid form data, or has more than {limits.max_form_fields} fields."
        ) from None


def _guess_service(action: str | None) -> str:
    return "sts" if action in sts.OPERATIONS else "iam"


class _Noted:
    """What ``Authorizer.authorize`` records its decisions on (``notes["decisions"]``), allowed or denied:
    the audit record's ``additionalEventData.decisions``."""

    def __init__(self) -> None:
        self.notes: dict[str, Any] = {}

    @property
    def decisions(self) -> list[Any]:
        return list(self.notes.get("decisions", ()))


class _NotingAuthorizer:
    """The runtime's Authorizer for an operation that calls it directly (STS AssumeRole's trust check): each
    decision it makes without a call of its own is noted on ``noted``, like the ``authorize`` hook's."""

    def __init__(self, inner: Any, noted: _Noted) -> None:
        self._inner = inner
        self._noted = noted

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def note(self, decided: Any) -> None:
        """Record a decision made outside the authorizer (the sealed-role guardrail, iam/guardrail.py)."""
        self._noted.notes.setdefault("decisions", []).append(decided)

    async def authorize(self, principal: Any, action: str, resource: str, origin: Any, region: str,
                        call: Any = None, **context: Any) -> Any:
        return await self._inner.authorize(
            principal, action, resource, origin, region, call if call is not None else self._noted, **context
        )


async def handle_query(rt: Runtime, req: IncomingRequest, request_id: str) -> wire.HttpResponse:
    namespace = qerrors.IAM_NS
    action: str | None = None
    service: str | None = None
    principal: Any = None
    body: Any = None
    region: str | None = None
    result: Any = None
    failure: ApiError | None = None
    noted = _Noted()
    try:
        # 1. Parameters.
        query_pairs = _pairs(req.query_string, "query string", rt.settings.limits)
        content_type = (req.header("content-type") or "").split(";")[0].strip().lower()
        if req.body and content_type not in (_FORM, ""):
            raise qerrors.malformed_query(f"Unsupported content type: {content_type}")
        form_pairs = _pairs(req.body, "request body", rt.settings.limits) if req.body else []
        params = {k: v for k, v in query_pairs if not k.startswith("X-Amz-")}
        params.update(form_pairs)
        action = params.get("Action")
        # 2. The claim names the service.
        parts = sigv4_verify.HttpRequestParts(req.method, req.raw_path, query_pairs, req.headers, req.body)
        guessed = _guess_service(action)
        namespace = _SERVICES[guessed][2]
        claim = sigv4_verify.read_claim(parts)
        service = claim.scope.service if claim.scope.service in _SERVICES else guessed
        operations, version, namespace = _SERVICES[service]
        # 3. The action.
        if not action:
            raise qerrors.missing_action()
        # 4. The signature.
        record = await rt.identities.credential(claim.scope.access_key)
        verified = sigv4_verify.verify(parts, claim, record, service=service)
        if service == "iam" and verified.region != IAM_REGION:
            raise qerrors.ApiError(
                "SignatureDoesNotMatch",
                "Credential should be scoped to a valid region. ",
                status=403,
                namespace="query",
            )
        principal = verified.credential.principal
        handler = operations.get(action)
        if handler is None or params.get("Version") != version:
            raise qerrors.invalid_action(action, params.get("Version") or "")
        if principal.session_kind == "GetSessionToken":
            if service == "iam" and not principal.mfa_authenticated:
                raise qerrors.invalid_client_token()
            if service == "sts" and action not in sts.ALLOWED_WITH_SESSION_TOKEN:
                raise qerrors.access_denied(f"Cannot call {action} with session credentials")
        # 5. The input.
        if action == "AssumeRole":  # a malformed attempt on a break-glass role is flagged and alerted too
            body = {"RoleArn": params.get("RoleArn")}
        body = codec.decode(service, action, params)
        region = verified.region

        async def authorize(iam_action: str, resource: str) -> None:
            context = await iam_context(rt.identities, iam_action, resource, body)
            await rt.authorizer.authorize(
                principal,
                iam_action,
                resource,
                req.origin,
                region,
                noted,
                extra_keys=context.extra_keys,
                request_tags=context.request_tags,
                tag_keys=context.tag_keys,
                resource_tags=context.resource_tags,
            )

        # 6. The operation.
        call = QueryCall(
            operation=action,
            params=body,
            principal=principal,
            store=rt.identities,
            region=region,
            authorize=authorize,
            origin=req.origin,
            authorizer=_NotingAuthorizer(rt.authorizer, noted),
        )
        result = await handler(call)
        await rt.identities.note_key_used(verified.access_key, service, region)
        # 7. The response.
        return wire.xml_response(action, namespace, codec.encode(service, action, result), request_id)
    except ApiError as error:
        failure = qerrors.from_auth(error)
        return wire.xml_error(failure, request_id, namespace)
    except Exception:
        log.exception("internal error in %s", action)
        failure = qerrors.service_failure()
        return wire.xml_error(failure, request_id, namespace)
    finally:
        # The audit record (audit/hooks.py), written before the response leaves.
        await audit_hooks.query(
            rt, req, request_id, service, action, body, principal, region, result, failure, noted.decisions
        )
