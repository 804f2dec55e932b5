"""BatchGetItem, BatchWriteItem and TransactWriteItems answers that DynamoDB's conformance suites check:
what is validated before the table is looked up, the messages, and per-action cancellation reasons."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def _error(call: Any, **kwargs: Any) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value


def _pair(error: ClientError) -> tuple[str, str]:
    return error.response["Error"]["Code"], error.response["Error"]["Message"]


NOT_FOUND = ("ResourceNotFoundException", "Requested resource not found")
NO_MATCH = ("ValidationException", "The provided key element does not match the schema")


def test_batch_write_checks_values_before_the_table(ddb: Any) -> None:
    bad = {"no-such-table": [{"PutRequest": {"Item": {"pk": {"N": "x"}}}}]}
    assert _pair(_error(ddb.batch_write_item, RequestItems=bad)) == (
        "ValidationException",
        "The parameter cannot be converted to a numeric value: x",
    )
    good = {"no-such-table": [{"PutRequest": {"Item": {"pk": {"S": "a"}}}}]}
    assert _pair(_error(ddb.batch_write_item, RequestItems=good)) == NOT_FOUND


def test_batch_write_item_too_large_before_the_table(ddb: Any) -> None:
    big = {"pk": {"S": "a"}, "blob": {"S": "x" * (400 * 1024)}}
    assert _pair(
        _error(ddb.batch_write_item, RequestItems={"no-such-table": [{"PutRequest": {"Item": big}}]})
    ) == ("ValidationException", "Item size has exceeded the maximum allowed size")


@pytest.mark.parametrize("item", [{}, {"other": {"S": "a"}}, {"pk": {"N": "1"}}, {"pk": {"SS": ["a"]}}])
def test_batch_put_without_a_matching_key(ddb: Any, hash_table: str, item: dict[str, Any]) -> None:
    assert (
        _pair(_error(ddb.batch_write_item, RequestItems={hash_table: [{"PutRequest": {"Item": item}}]}))
        == NO_MATCH
    )


def test_batch_get_checks_key_values_before_the_table(ddb: Any) -> None:
    bad = {"no-such-table": {"Keys": [{"pk": {"N": "x"}}]}}
    assert _pair(_error(ddb.batch_get_item, RequestItems=bad)) == (
        "ValidationException",
        "The parameter cannot be converted to a numeric value: x",
    )
    good = {"no-such-table": {"Keys": [{"pk": {"S": "a"}}]}}
    assert _pair(_error(ddb.batch_get_item, RequestItems=good)) == NOT_FOUND


def test_transactions_on_a_missing_table(ddb: Any) -> None:
    put = {"Put": {"TableName": "no-such-table", "Item": {"pk": {"S": "a"}}}}
    delete = {"Delete": {"TableName": "no-such-table", "Key": {"pk": {"S": "a"}}}}
    # The table is looked up before duplicate keys are looked for.
    assert _pair(_error(ddb.transact_write_items, TransactItems=[put, delete])) == NOT_FOUND
    get = {"Get": {"TableName": "no-such-table", "Key": {"pk": {"S": "a"}}}}
    assert _pair(_error(ddb.transact_get_items, TransactItems=[get])) == NOT_FOUND


def test_transaction_schema_error_cancels_with_one_validation_error(ddb: Any, hash_table: str) -> None:
    actions = [
        {"Put": {"TableName": hash_table, "Item": {"pk": {"N": "7"}}}},
        {"Put": {"TableName": hash_table, "Item": {"pk": {"N": "8"}}}},
        {
            "Put": {
                "TableName": hash_table,
                "Item": {"pk": {"S": "fine"}},
                "ConditionExpression": "attribute_exists(pk)",
            }
        },
    ]
    error = _error(ddb.transact_write_items, TransactItems=actions)
    assert error.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = error.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["ValidationError", "None", "None"]
    assert "Message" in reasons[0] and "Message" not in reasons[1]
    assert "Item" not in ddb.get_item(TableName=hash_table, Key={"pk": {"S": "fine"}})


def test_transaction_expression_errors_fail_the_whole_request(ddb: Any, hash_table: str) -> None:
    code, message = _pair(
        _error(
            ddb.transact_write_items,
            TransactItems=[
                {"Put": {"TableName": hash_table, "Item": {"pk": {"N": "7"}}}},
                {
                    "Put": {
                        "TableName": hash_table,
                        "Item": {"pk": {"S": "a"}},
                        "ConditionExpression": "attribute_exists(#xyz)",
                    }
                },
            ],
        )
    )
    assert code == "ValidationException" and "#xyz" in message


def test_transaction_payload_over_4mb(ddb: Any, hash_table: str) -> None:
    blob = "x" * 100_000
    actions = [
        {"Put": {"TableName": hash_table, "Item": {"pk": {"S": str(i)}, "x": {"S": blob}}}} for i in range(50)
    ]
    code, message = _pair(_error(ddb.transact_write_items, TransactItems=actions))
    assert code == "ValidationException" and "size cannot exceed" in message
