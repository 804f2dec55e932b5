"""`world validate` reports every problem at once (file:line and field), `world apply` is all or nothing,
`world plan` shows the changes and writes nothing (issue 18). Driven through the real command line."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perimeterdb.storage.engine import Decision, Put, RowKey
from perimeterdb.storage.sqlite import SQLiteEngine
from perimeterdb.world.staging import StagingConflict, StagingEngine

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "private-tables.yaml"

BROKEN = """\
version: 1
regions: [us-east-1]
accounts:
  prod:
    id: "222222222222"
    users:
      alice:
        policies: [nosuchpolicy]
        groups: [nogroup]
    roles:
      r1:
        trust: "not json {"
      r2:
        trust:
          Version: "2012-10-17"
          Statement: [{Effect: Alow, Principal: {AWS: "*"}, Action: "sts:AssumeRole"}]
    tables:
      orders:
        region: eu-west-1
        hash_key: {name: pk, type: S}
  dev:
    id: "333333333333"
  dev:
    id: "444444444444"
organization:
  management_account: prod
  policies:
    scp1:
      type: SERVICE_CONTROL_POLICY
      document:
        Statement: [{Effect: Deny, Action: "*", Resource: "*", Condition: {StringNotEqual: {"aws:SourceVpc": "v"}}}]
  root:
    accounts: [nobody]
    policies: [scp1, nosuch]
network:
  vpcs:
    main:
      id: vpc-0123456789abcdef0
      account: prod
      cidr_blocks: [10.78.9.0/33, 10.1.2.3/16]
      endpoints:
        - id: vpce-0123456789abcdef0
          listen: localhost:8001
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perimeterdb", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_validate_reports_every_problem_with_line_and_field(tmp_path: Path) -> None:
    world = tmp_path / "broken.yaml"
    world.write_text(BROKEN)
    result = cli("world", "validate", str(world))
    assert result.returncode == 1
    err = result.stderr
    expected = [
        f"{world}:8: accounts.prod.users.alice.policies.0: no policy named 'nosuchpolicy'",
        f"{world}:9: accounts.prod.users.alice.groups.0: unknown group 'nogroup'",
        f"{world}:12: accounts.prod.roles.r1.trust: invalid trust policy",
        f"{world}:15: accounts.prod.roles.r2.trust: invalid trust policy: Statement[0].Effect: Invalid effect 'Alow'",
        f"{world}:19: accounts.prod.tables.orders.region: region 'eu-west-1' is not in the world's regions",
        f"{world}:23: accounts.dev: duplicate key (first at line 21)",
        f"{world}:31: organization.policies.scp1.document: invalid scp policy",
        f"{world}:33: organization.root.accounts.0: unknown account 'nobody'",
        f"{world}:34: organization.root.policies.1: no organization policy named 'nosuch'",
        f"{world}:40: network.vpcs.main.cidr_blocks.0: not a CIDR block",
        f"{world}:40: network.vpcs.main.cidr_blocks.1: 10.1.2.3/16 has host bits set: write 10.1.0.0/16",
        f"{world}:43: network.vpcs.main.endpoints.0.listen: 'localhost' is not an IP address",
    ]
    for line in expected:
        assert line in err, f"missing {line!r} in\n{err}"
    assert "Traceback" not in err
    # apply refuses the same file, before writing anything
    data = tmp_path / "data"
    applied = cli("world", "apply", str(world), "--data-dir", str(data))
    assert applied.returncode == 1 and expected[0] in applied.stderr
    assert not (data / "perimeterdb.sqlite3").exists()


def test_validate_accepts_the_example() -> None:
    result = cli("world", "validate", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def _accounts(data: Path) -> list[str]:
    out = cli("world", "export", "--data-dir", str(data))
    assert out.returncode == 0, out.stderr
    return [line.strip() for line in out.stdout.splitlines() if line.strip().startswith("id: '")]


def test_failed_apply_leaves_nothing_behind(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = tmp_path / "first.yaml"
    first.write_text("version: 1\naccounts:\n  prod:\n    id: '222222222222'\n    users:\n      alice:\n"
                     "        access_keys: [{id: AKIAAAAAAAAAAAAAAAAA, secret: aaaaaaaaaaaaaaaaaaaaaaaa}]\n")
    assert cli("world", "apply", str(first), "--data-dir", str(data)).returncode == 0
    before = _accounts(data)
    # Valid on its own, but alice's key cannot be given to bob: apply finds it after creating the new
    # account 'dev', the new user 'carol' and a table; none of them may remain.
    second = tmp_path / "second.yaml"
    second.write_text(
        "version: 1\naccounts:\n  dev:\n    id: '333333333333'\n    users:\n      carol: {}\n"
        "    tables:\n      orders: {hash_key: {name: pk, type: S}}\n"
        "  prod:\n    id: '222222222222'\n    users:\n      bob:\n"
        "        access_keys: [{id: AKIAAAAAAAAAAAAAAAAA, secret: bbbbbbbbbbbbbbbbbbbbbbbb}]\n")
    assert cli("world", "validate", str(second)).returncode == 0
    result = cli("world", "apply", str(second), "--data-dir", str(data))
    assert result.returncode == 1
    assert "belongs to another user" in result.stderr and "Traceback" not in result.stderr
    assert _accounts(data) == before
    exported = cli("world", "export", "--data-dir", str(data)).stdout
    assert "carol" not in exported and "bob" not in exported and "orders" not in exported


def test_plan_shows_changes_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    plan = cli("world", "plan", str(EXAMPLE), "--data-dir", str(data))
    assert plan.returncode == 0, plan.stderr
    assert "+ account prod (222222222222)" in plan.stdout
    assert "+ role arn:aws:iam::222222222222:role/feature-team" in plan.stdout
    assert "Nothing was written" in plan.stdout
    assert not data.exists()
    assert cli("world", "apply", str(EXAMPLE), "--data-dir", str(data)).returncode == 0
    extra = tmp_path / "extra.yaml"
    extra.write_text(EXAMPLE.read_text().replace("email: dev@example.com", "email: dev-team@example.com", 1))
    dry = cli("world", "apply", "--dry-run", str(extra), "--data-dir", str(data))
    assert dry.returncode == 0, dry.stderr
    assert "~ account dev (333333333333)" in dry.stdout
    assert "+ " not in dry.stdout
    again = cli("world", "plan", str(EXAMPLE), "--data-dir", str(data))
    assert "Plan: 0 to create, 0 to change" in again.stdout  # the dry run wrote nothing


def test_staging_commit_refuses_a_row_changed_meanwhile(tmp_path: Path) -> None:
    key = RowKey("meta:test", b"", b"k", b"")

    async def run() -> None:
        real = SQLiteEngine(tmp_path / "db.sqlite3", durability="normal")
        try:
            await real.atomic([key], lambda _v: Decision([Put(key, b"v1")]))
            staged = StagingEngine(real)
            assert await staged.get(key) == b"v1"
            await staged.atomic([key], lambda _v: Decision([Put(key, b"staged")]))
            assert await staged.get(key) == b"staged" and await real.get(key) == b"v1"
            assert [r.value for r in await staged.scan("meta:test")] == [b"staged"]
            await real.atomic([key], lambda _v: Decision([Put(key, b"concurrent")]))
            with pytest.raises(StagingConflict):
                await staged.commit()
            assert await real.get(key) == b"concurrent"
            fresh = StagingEngine(real)
            await fresh.atomic([key], lambda _v: Decision([Put(key, b"mine")]))
            assert await fresh.commit() == 1 and await real.get(key) == b"mine"
        finally:
            real.close()

    asyncio.run(run())


def test_an_alias_bomb_is_refused_before_anything_expands_it(tmp_path: Path) -> None:
    lines = ["version: 1", "x-anchors:", "  a0: &b0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 20):  # 10**20 nodes once expanded, 200 as written
        lines.append(f"  a{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * 10) + "]")
    lines += ["accounts:", "  prod:", "    policies:", "      p:", "        document: {Statement: *b19}"]
    world = tmp_path / "bomb.yaml"
    world.write_text("\n".join(lines) + "\n")
    result = cli("world", "validate", str(world))
    assert result.returncode == 1 and "YAML aliases expand to more than 1,000,000 nodes" in result.stderr
