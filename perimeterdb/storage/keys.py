"""Order-preserving binary encodings of DynamoDB key values.

Each key attribute is stored in a column of its own, so an encoding needs no terminator or escaping:
S is its UTF-8 bytes and B its raw bytes (both sort bytewise, as DynamoDB sorts them), and N is encoded
so that bytewise order is numeric order:

- zero is ``0x01``;
- a positive number ``0.d1d2...dn * 10^e`` (``d1 != 0``, no trailing zeros) is ``0x02``, ``e + 1000`` as two
  big-endian bytes, then the digits as ASCII;
- a negative number is ``0x00``, then the complement of the positive form's exponent and digits, then
  ``0xff`` (so that a shorter digit string, the smaller magnitude, sorts after the longer one).
"""

from __future__ import annotations

import base64
import hashlib
from decimal import Context

_CONTEXT = Context(prec=60)
_EXP_BIAS = 1000


def encode_number(text: str) -> bytes:
    value = _CONTEXT.create_decimal(text)
    if value.is_zero():
        return b"\x01"
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    digit_text = "".join(map(str, digits)).rstrip("0")
    # value = 0.<digits> * 10^(exponent + len(digits))
    exp = exponent + len(digits) + _EXP_BIAS
    body = exp.to_bytes(2, "big") + digit_text.encode("ascii")
    if sign == 0:
        return b"\x02" + body
    return b"\x00" + bytes(255 - b for b in body) + b"\xff"


def decode_number(data: bytes) -> str:
    if data == b"\x01":
        return "0"
    if data[0] == 2:
        body, negative = data[1:], False
    else:
        body, negative = bytes(255 - b for b in data[1:-1]), True
    exp = int.from_bytes(body[:2], "big") - _EXP_BIAS
    digits = body[2:].decode("ascii")
    value = _CONTEXT.create_decimal(f"0.{digits}E{exp}")
    text = format(value, "f")
    return "-" + text if negative else text


def encode_key_value(type_name: str, wire_value: str) -> bytes:
    """Encode the wire form of a key attribute value (``S``, ``N`` or ``B`` as base64)."""
    if type_name == "S":
        return wire_value.encode("utf-8")
    if type_name == "N":
        return encode_number(wire_value)
    if type_name == "B":
        return base64.b64decode(wire_value)
    raise ValueError(f"not a key type: {type_name}")


def decode_key_value(type_name: str, data: bytes) -> str:
    if type_name == "S":
        return data.decode("utf-8")
    if type_name == "N":
        return decode_number(data)
    if type_name == "B":
        return base64.b64encode(data).decode("ascii")
    raise ValueError(f"not a key type: {type_name}")


def partition_hash(hk: bytes) -> bytes:
    """The 8-byte hash prefix that orders partitions as DynamoDB's Scan does: by hash, not by value."""
    return hashlib.blake2b(hk, digest_size=8).digest()


def segment_bounds(segment: int, total: int) -> tuple[bytes, bytes | None]:
    """The hash range of one parallel-scan segment: each partition falls in exactly one segment."""
    space = 1 << 64
    lo = space * segment // total
    hi = space * (segment + 1) // total
    return lo.to_bytes(8, "big"), (hi.to_bytes(8, "big") if hi < space else None)
