"""Tags on tables: DynamoDB's validation rules, and read-modify-write of the table description.

Tags are kept in the description as ``_tags`` (a list of ``{"Key", "Value"}``, in insertion order).
Updates of one table's tags are serialized by a per-table lock, so concurrent TagResource calls do not
lose each other's tags. A tagged resource must be a table ARN of the caller's region.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb.call import Call
from perimeterdb.dynamodb.catalog import Table

MAX_TAGS = 50
MAX_KEY = 128
MAX_VALUE = 256
_INVALID = "One or more parameter values were invalid: "
_EXTRA_CHARS = set("_.:/=+-@")


@dataclass(frozen=True, slots=True)
class ResourceArn:
    """A parsed DynamoDB resource ARN: a table, or a table's stream (``stream`` is its label)."""

    text: str
    partition: str
    region: str
    account: str
    table: str
    stream: str | None = None


def parse_arn(text: str) -> tuple[ResourceArn | None, str]:
    """Parse a DynamoDB resource ARN; on failure return (None, the reason in DynamoDB's words)."""
    if not text.startswith("arn:"):
        return None, _INVALID + f"ARNs must start with 'arn:': {text}"
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[2] != "dynamodb" or not parts[5].startswith("table/"):
        return None, _INVALID + f"Provided Arn is not a DynamoDB resource arn: {text}"
    path = parts[5][len("table/") :].split("/")
    if len(path) == 1 and path[0]:
        return ResourceArn(text, parts[1], parts[3], parts[4], path[0]), ""
    if len(path) == 3 and path[1] == "stream" and path[0] and path[2]:
        return ResourceArn(text, parts[1], parts[3], parts[4], path[0], path[2]), ""
    if len(path) == 3 and path[1] == "index":
        return None, _INVALID + (
            f"Invalid resource arn provided, only table or stream is accepted. Provided resource arn: {text}"
        )
    return None, _INVALID + f"Provided Arn is not a DynamoDB resource arn: {text}"


async def tagged_table(call: Call, arn_text: str | None) -> Table:
    """The table a tagging request names, with DynamoDB's errors for anything else."""
    if not arn_text:
        raise errors.validation("Invalid TableArn")
    arn, reason = parse_arn(arn_text)
    if arn is None:
        raise errors.validation(reason)
    if arn.stream is not None:
        raise errors.validation(
            _INVALID
            + f"Invalid resource arn provided, only table or stream is accepted. Provided resource arn: "
            f"{arn_text}"
        )
    if arn.region != call.region or arn.partition != "aws":
        raise errors.validation(f"Invalid TableArn: Invalid ResourceArn provided as input {arn_text}")
    table = await call.catalog.find(arn.account, arn.region, arn.table)
    if table is None:
        raise errors.resource_not_found(f"Requested resource not found: ResourcArn: {arn_text} not found")
    return table


def _valid_text(text: str) -> bool:
    return all(c.isalnum() or c.isspace() or c in _EXTRA_CHARS for c in text)


def validate_tags(tags: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """Validate a list of tags (TagResource, CreateTable); return it normalized."""
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for tag in tags:
        key, value = tag.get("Key"), tag.get("Value")
        if not isinstance(key, str) or not key or len(key) > MAX_KEY or not _valid_text(key):
            raise errors.validation(f"The Tag Key provided is invalid, Key: {key}")
        if not isinstance(value, str) or len(value) > MAX_VALUE or not _valid_text(value):
            raise errors.validation(
                f"The Tag Value provided is invalid, Value: {value if value is not None else 'null'}"
            )
        if key.startswith("aws:"):
            raise errors.validation(f"Tag Key cannot be prefixed with aws:, Key: {key}")
        if key in seen:
            raise errors.validation(f"Duplicate Tag Keys provided as input: Duplicate Tag Key found {key}")
        seen.add(key)
        out.append({"Key": key, "Value": value})
    if len(out) > MAX_TAGS:
        raise errors.validation("Number of Tags exceed the current limit for the provided ResourceArn")
    return out


def current(table: Table) -> list[dict[str, str]]:
    return [dict(tag) for tag in table.description.get("_tags", [])]


def merged(existing: list[dict[str, str]], new: list[dict[str, str]]) -> list[dict[str, str]]:
    by_key = {tag["Key"]: tag["Value"] for tag in existing}
    for tag in new:
        by_key[tag["Key"]] = tag["Value"]
    if len(by_key) > MAX_TAGS:
        raise errors.validation("Number of Tags exceed the current limit for the provided ResourceArn")
    return [{"Key": k, "Value": v} for k, v in by_key.items()]


async def update(
    call: Call, table: Table, change: Callable[[list[dict[str, str]]], list[dict[str, str]]]
) -> None:
    """Apply ``change`` to the table's tags, read and written in one atomic catalog update."""

    def mutate(description: dict[str, Any]) -> None:
        tags = change(list(description.get("_tags") or []))
        if tags:
            description["_tags"] = tags
        else:
            description.pop("_tags", None)

    await call.catalog.update(table.account, table.region, table.name, mutate)
