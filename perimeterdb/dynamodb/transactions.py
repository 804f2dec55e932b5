"""Transactions: all-or-nothing writes and consistent multi-item reads, in one ``engine.atomic`` call.

``parse_action`` checks one TransactWriteItems action without its table and ``bind_action`` turns it into
an ``ItemWrite`` against the table's schema; ``commit`` applies them all
inside one storage transaction, together with the ClientRequestToken record that makes the request
idempotent for ten minutes. If any action's condition fails, ``decide`` raises and the storage engine
rolls everything back; the caller gets TransactionCanceledException with one reason per action.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from perimeterdb import errors
from perimeterdb.dynamodb import expressions as ex
from perimeterdb.dynamodb import items, values, writes
from perimeterdb.dynamodb.catalog import Table
from perimeterdb.dynamodb.writes import KEEP, ConditionFailed, ItemWrite
from perimeterdb.storage.engine import Decision, Put, RowChange, RowKey, StorageEngine

# Not a "meta:" space: no process caches tokens (each is read inside its transaction's atomic write), so
# writing one must not bump the metadata generation and drop every process's caches.
TOKENS = "txtokens"
TOKEN_LIFETIME = 600.0
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
ACTIONS = {
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
}
CANCELLED = "Transaction cancelled, please refer cancellation reasons for specific reasons"
MULTIPLE_OPERATIONS = "Transaction request cannot include multiple operations on one item"
TOO_LARGE = "Transaction payload size cannot exceed 4 MB"


def action_of(entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The one action (ConditionCheck, Put, Update, Delete) of a TransactWriteItems entry."""
    present = [name for name in ACTIONS if entry.get(name) is not None]
    if not present:
        raise errors.validation(
            "Invalid Request: TransactWriteRequest should contain Delete or Put or Update request"
        )
    if len(present) > 1:
        raise errors.validation("TransactItems can only contain one of Check, Put, Update or Delete")
    return present[0], entry[present[0]]


@dataclass(frozen=True, slots=True)
class PreparedWrite:
    write: ItemWrite
    return_on_failure: str | None
    table_name: str  # as given in the request


@dataclass(frozen=True, slots=True)
class ParsedAction:
    """One action after the checks that need no table: its expressions, and its item or key values."""

    kind: str
    spec: dict[str, Any]
    bound: Any
    values: dict[str, dict[str, Any]]  # the Put's item, or the other actions' key


def parse_action(kind: str, spec: dict[str, Any]) -> ParsedAction:
    """Expression and attribute-value errors fail the whole request with a ValidationException."""
    bound = ex.compile_request_expressions(
        condition=spec.get("ConditionExpression"),
        update=spec.get("UpdateExpression") if kind == "Update" else None,
        names=spec.get("ExpressionAttributeNames"),
        values=spec.get("ExpressionAttributeValues"),
    )
    if kind == "Update" and bound.update is None:
        raise errors.validation(
            "1 validation error detected: Value null at 'transactItems.1.member.update.updateExpression' failed to satisfy constraint: Member must not be null"
        )
    if kind == "ConditionCheck" and bound.condition is None:
        raise errors.validation("The expression can not be empty;")
    raw = spec.get("Item") if kind == "Put" else spec.get("Key")
    return ParsedAction(kind, spec, bound, values.validate_item(raw))


def prepare_write(kind: str, spec: dict[str, Any], table: Table) -> ItemWrite:
    """Validate one action against its table and compile its expressions."""
    action = parse_action(kind, spec)
    check_key_updates(action, table)
    return bind_action(action, table)


def bind_action(action: ParsedAction, table: Table) -> ItemWrite:
    """Check one parsed action against its table's schema (key, index keys, size) and build its write.

    A schema error here cancels the transaction with a ValidationError reason for this action
    (``cancel_invalid``), not a ValidationException for the request.
    """
    bound, kind = action.bound, action.kind
    if kind == "Put":
        item = writes.validate_new_item(table, action.values)
        key = values.key_of(item, table.key_schema)
        return ItemWrite(table, key, items.row_key(table, key), "Put", condition=bound.condition, item=item)
    key = writes.key_from_body(table, action.values)
    row = items.row_key(table, key)
    if kind == "Update":
        return ItemWrite(table, key, row, "Update", condition=bound.condition, update=bound.update)
    return ItemWrite(table, key, row, kind, condition=bound.condition)


def check_key_updates(action: ParsedAction, table: Table) -> None:
    """An UpdateExpression that sets a key attribute fails the whole request (ValidationException)."""
    if action.kind == "Update":
        ex.check_no_key_updates(action.bound.update, [k["AttributeName"] for k in table.key_schema])


def cancel_invalid(position: int, count: int, error: errors.ApiError) -> errors.ApiError:
    """TransactionCanceledException for the first action that failed its schema checks; DynamoDB stops
    validating there, so every other action's reason is None."""
    reasons: list[dict[str, Any]] = [{"Code": "None"} for _ in range(count)]
    reasons[position] = {"Code": "ValidationError", "Message": error.message}
    return cancelled(reasons)


def check_unique(rows: Sequence[RowKey]) -> None:
    seen: set[RowKey] = set()
    for row in rows:
        if row in seen:
            raise errors.validation(MULTIPLE_OPERATIONS)
        seen.add(row)


def token_row(account: str, region: str, token: str) -> RowKey:
    return RowKey(TOKENS, b"", f"{account}/{region}/{token}".encode(), b"")


def request_fingerprint(body: dict[str, Any]) -> str:
    relevant = {k: body.get(k) for k in ("TransactItems", "ReturnItemCollectionMetrics")}
    return hashlib.sha256(orjson.dumps(relevant, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a committed (or replayed) transaction returns: (old, new) per action."""

    results: list[tuple[Any, Any]]
    replayed: bool


def _reason(exc: BaseException, return_on_failure: str | None) -> dict[str, Any]:
    if isinstance(exc, ConditionFailed):
        reason: dict[str, Any] = {
            "Code": "ConditionalCheckFailed",
            "Message": "The conditional request failed",
        }
        if return_on_failure == "ALL_OLD" and exc.old is not None:
            reason["Item"] = exc.old
        return reason
    assert isinstance(exc, errors.ApiError)
    return {"Code": "ValidationError", "Message": exc.message}


def cancelled(reasons: list[dict[str, Any]]) -> errors.ApiError:
    codes = ", ".join(r["Code"] for r in reasons)
    return errors.transaction_canceled(f"{CANCELLED} [{codes}]", reasons)


async def commit(
    engine: StorageEngine,
    prepared: Sequence[PreparedWrite],
    token: RowKey | None,
    fingerprint: str,
) -> Outcome:
    """Apply every write or none of them, in one atomic storage write."""
    keys = [p.write.row for p in prepared]
    if token is not None:
        keys.append(token)

    def decide(current: list[bytes | None]) -> Decision:
        now = time.time()
        if token is not None and current[-1] is not None:
            record = orjson.loads(current[-1])
            if record["expires"] > now:
                if record["fingerprint"] != fingerprint:
                    raise errors.idempotent_parameter_mismatch(
                        "The request uses the same client token as a previous, but non-identical request."
                    )
                return Decision((), Outcome([], True))
        changes: list[RowChange] = []
        results: list[tuple[Any, Any]] = []
        reasons: list[dict[str, Any]] = []
        failed = False
        for p, raw in zip(prepared, current, strict=False):
            old = items.decode_item(raw)
            try:
                new = p.write.apply(old)
            except (ConditionFailed, errors.ApiError) as exc:
                if isinstance(exc, errors.ApiError) and exc.code != "ValidationException":
                    raise
                reasons.append(_reason(exc, p.return_on_failure))
                failed = True
                continue
            reasons.append({"Code": "None"})
            if new is KEEP:
                results.append((old, old))
                continue
            results.append((old, new))
            if new is None and old is None:
                continue
            if new is not None:
                assert isinstance(new, dict)
                if values.item_size(new) > values.MAX_ITEM_SIZE:
                    reasons[-1] = {
                        "Code": "ValidationError",
                        "Message": "Item size to update has exceeded the maximum allowed size",
                    }
                    failed = True
                    continue
            changes.extend(items.write_changes(p.write.table, p.write.row, old, new))  # type: ignore[arg-type]
        if failed:
            raise cancelled(reasons)
        if token is not None:
            changes.append(
                Put(token, orjson.dumps({"fingerprint": fingerprint, "expires": now + TOKEN_LIFETIME}))
            )
        return Decision(changes, Outcome(results, False))

    result: Outcome = await engine.atomic(keys, decide)
    return result


async def read_consistent(engine: StorageEngine, keys: Sequence[RowKey]) -> list[bytes | None]:
    """Current values of several rows as one consistent snapshot (serialized with the writers)."""

    def decide(current: list[bytes | None]) -> Decision:
        return Decision((), list(current))

    result: list[bytes | None] = await engine.atomic(list(keys), decide)
    return result
