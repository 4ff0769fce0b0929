"""The Rust installation the pin names, checked: a rustup toolchain (its components) or a directory (Debian's
rustc-web), its standard library source, the backend library, and the binutils and linker found for it.

A missing piece fails with the exact command that fixes it; with ``install`` (the pin's opt-in) the command runs.
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import InputError
from ..process import command_line, run
from ..settings import host_triple
from .pin import TABLE, ToolchainPin, component_id

BACKEND_LIBRARY = "librustc_codegen_cranelift"
BACKEND_BUILD_HINT = ("build it in a rustc_codegen_cranelift checkout with "
                      "`./y.sh prepare && ./y.sh build --sysroot clif`")
# The programs a target build runs besides rustc and cargo, by the names rustup's llvm-tools give them. Outside
# rustup they are LLVM's own (Debian: llvm-ar-22, …, preferably of the compiler's LLVM version) and lld's ld.lld.
TOOLS = ("llvm-ar", "llvm-strip", "llvm-objcopy", "llvm-nm", "rust-lld")
SYSTEM_NAMES = {"rust-lld": "ld.lld"}
# Found the same way where present: the C compiler for the target (cc-rs crates such as onig_sys, blake3, ring).
# A build without one refuses to compile C for the target rather than take the host's (``env.target_compilers``).
OPTIONAL_TOOLS = ("clang",)
LIBRARY_SOURCE = Path("lib/rustlib/src/rust/library")  # what -Zbuild-std compiles, under the sysroot


@dataclass(frozen=True)
class Toolchain:
    """An installed toolchain that satisfies the pin: where it lives and what its cargo accepts."""

    pin: ToolchainPin
    host: str
    sysroot: Path
    backend_library: Path | None
    # Cargo 1.96 and nightlies from 2026-02 require `-Zjson-target-spec` for `.json` targets; older ones reject it.
    json_target_spec_flag: bool
    unstable: bool = True
    """The compiler takes ``-Z`` flags by itself (a nightly); a release compiler needs ``RUSTC_BOOTSTRAP=1``."""
    tools: Mapping[str, Path] = field(default_factory=dict)
    """Each of :data:`TOOLS` where it was found; one not listed is taken from :attr:`tools_dir`."""

    @property
    def name(self) -> str:
        return self.pin.name

    @property
    def lib_dir(self) -> Path:
        return self.sysroot / "lib"

    @property
    def tools_dir(self) -> Path:
        """Where rustup's llvm-tools component puts llvm-ar, llvm-strip, llvm-objcopy, llvm-nm, and rust-lld."""
        return self.sysroot / "lib" / "rustlib" / self.host / "bin"

    def tool(self, name: str) -> Path:
        return self.tools.get(name, self.tools_dir / name)

    def command(self, program: str, *args: str) -> list[str]:
        """The argv that runs one of the installation's own programs (rustc, cargo)."""
        if self.pin.path is not None:
            return [str(self.pin.path / "bin" / program), *args]
        return ["rustup", "run", self.pin.channel, program, *args]

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """What makes a child's ``cargo`` and ``rustc`` this installation — the environment, never the sources'
        rust-toolchain.toml (which holds the tree's own pin)."""
        if self.pin.path is not None:
            bin_dir = self.pin.path / "bin"
            env = {"PATH": f"{bin_dir}{os.pathsep}{base.get('PATH', os.defpath)}", "RUSTC": str(bin_dir / "rustc")}
        else:
            env = {"RUSTUP_TOOLCHAIN": self.pin.channel}
        return env if self.unstable else {**env, "RUSTC_BOOTSTRAP": "1"}

    def output(self, program: str, *args: str) -> str:
        """What one of its programs prints, run in the environment builds give it."""
        return run(self.command(program, *args), capture=True, env={**os.environ, **self.env(os.environ)})

    @property
    def codegen_backend(self) -> str | None:
        """The value of ``-Zcodegen-backend``; None for LLVM (rustc's default)."""
        if not self.pin.uses_cranelift:
            return None
        return str(self.pin.backend_path) if self.pin.backend_path is not None else "cranelift"


def installed_toolchains() -> list[str]:
    listing = run(["rustup", "toolchain", "list"], capture=True)
    return [line.split()[0] for line in listing.splitlines() if line.strip() and not line.startswith("no installed")]


def _matching_toolchain(channel: str, host: str, names: list[str]) -> str | None:
    for name in names:
        if name in (channel, f"{channel}-{host}"):
            return name
    return None


def installed_components(toolchain: str, host: str) -> set[str]:
    listing = run(["rustup", "component", "list", "--installed", "--toolchain", toolchain], capture=True)
    return {component_id(line.strip(), host) for line in listing.splitlines() if line.strip()}


def component_backend_library(sysroot: Path, host: str) -> Path | None:
    backends = sysroot / "lib" / "rustlib" / host / "codegen-backends"
    matches = sorted(backends.glob(f"{BACKEND_LIBRARY}*")) if backends.is_dir() else []
    return matches[0] if matches else None


def _problems(pin: ToolchainPin, host: str) -> tuple[list[str], str | None]:
    """What is missing (empty when nothing) and the installed toolchain's rustup name."""
    name = _matching_toolchain(pin.channel, host, installed_toolchains())
    if name is None:
        return [f"toolchain {pin.channel} is not installed"], None
    have = installed_components(name, host)
    missing = [wanted for wanted in pin.required_components() if component_id(wanted, host) not in have]
    return [f"toolchain {pin.channel} lacks component {', '.join(missing)}"] if missing else [], name


def verify_toolchain(pin: ToolchainPin, *, host: str | None = None, install: bool | None = None,
                     log: Path | None = None, search_path: str | None = None) -> Toolchain:
    """The installed toolchain for ``pin``; raises InputError naming the fix command when anything is missing.

    ``install`` (default: the pin's ``install`` setting) runs the fix command once before giving up;
    ``search_path`` (default: ``$PATH``) is where binutils and the linker are looked for outside the installation.
    """
    host = host or host_triple()
    if pin.path is not None:
        _check_installation(pin.path)
    else:
        install = pin.install if install is None else install
        problems, name = _problems(pin, host)
        if problems and install:
            run(pin.install_command(), log=log)
            problems, name = _problems(pin, host)
        if problems:
            raise InputError(f"{'; '.join(problems)}; fix: `{command_line(pin.install_command())}`", key=TABLE)
        pin = pin.model_copy(update={"channel": name})
    return _describe(Toolchain(pin=pin, host=host, sysroot=Path(), backend_library=None, json_target_spec_flag=False),
                     search_path)


def _check_installation(directory: Path) -> None:
    missing = [program for program in ("rustc", "cargo") if not (directory / "bin" / program).is_file()]
    if missing:
        raise InputError(f"not a Rust installation: no bin/{' or bin/'.join(missing)} in {directory} (a directory "
                         f"such as /usr for Debian's rustc-web and cargo-web, or a rustup toolchain name)",
                         key=f"{TABLE}.path")


def _describe(toolchain: Toolchain, search_path: str | None) -> Toolchain:
    """What the installation is: sysroot, library source, backend, what its cargo and rustc accept, its tools."""
    pin = toolchain.pin
    version = toolchain.output("rustc", "-vV")
    release = re.search(r"^release: (\S+)", version, re.MULTILINE)
    probe = replace(toolchain, unstable=release is not None and ("nightly" in release.group(1)
                                                                 or "-dev" in release.group(1)))
    sysroot = Path(probe.output("rustc", "--print", "sysroot").strip())
    if pin.path is not None and not (sysroot / LIBRARY_SOURCE).is_dir():  # rustup's: the rust-src component
        raise InputError(f"{pin.name} has no standard library source at {sysroot / LIBRARY_SOURCE}, which "
                         f"-Zbuild-std compiles; fix: install the one that matches the compiler (Debian: "
                         f"rust-web-src for rustc-web)", key=f"{TABLE}.path")
    cargo_flags = probe.output("cargo", "-Z", "help")
    llvm = re.search(r"^LLVM version: (\d+)", version, re.MULTILINE)
    described = replace(probe, sysroot=sysroot, backend_library=_backend_library(pin, sysroot, toolchain.host),
                        json_target_spec_flag="json-target-spec" in cargo_flags)
    return replace(described, tools=find_tools(described, llvm.group(1) if llvm else None, search_path))


def find_tools(toolchain: Toolchain, llvm_major: str | None, search_path: str | None = None) -> dict[str, Path]:
    """Each of :data:`TOOLS` and :data:`OPTIONAL_TOOLS`: the installation's own (rustup's llvm-tools), else on
    ``search_path`` the program of the compiler's LLVM version, else any version; raises naming every one of
    :data:`TOOLS` that is missing and where it was looked for."""
    found, missing = {}, []
    for tool in (*TOOLS, *OPTIONAL_TOOLS):
        names = [tool, SYSTEM_NAMES[tool]] if tool in SYSTEM_NAMES else [tool]
        candidates = [toolchain.tools_dir / tool]
        candidates += [Path(where) for name in names for versioned in
                       ([f"{name}-{llvm_major}"] if llvm_major else []) + [name]
                       if (where := shutil.which(versioned, path=search_path)) is not None]
        if (tool_path := next((candidate for candidate in candidates if candidate.is_file()), None)) is None:
            if tool in TOOLS:
                missing.append(tool)
        else:
            found[tool] = tool_path
    if missing:
        names = ", ".join(f"{tool} (or {SYSTEM_NAMES[tool]})" if tool in SYSTEM_NAMES else tool for tool in missing)
        raise InputError(f"{toolchain.name} lacks {names}: looked in {toolchain.tools_dir} and on PATH"
                         f"{f' (also as -{llvm_major})' if llvm_major else ''}; fix: `rustup component add "
                         "llvm-tools-preview` for a rustup toolchain, or install LLVM's tools and lld "
                         "(Debian: llvm, lld)", key=TABLE)
    return found


def _backend_library(pin: ToolchainPin, sysroot: Path, host: str) -> Path | None:
    if not pin.uses_cranelift:
        return None
    if pin.backend_path is not None:
        if not pin.backend_path.is_file():
            raise InputError(f"Cranelift backend {pin.backend_path} does not exist; {BACKEND_BUILD_HINT}",
                             key=f"{TABLE}.backend-path")
        return pin.backend_path
    library = component_backend_library(sysroot, host)
    if library is None:
        raise InputError(f"toolchain {pin.channel} has no {BACKEND_LIBRARY} in {sysroot}; fix: "
                         f"`{command_line(pin.install_command())}`", key=TABLE)
    return library

