"""Installer configs: includes and merges exactly as the upstream installer; every corpus config resolves."""
from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

from tasks.model.config import PackageSpec, load_config
from tasks.settings import Settings


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_every_corpus_config_resolves(corpus):
    configs = sorted((corpus / "config").rglob("*.toml"))
    assert len(configs) == 38
    for path in configs:
        config = load_config(path)
        assert config.warnings == [], path
        assert all(config.packages[name] != "ignore" for name in config.wanted_packages)


def test_aarch64_desktop_falls_back_like_upstream_make(corpus):
    # The corpus has no config/aarch64/desktop.toml: upstream's mk/config.mk then uses config/desktop.toml.
    settings = Settings.from_vars({"root": str(corpus), "config": "config/aarch64/desktop.toml"})
    assert settings.config_file == corpus / "config/desktop.toml"
    config = load_config(settings.config_file)
    assert {"base", "kernel", "relibc", "ion"} <= set(config.wanted_packages)
    assert "orbterm" not in config.wanted_packages  # desktop.toml: orbterm = "ignore" over desktop-minimal's {}
    assert config.packages["orbterm"] == "ignore"
    # desktop (650) overrides server (512), which overrides minimal (196), which desktop-minimal (256) precedes
    assert config.general.filesystem_size == 650


def test_include_order_later_wins_and_self_wins_last(tmp_path):
    write(tmp_path / "a.toml", '[general]\nfilesystem_size = 100\nefi_partition_size = 2\n'
                               '[packages]\nx = {}\ny = {}\n[users.root]\npassword = "a"\nshell = "/bin/sh"\n'
                               '[[files]]\npath = "/a"\ndata = "a"\n')
    write(tmp_path / "sub/b.toml", '[general]\nfilesystem_size = 200\n[packages]\ny = "ignore"\n'
                                   '[users.root]\npassword = "b"\n[[files]]\npath = "/b"\ndata = "b"\n')
    top = write(tmp_path / "top.toml", 'include = ["a.toml", "sub/b.toml"]\n[general]\nskip_partitions = true\n'
                                       '[packages]\nz = {version = "1"}\n[[files]]\npath = "/top"\ndata = ""\n')
    config = load_config(top)
    assert config.general.filesystem_size == 200          # b after a
    assert config.general.efi_partition_size == 2         # per field: b left it unset
    assert config.general.skip_partitions is True
    assert config.wanted_packages == ["x", "z"]           # y ignored by b
    assert config.packages["z"] == PackageSpec(version="1")
    assert config.users["root"].password == "b" and config.users["root"].shell is None  # whole value replaced
    assert [entry.path for entry in config.files] == ["/a", "/b", "/top"]               # concatenated in order
    assert config.package_origin["y"] == (tmp_path / "sub/b.toml").resolve()


def test_nested_include_is_relative_to_the_including_file(tmp_path):
    write(tmp_path / "lib/base.toml", '[packages]\nkernel = {}\n')
    write(tmp_path / "lib/mid.toml", 'include = ["base.toml"]\n[packages]\nion = {}\n')
    top = write(tmp_path / "arch/top.toml", 'include = ["../lib/mid.toml"]\n')
    assert load_config(top).wanted_packages == ["ion", "kernel"]


def test_prompt_merges_like_every_general_field_the_last_file_wins(tmp_path):
    """As the pinned installer 0.2.40 merges it (``other.prompt.or(self.prompt)``)."""
    write(tmp_path / "first.toml", "[general]\nprompt = false\n")
    write(tmp_path / "second.toml", "[general]\nprompt = true\n")
    top = write(tmp_path / "top.toml", 'include = ["first.toml", "second.toml"]\n')
    assert load_config(top).general.prompt is True
    top.write_text('include = ["first.toml", "second.toml"]\n[general]\nprompt = false\n')
    assert load_config(top).general.prompt is False


def test_package_values_and_rules(tmp_path):
    top = write(tmp_path / "top.toml", '[packages]\na = {}\nb = "binary"\nc = "local"\nd = "source"\n'
                                       'e = "ignore"\nf = {git = "https://example.org/f.git"}\n')
    config = load_config(top)
    assert [config.rule(name) for name in "abcdef"] == ["source", "binary", "local", "source", "ignore", "source"]
    assert config.wanted_packages == ["a", "b", "c", "d", "f"]


FILE_DEFAULTS = {"symlink": False, "directory": False, "mode": None, "uid": None, "gid": None,
                 "recursive_chown": False, "postinstall": False, "append": False}  # append: newer installers'


def test_every_corpus_config_merges_as_the_pinned_installer_merges_it(corpus, tmp_path):
    """The real redox_installer 0.2.40's own merge (``--output-config``) of each upstream config is ours, key for
    key: [general], [packages], [[files]] in order, [users], [groups]."""
    from tasks.settings import PROJECT_DIR
    from tasks.toolchain import hosttools
    installer = hosttools.ensure("redox_installer", PROJECT_DIR / "build") / "redox_installer"
    for path in sorted((corpus / "config").rglob("*.toml")):
        merged = tmp_path / "merged.toml"
        subprocess.run([installer, "-c", path, f"--output-config={merged}"], check=True, capture_output=True)
        theirs = tomllib.loads(merged.read_text())
        ours = load_config(path)
        assert ours.general.model_dump(exclude_none=True) == theirs.get("general", {}), path
        assert {name: value if isinstance(value, str) else value.model_dump(exclude_none=True)
                for name, value in ours.packages.items()} == theirs.get("packages", {}), path
        assert [FILE_DEFAULTS | entry.model_dump(exclude_none=True) for entry in ours.files] == \
            [FILE_DEFAULTS | entry for entry in theirs.get("files", [])], path
        assert {name: user.model_dump(exclude_none=True) for name, user in ours.users.items()} == \
            theirs.get("users", {}), path
        assert {name: group.model_dump(exclude_none=True) for name, group in ours.groups.items()} == \
            theirs.get("groups", {}), path
