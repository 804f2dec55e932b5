"""The newcomer's path (issue 18): `perimeterdb demo private-tables` writes a loopback world, and the exact
commands it prints show "denied outside, allowed inside" with the real AWS CLI, without root."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _commands(text: str) -> dict[str, list[str]]:
    """The walk-through's commands, by step number (continuation lines joined)."""
    steps: dict[str, list[str]] = {}
    step = ""
    pending = ""
    for line in text.splitlines():
        if line[:2].rstrip(".").isdigit() and line[1:3].startswith("."):
            step = line.split(".", 1)[0]
            continue
        if line.startswith("     ") and not line.strip().startswith("->"):
            pending += line.strip()
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            steps.setdefault(step, []).append(pending)
            pending = ""
    return steps


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env["HOME"] = str(tmp)  # no ~/.aws of the machine
    return env


def _sh(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_demo_walkthrough_denied_outside_allowed_inside(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    public, endpoint = f"127.0.0.1:{free_port()}", f"127.0.1.1:{free_port()}"
    env = _env(tmp_path)
    made = _sh(f"perimeterdb demo private-tables --dir {demo} --public {public} --endpoint {endpoint}", env)
    assert made.returncode == 0, made.stderr
    for name in ("world.yaml", "credentials", "config"):
        assert stat.S_IMODE((demo / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(demo.stat().st_mode) == 0o700
    steps = _commands(made.stdout)
    assert steps["1"] == [f"perimeterdb serve --data-dir {demo}/data --world {demo}/world.yaml --listen {public}"]
    # Start exactly that server (the test harness's process wrapper: same arguments).
    server = ServerProcess(demo / "data", port=int(public.rsplit(":", 1)[1]),
                           extra_args=["--world", str(demo / "world.yaml")], listen=[public])
    server.start(timeout=60)
    try:
        exports = steps["2"][0]
        assert exports.startswith("export AWS_SHARED_CREDENTIALS_FILE=")

        def run(command: str) -> subprocess.CompletedProcess[str]:
            return _sh(f"{exports}; {command}", env)

        outside = run(steps["3"][0])
        assert outside.returncode != 0
        assert "AccessDeniedException" in outside.stderr and "service control policy" in outside.stderr
        for command in steps["4"]:
            inside = run(command)
            assert inside.returncode == 0, f"{command}\n{inside.stderr}"
        assert '"N": "42"' in inside.stdout
        dev = run(steps["5"][0])
        assert dev.returncode == 0, dev.stderr
        glass = run("; ".join(steps["6"]))
        assert glass.returncode == 0, glass.stderr
        assert '"AccessKeyId": "ASIA' in glass.stdout
        # Without the MFA code, the break-glass role is refused
        no_mfa = run("aws sts assume-role --profile oncall --role-arn arn:aws:iam::222222222222:role/emergency "
                     "--role-session-name inc-1 --tags '[{\"Key\":\"justification\",\"Value\":\"x\"}]'")
        assert no_mfa.returncode != 0 and "AccessDenied" in no_mfa.stderr
    finally:
        server.stop()


def test_demo_refuses_to_overwrite_and_bad_addresses(tmp_path: Path) -> None:
    env = _env(tmp_path)
    demo = tmp_path / "demo"
    assert _sh(f"perimeterdb demo private-tables --dir {demo}", env).returncode == 0
    first = (demo / "credentials").read_text()
    again = _sh(f"perimeterdb demo private-tables --dir {demo}", env)
    assert again.returncode == 2 and "--force" in again.stderr
    assert (demo / "credentials").read_text() == first
    forced = _sh(f"perimeterdb demo private-tables --dir {demo} --force", env)
    assert forced.returncode == 0 and (demo / "credentials").read_text() != first  # new keys each time
    bad = _sh(f"perimeterdb demo private-tables --dir {tmp_path / 'x'} --endpoint nowhere", env)
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr and "Traceback" not in bad.stderr
    valid = _sh(f"perimeterdb world validate {demo}/world.yaml", env)
    assert valid.returncode == 0, valid.stderr


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perimeterdb", "serve", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("perimeterdb: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_startup_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    env = _env(tmp_path)
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    line = _one_line_error(_serve(env, "--data-dir", str(a_file), "--listen", f"127.0.0.1:{free_port()}"))
    assert f"the data directory {a_file} is a file" in line and "--data-dir" in line
    line = _one_line_error(_serve(env, "--data-dir", str(a_file / "data"), "--listen", f"127.0.0.1:{free_port()}"))
    assert f"cannot create the data directory {a_file / 'data'}" in line
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = _one_line_error(_serve(env, "--data-dir", str(tmp_path / "d1"), "--listen", f"127.0.0.1:{port}"))
        assert f"cannot listen on 127.0.0.1:{port}: the address is already in use" in line
    # A world applied earlier stored a VPC endpoint: a plain serve binds it, and says which one failed.
    demo = tmp_path / "demo"
    endpoint_port = free_port()
    made = _sh(f"perimeterdb demo private-tables --dir {demo} --public 127.0.0.1:{free_port()} "
               f"--endpoint 127.0.1.1:{endpoint_port}", env)
    assert made.returncode == 0, made.stderr
    data = tmp_path / "d2"
    assert _sh(f"perimeterdb world apply {demo}/world.yaml --data-dir {data}", env).returncode == 0
    with socket.socket() as busy:
        busy.bind(("127.0.1.1", endpoint_port))
        busy.listen()
        line = _one_line_error(_serve(env, "--data-dir", str(data), "--listen", f"127.0.0.1:{free_port()}"))
    assert f"cannot listen on 127.0.1.1:{endpoint_port} (VPC endpoint vpce-0a1b2c3d4e5f60001" in line
    assert "world file" in line
    # an endpoint address this host does not have
    world = (demo / "world.yaml").read_text().replace(f"127.0.1.1:{endpoint_port}", "10.77.99.1:8001")
    (demo / "other.yaml").write_text(world)
    assert _sh(f"perimeterdb world apply {demo}/other.yaml --data-dir {data}", env).returncode == 0
    line = _one_line_error(_serve(env, "--data-dir", str(data), "--listen", f"127.0.0.1:{free_port()}"))
    assert "cannot listen on 10.77.99.1:8001" in line and "is not an address of this host" in line


def test_serve_with_a_broken_world_names_every_problem_and_exits_2(tmp_path: Path) -> None:
    env = _env(tmp_path)
    world = tmp_path / "w.yaml"
    world.write_text("version: 1\nnetwork:\n  vpcs:\n    v:\n      id: vpc-0123456789abcdef0\n      account: nobody\n"
                     "      cidr_blocks: [10.78.9.0/33]\n")
    result = _serve(env, "--data-dir", str(tmp_path / "d"), "--world", str(world), "--listen",
                    f"127.0.0.1:{free_port()}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{world}:6: network.vpcs.v.account: unknown account 'nobody'" in result.stderr
    assert f"{world}:7: network.vpcs.v.cidr_blocks.0: not a CIDR block" in result.stderr
