"""``relibc``: relibc's stage made into the sysroot every target userspace build links against
(``build/<arch>/sysroot``: libc.a and the CRT objects, merged as the fork does, and ``libgcc_eh.a``, the unwinder
stubs that std programs link, compiled from the project's own crate). A host build links against the host's libc:
then this stage only orders what it gathers."""
from __future__ import annotations

from pathlib import Path

from ..model.graph import Node
from ..toolchain.selected import SelectedToolchain
from .stage import Dep, Stage, task_name

RELIBC = Node("relibc")


class Relibc(Stage):
    """Build relibc and assemble the sysroot every userspace build links against"""

    name = "relibc"
    cached = True
    data = ("cookbook/unwind_stubs",)

    @property
    def toolchain(self) -> SelectedToolchain:
        return self.ctx.shared(SelectedToolchain, self.layout)

    def needed(self) -> bool:
        return RELIBC in self.graph.steps and not self.toolchain.host_only

    def recipes(self) -> list[str]:
        return []  # relibc's own files are cook:relibc's: this reads its stage, by its output hash

    def deps(self) -> list[Dep]:
        cook = [Dep(task_name("cook", RELIBC))] if RELIBC in self.graph.steps else []
        return [Dep("toolchain", order_only=True), *cook]  # the toolchain: by its fingerprint

    def inputs(self) -> dict[str, str]:
        return {"toolchain": self.toolchain.fingerprint}

    def outputs(self) -> list[Path]:
        return [self.layout.sysroot]

    def work_dirs(self) -> list[Path]:
        return [self.layout.cook_dir(RELIBC)]

    def run(self) -> None:
        from ..cookbook.relibc import assemble_relibc_sysroot
        from ..cookbook.unwind import ARCHIVE, build_unwind_stubs
        from ..toolchain.env import SPEC, ArtifactKind, target_build
        tools, work, log = self.toolchain.verified, self.layout.cook_dir(RELIBC), self.layout.log("relibc")
        # Compiled as the programs that link it are, so the std they link is built beside it and checked.
        cargo = target_build(tools, ArtifactKind.USERSPACE,
                             spec=self.toolchain.specs()[SPEC[ArtifactKind.USERSPACE]], sysroot=self.layout.sysroot)
        unwind = build_unwind_stubs(cargo, work / "unwind-stubs", work / ARCHIVE, ar=str(tools.tool("llvm-ar")),
                                    nm=str(tools.tool("llvm-nm")), log=log)
        assemble_relibc_sysroot(self.layout.stage(RELIBC), self.layout.sysroot, ar=str(tools.tool("llvm-ar")),
                                rust_lld=str(tools.tool("rust-lld")), libraries=[unwind], log=log)
