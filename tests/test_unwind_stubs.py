"""The sysroot's libgcc_eh.a (tasks/cookbook/unwind.py): the project's own unwinder stubs, compiled for real for the
userspace target by Debian's toolchain, define every unwinder function the target's std references — derived from
std's own objects, not a list kept by hand (issue 18, item 2). A std program that takes a backtrace links against it
and runs in the real tree's guest (tests/test_real_tree.py)."""
from __future__ import annotations

import shutil

import pytest

from tasks.cookbook import unwind
from tasks.cookbook.unwind import build_unwind_stubs, defined, referenced
from tasks.errors import BuildError
from tasks.process import run
from tasks.toolchain.env import ArtifactKind, target_build
from tasks.toolchain.installed import verify_toolchain
from tasks.toolchain.pin import ToolchainPin
from tasks.toolchain.specs import SpecKind, write_specs
from tests.conftest import PROJECT
from tests.test_toolchain import DEBIAN, needs_debian_rust

CARGO_CACHE = PROJECT / "build" / "test-cargo"  # shared by the runs of this machine; CI starts without it
pytestmark = [pytest.mark.slow, needs_debian_rust]


@pytest.fixture(scope="module")
def userspace():
    toolchain = verify_toolchain(ToolchainPin(path=DEBIAN, backend="llvm", components=()))
    arch_dir = CARGO_CACHE / "aarch64"
    spec = write_specs(arch_dir, "aarch64", arch_dir / "sysroot")[SpecKind.USERSPACE]
    return toolchain, target_build(toolchain, ArtifactKind.USERSPACE, spec=spec, sysroot=arch_dir / "sysroot")


def test_libgcc_eh_defines_every_unwinder_function_the_targets_std_references(userspace, tmp_path) -> None:
    toolchain, cargo = userspace
    nm = str(toolchain.tool("llvm-nm"))
    archive = build_unwind_stubs(cargo, CARGO_CACHE / "unwind-stubs", tmp_path / "libgcc_eh.a",
                                 ar=str(toolchain.tool("llvm-ar")), nm=nm, log=tmp_path / "unwind.log")
    deps = CARGO_CACHE / "unwind-stubs" / cargo.target_name / "release" / "deps"
    std = referenced(nm, deps.glob("libstd-*.rlib"))
    # What the fork's two stubs lacked: std's backtrace code needs the frame address and the enclosing function.
    assert {"_Unwind_Backtrace", "_Unwind_GetIP", "_Unwind_GetCFA", "_Unwind_FindEnclosingFunction"} <= std
    assert referenced(nm, deps.glob("*.rlib")) <= defined(nm, archive)
    members = run([toolchain.tool("llvm-ar"), "t", archive], capture=True).split()
    assert len(members) == 1 and members[0].startswith("unwind_stubs-"), "one object, no copy of core"


def test_stubs_that_lack_a_function_std_references_stop_the_build_naming_it(userspace, tmp_path,
                                                                            monkeypatch) -> None:
    toolchain, cargo = userspace
    crate = shutil.copytree(unwind.CRATE, tmp_path / "unwind_stubs")
    source = crate / "src/lib.rs"
    text = source.read_text()
    start = text.index("#[no_mangle]\npub extern \"C\" fn _Unwind_GetCFA")
    source.write_text(text[:start] + text[text.index("#[no_mangle]", start + 1):])
    monkeypatch.setattr(unwind, "CRATE", crate)
    archive = tmp_path / "libgcc_eh.a"
    target_dir = CARGO_CACHE / "unwind-stubs"  # shared for std's sake: the copy's outputs go after the test
    try:
        with pytest.raises(BuildError, match=r"references _Unwind_GetCFA, which the unwinder stubs do not define"):
            build_unwind_stubs(cargo, target_dir, archive, ar=str(toolchain.tool("llvm-ar")),
                               nm=str(toolchain.tool("llvm-nm")), log=tmp_path / "unwind.log")
    finally:
        # the copy has the crate's name and version, so its outputs carry the real crate's file names: left here,
        # the next build of the real crate would be "fresh" with the copy's object
        release = target_dir / cargo.target_name / "release"
        for stale in [*release.glob("deps/*unwind_stubs-*"), *release.glob(".fingerprint/unwind_stubs-*"),
                      *release.glob("libunwind_stubs.*")]:
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    assert not archive.exists()
