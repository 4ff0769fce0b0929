"""Packages from a package server (rule ``binary`` with ``prebuilt_url=``), as upstream's ``REPO_BINARY`` lays them
out: ``<url>/<target>/<name>.pkgar`` and ``<name>.toml``.

Each package is downloaded once into a per-user cache (``~/.cache/redox-aarch64-build/packages/<server>/<target>/``)
and verified there against the public key the tree pins in its config directory — never a key the server offers,
never trust on first use: a package whose signature does not verify is not kept. Its dependencies (the ``depends``
of its ``.toml``) are downloaded too, so that the cache serves an offline build (``COOKBOOK_OFFLINE=1``). The
verified package is then copied to the build's prebuilt directory, where the cook stage extracts it and the
package stage signs it again with the build's own key in the format the pinned installer reads (a current-format
pkgar from the server, LZMA2 and all, is converted so).

Knows nothing of doit.
"""
from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_path
from ..errors import FormatError, InputError
from ..formats import pkgar, pkgkeys
from ..hashing import hash_text
from ..model.names import parse_package_name
from .archive import download


def cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "redox-aarch64-build" / "packages"
    return Path(os.environ.get("REDOX_PACKAGE_CACHE", default))


@dataclass(frozen=True)
class Server:
    url: str
    target: str
    key_file: Path  # the pinned public key

    @property
    def cache(self) -> Path:
        return cache_root() / hash_text(self.url.rstrip("/"))[:16] / self.target

    def address(self, name: str, suffix: str) -> str:
        return f"{self.url.rstrip('/')}/{self.target}/{name}{suffix}"


def fetch_package(server: Server, name: str, destination: Path, *, offline: bool,
                  built_here: frozenset[str] = frozenset()) -> list[str]:
    """``name`` (and, into the cache, what it depends on but ``built_here``, the packages the build makes from
    their recipes) from the cache or the server; its ``.pkgar`` and ``.toml`` copied into ``destination``.
    Returns the dependencies that were fetched as well."""
    key = _pinned_key(server)
    followed, pending, done = [], [name], set(built_here)
    while pending:
        current = pending.pop(0)
        if current in done:
            continue
        done.add(current)
        for dependency in _cached(server, current, key, offline):
            if dependency not in done:
                pending.append(dependency)
                followed.append(dependency)
    destination.mkdir(parents=True, exist_ok=True)
    for suffix in (".toml", ".pkgar"):
        with atomic_path(destination / f"{name}{suffix}") as partial:
            shutil.copyfile(server.cache / f"{name}{suffix}", partial)
    return list(dict.fromkeys(followed))


def _pinned_key(server: Server) -> bytes:
    if not server.key_file.is_file():
        raise InputError(f"no public key of the package server {server.url} is pinned: put the server's "
                         "id_ed25519.pub.toml there (packages are never trusted on first use)", path=server.key_file)
    return pkgkeys.load_public_key(server.key_file)


def _file_name(name: str, where: str) -> str:
    """``name`` if it is a package's file name on a server: a target package name (the upstream grammar: no ``/``,
    no ``..``, no ``host:``), which keeps every path built from it inside the cache. ``where``: whom it came from."""
    try:
        ref = parse_package_name(name)
    except ValueError as error:
        raise FormatError(f"{where}: {error}: refused, nothing of it is kept") from None
    if ref.host:
        raise FormatError(f"{where}: {name!r} names a host package, which no package server serves: refused")
    return name


def _cached(server: Server, name: str, key: bytes, offline: bool) -> list[str]:
    """Make sure the cache holds ``name``, verified; its dependencies, each checked to be a package name (a
    package's TOML is not signed: a name such as ``../../x`` must never become a path)."""
    _file_name(name, "prebuilt_url")
    package, metadata = server.cache / f"{name}.pkgar", server.cache / f"{name}.toml"
    if not (package.is_file() and metadata.is_file()):
        if offline:
            raise InputError(f"offline, and {name} is not in the package cache {server.cache}: build once online",
                             key="prebuilt_url")
        server.cache.mkdir(parents=True, exist_ok=True)
        with atomic_path(metadata) as toml_partial, atomic_path(package) as pkgar_partial:
            for url, partial in ((server.address(name, ".toml"), toml_partial),
                                 (server.address(name, ".pkgar"), pkgar_partial)):
                download(url, partial, key="prebuilt_url",
                         not_found=f"the package server has no {url} (HTTP 404)")
            try:
                # the signature, the entry table and every entry's content, before it is kept
                pkgar.open_package(pkgar_partial, key).verify_contents()
            except FormatError as error:
                raise FormatError(f"{server.address(name, '.pkgar')}: {error.reason} (pinned key "
                                  f"{server.key_file})") from None
    where = f"{server.address(name, '.toml')}: depends"
    try:
        depends = tomllib.loads(metadata.read_text()).get("depends", [])
        if not isinstance(depends, list) or not all(isinstance(dependency, str) for dependency in depends):
            raise FormatError(f"{where}: not a list of package names: {depends!r}")
        return [_file_name(dependency, where) for dependency in depends]
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, FormatError) as error:
        for cached in (metadata, package):  # the package is refused: fetched again next time, not served from here
            cached.unlink(missing_ok=True)
        if isinstance(error, FormatError):
            raise
        raise FormatError(f"{server.address(name, '.toml')}: not a package's TOML: {error}") from None



@dataclass(frozen=True)
class PrebuiltMetadata:
    """What a package taken prebuilt without a recipe says of itself (its ``.toml``): what a recipe would say."""

    version: str
    depends: list[str]


def prebuilt_metadata(name: str, *, server: Server | None, prebuilt_dir: Path, target: str,
                      offline: bool) -> PrebuiltMetadata:
    """The version and dependencies of ``name``, a config package with rule ``binary`` and no recipe, from the
    package server (the package is fetched into the per-user cache once, verified against the pinned key, as its
    download task would fetch it) or, without one, from the prebuilt directory. The error says where it looked."""
    if server is not None:
        depends = _cached(server, name, _pinned_key(server), offline)
        metadata = server.cache / f"{name}.toml"
    else:
        metadata = prebuilt_dir / target / f"{_file_name(name, 'packages')}.toml"
        if not metadata.is_file():
            raise InputError(f"no recipe named {name!r}, and the prebuilt directory has no {metadata.name} (rule "
                             f"\"binary\" takes a package without a recipe from prebuilt_url=, or from prebuilt=DIR)",
                             path=metadata.parent)
        depends = None
    try:
        data = tomllib.loads(metadata.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise FormatError(f"not a package's TOML: {error}", path=metadata) from None
    if depends is None:
        listed = data.get("depends", [])
        if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
            raise FormatError(f"depends: not a list of package names: {listed!r}", path=metadata)
        depends = [_file_name(item, f"{metadata}: depends") for item in listed]
    version = data.get("version", "")
    return PrebuiltMetadata(version if isinstance(version, str) else "", depends)
