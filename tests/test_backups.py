"""Putting artifacts in place with rotated backups."""
from __future__ import annotations

from pathlib import Path

import pytest

from tasks.errors import InputError
from tasks.image.backups import backup_paths, install_with_backups


def publish(tmp_path: Path, target: Path, content: str, keep: int) -> None:
    finished = tmp_path / "finished"
    finished.write_text(content)
    install_with_backups(finished, target, keep)
    assert not finished.exists()


def contents(paths: list[Path]) -> list[str | None]:
    return [path.read_text() if path.exists() else None for path in paths]


def test_backup_names(tmp_path: Path) -> None:
    image = tmp_path / "demo.img"
    assert [p.name for p in backup_paths(image, 3)] == ["demo.img.bak", "demo.img.bak.1", "demo.img.bak.2"]
    assert backup_paths(image, 0) == []
    with pytest.raises(InputError, match="cannot keep -1 backups"):
        backup_paths(image, -1)


def test_rotation_keeps_the_newest_n(tmp_path: Path) -> None:
    image = tmp_path / "demo.img"
    for version in range(1, 6):
        publish(tmp_path, image, f"v{version}", keep=3)
    assert contents([image, *backup_paths(image, 4)]) == ["v5", "v4", "v3", "v2", None]


def test_backups_are_independent_files(tmp_path: Path) -> None:
    # QEMU writes into the raw image it boots: that must not reach the backup.
    image = tmp_path / "demo.img"
    publish(tmp_path, image, "first", keep=1)
    publish(tmp_path, image, "second", keep=1)
    with open(image, "r+") as booted:
        booted.write("SECOND")
    assert contents([image, *backup_paths(image, 1)]) == ["SECOND", "first"]


def test_no_backups(tmp_path: Path) -> None:
    image = tmp_path / "demo.img"
    publish(tmp_path, image, "first", keep=0)
    publish(tmp_path, image, "second", keep=0)
    assert image.read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.img"]


def test_first_publication_makes_no_backup(tmp_path: Path) -> None:
    image = tmp_path / "demo.img"
    publish(tmp_path, image, "first", keep=2)
    assert contents(backup_paths(image, 2)) == [None, None]
