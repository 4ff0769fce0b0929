"""The initfs archive ("RedoxFtw") that the kernel hands to the bootstrap: writer, reader, dump and extract.

Byte layout: ``shared/specs/redox-formats.md`` §1. The writer reproduces the revision of ``redox-initfs-ar`` described
there byte for byte: bump allocator with 4 KiB pages, names included; bootstrap ELF verbatim at offset 4096; post-order
inode numbers with the root written last as inode 0; symlink targets made relative to the archive root. Other
revisions of the format exist; :func:`check_bootstrap_format` tells whether a bootstrap's source reads this one.

Three deliberate differences make two builds of the same tree byte-identical:

* directory entries are sorted by name bytes (upstream keeps the host's ``read_dir`` order, which differs between
  file systems and even between two copies of one tree);
* the creation time comes from ``mtime``, else ``SOURCE_DATE_EPOCH``, else the clock (upstream: always the clock).
* an absolute symlink target is stored relative to the archive root as it is (upstream diffs it against the host
  path of the tree, so its bytes depend on where the build directory is).

It is also stricter than upstream where upstream would produce an image that cannot boot: no bootstrap is an error
(the kernel would jump to 0xFFFF_FFFF_FFFF_FFFF), and so are an ELF entry point of 0, names that are not UTF-8
(the bootstrap rejects them) and an empty tree (its root entry table would lie past the end of the image).
"""
from __future__ import annotations

import enum
import os
import posixpath
import re
import stat
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NoReturn

from ..atomic import atomic_output
from ..errors import FormatError, InputError
from ..hashing import hash_bytes

MAGIC = b"RedoxFtw"
PAGE_SIZE = 4096
NO_BOOTSTRAP = 0xFFFF_FFFF_FFFF_FFFF
MIB = 1 << 20
# Release builds of redox-initfs-ar default to 64 MiB; the fork's recipe runs a debug build, which allows 128 MiB.
DEFAULT_MAX_SIZE = 64 * MIB

HEADER = struct.Struct("<8sIQIHQQH")  # magic, inode table offset, creation sec/nsec, inode count, entry, size, page
INODE = struct.Struct("<IIIII")  # type_and_mode, length, offset, uid, gid
DIR_ENTRY = struct.Struct("<HHI")  # inode, name length, name offset

TYPE_SHIFT = 28
MODE_MASK = 0o7777
U16_MAX = 0xFFFF
U32_LIMIT = 1 << 32
BIGGEST_SHOWN = 5
COPY_CHUNK = 1 << 20


class InodeKind(enum.IntEnum):
    FILE = 0
    DIR = 1
    LINK = 2


# --- the source tree, as read from the host ---------------------------------------------------------------------

@dataclass(frozen=True)
class _File:
    path: Path
    size: int
    mode: int


@dataclass(frozen=True)
class _Link:
    target: bytes
    mode: int


@dataclass(frozen=True)
class _Dir:
    mode: int
    entries: tuple[tuple[bytes, "_Node"], ...]


_Node = _File | _Link | _Dir


def _scan_dir(path: Path, canonical_root: Path, mode: int) -> _Dir:
    with os.scandir(path) as listing:
        children = sorted(listing, key=lambda child: os.fsencode(child.name))
    if len(children) > U16_MAX:
        raise InputError(f"{len(children)} entries; an initfs directory holds at most {U16_MAX}", path=path)
    entries = []
    for child in children:
        name = os.fsencode(child.name)
        _check_name(name, Path(child.path))
        entries.append((name, _scan_node(Path(child.path), canonical_root)))
    return _Dir(mode, tuple(entries))


def _scan_node(path: Path, canonical_root: Path) -> _Node:
    info = path.lstat()  # a symlink is archived as a link, never followed
    mode = info.st_mode & MODE_MASK
    if stat.S_ISDIR(info.st_mode):
        return _scan_dir(path, canonical_root, mode)
    if stat.S_ISLNK(info.st_mode):
        return _Link(_stored_link_target(path, canonical_root), mode)
    if stat.S_ISREG(info.st_mode):
        if info.st_size >= U32_LIMIT:
            raise InputError(f"{info.st_size} bytes; initfs files must be smaller than 4 GiB", path=path)
        return _File(path, info.st_size, mode)
    raise InputError(f"a {_file_kind(info.st_mode)} cannot be stored in an initfs (only files, directories and "
                     f"symlinks)", path=path)


def _file_kind(st_mode: int) -> str:
    kinds = {stat.S_ISSOCK: "socket", stat.S_ISFIFO: "FIFO", stat.S_ISBLK: "block device",
             stat.S_ISCHR: "character device"}
    return next((name for test, name in kinds.items() if test(st_mode)), "special file")


def _check_name(name: bytes, path: Path) -> None:
    if len(name) > U16_MAX:
        raise InputError(f"name of {len(name)} bytes; at most {U16_MAX}", path=path)
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("name is not UTF-8, which the bootstrap rejects", path=path) from None


def _stored_link_target(link: Path, canonical_root: Path) -> bytes:
    """A relative target as redox-initfs-ar stores it: made absolute against the link's canonical parent, then
    made relative to the canonical archive root by ``pathdiff::diff_paths`` (so ``..`` inside the target is kept).
    An absolute target names a path inside the initfs: stored relative to its root as it is (redox-initfs-ar would
    diff it against the host's build directory, so that the bytes depended on where that is)."""
    target = os.fsencode(os.readlink(link))
    if target.startswith(b"/"):
        return b"/".join(_components(target))
    target = os.fsencode(link.parent.resolve(strict=True)) + b"/" + target
    return _diff_paths(_components(target), _components(os.fsencode(canonical_root)))


def _components(path: bytes) -> list[bytes]:
    """Rust's ``Path::components`` of an absolute path, minus the root: empty and ``.`` parts vanish, ``..`` stays."""
    return [part for part in path.split(b"/") if part not in (b"", b".")]


def _diff_paths(path: list[bytes], base: list[bytes]) -> bytes:
    """``pathdiff::diff_paths`` for an absolute path and a canonical absolute base."""
    common = 0
    while common < min(len(path), len(base)) and path[common] == base[common]:
        common += 1
    return b"/".join([b".."] * (len(base) - common) + path[common:])


def _count_inodes(directory: _Dir) -> int:
    return 1 + sum(_count_inodes(node) if isinstance(node, _Dir) else 1 for _, node in directory.entries)


def _files(directory: _Dir, prefix: str = "") -> Iterator[tuple[str, _File]]:
    for name, node in directory.entries:
        path = prefix + name.decode()
        if isinstance(node, _Dir):
            yield from _files(node, path + "/")
        elif isinstance(node, _File):
            yield path, node


# --- layout: the bump allocator of redox-initfs-ar ---------------------------------------------------------------

Payload = bytes | _File


class _Layout:
    """Where everything goes. ``pieces`` are (offset, payload) pairs; nothing is written until the layout is known,
    so an over-size image is reported with its full size instead of failing at the first allocation past the limit."""

    def __init__(self, inode_count: int):
        self.cursor = 0
        self.last_offset = 0
        self.pieces: list[tuple[int, Payload]] = []
        self.inode_table = bytearray(INODE.size * inode_count)
        self.inode_table_offset = 0
        self.inode_counter = 0

    def alloc(self, size: int) -> int:
        """Every allocation starts on a page boundary; a zero-length one returns the cursor without moving it."""
        offset = self.cursor
        self.cursor = -(-(offset + size) // PAGE_SIZE) * PAGE_SIZE
        self.last_offset = offset
        return offset

    def place(self, size: int, payload: Payload) -> int:
        offset = self.alloc(size)
        if size:
            self.pieces.append((offset, payload))
        return offset

    def set_inode(self, number: int, kind: InodeKind, mode: int, length: int, offset: int) -> None:
        record = INODE.pack((kind << TYPE_SHIFT) | mode, length, offset, 0, 0)  # uid and gid: always 0 upstream
        start = number * INODE.size
        self.inode_table[start:start + INODE.size] = record

    def lay_out_dir(self, directory: _Dir) -> tuple[int, int]:
        """Entry table first, then each child's payload, inode and name, as upstream's ``allocate_and_write_dir``."""
        table = bytearray(DIR_ENTRY.size * len(directory.entries))
        table_offset = self.alloc(len(table))
        for index, (name, node) in enumerate(directory.entries):
            kind, length, offset = self.lay_out_node(node)
            self.inode_counter += 1
            self.set_inode(self.inode_counter, kind, node.mode, length, offset)
            name_offset = self.place(len(name), name)
            DIR_ENTRY.pack_into(table, index * DIR_ENTRY.size, self.inode_counter, len(name), name_offset)
        if table:
            self.pieces.append((table_offset, bytes(table)))
        return len(table), table_offset

    def lay_out_node(self, node: _Node) -> tuple[InodeKind, int, int]:
        if isinstance(node, _Dir):
            return (InodeKind.DIR, *self.lay_out_dir(node))
        if isinstance(node, _Link):
            return InodeKind.LINK, len(node.target), self.place(len(node.target), node.target)
        return InodeKind.FILE, node.size, self.place(node.size, node)

    @property
    def image_size(self) -> int:
        """The real file length: the end of the last byte written (the header is always written)."""
        return max(offset + _payload_size(payload) for offset, payload in self.pieces)


def _payload_size(payload: Payload) -> int:
    return payload.size if isinstance(payload, _File) else len(payload)


def _lay_out(root: _Dir, inode_count: int, bootstrap: _File | None) -> _Layout:
    layout = _Layout(inode_count)
    layout.alloc(PAGE_SIZE)  # the header page
    if bootstrap is not None:
        layout.place(bootstrap.size, bootstrap)
    layout.inode_table_offset = layout.alloc(len(layout.inode_table))
    length, offset = layout.lay_out_dir(root)
    layout.set_inode(0, InodeKind.DIR, root.mode, length, offset)
    layout.pieces.append((layout.inode_table_offset, bytes(layout.inode_table)))
    return layout


# --- writer ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InitfsSummary:
    output: Path
    size: int
    inode_count: int
    bootstrap_entry: int | None
    creation_time: int


def write_initfs(tree: Path, output: Path, *, bootstrap: Path | None, max_size: int = DEFAULT_MAX_SIZE,
                 allow_missing_bootstrap: bool = False, mtime: int | None = None) -> InitfsSummary:
    """Archive the directory ``tree`` into ``output`` (via ``<output>.partial``), the bootstrap ELF at offset 4096."""
    tree, output = Path(tree), Path(output)
    if bootstrap is None and not allow_missing_bootstrap:
        raise FormatError("no bootstrap ELF given: the header's entry point would be 0xFFFFFFFFFFFFFFFF and the "
                          "kernel would jump there and crash ('Bootstrap entry point: FFFFFFFFFFFFFFFF'); pass the "
                          "bootstrap, or allow a missing one only for images that are inspected, never booted",
                          path=output)
    if output.exists() and not output.is_file():
        raise InputError("the initfs output exists and is not a regular file", path=output)
    if not tree.is_dir():
        raise InputError("the initfs source is not a directory", path=tree)
    seconds, nanoseconds = creation_time(mtime)
    try:
        root = _scan_dir(tree, tree.resolve(strict=True), tree.stat().st_mode & MODE_MASK)
    except OSError as error:
        raise InputError(f"cannot read the initfs source: {error.strerror}", path=error.filename) from None
    if not root.entries:
        # Its root entry table would start past the end of the file, which the bootstrap's reader refuses.
        raise InputError("the initfs source directory is empty", path=tree)
    inode_count = _count_inodes(root)
    if inode_count > U16_MAX:
        raise InputError(f"{inode_count} files, directories and links; an initfs holds at most {U16_MAX}", path=tree)
    boot = _bootstrap_file(Path(bootstrap)) if bootstrap is not None else None
    entry = elf_entry(boot.path) if boot is not None else NO_BOOTSTRAP
    layout = _lay_out(root, inode_count, boot)
    _check_limits(layout, root, boot, output, max_size)
    header = HEADER.pack(MAGIC, layout.inode_table_offset, seconds, nanoseconds, inode_count, entry,
                         layout.image_size, PAGE_SIZE)
    layout.pieces.append((0, header))
    _write_pieces(layout, output)
    return InitfsSummary(output, layout.image_size, inode_count, None if boot is None else entry, seconds)


def creation_time(mtime: int | None) -> tuple[int, int]:
    """(seconds, nanoseconds) for the header: ``mtime``, else ``SOURCE_DATE_EPOCH``, else now."""
    if mtime is None and (epoch := os.environ.get("SOURCE_DATE_EPOCH")) is not None:
        try:
            mtime = int(epoch)
        except ValueError:
            raise InputError(f"SOURCE_DATE_EPOCH={epoch!r} is not a whole number of seconds") from None
    if mtime is None:
        return divmod(time.time_ns(), 1_000_000_000)
    if not 0 <= mtime < 1 << 64:
        raise InputError(f"creation time {mtime} is outside 0..2^64-1 seconds")
    return mtime, 0


def _bootstrap_file(path: Path) -> _File:
    try:
        size = path.stat().st_size
    except OSError as error:
        raise InputError(f"cannot read the bootstrap ELF: {error.strerror}", path=path) from None
    return _File(path, size, 0)


def elf_entry(path: Path) -> int:
    """``e_entry`` of an ELF file, read by EI_CLASS (32/64-bit) and EI_DATA (byte order) as redox-initfs-ar does."""
    with open(path, "rb") as stream:
        head = stream.read(0x20)
    if head[:4] != b"\x7fELF":
        raise FormatError("the bootstrap is not an ELF file (no \\x7fELF magic)", path=path)
    width = {1: 4, 2: 8}.get(head[4])
    order = {1: "little", 2: "big"}.get(head[5])
    if width is None or order is None:
        raise FormatError(f"unsupported ELF class {head[4]} / data encoding {head[5]} (expected 1 or 2 each)",
                          path=path)
    field = head[0x18:0x18 + width]
    if len(field) < width:
        raise FormatError("truncated ELF header: no entry point", path=path)
    entry = int.from_bytes(field, order)
    if entry == 0:
        raise FormatError("the bootstrap's ELF entry point is 0, which the kernel refuses; is it a static "
                          "executable linked with the bootstrap's linker script?", path=path)
    return entry


def _check_limits(layout: _Layout, root: _Dir, bootstrap: _File | None, output: Path, max_size: int) -> None:
    if layout.cursor > max_size:
        sizes = [(file.size, path) for path, file in _files(root)]
        if bootstrap is not None:
            sizes.append((bootstrap.size, f"(bootstrap) {bootstrap.path}"))
        biggest = ", ".join(f"{path} {_human(size)}" for size, path in sorted(sizes, reverse=True)[:BIGGEST_SHOWN])
        raise FormatError(f"the initfs would be {_human(layout.cursor)} ({layout.cursor} bytes in 4 KiB pages), over "
                          f"max_size {_human(max_size)} ({max_size} bytes); biggest files: {biggest}; strip the "
                          f"binaries or raise max_size", path=output, key="max_size")
    if layout.last_offset >= U32_LIMIT:
        raise FormatError(f"the initfs would place data at offset {layout.last_offset}; offsets must stay below "
                          f"4 GiB", path=output)


def _human(size: int) -> str:
    if size >= MIB:
        return f"{size / MIB:.1f} MiB"
    return f"{size / 1024:.1f} KiB" if size >= 1024 else f"{size} B"


def _write_pieces(layout: _Layout, output: Path) -> None:
    with atomic_output(output) as stream:
        for offset, payload in sorted(layout.pieces, key=lambda piece: piece[0]):
            stream.seek(offset)
            if isinstance(payload, _File):
                _copy_exactly(payload, stream)
            else:
                stream.write(payload)
        stream.flush()
        written = os.fstat(stream.fileno()).st_size
        if written != layout.image_size:
            raise FormatError(f"wrote {written} bytes but the header says {layout.image_size}", path=output)


def _copy_exactly(file: _File, stream: BinaryIO) -> None:
    """Copy the size measured when the tree was read; a file that changed since then would break the layout."""
    remaining = file.size
    with open(file.path, "rb") as source:
        while remaining and (chunk := source.read(min(COPY_CHUNK, remaining))):
            stream.write(chunk)
            remaining -= len(chunk)
        if remaining or source.read(1):
            raise InputError("file changed size while the initfs was being written", path=file.path)


# --- the layout the bootstrap was built for -------------------------------------------------------------------

# Field order of the structs in the initfs crate's src/types.rs that this module writes (spec §1.1, §1.2, §1.3)
# and the inode type values. Other revisions of the crate use other layouts (12-byte inodes without mode, uid and gid;
# a root inode number in the header), which this writer must not be used for.
EXPECTED_TYPES_RS = {
    "struct Header": ("magic", "inode_table_offset", "creation_time", "inode_count", "bootstrap_entry",
                      "initfs_size", "page_size"),
    "struct InodeHeader": ("type_and_mode", "length", "offset", "uid", "gid"),
    "struct DirEntry": ("inode", "name_len", "name_offset"),
    "enum InodeType": ("RegularFile = 0x0", "Dir = 0x1", "Link = 0x2"),
}


def check_bootstrap_format(types_rs: Path) -> None:
    """Check that the initfs crate the bootstrap is built from (``<base source>/initfs/src/types.rs``) declares the
    layout this writer produces; otherwise the bootstrap would misread the image, so use ``redox-initfs-ar``."""
    text = Path(types_rs).read_text(encoding="utf-8")
    for item, expected in EXPECTED_TYPES_RS.items():
        body = re.search(rf"pub {item} \{{(.*?)\}}", text, re.DOTALL)
        if body is None:
            raise FormatError(f"no `pub {item}` found; cannot tell which initfs layout the bootstrap reads",
                              path=types_rs)
        members = tuple(_declared_members(body.group(1)))
        if members != expected:
            raise FormatError(f"`{item}` is ({', '.join(members)}), but this writer produces "
                              f"({', '.join(expected)}): the bootstrap would misread the image; archive it with "
                              f"the tree's own redox-initfs-ar instead", path=types_rs)


def _declared_members(body: str) -> Iterator[str]:
    """Struct field names, or enum variants with their values, without comments and attributes."""
    for line in body.splitlines():
        line = line.split("//")[0].strip().rstrip(",")
        if not line or line.startswith("#"):
            continue
        yield line.removeprefix("pub ").split(":")[0].strip() if ":" in line else " ".join(line.split())


# --- reader ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Header:
    inode_table_offset: int
    creation_sec: int
    creation_nsec: int
    inode_count: int
    bootstrap_entry: int
    initfs_size: int
    page_size: int

    @property
    def has_bootstrap(self) -> bool:
        return self.bootstrap_entry != NO_BOOTSTRAP


@dataclass(frozen=True)
class Inode:
    number: int
    kind: InodeKind
    mode: int
    length: int
    offset: int
    uid: int
    gid: int


@dataclass(frozen=True)
class DirEntry:
    name: bytes
    inode: int


class Initfs:
    """A validated initfs image in memory. Everything the bootstrap would check lazily is checked here at once."""

    def __init__(self, data: bytes, path: Path | None = None, *, page_size: int | None = PAGE_SIZE):
        self.data = data
        self.path = path
        self.header = self._read_header(page_size)
        self.inodes = tuple(self._read_inode(number) for number in range(self.header.inode_count))
        self._entries = {inode.number: self._read_entries(inode) for inode in self.inodes
                         if inode.kind is InodeKind.DIR}
        if not self.inodes or self.inodes[0].kind is not InodeKind.DIR:
            self._fail("inode 0 (the root) is not a directory")

    def _fail(self, reason: str) -> NoReturn:
        raise FormatError(reason, path=self.path)

    def _read_header(self, page_size: int | None) -> Header:
        length = len(self.data)
        if length < HEADER.size:
            self._fail(f"{length} bytes: too short for the {HEADER.size}-byte header")
        if length >= U32_LIMIT:
            self._fail(f"{length} bytes: an initfs must be smaller than 4 GiB")
        magic, *fields = HEADER.unpack_from(self.data)
        if magic != MAGIC:
            self._fail(f"bad magic {magic!r}, expected {MAGIC!r}")
        header = Header(*fields)
        if header.inode_table_offset < HEADER.size:
            self._fail(f"inode table offset {header.inode_table_offset} lies inside the header")
        table_end = header.inode_table_offset + INODE.size * header.inode_count
        if table_end > length:
            self._fail(f"inode table ends at {table_end}, past the end of the file ({length} bytes)")
        if page_size is not None and header.page_size != page_size:
            self._fail(f"page size {header.page_size}, expected {page_size}")
        if header.initfs_size > length:
            self._fail(f"header says {header.initfs_size} bytes but the file has {length}: truncated")
        return header

    def _read_inode(self, number: int) -> Inode:
        type_and_mode, length, offset, uid, gid = INODE.unpack_from(
            self.data, self.header.inode_table_offset + INODE.size * number)
        try:
            kind = InodeKind(type_and_mode >> TYPE_SHIFT)
        except ValueError:
            self._fail(f"inode {number}: unknown type {type_and_mode >> TYPE_SHIFT}")
        if offset + length > len(self.data):
            self._fail(f"inode {number}: data {offset}..{offset + length} past the end of the file "
                       f"({len(self.data)} bytes)")
        return Inode(number, kind, type_and_mode & MODE_MASK, length, offset, uid, gid)

    def _read_entries(self, directory: Inode) -> tuple[DirEntry, ...]:
        # Stricter than upstream, which silently ignores a partial trailing entry.
        if directory.length % DIR_ENTRY.size:
            self._fail(f"inode {directory.number}: directory length {directory.length} is not a multiple of "
                       f"{DIR_ENTRY.size}")
        entries = []
        for start in range(directory.offset, directory.offset + directory.length, DIR_ENTRY.size):
            inode, name_length, name_offset = DIR_ENTRY.unpack_from(self.data, start)
            if inode >= self.header.inode_count:
                self._fail(f"inode {directory.number}: entry names inode {inode} of {self.header.inode_count}")
            if name_offset + name_length > len(self.data):
                self._fail(f"inode {directory.number}: name {name_offset}..{name_offset + name_length} past the "
                           f"end of the file ({len(self.data)} bytes)")
            entries.append(DirEntry(self.data[name_offset:name_offset + name_length], inode))
        return tuple(entries)

    def entries(self, directory: Inode) -> tuple[DirEntry, ...]:
        return self._entries[directory.number]

    def content(self, inode: Inode) -> bytes:
        """A file's bytes or a symlink's target."""
        return self.data[inode.offset:inode.offset + inode.length]

    def walk(self) -> Iterator[tuple[str, Inode]]:
        """Every inode reachable from the root, parents before children, as (path relative to the root, inode)."""
        yield "", self.inodes[0]
        yield from self._walk(self.inodes[0], "", {0})

    def _walk(self, directory: Inode, prefix: str, ancestors: set[int]) -> Iterator[tuple[str, Inode]]:
        for entry in self.entries(directory):
            if entry.name in (b"", b".", b"..") or b"/" in entry.name or b"\0" in entry.name:
                self._fail(f"inode {directory.number}: unsafe entry name {entry.name!r}")
            inode = self.inodes[entry.inode]
            path = prefix + os.fsdecode(entry.name)
            yield path, inode
            if inode.kind is InodeKind.DIR:
                if inode.number in ancestors:
                    self._fail(f"directory loop at {path!r} (inode {inode.number})")
                yield from self._walk(inode, path + "/", ancestors | {inode.number})


def read_initfs(path: Path, *, page_size: int | None = PAGE_SIZE) -> Initfs:
    path = Path(path)
    return Initfs(path.read_bytes(), path, page_size=page_size)


def dump(path: Path) -> str:
    """The header and every inode, for humans (like ``redox-initfs-dump``, with xxh3-128 instead of xxhash64)."""
    image = read_initfs(path, page_size=None)
    header = image.header
    entry = f"{header.bootstrap_entry:#x}" if header.has_bootstrap else "none (0xffffffffffffffff: would not boot)"
    lines = [
        f"image            {path} ({len(image.data)} bytes)",
        f"inode table      {header.inode_table_offset:#x}, {header.inode_count} inodes",
        f"creation time    {header.creation_sec}.{header.creation_nsec:09d} "
        f"({time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(header.creation_sec))})",
        f"bootstrap entry  {entry}",
        f"initfs size      {header.initfs_size}",
        f"page size        {header.page_size}",
        "",
        f"{'inode':>5} {'type':<4} {'mode':>5} {'offset':>10} {'length':>10}  path",
    ]
    for relative, inode in image.walk():
        detail = ""
        if inode.kind is InodeKind.FILE:
            detail = f"  xxh3:{hash_bytes(image.content(inode))}"
        elif inode.kind is InodeKind.LINK:
            detail = f" -> {os.fsdecode(image.content(inode))}"
        lines.append(f"{inode.number:>5} {inode.kind.name.lower():<4} {inode.mode:>5o} {inode.offset:>#10x} "
                     f"{inode.length:>10}  /{relative}{detail}")
    return "\n".join(lines) + "\n"


def _from_link_dir(stored: str, link_dir: str) -> str:
    """A root-relative link target rewritten relative to the link's directory. Pure path arithmetic: the
    process's working directory must not matter (``os.path.relpath`` would resolve ``..`` against it)."""
    depth = len([part for part in link_dir.split("/") if part])
    return posixpath.normpath(posixpath.join(*([".."] * depth), stored)) if depth else stored


def extract(path: Path, destination: Path) -> None:
    """Recreate the archived tree under ``destination`` (which must not exist): files, directories, symlinks, modes.

    Stored link targets are relative to the archive root; they are written relative to the link's own directory,
    so the extracted link points at the same entry."""
    image = read_initfs(path, page_size=None)
    destination = Path(destination)
    if destination.exists():
        raise InputError("the extraction directory already exists", path=destination)
    destination.mkdir(parents=True)
    directories = []
    for relative, inode in image.walk():
        target = destination / relative
        if inode.kind is InodeKind.DIR:
            target.mkdir(exist_ok=not relative)
            directories.append((target, inode.mode))
        elif inode.kind is InodeKind.LINK:
            stored = os.fsdecode(image.content(inode)) or "."
            target.symlink_to(_from_link_dir(stored, os.path.dirname(relative)))
        else:
            target.write_bytes(image.content(inode))
            os.chmod(target, inode.mode)
    for directory, mode in reversed(directories):  # children first, so a read-only directory is filled before
        os.chmod(directory, mode)
