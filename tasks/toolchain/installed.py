"""What rustup has installed, checked against the pin: the toolchain, its components, the backend library.

A missing piece fails with the exact command that fixes it; with ``install`` (the pin's opt-in) the command runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..process import command_line, run
from ..settings import host_triple
from .pin import TABLE, ToolchainPin, component_id

BACKEND_LIBRARY = "librustc_codegen_cranelift"
BACKEND_BUILD_HINT = ("build it in a rustc_codegen_cranelift checkout with "
                      "`./y.sh prepare && ./y.sh build --sysroot clif`")


@dataclass(frozen=True)
class Toolchain:
    """An installed toolchain that satisfies the pin: where it lives and what its cargo accepts."""

    pin: ToolchainPin
    host: str
    sysroot: Path
    backend_library: Path | None
    # Nightlies from 2026-02 require `-Zjson-target-spec` for `.json` targets; older cargos reject the flag.
    json_target_spec_flag: bool

    @property
    def name(self) -> str:
        return self.pin.channel

    @property
    def lib_dir(self) -> Path:
        return self.sysroot / "lib"

    @property
    def tools_dir(self) -> Path:
        """llvm-ar, llvm-strip, llvm-objcopy, llvm-nm (llvm-tools component) and rust-lld."""
        return self.sysroot / "lib" / "rustlib" / self.host / "bin"

    def tool(self, name: str) -> Path:
        return self.tools_dir / name

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


def rustup_run(toolchain: str, *argv: str) -> str:
    return run(["rustup", "run", toolchain, *argv], capture=True)


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
                     log: Path | None = None) -> Toolchain:
    """The installed toolchain for ``pin``; raises InputError naming the fix command when anything is missing.

    ``install`` (default: the pin's ``install`` setting) runs the fix command once before giving up.
    """
    host = host or host_triple()
    install = pin.install if install is None else install
    problems, name = _problems(pin, host)
    if problems and install:
        run(pin.install_command(), log=log)
        problems, name = _problems(pin, host)
    if problems:
        raise InputError(f"{'; '.join(problems)}; fix: `{command_line(pin.install_command())}`", key=TABLE)
    assert name is not None
    sysroot = Path(rustup_run(name, "rustc", "--print", "sysroot").strip())
    return Toolchain(pin=pin, host=host, sysroot=sysroot, backend_library=_backend_library(pin, sysroot, host),
                     json_target_spec_flag="json-target-spec" in rustup_run(name, "cargo", "-Z", "help"))


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

