"""The toolchain: one pin, what is installed, target specs, the build environment, the fingerprint.

Nothing here knows doit; the ``toolchain`` task calls :func:`load_pin`, :func:`write_pins`,
:func:`verify_toolchain`, :func:`write_specs` and :func:`fingerprint`.
"""
from .env import BUILD_STD, ArtifactKind, CargoBuild, host_build, target_build
from .fingerprint import fingerprint, fingerprint_parts
from .installed import Toolchain, verify_toolchain
from .pin import CodegenBackend, ToolchainPin, find_toolchain_files, load_pin, write_pins
from .specs import SpecKind, render_spec, spec_name, spec_path, write_specs

__all__ = [
    "ArtifactKind", "BUILD_STD", "CargoBuild", "CodegenBackend", "SpecKind", "Toolchain", "ToolchainPin",
    "find_toolchain_files", "fingerprint", "fingerprint_parts", "host_build", "load_pin", "render_spec",
    "spec_name", "spec_path", "target_build", "verify_toolchain", "write_pins", "write_specs",
]
