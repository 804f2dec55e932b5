"""The Query protocol's two halves for IAM and STS, driven by botocore's service models.

- ``decode``: flat form pairs (``Tags.member.1.Key=k``) -> the nested input the model describes, with
  integers and booleans converted, then checked with ``shapes.validate_request`` (IAM's "N validation
  errors detected: …" messages are the same coral messages DynamoDB uses, under the code ValidationError).
- ``encode``: an operation's result (a dict shaped like botocore's parsed output) -> the XML inside
  ``<ActionResult>``, in the element names and list wrappers (``<member>``) botocore parses.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from perimeterdb.errors import ApiError
from perimeterdb.iam import errors as iam_errors
from perimeterdb.shapes import service_model, validate_request


def operations(service: str) -> dict[str, Any]:
    return service_model(service)["operations"]  # type: ignore[no-any-return]


class _Decoder:
    def __init__(self, shapes: dict[str, Any], params: dict[str, str]) -> None:
        self.shapes = shapes
        self.params = params

    def has_prefix(self, prefix: str) -> bool:
        dotted = prefix + "."
        return prefix in self.params or any(k.startswith(dotted) for k in self.params)

    def value(self, shape_name: str, prefix: str, path: str) -> Any:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            out: dict[str, Any] = {}
            for name, member in shape.get("members", {}).items():
                key = f"{prefix}.{name}" if prefix else name
                if self.has_prefix(key):
                    out[name] = self.value(member["shape"], key, f"{path}.{name}" if path else name)
            return out
        if kind == "list":
            member = shape["member"]
            item_name = member.get("locationName", "member")
            items: list[Any] = []
            index = 1
            while self.has_prefix(f"{prefix}.{item_name}.{index}"):
                items.append(self.value(member["shape"], f"{prefix}.{item_name}.{index}", path))
                index += 1
            return items
        if kind == "map":
            result: dict[str, Any] = {}
            index = 1
            while self.has_prefix(f"{prefix}.entry.{index}"):
                k = self.params.get(f"{prefix}.entry.{index}.key", "")
                result[k] = self.value(shape["value"]["shape"], f"{prefix}.entry.{index}.value", path)
                index += 1
            return result
        raw = self.params.get(prefix, "")
        if kind in ("integer", "long"):
            try:
                return int(raw)
            except ValueError:
                raise iam_errors.validation_error(
                    f"1 validation error detected: Value '{raw}' at '{_lower_first(path)}' failed to satisfy "
                    "constraint: Member must be a number"
                ) from None
        if kind == "boolean":
            return raw.lower() == "true"
        return raw


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def decode(service: str, operation: str, params: dict[str, str]) -> dict[str, Any]:
    """The operation's input from the request's form pairs, validated against the model."""
    model = service_model(service)
    input_name = model["operations"][operation].get("input", {}).get("shape")
    if input_name is None:
        return {}
    body: dict[str, Any] = _Decoder(model["shapes"], params).value(input_name, "", "")
    try:
        validate_request(service, operation, body)
    except ApiError as error:
        raise iam_errors.validation_error(error.message) from None
    return body


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Encoder:
    def __init__(self, shapes: dict[str, Any]) -> None:
        self.shapes = shapes

    def members(self, shape_name: str, value: dict[str, Any]) -> str:
        shape = self.shapes[shape_name]
        out: list[str] = []
        for name, member in shape.get("members", {}).items():
            if name not in value or value[name] is None:
                continue
            tag = member.get("locationName", name)
            out.append(self.element(tag, member["shape"], value[name]))
        return "".join(out)

    def element(self, tag: str, shape_name: str, value: Any) -> str:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            return f"<{tag}>{self.members(shape_name, value)}</{tag}>"
        if kind == "list":
            member = shape["member"]
            item = member.get("locationName", "member")
            inner = "".join(self.element(item, member["shape"], v) for v in value)
            if shape.get("flattened"):
                return inner
            return f"<{tag}>{inner}</{tag}>"
        if kind == "map":
            entries = "".join(
                f"<entry><key>{escape(str(k))}</key>{self.element('value', shape['value']['shape'], v)}</entry>"
                for k, v in value.items()
            )
            return f"<{tag}>{entries}</{tag}>"
        if kind == "blob":
            raw = value if isinstance(value, bytes) else str(value).encode()
            text = base64.b64encode(raw).decode()
        elif kind == "timestamp":
            text = iso(value) if isinstance(value, int | float) else str(value)
        elif kind == "boolean":
            text = "true" if value else "false"
        else:
            text = str(value)
        return f"<{tag}>{escape(text)}</{tag}>"


def encode(service: str, operation: str, result: dict[str, Any] | None) -> str:
    """The XML of an operation's result members (without the ``<ActionResult>`` wrapper)."""
    model = service_model(service)
    output = model["operations"][operation].get("output")
    if output is None or result is None:
        return ""
    return _Encoder(model["shapes"]).members(output["shape"], result)
