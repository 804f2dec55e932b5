"""Request validation as data: the AWS service models' input shapes, checked the way AWS checks them.

botocore ships each service's model (``botocore/data/<service>/<version>/service-2.json``): every
operation's input shape with its members' types and constraints (required, min, max, enum, pattern).
Validation runs in two passes, as DynamoDB's front end does:

1. *types*: a member of the wrong JSON type is a ``SerializationException`` with the Java-flavoured
   message the real service sends ("class java.lang.String can not be converted to an Long");
2. *constraints*: up to ten violations, reported together as
   ``N validation errors detected: Value 'x' at 'keySchema.1.member.keyType' failed to satisfy constraint: …``.

Unknown members are ignored, as AWS ignores them.
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import cache
from typing import Any

from botocore.loaders import Loader

from perimeterdb import errors

_MAX_ERRORS = 10
_SERVICE_VERSIONS = {"dynamodb": "service-2"}


@cache
def service_model(service: str) -> dict[str, Any]:
    return Loader().load_service_model(service, "service-2")  # type: ignore[no-any-return]


def _serialization(message: str) -> errors.ApiError:
    return errors.serialization(message)


def _java_number_class(value: int | float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return "java.lang.Double"
    if -32768 <= value <= 32767:
        return "java.lang.Short"
    if -2147483648 <= value <= 2147483647:
        return "java.lang.Integer"
    return "java.lang.Long"


def _container_mismatch(value: Any) -> str | None:
    if isinstance(value, list):
        return "Start of list found where not expected"
    if isinstance(value, dict):
        return "Start of structure or map found where not expected."
    return None


class _TypeChecker:
    def __init__(self, shapes: dict[str, Any]) -> None:
        self.shapes = shapes

    def check(self, value: Any, shape_name: str) -> Any:
        """Raise the SerializationException DynamoDB's front end would; return the value as the operations
        should see it: a structure without its null members (null is "not set", as for the real service),
        and a whole number where the model says integer or long (``5.0`` is ``5``; ``1.5`` is truncated to
        ``1``, as Java's JSON readers do), so that no operation meets a float where it counts."""
        if value is None:
            return None
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            if not isinstance(value, dict):
                raise _serialization(
                    "Start of list found where not expected" if isinstance(value, list) else "Expected null"
                )
            if shape_name == "AttributeValue":
                return value  # its members are checked by dynamodb/values.py, with the same messages, once
            members = shape.get("members", {})
            unset = []
            for name, member_value in value.items():
                if member_value is None:
                    unset.append(name)
                    continue
                member = members.get(name)
                if member is not None:
                    checked = self.check(member_value, member["shape"])
                    if checked is not member_value:
                        value[name] = checked
            for name in unset:
                del value[name]
        elif kind == "list":
            if not isinstance(value, list):
                raise _serialization(
                    "Start of structure or map found where not expected."
                    if isinstance(value, dict)
                    else "Expected list or null"
                )
            member_shape = shape["member"]["shape"]
            for i, item in enumerate(value):
                checked = self.check(item, member_shape)
                if checked is not item:
                    value[i] = checked
        elif kind == "map":
            if not isinstance(value, dict):
                raise _serialization(
                    "Start of list found where not expected"
                    if isinstance(value, list)
                    else "Expected map or null"
                )
            value_shape = shape["value"]["shape"]
            for key, item in value.items():
                checked = self.check(item, value_shape)
                if checked is not item:
                    value[key] = checked
        elif kind == "string":
            self._scalar(value, "String", lambda v: isinstance(v, str))
        elif kind in ("integer", "long", "double", "float"):
            java = {"integer": "Integer", "long": "Long", "double": "Double", "float": "Float"}[kind]
            if isinstance(value, bool):
                raise _serialization(f"class java.lang.Boolean can not be converted to an {java}")
            if isinstance(value, str):
                raise _serialization(f"class java.lang.String can not be converted to an {java}")
            self._scalar(value, java, lambda v: isinstance(v, int | float))
            if kind in ("integer", "long") and isinstance(value, float):
                # (JSON numbers past 64 bits arrive as floats: past the Java type's range, or not finite,
                # they are refused rather than made into integers no 64-bit encoder can write back.)
                bound = 2**31 if kind == "integer" else 2**63
                if not -bound <= value < bound:  # also false for NaN
                    raise _serialization(f"class java.lang.Double can not be converted to an {java}")
                return int(value)
        elif kind == "boolean":
            if isinstance(value, str):
                raise _serialization(f"'{value.upper()}' can not be converted to an Boolean")
            if isinstance(value, int | float) and not isinstance(value, bool):
                if _java_number_class(value) != "java.lang.Double":
                    raise _serialization(
                        f"class {_java_number_class(value)} can not be converted to an Boolean"
                    )
            self._scalar(value, "Boolean", lambda v: isinstance(v, bool | int | float))
        elif kind == "blob":
            self._blob(value)
        elif kind == "timestamp":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                mismatch = _container_mismatch(value)
                raise _serialization(mismatch or "class java.lang.Boolean can not be converted to a Date")
        return value

    @staticmethod
    def _scalar(value: Any, java: str, ok: Any) -> None:
        if ok(value):
            return
        mismatch = _container_mismatch(value)
        if mismatch:
            raise _serialization(mismatch)
        if isinstance(value, bool):
            raise _serialization(f"class java.lang.Boolean can not be converted to an {java}")
        if isinstance(value, int | float):
            raise _serialization(f"class {_java_number_class(value)} can not be converted to an {java}")
        raise _serialization(f"Unexpected value for {java}")

    @staticmethod
    def _blob(value: Any) -> None:
        if not isinstance(value, str):
            mismatch = _container_mismatch(value)
            if mismatch:
                raise _serialization(mismatch)
            if isinstance(value, bool):
                raise _serialization("class java.lang.Boolean can not be converted to a Blob")
            raise _serialization(f"class {_java_number_class(value)} can not be converted to a Blob")
        if len(value) % 4:
            raise _serialization(
                f"'{value}' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 "
                f"bytes but found: {len(value)}"
            )
        bad = re.search(r"[^a-zA-Z0-9+/=]|=[^=]", value)
        if bad:
            raise _serialization(
                f"'{value}' can not be converted to a Blob: Invalid Base64 character: '{bad.group()[0]}'"
            )
        try:
            decoded = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise _serialization(
                f"'{value}' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"
            ) from None
        if base64.b64encode(decoded).decode() != value:
            raise _serialization(
                f"'{value}' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"
            )


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _value_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "'" + ("true" if value else "false") + "'"
    if isinstance(value, list):
        return "'[" + ", ".join(_plain(v) for v in value) + "]'"
    return "'" + _plain(value) + "'"


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return str(value)


# Constraints DynamoDB still enforces that newer botocore models no longer carry (the 2025 models made
# CreateTable's schema optional and dropped the two-element limit of KeySchema, for features perimeterdb
# does not offer): (structure, member) -> {"required": True} and/or {"max": n}.
_LEGACY_CONSTRAINTS: dict[tuple[str, str], dict[str, Any]] = {
    ("CreateTableInput", "AttributeDefinitions"): {"required": True},
    ("CreateTableInput", "KeySchema"): {"required": True, "max": 2},
    ("LocalSecondaryIndex", "KeySchema"): {"max": 2},
    ("GlobalSecondaryIndex", "KeySchema"): {"max": 2},
    ("CreateGlobalSecondaryIndexAction", "KeySchema"): {"max": 2},
}

# The order in which DynamoDB lists an enum's values in "Member must satisfy enum value set: […]" (its own
# order, not the model's), where it differs from the model; as DynamoDB answers and dynalite's suite pins.
_DYNAMODB_ENUM_ORDER: dict[str, tuple[str, ...]] = {
    "ScalarAttributeType": ("B", "N", "S"),
    "Select": ("SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES"),
    "ReturnValue": ("ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE", "UPDATED_NEW"),
    "ConditionalOperator": ("OR", "AND"),
    "ComparisonOperator": tuple(
        "IN NULL BETWEEN LT NOT_CONTAINS EQ GT NOT_NULL NE LE BEGINS_WITH GE CONTAINS".split()
    ),
    "ProjectionType": ("ALL", "INCLUDE", "KEYS_ONLY"),
}

# Members DynamoDB's newer validation framework reports without their value and under their wire names
# ("Value at 'Limit' failed to satisfy constraint: …"): (structure, member).
_FRAMEWORK_FORM: frozenset[tuple[str, str]] = frozenset(
    {("QueryInput", "Limit"), ("KeysAndAttributes", "Keys")}
)

# Inputs whose missing or empty member gets DynamoDB's own sentence before any other check.
_REQUIRED_SENTENCES: dict[tuple[str, str], str] = {
    ("BatchGetItemInput", "RequestItems"): "The requestItems parameter is required for BatchGetItem",
    ("BatchWriteItemInput", "RequestItems"): "The requestItems parameter is required for BatchWriteItem",
}


def _enum_text(shape_name: str, shape: dict[str, Any], service: str) -> str:
    order = _DYNAMODB_ENUM_ORDER.get(shape_name) if service == "dynamodb" else None
    return ", ".join(order or shape["enum"])


def _structures_text(values: list[Any], shape_name: str, shapes: dict[str, Any]) -> str:
    """A list of structures as DynamoDB's Java front end prints it in a message:
    ``[KeySchemaElement(attributeName=p, keyType=HASH), …]`` (members in model order, the ones set)."""
    members = shapes[shape_name].get("members", {})
    out = []
    for value in values:
        if not isinstance(value, dict):
            out.append(_plain(value))
            continue
        fields = ", ".join(
            f"{_lower_first(name)}={_plain(value[name])}" for name in members if value.get(name) is not None
        )
        out.append(f"{shape_name}({fields})")
    return "'[" + ", ".join(out) + "]'"


@cache
def _structure_members(
    service: str, shape_name: str
) -> tuple[tuple[str, str, str, bool, dict[str, Any]], ...]:
    """(name, wire path name, member shape, required, legacy constraints) of a structure, in model order;
    computed once per shape rather than on every request."""
    shape = service_model(service)["shapes"][shape_name]
    required = set(shape.get("required", ()))
    out = []
    for name, member in shape.get("members", {}).items():
        legacy = _LEGACY_CONSTRAINTS.get((shape_name, name), {})
        out.append(
            (
                name,
                _lower_first(name),
                member["shape"],
                name in required or bool(legacy.get("required")),
                legacy,
            )
        )
    return tuple(out)


class _ConstraintChecker:
    def __init__(self, shapes: dict[str, Any], service: str = "dynamodb") -> None:
        self.service = service
        self.shapes = shapes
        self.problems: list[str] = []
        self.table_name_problems: list[str] = []
        self.framework_path: str | None = None  # set while checking a member reported in the newer form

    def fail(self, path: str, value: Any, constraint: str, shape_name: str | None = None) -> None:
        if len(self.problems) >= _MAX_ERRORS:
            return
        if self.framework_path is not None:
            self.problems.append(
                f"Value at '{self.framework_path}' failed to satisfy constraint: {constraint}"
            )
            return
        text = _value_text(value)
        if shape_name is not None and isinstance(value, list):
            member = self.shapes[shape_name].get("member", {}).get("shape")
            if member is not None and self.shapes[member]["type"] == "structure":
                text = _structures_text(value, member, self.shapes)
        self.problems.append(f"Value {text} at '{path}' failed to satisfy constraint: {constraint}")

    def check_structure(
        self,
        value: dict[str, Any],
        shape_name: str,
        prefix: str,
        skip: frozenset[str] = frozenset(),
        raw_prefix: str = "",
    ) -> None:
        for name, lower, member_shape, required, legacy in _structure_members(self.service, shape_name):
            if name in skip:
                # The table name was checked first; its problems keep their place in the member order.
                for problem in self.table_name_problems:
                    if len(self.problems) < _MAX_ERRORS:
                        self.problems.append(problem)
                continue
            member_value = value.get(name)
            if member_value is None:
                if required:
                    self.fail(prefix + lower, None, "Member must not be null")
                continue
            path = prefix + lower
            if (shape_name, name) in _FRAMEWORK_FORM:
                self.framework_path = raw_prefix + name
            self.check(member_value, member_shape, path, raw_prefix + name)
            self.framework_path = None
            if "max" in legacy and isinstance(member_value, list) and len(member_value) > legacy["max"]:
                self.fail(
                    path,
                    member_value,
                    f"Member must have length less than or equal to {legacy['max']}",
                    member_shape,
                )

    def check(self, value: Any, shape_name: str, path: str, raw_path: str = "") -> None:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            if shape_name == "AttributeValue":
                return  # attribute values are validated by dynamodb/values.py with DynamoDB's own messages
            self.check_structure(value, shape_name, path + ".", raw_prefix=raw_path + ".")
            return
        if kind in ("string", "list", "map", "blob"):
            length = len(value)
            if "min" in shape and length < shape["min"]:
                self.fail(path, value, f"Member must have length greater than or equal to {shape['min']}")
            if "max" in shape and length > shape["max"]:
                self.fail(path, value, f"Member must have length less than or equal to {shape['max']}")
        if kind == "string":
            if "enum" in shape and value not in shape["enum"]:
                self.fail(
                    path,
                    value,
                    f"Member must satisfy enum value set: [{_enum_text(shape_name, shape, self.service)}]",
                )
            pattern = shape.get("pattern")
            if pattern and not _pattern(pattern).fullmatch(value):
                self.fail(path, value, f"Member must satisfy regular expression pattern: {pattern}")
        elif kind in ("integer", "long", "double", "float"):
            if "min" in shape and value < shape["min"]:
                self.fail(path, value, f"Member must have value greater than or equal to {shape['min']}")
            if "max" in shape and value > shape["max"]:
                self.fail(path, value, f"Member must have value less than or equal to {shape['max']}")
        elif kind == "list":
            member = shape["member"]["shape"]
            for i, item in enumerate(value, start=1):
                if item is None:
                    self.fail(f"{path}.{i}.member", None, "Member must not be null")
                    continue
                self.check(item, member, f"{path}.{i}.member", f"{raw_path}.{i}.member")
        elif kind == "map":
            self._check_map(value, shape, path, raw_path)

    def _check_map(self, value: dict[str, Any], shape: dict[str, Any], path: str, raw_path: str = "") -> None:
        """Map keys and values are reported at the map, listing all of their constraints, as AWS does:
        "Map value must satisfy constraint: [Member must have length less than or equal to 25, …]"."""
        key_shape = self.shapes[shape["key"]["shape"]]
        value_name = shape["value"]["shape"]
        value_shape = self.shapes[value_name]
        if value_name != "AttributeValue":  # (a null attribute value gets values.py's own message)
            for key, item in value.items():
                if item is None:
                    self.fail(f"{path}.{key}.member", None, "Member must not be null")
        if value_name in _ATTRIBUTE_SHAPES:
            # Items, keys and expression names: DynamoDB checks attribute names and values itself, with
            # its own messages ("Attribute name is too large, …"), in dynamodb/values.py and expressions/.
            return
        if shape["key"]["shape"] in _ATTRIBUTE_SHAPES:
            # Structures under attribute names (AttributeUpdates, Expected, KeyConditions, Query/ScanFilter):
            # the names are DynamoDB's to check, the structures' members (Action, ComparisonOperator…) ours.
            for key, item in value.items():
                if isinstance(item, dict) and value_shape["type"] == "structure":
                    self.check(item, value_name, f"{path}.{key}.member", f"{raw_path}.{key}.member")
            return
        if any(not _satisfies(key, key_shape) for key in value):
            self.fail(
                path, value, f"Map keys must satisfy constraint: [{', '.join(_constraints(key_shape))}]"
            )
        if any(item is not None and not _satisfies(item, value_shape) for item in value.values()):
            self.fail(
                path, value, f"Map value must satisfy constraint: [{', '.join(_constraints(value_shape))}]"
            )
            return
        for key, item in value.items():
            if item is not None and value_shape["type"] in ("structure", "list", "map"):
                self.check(item, value_name, f"{path}.{key}.member", f"{raw_path}.{key}.member")


_ATTRIBUTE_SHAPES = frozenset({"AttributeName", "AttributeValue"})


def _constraints(shape: dict[str, Any]) -> list[str]:
    """A shape's own constraints, in the order AWS lists them."""
    out = []
    if shape["type"] in ("string", "list", "map", "blob"):
        if "max" in shape:
            out.append(f"Member must have length less than or equal to {shape['max']}")
        if "min" in shape:
            out.append(f"Member must have length greater than or equal to {shape['min']}")
    if shape["type"] == "string" and shape.get("pattern"):
        out.append(f"Member must satisfy regular expression pattern: {shape['pattern']}")
    return out


def _satisfies(value: Any, shape: dict[str, Any]) -> bool:
    """Whether a map key or value meets its shape's own length and pattern constraints."""
    if shape["type"] in ("string", "list", "map", "blob") and isinstance(value, str | list | dict):
        if len(value) < shape.get("min", 0) or len(value) > shape.get("max", len(value)):
            return False
    if shape["type"] == "string" and isinstance(value, str) and shape.get("pattern"):
        return _pattern(shape["pattern"]).fullmatch(value) is not None
    return True


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    # The models' patterns are Java regexes: \w, \d and \s are ASCII there (an IAM name is ASCII; a
    # Cyrillic e (U+0435) in 'emergency' must be refused, not make a lookalike of a sealed role).
    try:
        return re.compile(pattern, re.DOTALL | re.ASCII)
    except re.error:
        return re.compile(".*", re.DOTALL)


# The item operations, which report a missing table name as "Value null at 'tableName' …" with the other
# problems; the table operations answer "The parameter 'TableName' is required …" alone.
_ITEM_INPUTS = frozenset(
    {"GetItemInput", "PutItemInput", "UpdateItemInput", "DeleteItemInput", "QueryInput", "ScanInput"}
)


def _check_table_name(body: dict[str, Any], input_name: str, input_shape: dict[str, Any]) -> list[str]:
    """DynamoDB's own checks of a table name (or ARN), which run before the generic constraints."""
    if "TableName" not in input_shape.get("members", {}):
        return []
    name = body.get("TableName")
    if name is None:
        if input_name in _ITEM_INPUTS:  # the item operations report it among the other members
            return ["Value null at 'tableName' failed to satisfy constraint: Member must not be null"]
        if "TableName" in input_shape.get("required", ()):
            raise errors.validation(
                "The parameter 'TableName' is required but was not present in the request"
            )
        return []
    prefix = f"Value '{name}' at 'tableName' failed to satisfy constraint: "
    if name == "":
        return [prefix + "Member must have length greater than or equal to 1"]
    if name.startswith("arn:"):
        if len(name) > 1024:
            return [prefix + "Member must have length less than or equal to 1024"]
        return []
    problems = []
    if not re.fullmatch(r"[a-zA-Z0-9_.-]+", name):
        problems.append(prefix + "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
    if len(name) < 3:
        problems.append(prefix + "Member must have length greater than or equal to 3")
    elif len(name) > 255:
        problems.append(prefix + "Member must have length less than or equal to 255")
    return problems


_SCALAR_TYPES = frozenset({"string", "boolean", "integer", "long", "double", "float"})
_PLAIN_VALUES = frozenset({str, bool, int})
_LONGEST_REMEMBERED = 512  # characters of a remembered string member
_VALID_BODIES_MAX = 8192


@cache
def _member_kinds(service: str, input_name: str) -> dict[str, str]:
    """How much of each top-level member the checks look at: ``scalar`` (its type and value), ``attributes``
    (a map of attribute names or values: its size and its values' types, the rest being checked by
    dynamodb/values.py), or ``other`` (nested structures: everything)."""
    shapes = service_model(service)["shapes"]
    kinds = {}
    for name, member in shapes[input_name].get("members", {}).items():
        shape = shapes[member["shape"]]
        if shape["type"] in _SCALAR_TYPES:
            kinds[name] = "scalar"
        elif shape["type"] == "map" and shape["value"]["shape"] in _ATTRIBUTE_SHAPES:
            kinds[name] = "attributes"
        else:
            kinds[name] = "other"
    return kinds


def _validity_key(service: str, input_name: str, body: dict[str, Any]) -> tuple[Any, ...] | None:
    """All that validation reads of a body of scalars and attribute maps (two bodies with one key pass
    or fail together), or None for bodies with nested structures or long strings."""
    kinds = _member_kinds(service, input_name)
    parts: list[Any] = [service, input_name]
    for name, value in body.items():
        kind = kinds.get(name)
        if kind is None:
            continue  # unknown members are ignored
        if kind == "scalar":
            if type(value) not in _PLAIN_VALUES or (type(value) is str and len(value) > _LONGEST_REMEMBERED):
                return None  # (float is not plain: the type check may turn it into an int in the body)
            parts.append((name, type(value), value))
        elif kind == "attributes" and type(value) is dict:
            parts.append((name, len(value), tuple(type(v) for v in value.values())))
        else:
            return None
    return tuple(parts)


# Validity keys of bodies that passed: the checks are a pure function of the key (``_validity_key``).
_VALID_BODIES: set[tuple[Any, ...]] = set()


def validate_request(service: str, operation: str, body: Any) -> dict[str, Any]:
    """Check ``body`` against the operation's input shape; return it, or raise the error AWS would."""
    model = service_model(service)
    shapes = model["shapes"]
    input_name = model["operations"][operation].get("input", {}).get("shape")
    if input_name is None:
        return {}
    if not isinstance(body, dict):
        raise _serialization(
            "Start of list found where not expected" if isinstance(body, list) else "Expected null"
        )
    if None in body.values():  # a null member is a member not set, as for the real service
        for name in [name for name, value in body.items() if value is None]:
            del body[name]
    key = _validity_key(service, input_name, body)
    if key is not None and key in _VALID_BODIES:
        return body
    _check(service, shapes, input_name, body)
    if key is not None:
        if len(_VALID_BODIES) >= _VALID_BODIES_MAX:
            _VALID_BODIES.clear()
        _VALID_BODIES.add(key)
    return body


def _check(service: str, shapes: dict[str, Any], input_name: str, body: dict[str, Any]) -> None:
    _TypeChecker(shapes).check(body, input_name)
    input_shape = shapes[input_name]
    for (structure, member), sentence in _REQUIRED_SENTENCES.items():
        if structure == input_name and not body.get(member):
            raise errors.validation(sentence)
    problems = _check_table_name(body, input_name, input_shape) if service == "dynamodb" else []
    checker = _ConstraintChecker(shapes, service)
    checker.table_name_problems = problems
    skip = frozenset({"TableName"}) if service == "dynamodb" else frozenset()
    checker.check_structure(body, input_name, "", skip)
    if checker.problems:
        n = len(checker.problems)
        raise errors.validation(
            f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(checker.problems)
        )
