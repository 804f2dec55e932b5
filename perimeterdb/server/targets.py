"""The dispatch table: ``X-Amz-Target`` operation names to the modules that implement them."""

from __future__ import annotations

import importlib
import re
from functools import lru_cache
from types import ModuleType

DYNAMODB_PREFIX = "DynamoDB_20120810."

# Operation name -> module under perimeterdb.dynamodb.operations. Modules that are not present yet are
# skipped, so the table lists what the API will cover and `dynamodb_operation` answers what exists.
DYNAMODB_OPERATIONS = (
    "CreateTable",
    "DescribeTable",
    "ListTables",
    "DeleteTable",
    "UpdateTable",
    "PutItem",
    "GetItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
    "UpdateTimeToLive",
    "DescribeTimeToLive",
    "TagResource",
    "UntagResource",
    "ListTagsOfResource",
    "PutResourcePolicy",
    "GetResourcePolicy",
    "DeleteResourcePolicy",
    "DescribeEndpoints",
    "DescribeLimits",
    "DescribeContinuousBackups",
)


def _module_name(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


@lru_cache(maxsize=256)  # bounded: ``name`` is the X-Amz-Target an anonymous client sends (up to 16 KB)
def dynamodb_operation(name: str) -> ModuleType | None:
    if name not in DYNAMODB_OPERATIONS:
        return None
    try:
        return importlib.import_module(f"perimeterdb.dynamodb.operations.{_module_name(name)}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.endswith(_module_name(name)):
            return None
        raise
