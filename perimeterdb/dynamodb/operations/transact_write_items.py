"""TransactWriteItems: up to 100 Put, Update, Delete and ConditionCheck actions, all or nothing."""

from __future__ import annotations

from typing import Any

from perimeterdb import errors
from perimeterdb.dynamodb import capacity, indexes, paging, transactions, values
from perimeterdb.dynamodb.call import Call
from perimeterdb.dynamodb.catalog import Table

ACTION = "dynamodb:TransactWriteItems"


def authorizations(body: dict[str, Any], call: Call) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for entry in body["TransactItems"]:
        kind, spec = transactions.action_of(entry)
        pair = (transactions.ACTIONS[kind], call.table_arn(spec["TableName"]))
        if pair not in pairs:
            pairs.append(pair)
    return pairs


async def run(body: dict[str, Any], call: Call) -> dict[str, Any]:
    # 1. What needs no table: one action per entry, its expressions and its attribute values.
    actions = [transactions.parse_action(*transactions.action_of(entry)) for entry in body["TransactItems"]]
    total_size = sum(values.item_size(a.values) for a in actions if a.kind == "Put")
    if total_size > transactions.MAX_TRANSACTION_BYTES:
        raise errors.validation(transactions.TOO_LARGE)
    # 2. Every table exists (before duplicate keys are looked for).
    tables: dict[str, Table] = {}
    for action in actions:
        name = action.spec["TableName"]
        if name not in tables:
            tables[name] = await paging.find_table(call, name)
    for action in actions:
        transactions.check_key_updates(action, tables[action.spec["TableName"]])
    # 3. Schema checks: the first failure cancels the transaction with a ValidationError reason.
    prepared: list[transactions.PreparedWrite] = []
    for position, action in enumerate(actions):
        name = action.spec["TableName"]
        try:
            write = transactions.bind_action(action, tables[name])
        except errors.ApiError as error:
            if error.code != "ValidationException":
                raise
            raise transactions.cancel_invalid(position, len(actions), error) from None
        prepared.append(
            transactions.PreparedWrite(write, action.spec.get("ReturnValuesOnConditionCheckFailure"), name)
        )
    transactions.check_unique([p.write.row for p in prepared])
    token = body.get("ClientRequestToken")
    token_row = transactions.token_row(call.account, call.region, token) if token else None
    # The fingerprint is only compared for a request that carries a token.
    fingerprint = transactions.request_fingerprint(body) if token_row is not None else ""
    outcome = await transactions.commit(call.engine, prepared, token_row, fingerprint)
    out: dict[str, Any] = {}
    mode = body.get("ReturnConsumedCapacity")
    if mode in ("TOTAL", "INDEXES"):
        units: dict[str, float] = {}
        for i, p in enumerate(prepared):
            old, new = outcome.results[i] if i < len(outcome.results) else (None, None)
            size = max(values.item_size(new) if new else 0, values.item_size(old) if old else 0)
            units[p.table_name] = units.get(p.table_name, 0.0) + 2 * capacity.write_units(size)
        out["ConsumedCapacity"] = [
            capacity.consumed(mode, tables[name].name, u, kind="Write") for name, u in units.items()
        ]
    if body.get("ReturnItemCollectionMetrics") == "SIZE":
        metrics: dict[str, list[dict[str, Any]]] = {}
        for p in prepared:
            if indexes.has_lsi(p.write.table) and p.write.kind != "ConditionCheck":
                metrics.setdefault(p.table_name, []).append(
                    await indexes.item_collection_metrics(p.write.table, call.engine, p.write.key)
                )
        if metrics:
            out["ItemCollectionMetrics"] = metrics
    return out
