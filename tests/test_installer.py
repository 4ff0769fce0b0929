"""The disk image end to end with the real tools: pkgar CLI → local repository → redox_installer → checks.

The repository is made by hand here (keys with PyNaCl in the upstream TOML format, packages with the pinned
`pkgar` CLI) until the project's own pkgar writer lands. Files are read back from the image by the project's own
`redox-image` tool (tools/redox-image, on the redoxfs crate), without FUSE and without changing the image.
"""
from __future__ import annotations

import dataclasses
import json
import os
import stat
import struct
from pathlib import Path, PurePosixPath

import argon2
import nacl.signing
import pytest

from tasks.errors import CommandError, FormatError, InputError
from tasks.hashing import hash_file
from tasks.image import gpt, redoxfs
from tasks.image.backups import backup_paths
from tasks.image.files import ImageFiles
from tasks.image.installer import (
    FORK_BOOT_DIR,
    ImageRequest,
    build_image,
    copy_from_fat,
    pinned_profile,
    verify_image,
)
from tasks.image.qcow2 import convert_qcow2
from tasks.image.reproducible import Identities
from tasks.process import run
from tasks.settings import PROJECT_DIR
from tasks.toolchain import hosttools

pytestmark = pytest.mark.slow

TARGET = "aarch64-unknown-redox"
HOST_BUILD = PROJECT_DIR / "build"  # host tools are a cache shared by test runs
EFI_PLACEHOLDER = b"MZ placeholder EFI application for the installer test\n" * 100
ROOT_PASSWORD = "redox-root"
SOURCE_DATE = 1_700_000_000  # 2023-11-14 22:13:20 UTC

CONFIG = """
[general]
prompt = false
filesystem_size = 48

[packages]
hello = {}
extras = {}

[[files]]
path = "/etc/hostname"
data = "demo\\n"

[[files]]
path = "/usr/lib/motd"
data = "welcome\\n"
mode = 0o600
uid = 1000
gid = 1000

[[files]]
path = "/var/cache"
data = ""
directory = true
mode = 0o750

[[files]]
path = "/bin"
data = "usr/bin"
symlink = true

[[files]]
path = "/etc/after-packages"
data = "postinstall sees usr/bin/hello\\n"
postinstall = true

[users.root]
password = "{root_password}"
uid = 0
gid = 0
name = "root"
home = "/root"
shell = "/usr/bin/ion"

[users.user]
password = ""
shell = "/usr/bin/ion"

[groups.sudo]
gid = 1
members = ["user"]
"""


@pytest.fixture(scope="module")
def tools() -> dict[str, Path]:
    return {name: hosttools.ensure(name, HOST_BUILD) for name in ("pkgar", "redox_installer", "redoxfs")}


def write_keys(build: Path) -> tuple[Path, Path]:
    """A project key pair as pkgar-keys writes it: lowercase hex, plaintext secret = seed ‖ public key."""
    build.mkdir(parents=True, exist_ok=True)
    signing = nacl.signing.SigningKey.generate()
    public = bytes(signing.verify_key)
    public_file, secret_file = build / "id_ed25519.pub.toml", build / "id_ed25519.toml"
    public_file.write_text(f'pkey = "{public.hex()}"\n')
    secret_file.write_text(f'salt = "{os.urandom(32).hex()}"\nnonce = "{os.urandom(24).hex()}"\n'
                           f'skey = "{(bytes(signing) + public).hex()}"\n')
    return public_file, secret_file


def stage(root: Path, files: dict[str, bytes | tuple[bytes, int]], links: dict[str, str] | None = None) -> Path:
    for name, content in files.items():
        data, mode = content if isinstance(content, tuple) else (content, 0o644)
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    for name, target in (links or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(target)
    return root


def add_package(tools: dict[str, Path], cookbook: Path, name: str, stage_dir: Path | None,
                depends: tuple[str, ...] = (), compress: bool = False) -> None:
    """``repo/<target>/<name>.pkgar`` from ``stage_dir`` with the pkgar CLI, and its TOML; no stage: a meta-package."""
    repo = cookbook / "repo" / TARGET
    repo.mkdir(parents=True, exist_ok=True)
    lines = [f'name = "{name}"', f'target = "{TARGET}"', f"depends = {json.dumps(list(depends))}"]
    if stage_dir is not None:
        archive = repo / f"{name}.pkgar"
        run([tools["pkgar"] / "pkgar", "create", "-s", cookbook / "build" / "id_ed25519.toml", "-a", archive,
             *(["--compress"] if compress else []), stage_dir], capture=True)
        header = archive.read_bytes()[:136]
        entries = sum(1 for path in stage_dir.rglob("*") if not path.is_dir() or path.is_symlink())
        count, flags = struct.unpack_from("<II", header, 128)
        assert count == entries and (flags != 0) == compress
        # Uncompressed and architecture-independent, flags are 0: a `count: u64` reader sees the same count.
        lines += ['version = "1.0.0"', f'blake3 = "{header[96:128].hex()}"',
                  f"network_size = {archive.stat().st_size}", f"storage_size = {archive.stat().st_size}"]
    (repo / f"{name}.toml").write_text("\n".join(lines) + "\n")


@pytest.fixture
def cookbook(tmp_path: Path, tools: dict[str, Path]) -> Path:
    cookbook = tmp_path / "cookbook"
    write_keys(cookbook / "build")
    stages = tmp_path / "stages"
    add_package(tools, cookbook, "bootloader",
                stage(stages / "bootloader", {f"{FORK_BOOT_DIR}/bootloader.efi": EFI_PLACEHOLDER}))
    add_package(tools, cookbook, "hello", stage(stages / "hello", {
        "usr/bin/hello": (b"#!/bin/sh\necho hello\n", 0o755),
        "usr/share/hello/greeting.txt": b"Hello from a package\n",
    }, links={"usr/share/hello/latest": "greeting.txt"}))
    add_package(tools, cookbook, "hello-data", stage(stages / "hello-data", {
        "usr/share/hello-data/words.txt": b"one\ntwo\nthree\n"}))
    add_package(tools, cookbook, "extras", None, depends=("hello-data",))
    return cookbook


def write_config(tmp_path: Path, text: str = CONFIG) -> Path:
    config = tmp_path / "demo.toml"
    config.write_text(text.replace("{root_password}", ROOT_PASSWORD))
    return config


def request(tmp_path: Path, cookbook: Path, config: Path, backups: int = 2) -> ImageRequest:
    return ImageRequest(cookbook=cookbook, config=config, output=tmp_path / "out" / "demo.img", target=TARGET,
                        files_tool=hosttools.ensure_own("redox-image"), seed="test-installer",
                        source_date=SOURCE_DATE, backups=backups)


def test_image_end_to_end(tmp_path: Path, tools: dict[str, Path], cookbook: Path) -> None:
    image_request = request(tmp_path, cookbook, write_config(tmp_path))
    layout = build_image(image_request, HOST_BUILD, log=tmp_path / "image.log")
    image = image_request.output

    assert image.stat().st_size == 48 * 1024 * 1024
    assert not Path(f"{image}.partial").exists()
    table = gpt.read_table(image)
    assert [(p.name, p.first_lba) for p in table.partitions] == [("BIOS", 34), ("EFI", 2048), ("REDOX", 4096)]
    assert layout.redox.offset == 2 * 1024 * 1024
    assert layout.filesystem.size <= layout.redox.size
    assert redoxfs.read_header(image, layout.redox.offset).generation == 0

    efi = copy_from_fat(image, layout.efi.offset, PurePosixPath("EFI/BOOT/BOOTAA64.EFI"), tmp_path)
    assert efi.read_bytes() == EFI_PLACEHOLDER

    identities = Identities.of("test-installer", 3)  # derived from the request's seed, not drawn at random
    assert (table.disk_guid, tuple(part.guid for part in table.partitions)) == (identities.disk,
                                                                               identities.partitions)
    assert layout.filesystem.uuid == identities.filesystem == redoxfs.read_header(image, layout.redox.offset).uuid

    before = hash_file(image)
    files = ImageFiles(image, hosttools.ensure_own("redox-image"))
    assert files.offset == layout.redox.offset
    assert {entry.mtime for entry in files.tree("/")} == {SOURCE_DATE}
    files.get("/", tmp_path / "root")  # the project's own reader: no FUSE, and the image is left as it was
    check_packages(tmp_path / "root")
    check_files(tmp_path / "root")
    check_users(tmp_path / "root")
    assert hash_file(image) == before

    qcow2 = image.with_suffix(".qcow2")
    convert_qcow2(image, qcow2, backups=1, log=tmp_path / "qcow2.log")  # runs `qemu-img check`
    raw_again = tmp_path / "from-qcow2.img"
    run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2, raw_again])
    assert hash_file(raw_again) == hash_file(image)


def check_packages(root: Path) -> None:
    hello = root / "usr/bin/hello"
    assert hello.read_bytes() == b"#!/bin/sh\necho hello\n"
    assert stat.S_IMODE(hello.stat().st_mode) == 0o755
    assert (root / "usr/share/hello/greeting.txt").read_text() == "Hello from a package\n"
    assert os.readlink(root / "usr/share/hello/latest") == "greeting.txt"
    # `extras` is a meta-package: nothing of its own, but its dependency is installed.
    assert (root / "usr/share/hello-data/words.txt").read_text() == "one\ntwo\nthree\n"
    heads = root / pinned_profile().heads_dir
    assert sorted(p.name for p in heads.iterdir()) == ["hello-data.pkgar_head", "hello.pkgar_head"]
    assert (root / "pkg/id_ed25519.pub.toml").read_text().startswith('pkey = "')


def check_files(root: Path) -> None:
    assert (root / "etc/hostname").read_text() == "demo\n"
    motd = (root / "usr/lib/motd").stat()
    assert (stat.S_IMODE(motd.st_mode), motd.st_uid, motd.st_gid) == (0o600, 1000, 1000)
    cache = (root / "var/cache").stat()
    assert stat.S_ISDIR(cache.st_mode) and stat.S_IMODE(cache.st_mode) == 0o750
    assert os.readlink(root / "bin") == "usr/bin"
    assert (root / "etc/after-packages").read_text() == "postinstall sees usr/bin/hello\n"
    assert "[users.root]" in (root / "filesystem.toml").read_text()


def check_users(root: Path) -> None:
    assert (root / "etc/passwd").read_text() == ("root;0;0;root;/root;/usr/bin/ion\n"
                                                 "user;1000;1000;user;/home/user;/usr/bin/ion\n")
    shadow = (root / "etc/shadow").read_text().splitlines()
    assert shadow[1] == "user;", "an empty password has an empty hash"
    user, hashed = shadow[0].split(";")
    assert user == "root" and hashed.startswith("$argon2")
    assert argon2.PasswordHasher().verify(hashed, ROOT_PASSWORD)
    assert (root / "etc/group").read_text() == "root;x;0;root\nuser;x;1000;user\nsudo;x;1;user\n"
    for secret in ("etc/shadow", "etc/group"):
        info = (root / secret).stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o600, 0, 0)
    home = (root / "home/user").stat()
    assert (home.st_uid, home.st_gid) == (1000, 1000)


def test_failed_install_keeps_previous_image_and_rotates_backups(tmp_path: Path, tools: dict[str, Path],
                                                                  cookbook: Path) -> None:
    good = request(tmp_path, cookbook, write_config(tmp_path), backups=2)
    image = good.output
    bak, bak1 = backup_paths(image, 2)
    digests = []
    for _ in range(3):
        build_image(good, HOST_BUILD, log=tmp_path / "image.log")
        digests.append(hash_file(image))
    assert len(set(digests)) == 3, "GUIDs and the FS uuid are random, so each build differs"
    assert (hash_file(bak), hash_file(bak1)) == (digests[1], digests[0])

    # A package whose data is damaged after the repository was made: only the installer can notice.
    (cookbook / "repo" / TARGET / "hello.pkgar").write_bytes(b"not a pkgar")
    with pytest.raises(CommandError, match=r"(?s)demo\.toml: redox_installer: .*failed to install"):
        build_image(good, HOST_BUILD, log=tmp_path / "broken.log")
    assert [hash_file(p) for p in (image, bak, bak1)] == [digests[2], digests[1], digests[0]]
    assert not Path(f"{image}.partial").exists()
    verify_image(image, TARGET)


def test_missing_bootloader_file_is_rejected(tmp_path: Path, tools: dict[str, Path], cookbook: Path) -> None:
    # The installer writes an empty BOOTAA64.EFI when the package has no file where it looks: catch that.
    add_package(tools, cookbook, "bootloader",
                stage(tmp_path / "upstream-layout", {"usr/lib/boot/bootloader.efi": EFI_PLACEHOLDER}))
    image_request = request(tmp_path, cookbook, write_config(tmp_path))
    with pytest.raises(FormatError, match="EFI loader is empty"):
        build_image(image_request, HOST_BUILD, log=tmp_path / "image.log")
    assert not image_request.output.exists()
    assert not Path(f"{image_request.output}.partial").exists()


def test_boot_layout_must_match_the_pinned_installer(tmp_path: Path, cookbook: Path) -> None:
    image_request = request(tmp_path, cookbook, write_config(tmp_path))
    upstream = dataclasses.replace(image_request, boot_dir=PurePosixPath("usr/lib/boot"))
    with pytest.raises(InputError, match="reads them from boot/"):
        build_image(upstream, HOST_BUILD)



@pytest.mark.parametrize(("damage_at", "message"), [
    (lambda layout: 512, "gpt.header@lba1: signature"),
    (lambda layout: layout.efi.offset, "cannot copy from the FAT partition"),
    (lambda layout: layout.redox.offset, "redoxfs.header"),
])
def test_verify_image_rejects_damage(tmp_path: Path, tools: dict[str, Path], cookbook: Path, damage_at,
                                     message: str) -> None:
    image_request = request(tmp_path, cookbook, write_config(tmp_path))
    layout = build_image(image_request, HOST_BUILD, log=tmp_path / "image.log")
    with open(image_request.output, "r+b") as image:
        image.seek(damage_at(layout))
        image.write(bytes(512))
    with pytest.raises(FormatError, match=message):
        verify_image(image_request.output, TARGET)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda cookbook, config: config.write_text(config.read_text().replace("hello = {}", "hello = {}\nghost = {}")),
     r"demo\.toml: packages\.ghost: not in the repository"),
    (lambda cookbook, config: (cookbook / "repo" / TARGET / "hello-data.toml").unlink(),
     r"extras\.toml: depends\.hello-data: not in the repository"),
    (lambda cookbook, config: (cookbook / "repo" / TARGET / "bootloader.pkgar").unlink(),
     r"bootloader\.toml: version: has a version but no bootloader\.pkgar"),
])
def test_missing_packages_are_named_before_the_installer_runs(tmp_path: Path, tools: dict[str, Path],
                                                              cookbook: Path, edit, message: str) -> None:
    config = write_config(tmp_path)
    edit(cookbook, config)
    image_request = request(tmp_path, cookbook, config)
    with pytest.raises(InputError, match=message):
        build_image(image_request, HOST_BUILD, log=tmp_path / "image.log")
    assert "--no-mount" not in (tmp_path / "image.log").read_text()


def test_pinned_installer_cannot_read_compressed_packages(tmp_path: Path, tools: dict[str, Path],
                                                          cookbook: Path) -> None:
    # Why our pkgar writer must write uncompressed packages for the pinned installer: LZMA2 sets flags, which
    # its pkgar 0.1.19 reads as the high half of a u64 entry count.
    assert not pinned_profile().reads_pkgar_flags
    add_package(tools, cookbook, "hello", tmp_path / "stages" / "hello", compress=True)
    image_request = request(tmp_path, cookbook, write_config(tmp_path))
    # It takes `count | flags << 32` entries and aborts allocating the entry table.
    with pytest.raises(CommandError, match=r"(?s)memory allocation of \d+ bytes failed.*read_entries"):
        build_image(image_request, HOST_BUILD, log=tmp_path / "image.log")
    assert not image_request.output.exists()

