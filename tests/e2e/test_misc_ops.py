"""DescribeEndpoints, DescribeLimits and DescribeContinuousBackups."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def test_describe_endpoints(ddb: Any, server: Any) -> None:
    out = ddb.describe_endpoints()  # the host the client called, as DynamoDB names its own
    assert out["Endpoints"] == [{"Address": f"127.0.0.1:{server.port}", "CachePeriodInMinutes": 1440}]


def test_describe_limits(ddb: Any) -> None:
    out = ddb.describe_limits()
    assert out["AccountMaxReadCapacityUnits"] == 80000
    assert out["TableMaxWriteCapacityUnits"] == 40000


def test_describe_continuous_backups(ddb: Any, hash_table: str) -> None:
    out = ddb.describe_continuous_backups(TableName=hash_table)["ContinuousBackupsDescription"]
    assert out["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "DISABLED"
    with pytest.raises(ClientError) as exc:
        ddb.describe_continuous_backups(TableName="no-such-table-cb")
    assert exc.value.response["Error"]["Code"] == "TableNotFoundException"
