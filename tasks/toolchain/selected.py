"""The toolchain one build compiles with: the pinned one for the target, or with ``toolchain=host`` the host's own.

The pinned toolchain is verified (rustup, the codegen backend) at most once per build, and its fingerprint — what
every target build's signature includes — is remembered under the build directory for as long as the toolchain's
files and the target specs keep their stats: verifying again costs five rustup runs and hashing the backend library,
on every build. Knows nothing of doit.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.observe import probed
from ..hashing import hash_text, hash_value
from ..process import run
from ..settings import PROJECT_DIR, host_triple

if TYPE_CHECKING:
    from ..layout import Layout
    from .installed import Toolchain
    from .pin import ToolchainPin
    from .specs import SpecKind


class SelectedToolchain:
    def __init__(self, layout: Layout):
        self.layout = layout
        self.settings = layout.settings

    @property
    def host_only(self) -> bool:
        """Recipes are compiled for this machine (the demo, tests): no Redox toolchain is involved."""
        return self.settings.host_only

    @functools.cached_property
    def pin_file(self) -> Path:
        """Where the pin is read: ``[tool.redox.toolchain]`` of the tree's pyproject.toml, else of this project's."""
        tree = self.settings.root / "pyproject.toml"
        if tree != PROJECT_DIR / "pyproject.toml" and tree.is_file():
            with open(tree, "rb") as stream:
                if tomllib.load(stream).get("tool", {}).get("redox", {}).get("toolchain") is not None:
                    return tree
        return PROJECT_DIR / "pyproject.toml"

    @functools.cached_property
    def pin(self) -> ToolchainPin:
        """The tree's pin with this build's choices (``rust=``, ``backend=``) applied."""
        from .pin import load_pin
        choices: dict[str, object] = {}
        if (rust := self.settings.rust) is not None:  # a directory, or a rustup toolchain's name
            choices = {"path": rust} if "/" in rust or rust.startswith(("~", ".")) else {"channel": rust, "path": None}
        if self.settings.backend is not None:
            choices["backend"] = self.settings.backend
        return load_pin(self.pin_file, choices)

    @functools.cached_property
    def verified(self) -> Toolchain:
        """The installed pinned toolchain; raises with the command that installs what is missing."""
        from .installed import verify_toolchain
        return verify_toolchain(self.pin, log=self.layout.log("toolchain"))

    def specs(self) -> dict[SpecKind, Path]:
        from .specs import SpecKind, spec_path
        return {kind: spec_path(self.layout.arch_dir, kind, self.settings.arch) for kind in SpecKind}

    @functools.cached_property
    def spec_fields(self) -> dict[SpecKind, dict[str, str]]:
        """The spec fields this toolchain's compiler accepts (``specs.detect_fields``): runs its rustc."""
        from .specs import detect_fields
        return detect_fields(self.verified, self.settings.arch)

    def spec_digests(self) -> dict[str, str]:
        """Each target spec's content hash: the file's, or before the toolchain stage has written it, the hash of
        what it will write — the same value, so that the fingerprint is one before and after (and an edited file
        still counts). The spec names this build's sysroot by absolute path, which tells the linker where to look
        and is no part of what it links: the hash is of the text with that path as ``$SYSROOT``, so that a build
        directory elsewhere (another machine's, and the shared cache's entries) has the same fingerprint."""
        from .specs import render_spec
        texts = {path.name: path.read_text() if path.is_file() else
                 render_spec(kind, self.settings.arch, self.layout.sysroot, self.spec_fields.get(kind, {}))
                 for kind, path in self.specs().items()}
        return {name: hash_text(text.replace(str(self.layout.sysroot), "$SYSROOT")) for name, text in texts.items()}

    def strip_tool(self) -> Path | None:
        """The toolchain's llvm-strip; for host builds the system's strip (none: binaries are copied as they are)."""
        if not self.host_only:
            return self.verified.tool("llvm-strip")
        system = shutil.which("strip")
        return Path(system) if system else None

    # --- what signatures and the no-op evidence know it by ---------------------------------------------------

    @functools.cached_property
    def fingerprint(self) -> str:
        """The toolchain's identity (rustc -vV, backend, target specs); for host builds the host compiler's."""
        if self.host_only:
            argv = self._host_compiler_argv()
            return hash_text(probed(argv) or run(argv, capture=True))
        return self._pinned_fingerprint()

    def files(self) -> list[Path]:
        """The files the fingerprint is known by (none for host builds: see :meth:`probes`), and the pin's."""
        return [] if self.host_only else [self.pin_file, *self._toolchain_files(), *self.specs().values()]

    def probes(self) -> list[list[str]]:
        """The commands whose output the fingerprint depends on: for host builds, the host compiler's version."""
        return [self._host_compiler_argv()] if self.host_only else []

    @staticmethod
    def _host_compiler_argv() -> list[str]:
        return [os.environ.get("RUSTC", "rustc"), "-vV"]

    def _pinned_fingerprint(self) -> str:
        from ..atomic import write_atomically
        from .fingerprint import fingerprint
        cache = self.layout.cache / "toolchain-fingerprint.json"
        key = self._toolchain_key()
        if key is not None and cache.is_file():
            remembered = json.loads(cache.read_text())
            if remembered.get("key") == key:
                return remembered["fingerprint"]
        value = fingerprint(self.verified, self.spec_digests())
        key = self._toolchain_key()  # the check may have installed the toolchain (install = true)
        if key is not None:
            write_atomically(cache, json.dumps({"key": key, "fingerprint": value}))
        return value

    def _toolchain_key(self) -> str | None:
        """What the pinned toolchain's fingerprint depends on, read without running rustup; None when its directory
        is not where rustup keeps toolchains (then the fingerprint is always computed)."""
        try:
            stats = [[str(path), info.st_size, info.st_mtime_ns, info.st_ino]
                     for path in self._toolchain_files() if (info := path.stat())]
        except FileNotFoundError:
            return None
        # An installation outside rustup has no llvm-tools of its own: its binutils and linker are found on PATH.
        search = os.environ.get("PATH") if self.pin.path is not None else None
        return hash_value([self.pin.model_dump(mode="json"), stats, self.spec_digests(), search])

    def _toolchain_files(self) -> list[Path]:
        if self.pin.path is not None:
            files = [self.pin.path / "bin/rustc", self.pin.path / "bin/cargo"]
            return files if self.pin.backend_path is None else [*files, self.pin.backend_path]
        rustup_home = Path(os.environ.get("RUSTUP_HOME", Path.home() / ".rustup"))
        directory = rustup_home / "toolchains" / f"{self.pin.channel}-{host_triple()}"
        files = [directory / "bin/rustc", directory / "bin/cargo", directory / "lib/rustlib/components"]
        return files if self.pin.backend_path is None else [*files, self.pin.backend_path]
