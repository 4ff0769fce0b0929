"""``toolchain``: the pinned Rust toolchain and codegen backend checked (with the command that installs what is
missing), the target specs rendered (with the fields its compiler accepts), and the sources' ``rust-toolchain.toml``
files that name another channel reported (builds use the pin through their environment; the sources are never
written). A host build (``toolchain=host``) has nothing to check."""
from __future__ import annotations

from pathlib import Path

from ..toolchain.selected import SelectedToolchain
from .stage import Stage


class Toolchain(Stage):
    """Check the pinned Rust toolchain and codegen backend; render the target specs"""

    name = "toolchain"
    data = ("templates/target-kernel.json.j2", "templates/target-userspace.json.j2",
            "templates/target-bootstrap.json.j2")

    @property
    def toolchain(self) -> SelectedToolchain:
        return self.ctx.shared(SelectedToolchain, self.layout)

    def recipes(self) -> list[str]:
        return []  # its fingerprint: the compiler and the target specs, never a recipe's files

    def inputs(self) -> dict[str, str]:
        return {"toolchain": self.toolchain.fingerprint}

    def outputs(self) -> list[Path]:
        return [] if self.toolchain.host_only else list(self.toolchain.specs().values())

    def run(self) -> None:
        from ..errors import display_path
        from ..toolchain.pin import disagreeing_pins
        from ..toolchain.specs import write_specs
        if self.toolchain.host_only:
            return
        self.toolchain.verified  # noqa: B018  (raises with the fix command when something is missing)
        sources = [recipe.source_dir for recipe in self.graph.sources.values()]
        for path, channel in disagreeing_pins(self.toolchain.pin, [path for path in sources if path.is_dir()]):
            print(f"toolchain: {display_path(path)} names {channel}; the build uses {self.toolchain.pin.name} "
                  "(its environment overrides the file, which is left as it is)")
        write_specs(self.layout.arch_dir, self.settings.arch, self.layout.sysroot, self.toolchain.spec_fields)
