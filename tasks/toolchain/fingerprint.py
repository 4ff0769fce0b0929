"""The toolchain fingerprint: what every target build's signature must include so that a new rustc, another
backend library or an edited target spec rebuilds everything compiled with them."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..hashing import hash_file, hash_value
from .installed import Toolchain, rustup_run


def fingerprint_parts(toolchain: Toolchain, specs: Iterable[Path]) -> dict[str, object]:
    """The inputs of :func:`fingerprint`, readable (for `doit info` and "why is this stale")."""
    backend = None
    if toolchain.codegen_backend is not None:
        library = toolchain.backend_library
        backend = {"name": toolchain.codegen_backend,
                   "file": str(library) if library else None,
                   "hash": hash_file(library) if library else None}
    return {
        "rustc": rustup_run(toolchain.name, "rustc", "-vV").strip(),
        "backend": backend,
        "specs": {path.name: hash_file(path) for path in sorted(specs)},
    }


def fingerprint(toolchain: Toolchain, specs: Iterable[Path]) -> str:
    return hash_value(fingerprint_parts(toolchain, specs))
