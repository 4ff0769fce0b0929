"""A real Garage (the Rust S3 store, crates.io ``garage``) on 127.0.0.1 for the shared-cache tests: one node, or a
cluster whose every object is on each node (replication factor = nodes). Built once per user as a host tool."""
from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REGION = "garage"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Node:
    config: Path
    s3_port: int
    rpc_port: int
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"


@dataclass
class Garage:
    binary: Path
    root: Path
    nodes: list[Node] = field(default_factory=list)
    bucket: str = "cache"
    writer: dict[str, str] = field(default_factory=dict)  # AWS_* of a key that reads and writes
    reader: dict[str, str] = field(default_factory=dict)  # AWS_* of a key that only reads

    @classmethod
    def start(cls, binary: Path, root: Path, nodes: int = 1) -> Garage:
        garage = cls(binary, root)
        secret = secrets.token_hex(32)
        for index in range(nodes):
            garage.nodes.append(garage._configure(index, secret, replication=nodes))
        for node in garage.nodes:
            garage._run(node)
        garage._lay_out()
        garage.writer = garage._key("ci", "--read", "--write", "--owner")
        garage.reader = garage._key("developer", "--read")
        return garage

    def env(self, key: dict[str, str], node: int = 0) -> dict[str, str]:
        """The standard S3 environment for ``key`` against ``node``."""
        return {**key, "AWS_ENDPOINT_URL": self.nodes[node].endpoint, "AWS_REGION": REGION}

    def stop(self, node: int | None = None) -> None:
        """Kill one node (-9), or every node."""
        for chosen in self.nodes if node is None else [self.nodes[node]]:
            if chosen.process is not None and chosen.process.poll() is None:
                chosen.process.kill()
                chosen.process.wait()

    def cli(self, *args: str, node: int = 0) -> str:
        return subprocess.run([str(self.binary), "-c", str(self.nodes[node].config), *args], check=True,
                              capture_output=True, text=True, timeout=60).stdout

    def _configure(self, index: int, secret: str, replication: int) -> Node:
        home = self.root / f"node{index}"
        (home / "meta").mkdir(parents=True)
        (home / "data").mkdir()
        node = Node(home / "garage.toml", free_port(), free_port())
        node.config.write_text(f'''metadata_dir = "{home / 'meta'}"
data_dir = "{home / 'data'}"
db_engine = "sqlite"
replication_factor = {replication}
rpc_bind_addr = "127.0.0.1:{node.rpc_port}"
rpc_public_addr = "127.0.0.1:{node.rpc_port}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{node.s3_port}"
root_domain = ".s3.garage.localhost"
''')
        os.chmod(node.config, 0o600)
        return node

    def _run(self, node: Node) -> None:
        log = (node.config.parent / "garage.log").open("wb")
        node.process = subprocess.Popen([str(self.binary), "-c", str(node.config), "server"], stdout=log,
                                        stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "warn"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", node.s3_port), timeout=1).close()
                return
            except OSError:
                if node.process.poll() is not None:
                    raise RuntimeError(f"garage exited: {(node.config.parent / 'garage.log').read_text()}")
                time.sleep(0.1)
        raise RuntimeError("garage did not listen within 30 s")

    def _lay_out(self) -> None:
        ids = [self.cli("node", "id", "-q", node=index).strip() for index in range(len(self.nodes))]
        for other in ids[1:]:
            self._retry(lambda other=other: self.cli("node", "connect", other))
        for node_id in ids:
            self._retry(lambda node_id=node_id: self.cli("layout", "assign", "-z", "dc1", "-c", "1G",
                                                         node_id.split("@")[0]))
        self.cli("layout", "apply", "--version", "1")
        self._retry(lambda: self.cli("bucket", "create", self.bucket))

    def _key(self, name: str, *rights: str) -> dict[str, str]:
        created = self.cli("key", "create", name)
        key_id = re.search(r"Key ID:\s*(\S+)", created).group(1)
        secret = re.search(r"Secret key:\s*(\S+)", created).group(1)
        self.cli("bucket", "allow", *rights, self.bucket, "--key", key_id)
        return {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}

    @staticmethod
    def _retry(action, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                action()
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
