"""Attribute values and numbers: validation messages, canonical forms, sizes, equality, ordering, keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from perimeterdb.dynamodb import numbers, values
from perimeterdb.errors import ApiError


def _error(fn: Any, *args: Any) -> ApiError:
    with pytest.raises(ApiError) as raised:
        fn(*args)
    return raised.value


# --- numbers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1.50", "1.5"),
        ("0001", "1"),
        ("1e2", "100"),
        ("1.5E2", "150"),
        ("-0", "0"),
        ("0e1000", "0"),
        ("0042.1200", "42.12"),
        ("3.1400", "3.14"),
        ("1.0", "1"),
        ("+3", "3"),
        (".123", "0.123"),
        ("1e+5", "100000"),
        ("-17.4E37", "-174000000000000000000000000000000000000"),
        ("1E-130", "0." + "0" * 129 + "1"),
        ("1E125", "1" + "0" * 125),
        ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        (
            "-9.9999999999999999999999999999999999999E+125",
            "-99999999999999999999999999999999999999" + "0" * 88,
        ),
        ("0.00000000000000000000000000000000000001", "0.00000000000000000000000000000000000001"),
    ],
)
def test_normalize_number(text: str, canonical: str) -> None:
    assert numbers.normalize_number(text) == canonical


def test_38_digits_survive_without_rounding() -> None:
    # Python's default decimal context would round this to 28 digits.
    text = "3.1415926535897932384626433832795028841"
    assert numbers.normalize_number(text) == text
    total = numbers.add(Decimal("1"), Decimal("10000000000000000000000000000000000000"))
    assert numbers.format_number(total) == "10000000000000000000000000000000000001"


@pytest.mark.parametrize(
    "text", ["NaN", "Infinity", "-Infinity", "-NaN", "dog", "-dog", " 1", "1 ", ".", "1e", "0x10", "1,5"]
)
def test_invalid_numbers(text: str) -> None:
    assert (
        _error(numbers.parse_number, text).message
        == f"The parameter cannot be converted to a numeric value: {text}"
    )


def test_empty_number() -> None:
    assert _error(numbers.parse_number, "").message == "The parameter cannot be converted to a numeric value"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1E+126", numbers.OVERFLOW),
        ("-1E+126", numbers.OVERFLOW),
        ("11e125", numbers.OVERFLOW),
        ("1E-131", numbers.UNDERFLOW),
        ("0.9e-130", numbers.UNDERFLOW),
        ("123456789012345678901234567890123456789", numbers.TOO_PRECISE),
        ("3.14159265358979323846264338327950288419", numbers.TOO_PRECISE),
    ],
)
def test_number_range(text: str, message: str) -> None:
    assert _error(numbers.parse_number, text).message == message


def test_huge_exponent_is_cheap_and_rejected() -> None:
    assert _error(numbers.parse_number, "1.0e100000000").message == numbers.OVERFLOW


def test_trailing_zeros_do_not_count_as_digits() -> None:
    numbers.parse_number("1" + "0" * 100)  # one significant digit, magnitude 1e100
    numbers.parse_number("1" * 38 + "0" * 50)


# Captured against DynamoDB by the dynamodb-conformance suite (tier3 numberByteSize).
@pytest.mark.parametrize(
    ("literal", "size"),
    [
        ("0", 1),
        ("1", 2),
        ("12", 2),
        ("123", 3),
        ("1234", 3),
        ("12345678901234567890123456789012345678", 20),
        ("0042", 2),
        ("100", 2),
        ("1010", 3),
        ("0.0000001", 2),
        ("1E125", 2),
        ("1E-100", 2),
        ("1.5", 3),
        ("15", 2),
        ("1.2", 3),
        ("1.200", 3),
        ("1.234", 4),
        ("3.14159", 5),
        ("123456", 4),
        ("100.5", 4),
        ("0.15", 2),
        ("-42", 3),
        ("-0", 1),
    ],
)
def test_number_size(literal: str, size: int) -> None:
    assert numbers.number_size(numbers.parse_number(literal)) == size


# --- attribute values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({}, "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"),
        (
            {"S": "a", "N": "1"},
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported "
            "datatypes",
        ),
        ({"SS": []}, "One or more parameter values were invalid: An string set  may not be empty"),
        ({"NS": []}, "One or more parameter values were invalid: An number set  may not be empty"),
        ({"BS": []}, "One or more parameter values were invalid: Binary sets should not be empty"),
        (
            {"SS": ["a", "a"]},
            "One or more parameter values were invalid: Input collection [a, a] contains duplicates.",
        ),
        ({"NS": ["1", "1.0"]}, "Input collection contains duplicates"),
        ({"NS": ["1", "x"]}, "The parameter cannot be converted to a numeric value: x"),
        ({"N": "1e999"}, numbers.OVERFLOW),
        (
            {"M": {"a": {"L": [{"SS": []}]}}},
            "One or more parameter values were invalid: An string set  may not be empty",
        ),
    ],
)
def test_invalid_attribute_values(value: dict[str, Any], message: str) -> None:
    error = _error(values.validate_attribute_value, value)
    assert error.code == "ValidationException"
    assert error.message == message


@pytest.mark.parametrize(
    "value",
    [{"N": 123}, {"S": 1}, {"BOOL": "maybe"}, {"B": "abc"}, {"B": "ab$="}, {"SS": "a"}, {"L": {}}, {"M": []}],
)
def test_wrong_json_types_are_serialization_errors(value: dict[str, Any]) -> None:
    assert _error(values.validate_attribute_value, value).code == "SerializationException"


def test_validate_normalizes_nested_numbers_and_null() -> None:
    raw = {"M": {"n": {"N": "1.50"}, "l": {"L": [{"NS": ["01", "2e1"]}, {"NULL": "TRUE"}]}}}
    assert values.validate_attribute_value(raw) == {
        "M": {"n": {"N": "1.5"}, "l": {"L": [{"NS": ["1", "20"]}, {"NULL": True}]}}
    }


def test_empty_string_and_binary_are_valid_values() -> None:
    assert values.validate_item({"s": {"S": ""}, "b": {"B": ""}}) == {"s": {"S": ""}, "b": {"B": ""}}


def test_nesting_limit() -> None:
    value: dict[str, Any] = {"S": "x"}
    for _ in range(31):
        value = {"L": [value]}
    values.validate_attribute_value(value)  # 32 levels
    error = _error(values.validate_attribute_value, {"M": {"k": value}})
    assert error.message == values.NESTING_TOO_DEEP


# --- sizes ------------------------------------------------------------------------------------------------


def test_item_size_rules() -> None:
    assert values.item_size({"pk": {"S": "abc"}}) == 5
    assert values.item_size({"é": {"S": "€"}}) == 2 + 3  # UTF-8 bytes of name and value
    assert values.item_size({"b": {"B": "AQID"}}) == 1 + 3  # decoded bytes
    assert values.item_size({"t": {"BOOL": True}, "n": {"NULL": True}}) == 4
    assert values.item_size({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}) == 1 + 3 + (1 + 2) + (1 + 2)
    assert values.item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + (1 + 1 + 1)
    assert values.item_size({"ss": {"SS": ["a", "bc"]}}) == 2 + 3


def test_item_size_gate() -> None:
    item = {"pk": {"S": "k"}, "p": {"S": "x" * (400 * 1024 - 4)}}
    assert values.item_size(item) == 400 * 1024
    values.check_item_size(item)
    item["p"] = {"S": "x" * (400 * 1024 - 3)}
    assert _error(values.check_item_size, item).message == "Item size has exceeded the maximum allowed size"


# --- equality and ordering --------------------------------------------------------------------------------


def test_values_equal() -> None:
    assert values.values_equal({"N": "1"}, {"N": "1.0"})
    assert values.values_equal({"SS": ["a", "b"]}, {"SS": ["b", "a"]})
    assert not values.values_equal({"SS": ["a"]}, {"S": "a"})
    assert not values.values_equal({"L": [{"N": "1"}, {"N": "2"}]}, {"L": [{"N": "2"}, {"N": "1"}]})
    assert not values.values_equal(None, {"S": "a"})


def test_compare_values() -> None:
    assert values.compare_values({"N": "-10"}, {"N": "-9"}) == -1
    assert values.compare_values({"N": "1e2"}, {"N": "100"}) == 0
    assert values.compare_values({"S": "Z"}, {"S": "a"}) == -1
    assert values.compare_values({"S": "\U0001f600"}, {"S": "\uffff"}) == 1  # UTF-8 byte order
    assert values.compare_values({"B": "gA=="}, {"B": "fw=="}) == 1  # unsigned bytes
    assert values.compare_values({"S": "1"}, {"N": "1"}) is None
    assert values.compare_values({"SS": ["a"]}, {"SS": ["a"]}) is None


# --- keys -------------------------------------------------------------------------------------------------

SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
TYPES = {"pk": "S", "sk": "N"}


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ({"pk": {"S": "a"}}, "The provided key element does not match the schema"),
        ({"pk": {"S": "a"}, "sk": {"S": "1"}}, "The provided key element does not match the schema"),
        (
            {"pk": {"S": "a"}, "sk": {"N": "1"}, "x": {"N": "1"}},
            "The provided key element does not match the schema",
        ),
        (
            {"pk": {"S": ""}, "sk": {"N": "1"}},
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an "
            "empty string value. Key: pk",
        ),
        (
            {"pk": {"S": "a" * 2049}, "sk": {"N": "1"}},
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 "
            "bytes",
        ),
    ],
)
def test_validate_key(key: dict[str, Any], message: str) -> None:
    assert _error(values.validate_key, key, SCHEMA, TYPES).message == message


def test_validate_key_accepts_limits() -> None:
    values.validate_key({"pk": {"S": "a" * 2048}, "sk": {"N": "1"}}, SCHEMA, TYPES)
    binary_schema = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    big_sort = values.validate_attribute_value({"B": "AAAA" * 342})  # 1026 bytes
    error = _error(
        values.validate_key, {"pk": {"S": "a"}, "sk": big_sort}, binary_schema, {"pk": "S", "sk": "B"}
    )
    assert error.message == (
        "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit "
        "of 1024 bytes"
    )


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"sk": {"N": "1"}}, "One or more parameter values were invalid: Missing the key pk in the item"),
        (
            {"pk": {"N": "1"}, "sk": {"N": "1"}},
            "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
        ),
        (
            {"pk": {"S": "a"}, "sk": {"B": ""}},
            "One or more parameter values were invalid: Type mismatch for key sk expected: N actual: B",
        ),
    ],
)
def test_validate_item_key(item: dict[str, Any], message: str) -> None:
    assert _error(values.validate_item_key, item, SCHEMA, TYPES).message == message


def test_empty_binary_key() -> None:
    error = _error(values.validate_item_key, {"pk": {"B": ""}}, [SCHEMA[0]], {"pk": "B"})
    assert error.message == (
        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an "
        "empty binary value. Key: pk"
    )


def test_index_keys() -> None:
    indexes = [("gsi1", [("g", "S")])]
    values.validate_index_keys({"pk": {"S": "a"}}, indexes)  # absent: not indexed, fine
    error = _error(values.validate_index_keys, {"g": {"N": "1"}}, indexes)
    assert error.message == (
        "One or more parameter values were invalid: Type mismatch for Index Key g Expected: S Actual: N IndexName: gsi1"
    )


@pytest.mark.parametrize(
    "literal",
    [
        "0",
        "1",
        "-1",
        "100",
        "1010",
        "100.5",
        "0.15",
        "0.0000001",
        "-42.125",
        "12345678901234567890123456789012345678",
        "1E125",
        "+7",
    ],
)
def test_text_size_matches_number_size(literal: str) -> None:
    canonical = numbers.normalize_number(literal)
    assert numbers.text_size(canonical) == numbers.number_size(Decimal(literal))
    assert numbers.text_size(literal) == numbers.number_size(Decimal(literal))


@pytest.mark.parametrize("text", ["1", "-12.5", "0.001", "0", "99999999999999999999999999999999999999"])
def test_canonical_fast_path_returns_text(text: str) -> None:
    assert numbers.normalize_number(text) == numbers.format_number(Decimal(text)) == text
