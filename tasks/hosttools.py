"""Host tools from crates.io, pinned, installed with ``cargo install --locked`` under ``<build>/host``.

The formats of pkgar, the installer and RedoxFS belong to their upstream tools, so the build (and the tests that
check interoperability) run the real ones. One table pins them; one function installs them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CommandError
from .process import run


@dataclass(frozen=True)
class HostTool:
    crate: str
    version: str
    binaries: tuple[str, ...]
    features: tuple[str, ...] = field(default=())


PINNED: dict[str, HostTool] = {
    "pkgar": HostTool("pkgar", "0.2.4", ("pkgar",), features=("cli",)),
    # The fork's installer: pkgar `count: u64` headers, bootloader from `boot/` (see docs/host-tools.md).
    "redox_installer": HostTool("redox_installer", "0.2.40", ("redox_installer",)),
    "redoxfs": HostTool("redoxfs", "0.8.6", ("redoxfs", "redoxfs-ar", "redoxfs-mkfs")),
}


def install_root(build_dir: Path) -> Path:
    return build_dir / "host"


def is_installed(tool: HostTool, root: Path) -> bool:
    """True when cargo's own install record has exactly this crate version (no network, no cargo start-up)."""
    record = root / ".crates2.json"
    if not record.exists():
        return False
    installs = json.loads(record.read_text()).get("installs", {})
    wanted = f"{tool.crate} {tool.version} "
    return any(key.startswith(wanted) for key in installs) and all(
        (root / "bin" / name).exists() for name in tool.binaries)


def ensure(name: str, build_dir: Path, log: Path | None = None) -> Path:
    """Install the pinned tool ``name`` if needed; return the directory holding its binaries."""
    tool = PINNED[name]
    root = install_root(build_dir)
    if not is_installed(tool, root):
        argv = ["cargo", "install", "--locked", "--root", root, "--version", tool.version, tool.crate]
        if tool.features:
            argv[2:2] = ["--features", ",".join(tool.features)]
        try:
            run(argv, log=log or build_dir / "logs" / f"host-{name}.log")
        except CommandError as error:
            raise CommandError(f"cannot build host tool {name} {tool.version}: {error.reason}") from None
    return root / "bin"
