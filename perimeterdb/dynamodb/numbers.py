"""DynamoDB's Number type: parsing, range checks, the canonical text form, arithmetic and size.

A DynamoDB number has up to 38 significant decimal digits and a magnitude between 1E-130 and
9.99…E+125 (or is zero). Every operation here runs under ``CONTEXT``, a local decimal context wide
enough that nothing within the allowed range is ever rounded (Python's default context keeps only
28 digits and would silently round).
"""

from __future__ import annotations

import re
from decimal import Clamped, Context, Decimal, InvalidOperation

from perimeterdb.errors import validation

__all__ = [
    "CONTEXT",
    "MAX_DIGITS",
    "add",
    "check_range",
    "format_number",
    "normalize_number",
    "number_size",
    "parse_number",
    "subtract",
    "text_size",
]

MAX_DIGITS = 38
MAX_EXPONENT = 125  # adjusted exponent (position of the most significant digit) of the largest magnitude
MIN_EXPONENT = -130

# Wide enough that the sum of two in-range numbers (at most ~256 digits apart) is always exact.
CONTEXT = Context(prec=400, Emax=10**9, Emin=-(10**9), traps=[InvalidOperation])
CONTEXT.clear_flags()
CONTEXT.traps[Clamped] = False

# Unambiguous (the digits after the integer part follow a literal dot), so a failed match takes linear time:
# "[0-9]+\.?[0-9]*" split a run of digits every possible way before giving up, quadratic in its length.
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

OVERFLOW = "Number overflow. Attempting to store a number with magnitude larger than supported range"
UNDERFLOW = "Number underflow. Attempting to store a number with magnitude smaller than supported range"
TOO_PRECISE = "Attempting to store more than 38 significant digits in a Number"


def parse_number(text: object) -> Decimal:
    """Parse a wire number string, raising DynamoDB's ValidationException when it is not a valid number."""
    if not isinstance(text, str) or not text:
        raise validation("The parameter cannot be converted to a numeric value")
    if _NUMBER_RE.fullmatch(text) is None:
        raise validation(f"The parameter cannot be converted to a numeric value: {text}")
    value = Decimal(text)
    check_range(value)
    return value


def check_range(value: Decimal, *, arithmetic: bool = False) -> None:
    """Raise when ``value`` cannot be stored as a DynamoDB number.

    DynamoDB reports a result of ``+``/``-`` that needs more than 38 digits as an overflow, so
    ``arithmetic=True`` uses that message for lost precision too.
    """
    if not value:
        return
    _, digits, _ = value.as_tuple()
    adjusted = value.adjusted()
    if adjusted > MAX_EXPONENT:
        raise validation(OVERFLOW)
    if adjusted < MIN_EXPONENT:
        raise validation(UNDERFLOW)
    significant = len(digits)
    # Trailing zeros in the coefficient are not significant (e.g. Decimal("100") has digits (1,0,0)).
    for digit in reversed(digits):
        if digit:
            break
        significant -= 1
    if significant > MAX_DIGITS:
        raise validation(OVERFLOW if arithmetic else TOO_PRECISE)


def format_number(value: Decimal) -> str:
    """The canonical text DynamoDB returns: plain notation, no exponent, no superfluous zeros."""
    if not value:
        return "0"
    sign, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    if exponent >= 0:
        text = digits + "0" * exponent
    else:
        point = len(digits) + exponent
        text = digits[:point] + "." + digits[point:] if point > 0 else "0." + "0" * (-point) + digits
    return "-" + text if sign else text


# Already canonical and necessarily in range (at most 38 digits, no exponent): the common case, kept cheap.
_CANONICAL_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]*[1-9])?")


def normalize_number(text: str) -> str:
    """Validate a wire number and return its canonical form ("1.50" -> "1.5", "1e2" -> "100", "-0" -> "0")."""
    if (
        isinstance(text, str)
        and len(text) - text.startswith("-") - ("." in text) <= MAX_DIGITS
        and text != "-0"
        and _CANONICAL_RE.fullmatch(text)
    ):
        return text
    return format_number(parse_number(text))


def text_size(text: str) -> int:
    """``number_size`` of a number in canonical text form (as stored), without building a Decimal."""
    if "e" in text or "E" in text or text.startswith("+"):
        return number_size(Decimal(text))
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    integer, _, fraction = digits.partition(".")
    integer = integer.lstrip("0")
    fraction = fraction.rstrip("0")
    if fraction:
        if not integer:
            fraction = fraction.lstrip("0")
    else:
        integer = integer.rstrip("0")
    if not integer and not fraction:
        return 1
    return 1 + (len(integer) + 1) // 2 + (len(fraction) + 1) // 2 + (1 if negative else 0)


def add(left: Decimal, right: Decimal) -> Decimal:
    result = CONTEXT.add(left, right)
    check_range(result, arithmetic=True)
    return result


def subtract(left: Decimal, right: Decimal) -> Decimal:
    result = CONTEXT.subtract(left, right)
    check_range(result, arithmetic=True)
    return result


def number_size(value: Decimal) -> int:
    """Bytes a number counts towards an item's size.

    Measured on DynamoDB: one byte, plus one per two significant digits on each side of the decimal
    point (each side rounded up separately), plus one when negative. Zero costs one byte.
    """
    if not value:
        return 1
    sign, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    point = len(digits) + exponent  # digits before the decimal point
    if point <= 0:
        integer_digits, fraction_digits = 0, len(digits)
    elif point >= len(digits):
        integer_digits, fraction_digits = len(digits), 0
    else:
        integer_digits, fraction_digits = point, len(digits) - point
    return 1 + (integer_digits + 1) // 2 + (fraction_digits + 1) // 2 + (1 if sign else 0)
