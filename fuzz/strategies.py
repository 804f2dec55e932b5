"""Hypothesis strategies for the fuzzed surfaces: inputs that are mostly well formed (so that the code past
the first syntax check is reached) with a share of junk at every level.

The atheris drivers feed these same strategies through ``fuzz_one_input``, so coverage guidance steers the
choices Hypothesis makes here.
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "attribute_values",
    "expression_inputs",
    "json_junk",
    "policy_documents",
    "request_bodies",
    "sigv4_inputs",
    "world_texts",
]

# --- shared junk ----------------------------------------------------------------------------------------

_WEIRD_TEXT = st.sampled_from(
    ["", " ", "\x00", "\u00e9", "\U0001f600", "\ud800", "9" * 40, "-0", "1e126", "1e-131", "NaN", "Infinity"]
)
_SHORT_TEXT = st.one_of(st.text(max_size=12), _WEIRD_TEXT)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _SHORT_TEXT,
)
json_junk = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                _SHORT_TEXT,
                st.sampled_from(["S", "N", "B", "M", "L", "SS", "NS", "BS", "NULL", "BOOL", "pk"]),
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)

# --- attribute values -----------------------------------------------------------------------------------

_NUMBERS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).map(str),
    st.sampled_from(
        [
            "0",
            "-0",
            "1e125",
            "9.9999999999999999999999999999999999999E+125",
            "1e-130",
            "1e126",
            "0.0000",
            " 1",
            "1 ",
            "+1",
            "1.",
            ".5",
            "0x10",
            "1_0",
            "",
            "--1",
            "1e",
            "\u0661\u0662",
        ]
    ),
    st.text(alphabet="0123456789.-+eE ", max_size=12),
)
_BASE64 = st.one_of(
    st.binary(max_size=12).map(lambda b: __import__("base64").b64encode(b).decode()),
    st.text(alphabet=string.ascii_letters + "+/=", max_size=9),
)


def _typed(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(lambda s: {"S": s}, st.one_of(_SHORT_TEXT, json_scalars)),
        st.builds(lambda n: {"N": n}, st.one_of(_NUMBERS, json_scalars)),
        st.builds(lambda b: {"B": b}, st.one_of(_BASE64, json_scalars)),
        st.builds(lambda b: {"BOOL": b}, st.one_of(st.booleans(), json_scalars)),
        st.builds(lambda b: {"NULL": b}, st.one_of(st.booleans(), json_scalars)),
        st.builds(lambda m: {"SS": m}, st.one_of(st.lists(_SHORT_TEXT, max_size=4), json_junk)),
        st.builds(lambda m: {"NS": m}, st.one_of(st.lists(_NUMBERS, max_size=4), json_junk)),
        st.builds(lambda m: {"BS": m}, st.one_of(st.lists(_BASE64, max_size=4), json_junk)),
        st.builds(lambda m: {"L": m}, st.one_of(st.lists(inner, max_size=4), json_junk)),
        st.builds(lambda m: {"M": m}, st.one_of(st.dictionaries(_SHORT_TEXT, inner, max_size=4), json_junk)),
        st.dictionaries(
            st.sampled_from(["S", "N", "B", "BOOL", "NULL", "L", "M", "X"]), json_junk, max_size=3
        ),
    )


attribute_values = st.recursive(st.one_of(_typed(json_scalars), json_junk), _typed, max_leaves=10)


def _deep(depth: int, kind: str) -> Any:
    value: Any = {"S": "x"}
    for _ in range(depth):
        value = {"L": [value]} if kind == "L" else {"M": {"a": value}}
    return value


deep_values = st.builds(_deep, st.integers(min_value=28, max_value=400), st.sampled_from(["L", "M"]))

# --- expressions ----------------------------------------------------------------------------------------

_NAME_KEYS = ["#n", "#m", "#pk", "#_1"]
_VALUE_KEYS = [":v", ":w", ":x", ":empty", ":l"]
_PATH_ROOTS = st.sampled_from(
    ["a", "b", "pk", "sk", "c", "#n", "#m", "#pk", "#undefined", "size", "AND", "x1"]
)


@st.composite
def _path(draw: Any) -> str:
    text = draw(_PATH_ROOTS)
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            text += f"[{draw(st.sampled_from(['0', '1', '7', '-1', '99999999999999999999', ' 2 ']))}]"
        else:
            text += "." + draw(_PATH_ROOTS)
    return text


_VALUE_REF = st.sampled_from([*_VALUE_KEYS, ":undefined", ":", "::v"])
_COMPARATORS = st.sampled_from(["=", "<>", "<", "<=", ">", ">=", "==", "!="])


def _operand() -> st.SearchStrategy[str]:
    return st.one_of(
        _path(),
        _VALUE_REF,
        st.builds(lambda p: f"size({p})", _path()),
        st.builds(lambda p: f"size({p})", _VALUE_REF),
    )


def _condition(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, b: f"{a} AND {b}", inner, inner),
        st.builds(lambda a, b: f"{a} OR {b}", inner, inner),
        st.builds(lambda a: f"NOT {a}", inner),
        st.builds(lambda a: f"({a})", inner),
    )


_ATOMS = st.one_of(
    st.builds(lambda a, op, b: f"{a} {op} {b}", _operand(), _COMPARATORS, _operand()),
    st.builds(lambda a, b, c: f"{a} BETWEEN {b} AND {c}", _operand(), _operand(), _operand()),
    st.builds(lambda a, bs: f"{a} IN ({', '.join(bs)})", _operand(), st.lists(_operand(), max_size=4)),
    st.builds(
        lambda f, args: f"{f}({', '.join(args)})",
        st.sampled_from(
            [
                "attribute_exists",
                "attribute_not_exists",
                "attribute_type",
                "begins_with",
                "contains",
                "size",
                "list_append",
                "if_not_exists",
                "nope",
                "ATTRIBUTE_EXISTS",
            ]
        ),
        st.lists(_operand(), max_size=3),
    ),
)
conditions = st.recursive(_ATOMS, _condition, max_leaves=8)


def _nested(depth: int, form: str) -> str:
    if form == "paren":
        return "(" * depth + "a = :v" + ")" * depth
    if form == "not":
        return "NOT " * depth + "a = :v"
    if form == "and":
        return "(" * depth + "a = :v" + " AND b = :w)" * depth
    return " OR ".join(["a = :v"] * depth)


deep_conditions = st.builds(
    _nested, st.integers(min_value=1, max_value=400), st.sampled_from(["paren", "not", "and", "or"])
)


@st.composite
def _update(draw: Any) -> str:
    if draw(st.integers(0, 7)) == 0:  # a SET deep into the nested map "m" (see _ITEMS)
        return f"SET m{'.a' * draw(st.integers(0, 40))} = {draw(_VALUE_REF)}"
    clauses = []
    for _ in range(draw(st.integers(1, 4))):
        verb = draw(st.sampled_from(["SET", "REMOVE", "ADD", "DELETE", "set", "UPDATE"]))
        actions = []
        for _ in range(draw(st.integers(0, 3))):
            if verb.upper() == "SET":
                value = draw(
                    st.one_of(
                        _operand(),
                        st.builds(
                            lambda a, o, b: f"{a} {o} {b}", _operand(), st.sampled_from("+-*"), _operand()
                        ),
                        st.builds(lambda a, b: f"list_append({a}, {b})", _operand(), _operand()),
                        st.builds(lambda a, b: f"if_not_exists({a}, {b})", _operand(), _operand()),
                    )
                )
                actions.append(f"{draw(_path())} = {value}")
            elif verb.upper() == "REMOVE":
                actions.append(draw(_path()))
            else:
                actions.append(f"{draw(_path())} {draw(_operand())}")
        clauses.append(f"{verb} {', '.join(actions)}")
    return " ".join(clauses)


def _mutated(base: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """The text, or the text with a few characters inserted, deleted or replaced."""

    @st.composite
    def mutate(draw: Any) -> str:
        text = draw(base)
        for _ in range(draw(st.integers(0, 2))):
            pos = draw(st.integers(0, len(text)))
            junk = draw(
                st.one_of(st.sampled_from([*"()[].,:#= <>\"'\\\x00\u00e9", "AND", "OR"]), st.text(max_size=2))
            )
            text = text[:pos] + junk + text[pos + draw(st.integers(0, 2)) :]
        return text

    return mutate()


_GOOD_VALUES = st.one_of(
    st.integers(1, 32).map(lambda n: _deep(n, "M")),
    st.sampled_from(
        [
            {"S": "x"},
            {"N": "1"},
            {"N": "-2.5"},
            {"L": [{"S": "y"}]},
            {"SS": ["a"]},
            {"M": {"b": {"N": "2"}}},
            {"BOOL": True},
            {"NULL": True},
            {"B": "AA=="},
            {"NS": ["1", "2"]},
        ]
    ),
)
_VALUES_MAP = st.one_of(
    st.dictionaries(st.sampled_from(_VALUE_KEYS), _GOOD_VALUES, min_size=1, max_size=5),
    st.dictionaries(st.sampled_from(_VALUE_KEYS), _GOOD_VALUES, min_size=1, max_size=5),
    st.none(),
    st.dictionaries(
        st.one_of(st.sampled_from(_VALUE_KEYS), _SHORT_TEXT),
        st.one_of(attribute_values, _GOOD_VALUES),
        max_size=5,
    ),
    json_junk,
)
_NAMES_MAP = st.one_of(
    st.dictionaries(st.sampled_from(_NAME_KEYS), st.sampled_from(["a", "b", "pk", "sk", "c"]), min_size=1),
    st.none(),
    st.dictionaries(
        st.one_of(st.sampled_from(_NAME_KEYS), _SHORT_TEXT),
        st.one_of(st.sampled_from(["a", "b", "pk", "sk", "c", "", "a.b"]), json_scalars),
        max_size=4,
    ),
)
_ITEMS = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {"pk": st.just({"S": "k"})},
        optional={
            "a": st.sampled_from(
                [
                    {"S": "x"},
                    {"N": "1"},
                    {"L": [{"N": "1"}, {"S": "y"}]},
                    {"M": {"b": {"N": "2"}}},
                    {"SS": ["a", "b"]},
                    {"NS": ["1", "2"]},
                    {"BS": ["AA=="]},
                    {"NULL": True},
                ]
            ),
            "b": st.sampled_from([{"S": "x"}, {"N": "-1.5"}, {"BOOL": False}, {"L": []}, {"M": {}}]),
            "c": st.sampled_from([{"N": "9.9999999999999999999999999999999999999E+125"}, {"S": ""}]),
            "m": st.integers(1, 31).map(lambda n: _deep(n, "M")),
        },
    ),
)


@st.composite
def expression_inputs(draw: Any) -> dict[str, Any]:
    """Keyword arguments for ``fuzz.targets.expression_case``."""
    text = _mutated(st.one_of(conditions, deep_conditions))
    out: dict[str, Any] = {
        "names": draw(_NAMES_MAP),
        "values": draw(_VALUES_MAP),
        "item": draw(_ITEMS),
        "operation": draw(st.sampled_from([None, "PutItem", "UpdateItem", "Query", "Scan", "GetItem"])),
    }
    for param, strategy in (
        ("condition", text),
        ("update", _mutated(_update())),
        ("projection", _mutated(st.builds(", ".join, st.lists(_path(), min_size=1, max_size=4)))),
        ("filter", text),
        ("key_condition", _mutated(conditions)),
    ):
        if draw(st.integers(0, 3)) == 0:
            out[param] = draw(st.one_of(strategy, _SHORT_TEXT))
    if draw(st.integers(0, 3)):  # mostly: exactly the placeholders the texts use, so binding gets further
        import re

        texts = " ".join(
            str(out.get(p) or "") for p in ("condition", "update", "projection", "filter", "key_condition")
        )
        names = sorted(set(re.findall(r"#[A-Za-z0-9_]+", texts)))
        values = sorted(set(re.findall(r":[A-Za-z0-9_]+", texts)))
        out["names"] = {n: draw(st.sampled_from(["a", "b", "pk", "sk", "c"])) for n in names} or None
        out["values"] = {v: draw(_GOOD_VALUES) for v in values} or None
    return out


# --- request bodies -------------------------------------------------------------------------------------

OPERATIONS = [
    "PutItem",
    "GetItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
    "CreateTable",
    "UpdateTable",
    "PutResourcePolicy",
    "TagResource",
    "ExecuteStatement",
    "UpdateTimeToLive",
]


@st.composite
def request_bodies(draw: Any) -> tuple[str, Any]:
    """An operation and a body built from its input shape's member names, with junk or values in them."""
    from perimeterdb.shapes import service_model

    model = service_model("dynamodb")
    operation = draw(st.sampled_from(OPERATIONS))
    shape = model["shapes"][model["operations"][operation]["input"]["shape"]]
    members = list(shape.get("members", {}))
    body: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(members), max_size=6, unique=True)):
        body[name] = draw(
            st.one_of(
                json_junk,
                attribute_values,
                st.dictionaries(
                    st.sampled_from(["t", "pk", ""]), st.one_of(json_junk, attribute_values), max_size=2
                ),
                st.lists(
                    st.dictionaries(
                        st.sampled_from(["Put", "Delete", "PutRequest", "Key", "Item"]), json_junk, max_size=2
                    ),
                    max_size=3,
                ),
            )
        )
    if draw(st.booleans()):
        body["TableName"] = draw(st.sampled_from(["tbl", "t", "", "a" * 300, "bad name!"]))
    return operation, draw(st.one_of(st.just(body), json_junk)) if draw(st.integers(0, 9)) == 0 else body


# --- SigV4 ----------------------------------------------------------------------------------------------

_GOOD_CREDENTIAL = "AKIDFUZZ/20260102/us-east-1/dynamodb/aws4_request"
_AUTH_PIECES = st.sampled_from(
    [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 ",
        "AWS4-",
        "AWS4",
        "AWS4-HMAC-SHA512 ",
        " ",
        ",",
        ", ",
        "=",
        "Credential=",
        _GOOD_CREDENTIAL,
        "AKID/20260102/us-east-1/dynamodb",
        "/",
        "//////",
        "SignedHeaders=",
        "host;x-amz-date",
        "host",
        "x-amz-date",
        ";",
        ";;",
        "Signature=",
        "0" * 64,
        "abc",
        "\u00e9",
        "\x00",
    ]
)
_DATES = st.sampled_from(
    [
        "20260102T030405Z",
        "20260102T030405",
        "20261302T030405Z",
        "2026-01-02T03:04:05Z",
        "",
        "Fri, 02 Jan 2026 03:04:05 GMT",
        "Fri, 32 Jan 2026 03:04:05 GMT",
        "99999999T999999Z",
        "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668T030405Z",
    ]
)


@st.composite
def sigv4_inputs(draw: Any) -> dict[str, Any]:
    """Keyword arguments for ``fuzz.targets.sigv4_case``: headers, query pairs, body, path, method."""
    headers: dict[str, list[str]] = {"host": ["127.0.0.1:8000"]}
    if draw(st.integers(0, 3)):
        pieces = draw(st.lists(st.one_of(_AUTH_PIECES, st.text(max_size=4)), max_size=12))
        if draw(st.booleans()):
            pieces = [
                "AWS4-HMAC-SHA256 Credential=",
                draw(st.one_of(st.just(_GOOD_CREDENTIAL), _SHORT_TEXT)),
                ", SignedHeaders=",
                draw(st.sampled_from(["host;x-amz-date", "host", "", ";", "HOST"])),
                ", Signature=",
                *pieces,
            ]
        headers["authorization"] = ["".join(pieces)]
    if draw(st.booleans()):
        headers["x-amz-date"] = [draw(st.one_of(_DATES, _SHORT_TEXT))]
    if draw(st.integers(0, 3)) == 0:
        headers["date"] = [draw(st.one_of(_DATES, _SHORT_TEXT))]
    if draw(st.integers(0, 3)) == 0:
        headers["x-amz-security-token"] = [draw(_SHORT_TEXT)]
    if draw(st.integers(0, 3)) == 0:
        headers["x-amz-content-sha256"] = [draw(st.sampled_from(["UNSIGNED-PAYLOAD", "", "0" * 64, "x"]))]
    query: list[tuple[str, str]] = []
    if draw(st.integers(0, 2)) == 0:
        for name in draw(
            st.lists(
                st.sampled_from(
                    [
                        "X-Amz-Algorithm",
                        "X-Amz-Credential",
                        "X-Amz-Signature",
                        "X-Amz-SignedHeaders",
                        "X-Amz-Date",
                        "X-Amz-Expires",
                        "X-Amz-Security-Token",
                        "Action",
                        "",
                    ]
                ),
                max_size=8,
            )
        ):
            value = draw(
                st.one_of(
                    st.sampled_from(
                        [
                            "AWS4-HMAC-SHA256",
                            _GOOD_CREDENTIAL,
                            "host",
                            "0" * 64,
                            "20260102T030405Z",
                            "60",
                            "604801",
                            "-1",
                            "1" * 30,
                            "9" * 5000,  # past int()'s digit limit
                            "\u00b2",  # str.isdigit() but not int()
                            "\u0661\u0662",
                        ]
                    ),
                    _SHORT_TEXT,
                )
            )
            query.append((name, value))
    return {
        "headers": headers,
        "query_pairs": query,
        "body": draw(st.binary(max_size=16)),
        "raw_path": draw(st.sampled_from(["/", "//", "/%", "/%zz", "/a/../b", "/\u00e9", "", "/?x", "/%2F"])),
        "method": draw(st.sampled_from(["POST", "GET", "", "post"])),
    }


# --- policies -------------------------------------------------------------------------------------------

_CONDITION_OPERATORS = st.sampled_from(
    [
        "StringEquals",
        "StringNotEquals",
        "StringLike",
        "StringEqualsIgnoreCase",
        "NumericLessThan",
        "NumericEquals",
        "DateGreaterThan",
        "DateLessThan",
        "Bool",
        "IpAddress",
        "NotIpAddress",
        "ArnLike",
        "ArnEquals",
        "Null",
        "BinaryEquals",
        "ForAllValues:StringLike",
        "ForAnyValue:StringEquals",
        "StringEqualsIfExists",
        "NumericLessThanIfExists",
        "ForAllValues:NumericEquals",
        "NoSuchOperator",
        "stringequals",
        "ForAnyValue:",
        "IfExists",
        "ForSomeValues:StringEquals",
    ]
)
_CONDITION_KEYS = st.sampled_from(
    [
        "aws:SourceIp",
        "aws:SourceVpc",
        "aws:PrincipalTag/team",
        "aws:CurrentTime",
        "aws:SecureTransport",
        "aws:username",
        "dynamodb:LeadingKeys",
        "dynamodb:Attributes",
        "aws:MultiFactorAuthAge",
        "k",
        "",
        "aws:RequestTag/${aws:username}",
        "aws:PrincipalArn",
    ]
)
_CONDITION_VALUES = st.one_of(
    st.sampled_from(
        [
            "10.0.0.0/8",
            "10.77.0.1",
            "::1/128",
            "300.1.1.1/33",
            "2026-01-01T00:00:00Z",
            "1700000000",
            "true",
            "false",
            "12",
            "-1.5e3",
            "${aws:username}",
            "${",
            "$${*}",
            "arn:aws:iam::*:user/*",
            "*",
            "?",
            "dGVzdA==",
            "",
            "vpc-1234",
        ]
    ),
    json_scalars,
)
_ACTIONS = st.sampled_from(
    [
        "*",
        "dynamodb:*",
        "dynamodb:GetItem",
        "dynamodb:Get*",
        "iam:*",
        "s3:GetObject",
        "dynamodb",
        ":",
        "",
        "dynamodb:",
        "*:*",
        "dynamodb:???Item",
    ]
)
_RESOURCES = st.sampled_from(
    [
        "*",
        "arn:aws:dynamodb:us-east-1:111122223333:table/t",
        "arn:aws:dynamodb:*:*:table/*",
        "arn:aws:*",
        "arn:aws:dynamodb:us-east-1:111122223333:table/${aws:username}",
        "arn",
        "",
        "arn:::::",
    ]
)
_PRINCIPALS = st.one_of(
    st.sampled_from(
        [
            "*",
            {"AWS": "*"},
            {"AWS": "111122223333"},
            {"AWS": "arn:aws:iam::111122223333:root"},
            {"AWS": ["arn:aws:iam::111122223333:user/alice", "AIDAFUZZFUZZFUZZFUZZ"]},
            {"Service": "dynamodb.amazonaws.com"},
            {"Federated": "cognito-identity.amazonaws.com"},
            {"CanonicalUser": "x"},
            {"Nope": "x"},
            {},
            {"AWS": []},
        ]
    ),
    json_junk,
)


def _one_or_list(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(s, st.lists(s, max_size=3), json_junk)


_STATEMENTS = st.fixed_dictionaries(
    {},
    optional={
        "Sid": st.one_of(st.sampled_from(["A", "deny-1", ""]), json_scalars),
        "Effect": st.one_of(st.sampled_from(["Allow", "Deny", "allow", ""]), json_scalars),
        "Action": _one_or_list(_ACTIONS),
        "NotAction": _one_or_list(_ACTIONS),
        "Resource": _one_or_list(_RESOURCES),
        "NotResource": _one_or_list(_RESOURCES),
        "Principal": _PRINCIPALS,
        "NotPrincipal": _PRINCIPALS,
        "Condition": st.one_of(
            st.dictionaries(
                _CONDITION_OPERATORS,
                st.one_of(
                    st.dictionaries(_CONDITION_KEYS, _one_or_list(_CONDITION_VALUES), max_size=3), json_junk
                ),
                max_size=3,
            ),
            json_junk,
        ),
    },
)


@st.composite
def policy_documents(draw: Any) -> tuple[Any, int, dict[str, Any]]:
    """A document (dict, JSON text or raw bytes), a policy-kind index and a request context."""
    doc: Any = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "Version": st.one_of(
                    st.sampled_from(["2012-10-17", "2008-10-17", "2020-01-01"]), json_scalars
                ),
                "Id": json_scalars,
                "Statement": st.one_of(_STATEMENTS, st.lists(_STATEMENTS, max_size=3), json_junk),
                "Extra": json_junk,
            },
        )
    )
    form = draw(st.integers(0, 9))
    if form == 0:
        import json

        text = json.dumps(doc)
        cut = draw(st.integers(0, len(text)))
        doc = text[:cut] + draw(st.text(max_size=3)) + text[cut:]
    elif form == 1:
        doc = draw(st.one_of(json_junk, st.binary(max_size=20), st.text(max_size=20)))
    elif form == 2:  # nesting deep enough to exhaust a recursive parser
        depth = draw(st.integers(min_value=1, max_value=8000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        inner = opener * depth + ("1" if opener != "[" else "") + closer * depth
        doc = (
            draw(
                st.sampled_from(
                    [
                        '{"Version":"2012-10-17","Statement":%s}',
                        "%s",
                        '{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":'
                        '{"StringEquals":{"k":%s}}}}',
                    ]
                )
            )
            % inner
        )
    context = {
        "action": draw(st.sampled_from(["dynamodb:GetItem", "iam:CreateUser", "", "DYNAMODB:getitem"])),
        "resource": draw(_RESOURCES),
        "keys": draw(
            st.dictionaries(
                _CONDITION_KEYS,
                st.one_of(_CONDITION_VALUES.map(str), st.lists(_CONDITION_VALUES.map(str), max_size=3)),
                max_size=4,
            )
        ),
    }
    return doc, draw(st.integers(0, 20)), context


# --- the world file -------------------------------------------------------------------------------------


@st.composite
def world_texts(draw: Any) -> str:
    """The example world file, with lines dropped, duplicated or changed, or a small YAML document."""
    from pathlib import Path

    import yaml

    example = Path(__file__).resolve().parents[1] / "examples" / "private-tables.yaml"
    lines = example.read_text().splitlines()
    form = draw(st.integers(0, 5))
    if form == 0:
        data = draw(
            st.dictionaries(
                st.sampled_from(["version", "accounts", "organization", "networks", "tables", "x"]),
                st.one_of(json_junk, st.dictionaries(_SHORT_TEXT, json_junk, max_size=3)),
                max_size=4,
            )
        )
        return yaml.safe_dump(data)
    if form == 1:
        return draw(st.text(alphabet="ab: -[]{}&*!|>'\"\n\t#%@`,?1", max_size=60))
    if form == 2:  # nesting deep enough to exhaust a recursive parser
        depth = draw(st.integers(min_value=1, max_value=1500))
        opener, closer = draw(st.sampled_from([("[", "]"), ("{a: ", "}")]))
        inner = opener * depth + ("1" if opener != "[" else "") + closer * depth
        return draw(st.sampled_from(["version: 1\naccounts: %s\n", "%s", "- " * 10 + "%s"])) % inner
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.integers(0, 3))
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            head, sep, _ = lines[i].partition(": ")
            lines[i] = (
                head + sep + draw(st.sampled_from(["''", "null", "[]", "{}", "5", "x", "*a", "&a x", "-1"]))
            )
        else:
            lines[i] = "  " + lines[i]
    return "\n".join(lines) + "\n"
