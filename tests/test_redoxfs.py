"""RedoxFS header checks against filesystems written by the pinned `redoxfs` tools."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tasks.errors import FormatError
from tasks.image import redoxfs
from tests.trees import redoxfs_image

pytestmark = pytest.mark.slow  # builds the redoxfs host tool on first use
OFFSET = 1024 * 1024  # a filesystem placed after 1 MiB of something else, as in a partitioned disk


def make_filesystem(redoxfs_bin: Path, tmp_path: Path) -> Path:
    """``redoxfs-ar`` of a small tree into a 16 MiB file, then 1 MiB of 0xAA prepended."""
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/hostname").write_text("redox\n")
    return redoxfs_image(redoxfs_bin, tree, tmp_path / "disk.img", b"\xaa" * OFFSET)


def test_reads_headers_written_by_redoxfs_ar(redoxfs_bin: Path, tmp_path: Path) -> None:
    image = make_filesystem(redoxfs_bin, tmp_path)
    first = redoxfs.read_header(image, OFFSET)
    assert (first.block, first.generation, first.size, first.encrypted) == (0, 0, 16 * 1024 * 1024, False)
    newest = redoxfs.newest_header(image, OFFSET)
    assert newest.generation > 0 and newest.block == newest.generation % redoxfs.HEADER_RING
    assert newest.uuid == first.uuid


def patch(image: Path, offset: int, data: bytes) -> None:
    with open(image, "r+b") as disk:
        disk.seek(offset)
        disk.write(data)


@pytest.mark.parametrize(("field_offset", "data", "message"), [
    (0, b"RedoxFT\0", "signature is b'RedoxFT"),
    (8, struct.pack("<Q", 7), "version is 7, expected 8"),
    (32, struct.pack("<Q", 12345), "seahash is"),  # the size field, covered by the hash
])
def test_damaged_header_is_rejected(redoxfs_bin: Path, tmp_path: Path, field_offset: int, data: bytes,
                                    message: str) -> None:
    image = make_filesystem(redoxfs_bin, tmp_path)
    patch(image, OFFSET + field_offset, data)
    with pytest.raises(FormatError, match=message) as error:
        redoxfs.read_header(image, OFFSET)
    assert "redoxfs.header[0]" in str(error.value)


def test_no_filesystem_at_offset(redoxfs_bin: Path, tmp_path: Path) -> None:
    image = make_filesystem(redoxfs_bin, tmp_path)
    with pytest.raises(FormatError, match="no valid header in the 256-block ring at byte 0"):
        redoxfs.newest_header(image, 0)
