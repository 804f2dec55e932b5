"""The data set and the request bodies of each workload, the same for every system.

Items are about 1 KB: a key, a 1000-character string ``v`` and a number ``n``. Tables:

- ``bench-kv``  (pk S): 1000 items, for GetItem, PutItem, the conditional UpdateItem and the Scan page;
- ``bench-q``   (pk S, sk N): 20 partitions of 100 items, for Query of 10 and of 100 items;
- ``bench-bw``  (pk S): BatchWriteItem target (25 puts per request);
- ``bench-tx``  (pk S): TransactWriteItems target (4 puts per request).

Every write body carries a value of its own, so a replayed write always changes the stored item (SQLite
skips a write that changes nothing).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KV = "bench-kv"
QT = "bench-q"
BW = "bench-bw"
TX = "bench-tx"
KV_ITEMS = 1000
Q_PARTITIONS = 20
Q_PER_PARTITION = 100
PAYLOAD = 1000

Body = dict[str, Any]


def table_specs() -> list[Body]:
    def hash_only(name: str) -> Body:
        return {
            "TableName": name,
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        }

    query_table = {
        "TableName": QT,
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    return [hash_only(KV), query_table, hash_only(BW), hash_only(TX)]


def payload(seed: int) -> str:
    """A 1000-character value that differs with ``seed``."""
    head = f"{seed:012d}"
    return head + ("abcdefghij" * (PAYLOAD // 10))[: PAYLOAD - len(head)]


def kv_key(i: int) -> str:
    return f"k{i % KV_ITEMS:05d}"


def kv_item(i: int, seed: int = 0) -> Body:
    return {"pk": {"S": kv_key(i)}, "v": {"S": payload(seed or i)}, "n": {"N": str(i)}}


def q_item(p: int, s: int) -> Body:
    return {"pk": {"S": f"p{p:03d}"}, "sk": {"N": str(s)}, "v": {"S": payload(p * 1000 + s)}, "n": {"N": "0"}}


def seed_items() -> dict[str, list[Body]]:
    return {
        KV: [kv_item(i) for i in range(KV_ITEMS)],
        QT: [q_item(p, s) for p in range(Q_PARTITIONS) for s in range(Q_PER_PARTITION)],
    }


# --- request bodies ---------------------------------------------------------------------------------------


def get_item(i: int, rng: random.Random) -> Body:
    return {"TableName": KV, "Key": {"pk": {"S": kv_key(rng.randrange(KV_ITEMS))}}}


def put_item(i: int, rng: random.Random) -> Body:
    return {"TableName": KV, "Item": kv_item(i, seed=rng.randrange(1, 10**11))}


def update_item(i: int, rng: random.Random) -> Body:
    return {
        "TableName": KV,
        "Key": {"pk": {"S": kv_key(i)}},
        "UpdateExpression": "SET v = :v ADD #n :one",
        "ConditionExpression": "attribute_exists(pk) AND #n >= :zero",
        "ExpressionAttributeNames": {"#n": "n"},
        "ExpressionAttributeValues": {
            ":v": {"S": payload(rng.randrange(1, 10**11))},
            ":one": {"N": "1"},
            ":zero": {"N": "0"},
        },
    }


def query(size: int) -> Callable[[int, random.Random], Body]:
    def make(i: int, rng: random.Random) -> Body:
        start = rng.randrange(0, Q_PER_PARTITION - size + 1)
        return {
            "TableName": QT,
            "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": {
                ":p": {"S": f"p{rng.randrange(Q_PARTITIONS):03d}"},
                ":a": {"N": str(start)},
                ":b": {"N": str(start + size - 1)},
            },
        }

    return make


def scan_page(i: int, rng: random.Random) -> Body:
    return {
        "TableName": KV,
        "Limit": 100,
        "ExclusiveStartKey": {"pk": {"S": kv_key(rng.randrange(KV_ITEMS))}},
    }


def batch_write(i: int, rng: random.Random) -> Body:
    seed = rng.randrange(1, 10**9)
    return {
        "RequestItems": {
            BW: [
                {
                    "PutRequest": {
                        "Item": {"pk": {"S": f"b{(i * 25 + j) % 5000:05d}"}, "v": {"S": payload(seed + j)}}
                    }
                }
                for j in range(25)
            ]
        }
    }


def transact_write(i: int, rng: random.Random) -> Body:
    seed = rng.randrange(1, 10**9)
    return {
        "TransactItems": [
            {
                "Put": {
                    "TableName": TX,
                    "Item": {"pk": {"S": f"t{(i * 4 + j) % 2000:05d}"}, "v": {"S": payload(seed + j)}},
                }
            }
            for j in range(4)
        ]
    }


@dataclass(frozen=True)
class Workload:
    name: str  # as shown in the tables
    operation: str  # X-Amz-Target operation
    make: Callable[[int, random.Random], Body]
    distinct: int  # how many distinct pre-signed requests to replay
    items_per_request: int = 1


WORKLOADS: tuple[Workload, ...] = (
    Workload("GetItem", "GetItem", get_item, 2000),
    Workload("PutItem", "PutItem", put_item, 2000),
    Workload("UpdateItem (conditional)", "UpdateItem", update_item, 2000),
    Workload("Query 10 items", "Query", query(10), 1000),
    Workload("Query 100 items", "Query", query(100), 200),
    Workload("Scan page (100 items)", "Scan", scan_page, 500),
    Workload("BatchWriteItem 25", "BatchWriteItem", batch_write, 400, 25),
    Workload("TransactWriteItems 4", "TransactWriteItems", transact_write, 1000, 4),
)


def bodies(workload: Workload, count: int | None = None, seed: int = 7) -> list[Body]:
    rng = random.Random(seed)
    return [workload.make(i, rng) for i in range(count or workload.distinct)]
