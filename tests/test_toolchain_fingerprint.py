"""The pinned toolchain's fingerprint is computed with rustup once, then recognised from its files' stats."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tasks.errors import CommandError
from tasks.layout import Layout
from tasks.settings import Settings
from tasks.toolchain.installed import installed_toolchains
from tasks.toolchain.pin import ToolchainPin
from tasks.toolchain.selected import SelectedToolchain
from tasks.toolchain.specs import write_specs
from tests.trees import make_tree

pytestmark = pytest.mark.skipif(shutil.which("rustup") is None, reason="rustup is not installed")


def installed_nightly() -> str:
    name = next((name for name in installed_toolchains() if name.startswith("nightly")), None)
    if name is None:
        pytest.fail("no nightly toolchain: this machine kind ships one (rustup toolchain list)")
    return name.removesuffix(f"-{os.uname().machine}-unknown-linux-gnu")


def toolchain_for(root: Path, channel: str) -> SelectedToolchain:
    settings = Settings(root=root, config=root / "config/c.toml", build=root / "build")
    toolchain = SelectedToolchain(Layout(settings))
    # The real pin is the fork's nightly with Cranelift; here: the nightly this machine has, with LLVM.
    toolchain.__dict__["pin"] = ToolchainPin(channel=channel, backend="llvm", components=())
    return toolchain


def test_second_fingerprint_needs_no_rustup_until_a_spec_changes(tmp_path, monkeypatch):
    root = make_tree(tmp_path / "tree", {"a": ""}, {"c.toml": "[packages]\na = {}\n"})
    channel = installed_nightly()
    first = toolchain_for(root, channel)
    first.verified  # noqa: B018  (verifies with rustup, as the toolchain stage does before it renders the specs)
    write_specs(first.layout.arch_dir, first.settings.arch, first.layout.sysroot)
    fingerprint = first.fingerprint
    assert (root / "build/cache/toolchain-fingerprint.json").is_file()

    # Without rustup (nor rustc or cargo) on PATH, only the stats can answer: they do.
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert toolchain_for(root, channel).fingerprint == fingerprint

    # An edited target spec changes the key: computing again needs rustup, and fails without it.
    spec = next(iter(first.specs().values()))
    spec.write_text(spec.read_text().replace('"panic-strategy"', '"panic-strategy" ', 1))
    with pytest.raises(CommandError, match="command not found: rustup"):
        toolchain_for(root, channel).fingerprint
    monkeypatch.undo()
    assert toolchain_for(root, channel).fingerprint != fingerprint
