"""pkgar archives: our writer and reader against each other, against hand-forged packages, and against the real
``pkgar`` CLI (0.2.4 for the current header, 0.1.19 for the old ``count: u64`` header)."""
from __future__ import annotations

import lzma
import os
import stat
import struct
import tempfile
from pathlib import Path

import blake3
import nacl.signing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.errors import CommandError, FormatError, InputError
from tasks.formats import pkgar
from tasks.formats.pkgkeys import KeyPair, ensure_keys, generate
from tasks.process import run
from tasks.toolchain import hosttools

# Host tools are cached across runs here (git-ignored); the old release needs its own root because it installs a
# binary of the same name.
BUILD = Path(__file__).resolve().parents[1] / "build"


# --- helpers --------------------------------------------------------------------------------------------------

def write_tree(root: Path, tree: dict) -> None:
    """Materialise ``{name: bytes | (bytes, mode) | ("->", target) | {subtree}}`` below ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, node in tree.items():
        path = root / name
        if isinstance(node, dict):
            write_tree(path, node)
        elif isinstance(node, tuple) and node[0] == "->":
            os.symlink(node[1], path)
        else:
            content, mode = node if isinstance(node, tuple) else (node, 0o644)
            path.write_bytes(content)
            os.chmod(path, mode)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and symlink below ``root``: what pkgar keeps (directories are implied by paths)."""
    result = {}
    for directory, subdirectories, files in os.walk(root):  # a symlink to a directory is listed, not followed
        for name in subdirectories + files:
            path = Path(directory, name)
            relative = str(path.relative_to(root))
            if path.is_symlink():
                result[relative] = ("symlink", os.readlink(path))
            elif path.is_file():
                result[relative] = ("file", path.read_bytes(), stat.S_IMODE(path.lstat().st_mode))
    return result


def extracted(tree: dict[str, tuple]) -> dict[str, tuple]:
    """A snapshot as extraction on the host leaves it: setuid and setgid stay in the package, not on the host's
    files (issue 12, item 2)."""
    return {path: (entry[0], entry[1], entry[2] & ~0o6000) if entry[0] == "file" else entry
            for path, entry in tree.items()}


def forge(archive: Path, key: KeyPair, files: list[tuple[bytes, bytes, int]], flags: int = 0,
          encode=lambda content: content) -> None:
    """Write a correctly signed package with arbitrary entries ``(path, content, mode)``, each stored as
    ``encode(content)``, bypassing create() the way a hostile, buggy or merely different packager could."""
    entries, data = [], b""
    for path, content, mode in files:
        stored = encode(content)
        entries.append(pkgar.Entry(blake3.blake3(content).digest(), len(data), len(stored), mode, path))
        data += stored
    table = b"".join(entry.pack() for entry in entries)
    signed = key.public_key + blake3.blake3(table).digest() + struct.pack("<II", len(entries), flags)
    archive.write_bytes(key.sign(signed) + signed + table + data)


def xz_raw_lzma2(content: bytes, trailer: bytes = b"") -> bytes:
    """An LZMA2 entry as pkgar stores it, made by xz's raw encoder with a smaller dictionary than upstream's."""
    compressed = lzma.compress(content, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2,
                                                                          "dict_size": 1 << 16}])
    return struct.pack("<Q", len(content)) + compressed + trailer


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


SAMPLE_TREE = {
    "etc": {"motd": b"hello\n", "empty": b""},
    "usr": {"bin": {"tool": (b"\x7fELF" + bytes(range(256)) * 40, 0o4755)},
            "lib": {"libc.so": ("->", "libc.so.6"), "libc.so.6": (b"lib" * 5000, 0o755)}},
    "abs-link": ("->", "/usr/bin/tool"),
    # Over 2 MiB: several read chunks, and several LZMA2 chunks (each holds at most 2 MiB uncompressed).
    "words": b"".join(b"%d redox\n" % number for number in range(300_000)),
}


@pytest.fixture
def key() -> KeyPair:
    return generate()


@pytest.fixture
def stage(tmp_path: Path) -> Path:
    write_tree(tmp_path / "stage", SAMPLE_TREE)
    return tmp_path / "stage"


# --- our writer and reader ------------------------------------------------------------------------------------

NAMES = st.text(alphabet="abcXYZ019._-é", min_size=1, max_size=8).filter(lambda name: name not in (".", ".."))
LEAVES = st.one_of(
    st.tuples(st.binary(max_size=3000), st.integers(min_value=1, max_value=0o7777)),
    st.tuples(st.just("->"), st.text(alphabet="abc/._-", min_size=1, max_size=20)),
)
TREES = st.recursive(LEAVES, lambda children: st.dictionaries(NAMES, children, min_size=1, max_size=5),
                     max_leaves=20).filter(lambda tree: isinstance(tree, dict))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREES, packaging=st.sampled_from(pkgar.Packaging))
def test_round_trip_keeps_contents_modes_and_symlinks(tree: dict, packaging: pkgar.Packaging) -> None:
    key = KeyPair(b"\x07" * 32)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        write_tree(work / "stage", tree)
        header = pkgar.create(work / "stage", work / "a.pkgar", key, packaging=packaging)
        package = pkgar.extract(work / "a.pkgar", key.public_key, work / "out")
        assert snapshot(work / "out") == extracted(snapshot(work / "stage"))
        assert package.header == header and header.count == len(snapshot(work / "stage"))
        pkgar.create(work / "stage", work / "b.pkgar", key, packaging=packaging)
        assert (work / "a.pkgar").read_bytes() == (work / "b.pkgar").read_bytes()


def test_entries_are_depth_first_and_sorted_by_name_bytes(tmp_path: Path, key: KeyPair) -> None:
    write_tree(tmp_path / "stage", {"b": b"", "B": b"", "a": {"z": b"", "Z": b"", "m": {"x": b""}}, "a-": b"",
                                    "\u00e9": b"", "e": b""})
    pkgar.create(tmp_path / "stage", tmp_path / "p.pkgar", key)
    paths = [entry.path for entry in pkgar.open_package(tmp_path / "p.pkgar", key.public_key).entries]
    assert paths == [b"B", b"a/Z", b"a/m/x", b"a/z", b"a-", b"b", b"e", "\u00e9".encode()]


def test_layout_matches_the_spec_byte_for_byte(tmp_path: Path, key: KeyPair) -> None:
    write_tree(tmp_path / "stage", {"a": b"0123456789", "b": (b"abcde", 0o755)})
    header = pkgar.create(tmp_path / "stage", tmp_path / "p.pkgar", key)
    raw = (tmp_path / "p.pkgar").read_bytes()
    assert len(raw) == 767 and header.head_size == 752  # spec §2.7's mini example
    table = raw[136:752]
    nacl.signing.VerifyKey(key.public_key).verify(raw[64:136], raw[:64])
    assert raw[64:96] == key.public_key and raw[96:128] == blake3.blake3(table).digest()
    assert struct.unpack("<II", raw[128:136]) == (2, 0)
    assert struct.unpack_from("<32sQQI", table, 0) == (blake3.blake3(b"0123456789").digest(), 0, 10, 0o100644)
    assert struct.unpack_from("<32sQQI", table, 308) == (blake3.blake3(b"abcde").digest(), 10, 5, 0o100755)
    assert table[52:308] == b"a".ljust(256, b"\0") and raw[752:] == b"0123456789abcde"


def test_old_header_is_the_current_one_without_flags(tmp_path: Path, stage: Path, key: KeyPair) -> None:
    old = pkgar.create(stage, tmp_path / "old.pkgar", key, header_format=pkgar.HeaderFormat.COUNT_U64)
    pkgar.create(stage, tmp_path / "new.pkgar", key)
    raw = (tmp_path / "old.pkgar").read_bytes()
    assert struct.unpack("<Q", raw[128:136]) == (old.count,)
    assert raw == (tmp_path / "new.pkgar").read_bytes() and old.readable_by_old_tools


def test_old_header_cannot_record_compression(tmp_path: Path, stage: Path, key: KeyPair) -> None:
    with pytest.raises(FormatError, match="no flags"):
        pkgar.create(stage, tmp_path / "p.pkgar", key, header_format=pkgar.HeaderFormat.COUNT_U64,
                     packaging=pkgar.Packaging.LZMA2)
    assert not (tmp_path / "p.pkgar").exists()


def test_flags_hold_packaging_and_architecture(tmp_path: Path, stage: Path, key: KeyPair) -> None:
    header = pkgar.create(stage, tmp_path / "p.pkgar", key, packaging=pkgar.Packaging.LZMA2,
                          architecture=pkgar.Architecture.AARCH64)
    assert (tmp_path / "p.pkgar").read_bytes()[132:136] == bytes([0, 3, 1, 0])
    assert header.flags == pkgar.HeaderFlags(pkgar.Packaging.LZMA2, pkgar.Architecture.AARCH64)
    assert not header.readable_by_old_tools


def test_lzma2_entries_are_raw_lzma2_after_a_length_prefix(tmp_path: Path, key: KeyPair) -> None:
    """Entries compressed independently of our writer still read."""
    content = b"redox " * 10000
    forge(tmp_path / "p.pkgar", key, [(b"f", content, 0o100644)], flags=1 << 16, encode=xz_raw_lzma2)
    package = pkgar.verify(tmp_path / "p.pkgar", key.public_key)
    assert package.read(package.entries[0]) == content
    assert package.installed_size() == 136 + 308 + len(content)


def test_bytes_after_the_lzma2_end_marker_are_ignored_like_upstream(tmp_path: Path, key: KeyPair,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pkgar, "CHUNK_SIZE", 64)  # so that the trailer arrives after the end of the stream
    content = bytes(range(256)) * 50
    forge(tmp_path / "p.pkgar", key, [(b"f", content, 0o100644)], flags=1 << 16,
          encode=lambda data: xz_raw_lzma2(data, trailer=b"trailer" * 50))
    package = pkgar.open_package(tmp_path / "p.pkgar", key.public_key)
    assert package.read(package.entries[0]) == content


@pytest.mark.parametrize("stored, message", [(lambda content: xz_raw_lzma2(content)[:-20], "ends before"),
                                             (lambda content: xz_raw_lzma2(content)[:9] + b"garbage", "bad LZMA2"),
                                             (lambda content: b"1234", "too short")])
def test_broken_lzma2_entries_are_rejected(tmp_path: Path, key: KeyPair, stored, message: str) -> None:
    forge(tmp_path / "p.pkgar", key, [(b"f", bytes(range(256)) * 50, 0o100644)], flags=1 << 16, encode=stored)
    with pytest.raises(FormatError, match=message):
        pkgar.verify(tmp_path / "p.pkgar", key.public_key)


def test_installed_size_of_an_uncompressed_package_is_its_file_size(tmp_path: Path, stage: Path,
                                                                     key: KeyPair) -> None:
    pkgar.create(stage, tmp_path / "p.pkgar", key)
    package = pkgar.open_package(tmp_path / "p.pkgar", key.public_key)
    assert package.installed_size() == (tmp_path / "p.pkgar").stat().st_size


def test_split_head_and_data_concatenate_to_the_package(tmp_path: Path, stage: Path, key: KeyPair) -> None:
    pkgar.create(stage, tmp_path / "p.pkgar", key)
    package = pkgar.split(tmp_path / "p.pkgar", key.public_key, tmp_path / "p.head", tmp_path / "p.data")
    head, data = (tmp_path / "p.head").read_bytes(), (tmp_path / "p.data").read_bytes()
    assert head + data == (tmp_path / "p.pkgar").read_bytes() and len(head) == package.header.head_size
    assert pkgar.open_package(tmp_path / "p.head", key.public_key).entries == package.entries


# --- what must be rejected ------------------------------------------------------------------------------------

def test_wrong_key_is_rejected(tmp_path: Path, stage: Path, key: KeyPair) -> None:
    pkgar.create(stage, tmp_path / "p.pkgar", key)
    with pytest.raises(FormatError, match="signature does not verify"):
        pkgar.extract(tmp_path / "p.pkgar", generate().public_key, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_embedded_key_is_not_trusted_by_itself(tmp_path: Path, stage: Path, key: KeyPair) -> None:
    """A package re-signed by someone else carries their key; it verifies only against that key."""
    attacker = generate()
    pkgar.create(stage, tmp_path / "p.pkgar", attacker)
    pkgar.open_package(tmp_path / "p.pkgar", attacker.public_key)
    with pytest.raises(FormatError):
        pkgar.open_package(tmp_path / "p.pkgar", key.public_key)
    raw = bytearray((tmp_path / "p.pkgar").read_bytes())
    raw[64:96] = key.public_key  # claim to be ours
    (tmp_path / "p.pkgar").write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="signature"):
        pkgar.open_package(tmp_path / "p.pkgar", key.public_key)


def test_signature_that_verifies_but_names_another_key_is_rejected(tmp_path: Path, key: KeyPair) -> None:
    other = generate()
    table = b""
    signed = other.public_key + blake3.blake3(table).digest() + struct.pack("<II", 0, 0)
    (tmp_path / "p.pkgar").write_bytes(key.sign(signed) + signed)
    with pytest.raises(FormatError, match="different public key"):
        pkgar.open_package(tmp_path / "p.pkgar", key.public_key)


@pytest.mark.parametrize("where, message", [(100, "signature"), (130, "signature"),
                                            (136 + 60, "entry table"), (-1, "BLAKE3")])
def test_tampering_is_detected(tmp_path: Path, stage: Path, key: KeyPair, where: int, message: str) -> None:
    pkgar.create(stage, tmp_path / "p.pkgar", key)
    flip_byte(tmp_path / "p.pkgar", where)
    with pytest.raises(FormatError, match=message):
        pkgar.verify(tmp_path / "p.pkgar", key.public_key)


def test_tampered_data_leaves_the_destination_untouched(tmp_path: Path, stage: Path, key: KeyPair) -> None:
    pkgar.create(stage, tmp_path / "p.pkgar", key)
    flip_byte(tmp_path / "p.pkgar", -1)  # the last entry's data; the earlier entries are fine
    (tmp_path / "out" / "etc").mkdir(parents=True)
    (tmp_path / "out" / "etc" / "motd").write_bytes(b"previous")
    with pytest.raises(FormatError, match="BLAKE3"):
        pkgar.extract(tmp_path / "p.pkgar", key.public_key, tmp_path / "out")
    assert snapshot(tmp_path / "out") == {"etc/motd": ("file", b"previous", 0o644)}


def test_truncated_package_is_rejected(tmp_path: Path, stage: Path, key: KeyPair) -> None:
    pkgar.create(stage, tmp_path / "p.pkgar", key)
    raw = (tmp_path / "p.pkgar").read_bytes()
    (tmp_path / "p.pkgar").write_bytes(raw[:-10])
    with pytest.raises(FormatError, match="truncated"):
        pkgar.verify(tmp_path / "p.pkgar", key.public_key)
    (tmp_path / "p.pkgar").write_bytes(raw[:200])
    with pytest.raises(FormatError, match="truncated"):
        pkgar.open_package(tmp_path / "p.pkgar", key.public_key)


def test_a_signed_but_absurd_entry_count_is_rejected_without_reading(tmp_path: Path, key: KeyPair) -> None:
    signed = key.public_key + blake3.blake3(b"").digest() + struct.pack("<II", 0xFFFF_FFFF, 0)
    (tmp_path / "p.pkgar").write_bytes(key.sign(signed) + signed)
    with pytest.raises(FormatError, match="announces"):
        pkgar.open_package(tmp_path / "p.pkgar", key.public_key)


@pytest.mark.parametrize("path", [b"../evil", b"a/../../evil", b"/etc/passwd", b"./evil", b"a/..", b""])
def test_unsafe_paths_are_rejected(tmp_path: Path, key: KeyPair, path: bytes) -> None:
    forge(tmp_path / "p.pkgar", key, [(b"fine", b"ok", 0o100644), (path, b"evil", 0o100644)])
    with pytest.raises(FormatError, match="entry path"):
        pkgar.extract(tmp_path / "p.pkgar", key.public_key, tmp_path / "out" / "root")
    assert snapshot(tmp_path) == {"p.pkgar": ("file", (tmp_path / "p.pkgar").read_bytes(), 0o644)}


def test_repeated_paths_are_rejected(tmp_path: Path, key: KeyPair) -> None:
    forge(tmp_path / "p.pkgar", key, [(b"a/b", b"1", 0o100644), (b"a//b", b"2", 0o100644)])
    with pytest.raises(FormatError, match="two entries have the path 'a/b'"):
        pkgar.extract(tmp_path / "p.pkgar", key.public_key, tmp_path / "out")


def test_missing_stage_is_an_input_error(tmp_path: Path, key: KeyPair) -> None:
    with pytest.raises(InputError, match="stage directory"):
        pkgar.create(tmp_path / "nowhere", tmp_path / "p.pkgar", key)


@pytest.mark.parametrize("path, expected", [(b"a//b", "a/b"), (b"a/./b", "a/b"), (b"a/b/", "a/b")])
def test_paths_collapse_like_rust_components(tmp_path: Path, key: KeyPair, path: bytes, expected: str) -> None:
    forge(tmp_path / "p.pkgar", key, [(path, b"x", 0o100600)])
    pkgar.extract(tmp_path / "p.pkgar", key.public_key, tmp_path / "out")
    assert snapshot(tmp_path / "out") == {expected: ("file", b"x", 0o600)}


def test_no_writing_through_a_symlink_out_of_the_destination(tmp_path: Path, key: KeyPair) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "out").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "out" / "lib")
    forge(tmp_path / "p.pkgar", key, [(b"lib/evil", b"x", 0o100644)])
    with pytest.raises(FormatError, match="outside the destination"):
        pkgar.extract(tmp_path / "p.pkgar", key.public_key, tmp_path / "out")
    assert not any((tmp_path / "outside").iterdir())


@pytest.mark.parametrize("mode, message", [(0o040755, "neither a file nor a symlink"),
                                           (0o200644, "invalid mode")])
def test_entries_that_are_not_files_or_symlinks_are_rejected(tmp_path: Path, key: KeyPair, mode: int,
                                                             message: str) -> None:
    forge(tmp_path / "p.pkgar", key, [(b"d", b"", mode)])
    with pytest.raises(FormatError, match=message):
        pkgar.open_package(tmp_path / "p.pkgar", key.public_key)


def test_stage_with_a_fifo_cannot_be_packaged(tmp_path: Path, stage: Path, key: KeyPair) -> None:
    os.mkfifo(stage / "etc" / "pipe")
    with pytest.raises(FormatError, match="not this FIFO"):
        pkgar.create(stage, tmp_path / "p.pkgar", key)
    assert list(tmp_path.glob("p.pkgar*")) == []


def test_mode_000_and_overlong_paths_cannot_be_packaged(tmp_path: Path, key: KeyPair) -> None:
    write_tree(tmp_path / "a", {"locked": (b"", 0)})
    with pytest.raises(FormatError, match="mode 000"):
        pkgar.create(tmp_path / "a", tmp_path / "p.pkgar", key)
    write_tree(tmp_path / "b", {"d" * 200: {"f" * 55: b"x"}})  # 256 bytes with the slash
    with pytest.raises(FormatError, match="at most 255"):
        pkgar.create(tmp_path / "b", tmp_path / "p.pkgar", key)


def test_failed_create_keeps_the_previous_package(tmp_path: Path, stage: Path, key: KeyPair) -> None:
    pkgar.create(stage, tmp_path / "p.pkgar", key)
    before = (tmp_path / "p.pkgar").read_bytes()
    os.mkfifo(stage / "pipe")
    with pytest.raises(FormatError):
        pkgar.create(stage, tmp_path / "p.pkgar", key)
    assert (tmp_path / "p.pkgar").read_bytes() == before and not (tmp_path / "p.pkgar.partial").exists()


# --- interoperability with the real pkgar CLI -------------------------------------------------------------------

@pytest.fixture(scope="session")
def pkgar_current() -> Path:
    return hosttools.ensure("pkgar", BUILD) / "pkgar"


@pytest.fixture(scope="session")
def pkgar_old() -> Path:
    return hosttools.ensure("pkgar-0.1", BUILD) / "pkgar"


@pytest.fixture
def key_files(tmp_path: Path) -> tuple[KeyPair, Path, Path]:
    """A key pair written by us in the upstream TOML format, as the build writes it."""
    pair = ensure_keys(tmp_path / "keys")
    return pair, tmp_path / "keys" / "id_ed25519.pub.toml", tmp_path / "keys" / "id_ed25519.toml"


TOOL_CASES = [("pkgar_current", pkgar.HeaderFormat.COUNT_U32_FLAGS, pkgar.Packaging.UNCOMPRESSED),
              ("pkgar_current", pkgar.HeaderFormat.COUNT_U32_FLAGS, pkgar.Packaging.LZMA2),
              ("pkgar_old", pkgar.HeaderFormat.COUNT_U64, pkgar.Packaging.UNCOMPRESSED)]


@pytest.mark.slow
@pytest.mark.parametrize("tool_name, header_format, packaging", TOOL_CASES)
def test_real_pkgar_verifies_and_extracts_our_packages(request, tmp_path: Path, stage: Path, key_files,
                                                       tool_name: str, header_format: pkgar.HeaderFormat,
                                                       packaging: pkgar.Packaging) -> None:
    """``extract`` checks the signature, the entry table and each entry's BLAKE3 and length. ``verify`` compares
    an installed tree with the package but follows symlinks (so it fails on any package holding one): it gets
    a tree of files only."""
    tool = request.getfixturevalue(tool_name)
    pair, public, _ = key_files
    pkgar.create(stage, tmp_path / "p.pkgar", pair, header_format=header_format, packaging=packaging)
    run([tool, "extract", "-p", public, "-a", tmp_path / "p.pkgar", tmp_path / "out"], capture=True)
    assert snapshot(tmp_path / "out") == snapshot(stage)  # upstream's extraction keeps setuid
    for link in [path for path in stage.rglob("*") if path.is_symlink()]:
        link.unlink()
    pkgar.create(stage, tmp_path / "files.pkgar", pair, header_format=header_format, packaging=packaging)
    run([tool, "verify", "-p", public, "-a", tmp_path / "files.pkgar", stage], capture=True)
    (stage / "etc" / "motd").write_bytes(b"changed")
    with pytest.raises(CommandError):
        run([tool, "verify", "-p", public, "-a", tmp_path / "files.pkgar", stage], capture=True)


@pytest.mark.slow
@pytest.mark.parametrize("tool_name, header_format, packaging", TOOL_CASES)
def test_we_read_packages_written_by_real_pkgar(request, tmp_path: Path, stage: Path, key_files,
                                                tool_name: str, header_format: pkgar.HeaderFormat,
                                                packaging: pkgar.Packaging) -> None:
    tool = request.getfixturevalue(tool_name)
    pair, _, secret = key_files
    compress = ["--compress"] if packaging == pkgar.Packaging.LZMA2 else []
    run([tool, "create", "-s", secret, "-a", tmp_path / "theirs.pkgar", *compress, stage], capture=True)
    package = pkgar.extract(tmp_path / "theirs.pkgar", pair.public_key, tmp_path / "out")
    assert package.header.flags.packaging == packaging
    assert snapshot(tmp_path / "out") == extracted(snapshot(stage))
    with pytest.raises(FormatError):
        pkgar.open_package(tmp_path / "theirs.pkgar", generate().public_key)
    if packaging == pkgar.Packaging.UNCOMPRESSED:  # same stage, same key: the same bytes
        pkgar.create(stage, tmp_path / "ours.pkgar", pair, header_format=header_format)
        assert (tmp_path / "ours.pkgar").read_bytes() == (tmp_path / "theirs.pkgar").read_bytes()


@pytest.mark.slow
def test_real_pkgar_rejects_our_package_with_a_wrong_key(tmp_path: Path, stage: Path, key_files,
                                                          pkgar_current: Path) -> None:
    _, public, _ = key_files
    pkgar.create(stage, tmp_path / "p.pkgar", generate())
    with pytest.raises(CommandError, match="exit status"):
        run([pkgar_current, "extract", "-p", public, "-a", tmp_path / "p.pkgar", tmp_path / "out"], capture=True)


@pytest.mark.slow
def test_old_pkgar_cannot_read_flags_which_is_why_the_old_header_has_none(tmp_path: Path, stage: Path,
                                                                          key_files, pkgar_old: Path) -> None:
    pair, public, _ = key_files
    pkgar.create(stage, tmp_path / "p.pkgar", pair, packaging=pkgar.Packaging.LZMA2)
    with pytest.raises(CommandError, match="exit status"):
        run([pkgar_old, "extract", "-p", public, "-a", tmp_path / "p.pkgar", tmp_path / "out"], capture=True)


def test_an_entry_under_a_symlink_entry_of_the_same_package_is_refused(tmp_path: Path, key: KeyPair) -> None:
    """Before: IsADirectoryError (or a write through the link). The package's own symlink is never followed."""
    (tmp_path / "outside").mkdir()
    forge(tmp_path / "p.pkgar", key, [(b"lib", os.fsencode(tmp_path / "outside"), 0o120777),
                                      (b"lib/x", b"evil", 0o100644)])
    with pytest.raises(FormatError, match=r"entry 'lib/x' lies under the symlink entry 'lib'"):
        pkgar.extract(tmp_path / "p.pkgar", key.public_key, tmp_path / "out")
    assert not any((tmp_path / "outside").iterdir())
    assert not (tmp_path / "out" / "lib").exists()


def test_setuid_and_setgid_bits_are_not_kept_on_host_files(tmp_path: Path, key: KeyPair) -> None:
    forge(tmp_path / "p.pkgar", key, [(b"su", b"x", 0o106755), (b"sg", b"x", 0o102755), (b"t", b"x", 0o101777)])
    pkgar.extract(tmp_path / "p.pkgar", key.public_key, tmp_path / "out")
    modes = {name: stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) for name in ("su", "sg", "t")}
    assert modes == {"su": 0o755, "sg": 0o755, "t": 0o1777}


def test_a_nul_inside_an_entry_path_is_an_error_not_a_truncation(tmp_path: Path, key: KeyPair) -> None:
    forge(tmp_path / "p.pkgar", key, [(b"etc/passwd\0.d/extra", b"x", 0o100644)])
    with pytest.raises(FormatError, match=r"entry path 'etc/passwd\\x00.d/extra' contains NUL"):
        pkgar.extract(tmp_path / "p.pkgar", key.public_key, tmp_path / "out")
    assert not (tmp_path / "out" / "etc").exists()
