"""Request bodies sent compressed (``Content-Encoding``), inflated with a bound on what they may become.

DynamoDB accepts bodies compressed with ``gzip`` (the SDKs' request compression,
https://docs.aws.amazon.com/sdkref/latest/guide/feature-compression.html) and with ``deflate``, and a gzip
body may hold several members one after the other. A compressed body is inflated a piece at a time
(``zlib.decompressobj`` with ``max_length``) and refused as soon as it would pass ``limit`` bytes: a
995 KB "gzip bomb" never becomes the gigabyte it holds, however it is built.

Where perimeterdb differs from DynamoDB, on purpose (bad input never gets a 5xx here): DynamoDB answers an
unknown encoding, a body that does not inflate, and junk after the compressed data with 500
InternalServerError; perimeterdb answers 400 ``SerializationException`` saying which. DynamoDB does not bound
the inflated size; perimeterdb refuses past 16 MiB, its limit for an uncompressed request, with 413.
"""

from __future__ import annotations

import zlib

from perimeterdb import errors

_CHUNK = 64 * 1024  # the most compressed input handed to zlib at a time
_GZIP = zlib.MAX_WBITS | 16  # a gzip header and trailer around the deflate stream
_ZLIB = zlib.MAX_WBITS  # a zlib (RFC 1950) header around it: what HTTP's "deflate" names
_RAW = -zlib.MAX_WBITS  # a bare deflate stream (RFC 1951), which some clients send as "deflate"
_IDENTITY = frozenset({"", "identity"})


class DecodedTooLarge(Exception):
    """The body inflates to more than the limit: the caller answers 413."""


def decode(body: bytes, encoding: str | None, limit: int) -> bytes:
    """``body`` with its ``Content-Encoding`` undone, at most ``limit`` bytes, or the error to answer."""
    name = (encoding or "").strip().lower()
    if name in _IDENTITY:
        return body
    if name in ("gzip", "x-gzip"):
        return _inflate(body, _GZIP, limit, members=True)
    if name == "deflate":
        return _inflate(body, _ZLIB if _looks_like_zlib(body) else _RAW, limit, members=False)
    raise errors.serialization(f"Unsupported Content-Encoding: '{encoding}'. Supported: gzip, deflate")


def _looks_like_zlib(body: bytes) -> bool:
    """RFC 1950's two-byte header: method 8 (deflate), and the pair a multiple of 31."""
    return len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0


def _inflate(body: bytes, wbits: int, limit: int, *, members: bool) -> bytes:
    if not body:
        raise errors.serialization("The request body could not be decompressed: it is empty")
    out: list[bytes] = []
    size = 0
    data = memoryview(body)
    while True:  # one gzip member (or the one deflate stream) per round
        inflater = zlib.decompressobj(wbits)
        pos = 0
        try:
            while not inflater.eof:
                chunk: bytes | memoryview = inflater.unconsumed_tail
                if not chunk:
                    if pos >= len(data):
                        raise errors.serialization(
                            "The request body could not be decompressed: it is truncated"
                        )
                    chunk = data[pos : pos + _CHUNK]
                    pos += len(chunk)
                # Never more than the room left, plus one byte to notice an overflow, comes out at a time.
                piece = inflater.decompress(chunk, limit - size + 1)
                size += len(piece)
                if size > limit:
                    raise DecodedTooLarge()
                out.append(piece)
        except zlib.error:
            raise errors.serialization("The request body could not be decompressed") from None
        rest = inflater.unused_data + bytes(data[pos:])
        if not rest:
            return b"".join(out)
        if not members or rest[:2] != b"\x1f\x8b":
            raise errors.serialization("The request body has data after its compressed content")
        data = memoryview(rest)
