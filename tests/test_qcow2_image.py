"""qcow2 conversion with the real qemu-img: content preserved, checked, previous copy kept."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tasks.errors import CommandError, FormatError
from tasks.hashing import hash_file
from tasks.image.backups import backup_paths
from tasks.image.qcow2 import check_qcow2, convert_qcow2
from tasks.process import run


def raw_image(path: Path, fill: bytes) -> Path:
    with open(path, "wb") as image:
        image.truncate(4 * 1024 * 1024)
        image.seek(1024 * 1024)
        image.write(fill * 70000)
    return path


def test_convert_round_trips_and_keeps_backup(tmp_path: Path) -> None:
    qcow2 = tmp_path / "out" / "demo.qcow2"
    convert_qcow2(raw_image(tmp_path / "a.img", b"a"), qcow2, backups=1)
    first = hash_file(qcow2)
    assert qcow2.read_bytes()[:4] == b"QFI\xfb"
    back = tmp_path / "back.img"
    run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2, back])
    assert hash_file(back) == hash_file(tmp_path / "a.img")

    convert_qcow2(raw_image(tmp_path / "b.img", b"b"), qcow2, backups=1)
    assert hash_file(backup_paths(qcow2, 1)[0]) == first
    assert hash_file(qcow2) != first
    assert not (tmp_path / "out" / "demo.qcow2.partial").exists()


def test_failed_conversion_keeps_previous(tmp_path: Path) -> None:
    qcow2 = tmp_path / "demo.qcow2"
    convert_qcow2(raw_image(tmp_path / "a.img", b"a"), qcow2, backups=1)
    before = hash_file(qcow2)
    with pytest.raises(CommandError, match="missing.img"):
        convert_qcow2(tmp_path / "missing.img", qcow2, backups=1)
    assert hash_file(qcow2) == before
    assert not backup_paths(qcow2, 1)[0].exists()
    assert not (tmp_path / "demo.qcow2.partial").exists()


def test_check_reports_leaked_clusters(tmp_path: Path) -> None:
    qcow2 = tmp_path / "demo.qcow2"
    convert_qcow2(raw_image(tmp_path / "a.img", b"a"), qcow2, backups=0)
    data = bytearray(qcow2.read_bytes())
    refcount_table = struct.unpack_from(">Q", data, 48)[0]
    first_refcount_block = struct.unpack_from(">Q", data, refcount_table)[0]
    struct.pack_into(">H", data, first_refcount_block, 5)  # cluster 0 (the header) counted five times
    qcow2.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="qemu-img check found 1 leaks"):
        check_qcow2(qcow2)


def test_check_compares_virtual_size(tmp_path: Path) -> None:
    qcow2 = tmp_path / "demo.qcow2"
    convert_qcow2(raw_image(tmp_path / "a.img", b"a"), qcow2, backups=0)
    with pytest.raises(FormatError, match="virtual size 4194304 differs"):
        check_qcow2(qcow2, expected_size=8 * 1024 * 1024)
