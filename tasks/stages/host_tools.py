"""``host-tools``: the host tools the image stage runs, built for this machine: the upstream ``redox_installer`` and
``redoxfs`` — from the tree's own source of the tool when its recipe is in the graph and fetched (``cargo install
--path`` into ``build/host/``), else the pinned release from crates.io (cached per user) — and this project's own
``redox-image`` (``tools/redox-image``: the image's files without FUSE; cached per user by its source's digest)."""
from __future__ import annotations

from pathlib import Path

from ..model.graph import Node
from ..toolchain import hosttools
from .stage import Stage

HOST_TOOLS = ("redox_installer", "redoxfs")


class HostTools(Stage):
    """Build the host tools the image needs: redox_installer, redoxfs (the tree's or pinned), redox-image"""

    name = "host-tools"

    def inputs(self) -> dict[str, str]:
        components = {}
        for name in HOST_TOOLS:
            source = self._source(name)
            pinned = hosttools.PINNED[name]
            components[name] = self.ctx.trees.hash(source).digest if source else f"{pinned.crate} {pinned.version}"
        return {**components, **{name: hosttools.own_source_digest(name) for name in hosttools.OWN}}

    def outputs(self) -> list[Path]:
        bins = []
        for name in HOST_TOOLS:
            root = hosttools.source_install_root(name, self.settings.build) if self._source(name) else \
                hosttools.install_root(name)
            bins += [root / "bin" / binary for binary in hosttools.PINNED[name].binaries]
        for name, (_, binaries) in hosttools.OWN.items():
            root = hosttools.install_root(f"{name}-{hosttools.own_source_digest(name)[:16]}")
            bins += [root / "bin" / binary for binary in binaries]
        return bins

    def run(self) -> None:
        for name in HOST_TOOLS:
            if (source := self._source(name)) is not None:
                hosttools.install_from_source(name, source, self.settings.build)
            else:
                hosttools.ensure(name, self.settings.build)
        for name in hosttools.OWN:
            hosttools.ensure_own(name, log=self.layout.log(self.name))

    def recipes(self) -> list[str]:
        """The recipes of the tools, whose sources it builds when the graph has them."""
        return self.with_sources([name for name in HOST_TOOLS if Node(name) in self.graph.steps])

    def _source(self, name: str) -> Path | None:
        """The tree's own source of a host tool, when it builds every binary the project runs; None: the pinned
        release from crates.io."""
        step = self.graph.steps.get(Node(name))
        source = self.ctx.project.source_dir(step) if step is not None else None
        if source is None or not set(hosttools.PINNED[name].binaries) <= hosttools.declared_binaries(source):
            return None
        return source
