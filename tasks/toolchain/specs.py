"""Target specs rendered from one template each, into the build directory.

The userspace spec names the CRT objects and ``-L`` of *this* build's sysroot by absolute path (rust-lld finds
nothing by itself), so the spec is generated per build directory and never committed.

Some fields are not accepted by every compiler: the soft-float kernel needs ``"rustc-abi": "softfloat"`` on
rustc 1.96, which older ones reject. Such fields are detected — each candidate tried with ``rustc --print cfg``,
the first one loaded kept — not guessed from a version number (:func:`detect_fields`).
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import write_text_if_changed
from ..errors import BuildError, InputError
from ..templating import render

if TYPE_CHECKING:
    from .installed import Toolchain


class SpecKind(StrEnum):
    KERNEL = "kernel"
    USERSPACE = "userspace"
    BOOTSTRAP = "bootstrap"  # the first userspace program: a staticlib linked at a fixed address, no CRT, no libc


@dataclass(frozen=True)
class ArchParameters:
    data_layout: str
    features: str
    # The kernel saves no FP/SIMD registers on entry: it must not use them itself.
    kernel_features: str
    # Cranelift has no 128-bit atomics on aarch64.
    max_atomic_width: int


ARCHES: dict[str, ArchParameters] = {
    "aarch64": ArchParameters(
        data_layout="e-m:e-p270:32:32-p271:32:32-p272:64:64-i8:8:32-i16:16:32-i64:64-i128:128-n32:64-S128-Fn32",
        features="+v8a,+strict-align,+neon,+fp-armv8",
        kernel_features="+v8a,+strict-align,-neon,-fp-armv8",
        max_atomic_width=64,
    ),
}

# Per spec, the variants of the fields compilers disagree on, in order of preference (see the module's doc).
CANDIDATE_FIELDS: dict[SpecKind, tuple[dict[str, str], ...]] = {
    SpecKind.KERNEL: ({"rustc-abi": "softfloat"}, {}),
}

SpecFields = Mapping[SpecKind, Mapping[str, str]]


def spec_name(kind: SpecKind, arch: str) -> str:
    """The spec's target name (its file stem), which is also cargo's output directory under target/."""
    return {SpecKind.KERNEL: f"{arch}-unknown-none", SpecKind.USERSPACE: f"{arch}-unknown-redox-clif",
            SpecKind.BOOTSTRAP: f"{arch}-unknown-redox-clif-bootstrap"}[kind]


def spec_path(out_dir: Path, kind: SpecKind, arch: str) -> Path:
    return out_dir / f"{spec_name(kind, arch)}.json"


def render_spec(kind: SpecKind, arch: str, sysroot: Path, fields: Mapping[str, str] | None = None) -> str:
    """The spec text; ``sysroot`` is the directory holding ``lib/crt0.o`` (absolute); ``fields``: the detected
    ones (default: the first candidate of each)."""
    parameters = ARCHES.get(arch)
    if parameters is None:
        raise InputError(f"no target spec parameters for architecture {arch!r} (known: {', '.join(ARCHES)})",
                         key="target")
    if not sysroot.is_absolute() or any(char.isspace() for char in str(sysroot)):
        # The path is pasted into linker arguments and RUSTFLAGS, which split on whitespace.
        raise InputError(f"sysroot must be an absolute path without whitespace: {sysroot}", key="build")
    text = render(f"target-{kind.value}.json.j2", arch=arch, sysroot_lib=str(sysroot / "lib"),
                  data_layout=parameters.data_layout, features=parameters.features,
                  kernel_features=parameters.kernel_features, max_atomic_width=parameters.max_atomic_width)
    spec = json.loads(text)  # a template edit that breaks JSON fails here, not inside rustc
    extra = CANDIDATE_FIELDS.get(kind, ({},))[0] if fields is None else fields
    return text if not extra else json.dumps(spec | dict(extra), indent=4, sort_keys=True) + "\n"


def detect_fields(toolchain: Toolchain, arch: str) -> dict[SpecKind, dict[str, str]]:
    """For each spec with candidate fields, the first candidate the toolchain's rustc loads the spec with."""
    detected = {}
    with tempfile.TemporaryDirectory(prefix="redox-spec-") as scratch:
        for kind, candidates in CANDIDATE_FIELDS.items():
            errors = []
            for number, fields in enumerate(candidates):
                path = Path(scratch) / f"{number}-{spec_name(kind, arch)}.json"
                path.write_text(render_spec(kind, arch, Path(scratch), fields))
                try:
                    toolchain.output("rustc", "-Zunstable-options", "--print", "cfg", "--target", str(path))
                except BuildError as error:
                    errors.append(f"{json.dumps(fields)}: {error.reason}")
                    continue
                detected[kind] = fields
                break
            else:
                raise InputError(f"{toolchain.name}'s rustc loads the {kind.value} spec with none of its variants: "
                                 + "; ".join(errors), key="toolchain")
    return detected


def write_specs(out_dir: Path, arch: str, sysroot: Path, fields: SpecFields | None = None) -> dict[SpecKind, Path]:
    """Render every spec into ``out_dir`` (e.g. ``build/aarch64``); a file whose text is unchanged keeps its
    mtime."""
    written = {}
    for kind in SpecKind:
        path = spec_path(out_dir, kind, arch)
        write_text_if_changed(path, render_spec(kind, arch, sysroot, None if fields is None else fields.get(kind, {})))
        written[kind] = path
    return written
