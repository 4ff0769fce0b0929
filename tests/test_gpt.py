"""GPT reading, against tables written by util-linux `sfdisk` (an independent writer)."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tasks.errors import FormatError
from tasks.image import gpt
from tasks.process import run

SCRIPT = """label: gpt
label-id: 6A1B8E4C-0D3F-4C55-9C5E-2B7A4D1E9F00
first-lba: 34
start=34, size=2014, type=21686148-6449-6E6F-744E-656564454649, name="BIOS"
start=2048, size=2048, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI"
start=4096, size=8192, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="REDOX"
"""


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    path = tmp_path / "disk.img"
    with open(path, "wb") as image:
        image.truncate(8 * 1024 * 1024)
    run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", path], stdin=SCRIPT, capture=True)
    return path


def test_reads_partitions_written_by_sfdisk(disk: Path) -> None:
    table = gpt.read_table(disk)
    assert table.disk_guid == uuid.UUID("6a1b8e4c-0d3f-4c55-9c5e-2b7a4d1e9f00")
    assert [(p.number, p.name, p.type_guid, p.first_lba, p.last_lba) for p in table.partitions] == [
        (1, "BIOS", gpt.BIOS_BOOT, 34, 2047),
        (2, "EFI", gpt.EFI_SYSTEM, 2048, 4095),
        (3, "REDOX", gpt.LINUX_FS, 4096, 12287),
    ]
    redox = table.by_name("REDOX")
    assert redox is not None and (redox.offset, redox.size) == (2 * 1024 * 1024, 4 * 1024 * 1024)
    assert table.by_name("SWAP") is None


def flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as image:
        image.seek(offset)
        byte = image.read(1)[0]
        image.seek(offset)
        image.write(bytes([byte ^ 0xFF]))


@pytest.mark.parametrize(("offset", "message"), [
    (512, "signature"),                                # primary header
    (512 + 40, "header CRC32"),                          # first usable LBA, under the header CRC
    (1024 + 128 + 40, "entry array CRC32"),              # second entry's last LBA
])
def test_damaged_primary_table_is_rejected(disk: Path, offset: int, message: str) -> None:
    flip(disk, offset)
    with pytest.raises(FormatError, match=message) as error:
        gpt.read_table(disk)
    assert str(error.value).startswith(f"{disk}: gpt.")


def test_damaged_backup_header_is_rejected(disk: Path) -> None:
    flip(disk, disk.stat().st_size - 512 + 60)  # disk GUID of the backup header
    with pytest.raises(FormatError, match=r"gpt\.header@lba16383: header CRC32"):
        gpt.read_table(disk)


def test_disk_without_gpt_is_rejected(tmp_path: Path) -> None:
    blank = tmp_path / "blank.img"
    blank.write_bytes(bytes(64 * 1024))
    with pytest.raises(FormatError, match="signature is b'"):
        gpt.read_table(blank)
