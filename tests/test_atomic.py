"""Atomic outputs: the target appears complete or not at all."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tasks.atomic import atomic_output, atomic_path, partial_path, write_atomically


def test_write_replaces_the_file_with_the_requested_mode(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("old")
    previous_umask = os.umask(0o077)
    try:
        write_atomically(target, "new", mode=0o644)
    finally:
        os.umask(previous_umask)
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o644
    assert list(tmp_path.iterdir()) == [target]


def test_failure_leaves_the_previous_file_and_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as stream:
            stream.write(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


def test_install_hook_receives_the_finished_partial_and_runs_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "disk.img"
    target.write_bytes(b"old")
    installed = []

    def install(partial: Path, final: Path) -> None:
        installed.append((partial.read_bytes(), final))
        partial.replace(final)

    with pytest.raises(RuntimeError):
        with atomic_path(target, install=install) as partial:
            partial.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert installed == [] and target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]
    with atomic_path(target, install=install) as partial:
        partial.write_bytes(b"new")
    assert installed == [(b"new", target)] and list(tmp_path.iterdir()) == [target]


def test_a_failing_install_keeps_the_previous_file_and_removes_the_partial(tmp_path: Path) -> None:
    target = tmp_path / "disk.img"
    target.write_bytes(b"old")

    def install(partial: Path, final: Path) -> None:
        raise OSError("no space left for the backup")

    with pytest.raises(OSError, match="backup"):
        with atomic_path(target, install=install) as partial:
            partial.write_bytes(b"new")
    assert target.read_bytes() == b"old" and not partial_path(target).exists()
