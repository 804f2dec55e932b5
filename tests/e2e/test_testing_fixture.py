"""perimeterdb.testing (issue 18): the pytest plugin's fixtures (loaded through the pytest11 entry point, not
imported here), the PerimeterServer context manager, and `serve --ephemeral` leaving nothing behind."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from perimeterdb.testing import Credentials, PerimeterServer


def test_plugin_fixture_gives_a_signed_fresh_account(perimeterdb_server: Any, perimeterdb_credentials: Any) -> None:
    session = boto3.Session(**perimeterdb_credentials.session_kwargs())
    ddb = session.client("dynamodb", endpoint_url=perimeterdb_server.endpoint_url)
    assert ddb.list_tables()["TableNames"] == []  # a fresh account
    ddb.create_table(TableName="things", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName="things", Item={"pk": {"S": "a"}})
    assert ddb.get_item(TableName="things", Key={"pk": {"S": "a"}})["Item"] == {"pk": {"S": "a"}}
    account = session.client("sts", endpoint_url=perimeterdb_server.endpoint_url).get_caller_identity()["Account"]
    assert re.fullmatch(r"\d{12}", account)
    # Real authentication: a wrong secret is refused (moto and DynamoDB Local accept anything)
    forged = boto3.client("dynamodb", endpoint_url=perimeterdb_server.endpoint_url, region_name="us-east-1",
                          aws_access_key_id=perimeterdb_credentials.access_key_id,
                          aws_secret_access_key="x" * 40)
    with pytest.raises(ClientError) as exc:
        forged.list_tables()
    assert exc.value.response["Error"]["Code"] in ("InvalidSignatureException", "UnrecognizedClientException")
    assert perimeterdb_credentials.secret_access_key not in repr(perimeterdb_credentials)


def test_real_authorization_for_a_user_without_policies(perimeterdb_server: Any) -> None:
    iam = perimeterdb_server.client("iam")
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    user = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    ddb = boto3.Session(**user.session_kwargs()).client("dynamodb", endpoint_url=perimeterdb_server.endpoint_url)
    for _ in range(50):  # a new key may take a moment to be usable, as on AWS
        try:
            ddb.list_tables()
        except ClientError as error:
            if error.response["Error"]["Code"] == "AccessDeniedException":
                break
        time.sleep(0.1)
    else:
        pytest.fail("a user without policies was not denied")


def test_context_manager_ephemeral_data_is_removed(tmp_path: Path) -> None:
    server = PerimeterServer()
    with server:
        assert server.client("dynamodb", region_name="us-east-1").list_tables()["TableNames"] == []
        assert server._scratch is not None
        log = (server._scratch / "server.log").read_text()
        found = re.search(r"ephemeral data directory (\S+) \(removed at exit\)", log)
        assert found, log
        data_dir = Path(found.group(1))
        assert (data_dir / "perimeterdb.sqlite3").exists()
        scratch = server._scratch
    assert server.proc is None
    assert not data_dir.exists() and not scratch.exists()
    with pytest.raises(RuntimeError):
        _ = server.credentials
