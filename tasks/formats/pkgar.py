"""pkgar package archives (spec §2): create, read, verify against a trusted key, extract, split.

Layout: a 136-byte header, ``count`` entries of 308 bytes, then the data section. The header is signed with
Ed25519 (bytes 64..136) and carries the BLAKE3 of the entry table; each entry carries the BLAKE3 of its
uncompressed content. Only regular files and symlinks are stored; directories are implied by paths.

Two header layouts exist. pkgar ≤ 0.1.19 (the fork's installer 0.2.40) ends the header with ``count: u64``;
pkgar ≥ 0.2.0 ends it with ``count: u32, flags: u32``. With flags 0 (uncompressed, architecture independent)
the two are byte-identical, so one reader handles both and the old layout simply cannot express flags.
"""
from __future__ import annotations

import enum
import lzma
import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import blake3
import nacl.exceptions
import nacl.signing

from ..atomic import atomic_output, removed_on_failure
from ..errors import FormatError, InputError
from .pkgkeys import KeyPair

HEADER_SIZE = 136
ENTRY_SIZE = 308
SIGNATURE_SIZE = 64
PATH_FIELD_SIZE = 256
MAX_PATH_SIZE = PATH_FIELD_SIZE - 1  # the field keeps a terminating NUL

MODE_KIND = 0o170000
MODE_FILE = 0o100000
MODE_SYMLINK = 0o120000
MODE_PERMISSIONS = 0o7777
MODE_VALID_BITS = MODE_KIND | MODE_PERMISSIONS
HOST_UNSAFE_BITS = 0o6000  # setuid, setgid: never kept on a file extracted on the host

LZMA2_LENGTH_PREFIX = struct.Struct("<Q")
LZMA2_WRITE_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 5}]  # upstream's Lzma2Options::with_preset(5)
LZMA2_READ_FILTERS = [{"id": lzma.FILTER_LZMA2, "dict_size": 64 << 20}]  # upstream's reader: 8 MiB << 3

CHUNK_SIZE = 1 << 20
TEMP_PREFIX = ".pkgar."

_ENTRY = struct.Struct(f"<32sQQI{PATH_FIELD_SIZE}s")
_HEADER_START = struct.Struct("<64s32s32s")
_COUNT_U64 = struct.Struct("<Q")
_COUNT_U32_FLAGS = struct.Struct("<II")



def shown(path: bytes) -> str:
    """An entry path as messages show it: quoted text, with what is not printable (NUL) escaped."""
    return repr(os.fsdecode(path))


class HeaderFormat(enum.Enum):
    COUNT_U64 = "count-u64"  # pkgar <= 0.1.19; what the fork's installer 0.2.40 reads
    COUNT_U32_FLAGS = "count-u32-flags"  # pkgar >= 0.2.0

    @classmethod
    def current(cls) -> HeaderFormat:
        return cls.COUNT_U32_FLAGS


class Packaging(enum.IntEnum):
    UNCOMPRESSED = 0
    LZMA2 = 1


class Architecture(enum.IntEnum):
    INDEPENDENT = 0
    X86_64 = 1
    X86 = 2
    AARCH64 = 3
    RISCV64 = 4
    X86_64_V3 = 17
    AARCH64_V8_2 = 19


@dataclass(frozen=True)
class HeaderFlags:
    """The ``flags`` word: data version (bits 0–7), architecture (8–15), packaging (16–23)."""

    packaging: Packaging = Packaging.UNCOMPRESSED
    architecture: int = Architecture.INDEPENDENT  # kept as a number: readers need not know every architecture
    data_version: int = 0

    def to_int(self) -> int:
        return self.data_version | self.architecture << 8 | self.packaging << 16

    @classmethod
    def from_int(cls, bits: int, path: Path | None = None) -> HeaderFlags:
        data_version, architecture, packaging = bits & 0xFF, bits >> 8 & 0xFF, bits >> 16 & 0xFF
        if data_version != 0:
            raise FormatError(f"unknown data version {data_version} in the header flags", path=path)
        if packaging not in Packaging._value2member_map_:
            raise FormatError(f"unknown packaging {packaging} in the header flags", path=path)
        return cls(Packaging(packaging), architecture, data_version)


@dataclass(frozen=True)
class Header:
    signature: bytes
    public_key: bytes
    blake3: bytes
    count: int
    flags: HeaderFlags

    @property
    def head_size(self) -> int:
        """Header plus entry table: where the data section starts."""
        return HEADER_SIZE + ENTRY_SIZE * self.count

    @property
    def readable_by_old_tools(self) -> bool:
        """True when pkgar <= 0.1.19 reads this header correctly (it sees the flags as the high half of count)."""
        return self.flags.to_int() == 0


@dataclass(frozen=True)
class Entry:
    blake3: bytes  # of the uncompressed content; for a symlink, of its target
    offset: int  # relative to the data section
    size: int  # bytes stored in the data section
    mode: int  # kind (file or symlink) | permission bits
    path: bytes  # relative, without NUL

    @property
    def is_symlink(self) -> bool:
        return self.mode & MODE_KIND == MODE_SYMLINK

    @property
    def permissions(self) -> int:
        return self.mode & MODE_PERMISSIONS

    def pack(self) -> bytes:
        return _ENTRY.pack(self.blake3, self.offset, self.size, self.mode, self.path)

    @classmethod
    def unpack(cls, raw: bytes, archive: Path) -> Entry:
        digest, offset, size, mode, path_field = _ENTRY.unpack(raw)
        path, _, padding = path_field.partition(b"\0")
        if padding.strip(b"\0"):  # upstream reads up to the first NUL: a path that goes on after it is not one
            raise FormatError(f"entry path {shown(path_field.rstrip(bytes(1)))} contains NUL", path=archive)
        if mode & ~MODE_VALID_BITS:
            raise FormatError(f"entry {shown(path)} has invalid mode {mode:o}", path=archive)
        if mode & MODE_KIND not in (MODE_FILE, MODE_SYMLINK):
            raise FormatError(f"entry {shown(path)} is neither a file nor a symlink (mode {mode:o})", path=archive)
        return cls(digest, offset, size, mode, path)


@dataclass(frozen=True)
class Package:
    """A verified package head: the header checked against a trusted key and the entry table against its hash."""

    path: Path
    header: Header
    entries: tuple[Entry, ...]

    def installed_size(self) -> int:
        """Bytes of the package once unpacked: upstream's ``storage_size`` (head plus uncompressed contents)."""
        if self.header.flags.packaging == Packaging.UNCOMPRESSED:
            return self.header.head_size + sum(entry.size for entry in self.entries)
        with open(self.path, "rb") as stream:
            return self.header.head_size + sum(self._lzma2_length(stream, entry) for entry in self.entries)

    def read(self, entry: Entry) -> bytes:
        """The verified content of one entry (a symlink's target for symlinks)."""
        with open(self.path, "rb") as stream:
            return b"".join(self.content_chunks(stream, entry))

    def verify_contents(self) -> None:
        """Check every entry's length and BLAKE3; raise FormatError on the first mismatch."""
        with open(self.path, "rb") as stream:
            for entry in self.entries:
                for _ in self.content_chunks(stream, entry):
                    pass

    def content_chunks(self, stream: BinaryIO, entry: Entry) -> Iterator[bytes]:
        """The decoded content of ``entry`` read from ``stream`` (this package opened for reading), in chunks.

        The length and the BLAKE3 are checked after the last chunk, so a consumer must not trust the content
        before the iteration has ended without an error.
        """
        if self.header.flags.packaging == Packaging.LZMA2:
            expected_length = self._lzma2_length(stream, entry)
            stored = _stored_chunks(stream, entry.size - LZMA2_LENGTH_PREFIX.size, self.path)
            chunks = _inflate(stored, entry, self.path)
        else:
            stream.seek(self.header.head_size + entry.offset)
            expected_length, chunks = entry.size, _stored_chunks(stream, entry.size, self.path)
        hasher, length = blake3.blake3(), 0
        for chunk in chunks:
            hasher.update(chunk)
            length += len(chunk)
            yield chunk
        if length != expected_length:
            raise FormatError(f"entry {shown(entry.path)} holds {length} bytes, expected {expected_length}",
                              path=self.path)
        if hasher.digest() != entry.blake3:
            raise FormatError(f"entry {shown(entry.path)} does not match its BLAKE3 (tampered or corrupt data)",
                              path=self.path)

    def _lzma2_length(self, stream: BinaryIO, entry: Entry) -> int:
        """The uncompressed length in front of an LZMA2 entry; leaves ``stream`` at the compressed data."""
        if entry.size < LZMA2_LENGTH_PREFIX.size:
            raise FormatError(f"entry {shown(entry.path)} is too short for LZMA2 data", path=self.path)
        stream.seek(self.header.head_size + entry.offset)
        return LZMA2_LENGTH_PREFIX.unpack(_read_exactly(stream, LZMA2_LENGTH_PREFIX.size, self.path))[0]


# --- creating -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Source:
    path: Path
    relative: bytes
    mode: int
    size: int  # for a symlink, the length of its target

    @property
    def is_symlink(self) -> bool:
        return self.mode & MODE_KIND == MODE_SYMLINK


def create(stage: Path, archive: Path, key: KeyPair, *, header_format: HeaderFormat = HeaderFormat.current(),
           packaging: Packaging = Packaging.UNCOMPRESSED,
           architecture: Architecture = Architecture.INDEPENDENT) -> Header:
    """Package the files and symlinks below ``stage`` into ``archive`` (atomically) and return its header.

    Entries follow upstream's walk (depth first, each directory sorted by name bytes), so the same stage and
    key always give the same bytes.
    """
    flags = HeaderFlags(packaging, architecture)
    if header_format == HeaderFormat.COUNT_U64 and flags.to_int() != 0:
        raise FormatError(f"the old pkgar header (count: u64) has no flags, so it cannot record packaging "
                          f"{packaging.name} or architecture {architecture.name}", path=archive)
    if not stage.is_dir():
        raise InputError("the stage directory to package does not exist", path=stage)
    sources = list(_walk(stage, stage))
    head_size = HEADER_SIZE + ENTRY_SIZE * len(sources)
    with atomic_output(archive) as stream:
        stream.seek(head_size)
        entries = [_write_data(stream, source, packaging, stream.tell() - head_size) for source in sources]
        table = b"".join(entry.pack() for entry in entries)
        signed = key.public_key + blake3.blake3(table).digest() + _pack_count(len(entries), flags, header_format)
        header = key.sign(signed) + signed
        stream.seek(0)
        stream.write(header + table)
    return _parse_header(header, archive)


def _walk(stage: Path, directory: Path) -> Iterator[_Source]:
    with os.scandir(directory) as listing:
        children = sorted(listing, key=lambda child: os.fsencode(child.name))
    for child in children:
        path = Path(child.path)
        status = child.stat(follow_symlinks=False)
        if stat.S_ISDIR(status.st_mode):
            yield from _walk(stage, path)
        elif stat.S_ISREG(status.st_mode) or stat.S_ISLNK(status.st_mode):
            relative = os.fsencode(path.relative_to(stage))
            yield _Source(path, relative, _entry_mode(path, status.st_mode), status.st_size)
        else:
            raise FormatError("pkgar stores only regular files and symlinks, not this "
                              f"{_kind_name(status.st_mode)}", path=path)


def _entry_mode(path: Path, st_mode: int) -> int:
    if not st_mode & MODE_PERMISSIONS:
        raise FormatError("has no permission bits; pkgar cannot store mode 000", path=path)
    return stat.S_IFMT(st_mode) | st_mode & MODE_PERMISSIONS


def _kind_name(st_mode: int) -> str:
    kinds = {stat.S_IFIFO: "FIFO", stat.S_IFSOCK: "socket", stat.S_IFBLK: "block device",
             stat.S_IFCHR: "character device"}
    return kinds.get(stat.S_IFMT(st_mode), f"file type {stat.S_IFMT(st_mode):o}")


def _write_data(stream: BinaryIO, source: _Source, packaging: Packaging, offset: int) -> Entry:
    if len(source.relative) > MAX_PATH_SIZE:
        raise FormatError(f"path is {len(source.relative)} bytes long; pkgar stores at most {MAX_PATH_SIZE}",
                          path=source.path)
    start = stream.tell()
    compressor = None
    if packaging == Packaging.LZMA2:
        stream.write(LZMA2_LENGTH_PREFIX.pack(source.size))
        compressor = lzma.LZMACompressor(format=lzma.FORMAT_RAW, filters=LZMA2_WRITE_FILTERS)
    hasher, length = blake3.blake3(), 0
    for chunk in _source_chunks(source):
        hasher.update(chunk)
        length += len(chunk)
        stream.write(compressor.compress(chunk) if compressor else chunk)
    if compressor:
        stream.write(compressor.flush())
    if length != source.size:
        raise FormatError("changed while it was being packaged", path=source.path)
    return Entry(hasher.digest(), offset, stream.tell() - start, source.mode, source.relative)


def _source_chunks(source: _Source) -> Iterator[bytes]:
    if source.is_symlink:
        yield os.readlink(os.fsencode(source.path))
        return
    with open(source.path, "rb") as file:
        while chunk := file.read(CHUNK_SIZE):
            yield chunk


def _pack_count(count: int, flags: HeaderFlags, header_format: HeaderFormat) -> bytes:
    if header_format == HeaderFormat.COUNT_U64:
        return _COUNT_U64.pack(count)
    return _COUNT_U32_FLAGS.pack(count, flags.to_int())


# --- reading --------------------------------------------------------------------------------------------------

def open_package(archive: Path, trusted_key: bytes) -> Package:
    """Read and verify the head of ``archive`` (a whole package or a split-off head).

    The signature must verify with ``trusted_key`` and the embedded key must be that key: a package is never
    trusted on the strength of the key it carries. The entry table must match the header's BLAKE3.
    """
    with open(archive, "rb") as stream:
        raw_header = _read_exactly(stream, HEADER_SIZE, archive)
        header = _verify_header(raw_header, trusted_key, archive)
        if header.head_size > os.fstat(stream.fileno()).st_size:  # before allocating a table that cannot exist
            raise FormatError(f"truncated: the header announces {header.count} entries", path=archive)
        table = _read_exactly(stream, ENTRY_SIZE * header.count, archive)
    if blake3.blake3(table).digest() != header.blake3:
        raise FormatError("the entry table does not match the header's BLAKE3 (tampered or corrupt)", path=archive)
    entries = tuple(Entry.unpack(table[index:index + ENTRY_SIZE], archive)
                    for index in range(0, len(table), ENTRY_SIZE))
    return Package(archive, header, entries)


def verify(archive: Path, trusted_key: bytes) -> Package:
    """Verify the header, the entry table and every entry's content."""
    package = open_package(archive, trusted_key)
    package.verify_contents()
    return package


def _verify_header(raw: bytes, trusted_key: bytes, archive: Path) -> Header:
    try:
        nacl.signing.VerifyKey(trusted_key).verify(raw[SIGNATURE_SIZE:], raw[:SIGNATURE_SIZE])
    except nacl.exceptions.BadSignatureError:
        raise FormatError("the header signature does not verify with the trusted public key "
                          "(wrong key, or a tampered header)", path=archive) from None
    header = _parse_header(raw, archive)
    if header.public_key != trusted_key:
        raise FormatError("the header carries a different public key than the trusted one", path=archive)
    return header


def _parse_header(raw: bytes, archive: Path) -> Header:
    signature, public_key, digest = _HEADER_START.unpack_from(raw)
    count, flags = _COUNT_U32_FLAGS.unpack_from(raw, _HEADER_START.size)
    return Header(signature, public_key, digest, count, HeaderFlags.from_int(flags, archive))


def _read_exactly(stream: BinaryIO, size: int, archive: Path) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise FormatError(f"truncated: expected {size} more bytes at offset {stream.tell() - len(data)}",
                          path=archive)
    return data


def _stored_chunks(stream: BinaryIO, size: int, archive: Path) -> Iterator[bytes]:
    while size > 0:
        chunk = _read_exactly(stream, min(CHUNK_SIZE, size), archive)
        size -= len(chunk)
        yield chunk


def _inflate(compressed: Iterator[bytes], entry: Entry, archive: Path) -> Iterator[bytes]:
    """Decode a raw LZMA2 stream, never holding more than a chunk of output at once."""
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=LZMA2_READ_FILTERS)
    try:
        for chunk in compressed:
            yield decompressor.decompress(chunk, CHUNK_SIZE)
            while not decompressor.eof and not decompressor.needs_input:
                yield decompressor.decompress(b"", CHUNK_SIZE)
            if decompressor.eof:
                break
    except lzma.LZMAError as error:
        raise FormatError(f"entry {shown(entry.path)}: bad LZMA2 data: {error}", path=archive) from None
    if not decompressor.eof:
        raise FormatError(f"entry {shown(entry.path)}: LZMA2 data ends before its end marker", path=archive)


# --- extracting and splitting ---------------------------------------------------------------------------------

def checked_path(entry: Entry, archive: Path) -> Path:
    """The entry's relative path, accepted only if made of normal components (as upstream's ``check_path``).

    Like Rust's ``Path::components``: repeated or trailing slashes and interior ``.`` collapse; a leading ``/``,
    a leading ``.``, any ``..`` and an empty path are rejected.
    """
    if entry.path.startswith(b"/"):
        raise FormatError(f"entry path {shown(entry.path)} is absolute", path=archive)
    parts = [part for part in entry.path.split(b"/") if part]
    if parts[:1] == [b"."]:
        raise FormatError(f"entry path {shown(entry.path)} starts with '.'", path=archive)
    if b".." in parts:
        raise FormatError(f"entry path {shown(entry.path)} contains '..'", path=archive)
    normal = [os.fsdecode(part) for part in parts if part != b"."]
    if not normal:
        raise FormatError("entry path is empty", path=archive)
    return Path(*normal)


def extract(archive: Path, trusted_key: bytes, destination: Path) -> Package:
    """Verify ``archive`` and unpack it below ``destination``.

    Every entry is first written to ``.pkgar.<name>`` beside its target and checked; only when all entries
    check out are the temporary files renamed into place, so a bad package changes nothing. Modes are applied
    exactly (not filtered by the umask) but for setuid and setgid, which a host file never gets; symlinks are
    created as symlinks, and an entry under one of the package's own symlinks is refused.
    """
    package = open_package(archive, trusted_key)
    root = destination.resolve()
    root.mkdir(parents=True, exist_ok=True)
    targets = [_target(root, entry, archive) for entry in package.entries]
    if len(set(targets)) != len(targets):
        twice = next(entry for entry, target in zip(package.entries, targets, strict=True)
                     if targets.count(target) > 1)
        raise FormatError(f"two entries have the path {shown(twice.path)}", path=archive)
    _check_nothing_under_own_symlinks(package.entries, targets, archive)
    temporaries = [target.with_name(TEMP_PREFIX + target.name) for target in targets]
    with removed_on_failure(*temporaries):
        with open(archive, "rb") as stream:
            for entry, temporary in zip(package.entries, temporaries):
                _write_entry(package, stream, entry, temporary)
        for temporary, target in zip(temporaries, targets):
            os.replace(temporary, target)
    return package


def _check_nothing_under_own_symlinks(entries: list[Entry], targets: list[Path], archive: Path) -> None:
    """No entry lies under a symlink entry of the same package: writing it would follow the link."""
    links = {target: entry for entry, target in zip(entries, targets) if entry.is_symlink}
    for entry, target in zip(entries, targets):
        if (link := next((links[parent] for parent in target.parents if parent in links), None)) is not None:
            raise FormatError(f"entry {shown(entry.path)} lies under the symlink entry {shown(link.path)}, which "
                              "extraction would follow", path=archive)


def _target(root: Path, entry: Entry, archive: Path) -> Path:
    target = root / checked_path(entry, archive)
    if not target.parent.resolve().is_relative_to(root):
        raise FormatError(f"entry {shown(entry.path)} would be written outside the destination through a symlink",
                          path=archive)
    return target


def _write_entry(package: Package, stream: BinaryIO, entry: Entry, temporary: Path) -> None:
    temporary.parent.mkdir(parents=True, exist_ok=True)
    temporary.unlink(missing_ok=True)
    content = package.content_chunks(stream, entry)
    if entry.is_symlink:
        os.symlink(b"".join(content), temporary)
        return
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        for chunk in content:
            file.write(chunk)
    os.chmod(temporary, entry.permissions & ~HOST_UNSAFE_BITS)


def split(archive: Path, trusted_key: bytes, head: Path, data: Path | None = None) -> Package:
    """Write the verified head (header + entries) and optionally the data section to separate files."""
    package = verify(archive, trusted_key)
    with open(archive, "rb") as source:
        with atomic_output(head) as stream:
            stream.write(source.read(package.header.head_size))
        if data is not None:
            with atomic_output(data) as stream:
                while chunk := source.read(CHUNK_SIZE):
                    stream.write(chunk)
    return package
