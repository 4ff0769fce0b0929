"""The fork's recipes of this repository (``recipes/core/{kernel,relibc,bootstrap,base,base-initfs,redoxfs}``) run
unchanged through ``doit qcow2`` on a small fork-shaped tree of real aarch64 crates (``tests/fork``: its sources,
the -p lists of its workspace and its config), compiled for real by Debian's rustc-web with the LLVM backend and
``-Zbuild-std``, from a fresh build directory. Every fact about a binary is read from its ELF headers.

What the fixture cannot show: its programs are not run (there is no kernel to run them under — the fixture kernel
only prints a line, which it does in QEMU below); the fork's own sources are not here (held out, they take these
recipes as they are).
"""
from __future__ import annotations

import json
import re
import select
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tasks.formats.pkgkeys import ensure_keys
from tasks.hashing import hash_file
from tasks.image.files import ImageFiles
from tasks.image.installer import verify_image
from tasks.initfs.format import InodeKind, read_initfs
from tasks.settings import PROJECT_DIR
from tasks.toolchain import hosttools
from tests.conftest import run_doit
from tests.test_toolchain import needs_debian_rust

pytestmark = [pytest.mark.slow, needs_debian_rust]

FIXTURE = Path(__file__).parent / "fork"
RECIPES = ("kernel", "relibc", "bootstrap", "base", "base-initfs", "redoxfs", "bootloader")
TARGET = "aarch64-unknown-redox"
EPOCH = 1_700_000_000
KERNEL_ENTRY = 0x4008_0000  # the fixture's linkers/aarch64.ld
KERNEL_LINE = b"fixture kernel: hello from aarch64"
KEY_DIR = Path("cookbook/build")  # the build's package key, which also signs its cache entries
BUILD_TIMEOUT = 1500  # a cold build compiles core three times and std twice: about 5 minutes on 2 cores


@dataclass(frozen=True)
class Fork:
    tree: Path
    elsewhere: Path | None = None  # another build directory of the tree ("another machine"), which only reads
    # the shared cache that the tree's own build fills

    @property
    def build(self) -> Path:
        return self.elsewhere or self.tree / "build"

    @property
    def cache(self) -> tuple[str, ...]:
        store = f"cache=file://{self.tree.parent / 'cache'}"
        return (store,) if self.elsewhere else (store, "cache_upload=yes")

    def stage(self, recipe: str) -> Path:
        return self.build / TARGET / "recipes" / recipe / "stage"

    def target_dir(self, recipe: str, spec: str) -> Path:
        return self.build / TARGET / "recipes" / recipe / "build/target" / spec / "release"

    @property
    def image(self) -> Path:
        return self.build / "aarch64/fork.img"

    @property
    def initfs(self) -> Path:
        return self.build / "aarch64/initfs.img"

    def doit(self, *args: str):
        result = run_doit(*args, f"root={self.tree}", f"build={self.build}", "config=config/aarch64/fork.toml",
                          "rust=/usr", "backend=llvm", f"bootloader={self.tree / 'BOOTAA64.EFI'}", *self.cache,
                          env={"SOURCE_DATE_EPOCH": str(EPOCH)}, timeout=BUILD_TIMEOUT)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def qcow2(self) -> set[str]:
        """``doit qcow2``; the tasks that ran."""
        return {line[3:] for line in self.doit("qcow2").stdout.splitlines() if line.startswith(".  ")}

    def artifacts(self) -> dict[str, str]:
        """Every artifact of the build by path: stages, sysroot, packages, initfs, image, qcow2 (not their stamps,
        which each run of a task writes)."""
        roots = [self.build / TARGET / "recipes", self.build / "aarch64/sysroot", self.build / "cookbook/repo"]
        files = [path for root in roots for path in root.rglob("*") if path.is_file()
                 and ("/stage/" in str(path) or "/recipes/" not in str(path)) and not path.name.endswith(".stamp.json")]
        files += [self.initfs, self.image, self.image.with_suffix(".qcow2")]
        return {str(path.relative_to(self.build)): hash_file(path) for path in files}


def assemble_tree(tree: Path) -> Fork:
    """This repository's recipes, with the fixture's sources and -p lists laid over them, and its config."""
    for recipe in RECIPES:
        shutil.copytree(PROJECT_DIR / "recipes/core" / recipe, tree / "recipes/core" / recipe)
    shutil.copytree(FIXTURE / "recipes", tree / "recipes", dirs_exist_ok=True)
    shutil.copytree(FIXTURE / "config", tree / "config")
    (tree / "BOOTAA64.EFI").write_bytes(b"MZ the fixture's UEFI loader\n")
    # The build's key signs its packages and its cache entries; the tree pins it for the cache's readers.
    ensure_keys(tree / "build" / KEY_DIR)
    (tree / "config" / "cache-keys").mkdir()
    shutil.copy(tree / "build" / KEY_DIR / "id_ed25519.pub.toml", tree / "config" / "cache-keys")
    return Fork(tree)


@pytest.fixture(scope="module")
def fork(tmp_path_factory: pytest.TempPathFactory) -> Fork:
    fork = assemble_tree(tmp_path_factory.mktemp("fork") / "tree")
    started = time.monotonic()
    ran = fork.qcow2()
    (fork.build / "cold-seconds").write_text(f"{time.monotonic() - started:.0f}\n")
    assert {"toolchain", "relibc", "cook:kernel", "cook:relibc", "cook:bootstrap", "cook:base", "cook:base-initfs",
            "cook:redoxfs", "initfs", "image", "qcow2"} <= ran
    return fork


def elf(path: Path) -> ELFFile:
    return ELFFile(open(path, "rb"))  # noqa: SIM115  (pyelftools reads lazily; closed with the process)


def symbol(path: Path, name: str) -> int:
    return elf(path).get_section_by_name(".symtab").get_symbol_by_name(name)[0]["st_value"]


def segments(path: Path) -> set[str]:
    return {segment["p_type"] for segment in elf(path).iter_segments()}


def test_the_kernel_is_an_aarch64_executable_entered_where_its_linker_script_says(fork: Fork) -> None:
    kernel = fork.stage("kernel") / "boot/kernel"
    header = elf(kernel).header
    assert (header["e_type"], header["e_machine"], header["e_entry"]) == ("ET_EXEC", "EM_AARCH64", KERNEL_ENTRY)
    assert not any(section.name.startswith(".debug") for section in elf(kernel).iter_sections())


def test_the_kernel_spec_is_soft_float_with_the_detected_abi(fork: Fork) -> None:
    spec = json.loads((fork.build / "aarch64/aarch64-unknown-none.json").read_text())
    assert (spec["abi"], spec["rustc-abi"]) == ("softfloat", "softfloat") and "-neon" in spec["features"]


@pytest.mark.parametrize("recipe, path", [("base", "usr/bin/init"), ("base", "usr/lib/drivers/virtio-blkd"),
                                          ("base-initfs", "bin/init"), ("base-initfs", "lib/drivers/virtio-blkd"),
                                          ("base-initfs", "bin/redoxfs")])
def test_userspace_programs_are_static_non_pie_entered_at_crt0s_start(fork: Fork, recipe: str, path: str) -> None:
    program = fork.stage(recipe) / path
    header = elf(program).header
    assert (header["e_type"], header["e_machine"]) == ("ET_EXEC", "EM_AARCH64")  # ET_DYN would be PIE
    assert not segments(program) & {"PT_INTERP", "PT_DYNAMIC"}
    # The stage's copy is stripped: the entry is checked against the symbols of the binary cargo linked.
    source_recipe = "redoxfs" if path.endswith("redoxfs") else "base"
    linked = fork.target_dir(source_recipe, "aarch64-unknown-redox-clif") / Path(path).name
    assert header["e_entry"] == elf(linked).header["e_entry"] == symbol(linked, "_start")
    assert symbol(linked, "relibc_start") and symbol(linked, "relibc_fixture_sum")  # linked against libc.a


def test_the_sysroot_merges_the_crt_archives_and_has_the_unwind_stubs(fork: Fork) -> None:
    lib = fork.build / "aarch64/sysroot/lib"
    assert symbol(lib / "crt0.o", "_start") is not None and elf(lib / "crt0.o").header["e_type"] == "ET_REL"
    assert {path.name for path in lib.iterdir()} >= {"libc.a", "crt0.o", "crti.o", "crtn.o", "libgcc_eh.a"}


def test_the_initfs_holds_the_bootstrap_the_programs_and_the_users_init_rc(fork: Fork) -> None:
    bootstrap = fork.stage("bootstrap") / "bootstrap"
    assert elf(bootstrap).header["e_type"] == "ET_EXEC"
    initfs = read_initfs(fork.initfs)
    assert initfs.header.bootstrap_entry == elf(bootstrap).header["e_entry"] == 0x1000  # src/aarch64.ld
    files = {path: inode for path, inode in initfs.walk() if inode.kind is InodeKind.FILE}
    assert {"bin/init", "bin/redoxfs", "lib/drivers/virtio-blkd", "etc/init_drivers.rc",
            "etc/pcid/initfs.toml"} <= set(files)
    ours = (fork.tree / "recipes/core/base/source/init.rc").read_text().splitlines()
    theirs = initfs.content(files["etc/init.rc"]).decode().splitlines()
    assert len(theirs) == len(ours) and [n for n, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b] == [1]
    assert theirs[1].startswith("# Pure-Rust Redox | Build: ")


def test_base_initfs_compiles_nothing_base_compiled(fork: Fork) -> None:
    def compiled(recipe: str) -> set[str]:
        log = (fork.build / f"logs/cook-{recipe}.log").read_text()
        return set(re.findall(r"^\s*Compiling (\S+ v\S+)", log, re.MULTILINE))
    base, initfs = compiled("base"), compiled("base-initfs")
    assert any(name.startswith("std ") for name in base | initfs)  # -Zbuild-std compiled std once, in one of them
    assert not base & initfs


def test_another_build_directory_takes_every_cook_from_the_cache_and_makes_the_same_bytes(fork: Fork) -> None:
    """The shared cache (tasks/cache): the tree's build filled it; a new build directory with the team's package
    key compiles nothing, and every artifact it makes is byte for byte the first build's."""
    other = Fork(fork.tree, elsewhere=fork.tree.parent / "another-machine")
    shutil.copytree(fork.build / KEY_DIR, other.build / KEY_DIR)
    ran = other.qcow2()
    outcome = {event["task"]: event["event"] for event in
               map(json.loads, (other.build / "cache" / "task-cache.jsonl").read_text().splitlines())}
    cached = {task for task in ran if task.startswith(("cook:", "pkg:")) or task in ("relibc", "initfs", "image")}
    assert {task: outcome.get(task) for task in cached} == dict.fromkeys(cached, "hit")
    assert {"cook:kernel", "cook:relibc", "cook:base", "relibc", "image"} <= cached
    assert other.artifacts() == fork.artifacts()


@pytest.fixture(scope="module")
def image_root(fork: Fork, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's RedoxFS extracted by the project's own reader (no FUSE; the image is left as it was)."""
    layout = verify_image(fork.image, TARGET)
    files = ImageFiles(fork.image, hosttools.ensure_own("redox-image"))
    assert files.offset == layout.redox.offset
    root = tmp_path_factory.mktemp("image") / "root"
    files.get("/", root)
    return root


def test_the_image_has_the_kernel_and_the_initfs(fork: Fork, image_root: Path) -> None:
    assert hash_file(image_root / "boot/kernel") == hash_file(fork.stage("kernel") / "boot/kernel")
    assert hash_file(image_root / "boot/initfs") == hash_file(fork.initfs)
    assert hash_file(image_root / "usr/bin/init") == hash_file(fork.stage("base") / "usr/bin/init")


def test_the_kernel_boots_in_qemu_and_prints_its_line(fork: Fork) -> None:
    qemu = subprocess.Popen(["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-m", "128M",
                             "-display", "none", "-monitor", "none", "-serial", "stdio",
                             "-kernel", str(fork.stage("kernel") / "boot/kernel")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = b""
    try:
        deadline = time.monotonic() + 60
        while KERNEL_LINE not in output and (left := deadline - time.monotonic()) > 0 and qemu.poll() is None:
            if select.select([qemu.stdout], [], [], left)[0]:
                output += qemu.stdout.read1(4096)
    finally:
        qemu.kill()
        qemu.wait()
    assert KERNEL_LINE in output, output


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}


def test_an_init_rc_edit_ends_in_a_new_initfs_image_and_qcow2_only(fork: Fork) -> None:
    before = fork.artifacts()
    init_rc = fork.tree / "recipes/core/base/source/init.rc"
    init_rc.write_text(init_rc.read_text().replace("RUST_LOG warn", "RUST_LOG debug"))
    ran = fork.qcow2()
    # The base source changed, so its cooks ran again and came out byte-identical: nothing packaged again.
    assert ran == {"cook:base", "cook:base-initfs", "cook:bootstrap", "initfs", "image", "qcow2"}
    assert changed(before, fork.artifacts()) == {
        "aarch64/initfs.img", "aarch64/fork.img", "aarch64/fork.qcow2",
        f"cookbook/repo/{TARGET}/initfs.pkgar", f"cookbook/repo/{TARGET}/initfs.toml",
        f"cookbook/repo/{TARGET}/repo.toml"}  # the repository's index, which lists the new initfs
    initfs = read_initfs(fork.initfs)
    assert b"export RUST_LOG debug\n" in initfs.content(dict(initfs.walk())["etc/init.rc"])


def test_a_libc_edit_rebuilds_the_sysroot_and_what_links_it_and_stops_where_outputs_match(fork: Fork) -> None:
    before = fork.artifacts()
    libc = fork.tree / "recipes/core/relibc/source/src/lib.rs"
    libc.write_text(libc.read_text().replace("wrapping_add", "wrapping_sub"))
    ran = fork.qcow2()
    assert {"cook:relibc", "relibc", "cook:base", "cook:base-initfs", "cook:redoxfs", "cook:bootstrap"} <= ran
    assert "cook:kernel" not in ran  # the kernel links no libc
    after = fork.artifacts()
    assert {"aarch64/sysroot/lib/libc.a", f"{TARGET}/recipes/base/stage/usr/bin/init"} <= changed(before, after)
    # The bootstrap is built from relibc's sources too, so it ran again — and came out the same: nothing of its own
    # changed, and nothing ran for it.
    assert not {path for path in changed(before, after) if "/recipes/bootstrap/" in path or "kernel" in path}
