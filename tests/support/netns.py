"""Network namespaces for end-to-end tests: hosts on veth pairs, addresses in 10.77.0.0/16 only.

Each ``Host`` is a namespace with one veth pair to the root namespace: the root side gets ``10.77.N.1/24``,
the host side ``10.77.N.10/24``. A server in the root namespace binds ``10.77.N.1`` and sees the host's
true source address. Every command is bounded in time; ``teardown`` deletes what ``setup`` made (deleting
a namespace deletes its veth pair).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLIENT = Path(__file__).with_name("netns_client.py")
REPO = Path(__file__).resolve().parents[2]


def unavailable() -> str | None:
    """Why namespaces cannot be used here, or None."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs this test as root)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"pdbprobe{os.getpid() % 100000}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, timeout=10)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return None


def _ip(*args: str, netns: str | None = None) -> None:
    cmd = ["ip", *(["netns", "exec", netns, "ip"] if netns else []), *args]
    done = subprocess.run(cmd, capture_output=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.decode().strip()}")


@dataclass
class Host:
    name: str  # namespace name
    subnet: int  # third octet: 10.77.<subnet>.0/24
    routes: list[str] = field(default_factory=list)  # extra prefixes routed via the root side

    @property
    def gateway(self) -> str:
        return f"10.77.{self.subnet}.1"

    @property
    def address(self) -> str:
        return f"10.77.{self.subnet}.10"

    @property
    def cidr(self) -> str:
        return f"10.77.{self.subnet}.0/24"

    def setup(self) -> None:
        outer, inner = f"{self.name}h", f"{self.name}n"
        _ip("netns", "add", self.name)
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", self.name)
        _ip("addr", "add", f"{self.gateway}/24", "dev", outer)
        _ip("link", "set", outer, "up")
        _ip("link", "set", "lo", "up", netns=self.name)
        _ip("addr", "add", f"{self.address}/24", "dev", inner, netns=self.name)
        _ip("link", "set", inner, "up", netns=self.name)
        for prefix in self.routes:
            _ip("route", "add", prefix, "via", self.gateway, netns=self.name)

    def teardown(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", f"{self.name}h"], capture_output=True, timeout=10)

    def run_client(self, job: dict[str, Any], timeout: float = 60.0) -> list[dict[str, Any]]:
        """Run boto3 calls inside this namespace (tests/support/netns_client.py); one result per call."""
        env = {**os.environ, "PYTHONPATH": str(REPO), "AWS_EC2_METADATA_DISABLED": "true",
               "NO_PROXY": "*", "no_proxy": "*"}
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "AWS_PROFILE"):
            env.pop(var, None)
        done = subprocess.run(
            ["ip", "netns", "exec", self.name, sys.executable, str(CLIENT)],
            input=json.dumps(job).encode(),
            capture_output=True,
            timeout=timeout,
            env=env,
        )
        if done.returncode != 0:
            raise RuntimeError(f"client in {self.name} failed: {done.stderr.decode()[-2000:]}")
        return json.loads(done.stdout)  # type: ignore[no-any-return]
