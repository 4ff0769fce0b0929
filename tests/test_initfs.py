"""The RedoxFtw writer and reader (tasks/initfs/format.py) against spec §1 of shared/specs/redox-formats.md.

The fork's redox-initfs-ar is not published on crates.io, so there is no interoperability test with it here; the
layout is checked against the spec's worked example byte for byte instead, and real ELF files are used as bootstraps.
"""
from __future__ import annotations

import os
import posixpath
import re
import shutil
import stat
import struct
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.errors import FormatError, InputError
from tasks.initfs.format import (
    NO_BOOTSTRAP,
    Initfs,
    InodeKind,
    check_bootstrap_format,
    dump,
    elf_entry,
    extract,
    read_initfs,
    write_initfs,
)
from tasks.process import run

EPOCH = 1_700_000_000


def make_tree(root: Path, spec: dict) -> Path:
    """``spec``: name -> bytes (file), dict (directory) or ("link", target)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, value in spec.items():
        path = root / name
        if isinstance(value, dict):
            make_tree(path, value)
        elif isinstance(value, tuple):
            path.symlink_to(value[1])
        else:
            path.write_bytes(value)
    return root


def archived(image: Initfs) -> dict[str, tuple]:
    """Every path of the image as (kind, mode, content or link target or None)."""
    return {path: (inode.kind, inode.mode, None if inode.kind is InodeKind.DIR else image.content(inode))
            for path, inode in image.walk()}


# --- §1.9, the worked example ------------------------------------------------------------------------------------

def test_worked_example_is_reproduced_byte_for_byte(tmp_path):
    root = make_tree(tmp_path / "root", {"etc": {"hostname": b"redox\n"}})
    os.chmod(root, 0o755)
    os.chmod(root / "etc", 0o755)
    os.chmod(root / "etc" / "hostname", 0o644)

    summary = write_initfs(root, tmp_path / "initfs.img", bootstrap=None, allow_missing_bootstrap=True, mtime=EPOCH)

    expected = bytearray(24579)
    expected[0x0000:0x002C] = bytes.fromhex(
        "52 65 64 6f 78 46 74 77  00 10 00 00") + struct.pack("<QI", EPOCH, 0) + bytes.fromhex(
        "03 00  ff ff ff ff ff ff ff ff  03 60 00 00 00 00 00 00  00 10")
    expected[0x1000:0x103C] = bytes.fromhex(
        "ed 01 00 10  08 00 00 00  00 20 00 00  00 00 00 00  00 00 00 00"    # ino0: root dir 0755, 8 B at 0x2000
        "a4 01 00 00  06 00 00 00  00 40 00 00  00 00 00 00  00 00 00 00"    # ino1: hostname 0644, 6 B at 0x4000
        "ed 01 00 10  08 00 00 00  00 30 00 00  00 00 00 00  00 00 00 00")   # ino2: etc dir 0755, 8 B at 0x3000
    expected[0x2000:0x2008] = bytes.fromhex("02 00 03 00 00 60 00 00")       # root: {inode 2, "etc" at 0x6000}
    expected[0x3000:0x3008] = bytes.fromhex("01 00 08 00 00 50 00 00")       # etc: {inode 1, "hostname" at 0x5000}
    expected[0x4000:0x4006] = b"redox\n"
    expected[0x5000:0x5008] = b"hostname"
    expected[0x6000:0x6003] = b"etc"

    image = (tmp_path / "initfs.img").read_bytes()
    assert len(image) == 24579 == summary.size
    assert image[0x1A:0x22] == b"\xff" * 8
    assert image == bytes(expected)
    assert summary.inode_count == 3 and summary.bootstrap_entry is None


def test_empty_tree_is_refused(tmp_path):
    # upstream would write a 4116-byte image whose root entry table starts at 8192, past its own end
    root = make_tree(tmp_path / "root", {})
    with pytest.raises(InputError, match="empty"):
        write_initfs(root, tmp_path / "out", bootstrap=None, allow_missing_bootstrap=True, mtime=0)


def test_empty_file_shares_its_offset_with_the_next_allocation(tmp_path):
    root = make_tree(tmp_path / "root", {"e": b""})
    write_initfs(root, tmp_path / "out", bootstrap=None, allow_missing_bootstrap=True, mtime=0)
    image = read_initfs(tmp_path / "out")
    (entry,) = image.entries(image.inodes[0])
    file = image.inodes[entry.inode]
    # zero-length allocations do not move the cursor (spec §1.4): data and name both sit at 0x3000
    assert (file.offset, file.length) == (0x3000, 0)
    assert image.data[0x3000:0x3001] == b"e" and len(image.data) == 0x3001


# --- the bootstrap -------------------------------------------------------------------------------------------------

def readelf_entry(path: Path) -> int:
    """e_entry as binutils' readelf sees it: an independent reader of the ELF header."""
    header = run(["readelf", "-h", path], capture=True)
    return int(re.search(r"Entry point address:\s+(0x[0-9a-f]+)", header).group(1), 16)


@pytest.fixture(scope="module")
def static_elf(tmp_path_factory) -> Path:
    """A tiny static executable, like the bootstrap: no libc, one entry point."""
    directory = tmp_path_factory.mktemp("elf")
    (directory / "boot.c").write_text("void _start(void) { for (;;) { } }\n")
    run(["cc", "-static", "-nostdlib", "-O1", "-o", directory / "boot", directory / "boot.c"])
    return directory / "boot"


@pytest.mark.parametrize("which", ["static", "system"])
def test_bootstrap_is_copied_verbatim_at_4096_with_its_entry_point(tmp_path, static_elf, which):
    bootstrap = static_elf if which == "static" else Path(shutil.which("true")).resolve()
    elf = bootstrap.read_bytes()
    root = make_tree(tmp_path / "root", {"etc": {"init.rc": b"export PATH /scheme/initfs/bin\n"}})

    summary = write_initfs(root, tmp_path / "initfs.img", bootstrap=bootstrap, mtime=EPOCH)

    image = (tmp_path / "initfs.img").read_bytes()
    entry = readelf_entry(bootstrap)
    assert entry != 0 and summary.bootstrap_entry == entry
    assert struct.unpack_from("<Q", image, 0x1A)[0] == entry
    assert image[4096:4096 + len(elf)] == elf
    # everything after the bootstrap shifts by its page-rounded size (spec §1.9, last line)
    assert read_initfs(tmp_path / "initfs.img").header.inode_table_offset == 4096 + -(-len(elf) // 4096) * 4096
    assert archived(read_initfs(tmp_path / "initfs.img"))["etc/init.rc"][2] == b"export PATH /scheme/initfs/bin\n"


@pytest.mark.parametrize("ei_class, ei_data, field, entry", [
    (1, 1, (0x1234ABCD).to_bytes(4, "little"), 0x1234ABCD),
    (1, 2, (0x1234ABCD).to_bytes(4, "big"), 0x1234ABCD),
    (2, 1, (0x40000000_00002000).to_bytes(8, "little"), 0x40000000_00002000),
    (2, 2, (0x40000000_00002000).to_bytes(8, "big"), 0x40000000_00002000),
])
def test_elf_entry_follows_class_and_byte_order(tmp_path, ei_class, ei_data, field, entry):
    elf = tmp_path / "elf"
    elf.write_bytes(b"\x7fELF" + bytes([ei_class, ei_data]) + bytes(0x18 - 6) + field + bytes(16))
    assert elf_entry(elf) == entry


@pytest.mark.parametrize("content, message", [
    (b"#!/bin/sh\n" + bytes(40), "not an ELF file"),
    (b"\x7fELF\x03\x01" + bytes(40), "unsupported ELF class 3"),
    (b"\x7fELF\x02\x01" + bytes(18), "truncated ELF header"),
    (b"\x7fELF\x02\x01" + bytes(40), "entry point is 0"),
])
def test_bad_bootstraps_are_rejected(tmp_path, content, message):
    (tmp_path / "bootstrap").write_bytes(content)
    root = make_tree(tmp_path / "root", {"f": b"x"})
    with pytest.raises(FormatError, match=message):
        write_initfs(root, tmp_path / "out", bootstrap=tmp_path / "bootstrap", mtime=0)
    assert not (tmp_path / "out").exists()


def test_missing_bootstrap_is_an_error_unless_allowed(tmp_path):
    root = make_tree(tmp_path / "root", {"f": b"x"})
    with pytest.raises(FormatError) as error:
        write_initfs(root, tmp_path / "out", bootstrap=None, mtime=0)
    assert "0xFFFFFFFFFFFFFFFF" in str(error.value) and "crash" in str(error.value)
    assert not (tmp_path / "out").exists()

    write_initfs(root, tmp_path / "out", bootstrap=None, allow_missing_bootstrap=True, mtime=0)
    header = read_initfs(tmp_path / "out").header
    assert header.bootstrap_entry == NO_BOOTSTRAP and not header.has_bootstrap


# --- reproducibility -----------------------------------------------------------------------------------------------

def test_two_builds_of_the_same_inputs_are_byte_identical(tmp_path, monkeypatch, static_elf):
    # Two copies of one tree whose directories list in different orders: ext4 lists by hash, tmpfs (/dev/shm)
    # newest first; the copies are also created in opposite orders.
    names = [f"daemon{index:02d}" for index in range(40)]
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else tmp_path) as other:
        first, second = tmp_path / "first", Path(other) / "second"
        for root, order in ((first, names), (second, names[::-1])):
            for name in order:
                make_tree(root, {"bin": {name: name.encode() * 100}})
            make_tree(root, {"etc": {"init.rc": b"rtcd\n"}})
        if shm.is_dir():
            assert [e.name for e in os.scandir(first / "bin")] != [e.name for e in os.scandir(second / "bin")]
        monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))

        write_initfs(first, tmp_path / "a.img", bootstrap=static_elf)
        time.sleep(1.1)
        write_initfs(second, tmp_path / "b.img", bootstrap=static_elf)

    assert (tmp_path / "a.img").read_bytes() == (tmp_path / "b.img").read_bytes()
    header = read_initfs(tmp_path / "a.img").header
    assert (header.creation_sec, header.creation_nsec) == (EPOCH, 0)


def test_creation_time_is_now_without_source_date_epoch(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    root = make_tree(tmp_path / "root", {"f": b"x"})
    before = time.time()
    write_initfs(root, tmp_path / "out", bootstrap=None, allow_missing_bootstrap=True)
    assert before - 1 <= read_initfs(tmp_path / "out").header.creation_sec <= time.time() + 1


def test_bad_source_date_epoch_is_an_input_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    root = make_tree(tmp_path / "root", {"f": b"x"})
    with pytest.raises(InputError, match="SOURCE_DATE_EPOCH='yesterday'"):
        write_initfs(root, tmp_path / "out", bootstrap=None, allow_missing_bootstrap=True)


# --- limits --------------------------------------------------------------------------------------------------------

def test_over_size_names_the_size_and_the_biggest_files_and_keeps_the_old_image(tmp_path):
    root = make_tree(tmp_path / "root", {"bin": {"redoxfs": bytes(3 << 20), "pcid": bytes(1 << 20), "init": b"i"},
                                         "etc": {"init.rc": b"rtcd\n"}})
    (tmp_path / "initfs.img").write_bytes(b"previous image")

    with pytest.raises(FormatError) as error:
        write_initfs(root, tmp_path / "initfs.img", bootstrap=None, allow_missing_bootstrap=True,
                     max_size=2 << 20, mtime=0)

    message = str(error.value)
    # pages: header, inode table, 3 entry tables, 6 names, files 768 + 256 + 1 + 1 = 1037 pages
    assert "4.1 MiB (4247552 bytes in 4 KiB pages)" in message
    assert "max_size 2.0 MiB (2097152 bytes)" in message
    assert "biggest files: bin/redoxfs 3.0 MiB, bin/pcid 1.0 MiB, etc/init.rc 5 B, bin/init 1 B;" in message
    assert (tmp_path / "initfs.img").read_bytes() == b"previous image"
    assert not (tmp_path / "initfs.img.partial").exists()


def test_max_size_bounds_the_page_rounded_end_inclusively(tmp_path):
    # header page, inode table page, root entry table page, file page, name page
    root = make_tree(tmp_path / "root", {"f": b"0123456789"})
    write_initfs(root, tmp_path / "out", bootstrap=None, allow_missing_bootstrap=True, max_size=5 * 4096, mtime=0)
    with pytest.raises(FormatError, match="max_size"):
        write_initfs(root, tmp_path / "out", bootstrap=None, allow_missing_bootstrap=True, max_size=5 * 4096 - 1,
                     mtime=0)


def test_special_files_and_non_utf8_names_are_rejected(tmp_path):
    root = make_tree(tmp_path / "fifo", {})
    os.mkfifo(root / "pipe")
    with pytest.raises(InputError, match="FIFO"):
        write_initfs(root, tmp_path / "out", bootstrap=None, allow_missing_bootstrap=True, mtime=0)

    root = make_tree(tmp_path / "latin1", {})
    (root / os.fsdecode(b"caf\xe9")).write_bytes(b"x")
    with pytest.raises(InputError, match="not UTF-8"):
        write_initfs(root, tmp_path / "out", bootstrap=None, allow_missing_bootstrap=True, mtime=0)


def test_output_that_is_a_directory_is_rejected(tmp_path):
    root = make_tree(tmp_path / "root", {"f": b"x"})
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match="not a regular file"):
        write_initfs(root, tmp_path / "out", bootstrap=None, allow_missing_bootstrap=True, mtime=0)


# --- symlinks ------------------------------------------------------------------------------------------------------

def test_symlink_targets_are_stored_relative_to_the_archive_root(tmp_path):
    root = make_tree(tmp_path / "data", {
        "foo": {"file.txt": b"hello", "file-link.txt": ("link", "file.txt")},   # the spec's example
        "x": {"up": ("link", "../y")},                                          # `..` is kept, as pathdiff does
        "abs": ("link", "/etc/hostname"),
        "self": ("link", "."),
    })
    write_initfs(root, tmp_path / "out", bootstrap=None, allow_missing_bootstrap=True, mtime=0)
    links = {path: content for path, (kind, _, content) in archived(read_initfs(tmp_path / "out")).items()
             if kind is InodeKind.LINK}
    assert links == {
        "foo/file-link.txt": b"foo/file.txt",
        "x/up": b"x/../y",
        "abs": b"etc/hostname",  # a path inside the initfs (redox-initfs-ar: relative to the host's build dir)
        "self": b"",
    }


def test_an_absolute_link_does_not_make_the_bytes_depend_on_where_the_build_directory_is(tmp_path):
    images = []
    for where in ("a", "b/deeper/still"):
        root = make_tree(tmp_path / where / "data", {"bin": {"x": b"x", "abs": ("link", "/bin/x")}})
        write_initfs(root, tmp_path / where / "out", bootstrap=None, allow_missing_bootstrap=True, mtime=0)
        images.append((tmp_path / where / "out").read_bytes())
    assert images[0] == images[1]


# --- reading back random trees -------------------------------------------------------------------------------------

names = st.text(st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)), min_size=1,
                max_size=10).filter(lambda name: name not in (".", ".."))
files = st.tuples(st.just("file"), st.binary(max_size=300), st.integers(0, 0o7777))
trees = st.recursive(
    st.dictionaries(names, files, max_size=4),
    lambda children: st.dictionaries(names, st.one_of(files, st.tuples(st.just("dir"), children,
                                                                        st.integers(0, 0o7777))), max_size=5),
    max_leaves=25)


def build_random_tree(root: Path, spec: dict, draw) -> list[Path]:
    """Create ``spec`` under ``root``; return every directory so links can be added afterwards."""
    directories = [root]
    for name, (kind, payload, mode) in spec.items():
        path = root / name
        if kind == "file":
            path.write_bytes(payload)
            os.chmod(path, mode | 0o600)  # owner read/write so the test also runs unprivileged
        else:
            path.mkdir()
            directories += build_random_tree(path, payload, draw)
            os.chmod(path, mode | 0o700)
    return directories


def add_random_links(root: Path, directories: list[Path], draw) -> None:
    entries = sorted(str(path.relative_to(root)) for path in root.rglob("*"))
    for index in range(draw(st.integers(0, 4))):
        where = draw(st.sampled_from(directories))
        target = draw(st.one_of(
            st.sampled_from(entries).map(lambda entry: os.path.relpath(root / entry, where)) if entries
            else st.just("missing"),
            st.just("dangling/target"),
            st.just("/usr/lib/init.d"),
            st.just("."),
        ))
        (where / f"link{index}").symlink_to(target)


def host_tree(root: Path) -> dict[str, tuple]:
    """What the archive should hold, read with lstat: (kind, mode, content) per path."""
    found = {"": (InodeKind.DIR, root.stat().st_mode & 0o7777, None)}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        relative = str(path.relative_to(root))
        if stat.S_ISLNK(info.st_mode):
            found[relative] = (InodeKind.LINK, info.st_mode & 0o7777, os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            found[relative] = (InodeKind.DIR, info.st_mode & 0o7777, None)
        else:
            found[relative] = (InodeKind.FILE, info.st_mode & 0o7777, path.read_bytes())
    return found


def resolves_to(root: Path, link: str, target: str) -> str:
    """Where a link's target points, as a normalized absolute path (no symlinked directories in these trees)."""
    return posixpath.normpath(posixpath.join(str(root.resolve() / posixpath.dirname(link)), target))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=trees.filter(bool), data=st.data())
def test_random_trees_read_back_completely(spec, data):
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        root = scratch / "tree"
        root.mkdir()
        add_random_links(root, build_random_tree(root, spec, data.draw), data.draw)
        expected = host_tree(root)

        write_initfs(root, scratch / "initfs.img", bootstrap=None, allow_missing_bootstrap=True, mtime=EPOCH)
        image = read_initfs(scratch / "initfs.img")
        got = archived(image)

        assert got.keys() == expected.keys()
        for path, (kind, mode, content) in expected.items():
            assert got[path][:2] == (kind, mode), path
            if kind is InodeKind.FILE:
                assert got[path][2] == content, path
            elif kind is InodeKind.LINK:  # stored relative to the archive root, pointing at the same place
                stored = os.fsdecode(got[path][2])
                # an absolute target is a path inside the initfs, not on the host
                meant = resolves_to(root, "", content.lstrip("/")) if content.startswith("/") else \
                    resolves_to(root, path, content)
                assert resolves_to(root, "", stored) == meant, path
        assert_structure(image)
        assert_extracts_to_the_same_tree(image, scratch, got)


def assert_structure(image: Initfs) -> None:
    """Names sorted by bytes; post-order numbering (a directory after all its descendants); the root is inode 0."""
    def check(directory, ancestors):
        entries = image.entries(directory)
        assert [entry.name for entry in entries] == sorted(entry.name for entry in entries)
        for entry in entries:
            assert all(entry.inode < ancestor for ancestor in ancestors)
            inode = image.inodes[entry.inode]
            if inode.kind is InodeKind.DIR:
                check(inode, ancestors + [inode.number])
    check(image.inodes[0], [])
    assert image.header.inode_count == len(list(image.walk()))
    assert image.header.initfs_size == len(image.data)


def assert_extracts_to_the_same_tree(image: Initfs, scratch: Path, got: dict[str, tuple]) -> None:
    extract(image.path, scratch / "extracted")
    again = host_tree(scratch / "extracted")
    assert again.keys() == got.keys()
    for path, (kind, mode, content) in got.items():
        if kind is InodeKind.LINK:
            stored = os.fsdecode(content) or "."
            assert resolves_to(scratch / "extracted", path, again[path][2]) == \
                resolves_to(scratch / "extracted", "", stored), path
        else:
            assert again[path] == (kind, mode, content), path


# --- the reader rejects corrupt images -----------------------------------------------------------------------------

@pytest.fixture
def example_image(tmp_path) -> bytes:
    root = make_tree(tmp_path / "root", {"etc": {"hostname": b"redox\n"}, "link": ("link", "etc/hostname")})
    write_initfs(root, tmp_path / "good.img", bootstrap=None, allow_missing_bootstrap=True, mtime=0)
    return (tmp_path / "good.img").read_bytes()


def patched(image: bytes, offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(image)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


def inode_field(image: bytes, number: int, field: int) -> int:
    return struct.unpack_from("<I", image, 0x1000 + 20 * number + 4 * field)[0]


def root_entry_offset(image: bytes) -> int:
    return inode_field(image, 0, 2)


CORRUPTIONS = {
    "bad magic": (lambda image: b"RedoxFTW" + image[8:], "bad magic"),
    "too short": (lambda image: image[:43], "too short"),
    "inode table inside the header": (lambda image: patched(image, 8, "<I", 40), "inside the header"),
    "inode table past the end": (lambda image: patched(image, 8, "<I", len(image) - 10), "inode table ends"),
    "wrong page size": (lambda image: patched(image, 0x2A, "<H", 16384), "page size 16384"),
    "truncated": (lambda image: image[:-1], "truncated"),
    "data past the end": (lambda image: patched(image, 0x1000 + 20 * 1 + 8, "<I", len(image) - 2),
                          "past the end of the file"),
    "unknown type": (lambda image: patched(image, 0x1000 + 20 * 1, "<I", (7 << 28) | 0o644), "unknown type 7"),
    "entry names a missing inode": (lambda image: patched(image, root_entry_offset(image), "<H", 99),
                                    "names inode 99"),
    "name past the end": (lambda image: patched(image, root_entry_offset(image) + 4, "<I", len(image) - 1),
                          "name .* past the end"),
    "directory length not a multiple of 8": (lambda image: patched(image, 0x1000 + 4, "<I", 9), "multiple of 8"),
    "root not a directory": (lambda image: patched(image, 0x1000, "<I", 0o755), "root"),
    "directory loop": (lambda image: patched(image, root_entry_offset(image), "<H", 0), "directory loop"),
    "unsafe name": (lambda image: _with_name(image, b".."), "unsafe entry name"),
}


def _with_name(image: bytes, name: bytes) -> bytes:
    """Rename the root's first entry (etc) to ``name``, in place."""
    data = bytearray(image)
    _, _, offset = struct.unpack_from("<HHI", data, root_entry_offset(image))
    data[offset:offset + len(name)] = name
    struct.pack_into("<H", data, root_entry_offset(image) + 2, len(name))
    return bytes(data)


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_reader_rejects_corrupt_images(tmp_path, example_image, corruption):
    corrupt, message = CORRUPTIONS[corruption]
    (tmp_path / "bad.img").write_bytes(corrupt(example_image))
    with pytest.raises(FormatError, match=message):
        image = read_initfs(tmp_path / "bad.img")
        list(image.walk())


def test_the_example_image_itself_reads(tmp_path, example_image):
    (tmp_path / "good.img").write_bytes(example_image)
    assert archived(read_initfs(tmp_path / "good.img"))["link"] == (InodeKind.LINK, 0o777, b"etc/hostname")


# --- dump and extract ----------------------------------------------------------------------------------------------

def test_dump_shows_header_and_every_inode(tmp_path, static_elf):
    root = make_tree(tmp_path / "root", {"etc": {"hostname": b"redox\n"}, "link": ("link", "etc/hostname")})
    write_initfs(root, tmp_path / "initfs.img", bootstrap=static_elf, mtime=EPOCH)
    text = dump(tmp_path / "initfs.img")
    assert f"bootstrap entry  {readelf_entry(static_elf):#x}" in text
    assert "2023-11-14 22:13:20 UTC" in text
    assert re.search(r"\n\s+\d+ file\s+644 .* /etc/hostname  xxh3:[0-9a-f]{32}\n", text)
    assert re.search(r"\n\s+\d+ link\s+777 .* /link -> etc/hostname\n", text)
    assert re.search(r"\n\s+0 dir .* /\n", text)


def test_extract_recreates_files_modes_and_links(tmp_path):
    root = make_tree(tmp_path / "root", {"bin": {"init": b"\x7fELF..."}, "etc": {"init.rc": b"rtcd\n"},
                                         "usr": {"bin": ("link", "../bin")}})
    os.chmod(root / "bin" / "init", 0o4755)
    os.chmod(root / "etc", 0o555)
    write_initfs(root, tmp_path / "initfs.img", bootstrap=None, allow_missing_bootstrap=True, mtime=0)

    extract(tmp_path / "initfs.img", tmp_path / "out")

    assert (tmp_path / "out" / "bin" / "init").read_bytes() == b"\x7fELF..."
    assert stat.S_IMODE((tmp_path / "out" / "bin" / "init").stat().st_mode) == 0o4755
    assert stat.S_IMODE((tmp_path / "out" / "etc").stat().st_mode) == 0o555
    assert (tmp_path / "out" / "etc" / "init.rc").read_text() == "rtcd\n"
    assert os.readlink(tmp_path / "out" / "usr" / "bin") == "../bin"
    assert (tmp_path / "out" / "usr" / "bin" / "init").read_bytes() == b"\x7fELF..."
    with pytest.raises(InputError, match="already exists"):
        extract(tmp_path / "initfs.img", tmp_path / "out")
    os.chmod(tmp_path / "out" / "etc", 0o755)


# --- which layout the bootstrap reads ------------------------------------------------------------------------------

TYPES_RS = """
#[repr(C, packed)]
pub struct Header {
    pub magic: Magic,
    pub inode_table_offset: Offset,
    pub creation_time: Timespec,
    pub inode_count: U16,
    /// read by the kernel at 0x1A
    pub bootstrap_entry: U64,
    pub initfs_size: U64,
    pub page_size: U16,
}
#[repr(C, packed)]
pub struct InodeHeader {
    pub type_and_mode: U32,
    pub length: U32,
    pub offset: Offset,
    pub uid: U32,
    pub gid: U32,
}
#[repr(u8)]
pub enum InodeType {
    RegularFile = 0x0,
    Dir = 0x1,
    Link = 0x2,
    // All other bit patterns are reserved
}
#[repr(C, packed)]
pub struct DirEntry {
    pub inode: U16,
    pub name_len: U16,
    pub name_offset: Offset,
}
"""
# A later revision of the crate: 12-byte inodes without mode/uid/gid, and an executable-file type.
TYPES_RS_12_BYTE_INODES = TYPES_RS.replace("""    pub type_and_mode: U32,
    pub length: U32,
    pub offset: Offset,
    pub uid: U32,
    pub gid: U32,""", """    pub type_: U32,
    pub length: Length,
    pub offset: Offset,""")


def test_bootstrap_format_check_accepts_the_layout_written_here(tmp_path):
    (tmp_path / "types.rs").write_text(TYPES_RS)
    check_bootstrap_format(tmp_path / "types.rs")


@pytest.mark.parametrize("text, message", [
    (TYPES_RS_12_BYTE_INODES, r"`struct InodeHeader` is \(type_, length, offset\).*redox-initfs-ar"),
    (TYPES_RS.replace("Link = 0x2", "ExecutableFile = 0x2,\n    Link = 0x3"), r"`enum InodeType` is"),
    (TYPES_RS.replace("pub struct DirEntry", "pub struct Entry"), r"no `pub struct DirEntry` found"),
])
def test_bootstrap_format_check_rejects_other_layouts(tmp_path, text, message):
    (tmp_path / "types.rs").write_text(text)
    with pytest.raises(FormatError, match=message):
        check_bootstrap_format(tmp_path / "types.rs")
