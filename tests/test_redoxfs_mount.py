"""Reading a RedoxFS back through the pinned `redoxfs` FUSE mount (FUSE works on this machine kind: root with
/dev/fuse; the fuser crate mounts directly, no fusermount needed)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tasks.errors import CommandError
from tasks.hashing import hash_file
from tasks.image.fuse import mounted
from tests.trees import redoxfs_image

pytestmark = pytest.mark.slow  # builds the redoxfs host tool on first use
OFFSET = 2 * 1024 * 1024


def test_mount_shows_archived_tree(redoxfs_bin: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "usr/bin/tool").write_bytes(b"\x7fELF fake")
    (tree / "usr/bin/tool").chmod(0o751)
    (tree / "etc").mkdir()
    (tree / "etc/motd").write_text("hi\n")
    (tree / "bin").symlink_to("usr/bin")
    image = redoxfs_image(redoxfs_bin, tree, tmp_path / "disk.img", bytes(OFFSET))
    before = hash_file(image)

    mountpoint = tmp_path / "mnt"
    with mounted(redoxfs_bin / "redoxfs", image, mountpoint, OFFSET, log=tmp_path / "mount.log") as root:
        assert sorted(os.listdir(root)) == ["bin", "etc", "usr"]
        assert (root / "usr/bin/tool").read_bytes() == b"\x7fELF fake"
        assert stat.S_IMODE((root / "usr/bin/tool").stat().st_mode) == 0o751
        assert (root / "etc/motd").read_text() == "hi\n"
        assert os.readlink(root / "bin") == "usr/bin"
    assert not os.path.ismount(mountpoint)
    assert hash_file(image) != before, "mounting rewrites the image (cleanup on open)"


def test_mount_of_a_non_filesystem_fails(redoxfs_bin: Path, tmp_path: Path) -> None:
    image = tmp_path / "zeros.img"
    image.write_bytes(bytes(4 * 1024 * 1024))
    mountpoint = tmp_path / "mnt"
    with pytest.raises(CommandError, match="exited with status"):
        with mounted(redoxfs_bin / "redoxfs", image, mountpoint, 0):
            pass
    assert not os.path.ismount(mountpoint)
