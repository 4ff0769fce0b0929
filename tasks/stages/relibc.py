"""``relibc``: relibc's stage made into the sysroot every target userspace build links against
(``build/<arch>/sysroot``: libc.a and the CRT objects, merged as the fork does). A host build links against the
host's libc: then this stage only orders what it gathers."""
from __future__ import annotations

from pathlib import Path

from ..model.graph import Node
from ..toolchain.selected import SelectedToolchain
from .stage import Dep, Stage, task_name

RELIBC = Node("relibc")


class Relibc(Stage):
    """Build relibc and assemble the sysroot every userspace build links against"""

    name = "relibc"

    @property
    def toolchain(self) -> SelectedToolchain:
        return self.ctx.shared(SelectedToolchain, self.layout)

    def needed(self) -> bool:
        return RELIBC in self.graph.steps and not self.toolchain.host_only

    def deps(self) -> list[Dep]:
        cook = [Dep(task_name("cook", RELIBC))] if RELIBC in self.graph.steps else []
        return [Dep("toolchain", order_only=True), *cook]  # the toolchain: by its fingerprint

    def inputs(self) -> dict[str, str]:
        return {"toolchain": self.toolchain.fingerprint}

    def outputs(self) -> list[Path]:
        return [self.layout.sysroot]

    def run(self) -> None:
        from ..cookbook.relibc import assemble_relibc_sysroot
        tools = self.toolchain.verified
        assemble_relibc_sysroot(self.layout.stage(RELIBC), self.layout.sysroot, ar=str(tools.tool("llvm-ar")),
                                rust_lld=str(tools.tool("rust-lld")), log=self.layout.log("relibc"))
