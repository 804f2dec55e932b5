"""The world file: validation with line numbers, idempotent apply, export round trip."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from perimeterdb.config import Settings
from perimeterdb.server.runtime import open_runtime
from perimeterdb.world.network import load_network
from perimeterdb.world.worldfile import WorldError, apply_world, export_world, load_world, parse_world

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "private-tables.yaml"


def test_example_is_valid() -> None:
    world = load_world(EXAMPLE)
    assert world.data["organization"]["management_account"] == "management"


def test_schema_errors_name_line_and_field() -> None:
    text = "version: 1\naccounts:\n  prod:\n    id: '12'\n    roles:\n      r:\n        trust: {}\n"
    with pytest.raises(WorldError) as exc:
        parse_world(text, "w.yaml")
    message = str(exc.value)
    assert "w.yaml:4: accounts.prod.id:" in message
    assert "w.yaml:7: accounts.prod.roles.r.trust:" in message


def test_unknown_field_and_yaml_error() -> None:
    with pytest.raises(WorldError, match=r"w.yaml:1: \(top level\): Additional properties"):
        parse_world("version: 1\nfoo: 2\n", "w.yaml")
    with pytest.raises(WorldError, match=r"w.yaml:2: not valid YAML"):
        parse_world("version: 1\n  x: [\n", "w.yaml")


def test_references_are_checked() -> None:
    text = (
        "version: 1\naccounts:\n  a: {id: '111111111111'}\norganization:\n  management_account: a\n"
        "  units:\n    - name: X\n      accounts: [nobody]\n"
    )
    with pytest.raises(WorldError, match=r"w.yaml:8: organization.units.0.accounts.0: unknown account 'nobody'"):
        parse_world(text, "w.yaml")


def test_bad_policy_document_is_located(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace('Action: "dynamodb:*"\n            Resource: "*"\n            Condition',
                                       'Action: "dynamodb:*"\n            Resource: 5\n            Condition')
    # Found by parsing (world validate), before apply could change anything (issue 18).
    with pytest.raises(WorldError, match=r"w.yaml:\d+: organization.policies.DenyDynamoDBOutsideVPC.document: invalid scp"):
        parse_world(text, "w.yaml")


def _with_runtime(data_dir: Path, fn: Any) -> Any:
    async def main() -> Any:
        rt = open_runtime(Settings(data_dir=data_dir, durability="normal"))
        try:
            return await fn(rt)
        finally:
            rt.close()

    return asyncio.run(main())


def test_apply_is_idempotent_and_exports(tmp_path: Path) -> None:
    world = load_world(EXAMPLE)

    async def run(rt: Any) -> tuple[list[str], list[str], dict[str, Any], Any]:
        first = await apply_world(rt, world)
        second = await apply_world(rt, world)
        exported = await export_world(rt)
        network = await load_network(rt.engine)
        place = await rt.authorizer.organizations.placement("222222222222")
        return first, second, exported, (network, place)

    first, second, exported, (network, place) = _with_runtime(tmp_path / "data", run)
    assert "created organization" in " ".join(first)
    assert second == []
    assert network.endpoints[0].id == "vpce-0a1b2c3d4e5f60001"
    assert place.org_paths[0].count("/") == 3 and not place.is_management
    assert [len(level) for level in place.scp_levels] == [1, 2, 1]  # root, Prod, account
    assert [p.ref.name for p in place.scp_levels[1]] == ["FullAWSAccess", "DenyDynamoDBOutsideVPC"]
    assert exported["accounts"]["prod"]["roles"]["emergency"]["break_glass"] == {"max_session_seconds": 3600}
    assert "secret" not in yaml.safe_dump(exported)
    # The export is itself a valid world file that applies to an empty data dir.
    again = parse_world(yaml.safe_dump(exported), "export.yaml")

    async def reapply(rt: Any) -> list[str]:
        await apply_world(rt, again)
        return await apply_world(rt, world)

    assert _with_runtime(tmp_path / "data2", reapply) == []
