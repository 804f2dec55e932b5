"""DynamoDB's own condition keys for a request (Service Authorization Reference, "dynamodb" prefix).

- ``dynamodb:LeadingKeys``: the partition-key values the request touches;
- ``dynamodb:Attributes``: the top-level attribute names it reads or writes (absent when it reads all);
- ``dynamodb:ReturnValues``, ``dynamodb:ReturnConsumedCapacity``, ``dynamodb:Select``: the parameters.

Absent parameters give absent keys, so that ``ForAllValues`` and ``Null`` conditions behave as on AWS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from perimeterdb.dynamodb.catalog import Table

_NAME = re.compile(r"#[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_]*")
_FUNCTIONS = frozenset(
    {
        "attribute_exists",
        "attribute_not_exists",
        "attribute_type",
        "begins_with",
        "contains",
        "size",
        "if_not_exists",
        "list_append",
        "and",
        "or",
        "not",
        "between",
        "in",
        "set",
        "remove",
        "add",
        "delete",
    }
)


def _scalar_text(value: Mapping[str, Any]) -> str | None:
    for kind in ("S", "N", "B"):
        if kind in value:
            return str(value[kind])
    return None


def leading_keys(table: Table, items: Iterable[Mapping[str, Any]]) -> list[str]:
    name = table.hash_key.name
    out = []
    for item in items:
        value = item.get(name) if isinstance(item, Mapping) else None
        text = _scalar_text(value) if isinstance(value, Mapping) else None
        if text is not None and text not in out:
            out.append(text)
    return out


def projected_names(expression: str | None, names: Mapping[str, str] | None) -> list[str] | None:
    """Top-level attribute names of a projection (``a.b[1]`` names ``a``), resolving ``#`` placeholders."""
    if expression is None:
        return None
    out: list[str] = []
    for part in expression.split(","):
        head = re.split(r"[.\[]", part.strip(), maxsplit=1)[0].strip()
        resolved = (names or {}).get(head, head) if head.startswith("#") else head
        if resolved and resolved not in out:
            out.append(resolved)
    return out


def request_keys(table: Table | None, body: Mapping[str, Any]) -> dict[str, object]:
    keys: dict[str, object] = {}
    for parameter, key in (
        ("ReturnValues", "dynamodb:ReturnValues"),
        ("ReturnConsumedCapacity", "dynamodb:ReturnConsumedCapacity"),
        ("Select", "dynamodb:Select"),
    ):
        if isinstance(body.get(parameter), str):
            keys[key] = body[parameter]
    if table is None:
        return keys
    sources = [v for v in (body.get("Key"), body.get("Item")) if isinstance(v, Mapping)]
    if sources:
        keys["dynamodb:LeadingKeys"] = leading_keys(table, sources)
    attributes: list[str] | None = None
    if isinstance(body.get("Item"), Mapping):
        attributes = list(body["Item"])
    elif isinstance(body.get("AttributesToGet"), list):
        attributes = [a for a in body["AttributesToGet"] if isinstance(a, str)]
    elif isinstance(body.get("ProjectionExpression"), str):
        attributes = projected_names(body["ProjectionExpression"], body.get("ExpressionAttributeNames"))
    elif isinstance(body.get("UpdateExpression"), str):
        attributes = _updated_names(body["UpdateExpression"], body.get("ExpressionAttributeNames"))
        attributes = [k["AttributeName"] for k in table.key_schema] + [
            a for a in attributes if a not in {k["AttributeName"] for k in table.key_schema}
        ]
    elif isinstance(body.get("AttributeUpdates"), Mapping):
        attributes = [k["AttributeName"] for k in table.key_schema] + list(body["AttributeUpdates"])
    if attributes is not None:
        keys["dynamodb:Attributes"] = attributes
    return keys


def _updated_names(expression: str, names: Mapping[str, str] | None) -> list[str]:
    """Top-level attribute names an UpdateExpression assigns (left-hand sides), best effort."""
    out: list[str] = []
    for clause in re.split(r"(?i)\b(?:SET|REMOVE|ADD|DELETE)\b", expression):
        for action in clause.split(","):
            action = action.strip()
            if not action:
                continue
            target = re.split(r"[=\s]", action, maxsplit=1)[0]
            head = re.split(r"[.\[]", target, maxsplit=1)[0]
            if not head or head.startswith(":") or head.lower() in _FUNCTIONS:
                continue
            resolved = (names or {}).get(head, head) if head.startswith("#") else head
            if resolved not in out:
                out.append(resolved)
    return out
