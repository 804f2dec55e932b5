"""Run a list of boto3 calls and print their results as JSON (used inside network namespaces).

Input (stdin, JSON): {"endpoint": URL, "region": "us-east-1", "credentials": {"key", "secret", "token"?},
"calls": [{"service": "dynamodb", "op": "put_item", "params": {...}, "use": "name"?, "save": "name"?}]}.
``save`` keeps a call's returned Credentials under a name; ``use`` signs a later call with them.
``totp`` in params ({"TokenCode": {"totp": BASE32}}) is replaced by the current code of that seed.
Output: one {"ok", "code", "message", "result"} per call. Every call has a 10-second timeout, no retries.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=10)


def _resolve(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        if isinstance(value, dict) and set(value) == {"totp"}:
            from perimeterdb.auth import totp

            seed = value["totp"]
            import base64

            value = totp.totp(base64.b32decode(seed + "=" * (-len(seed) % 8)))
        out[key] = value
    return out


def main() -> None:
    job = json.load(sys.stdin)
    saved: dict[str, dict[str, str]] = {"default": job["credentials"]}
    results = []
    for call in job["calls"]:
        creds = saved.get(call.get("use", "default"))
        if creds is None:
            results.append({"ok": False, "code": "NoCredentials", "message": f"no saved credentials {call['use']}"})
            continue
        client = boto3.client(
            call["service"],
            endpoint_url=call.get("endpoint", job["endpoint"]),
            region_name=job.get("region", "us-east-1"),
            aws_access_key_id=creds["key"],
            aws_secret_access_key=creds["secret"],
            aws_session_token=creds.get("token"),
            config=CONFIG,
        )
        try:
            result = getattr(client, call["op"])(**_resolve(call.get("params", {})))
            result.pop("ResponseMetadata", None)
            if call.get("save") and "Credentials" in result:
                c = result["Credentials"]
                saved[call["save"]] = {"key": c["AccessKeyId"], "secret": c["SecretAccessKey"],
                                       "token": c["SessionToken"]}
            results.append({"ok": True, "result": json.loads(json.dumps(result, default=str))})
        except ClientError as exc:
            error = exc.response.get("Error", {})
            results.append({"ok": False, "code": error.get("Code"), "message": error.get("Message"),
                            "status": exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")})
        except Exception as exc:  # connection refused, timeouts: reported, not raised
            results.append({"ok": False, "code": type(exc).__name__, "message": str(exc)})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
