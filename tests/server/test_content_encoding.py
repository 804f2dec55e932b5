"""server/content_encoding.py: bounded inflating of gzip and deflate bodies."""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perimeterdb.errors import ApiError
from perimeterdb.server.content_encoding import DecodedTooLarge, decode

LIMIT = 1 << 20


def _raw_deflate(data: bytes) -> bytes:
    deflater = zlib.compressobj(wbits=-15)
    return deflater.compress(data) + deflater.flush()


ENCODERS = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": _raw_deflate,
}


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=5000), name=st.sampled_from(sorted(ENCODERS)), split=st.integers(0, 5000))
def test_round_trip(data: bytes, name: str, split: int) -> None:
    encoding = "deflate" if name == "deflate-raw" else name
    assert decode(ENCODERS[name](data), encoding, LIMIT) == data
    if encoding != "deflate":  # several gzip members, one after the other
        assert decode(gzip.compress(data[:split]) + gzip.compress(data[split:]), encoding, LIMIT) == data


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_exactly_the_limit_passes_and_one_byte_more_does_not(name: str) -> None:
    encoding = "deflate" if name == "deflate-raw" else name
    assert len(decode(ENCODERS[name](b"a" * LIMIT), encoding, LIMIT)) == LIMIT
    with pytest.raises(DecodedTooLarge):
        decode(ENCODERS[name](b"a" * (LIMIT + 1)), encoding, LIMIT)


def test_a_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(bytes(256 << 20), 9)  # 256 MiB of zeros in about 256 KB
    with pytest.raises(DecodedTooLarge):
        decode(bomb, "gzip", LIMIT)
    # Several members each under the limit still add up to it.
    with pytest.raises(DecodedTooLarge):
        decode(gzip.compress(b"a" * (LIMIT // 2 + 1)) * 2, "gzip", LIMIT)


@settings(max_examples=300, deadline=None)
@given(junk=st.binary(max_size=300), encoding=st.sampled_from(["gzip", "deflate"]))
def test_junk_is_a_serialization_error_or_decodes(junk: bytes, encoding: str) -> None:
    try:
        decode(junk, encoding, LIMIT)
    except ApiError as error:
        assert error.code == "SerializationException"
    except DecodedTooLarge:  # pragma: no cover - 300 random bytes cannot hold a megabyte
        raise AssertionError("random bytes inflated past the limit") from None


@pytest.mark.parametrize("encoding", ["br", "compress", "gzip, deflate", "zstd"])
def test_unknown_encodings_are_refused(encoding: str) -> None:
    with pytest.raises(ApiError) as caught:
        decode(gzip.compress(b"{}"), encoding, LIMIT)
    assert caught.value.code == "SerializationException"
    assert "Unsupported Content-Encoding" in caught.value.message


@pytest.mark.parametrize("encoding", ["", "identity", "IDENTITY"])
def test_identity_is_the_body_itself(encoding: str) -> None:
    assert decode(b"{}", encoding, LIMIT) == b"{}"
