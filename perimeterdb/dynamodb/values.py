"""DynamoDB attribute values in their wire form: validation, normalization, sizes, equality, ordering, keys.

An item is ``dict[str, dict]`` exactly as on the wire (``{"pk": {"S": "a"}, "n": {"N": "12.5"}}``).
Binary stays a base64 string; numbers are stored in their canonical text (``numbers.format_number``).
Validation returns a normalized copy, so stored numbers are canonical and ``NULL`` is always ``True``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson

from perimeterdb.dynamodb import numbers
from perimeterdb.errors import serialization, validation

__all__ = [
    "MAX_ITEM_SIZE",
    "MAX_NESTING_DEPTH",
    "TYPES",
    "b64decode",
    "check_attribute_name",
    "check_nesting_depth",
    "compare_values",
    "item_size",
    "key_of",
    "normalize_item",
    "type_of",
    "validate_attribute_value",
    "validate_index_keys",
    "validate_item",
    "validate_item_key",
    "validate_key",
    "value_size",
    "values_equal",
]

MAX_ITEM_SIZE = 400 * 1024
MAX_NESTING_DEPTH = 32
NESTING_TOO_DEEP = "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit"
MAX_HASH_KEY_SIZE = 2048
MAX_RANGE_KEY_SIZE = 1024
MAX_ATTRIBUTE_NAME_BYTES = 65535

TYPES = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")
_TYPE_SET = frozenset(TYPES)

INVALID = "One or more parameter values were invalid: "


# --- validation -------------------------------------------------------------------------------------------


def b64decode(text: str) -> bytes:
    """Decode a wire binary value (already validated, or trusted from storage)."""
    return base64.b64decode(text)


def _check_base64(text: object) -> str:
    if not isinstance(text, str):
        if isinstance(text, bool):
            raise serialization("class java.lang.Boolean can not be converted to a Blob")
        if isinstance(text, int | float):
            raise serialization(
                "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to a Blob"
            )
        if isinstance(text, list):
            raise serialization("Start of list found where not expected")
        raise serialization("Start of structure or map found where not expected.")
    if len(text) % 4:
        raise serialization(
            f"'{text}' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 "
            f"bytes but found: {len(text)}"
        )
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        bad = next((c for c in text if not (c.isascii() and (c.isalnum() or c in "+/="))), "=")
        raise serialization(
            f"'{text}' can not be converted to a Blob: Invalid Base64 character: '{bad}'"
        ) from None
    if base64.b64encode(decoded).decode("ascii") != text:
        raise serialization(
            f"'{text}' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"
        )
    return text


def _check_string(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise serialization("class java.lang.Boolean can not be converted to an String")
    if isinstance(value, int | float):
        raise serialization(
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"
        )
    if isinstance(value, list):
        raise serialization("Start of list found where not expected")
    raise serialization("Start of structure or map found where not expected.")


def _check_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        upper = value.upper()
        if upper in ("TRUE", "1", "YES"):
            return True
        if upper in ("FALSE", "0", "NO"):
            return False
        raise serialization(f"'{upper}' can not be converted to an Boolean")
    if isinstance(value, int | float):
        raise serialization(
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an Boolean"
        )
    if isinstance(value, list):
        raise serialization("Start of list found where not expected")
    raise serialization("Start of structure or map found where not expected.")


def _check_list(value: object) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        raise serialization("Start of structure or map found where not expected.")
    raise serialization("Expected list or null")


def _check_map(value: object) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        raise serialization("Start of list found where not expected")
    raise serialization("Expected map or null")


def _render_collection(members: Sequence[str]) -> str:
    return "[" + ", ".join(members) + "]"


def validate_attribute_value(value: object, depth: int = 1) -> dict[str, Any]:
    """Validate one wire AttributeValue and return its normalized copy (canonical numbers, NULL true).

    Raises ``ValidationException`` with DynamoDB's message for semantic problems and
    ``SerializationException`` for values of the wrong JSON type.
    """
    if type(value) is dict and len(value) == 1 and depth <= MAX_NESTING_DEPTH:  # a plain string or number
        text = value.get("S")
        if type(text) is str:
            return {"S": text}
        text = value.get("N")
        if type(text) is str:
            return {"N": numbers.normalize_number(text)}
    if not isinstance(value, dict):
        if isinstance(value, list):
            raise serialization("Start of list found where not expected")
        raise serialization("Expected null")
    present = [key for key in value if key in _TYPE_SET and value[key] is not None]
    if not present:
        raise validation(
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
        )
    if depth > MAX_NESTING_DEPTH:
        raise validation(NESTING_TOO_DEEP)
    # DynamoDB reports a problem in any member before reporting the member count.
    result: dict[str, Any] | None = None
    for kind in present:
        normalized = _validate_typed(kind, value[kind], depth)
        if result is None:
            result = {kind: normalized}
    if len(present) > 1:
        raise validation(
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported "
            "datatypes"
        )
    assert result is not None
    return result


def _validate_typed(kind: str, raw: object, depth: int) -> Any:
    if kind == "S":
        return _check_string(raw)
    if kind == "N":
        return numbers.normalize_number(_check_string(raw))
    if kind == "B":
        return _check_base64(raw)
    if kind == "BOOL":
        return _check_bool(raw)
    if kind == "NULL":
        if not _check_bool(raw):
            raise validation(INVALID + "Null attribute value types must have the value of true")
        return True
    if kind == "SS":
        members = [_check_string(m) for m in _check_list(raw)]
        if not members:
            raise validation(INVALID + "An string set  may not be empty")
        if any(m == "" for m in members):
            raise validation(INVALID + "An string set may not have a empty string as a member")
        if len(set(members)) != len(members):
            raise validation(INVALID + f"Input collection {_render_collection(members)} contains duplicates.")
        return members
    if kind == "NS":
        texts = [_check_string(m) for m in _check_list(raw)]
        if not texts:
            raise validation(INVALID + "An number set  may not be empty")
        parsed = [numbers.parse_number(t) for t in texts]
        canonical = [numbers.format_number(d) for d in parsed]
        if len(set(canonical)) != len(canonical):
            raise validation("Input collection contains duplicates")
        return canonical
    if kind == "BS":
        members = [_check_base64(m) for m in _check_list(raw)]
        if not members:
            raise validation(INVALID + "Binary sets should not be empty")
        if any(m == "" for m in members):
            raise validation(INVALID + "Binary sets may not contain null or empty values")
        if len({b64decode(m) for m in members}) != len(members):
            raise validation(
                INVALID + f"Input collection {_render_collection(members)}of type BS contains duplicates."
            )
        return members
    if kind == "L":
        return [validate_attribute_value(v, depth + 1) for v in _check_list(raw)]
    # kind == "M"
    members = _check_map(raw)
    for name in members:
        check_attribute_name(name)
    return {k: validate_attribute_value(v, depth + 1) for k, v in members.items()}


def validate_item(item: object) -> dict[str, dict[str, Any]]:
    """Validate every attribute of an item (PutItem's ``Item``); return the normalized item."""
    mapping = _check_map(item)
    for name in mapping:
        check_attribute_name(name)
    return {name: validate_attribute_value(value) for name, value in mapping.items()}


def check_attribute_name(name: str) -> None:
    """An attribute name (top level or a map key) is at most 65535 bytes of UTF-8."""
    if len(name) > MAX_ATTRIBUTE_NAME_BYTES // 4 and len(name.encode("utf-8")) > MAX_ATTRIBUTE_NAME_BYTES:
        raise validation(
            "1 validation error detected: Attribute name is too large, must be less than "
            f"{MAX_ATTRIBUTE_NAME_BYTES + 1} bytes"
        )


def normalize_item(item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Alias of ``validate_item`` for callers that think of it as normalization."""
    return validate_item(dict(item))


# --- types, sizes ---------------------------------------------------------------------------------------


def type_of(value: Mapping[str, Any]) -> str:
    """The single type key of a (valid) wire value."""
    for kind in value:
        return kind
    raise ValueError("empty attribute value")


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes one value counts towards the item size (DynamoDB's documented and measured rules)."""
    kind, raw = next(iter(value.items()))
    if kind == "S":
        return len(raw.encode("utf-8"))
    if kind == "N":
        return numbers.text_size(raw)
    if kind == "B":
        return len(b64decode(raw))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(m.encode("utf-8")) for m in raw)
    if kind == "NS":
        return sum(numbers.text_size(m) for m in raw)
    if kind == "BS":
        return sum(len(b64decode(m)) for m in raw)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in raw.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """The size DynamoDB measures an item at: each attribute's UTF-8 name length plus its value size."""
    size = 0
    for name, value in item.items():  # a loop with the common cases inline: it runs for every item read
        size += len(name.encode("utf-8"))
        text = value.get("S")
        if text is not None:
            size += len(text.encode("utf-8"))
            continue
        text = value.get("N")
        size += numbers.text_size(text) if text is not None else value_size(value)
    return size


def check_item_size(item: Mapping[str, Mapping[str, Any]]) -> None:
    # An item's JSON text is never shorter than its DynamoDB size (names and strings are at least their
    # UTF-8 bytes, base64 is longer than its bytes, a number's text plus its quotes is longer than its
    # size, and every type tag and bracket only adds), and encoding is much cheaper than sizing.
    if len(orjson.dumps(item)) <= MAX_ITEM_SIZE:
        return
    if item_size(item) > MAX_ITEM_SIZE:
        raise validation("Item size has exceeded the maximum allowed size")


def check_nesting_depth(item: Mapping[str, Mapping[str, Any]]) -> None:
    """Refuse an item nested deeper than DynamoDB's 32 levels (as ``validate_attribute_value`` counts them:
    a top-level attribute's value is level 1). Requests are checked as they are decoded; this is for items
    an update builds, where a SET into a nested path adds its value's levels to the path's."""
    stack = [(value, 1) for value in item.values() if "M" in value or "L" in value]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_NESTING_DEPTH:
            raise validation(NESTING_TOO_DEEP)
        members = value.get("M")
        children = members.values() if members is not None else value.get("L") or ()
        stack.extend((child, depth + 1) for child in children)


# --- equality and ordering ------------------------------------------------------------------------------


def _scalar_key(kind: str, raw: Any) -> Any:
    if kind == "N":
        return Decimal(raw)
    if kind == "B":
        return b64decode(raw)
    return raw


def values_equal(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> bool:
    """DynamoDB equality: same type; numbers numerically; sets unordered; lists and maps element-wise."""
    if left is None or right is None:
        return False
    lkind, lraw = next(iter(left.items()))
    rkind, rraw = next(iter(right.items()))
    if lkind != rkind:
        return False
    if lkind in ("S", "BOOL", "NULL"):
        return bool(lraw == rraw)
    if lkind == "N":
        return Decimal(lraw) == Decimal(rraw)
    if lkind == "B":
        return b64decode(lraw) == b64decode(rraw)
    if lkind in ("SS", "NS", "BS"):
        scalar = lkind[0]
        return len(lraw) == len(rraw) and {_scalar_key(scalar, m) for m in lraw} == {
            _scalar_key(scalar, m) for m in rraw
        }
    if lkind == "L":
        return len(lraw) == len(rraw) and all(values_equal(a, b) for a, b in zip(lraw, rraw, strict=True))
    if lkind == "M":
        return lraw.keys() == rraw.keys() and all(values_equal(v, rraw[k]) for k, v in lraw.items())
    return False


def compare_values(left: Mapping[str, Any], right: Mapping[str, Any]) -> int | None:
    """Order two values of the same scalar type (N numerically, S by code point = UTF-8 bytes, B by bytes).

    Returns -1, 0 or 1, or ``None`` when the values are not comparable (different or non-scalar types).
    """
    lkind, lraw = next(iter(left.items()))
    rkind, rraw = next(iter(right.items()))
    if lkind != rkind or lkind not in ("N", "S", "B"):
        return None
    a = _scalar_key(lkind, lraw)
    b = _scalar_key(rkind, rraw)
    return -1 if a < b else (1 if a > b else 0)


def set_member_key(kind: str, raw: str) -> Any:
    """A hashable key identifying a set member by value (numbers numerically, binary by bytes)."""
    return _scalar_key(kind[0], raw)


# --- keys -----------------------------------------------------------------------------------------------


def _key_types(
    key_schema: Sequence[Mapping[str, str]], attribute_types: Mapping[str, str]
) -> list[tuple[str, str, bool]]:
    """(name, type, is_hash) for each key attribute, hash first."""
    out = []
    for element in key_schema:
        name = element["AttributeName"]
        out.append((name, attribute_types[name], element.get("KeyType") == "HASH"))
    out.sort(key=lambda entry: not entry[2])
    return out


def _check_key_piece(name: str, kind: str, raw: Any, is_hash: bool) -> None:
    if kind == "S":
        if raw == "":
            raise validation(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot "
                f"contain an empty string value. Key: {name}"
            )
        size = len(raw.encode("utf-8"))
    elif kind == "B":
        if raw == "":
            raise validation(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot "
                f"contain an empty binary value. Key: {name}"
            )
        size = len(b64decode(raw))
    else:
        return
    _check_key_size(kind, raw, is_hash, size)


def key_piece_fits(kind: str, raw: Any, is_hash: bool) -> bool:
    """Whether a key value (S, N or B) is one DynamoDB can store as a key: not empty, within the size limit."""
    if kind == "N":
        return True
    if raw == "":
        return False
    if kind == "S" and len(raw) * 4 <= MAX_RANGE_KEY_SIZE:
        return True
    size = len(raw.encode("utf-8")) if kind == "S" else len(b64decode(raw))
    return size <= (MAX_HASH_KEY_SIZE if is_hash else MAX_RANGE_KEY_SIZE)


def _check_key_size(kind: str, raw: Any, is_hash: bool, size: int | None = None) -> None:
    if size is None:
        if kind == "S" and len(raw) * 4 <= MAX_RANGE_KEY_SIZE:  # (UTF-8 is at most 4 bytes a character)
            return
        size = len(raw.encode("utf-8")) if kind == "S" else len(b64decode(raw))
    if is_hash and size > MAX_HASH_KEY_SIZE:
        raise validation(INVALID + "Size of hashkey has exceeded the maximum size limit of2048 bytes")
    if not is_hash and size > MAX_RANGE_KEY_SIZE:
        raise validation(
            INVALID + "Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
        )


def validate_key(
    key: Mapping[str, Mapping[str, Any]],
    key_schema: Sequence[Mapping[str, str]],
    attribute_types: Mapping[str, str],
) -> None:
    """Check a request ``Key`` (GetItem, DeleteItem, UpdateItem...) against the table's key schema.

    ``attribute_types`` maps attribute names to their ``AttributeDefinitions`` type (S, N or B).
    The values must already be validated.
    """
    entries = _key_types(key_schema, attribute_types)
    if len(key) != len(entries):
        raise validation("The provided key element does not match the schema")
    for name, kind, _ in entries:
        value = key.get(name)
        if value is None or kind not in value:
            raise validation("The provided key element does not match the schema")
    for name, kind, is_hash in entries:
        _check_key_piece(name, kind, key[name][kind], is_hash)


def validate_item_key(
    item: Mapping[str, Mapping[str, Any]],
    key_schema: Sequence[Mapping[str, str]],
    attribute_types: Mapping[str, str],
) -> None:
    """Check that a full item (PutItem) carries the table's key attributes with the right types."""
    for name, kind, is_hash in _key_types(key_schema, attribute_types):
        value = item.get(name)
        if value is None:
            raise validation(INVALID + f"Missing the key {name} in the item")
        if kind not in value:
            raise validation(
                INVALID + f"Type mismatch for key {name} expected: {kind} actual: {type_of(value)}"
            )
        _check_key_piece(name, kind, value[kind], is_hash)


def validate_index_keys(
    item: Mapping[str, Mapping[str, Any]],
    indexes: Iterable[tuple[str, Sequence[tuple[str, str]]]],
) -> None:
    """Check an item's values for secondary-index key attributes.

    ``indexes`` yields ``(index_name, [(attribute_name, attribute_type), ...])``. Absent attributes are fine
    (the item is simply not indexed); present ones must have the declared type and not be empty.
    """
    for index_name, attributes in indexes:
        for position, (name, kind) in enumerate(attributes):
            value = item.get(name)
            if value is None:
                continue
            if kind not in value:
                raise validation(
                    INVALID + f"Type mismatch for Index Key {name} Expected: {kind} Actual: {type_of(value)} "
                    f"IndexName: {index_name}"
                )
            if kind in ("S", "B") and value[kind] == "":
                raise validation(
                    "One or more parameter values are not valid. A value specified for a secondary index key is "
                    "not supported. The AttributeValue for a key attribute cannot contain an empty "
                    f"{'string' if kind == 'S' else 'binary'} value. IndexName: {index_name}, IndexKey: {name}"
                )
            if kind != "N":  # an index key is held to the table's key limits (KeySchema lists HASH first)
                _check_key_size(kind, value[kind], position == 0)


def key_of(item: Mapping[str, Mapping[str, Any]], key_schema: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """The key attributes of an item, in key-schema order."""
    return {element["AttributeName"]: item[element["AttributeName"]] for element in key_schema}
