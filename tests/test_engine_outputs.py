"""Atomic artifacts: a partial never stands at the artifact's path, a failure keeps the previous artifact."""
from __future__ import annotations

from pathlib import Path

import pytest

from tasks.atomic import atomic_path, partial_path, write_atomically
from tasks.errors import CommandError


class Boom(Exception):
    pass


def test_atomic_file_replaces_on_success_and_keeps_the_old_one_on_failure(tmp_path: Path) -> None:
    artifact = tmp_path / "out" / "image.bin"
    with atomic_path(artifact) as partial:
        assert partial == partial_path(artifact)
        partial.write_bytes(b"first")
        assert not artifact.exists()
    assert artifact.read_bytes() == b"first" and not partial.exists()
    with pytest.raises(Boom):
        with atomic_path(artifact) as partial:
            partial.write_bytes(b"half")
            raise Boom
    assert artifact.read_bytes() == b"first" and not partial.exists()


def test_a_leftover_partial_of_a_killed_run_is_not_reused(tmp_path: Path) -> None:
    artifact = tmp_path / "image.bin"
    partial_path(artifact).write_bytes(b"stale half-written data")
    with atomic_path(artifact) as partial:
        assert not partial.exists()
        with open(partial, "ab") as stream:
            stream.write(b"new")
    assert artifact.read_bytes() == b"new"


def test_a_task_that_writes_nothing_fails_and_keeps_the_old_artifact(tmp_path: Path) -> None:
    artifact = tmp_path / "image.bin"
    artifact.write_bytes(b"old")
    with pytest.raises(CommandError, match="did not produce"):
        with atomic_path(artifact):
            pass
    assert artifact.read_bytes() == b"old"


def test_atomic_dir_swaps_whole_trees(tmp_path: Path) -> None:
    artifact = tmp_path / "sysroot"
    with atomic_path(artifact, directory=True) as partial:
        (partial / "lib").mkdir()
        (partial / "lib" / "libc.a").write_bytes(b"v1")
    with atomic_path(artifact, directory=True) as partial:
        (partial / "new-only").write_text("v2")
    assert sorted(p.name for p in artifact.iterdir()) == ["new-only"]
    assert not partial_path(artifact).exists() and not artifact.with_name("sysroot.old").exists()
    with pytest.raises(Boom):
        with atomic_path(artifact, directory=True) as partial:
            (partial / "junk").write_text("x")
            raise Boom
    assert sorted(p.name for p in artifact.iterdir()) == ["new-only"] and not partial.exists()


def test_atomic_write_bytes_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "file"
    write_atomically(target, b"one")
    write_atomically(target, b"two")
    assert target.read_bytes() == b"two" and [p.name for p in target.parent.iterdir()] == ["file"]
