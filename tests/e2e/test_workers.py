"""Several server processes on one data directory: a policy change takes effect on the very next request
in every process, whichever one a connection lands on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.support.server import ServerProcess


def test_policy_change_reaches_every_worker(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=["--workers", "2", "--durability", "normal"]).start()
    try:
        iam = server.client("iam")
        iam.create_user(UserName="w")
        key = iam.create_access_key(UserName="w")["AccessKey"]
        # Fresh clients open fresh connections, which the kernel spreads over both workers.
        clients = [
            server.client(
                "dynamodb", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
            )
            for _ in range(8)
        ]
        for client in clients:  # every worker caches "no policy allows this"
            with pytest.raises(ClientError) as exc:
                client.list_tables()
            assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
        iam.put_user_policy(
            UserName="w",
            PolicyName="list",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "dynamodb:ListTables", "Resource": "*"}],
                }
            ),
        )
        for client in clients:
            assert "TableNames" in client.list_tables()
        iam.delete_user_policy(UserName="w", PolicyName="list")
        for client in clients:
            with pytest.raises(ClientError):
                client.list_tables()
    finally:
        server.stop()
