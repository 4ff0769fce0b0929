"""Host tools from crates.io, pinned, installed with ``cargo install --locked`` under ``<build>/host``.

The formats of pkgar, the installer and RedoxFS belong to their upstream tools, so the build (and the tests that
check interoperability) run the real ones. One table pins them; one function installs them.
"""
from __future__ import annotations

import fcntl
import json
import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CommandError
from ..hashing import hash_file, hash_value
from ..process import child_env, run
from ..variables import PROJECT_DIR


@dataclass(frozen=True)
class HostTool:
    crate: str
    version: str
    binaries: tuple[str, ...]
    features: tuple[str, ...] = field(default=())
    opt_level: str | None = None
    """cargo's release opt-level for this install, when not the crate's own: a test server need not be fast."""


PINNED: dict[str, HostTool] = {
    "pkgar": HostTool("pkgar", "0.2.4", ("pkgar",), features=("cli",)),
    # The last release with the old header (count: u64, no flags), the format the fork's installer 0.2.40 reads.
    "pkgar-0.1": HostTool("pkgar", "0.1.19", ("pkgar",)),
    # Key generation is a crate of its own. 0.2.4 cannot encrypt a secret key (its dryoc 1 rejects the 32-byte
    # salt); 0.1.19 can, and writes the same TOML otherwise.
    "pkgar-keys-0.1": HostTool("pkgar-keys", "0.1.19", ("pkgar-keys",)),
    # The fork's installer: pkgar `count: u64` headers, bootloader from `boot/` (see docs/host-tools.md).
    "redox_installer": HostTool("redox_installer", "0.2.40", ("redox_installer",)),
    "redoxfs": HostTool("redoxfs", "0.8.6", ("redoxfs", "redoxfs-ar", "redoxfs-mkfs")),
    # relibc's C headers are generated from its Rust sources (its Makefile's `headers`; relibc's CI installs it).
    "cbindgen": HostTool("cbindgen", "0.29.4", ("cbindgen",)),
    # The compile-level cache of cache_rustc=yes (tasks/cache/rustc.py): cargo's RUSTC_WRAPPER in the cooks.
    "sccache": HostTool("sccache", "0.19.0", ("sccache",)),
    # An S3 store (Rust, geo-distributed): the real server the shared cache's tests (tests/garage.py) talk to.
    # Built at opt-level 1: about half the compile time of a ~20-minute build, and the tests move kilobytes.
    "garage": HostTool("garage", "2.5.0", ("garage",), opt_level="1"),
}

# The pinned tools every target recipe's script finds on PATH, as upstream's build container has them.
COOKBOOK: tuple[str, ...] = ("cbindgen",)


OWN: dict[str, tuple[Path, tuple[str, ...]]] = {
    # Files inside a disk image's RedoxFS without FUSE (tasks/image/files.py), on the redoxfs crate itself.
    "redox-image": (PROJECT_DIR / "tools" / "redox-image", ("redox-image",)),
}
"""Host tools that are crates of this project: installed per user under a name that carries a digest of their
source, so that an edit of the crate builds it anew and every checkout of one version shares the build."""


def own_source_digest(name: str) -> str:
    """The digest of an own tool's crate: its manifest, lock file and sources."""
    source, _ = OWN[name]
    files = [source / "Cargo.toml", source / "Cargo.lock", *sorted((source / "src").rglob("*.rs"))]
    if missing := [path for path in files if not path.is_file()]:
        raise CommandError(f"the project's own host tool {name} is incomplete: this checkout lacks it",
                           path=missing[0])
    return hash_value([[str(path.relative_to(source)), hash_file(path)] for path in files])


def ensure_own(name: str, log: Path | None = None) -> Path:
    """Build the project's own tool ``name`` if this version of it is not installed; its binaries' directory."""
    source, binaries = OWN[name]
    root = install_root(f"{name}-{own_source_digest(name)[:16]}")
    if not all((root / "bin" / binary).exists() for binary in binaries):
        with _install_lock(root):
            if not all((root / "bin" / binary).exists() for binary in binaries):
                _install_path(name, source, root, install_root(f"{name}-target"), log)
    return root / "bin"


def declared_binaries(source: Path) -> set[str]:
    """The binaries a crate's source builds, as cargo finds them: ``[[bin]]`` names, ``src/bin/*.rs``, and the
    package's name for ``src/main.rs`` (empty without a readable Cargo.toml)."""
    try:
        with open(source / "Cargo.toml", "rb") as stream:
            manifest = tomllib.load(stream)
    except (OSError, tomllib.TOMLDecodeError):
        return set()
    names = {entry["name"] for entry in manifest.get("bin", []) if isinstance(entry, dict) and "name" in entry}
    names |= {path.stem for path in (source / "src" / "bin").glob("*.rs")}
    if (source / "src" / "main.rs").is_file() and "name" in manifest.get("package", {}):
        names.add(manifest["package"]["name"])
    return names


def install_root(name: str) -> Path:
    """Each tool has its own cargo root, so two versions of one crate (pkgar 0.1 and 0.2) can coexist.

    The roots live in a per-user cache (``$REDOX_HOST_TOOLS``, default ``~/.cache/redox-aarch64-build/host``)
    rather than in one build directory: every checkout and test build of the same pinned version shares them.
    """
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "redox-aarch64-build" / "host"
    return Path(os.environ.get("REDOX_HOST_TOOLS", default)) / name


def is_installed(tool: HostTool, root: Path) -> bool:
    """True when cargo's own install record has exactly this crate version (no network, no cargo start-up)."""
    record = root / ".crates2.json"
    try:
        installs = json.loads(record.read_text()).get("installs", {})
    except (FileNotFoundError, json.JSONDecodeError):  # none yet, or an install killed as it began (empty)
        return False
    wanted = f"{tool.crate} {tool.version} "
    return any(key.startswith(wanted) for key in installs) and all(
        (root / "bin" / name).exists() for name in tool.binaries)


def ensure(name: str, build_dir: Path, log: Path | None = None) -> Path:
    """Install the pinned tool ``name`` if needed; return the directory holding its binaries."""
    tool = PINNED[name]
    root = install_root(name)
    if not is_installed(tool, root):
        with _install_lock(root):
            _install(name, tool, root, build_dir, log)
    return root / "bin"


@contextmanager
def _install_lock(root: Path) -> Iterator[None]:
    """Parallel builds or test workers wait for one cargo install into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def source_install_root(name: str, build_dir: Path) -> Path:
    """Where a tree's own source of a tool is installed: per build directory, since the source is the tree's."""
    return build_dir / "host" / name


def install_from_source(name: str, source: Path, build_dir: Path) -> Path:
    """``cargo install --path`` of a tree's own source of a tool (as upstream's fstools do for redoxfs) into
    :func:`source_install_root`; returns the directory holding its binaries. Cargo rebuilds only what changed."""
    root = source_install_root(name, build_dir)
    _install_path(name, source, root, build_dir / "host" / f"{name}-target", build_dir / "logs" / f"host-{name}.log")
    return root / "bin"


def _install_path(name: str, source: Path, root: Path, target_dir: Path, log: Path | None) -> None:
    """``cargo install --path`` of a crate's source into ``root``; cargo rebuilds only what changed."""
    try:
        run(["cargo", "install", "--locked", "--force", "--path", source, "--root", root, "--target-dir", target_dir],
            log=log)
    except CommandError as error:
        raise CommandError(f"cannot build host tool {name} from {source}: {error.reason}") from None


def _install(name: str, tool: HostTool, root: Path, build_dir: Path, log: Path | None) -> None:
    if not is_installed(tool, root):
        argv = ["cargo", "install", "--locked", "--root", root, "--version", tool.version, tool.crate]
        if tool.features:
            argv[2:2] = ["--features", ",".join(tool.features)]
        profile = {"CARGO_PROFILE_RELEASE_OPT_LEVEL": tool.opt_level} if tool.opt_level else {}
        try:
            run(argv, log=log or build_dir / "logs" / f"host-{name}.log", env=child_env(set=profile))
        except CommandError as error:
            raise CommandError(f"cannot build host tool {name} {tool.version}: {error.reason}") from None
