"""Choosing the Rust installation per tree and per command, through the real CLI: ``doit toolchain rust=/usr
backend=llvm`` on a fresh build directory checks Debian's rustc-web and renders the specs; the tree's own pin (its
pyproject.toml) selects the installation through the build's environment; the sources' rust-toolchain.toml files
are never written, only reported where they name another channel."""
from __future__ import annotations

import json

from tests.test_toolchain import needs_debian_rust
from tests.trees import make_tree

TREE_PIN = '[tool.redox.toolchain]\nchannel = "nightly-2026-05-01"\nbackend = "llvm"\ncomponents = ["rust-src"]\n'
OLD_PIN = '# the users\' comment stays\n[toolchain]\nchannel = "nightly-2025-01-01"\n'


def tree_with_a_pinned_source(root):
    make_tree(root, {"core/app": '[source]\ngit = "https://example.org/app.git"\n[build]\ntemplate = "cargo"\n'},
              {"c.toml": "[packages]\napp = {}\n"})
    (root / "recipes/core/app/source").mkdir()
    (root / "recipes/core/app/source/rust-toolchain.toml").write_text(OLD_PIN)
    (root / "pyproject.toml").write_text(TREE_PIN)
    return root


@needs_debian_rust
def test_doit_toolchain_on_a_fresh_build_directory_with_an_installation_chosen_by_directory(tmp_path, doit):
    tree = tree_with_a_pinned_source(tmp_path / "tree")
    args = ("toolchain", f"root={tree}", "config=config/c.toml", "rust=/usr", "backend=llvm")
    first = doit(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Traceback" not in first.stdout + first.stderr
    specs = sorted(path.name for path in (tree / "build/aarch64").glob("*.json"))
    assert specs == ["aarch64-unknown-none.json", "aarch64-unknown-redox-clif-bootstrap.json",
                     "aarch64-unknown-redox-clif.json"]
    # rustc-web 1.96 loads the soft-float kernel spec only with rustc-abi (detected by the toolchain stage)
    assert json.loads((tree / "build/aarch64/aarch64-unknown-none.json").read_text())["rustc-abi"] == "softfloat"
    pin_file = tree / "recipes/core/app/source/rust-toolchain.toml"
    assert pin_file.read_text() == OLD_PIN  # a build never writes into the user's sources
    assert (f"toolchain: {pin_file} names nightly-2025-01-01; the build uses /usr (its environment overrides the "
            "file, which is left as it is)") in first.stdout
    written = pin_file.stat().st_mtime_ns
    again = doit(*args)
    assert again.returncode == 0 and ".  toolchain" not in again.stdout, again.stdout + again.stderr
    assert pin_file.stat().st_mtime_ns == written


def test_a_directory_that_holds_no_rust_is_named_as_the_setting(tmp_path, doit):
    tree = tree_with_a_pinned_source(tmp_path / "tree")
    result = doit("toolchain", f"root={tree}", "config=config/c.toml", f"rust={tmp_path}/nowhere", "backend=llvm")
    assert result.returncode != 0
    assert f"not a Rust installation: no bin/rustc or bin/cargo in {tmp_path}/nowhere" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
