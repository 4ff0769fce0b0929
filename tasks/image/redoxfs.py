"""RedoxFS headers (spec §6.4), read-only: recognise a filesystem and find its newest header.

A filesystem starts with a ring of 256 header blocks; generation *g* is written to block ``g % 256`` and the valid
header with the highest generation is the current one. Each header carries ``seahash`` of its first 4072 bytes.
"""
from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from pathlib import Path

import seahash

from ..errors import FormatError

BLOCK_SIZE = 4096
HEADER_RING = 256
SIGNATURE = b"RedoxFS\0"
VERSION = 8
HASHED_BYTES = BLOCK_SIZE - 24  # everything before encrypted_hash (16) and hash (8)
FIELDS = struct.Struct("<8sQ16sQQ")  # signature, version, uuid, size, generation


@dataclass(frozen=True)
class Header:
    block: int  # index in the header ring
    uuid: uuid.UUID
    size: int  # bytes
    generation: int
    encrypted: bool


def parse_header(block: bytes, index: int = 0, *, path: Path | None = None) -> Header:
    """The header in one 4 KiB ``block``; FormatError unless signature, version and seahash all match."""
    key = f"redoxfs.header[{index}]"
    if len(block) != BLOCK_SIZE:
        raise FormatError(f"header block is {len(block)} bytes, expected {BLOCK_SIZE}", path=path, key=key)
    signature, version, disk_uuid, size, generation = FIELDS.unpack_from(block)
    if signature != SIGNATURE:
        raise FormatError(f"signature is {signature!r}, expected {SIGNATURE!r}", path=path, key=key)
    if version != VERSION:
        raise FormatError(f"version is {version}, expected {VERSION}", path=path, key=key)
    stored_hash = struct.unpack_from("<Q", block, BLOCK_SIZE - 8)[0]
    computed = seahash.hash(block[:HASHED_BYTES])
    if stored_hash != computed:
        raise FormatError(f"seahash is {stored_hash:#018x}, computed {computed:#018x}", path=path, key=key)
    plain_hash = block[BLOCK_SIZE - 8:] + bytes(8)
    return Header(block=index, uuid=uuid.UUID(bytes=disk_uuid), size=size, generation=generation,
                  encrypted=block[HASHED_BYTES:BLOCK_SIZE - 8] != plain_hash)


def read_header(path: Path, offset: int) -> Header:
    """The header at byte ``offset`` of ``path`` (the start of a RedoxFS partition)."""
    with open(path, "rb") as disk:
        disk.seek(offset)
        return parse_header(disk.read(BLOCK_SIZE), path=path)


def newest_header(path: Path, offset: int) -> Header:
    """The current header: the valid one with the highest generation in the ring at ``offset``."""
    with open(path, "rb") as disk:
        disk.seek(offset)
        ring = disk.read(BLOCK_SIZE * HEADER_RING)
    valid = []
    for index in range(len(ring) // BLOCK_SIZE):
        try:
            valid.append(parse_header(ring[index * BLOCK_SIZE:(index + 1) * BLOCK_SIZE], index, path=path))
        except FormatError:
            continue  # ring slots not written yet, or torn writes: the filesystem skips them too
    if not valid:
        raise FormatError(f"no valid header in the {HEADER_RING}-block ring at byte {offset}", path=path,
                          key="redoxfs.header")
    return max(valid, key=lambda header: header.generation)
