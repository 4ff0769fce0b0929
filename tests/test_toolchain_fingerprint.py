"""The pinned toolchain's fingerprint is computed with rustup once, then recognised from its files' stats."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tasks.build import Builder
from tasks.errors import CommandError
from tasks.project import Project
from tasks.settings import Settings
from tasks.toolchain import ToolchainPin
from tasks.toolchain.installed import installed_toolchains
from tests.trees import make_tree

pytestmark = pytest.mark.skipif(shutil.which("rustup") is None, reason="rustup is not installed")


def installed_nightly() -> str:
    name = next((name for name in installed_toolchains() if name.startswith("nightly")), None)
    if name is None:
        pytest.fail("no nightly toolchain: this machine kind ships one (rustup toolchain list)")
    return name.removesuffix(f"-{os.uname().machine}-unknown-linux-gnu")


def builder_for(root: Path, channel: str) -> Builder:
    settings = Settings(root=root, config=root / "config/c.toml", build_dir=root / "build")
    builder = Builder(Project.load(settings))
    # The real pin is the fork's nightly with Cranelift; here: the nightly this machine has, with LLVM.
    builder.__dict__["pin"] = ToolchainPin(channel=channel, backend="llvm", components=())
    return builder


def test_second_fingerprint_needs_no_rustup_until_a_spec_changes(tmp_path, monkeypatch):
    root = make_tree(tmp_path / "tree", {"a": ""}, {"c.toml": "[packages]\na = {}\n"})
    channel = installed_nightly()
    first = builder_for(root, channel)
    first.prepare_toolchain()  # verifies with rustup and renders the target specs
    fingerprint = first.fingerprint()
    assert (root / "build/cache/toolchain-fingerprint.json").is_file()

    # Without rustup (nor rustc or cargo) on PATH, only the stats can answer: they do.
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert builder_for(root, channel).fingerprint() == fingerprint

    # An edited target spec changes the key: computing again needs rustup, and fails without it.
    spec = next(iter(first.specs().values()))
    spec.write_text(spec.read_text().replace('"panic-strategy"', '"panic-strategy" ', 1))
    with pytest.raises(CommandError, match="command not found: rustup"):
        builder_for(root, channel).fingerprint()
    monkeypatch.undo()
    assert builder_for(root, channel).fingerprint() != fingerprint
