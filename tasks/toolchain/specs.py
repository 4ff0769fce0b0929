"""Target specs rendered from one template each, into the build directory.

The userspace spec names the CRT objects and ``-L`` of *this* build's sysroot by absolute path (rust-lld finds
nothing by itself), so the spec is generated per build directory and never committed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ..atomic import write_text_if_changed
from ..errors import InputError
from ..templating import render


class SpecKind(StrEnum):
    KERNEL = "kernel"
    USERSPACE = "userspace"


@dataclass(frozen=True)
class ArchParameters:
    data_layout: str
    features: str
    # Cranelift has no 128-bit atomics on aarch64.
    max_atomic_width: int


ARCHES: dict[str, ArchParameters] = {
    "aarch64": ArchParameters(
        data_layout="e-m:e-p270:32:32-p271:32:32-p272:64:64-i8:8:32-i16:16:32-i64:64-i128:128-n32:64-S128-Fn32",
        features="+v8a,+strict-align,+neon,+fp-armv8",
        max_atomic_width=64,
    ),
}


def spec_name(kind: SpecKind, arch: str) -> str:
    """The spec's target name (its file stem), which is also cargo's output directory under target/."""
    return {SpecKind.KERNEL: f"{arch}-unknown-none", SpecKind.USERSPACE: f"{arch}-unknown-redox-clif"}[kind]


def spec_path(out_dir: Path, kind: SpecKind, arch: str) -> Path:
    return out_dir / f"{spec_name(kind, arch)}.json"


def render_spec(kind: SpecKind, arch: str, sysroot: Path) -> str:
    """The spec text; ``sysroot`` is the directory holding ``lib/crt0.o`` (absolute)."""
    parameters = ARCHES.get(arch)
    if parameters is None:
        raise InputError(f"no target spec parameters for architecture {arch!r} (known: {', '.join(ARCHES)})",
                         key="target")
    if not sysroot.is_absolute() or any(char.isspace() for char in str(sysroot)):
        # The path is pasted into linker arguments and RUSTFLAGS, which split on whitespace.
        raise InputError(f"sysroot must be an absolute path without whitespace: {sysroot}", key="build")
    text = render(f"target-{kind.value}.json.j2", arch=arch, sysroot_lib=str(sysroot / "lib"),
                  data_layout=parameters.data_layout, features=parameters.features,
                  max_atomic_width=parameters.max_atomic_width)
    json.loads(text)  # a template edit that breaks JSON fails here, not inside rustc
    return text


def write_specs(out_dir: Path, arch: str, sysroot: Path) -> dict[SpecKind, Path]:
    """Render both specs into ``out_dir`` (e.g. ``build/aarch64``); a file whose text is unchanged keeps its mtime."""
    written = {}
    for kind in SpecKind:
        path = spec_path(out_dir, kind, arch)
        text = render_spec(kind, arch, sysroot)
        write_text_if_changed(path, text)
        written[kind] = path
    return written
