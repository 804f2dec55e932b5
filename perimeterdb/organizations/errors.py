"""Organizations' errors (JSON 1.1): the one place their codes and messages are spelled.

botocore reads ``__type`` and keeps what follows ``#``; the model names the message member ``Message``.
"""

from __future__ import annotations

from perimeterdb.errors import ApiError

NAMESPACE = "com.amazonaws.organizations.v20161128"


def _error(code: str, message: str, **extra: str) -> ApiError:
    return ApiError(code, message, namespace=NAMESPACE, message_key="Message", extra=dict(extra) or None)


def access_denied(message: str = "You don't have permissions to access this resource.") -> ApiError:
    return _error("AccessDeniedException", message)


def not_in_use() -> ApiError:
    return _error(
        "AWSOrganizationsNotInUseException",
        "Your account is not a member of an organization.",
    )


def already_in_organization() -> ApiError:
    return _error("AlreadyInOrganizationException", "The provided account is already a member of an organization.")


def constraint(reason: str, message: str) -> ApiError:
    return _error("ConstraintViolationException", message, Reason=reason)


def invalid_input(reason: str, message: str) -> ApiError:
    return _error("InvalidInputException", message, Reason=reason)


def not_found(what: str, message: str) -> ApiError:
    """``what`` is the exception's prefix: Policy, Target, Parent, OrganizationalUnit, Account, Child…"""
    return _error(f"{what}NotFoundException", message)


def duplicate(what: str, message: str) -> ApiError:
    return _error(f"Duplicate{what}Exception", message)


def policy_in_use() -> ApiError:
    return _error(
        "PolicyInUseException",
        "The policy is attached to one or more entities. You must detach it from all roots, OUs, and "
        "accounts before performing this operation.",
    )


def policy_not_attached() -> ApiError:
    return _error("PolicyNotAttachedException", "The policy isn't attached to the specified target.")


def policy_type_not_enabled(policy_type: str) -> ApiError:
    return _error(
        "PolicyTypeNotEnabledException",
        f"The specified policy type {policy_type} isn't currently enabled in this root.",
    )


def policy_type_already_enabled() -> ApiError:
    return _error("PolicyTypeAlreadyEnabledException", "The specified policy type is already enabled.")


def policy_type_not_available(policy_type: str) -> ApiError:
    return _error(
        "PolicyTypeNotAvailableForOrganizationException",
        f"The policy type {policy_type} is not supported by perimeterdb.",
    )


def malformed_policy(message: str) -> ApiError:
    return _error("MalformedPolicyDocumentException", message)


def create_account_status_not_found() -> ApiError:
    return _error("CreateAccountStatusNotFoundException", "We can't find a create account request with the ID.")


def unsupported(operation: str) -> ApiError:
    return _error("UnsupportedAPIEndpointException", f"This operation ({operation}) is not supported.")


def invariant_broken(message: str) -> ApiError:
    """An SCP/RCP change that would break a stored world invariant (prover_invariants.py, docs/prover.md):
    no Reason of AWS's enumeration fits, so none is given (the member is optional)."""
    return _error("ConstraintViolationException", message)


def concurrent_modification() -> ApiError:
    return _error(
        "ConcurrentModificationException",
        "The target of the operation is currently being modified by a different request. Try again later.",
    )
