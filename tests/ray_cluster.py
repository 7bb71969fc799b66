"""A real Ray cluster of two nodes on this machine, for the cluster tests and bench/cluster.py.

`LocalRayCluster` starts a head (`ray start --head`) and a second node (`ray start --address`), each
with one CPU (by default) and ports of its own, with Ray's token authentication on (a fresh token in a
file), and stops them. Both nodes run on this machine and share its cores; each can be killed alone
(its raylet and the processes it started). A node can be started in a mount namespace of its own
where the run store's folder is an empty one (`hide`): a node that cannot see the store.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = [sys.executable, "-m", "ray.scripts.scripts"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def can_hide_folders() -> bool:
    """Can this machine start a process in a mount namespace of its own (root, with unshare)?"""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


_TOKEN_FILE: list[Path] = []


def process_token_file() -> Path:
    """One token file for every cluster this process starts: Ray's client reads its authentication settings (the
    token's path and the token) once per process, so a second cluster with a token of its own refused every call
    from the process that had talked to the first (`bench/cluster.py` starts one cluster per class size)."""
    if not _TOKEN_FILE:
        path = Path(tempfile.mkdtemp(prefix="convlab-ray-token-")) / "auth_token"
        path.write_text(secrets.token_hex(16))
        _TOKEN_FILE.append(path)
    return _TOKEN_FILE[0]


@dataclass
class Node:
    name: str
    manager_port: int
    resources: str = ""


@dataclass
class LocalRayCluster:
    """Start with `start()`; `address` is the dashboard's (what CONVLAB_RAY_ADDRESS takes)."""

    folder: Path
    cpus: int = 1
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.token_file = process_token_file()
        # Ray's own folder, short: its sockets' paths must stay under 108 bytes (AF_UNIX), and a pytest
        # tmp_path plus Ray's session name can pass that (the dashboard then fails to start)
        self.ray_folder = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        self.address = f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def env(self) -> dict[str, str]:
        """What a client needs: Ray's token authentication and the token."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_file)}

    def _ports(self, name: str) -> tuple[Node, list[str]]:
        node = Node(name, free_port())
        return node, ["--num-cpus", str(self.cpus), "--node-manager-port", str(node.manager_port),
                      "--resources", json.dumps({name: 1}),  # (tells the nodes apart: they share one address)
                      "--object-manager-port", str(free_port()),
                      "--dashboard-agent-listen-port", str(free_port()),
                      "--dashboard-agent-grpc-port", str(free_port()), "--runtime-env-agent-port", str(free_port()),
                      "--metrics-export-port", str(free_port()), "--disable-usage-stats"]

    def _ray(self, args: list[str], hide: Path | None = None) -> None:
        env = dict(os.environ, **self.env)
        command = [*RAY, *args]
        if hide is not None:
            empty = self.folder / f"empty-{len(self.nodes)}"
            empty.mkdir(exist_ok=True)
            script = f"mount --bind {empty} {hide} && exec " + " ".join(map(_quote, command))
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"ray {' '.join(args[:2])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    def start(self) -> "LocalRayCluster":
        head, ports = self._ports("head")
        self._ray(["start", "--head", "--port", str(self.gcs_port), "--dashboard-port", str(self.dashboard_port),
                   "--dashboard-host", "127.0.0.1", "--include-dashboard", "true",
                   "--temp-dir", str(self.ray_folder), *ports])
        self.nodes.append(head)
        self.add_node()
        self.wait_for_nodes(2)
        return self

    def add_node(self, hide: Path | None = None) -> Node:
        """Another node joins (`hide`: the folder it sees empty)."""
        node, ports = self._ports(f"node{len(self.nodes) + 1}")
        self._ray(["start", "--address", f"127.0.0.1:{self.gcs_port}", *ports], hide=hide)
        self.nodes.append(node)
        return node

    def alive_nodes(self) -> list:
        return [node for node in self.all_nodes() if node.state == "ALIVE"]

    def all_nodes(self) -> list:
        """Every node the cluster has known, dead ones too."""
        os.environ.update(self.env)  # (before Ray is imported: it reads its authentication settings once)
        from ray.util.state import list_nodes

        return list_nodes(address=self.address, raise_on_missing_output=False)

    def wait_for_nodes(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if len(self.alive_nodes()) == count:
                    return
            except Exception:  # noqa: BLE001 - the dashboard is still starting
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the cluster did not reach {count} live nodes in {timeout:.0f} s")

    def node_of(self, ray_node_id: str) -> str:
        """The name of the node Ray knows by this id ("head", "node2", …; dead or alive)."""
        for state in self.all_nodes():
            if state.node_id == ray_node_id:
                return next(name for name in (state.resources_total or {}) if re.fullmatch(r"head|node\d+", name))
        raise LookupError(f"no node {ray_node_id}")

    def kill(self, node: Node) -> None:
        """SIGKILL the node's raylet and every process it started (its trainings among them)."""
        raylets = _pids_with(f"--node_manager_port={node.manager_port}")
        for pid in raylets:
            for child in descendants(pid):
                _kill(child)
            _kill(pid)
        self.nodes.remove(node)

    def stop(self) -> None:
        """Stop this cluster only (`ray stop` would stop every Ray on the machine): every process that names its
        folder (head, raylets, dashboards, agents) and everything they started."""
        ours = _pids_with(str(self.ray_folder), raylet_only=False)
        for pid in ours:
            for child in descendants(pid):
                _kill(child)
            _kill(pid)
        shutil.rmtree(self.ray_folder, ignore_errors=True)


def _pids_with(text: str, raylet_only: bool = True) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command and ("raylet" in command or not raylet_only) and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
