"""The files inside a RedoxFS without FUSE (tasks/image/files.py and the project's tools/redox-image): read
without changing a byte, written atomically. The filesystems are made by the pinned upstream redoxfs-ar."""
from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

import pytest

from tasks.errors import BuildError
from tasks.image.files import Chmod, Chown, ImageFiles, MakeDir, Put, Remove, Symlink
from tasks.toolchain import hosttools
from tests.trees import redoxfs_image


@pytest.fixture(scope="module")
def tool() -> Path:
    return hosttools.ensure_own("redox-image")


@pytest.fixture
def image(tmp_path, redoxfs_bin) -> Path:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/hostname").write_text("redox\n")
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "usr/bin/tool").write_bytes(b"\x7fELF" + bytes(range(256)) * 100)
    os.chmod(tree / "usr/bin/tool", 0o755)
    (tree / "bin").symlink_to("usr/bin")
    (tree / "tmp").mkdir()
    os.chmod(tree / "tmp", 0o1777)
    return redoxfs_image(redoxfs_bin, tree, tmp_path / "fs.img", b"")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reading_lists_and_reads_the_files_and_never_writes_the_image(image, tool, tmp_path):
    before = digest(image)
    files = ImageFiles(image, tool)
    listing = {entry.path: entry for entry in files.tree("/")}
    assert set(listing) == {"/bin", "/etc", "/etc/hostname", "/tmp", "/usr", "/usr/bin", "/usr/bin/tool"}
    assert (listing["/usr/bin/tool"].kind, listing["/usr/bin/tool"].mode, listing["/usr/bin/tool"].size) == \
        ("f", 0o755, 4 + 256 * 100)
    assert (listing["/bin"].kind, listing["/bin"].target) == ("l", "usr/bin")
    assert listing["/tmp"].mode == 0o1777
    assert [entry.path for entry in files.ls("/usr")] == ["bin"]
    assert files.read("/etc/hostname") == b"redox\n"
    files.get("/usr", tmp_path / "out")
    assert (tmp_path / "out/bin/tool").read_bytes()[:4] == b"\x7fELF"
    assert stat.S_IMODE((tmp_path / "out/bin/tool").stat().st_mode) == 0o755
    assert digest(image) == before


def test_writing_is_one_transaction_on_a_copy(image, tool, tmp_path):
    (tmp_path / "new").write_text("injected\n")
    files = ImageFiles(image, tool)
    files.apply([MakeDir("/opt", 0o750), Put(tmp_path / "new", "/opt/new", 0o700, 1000, 1000),
                 Symlink("new", "/opt/link"), Remove("/usr/bin/tool"), Chmod(0o600, "/etc/hostname"),
                 Chown(1, 2, "/etc")])
    listing = {entry.path: entry for entry in ImageFiles(image, tool).tree("/")}
    assert "/usr/bin/tool" not in listing and listing["/opt"].mode == 0o750
    assert (listing["/opt/new"].mode, listing["/opt/new"].uid, listing["/opt/new"].gid) == (0o700, 1000, 1000)
    assert listing["/opt/link"].target == "new" and listing["/etc/hostname"].mode == 0o600
    assert (listing["/etc"].uid, listing["/etc"].gid) == (1, 2)
    assert files.read("/opt/new") == b"injected\n"
    files.apply([Put(tmp_path / "new", "/etc/hostname")])  # replacing a file keeps one node of that name
    assert files.read("/etc/hostname") == b"injected\n"
    # copied out, a file keeps its permission bits: a secret stays private on the host (issue 19, item 5)
    (tmp_path / "out").mkdir()
    files.get("/opt/new", tmp_path / "out" / "secret")
    assert stat.S_IMODE((tmp_path / "out" / "secret").stat().st_mode) == 0o700
    files.apply([Put(tmp_path / "new", "/opt/setuid", 0o4755)])
    files.get("/opt/setuid", tmp_path / "out" / "setuid")
    assert stat.S_IMODE((tmp_path / "out" / "setuid").stat().st_mode) == 0o755  # never setuid on the host


def test_a_failed_write_leaves_the_image_as_it_was(image, tool, tmp_path):
    before = digest(image)
    files = ImageFiles(image, tool)
    (tmp_path / "new").write_text("x\n")
    with pytest.raises(BuildError, match="/nowhere/x: no directory /nowhere"):
        files.apply([Put(tmp_path / "new", "/etc/first"), Put(tmp_path / "new", "/nowhere/x")])
    assert digest(image) == before and not list(image.parent.glob("*.partial*"))
    with pytest.raises(BuildError, match="must not contain '..'"):
        files.read("/etc/../../x")


def test_a_qcow2_or_a_file_without_redoxfs_is_refused(tool, tmp_path):
    qcow2 = tmp_path / "x.qcow2"
    qcow2.write_bytes(b"QFI\xfb" + bytes(512))
    with pytest.raises(BuildError, match="a qcow2 image"):
        ImageFiles(qcow2, tool)


def test_doit_inspect_lists_reads_and_copies_out_and_leaves_the_image_as_it_was(image, tool, tmp_path, doit):
    before = digest(image)
    listed = doit("inspect", "ls", "/", f"image={image}")
    assert listed.returncode == 0, listed.stderr
    assert re.fullmatch(r"l 0777     0     0          7 \d{4}-\d\d-\d\d \d\d:\d\d  bin -> usr/bin",
                        listed.stdout.splitlines()[0]), listed.stdout
    assert doit("inspect", "cat", "/etc/hostname", f"image={image}").stdout == "redox\n"
    tree = doit("inspect", "tree", "/usr", f"image={image}").stdout.splitlines()
    assert [line.split()[-1] for line in tree] == ["/usr/bin", "/usr/bin/tool"]
    got = doit("inspect", "get", "/usr/bin/tool", str(tmp_path / "tool"), f"image={image}")
    assert got.returncode == 0 and (tmp_path / "tool").read_bytes()[:4] == b"\x7fELF"
    missing = doit("inspect", "cat", "/nope", f"image={image}")
    assert missing.returncode == 3 and missing.stderr == f"ERROR: {image}: /nope: No such file or directory " \
                                                          "(os error 2)\n"
    assert digest(image) == before


@pytest.mark.parametrize("kind", ["directory", "missing", "not a disk"])
def test_doit_inspect_of_what_is_no_image_is_one_line(kind, tmp_path, doit):
    """A directory gave a traceback (issue 19, item 8)."""
    path, expected = {"directory": (tmp_path, "a directory, not a disk image"),
                      "missing": (tmp_path / "nope.img", "no such image"),
                      "not a disk": (tmp_path / "text", "gpt.header@lba1: ")}[kind]
    if kind == "not a disk":
        path.write_bytes(b"x" * 2048)
    result = doit("inspect", "ls", "/", f"image={path}")
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"ERROR: {path}: {expected}"), result.stderr
