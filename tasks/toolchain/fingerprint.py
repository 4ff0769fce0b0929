"""The toolchain fingerprint: what every target build's signature must include so that a new rustc, another
backend library, an edited target spec or other binutils rebuild everything compiled with them."""
from __future__ import annotations

from collections.abc import Mapping

from ..hashing import hash_file, hash_value
from .installed import Toolchain


def fingerprint_parts(toolchain: Toolchain, specs: Mapping[str, str]) -> dict[str, object]:
    """The inputs of :func:`fingerprint`, readable (for `doit info` and "why is this stale"); ``specs``: each target
    spec's file name and content hash."""
    backend = None
    if toolchain.codegen_backend is not None:
        library = toolchain.backend_library
        backend = {"name": toolchain.codegen_backend,
                   "file": str(library) if library else None,
                   "hash": hash_file(library) if library else None}
    return {
        "rustc": toolchain.output("rustc", "-vV").strip(),
        "backend": backend,
        "specs": dict(sorted(specs.items())),
        "tools": {name: str(path) for name, path in sorted(toolchain.tools.items())},
    }


def fingerprint(toolchain: Toolchain, specs: Mapping[str, str]) -> str:
    return hash_value(fingerprint_parts(toolchain, specs))
