"""IAM's and STS's error codes, statuses and message texts (Query protocol: XML ``<ErrorResponse>``).

Codes and HTTP statuses are those of the botocore models (``NoSuchEntity`` 404, ``EntityAlreadyExists``,
``DeleteConflict`` and ``LimitExceeded`` 409, ``MalformedPolicyDocument`` 400, ...). The authentication
errors are the query-protocol spellings of the coral errors ``auth/verify.py`` raises (see ``from_auth``).
"""

from __future__ import annotations

from perimeterdb.errors import ApiError

IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def _error(code: str, message: str, status: int = 400) -> ApiError:
    return ApiError(code, message, status=status, namespace="query")


def no_such_entity(message: str) -> ApiError:
    return _error("NoSuchEntity", message, 404)


def entity_already_exists(message: str) -> ApiError:
    return _error("EntityAlreadyExists", message, 409)


def limit_exceeded(message: str) -> ApiError:
    return _error("LimitExceeded", message, 409)


def delete_conflict(message: str) -> ApiError:
    return _error("DeleteConflict", message, 409)


def validation_error(message: str) -> ApiError:
    return _error("ValidationError", message, 400)


def malformed_policy(message: str) -> ApiError:
    return _error("MalformedPolicyDocument", message, 400)


def invalid_input(message: str) -> ApiError:
    return _error("InvalidInput", message, 400)


def policy_not_attachable(message: str) -> ApiError:
    return _error("PolicyNotAttachable", message, 400)


def invalid_authentication_code(message: str) -> ApiError:
    return _error("InvalidAuthenticationCode", message, 403)


def packed_policy_too_large(message: str) -> ApiError:
    return _error("PackedPolicyTooLarge", message, 400)


def access_denied(message: str) -> ApiError:
    return _error("AccessDenied", message, 403)


def not_authorized(principal_arn: str, action: str, resource: str, why: str = "") -> ApiError:
    tail = f" {why}" if why else ""
    return access_denied(
        f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource}{tail}"
    )


def invalid_action(action: str, version: str) -> ApiError:
    return _error("InvalidAction", f"Could not find operation {action} for version {version}", 400)


def missing_action() -> ApiError:
    return _error("MissingAction", "Missing Action", 400)


def malformed_query(message: str) -> ApiError:
    return _error("MalformedQueryString", message, 400)


def invalid_client_token() -> ApiError:
    return _error("InvalidClientTokenId", "The security token included in the request is invalid.", 403)


def expired_token() -> ApiError:
    return _error("ExpiredToken", "The security token included in the request is expired", 403)


def service_failure() -> ApiError:
    return ApiError("ServiceFailure", "Internal failure", status=500, namespace="query", sender_fault=False)


_AUTH_CODES = {
    "MissingAuthenticationTokenException": ("MissingAuthenticationToken", 403),
    "IncompleteSignatureException": ("IncompleteSignature", 400),
    "InvalidSignatureException": ("SignatureDoesNotMatch", 403),
    "UnrecognizedClientException": ("InvalidClientTokenId", 403),
    "ExpiredTokenException": ("ExpiredToken", 403),
    "AccessDeniedException": ("AccessDenied", 403),
}


def from_auth(error: ApiError) -> ApiError:
    """The query-protocol form of an authentication or authorization error raised for DynamoDB's wire."""
    mapped = _AUTH_CODES.get(error.code)
    if mapped is None:
        return error
    code, status = mapped
    message = error.message
    if code == "MissingAuthenticationToken":
        message = "Request is missing Authentication Token"
    out = _error(code, message, status)
    if getattr(error, "revoked_principal", None) is not None:  # auth/verify.py: for the audit record
        out.revoked_principal = error.revoked_principal  # type: ignore[attr-defined]
    return out
