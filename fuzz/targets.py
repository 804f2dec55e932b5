"""One function per fuzzed surface: feed it an input, and it raises ``Finding`` when the code under test
fails in a way it must not (anything but the surface's documented error type).

Each surface and the only errors it may raise:

- expressions: ``compile_request_expressions`` then evaluate / apply / project: ``ApiError`` with a 4xx
  status (ValidationException for DynamoDB);
- attribute values and request shapes: ``validate_attribute_value``/``validate_item`` and
  ``shapes.validate_request``: ``ApiError`` 4xx (ValidationException or SerializationException);
- SigV4: ``verify.read_claim`` and ``verify.verify``: ``ApiError`` 4xx;
- policies: ``parse_policy``: ``PolicyParseError``; ``compile_policy`` and ``decide`` of a parsed policy:
  nothing at all;
- the world file: ``parse_world``: ``WorldError``.

The Hypothesis tests in tests/fuzz and the atheris drivers in fuzz/ call these same functions, so a crash
found by either is reproduced by both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from perimeterdb.errors import ApiError

__all__ = [
    "Finding",
    "expression_case",
    "policy_case",
    "request_case",
    "sigv4_case",
    "value_case",
    "world_case",
]


class Finding(AssertionError):
    """The code under test failed in a way its contract does not allow."""


class Unreachable(Exception):
    """The input cannot arrive over the wire (the server's JSON decoder would refuse it first)."""


def wire(value: Any) -> Any:
    """``value`` as the server would see it after decoding a JSON body with orjson: big integers become
    floats, and text with lone surrogates cannot be sent at all (``Unreachable``)."""
    import orjson

    try:
        return orjson.loads(json.dumps(value))
    except (orjson.JSONDecodeError, ValueError, TypeError, RecursionError):
        raise Unreachable from None


def _only_4xx(run: Callable[[], Any], what: str) -> Any:
    try:
        return run()
    except ApiError as error:
        if not 400 <= error.status < 500:
            raise Finding(f"{what}: {error!r} is not a client error") from error
        return None
    except RecursionError as error:  # a stack overflow is a crash on the server too
        raise Finding(f"{what}: RecursionError") from error
    except Exception as error:
        raise Finding(f"{what}: {type(error).__name__}: {error}") from error


# --- expressions ----------------------------------------------------------------------------------------


def expression_case(
    *,
    condition: str | None = None,
    update: str | None = None,
    projection: str | None = None,
    filter: str | None = None,
    key_condition: str | None = None,
    names: Mapping[str, Any] | None = None,
    values: Mapping[str, Any] | None = None,
    item: Mapping[str, Any] | None = None,
    operation: str | None = None,
) -> str:
    """Parse, bind, then (when that passes) evaluate, apply and project against ``item``.

    Returns how far the input got: ``unreachable``, ``shape`` (refused by the request shapes), ``refused``
    (a ValidationException from binding) or ``bound``.
    """
    try:
        condition, update, projection, filter, key_condition, names, values = wire(
            [condition, update, projection, filter, key_condition, names, values]
        )
    except Unreachable:
        return "unreachable"
    if not _shapes_accept(condition, update, projection, filter, key_condition, names, values):
        return "shape"
    from perimeterdb.dynamodb import expressions as ex
    from perimeterdb.dynamodb.expressions.keycond import check_key_schema

    def bind() -> Any:
        return ex.compile_request_expressions(
            condition=condition,
            update=update,
            projection=projection,
            filter=filter,
            key_condition=key_condition,
            names=names,
            values=values,
            operation=operation,
        )

    bound = _only_4xx(bind, "compile_request_expressions")
    if bound is None:
        return "refused"
    stored = dict(item or {})
    for cond in (bound.condition, bound.filter):
        if cond is not None:
            _only_4xx(lambda c=cond: ex.evaluate_condition(c, stored), "evaluate_condition")
            _only_4xx(lambda c=cond: ex.evaluate_condition(c, None), "evaluate_condition(None)")
    if bound.update is not None:
        _only_4xx(lambda: ex.check_no_key_updates(bound.update, ["pk", "sk"]), "check_no_key_updates")
        result = _only_4xx(lambda: ex.apply_update(bound.update, stored), "apply_update")
        if result is not None:
            _storable(result.item)
        _only_4xx(lambda: ex.apply_update(bound.update, None, {"pk": {"S": "k"}}), "apply_update(new)")
    if bound.projection is not None:
        _only_4xx(lambda: ex.project(bound.projection, stored), "project")
    if bound.key_clauses is not None:
        schema = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
        _only_4xx(
            lambda: check_key_schema(bound.key_clauses, schema, {"pk": "S", "sk": "N"}),
            "check_key_schema",
        )
    return "bound"


def _shapes_accept(*texts_names_values: Any) -> bool:
    """Whether the request shapes (checked before expressions in the pipeline) let these members through.

    The texts are type-checked as members of the UpdateItem and Query inputs, which between them have
    every expression parameter; a client error there is the documented answer, a crash is a finding.
    """
    from perimeterdb import shapes

    condition, update, projection, filter, key_condition, names, values = texts_names_values
    common = {"TableName": "fuzz", "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
    bodies = {
        "UpdateItem": {
            **common,
            "Key": {"pk": {"S": "k"}},
            "UpdateExpression": update,
            "ConditionExpression": condition,
        },
        "Query": {
            **common,
            "ProjectionExpression": projection,
            "FilterExpression": filter,
            "KeyConditionExpression": key_condition,
        },
    }
    for operation, body in bodies.items():
        body = {k: v for k, v in body.items() if v is not None}
        if (
            _only_4xx(
                lambda o=operation, b=body: shapes.validate_request("dynamodb", o, b) or True,
                f"validate_request({operation})",
            )
            is None
        ):
            return False
    return True


def _storable(item: Mapping[str, Any]) -> None:
    """An item that passes the checks a write makes on an updated item must encode for storage."""
    import orjson

    from perimeterdb.dynamodb import values as v

    if _only_4xx(lambda: v.check_nesting_depth(item) or True, "check_nesting_depth") is None:
        return
    try:
        orjson.dumps({"Responses": {"t": [dict(item)]}})  # the deepest wrapper a response puts it in
    except Exception as error:
        raise Finding(f"an updated item that passed the write checks cannot be encoded: {error}") from error


# --- attribute values and request shapes ----------------------------------------------------------------


def value_case(value: Any) -> None:
    """Validate one AttributeValue (and an item holding it); a valid one must also size and compare."""
    from perimeterdb.dynamodb import values as v

    try:
        value = wire(value)
    except Unreachable:
        return
    normalized = _only_4xx(lambda: v.validate_attribute_value(value), "validate_attribute_value")
    _only_4xx(lambda: v.validate_item({"pk": {"S": "k"}, "a": value}), "validate_item")
    if normalized is None:
        return
    _only_4xx(lambda: v.value_size(normalized), "value_size")
    _only_4xx(lambda: v.values_equal(normalized, normalized), "values_equal")
    _only_4xx(lambda: v.compare_values(normalized, normalized), "compare_values")
    if not v.values_equal(normalized, normalized):
        raise Finding(f"a validated value is not equal to itself: {normalized!r}")


def request_case(operation: str, body: Any) -> None:
    """A decoded JSON body checked against the DynamoDB operation's input shape."""
    from perimeterdb import shapes

    try:
        body = wire(body)
    except Unreachable:
        return
    _only_4xx(lambda: shapes.validate_request("dynamodb", operation, body), f"validate_request({operation})")


# --- SigV4 ----------------------------------------------------------------------------------------------

_NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def sigv4_case(
    headers: Mapping[str, list[str]],
    query_pairs: list[tuple[str, str]] | None = None,
    body: bytes = b"{}",
    raw_path: str = "/",
    method: str = "POST",
) -> None:
    """Read the claim from arbitrary headers and query, then verify it against a known credential."""
    from perimeterdb.auth import verify as v
    from perimeterdb.auth.credentials import CredentialRecord

    # The server decodes header bytes and the raw path as latin-1, and the query with parse_qsl (UTF-8
    # with replacement): give the parser text of exactly those kinds.
    def latin(text: str) -> str:
        return text.encode("utf-8", "replace").decode("latin-1")

    def utf8(text: str) -> str:
        return text.encode("utf-8", "replace").decode("utf-8")

    headers = {latin(k).lower(): [latin(x) for x in vs] for k, vs in headers.items()}
    pairs = [(utf8(k), utf8(x)) for k, x in query_pairs or []]
    req = v.HttpRequestParts(latin(method), latin(raw_path), pairs, headers, body)
    claim = _only_4xx(lambda: v.read_claim(req), "read_claim")
    if claim is None:
        return
    record = CredentialRecord(claim.scope.access_key, "fuzz-secret-fuzz-secret-fuzz-secret-0000", None)  # type: ignore[arg-type]
    _only_4xx(lambda: v.verify(req, claim, record, service="dynamodb", now=_NOW), "verify")
    _only_4xx(lambda: v.verify(req, claim, None, service="dynamodb", now=_NOW), "verify(unknown key)")


# --- policies -------------------------------------------------------------------------------------------


def policy_case(
    document: str | bytes | Mapping[str, Any], kind_index: int, context: Mapping[str, Any]
) -> None:
    """Parse a document as one of the policy kinds; a parsed one must compile and decide without raising."""
    from perimeterdb.policy import (
        ContextKeys,
        PolicyKind,
        PolicyParseError,
        PolicyRef,
        PolicySet,
        PrincipalInfo,
        RequestContext,
        compile_policy,
        decide,
        parse_policy,
    )

    kinds = list(PolicyKind)
    kind = kinds[kind_index % len(kinds)]
    if isinstance(document, str):  # the checks the APIs that store a policy run before the engine's parse
        from perimeterdb.dynamodb.resource_policies import validate_policy
        from perimeterdb.iam.call import check_document

        _only_4xx(lambda: validate_policy(document), "resource_policies.validate_policy")
        _only_4xx(lambda: check_document(document, kind, 10**6, "PolicySize"), "iam check_document")
    try:
        policy = parse_policy(document, kind)
    except PolicyParseError:
        return
    except RecursionError as error:
        raise Finding("parse_policy: RecursionError") from error
    except Exception as error:
        raise Finding(f"parse_policy({kind.value}): {type(error).__name__}: {error}") from error
    try:
        compiled = compile_policy(policy, PolicyRef(kind.value, "fuzz", "fuzz", None))
        account = "111122223333"
        arn = f"arn:aws:iam::{account}:user/alice"
        principal = PrincipalInfo(
            arn, arn, account, "User", "AIDAFUZZFUZZFUZZFUZZ", "alice", (("team", "x"),)
        )
        ctx = RequestContext(
            principal,
            str(context.get("action", "dynamodb:GetItem")),
            str(context.get("resource", f"arn:aws:dynamodb:us-east-1:{account}:table/t")),
            account,
            ContextKeys(context.get("keys", {})),
        )
        for policies in (
            PolicySet(identity=(compiled,)),
            PolicySet(resource=compiled),
            PolicySet(scp_levels=((compiled,),), principal_in_org=True),
            PolicySet(rcp_levels=((compiled,),), resource_in_org=True),
            PolicySet(boundary=compiled, identity=(compiled,)),
            PolicySet(vpce=compiled, identity=(compiled,)),
            PolicySet(session=(compiled,), identity=(compiled,)),
        ):
            decide(ctx, policies)
    except Exception as error:
        raise Finding(
            f"compile/decide of a parsed {kind.value} policy: {type(error).__name__}: {error}"
        ) from error


# --- the world file -------------------------------------------------------------------------------------


def world_case(text: str) -> None:
    from perimeterdb.world.worldfile import WorldError, parse_world

    try:
        parse_world(text, "fuzz.yaml")
    except WorldError:
        return
    except Exception as error:
        raise Finding(f"parse_world: {type(error).__name__}: {error}") from error


def json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None
