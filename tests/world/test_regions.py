"""A world's `regions:` list: DynamoDB requests signed for another region are refused as AWS refuses a
region it does not serve (issue 18: `mars-1` created tables although the world declared its regions)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.server import CLIENT_CONFIG, ServerProcess

KEY_ID, SECRET = "AKIAREGIONTEST000001", "regiontestsecret0000000000000000"
WORLD = f"""\
version: 1
regions: [us-east-1, eu-west-1]
accounts:
  prod:
    id: "222222222222"
    users:
      app:
        access_keys: [{{id: {KEY_ID}, secret: {SECRET}}}]
        inline:
          all: {{Version: "2012-10-17", Statement: [{{Effect: Allow, Action: "dynamodb:*", Resource: "*"}}]}}
"""


def _ddb(server: ServerProcess, region: str, key: tuple[str, str] = (KEY_ID, SECRET)) -> object:
    return boto3.client("dynamodb", endpoint_url=server.endpoint, region_name=region, config=CLIENT_CONFIG,
                        aws_access_key_id=key[0], aws_secret_access_key=key[1])


def _create(client: object) -> None:
    client.create_table(  # type: ignore[attr-defined]
        TableName="orders", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")


def test_regions_outside_the_world_are_refused(tmp_path: Path) -> None:
    world = tmp_path / "world.yaml"
    world.write_text(WORLD)
    server = ServerProcess(tmp_path / "data", extra_args=["--world", str(world), "--durability", "normal"]).start()
    try:
        for region in ("mars-1", "us-west-2"):
            with pytest.raises(ClientError) as exc:
                _create(_ddb(server, region))
            error = exc.value.response
            assert error["Error"]["Code"] == "InvalidSignatureException"
            assert error["Error"]["Message"] == f"Credential should be scoped to a valid region, not '{region}'."
            assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        _create(_ddb(server, "eu-west-1"))
        assert _ddb(server, "eu-west-1").list_tables()["TableNames"] == ["orders"]  # type: ignore[attr-defined]
        assert _ddb(server, "us-east-1").list_tables()["TableNames"] == []  # type: ignore[attr-defined]
    finally:
        server.stop()


def test_without_a_world_every_region_is_accepted(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=["--durability", "normal"]).start()
    try:
        client = _ddb(server, "ap-south-2", server.admin_keys())
        _create(client)
        assert client.list_tables()["TableNames"] == ["orders"]  # type: ignore[attr-defined]
    finally:
        server.stop()
