"""Raw DynamoDB requests, signed with botocore's own SigV4 signer, for tests that need to bend the wire."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import orjson
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_HTTP = urllib3.PoolManager()


def signed_headers(
    endpoint: str,
    target: str,
    body: bytes,
    key: str,
    secret: str,
    *,
    region: str = "us-east-1",
    service: str = "dynamodb",
    token: str | None = None,
    when: dt.datetime | None = None,
    content_type: str = "application/x-amz-json-1.0",
) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=body,
        headers={"Content-Type": content_type, "X-Amz-Target": target},
    )
    signer = SigV4Auth(Credentials(key, secret, token), service, region)
    if when is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
            signer.add_auth(request)
    return dict(request.headers.items())


def post(endpoint: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any] | bytes, Any]:
    response = _HTTP.request("POST", endpoint + "/", body=body, headers=headers, retries=False)
    try:
        parsed: dict[str, Any] | bytes = orjson.loads(response.data)
    except orjson.JSONDecodeError:
        parsed = response.data
    return response.status, parsed, response.headers


def call(
    endpoint: str, operation: str, payload: Any, key: str, secret: str, **kwargs: Any
) -> tuple[int, Any, Any]:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    headers = signed_headers(endpoint, f"DynamoDB_20120810.{operation}", body, key, secret, **kwargs)
    return post(endpoint, headers, body)
