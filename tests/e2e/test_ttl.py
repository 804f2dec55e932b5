"""Time to live: the setting through boto3, and the background expirer deleting expired items."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from perimeterdb.dynamodb import ttl
from perimeterdb.dynamodb.catalog import Catalog
from perimeterdb.dynamodb.items import row_key, write_changes
from perimeterdb.storage.engine import Decision
from perimeterdb.storage.sqlite import SQLiteEngine

ROOT = Path(__file__).resolve().parents[2]


def test_enable_describe_disable(ddb: Any, hash_table: str) -> None:
    assert ddb.describe_time_to_live(TableName=hash_table)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "DISABLED"
    }
    out = ddb.update_time_to_live(
        TableName=hash_table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"}
    )
    assert out["TimeToLiveSpecification"] == {"Enabled": True, "AttributeName": "exp"}
    assert ddb.describe_time_to_live(TableName=hash_table)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "exp",
    }
    for spec, message in [
        ({"Enabled": True, "AttributeName": "exp"}, "TimeToLive is already enabled"),
        (
            {"Enabled": False, "AttributeName": "other"},
            "TimeToLive is active on a different AttributeName: current AttributeName is exp",
        ),
    ]:
        with pytest.raises(ClientError) as exc:
            ddb.update_time_to_live(TableName=hash_table, TimeToLiveSpecification=spec)
        assert exc.value.response["Error"]["Message"] == message
    ddb.update_time_to_live(
        TableName=hash_table, TimeToLiveSpecification={"Enabled": False, "AttributeName": "exp"}
    )
    with pytest.raises(ClientError) as exc:
        ddb.update_time_to_live(
            TableName=hash_table, TimeToLiveSpecification={"Enabled": False, "AttributeName": "exp"}
        )
    assert exc.value.response["Error"]["Message"] == "TimeToLive is already disabled"
    with pytest.raises(ClientError) as exc:
        ddb.describe_time_to_live(TableName="no-such-table-ttl")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def _expirer_wired() -> bool:
    sources = [p.read_text() for p in (ROOT / "perimeterdb").rglob("*.py") if p.name != "ttl.py"]
    return any("run_expirer" in s for s in sources)


def test_server_expires_items_and_index_rows(ddb: Any, table_name: str) -> None:
    if not _expirer_wired():
        pytest.skip("the app lifespan does not start ttl.run_expirer yet")
    ddb.create_table(
        TableName=table_name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byg",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        ddb.update_time_to_live(
            TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"}
        )
        now = int(time.time())
        ddb.put_item(
            TableName=table_name, Item={"pk": {"S": "old"}, "g": {"S": "x"}, "exp": {"N": str(now - 10)}}
        )
        ddb.put_item(
            TableName=table_name, Item={"pk": {"S": "new"}, "g": {"S": "x"}, "exp": {"N": str(now + 3600)}}
        )
        ddb.put_item(TableName=table_name, Item={"pk": {"S": "str"}, "g": {"S": "x"}, "exp": {"S": "1"}})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "Item" not in ddb.get_item(TableName=table_name, Key={"pk": {"S": "old"}}):
                break
            time.sleep(0.1)
        assert "Item" not in ddb.get_item(TableName=table_name, Key={"pk": {"S": "old"}})
        left = ddb.query(
            TableName=table_name,
            IndexName="byg",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": "x"}},
        )
        assert sorted(i["pk"]["S"] for i in left["Items"]) == ["new", "str"]
    finally:
        ddb.delete_table(TableName=table_name)


def test_sweep_in_process(tmp_path: Path) -> None:
    """The expirer itself, on a real SQLite engine: expired, future, ancient and non-numeric timestamps."""

    async def scenario() -> None:
        engine = SQLiteEngine(tmp_path / "db.sqlite3", durability="off")
        try:
            catalog = Catalog(engine)
            description = {
                "TableName": "t",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "TableArn": "arn:aws:dynamodb:us-east-1:000000000000:table/t",
                "_ttl": {"AttributeName": "exp", "Enabled": True},
            }
            table = await catalog.create("000000000000", "us-east-1", "t", description)
            now = time.time()
            items = {
                "expired": {"N": str(int(now) - 5)},
                "future": {"N": str(int(now) + 500)},
                "ancient": {"N": str(int(now) - 6 * 365 * 86400)},
                "text": {"S": "0"},
            }
            for name, exp in items.items():
                item = {"pk": {"S": name}, "exp": exp}
                key = row_key(table, {"pk": {"S": name}})
                await engine.atomic(
                    [key], lambda _c, key=key, item=item: Decision(write_changes(table, key, None, item))
                )
            assert await ttl.sweep(catalog, engine) == 1
            rows = await engine.scan(table.space)
            assert len(rows) == 3
        finally:
            engine.close()

    asyncio.run(scenario())
