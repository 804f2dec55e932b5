"""The order-preserving key encodings sort exactly as DynamoDB sorts key values."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal

from perimeterdb.storage.keys import decode_number, encode_key_value, encode_number, segment_bounds

NUMBERS = [
    "0",
    "1",
    "-1",
    "0.5",
    "-0.5",
    "10",
    "-10",
    "9.99",
    "100",
    "-100",
    "1E+125",
    "-1E+125",
    "1E-130",
    "-1E-130",
    "12345678901234567890123456789012345678",
    "0.12",
    "0.123",
    "-0.12",
    "-0.123",
    "99.9",
    "2",
]


def test_numbers_sort_numerically() -> None:
    assert sorted(NUMBERS, key=encode_number) == sorted(NUMBERS, key=Decimal)


def test_random_numbers_sort_numerically_and_roundtrip() -> None:
    rng = random.Random(7)
    values = []
    for _ in range(2000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 38)))
        text = f"{rng.choice(['', '-'])}{digits}E{rng.randint(-90, 80)}"
        values.append(text)
    assert sorted(values, key=encode_number) == sorted(values, key=Decimal)
    for text in values:
        assert Decimal(decode_number(encode_number(text))) == Decimal(text)


def test_equal_numbers_encode_equally() -> None:
    assert encode_number("1.50") == encode_number("1.5") == encode_number("15E-1")


def test_strings_and_binary_sort_bytewise() -> None:
    words = ["a", "B", "ab", "é", "z", "aa", "\u00ff", "\U0001f600"]
    assert sorted(words, key=lambda w: encode_key_value("S", w)) == sorted(words, key=lambda w: w.encode())
    assert encode_key_value("B", "AAE=") == b"\x00\x01"


def test_segments_partition_the_hash_space() -> None:
    bounds = [segment_bounds(i, 7) for i in range(7)]
    assert bounds[0][0] == b"\x00" * 8
    assert bounds[-1][1] is None
    for (_, hi), (lo, _) in itertools.pairwise(bounds):
        assert hi == lo
