"""Settings from doit's command-line variables: defaults, conversions, one-line errors."""
from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from tasks.errors import InputError
from tasks.settings import DEFAULT_TARGET, PROJECT_DIR, Settings, host_triple


def test_defaults_build_the_forks_image() -> None:
    settings = Settings.from_vars({})
    assert settings.config_file == PROJECT_DIR / "config/aarch64/desktop.toml"
    assert settings.target == settings.cook_target == DEFAULT_TARGET
    # no RUST_LOG of its own: the base source's init.rc keeps its line (the project's template exports warn)
    assert (settings.rust_log, settings.board, settings.backups) == (None, None, 2)
    assert settings.initfs_max_size == 128 * 1024 * 1024
    assert settings.boot_dir == PurePosixPath("boot")


def test_variables_are_converted() -> None:
    settings = Settings.from_vars({"root": "demo", "config": "config/aarch64/demo.toml", "toolchain": "host",
                                   "initfs_max_size": "64MiB", "boot_dir": "usr/lib/boot", "backups": "0",
                                   "board": "raspi3bp", "rust_log": "pcid=debug"})
    assert settings.config_file == PROJECT_DIR / "demo/config/aarch64/demo.toml"
    assert settings.target == DEFAULT_TARGET and settings.cook_target == host_triple()
    assert settings.initfs_max_size == 64 * 1024 * 1024 and settings.backups == 0
    assert settings.boot_dir == PurePosixPath("usr/lib/boot")
    assert (settings.board, settings.rust_log) == ("raspi3bp", "pcid=debug")


@pytest.mark.parametrize(("name", "value"), [("backups", "-1"), ("backups", "two"), ("toolchain", "llvm"),
                                             ("initfs_max_size", "big")])
def test_a_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(InputError) as raised:
        Settings.from_vars({name: value})
    assert raised.value.key == name and repr(value) in str(raised.value)
