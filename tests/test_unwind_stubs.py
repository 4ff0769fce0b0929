"""The sysroot's libgcc_eh.a (tasks/cookbook/unwind.py): the project's own unwinder stubs, compiled for real for the
userspace target by Debian's toolchain, define what std programs link on Redox (issue 11, item 5)."""
from __future__ import annotations

import pytest

from tasks.cookbook.unwind import SYMBOLS, build_unwind_stubs
from tasks.process import run
from tasks.toolchain.env import ArtifactKind, target_build
from tasks.toolchain.installed import verify_toolchain
from tasks.toolchain.pin import ToolchainPin
from tasks.toolchain.specs import SpecKind, write_specs
from tests.conftest import PROJECT
from tests.test_toolchain import DEBIAN, needs_debian_rust

CARGO_CACHE = PROJECT / "build" / "test-cargo"  # shared by the runs of this machine; CI starts without it
pytestmark = [pytest.mark.slow, needs_debian_rust]


def test_libgcc_eh_defines_the_unwinder_entry_points(tmp_path) -> None:
    toolchain = verify_toolchain(ToolchainPin(path=DEBIAN, backend="llvm", components=()))
    arch_dir = CARGO_CACHE / "aarch64"
    spec = write_specs(arch_dir, "aarch64", arch_dir / "sysroot")[SpecKind.USERSPACE]
    cargo = target_build(toolchain, ArtifactKind.RELIBC, spec=spec, sysroot=arch_dir / "sysroot")
    archive = build_unwind_stubs(cargo, CARGO_CACHE / "unwind-stubs", tmp_path / "libgcc_eh.a",
                                 ar=str(toolchain.tool("llvm-ar")), log=tmp_path / "unwind.log")
    listing = run([toolchain.tool("llvm-nm"), archive], capture=True)
    defined = {line.split()[-1] for line in listing.splitlines() if " T " in line}
    assert set(SYMBOLS) <= defined
    members = run([toolchain.tool("llvm-ar"), "t", archive], capture=True).split()
    assert len(members) == 1 and members[0].startswith("unwind_stubs-"), "one object, no copy of core"
