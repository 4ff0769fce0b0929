"""The demo end to end through the doit CLI: demo/'s recipes cooked with the host toolchain, packaged, the initfs
packed, the disk image written by the real pinned redox_installer, converted to qcow2 — then every layer read back.

One build (module fixture) serves every check; the last test builds again to see the previous image kept as .bak.
Files inside RedoxFS are read through the `redoxfs` FUSE mount (FUSE works on this machine kind), of a copy, because
mounting rewrites the image. The programs are host ELFs (no Redox toolchain here), so /usr/bin/hello runs on the host.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import argon2
import pytest

from tasks.formats import pkgar, pkgkeys
from tasks.hashing import hash_file
from tasks.image import gpt, redoxfs
from tasks.image.files import ImageFiles
from tasks.image.installer import ImageLayout, copy_from_fat, pinned_profile, verify_image
from tasks.image.qcow2 import check_qcow2
from tasks.initfs.format import PAGE_SIZE, InodeKind, elf_entry, read_initfs
from tasks.process import run
from tasks.settings import PROJECT_DIR, host_triple
from tasks.toolchain import hosttools
from tests.conftest import run_doit

pytestmark = pytest.mark.slow

DEMO = PROJECT_DIR / "demo"
TARGET = "aarch64-unknown-redox"
EPOCH = 1_700_000_000  # 2023-11-14 22:13:20 UTC
HOST_BUILD = PROJECT_DIR / "build"  # host tools are a per-user cache; their build logs go here
DAEMONS = ("init", "logd", "ramfs", "randd", "zerod", "nulld", "rtcd", "pcid", "pcid-spawner", "acpid", "hwd",
           "inputd", "vesad", "fbbootlogd", "fbcond", "lived", "redoxfs")
DRIVERS = ("nvmed", "virtio-blkd", "virtio-gpud", "virtio-9pd")


@dataclass(frozen=True)
class Demo:
    build: Path

    @property
    def image(self) -> Path:
        return self.build / "aarch64" / "demo.img"

    @property
    def qcow2(self) -> Path:
        return self.image.with_suffix(".qcow2")

    @property
    def initfs(self) -> Path:
        return self.build / "aarch64" / "initfs.img"

    @property
    def repo(self) -> Path:
        return self.build / "cookbook" / "repo" / TARGET

    def stage(self, recipe: str) -> Path:
        return self.build / host_triple() / "recipes" / recipe / "stage"


def build_demo(build: Path, *variables: str) -> None:
    result = run_doit("qcow2", f"root={DEMO}", "config=config/aarch64/demo.toml", "toolchain=host", f"build={build}",
                      *variables, env={"SOURCE_DATE_EPOCH": str(EPOCH)})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    demo = Demo(tmp_path_factory.mktemp("demo") / "build")
    build_demo(demo.build)
    return demo


@pytest.fixture(scope="module")
def layout(demo: Demo) -> ImageLayout:
    return verify_image(demo.image, TARGET)


@pytest.fixture(scope="module")
def root(demo: Demo, layout: ImageLayout, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's RedoxFS extracted onto the host by the project's own tool (no FUSE), which reads the image
    without changing a byte of it."""
    before = hash_file(demo.image)
    files = ImageFiles(demo.image, hosttools.ensure_own("redox-image"))
    assert files.offset == layout.redox.offset
    tree = tmp_path_factory.mktemp("image") / "root"
    files.get("/", tree)
    assert hash_file(demo.image) == before
    return tree


def test_every_stage_left_its_artifact(demo: Demo) -> None:
    assert demo.image.stat().st_size == 64 * 1024 * 1024  # [general] filesystem_size of the demo config
    assert not list(demo.image.parent.glob("*.partial"))
    packages = {path.stem for path in demo.repo.glob("*.pkgar")}
    assert packages == {"bootloader", "hello", "initfs", "kernel"}
    assert "initfs" in (demo.repo / "base-initfs.toml").read_text()  # a meta-package that pulls in the initfs
    key = pkgkeys.load_public_key(demo.build / "cookbook/build/id_ed25519.pub.toml")
    hello = pkgar.open_package(demo.repo / "hello.pkgar", key)
    assert [entry.path for entry in hello.entries] == [b"usr/bin/hello"]


def test_gpt_partitions_and_efi_loader(demo: Demo, layout: ImageLayout, tmp_path: Path) -> None:
    table = gpt.read_table(demo.image)
    assert [(part.name, part.type_guid) for part in table.partitions] == [
        ("BIOS", gpt.BIOS_BOOT), ("EFI", gpt.EFI_SYSTEM), ("REDOX", gpt.LINUX_FS)]
    efi = copy_from_fat(demo.image, layout.efi.offset, PurePosixPath("EFI/BOOT/BOOTAA64.EFI"), tmp_path)
    assert efi.read_bytes() == (DEMO / "recipes/bootloader/source/bootloader.efi").read_bytes()


def test_redoxfs_header_at_the_partition_start(demo: Demo, layout: ImageLayout) -> None:
    with open(demo.image, "rb") as disk:
        disk.seek(layout.redox.offset)
        start = disk.read(16)
    assert start[:8] == b"RedoxFS\0" and int.from_bytes(start[8:], "little") == 8  # signature, version
    header = redoxfs.read_header(demo.image, layout.redox.offset)  # also checks the seahash
    assert 0 < header.size <= layout.redox.size


def test_packages_are_installed(demo: Demo, root: Path) -> None:
    hello = root / "usr/bin/hello"
    assert stat.S_IMODE(hello.stat().st_mode) == 0o755
    greeting = subprocess.run([hello], capture_output=True, text=True, check=True).stdout
    assert greeting == "Hello from the demo image of the pure-Rust aarch64 Redox build!\n"
    kernel = root / "boot/kernel"
    assert kernel.read_bytes()[:4] == b"\x7fELF"
    assert hash_file(kernel) == hash_file(demo.stage("kernel") / "boot/kernel")
    heads = {path.name for path in (root / pinned_profile().heads_dir).iterdir()}
    assert heads == {f"{name}.pkgar_head" for name in ("bootloader", "hello", "initfs", "kernel")}


def test_config_files_are_written(root: Path) -> None:
    assert (root / "etc/hostname").read_text() == "redox-demo\n"
    assert (root / "etc/motd").read_text() == "Built by the pure-Rust aarch64 Redox build system demo.\n"
    assert os.readlink(root / "bin") == "usr/bin"
    assert os.readlink(root / "etc/os-release") == "../usr/lib/os-release"
    assert 'ID="redox-os"' in (root / "usr/lib/os-release").read_text()


def test_text_stamps_name_the_build(demo: Demo, root: Path) -> None:
    """The commit, -dirty when tracked files differ from it, the source date and the build time (both
    SOURCE_DATE_EPOCH here: reproducible) (issue 20, item 6)."""
    commit = subprocess.run(["git", "-C", str(DEMO), "rev-parse", "--short=9", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(DEMO), "diff", "--quiet", "HEAD", "--"]).returncode != 0
    label = f"{commit}-dirty" if dirty else commit
    date = time.strftime("%Y-%m-%d %H:%M", time.gmtime(EPOCH))
    os_release = (root / "usr/lib/os-release").read_text()
    assert os_release.startswith('PRETTY_NAME=') and \
        os_release.endswith(f'BUILD_ID="{label}"\nBUILD_DATE="{date}"\nBUILD_TIME="{date}"\n')
    initrc = (root / "home/root/.config/ion/initrc").read_text()
    assert initrc.splitlines()[0] == f"echo 'Build: {label} @ {date} (built {date})'"
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777


def test_inspect_reads_the_files_inside_the_images_initfs(demo: Demo, tmp_path: Path) -> None:
    """Issue 20, item 7: `doit inspect cat /etc/init.rc` (the README's) found nothing: init.rc is in the initfs."""
    def inspect(*args: str):
        return run_doit("inspect", *args, f"image={demo.image}")
    initfs = read_initfs(demo.initfs)
    files = dict(initfs.walk())
    cat = inspect("cat", "/boot/initfs/etc/init.rc")
    assert cat.returncode == 0 and cat.stdout == initfs.content(files["etc/init.rc"]).decode(), cat.stderr
    listed = [line.split()[-1] for line in inspect("ls", "/boot/initfs/bin").stdout.splitlines()]
    assert listed == sorted(path.removeprefix("bin/") for path in files if path.startswith("bin/"))
    got = inspect("get", "/boot/initfs/bin/bootstrap" if "bin/bootstrap" in files else "/boot/initfs/etc/init.rc",
                  str(tmp_path / "copy"))
    assert got.returncode == 0 and (tmp_path / "copy").stat().st_size > 0, got.stderr
    missing = inspect("cat", "/boot/initfs/etc/nope")
    assert missing.returncode == 3 and missing.stderr == f"ERROR: {demo.image}: /boot/initfs/etc/nope: no such file " \
                                                         "in the initfs\n"
    boot = inspect("ls", "/boot").stdout.splitlines()  # the archive itself is still a file of the image
    assert any(line.startswith("f ") and line.endswith("  initfs") for line in boot)


def test_users_and_groups_in_redox_formats(root: Path) -> None:
    assert (root / "etc/passwd").read_text() == ("root;0;0;root;/home/root;/usr/bin/ion\n"
                                                 "user;1000;1000;user;/home/user;/usr/bin/ion\n")
    root_line, user_line = (root / "etc/shadow").read_text().splitlines()
    name, hashed = root_line.split(";")
    assert name == "root" and argon2.PasswordHasher().verify(hashed, "password")
    assert user_line == "user;", "an empty password has an empty hash"
    assert (root / "etc/group").read_text() == "root;x;0;root\nuser;x;1000;user\nsudo;x;1;user\n"


def test_no_clear_text_password_in_the_image_the_logs_or_their_directory_mode(demo: Demo, root: Path) -> None:
    """The demo's root password is "password" (issue 12, item 5): hashed in /etc/shadow only."""
    record = tomllib.loads((root / "filesystem.toml").read_text())  # the image's copy of the merged config
    assert set(record["users"]) == {"root", "user"} and all("password" not in user for user in record["users"].values())
    assert record["general"]["filesystem_size"] == 64
    assert "password" not in (demo.build / "logs/image.log").read_text()  # the installer prints its config: masked
    assert stat.S_IMODE((demo.build / "logs").stat().st_mode) == 0o700
    assert stat.S_IMODE((demo.build / "logs/image.log").stat().st_mode) == 0o600


def test_boot_initfs_is_the_built_initfs_with_its_bootstrap(demo: Demo, root: Path) -> None:
    assert hash_file(root / "boot/initfs") == hash_file(demo.initfs)
    initfs = read_initfs(root / "boot/initfs")
    bootstrap = (demo.stage("base-initfs") / "bootstrap").read_bytes()
    assert initfs.header.bootstrap_entry == elf_entry(demo.stage("base-initfs") / "bootstrap") != 0
    assert initfs.data[PAGE_SIZE:PAGE_SIZE + len(bootstrap)] == bootstrap
    assert initfs.header.creation_sec == EPOCH
    files = {path: inode for path, inode in initfs.walk() if inode.kind is InodeKind.FILE}
    assert {f"bin/{name}" for name in DAEMONS} | {f"lib/drivers/{name}" for name in DRIVERS} <= set(files)
    init_rc = initfs.content(files["etc/init.rc"]).decode()
    assert "export RUST_LOG warn\n" in init_rc
    date = time.strftime('%Y-%m-%d %H:%M', time.gmtime(EPOCH))
    assert init_rc.splitlines()[1].endswith(f"| {date} | built {date}")
    assert "[[drivers]]" in initfs.content(files["etc/pcid/initfs.toml"]).decode()


def test_qcow2_passes_qemu_img_check_and_holds_the_image(demo: Demo, tmp_path: Path) -> None:
    check_qcow2(demo.qcow2, expected_size=demo.image.stat().st_size)
    raw = tmp_path / "from-qcow2.img"
    run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", demo.qcow2, raw])
    assert hash_file(raw) == hash_file(demo.image)


def test_two_clean_builds_with_one_source_date_are_byte_identical(demo: Demo, tmp_path: Path) -> None:
    """Issue 14 §5: another build directory, the same inputs and SOURCE_DATE_EPOCH: the same image and qcow2, byte
    for byte (`cmp`), with the GUIDs, the RedoxFS UUID and every time derived from the inputs, not from chance."""
    again = Demo(tmp_path / "build")
    # The packages' signing key is one of the inputs (a build directory makes its own when it has none)
    shutil.copytree(demo.build / "cookbook" / "build", again.build / "cookbook" / "build")
    build_demo(again.build)
    for first, second in ((demo.image, again.image), (demo.qcow2, again.qcow2), (demo.initfs, again.initfs)):
        compared = subprocess.run(["cmp", first, second], capture_output=True, text=True)
        assert compared.returncode == 0, compared.stdout + compared.stderr
    table = gpt.read_table(demo.image)
    assert len({table.disk_guid, *(part.guid for part in table.partitions)}) == 4  # derived, and all different
    header = redoxfs.newest_header(demo.image, table.by_name("REDOX").offset)
    assert header.uuid not in {table.disk_guid, *(part.guid for part in table.partitions)}
    node_times = {entry.mtime for entry in ImageFiles(demo.image, hosttools.ensure_own("redox-image")).tree("/")}
    assert node_times == {EPOCH}, node_times
    # the EFI partition's entries, as mtools shows their times
    listing = run(["mdir", "-/", "-i", f"{demo.image}@@{table.by_name('EFI').offset}", "::/"], capture=True)
    assert "2023-11-14  22:13" in listing and listing.count("2023-11-14") >= 3, listing


def test_a_second_build_keeps_the_previous_image_as_bak(demo: Demo) -> None:
    """Last in this module: it rebuilds with another RUST_LOG, so the initfs and the image change."""
    before = {path: hash_file(path) for path in (demo.image, demo.qcow2)}
    build_demo(demo.build, "rust_log=info")
    for path, digest in before.items():
        assert hash_file(path.with_name(path.name + ".bak")) == digest
        assert hash_file(path) != digest
    initfs = read_initfs(demo.initfs)
    assert b"export RUST_LOG info\n" in initfs.content(dict(initfs.walk())["etc/init.rc"])
    verify_image(demo.image, TARGET)


def test_one_changed_demo_file_rebuilds_its_package_the_image_and_the_qcow2_only(tmp_path):
    tree = tmp_path / "demo"
    shutil.copytree(DEMO, tree, ignore=shutil.ignore_patterns("build"))
    args = ("qcow2", f"root={tree}", "config=config/aarch64/demo.toml", "toolchain=host")
    env = {"SOURCE_DATE_EPOCH": str(EPOCH)}
    first = run_doit(*args, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert ran(run_doit(*args, env=env)) == set()
    main = tree / "recipes/hello/source/src/main.rs"
    main.write_text(main.read_text().replace("Hello", "Hello again"))
    assert ran(run_doit(*args, env=env)) == {"cook:hello", "pkg:hello", "image", "qcow2"}


def ran(result) -> set[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return {line[3:] for line in result.stdout.splitlines() if line.startswith(".  ")}


def test_a_bootloader_file_is_packaged_signed_and_becomes_the_efi_loader(tmp_path):
    tree = tmp_path / "demo"
    shutil.copytree(DEMO, tree, ignore=shutil.ignore_patterns("build"))
    efi = tmp_path / "BOOTAA64.EFI"
    efi.write_bytes(b"MZ a UEFI bootloader the user has\n")
    args = ("image", f"root={tree}", "config=config/aarch64/demo.toml", "toolchain=host", f"bootloader={efi}")
    built = run_doit(*args, env={"SOURCE_DATE_EPOCH": str(EPOCH)})
    assert built.returncode == 0, built.stdout + built.stderr
    image = tree / "build/aarch64/demo.img"
    layout = verify_image(image, TARGET)
    assert copy_from_fat(image, layout.efi.offset, PurePosixPath("EFI/BOOT/BOOTAA64.EFI"), tmp_path).read_bytes() == \
        efi.read_bytes()
    key = pkgkeys.load_public_key(tree / "build/cookbook/build/id_ed25519.pub.toml")  # signed with the build's key
    package = pkgar.open_package(tree / "build/cookbook/repo" / TARGET / "bootloader.pkgar", key)
    assert [entry.path for entry in package.entries] == [b"boot/bootloader.efi"]
    efi.write_bytes(b"MZ another one\n")
    assert ran(run_doit(*args, env={"SOURCE_DATE_EPOCH": str(EPOCH)})) == {"cook:bootloader", "pkg:bootloader",
                                                                            "image"}
    missing = run_doit(*args[:-1], f"bootloader={tmp_path}/nothing.efi")
    assert missing.returncode != 0 and "bootloader: no such UEFI bootloader file" in missing.stdout + missing.stderr


def test_the_initfs_takes_the_users_own_files_from_the_base_source(tmp_path):
    tree = tmp_path / "demo"
    shutil.copytree(DEMO, tree, ignore=shutil.ignore_patterns("build"))
    source = tree / "recipes/base-initfs/source"
    init_rc = ("# the users' init.rc\n# Pure-Rust Redox | Build: old | by hand\nexport PATH /scheme/initfs/bin\n"
               "export RUST_LOG pcid=debug\nrtcd\n")
    files = {"init.rc": init_rc, f"{TARGET}/init_drivers.rc": "# drivers of the users\npcid-spawner\n",
             "drivers/initfs.toml": "# the users' pcid table\n"}
    for name, text in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    args = ("qcow2", f"root={tree}", "config=config/aarch64/demo.toml", "toolchain=host")
    env = {"SOURCE_DATE_EPOCH": str(EPOCH)}
    assert "initfs" in ran(run_doit(*args, env=env))

    def etc() -> dict[str, str]:
        initfs = read_initfs(tree / "build/aarch64/initfs.img")
        entries = dict(initfs.walk())
        return {name: initfs.content(entries[name]).decode() for name in
                ("etc/init.rc", "etc/init_drivers.rc", "etc/pcid/initfs.toml")}
    date = time.strftime("%Y-%m-%d %H:%M", time.gmtime(EPOCH))
    built = etc()
    assert built["etc/init_drivers.rc"] == files[f"{TARGET}/init_drivers.rc"]
    assert built["etc/pcid/initfs.toml"] == files["drivers/initfs.toml"]
    lines, theirs = built["etc/init.rc"].splitlines(), init_rc.splitlines()
    assert lines[0] == theirs[0] and lines[2:] == theirs[2:]  # only line 2 differs: the stamp
    assert lines[1].startswith("# Pure-Rust Redox | Build: ") and lines[1].endswith(f"| {date} | built {date}")
    # An edit of init.rc: a new initfs, image and qcow2; its recipe's cook re-runs (its source changed) and comes out
    # byte-identical, so nothing else does.
    (source / "init.rc").write_text(init_rc.replace("rtcd\n", "rtcd\nnulld\n"))
    assert ran(run_doit(*args, env=env)) == {"cook:base-initfs", "initfs", "image", "qcow2"}
    assert etc()["etc/init.rc"].endswith("rtcd\nnulld\n")
    assert "initfs" in ran(run_doit(*args, "rust_log=info", env=env))
    assert "export RUST_LOG info\n" in etc()["etc/init.rc"] and "pcid=debug" not in etc()["etc/init.rc"]


def test_the_initfs_takes_the_base_initfs_stages_own_bin_and_drivers(tmp_path):
    """What the tree's recipe lays out is what the initfs holds: no table in the project decides (here: a daemon the
    project's layout does not name, and one it names left out)."""
    tree = tmp_path / "demo"
    shutil.copytree(DEMO, tree, ignore=shutil.ignore_patterns("build"))
    recipe = tree / "recipes/base-initfs/recipe.toml"
    recipe.write_text(recipe.read_text().replace(" hwd ", " ipcd "))
    result = run_doit("initfs", f"root={tree}", "config=config/aarch64/demo.toml", "toolchain=host")
    assert result.returncode == 0, result.stdout + result.stderr
    files = {path for path, inode in read_initfs(tree / "build/aarch64/initfs.img").walk()
             if inode.kind is InodeKind.FILE}
    assert "bin/ipcd" in files and "bin/hwd" not in files and "lib/drivers/virtio-blkd" in files
    assert {path for path in files if path.startswith(("bin/", "lib/"))} == {
        str(path.relative_to(tree / "build" / host_triple() / "recipes/base-initfs/stage"))
        for path in (tree / "build" / host_triple() / "recipes/base-initfs/stage").rglob("*")
        if path.is_file() and path.name != "bootstrap"}


ARCHIVER = '''#!{python}
# Stands in for the fork's redox-initfs-ar, which is not published anywhere this machine can reach: the same command
# line (clap: [--max-size BYTES] SOURCE [BOOTSTRAP] -o OUTPUT), the same format, written by our writer.
import argparse, sys
sys.path.insert(0, {project!r})
from pathlib import Path
from tasks.initfs.format import write_initfs
parser = argparse.ArgumentParser()
parser.add_argument("--max-size", type=int, default=64 << 20)
parser.add_argument("source")
parser.add_argument("bootstrap", nargs="?")
parser.add_argument("-o", "--output", required=True)
args = parser.parse_args()
bootstrap = None if {drop_bootstrap} else args.bootstrap
write_initfs(Path(args.source), Path(args.output), bootstrap=bootstrap and Path(bootstrap), max_size=args.max_size,
             allow_missing_bootstrap=True, mtime=0)
'''


def test_the_initfs_can_be_packed_by_the_forks_own_archiver(tmp_path):
    tree = tmp_path / "demo"
    shutil.copytree(DEMO, tree, ignore=shutil.ignore_patterns("build"))
    tools = {}
    for name, drop in (("good", False), ("broken", True)):
        tools[name] = tmp_path / f"redox-initfs-ar-{name}"
        tools[name].write_text(ARCHIVER.format(python=sys.executable, project=str(PROJECT_DIR), drop_bootstrap=drop))
        tools[name].chmod(0o755)
    args = ("initfs", f"root={tree}", "config=config/aarch64/demo.toml", "toolchain=host")
    good = run_doit(*args, f"initfs_archiver={tools['good']}")
    assert good.returncode == 0, good.stdout + good.stderr
    image = read_initfs(tree / "build/aarch64/initfs.img")
    assert image.header.has_bootstrap and image.header.creation_sec == 0  # written by the tool
    before = (tree / "build/aarch64/initfs.img").read_bytes()
    broken = run_doit(*args, f"initfs_archiver={tools['broken']}")
    assert broken.returncode != 0
    assert "bootstrap_entry: the initfs has no bootstrap entry point" in broken.stdout + broken.stderr
    assert (tree / "build/aarch64/initfs.img").read_bytes() == before  # the previous initfs is kept


def test_an_initfs_crate_of_another_layout_stops_the_built_in_writer(tmp_path):
    from tests.test_initfs import TYPES_RS, TYPES_RS_12_BYTE_INODES
    tree = tmp_path / "demo"
    shutil.copytree(DEMO, tree, ignore=shutil.ignore_patterns("build"))
    types_rs = tree / "recipes/base-initfs/source/initfs/src/types.rs"
    types_rs.parent.mkdir(parents=True)
    types_rs.write_text(TYPES_RS)
    args = ("initfs", f"root={tree}", "config=config/aarch64/demo.toml", "toolchain=host")
    good = run_doit(*args)
    assert good.returncode == 0, good.stdout + good.stderr
    before = (tree / "build/aarch64/initfs.img").read_bytes()
    types_rs.write_text(TYPES_RS_12_BYTE_INODES)  # the fork's other revision of the format
    refused = run_doit(*args)
    assert refused.returncode != 0
    assert "`struct InodeHeader` is (type_, length, offset)" in refused.stdout + refused.stderr
    assert "redox-initfs-ar" in refused.stdout + refused.stderr
    assert (tree / "build/aarch64/initfs.img").read_bytes() == before
