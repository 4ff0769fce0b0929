"""The real pipeline through the doit CLI on a small tree built for the host triple (no Redox toolchain here)."""
from __future__ import annotations

import subprocess

import pytest

from tasks.formats import pkgar, pkgkeys
from tasks.settings import host_triple
from tests.trees import make_tree

HELLO_CARGO = '[package]\nname = "hello"\nversion = "0.1.0"\nedition = "2021"\n'


@pytest.fixture
def tree(tmp_path):
    root = make_tree(tmp_path / "tree", {
        "hello": '[source]\npath = "../../src/hello"\n[build]\ntemplate = "cargo"\n[package]\nversion = "1.2.3"\n',
        "meta": '[package]\ndependencies = ["hello"]\n',
    }, {"c.toml": '[packages]\nmeta = {}\n'})
    source = tmp_path / "tree/src/hello"
    (source / "src").mkdir(parents=True)
    (source / "Cargo.toml").write_text(HELLO_CARGO)
    (source / "src/main.rs").write_text('fn main() { println!("hello from the stage"); }\n')
    return root


@pytest.mark.slow
def test_pkg_builds_packages_into_the_local_repository(tree, doit):
    result = doit("pkg", f"root={tree}", "config=config/c.toml", f"target={host_triple()}")
    assert result.returncode == 0, result.stdout + result.stderr
    repo = tree / "build/cookbook/repo" / host_triple()
    binary = tree / "build" / host_triple() / "recipes/hello/stage/usr/bin/hello"
    assert subprocess.run([binary], capture_output=True, text=True).stdout == "hello from the stage\n"
    assert 'version = "1.2.3"' in (repo / "hello.toml").read_text()
    assert not (repo / "meta.pkgar").exists() and 'depends = [\n    "hello",\n]' in (repo / "meta.toml").read_text()
    key = pkgkeys.load_public_key(tree / "build/cookbook/build/id_ed25519.pub.toml")
    package = pkgar.open_package(repo / "hello.pkgar", key)
    assert [entry.path for entry in package.entries] == [b"usr/bin/hello"]


def test_a_failing_build_is_one_message_with_the_log(tree, doit):
    (tree / "src/hello/src/main.rs").write_text("fn main() { this is not rust }\n")
    result = doit("cook:hello", f"root={tree}", "config=config/c.toml", f"target={host_triple()}")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "cook hello: `" in output and "failed with exit status" in output
    assert "full log: " in output and "Traceback" not in output


def test_binary_rule_takes_the_package_from_the_prebuilt_directory(tmp_path, doit):
    root = make_tree(tmp_path / "tree", {"boot": '[source]\ngit = "https://example.org/unreachable.git"\n'
                                                 '[build]\ntemplate = "custom"\nscript = "false"\n'},
                     {"c.toml": '[packages]\nboot = "binary"\n'})
    prebuilt = tmp_path / "server"
    content = tmp_path / "content"
    (content / "boot").mkdir(parents=True)
    (content / "boot/bootloader.efi").write_bytes(b"MZ prebuilt")
    server_key = pkgkeys.generate()
    (prebuilt / host_triple()).mkdir(parents=True)
    pkgkeys.write_key_files(server_key, prebuilt / "id_ed25519.pub.toml", tmp_path / "secret.toml")
    pkgar.create(content, prebuilt / host_triple() / "boot.pkgar", server_key)
    args = ("pkg", f"root={root}", "config=config/c.toml", f"target={host_triple()}")

    missing = doit(*args)
    assert missing.returncode != 0
    assert f"{root}/build/prebuilt/{host_triple()}/boot.pkgar: boot is taken prebuilt (rule \"binary\")" in \
        missing.stdout + missing.stderr

    result = doit(*args, f"prebuilt={prebuilt}")
    assert result.returncode == 0, result.stdout + result.stderr
    stage = root / "build" / host_triple() / "recipes/boot/stage"
    assert (stage / "boot/bootloader.efi").read_bytes() == b"MZ prebuilt"
    ours = pkgkeys.load_public_key(root / "build/cookbook/build/id_ed25519.pub.toml")
    repackaged = pkgar.open_package(root / "build/cookbook/repo" / host_triple() / "boot.pkgar", ours)
    assert [entry.path for entry in repackaged.entries] == [b"boot/bootloader.efi"]


def test_host_tools_come_from_the_trees_own_source_when_it_has_one(tmp_path, doit):
    # A stand-in redoxfs crate (the real one takes minutes to build): the point is cargo install --path of the
    # tree's source, rebuilt when that source changes and not otherwise.
    root = make_tree(tmp_path / "tree", {"redoxfs": '[build]\ntemplate = "cargo"\n'},
                     {"c.toml": '[packages]\nredoxfs = {}\n'})
    source = root / "recipes/redoxfs/source"
    (source / "src/bin").mkdir(parents=True)
    (source / "Cargo.toml").write_text('[package]\nname = "redoxfs"\nversion = "0.0.1"\nedition = "2021"\n')
    for binary in ("redoxfs", "redoxfs-ar", "redoxfs-mkfs"):
        (source / f"src/bin/{binary}.rs").write_text(f'fn main() {{ println!("{binary} from the tree"); }}\n')
    args = ("host-tools", f"root={root}", "config=config/c.toml", f"target={host_triple()}")
    first = doit(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    tool = root / "build/host/redoxfs/bin/redoxfs-ar"
    assert subprocess.run([tool], capture_output=True, text=True).stdout == "redoxfs-ar from the tree\n"
    assert ".  host-tools" not in doit(*args).stdout
    (source / "src/bin/redoxfs-ar.rs").write_text('fn main() { println!("changed"); }\n')
    assert ".  host-tools" in doit(*args).stdout
    assert subprocess.run([tool], capture_output=True, text=True).stdout == "changed\n"


def test_a_trees_source_without_the_tools_binaries_is_no_host_tool_source(tmp_path):
    """The fork-shaped fixture's guest redoxfs builds `redoxfs` only: the host takes the pinned release then."""
    from tasks.toolchain.hosttools import PINNED, declared_binaries
    source = tmp_path / "redoxfs"
    (source / "src/bin").mkdir(parents=True)
    (source / "Cargo.toml").write_text('[package]\nname = "redoxfs"\n\n[[bin]]\nname = "redoxfs-mkfs"\npath = "m.rs"\n')
    (source / "src/main.rs").write_text("")
    (source / "src/bin/redoxfs-ar.rs").write_text("")
    assert declared_binaries(source) == set(PINNED["redoxfs"].binaries)
    (source / "src/bin/redoxfs-ar.rs").unlink()
    assert declared_binaries(source) == {"redoxfs", "redoxfs-mkfs"}
    assert declared_binaries(tmp_path / "elsewhere") == set()
