"""The one error type of perimeterdb, and the named factories that build it.

Every failure a client can see is an ``ApiError``. Code below the server raises it through the factories
here, so that the wire names (``__type`` namespaces, codes, HTTP statuses) are spelled in one place only.
``server/wire.py`` decides how an ``ApiError`` looks on the wire for each protocol.
"""

from __future__ import annotations

from typing import Any

DYNAMODB_NS = "com.amazonaws.dynamodb.v20120810"
CORAL_NS = "com.amazon.coral.service"
CORAL_VALIDATE_NS = "com.amazon.coral.validate"


class ApiError(Exception):
    """An error the client receives: a code, a message, an HTTP status and optional extra fields.

    ``namespace`` is the JSON protocol's ``__type`` prefix; query-protocol services (IAM, STS) ignore it.
    ``extra`` carries additional members of the error body (``Item``, ``CancellationReasons``).
    ``message_key`` is ``message`` for almost every error; AccessDeniedException spells it ``Message``.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 400,
        namespace: str = DYNAMODB_NS,
        extra: dict[str, Any] | None = None,
        message_key: str = "message",
        sender_fault: bool = True,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.namespace = namespace
        self.extra = extra or {}
        self.message_key = message_key
        self.sender_fault = sender_fault

    def __repr__(self) -> str:
        return f"ApiError({self.code!r}, {self.message!r}, status={self.status})"


# --- DynamoDB data-plane errors -------------------------------------------------------------------------


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message, namespace=CORAL_VALIDATE_NS)


def serialization(message: str) -> ApiError:
    # DynamoDB spells this member "Message" for type errors (as its coral front end does), like AccessDenied.
    return ApiError("SerializationException", message, namespace=CORAL_NS, message_key="Message")


def unknown_operation(message: str = "") -> ApiError:
    return ApiError("UnknownOperationException", message, namespace=CORAL_NS)


def resource_not_found(message: str = "Requested resource not found") -> ApiError:
    return ApiError("ResourceNotFoundException", message)


def table_not_found(name: str) -> ApiError:
    """What the backup operations (DescribeContinuousBackups…) answer for a missing table."""
    return ApiError("TableNotFoundException", f"Table not found: {name}")


def resource_in_use(message: str) -> ApiError:
    return ApiError("ResourceInUseException", message)


def conditional_check_failed(item: dict[str, Any] | None = None) -> ApiError:
    extra = {"Item": item} if item is not None else None
    return ApiError("ConditionalCheckFailedException", "The conditional request failed", extra=extra)


def limit_exceeded(message: str) -> ApiError:
    return ApiError("LimitExceededException", message)


def transaction_canceled(message: str, reasons: list[dict[str, Any]]) -> ApiError:
    return ApiError("TransactionCanceledException", message, extra={"CancellationReasons": reasons})


def transaction_conflict(message: str) -> ApiError:
    return ApiError("TransactionConflictException", message)


def transaction_in_progress(message: str) -> ApiError:
    return ApiError("TransactionInProgressException", message)


def idempotent_parameter_mismatch(message: str) -> ApiError:
    return ApiError("IdempotentParameterMismatchException", message)


def item_collection_size_limit(message: str) -> ApiError:
    return ApiError("ItemCollectionSizeLimitExceededException", message)


def policy_not_found(message: str) -> ApiError:
    return ApiError("PolicyNotFoundException", message)


def internal(message: str = "Internal server error") -> ApiError:
    return ApiError("InternalServerError", message, status=500, sender_fault=False)


# --- Authentication and authorization (coral namespace, shared by every JSON service) -------------------


def missing_authentication_token() -> ApiError:
    return ApiError(
        "MissingAuthenticationTokenException", "Request is missing Authentication Token", namespace=CORAL_NS
    )


def incomplete_signature(message: str) -> ApiError:
    return ApiError("IncompleteSignatureException", message, namespace=CORAL_NS)


def invalid_signature(message: str) -> ApiError:
    return ApiError("InvalidSignatureException", message, namespace=CORAL_NS)


def unrecognized_client() -> ApiError:
    return ApiError(
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
        namespace=CORAL_NS,
    )


def expired_token() -> ApiError:
    return ApiError(
        "ExpiredTokenException", "The security token included in the request is expired", namespace=CORAL_NS
    )


def access_denied(message: str) -> ApiError:
    return ApiError("AccessDeniedException", message, namespace=CORAL_NS, message_key="Message")
