"""GUID partition tables, read-only: enough to check an image the installer wrote and find its partitions.

Layout (UEFI spec §5.3): the primary header at LBA 1, its entry array at ``entries_lba``, a backup header at the
last LBA. Both headers and the entry array carry CRC32s (``zlib.crc32`` is the same IEEE polynomial).
"""
from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import FormatError

SECTOR = 512
SIGNATURE = b"EFI PART"
HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")
ENTRY = struct.Struct("<16s16sQQQ72s")

BIOS_BOOT = uuid.UUID("21686148-6449-6e6f-744e-656564454649")
EFI_SYSTEM = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
LINUX_FS = uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4")


@dataclass(frozen=True)
class Partition:
    number: int  # 1-based, as in the entry array
    name: str
    type_guid: uuid.UUID
    guid: uuid.UUID
    first_lba: int
    last_lba: int  # inclusive

    @property
    def offset(self) -> int:
        return self.first_lba * SECTOR

    @property
    def size(self) -> int:
        return (self.last_lba - self.first_lba + 1) * SECTOR


@dataclass(frozen=True)
class Header:
    current_lba: int
    backup_lba: int
    first_usable_lba: int
    last_usable_lba: int
    disk_guid: uuid.UUID
    entries_lba: int
    entry_count: int
    entry_size: int
    entries_crc: int


@dataclass(frozen=True)
class PartitionTable:
    disk_guid: uuid.UUID
    partitions: tuple[Partition, ...]

    def by_name(self, name: str) -> Partition | None:
        return next((part for part in self.partitions if part.name == name), None)


def read_table(path: Path) -> PartitionTable:
    """The partitions of the disk image at ``path``; both headers and the entry array must check out."""
    with open(path, "rb") as disk:
        disk_sectors = disk.seek(0, 2) // SECTOR
        primary = _read_header(disk, 1, path)
        if primary.current_lba != 1:
            raise FormatError(f"primary header claims to be at LBA {primary.current_lba}, not 1",
                              path=path, key="gpt.header")
        if primary.backup_lba != disk_sectors - 1:
            raise FormatError(f"backup header expected at the last LBA {disk_sectors - 1}, header says "
                              f"{primary.backup_lba}", path=path, key="gpt.header.backup_lba")
        backup = _read_header(disk, primary.backup_lba, path)
        if backup.disk_guid != primary.disk_guid or backup.entries_crc != primary.entries_crc:
            raise FormatError("backup header does not match the primary one", path=path, key="gpt.backup")
        partitions = _read_entries(disk, primary, path)
    return PartitionTable(disk_guid=primary.disk_guid, partitions=partitions)


def _read_header(disk: BinaryIO, lba: int, path: Path) -> Header:
    key = f"gpt.header@lba{lba}"
    disk.seek(lba * SECTOR)
    sector = disk.read(SECTOR)
    if len(sector) < HEADER.size:
        raise FormatError("image too short for a GPT header", path=path, key=key)
    (signature, _revision, header_size, header_crc, _reserved, current, backup, first_usable, last_usable,
     disk_guid, entries_lba, entry_count, entry_size, entries_crc) = HEADER.unpack_from(sector)
    if signature != SIGNATURE:
        raise FormatError(f"signature is {signature!r}, expected {SIGNATURE!r}", path=path, key=key)
    if not HEADER.size <= header_size <= SECTOR:
        raise FormatError(f"header size {header_size} out of range", path=path, key=key)
    unsummed = sector[:16] + b"\0\0\0\0" + sector[20:header_size]
    if zlib.crc32(unsummed) != header_crc:
        raise FormatError("header CRC32 does not match", path=path, key=key)
    if entry_size < ENTRY.size:
        raise FormatError(f"entry size {entry_size} is below {ENTRY.size}", path=path, key=key)
    return Header(current, backup, first_usable, last_usable, uuid.UUID(bytes_le=disk_guid), entries_lba,
                  entry_count, entry_size, entries_crc)


def _read_entries(disk: BinaryIO, header: Header, path: Path) -> tuple[Partition, ...]:
    disk.seek(header.entries_lba * SECTOR)
    table = disk.read(header.entry_count * header.entry_size)
    if zlib.crc32(table) != header.entries_crc:
        raise FormatError("partition entry array CRC32 does not match", path=path, key="gpt.entries")
    partitions = []
    for index in range(header.entry_count):
        type_guid, guid, first, last, _attributes, name = ENTRY.unpack_from(table, index * header.entry_size)
        if type_guid == bytes(16):
            continue
        key = f"gpt.entries[{index + 1}]"
        if not header.first_usable_lba <= first <= last <= header.last_usable_lba:
            raise FormatError(f"LBAs {first}..{last} outside the usable range "
                              f"{header.first_usable_lba}..{header.last_usable_lba}", path=path, key=key)
        partitions.append(Partition(number=index + 1, name=name.decode("utf-16-le").rstrip("\0"),
                                    type_guid=uuid.UUID(bytes_le=type_guid), guid=uuid.UUID(bytes_le=guid),
                                    first_lba=first, last_lba=last))
    return tuple(partitions)
