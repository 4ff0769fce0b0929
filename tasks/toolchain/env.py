"""The environment and cargo arguments of every build, from one place.

Target builds (kernel, relibc, userspace) use the selected installation, the backend, the generated target spec
and ``-Zbuild-std``; host builds use the host triple and whatever toolchain the caller's environment selects. What
differs between the Cranelift and the LLVM backend is only what the backend requires: the backend flag, LTO off and
``compiler_builtins/no-f16-f128`` for Cranelift (which cannot lower f16/f128); what differs between installations
is how cargo is reached (``RUSTUP_TOOLCHAIN``, or ``PATH`` and ``RUSTC``), ``RUSTC_BOOTSTRAP=1`` for a release
compiler, and where the binutils and the linker are.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from ..process import child_env
from ..settings import host_triple
from ..templating import template_path
from .installed import Toolchain
from .specs import SpecKind

# sccache and friends break custom codegen backends; encoded flags would silently override RUSTFLAGS.
UNSET = ("RUSTC_WRAPPER", "CARGO_BUILD_RUSTC_WRAPPER", "CC_WRAPPER", "CARGO_ENCODED_RUSTFLAGS")


class ArtifactKind(StrEnum):
    KERNEL = "kernel"
    RELIBC = "relibc"
    USERSPACE = "userspace"
    BOOTSTRAP = "bootstrap"


# The target spec each kind is compiled for.
SPEC: dict[ArtifactKind, SpecKind] = {
    ArtifactKind.KERNEL: SpecKind.KERNEL,
    ArtifactKind.RELIBC: SpecKind.USERSPACE,
    ArtifactKind.USERSPACE: SpecKind.USERSPACE,
    ArtifactKind.BOOTSTRAP: SpecKind.BOOTSTRAP,
}


BUILD_STD: dict[ArtifactKind, tuple[str, ...]] = {
    ArtifactKind.KERNEL: ("core", "alloc"),
    ArtifactKind.RELIBC: ("core", "alloc"),
    ArtifactKind.USERSPACE: ("std", "core", "alloc", "panic_abort"),
    ArtifactKind.BOOTSTRAP: ("core", "alloc", "compiler_builtins"),
}
# The kernel and the bootstrap have no libc to provide memcpy & co.; relibc provides them itself.
BUILD_STD_FEATURES: dict[ArtifactKind, tuple[str, ...]] = {
    ArtifactKind.KERNEL: ("compiler-builtins-mem",),
    ArtifactKind.RELIBC: (),
    ArtifactKind.USERSPACE: (),
    ArtifactKind.BOOTSTRAP: ("compiler-builtins-mem",),
}
CRANELIFT_BUILD_STD_FEATURES = ("compiler_builtins/no-f16-f128",)  # Cranelift cannot lower f16/f128
# The kinds linked against relibc, whose headers (the sysroot's include/) C code for the target compiles with.
LIBC_KINDS = (ArtifactKind.RELIBC, ArtifactKind.USERSPACE)
# What a crate gets for a compiler the target has none of: one clear error, never the host's compiler.
NO_COMPILER = "no_target_compiler"
KIND_RUSTFLAGS: dict[ArtifactKind, tuple[str, ...]] = {
    ArtifactKind.KERNEL: ("-C", "relocation-model=static"),
    ArtifactKind.RELIBC: (),
    # `-z muldefs` links where `--allow-multiple-definition` produced binaries that crashed at run time.
    ArtifactKind.USERSPACE: ("-C", "panic=abort", "-C", "link-arg=-z", "-C", "link-arg=muldefs"),
    ArtifactKind.BOOTSTRAP: (),  # a staticlib: the recipe links it (rust-lld -T src/<arch>.ld)
}


@dataclass(frozen=True)
class CargoBuild:
    """How to run cargo (and the tools around it) for one kind of artifact."""

    target: str              # cargo --target: a triple, or the absolute path of a .json spec
    target_name: str         # cargo's output directory under target/ (the spec's file stem)
    set: Mapping[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = UNSET
    cargo_flags: tuple[str, ...] = ()   # -Z flags that follow the cargo subcommand
    strip: str = "strip"

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        return child_env(set=dict(self.set), unset=self.unset, base=base)

    def with_path(self, directories: Sequence[Path]) -> "CargoBuild":
        """The same build with ``directories`` first on its PATH (which else is this process's)."""
        path = self.set.get("PATH") or os.environ.get("PATH", os.defpath)
        return replace(self, set={**self.set, "PATH": os.pathsep.join([*map(str, directories), path])})

    def with_wrapper(self, env: Mapping[str, str]) -> "CargoBuild":
        """The same build with a compiler wrapper (``RUSTC_WRAPPER`` and its configuration in ``env``)."""
        return replace(self, set={**self.set, **env}, unset=tuple(name for name in self.unset if name not in env))

    def cargo_argv(self, subcommand: str, *args: str) -> list[str]:
        return ["cargo", subcommand, "--target", self.target, *self.cargo_flags, *args]


def _library_path(name: str, directory: Path, base: Mapping[str, str]) -> str:
    existing = base.get(name, "")
    return f"{directory}:{existing}" if existing else str(directory)


def target_build(toolchain: Toolchain, kind: ArtifactKind, *, spec: Path, sysroot: Path,
                 extra_rustflags: Sequence[str] = (), base: Mapping[str, str] | None = None) -> CargoBuild:
    """The cargo build of a Redox artifact: pinned toolchain, backend, ``spec`` (absolute), ``sysroot`` (the
    directory whose ``lib/`` holds libc.a and the CRT objects), ``-Zbuild-std`` for ``kind``.

    ``base`` (default: this process's environment) only supplies existing library search paths to extend.
    """
    base = os.environ if base is None else base
    rustflags: list[str] = []
    if toolchain.codegen_backend is not None:
        rustflags.append(f"-Zcodegen-backend={toolchain.codegen_backend}")
    if kind is ArtifactKind.USERSPACE:
        rustflags += ["-L", str(sysroot / "lib")]
    rustflags += [*KIND_RUSTFLAGS[kind], *extra_rustflags]
    target_name = spec.stem
    linker = str(toolchain.tool("rust-lld"))
    env = {
        **toolchain.env(base),
        "CARGO_INCREMENTAL": "0",
        "RUSTFLAGS": " ".join(rustflags),
        "AR": str(toolchain.tool("llvm-ar")),
        "STRIP": str(toolchain.tool("llvm-strip")),
        "OBJCOPY": str(toolchain.tool("llvm-objcopy")),
        "NM": str(toolchain.tool("llvm-nm")),
        # llvm-tools ships no llvm-ranlib; `llvm-ar s` is ranlib (as the fork's scripts use it).
        "RANLIB": f"{toolchain.tool('llvm-ar')} s",
        "RUST_LLD": linker,
        f"CARGO_TARGET_{target_name.upper().replace('-', '_')}_LINKER": linker,
        # The fork's target specs have no dynamic linking (no ld.so): the prelude's DYNAMIC_INIT keeps every recipe
        # static, whatever the backend.
        "COOKBOOK_STATIC": "1",
        **target_compilers(toolchain, kind, target_name, sysroot),
    }
    if toolchain.pin.uses_cranelift:
        # Cranelift has no LTO; a crate's profile asking for it would fail the build.
        env |= {"CARGO_PROFILE_RELEASE_LTO": "off", "CARGO_PROFILE_DEV_LTO": "off", "COOKBOOK_CRANELIFT": "1"}
    if toolchain.pin.backend_path is not None:
        # A self-built backend library links against the toolchain's librustc_driver.
        env["LD_LIBRARY_PATH"] = _library_path("LD_LIBRARY_PATH", toolchain.lib_dir, base)
        env["DYLD_LIBRARY_PATH"] = _library_path("DYLD_LIBRARY_PATH", toolchain.lib_dir, base)
    features = [*BUILD_STD_FEATURES[kind], *(CRANELIFT_BUILD_STD_FEATURES if toolchain.pin.uses_cranelift else ())]
    flags = [f"-Zbuild-std={','.join(BUILD_STD[kind])}"]
    if features:
        flags.append(f"-Zbuild-std-features={','.join(features)}")
    if toolchain.json_target_spec_flag:
        # In the environment, not on the command line: a plain `cargo build --target x.json` in a recipe's own
        # Makefile (the fork's kernel has one) accepts the JSON target too.
        env["CARGO_UNSTABLE_JSON_TARGET_SPEC"] = "true"
    return CargoBuild(target=str(spec), target_name=target_name, set=env, cargo_flags=tuple(flags),
                      strip=env["STRIP"])


def target_compilers(toolchain: Toolchain, kind: ArtifactKind, target_name: str, sysroot: Path) -> dict[str, str]:
    """cc-rs's variables for the target (``CC_<spec>`` and friends, which it reads before ``CC``): clang for the
    target with relibc's headers where the kind links relibc and clang was found; otherwise, and for C++ (no C++
    library is built for Redox here), a stand-in that fails naming the crate. Without them cc-rs takes the host's
    ``cc`` and the link fails far away on x86 objects (or ``arm_neon.h: No such file``)."""
    key = target_name.replace("-", "_")
    refuse = str(template_path(NO_COMPILER))
    compilers = {f"CC_{key}": f"{refuse} C", f"CXX_{key}": f"{refuse} C++", f"AR_{key}": str(toolchain.tool("llvm-ar"))}
    clang = toolchain.tools.get("clang")
    if kind in LIBC_KINDS and clang is not None:
        arch = target_name.split("-")[0]
        # clang knows no Redox: it defines what Redox's own GCC does, and reads relibc's headers, not the host's.
        compilers[f"CC_{key}"] = str(clang)
        compilers[f"CFLAGS_{key}"] = " ".join([f"--target={arch}-unknown-redox", "-nostdlibinc", "-isystem",
                                               str(sysroot / "include"), "-D__redox__", "-D__unix__"])
    return compilers


def host_build(toolchain: Toolchain | None = None) -> CargoBuild:
    """A build for this machine (``host:`` recipes): host triple, no backend or build-std; the toolchain's
    llvm-strip when it has one, else the system strip."""
    host = host_triple()
    strip = toolchain.tool("llvm-strip") if toolchain is not None else None
    return CargoBuild(target=host, target_name=host, set={"CARGO_INCREMENTAL": "0"},
                      strip=str(strip) if strip is not None and strip.exists() else "strip")
