"""Real aarch64 code from a Rust installation outside rustup: Debian's rustc-web, cargo-web and rust-web-src with the
LLVM backend and ``-Zbuild-std``, reached only through the kernel build environment the project makes. The
fork-shaped fixture's kernel (``tests/fork/recipes/core/kernel/source``) is built for the project's own kernel spec,
read back from its ELF header, and booted in QEMU, where it prints its line on the serial console."""
from __future__ import annotations

import select
import struct
import subprocess
import time
from pathlib import Path

import pytest

from tasks.process import run
from tasks.toolchain.env import ArtifactKind, target_build
from tasks.toolchain.installed import verify_toolchain
from tasks.toolchain.pin import ToolchainPin
from tasks.toolchain.specs import SpecKind, write_specs
from tests.conftest import PROJECT
from tests.test_toolchain import DEBIAN, needs_debian_rust

pytestmark = [pytest.mark.slow, needs_debian_rust]

SOURCE = Path(__file__).parent / "fork/recipes/core/kernel/source"
CARGO_CACHE = PROJECT / "build" / "test-cargo"  # shared by the runs of this machine; CI starts without it
ET_EXEC, EM_AARCH64 = 2, 183
ENTRY = 0x4008_0000  # linkers/aarch64.ld
LINE = b"fixture kernel: hello from aarch64"


def elf_header(path: Path) -> tuple[int, int, int]:
    """(e_type, e_machine, e_entry) of a 64-bit little-endian ELF."""
    head = path.read_bytes()[:0x20]
    assert head[:4] == b"\x7fELF" and head[4:6] == b"\x02\x01", "a 64-bit little-endian ELF"
    e_type, e_machine = struct.unpack_from("<HH", head, 0x10)
    return e_type, e_machine, struct.unpack_from("<Q", head, 0x18)[0]


@pytest.fixture(scope="module")
def kernel() -> Path:
    toolchain = verify_toolchain(ToolchainPin(path=DEBIAN, backend="llvm", components=()))
    arch_dir = CARGO_CACHE / "aarch64"
    spec = write_specs(arch_dir, "aarch64", arch_dir / "sysroot")[SpecKind.KERNEL]
    build = target_build(toolchain, ArtifactKind.KERNEL, spec=spec, sysroot=arch_dir / "sysroot",
                         extra_rustflags=["-C", "link-arg=-Tlinkers/aarch64.ld"])
    target_dir = CARGO_CACHE / "kernel"
    run(build.cargo_argv("build", "--release", "--target-dir", str(target_dir)), cwd=SOURCE, env=build.env(),
        log=CARGO_CACHE / "kernel.log")
    return target_dir / build.target_name / "release" / "kernel"


def test_the_kernel_is_an_aarch64_executable_entered_where_its_linker_script_says(kernel: Path) -> None:
    assert elf_header(kernel) == (ET_EXEC, EM_AARCH64, ENTRY)


def test_the_kernel_boots_in_qemu_and_prints_its_line(kernel: Path) -> None:
    qemu = subprocess.Popen(["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-m", "128M",
                             "-display", "none", "-monitor", "none", "-serial", "stdio", "-kernel", str(kernel)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = b""
    try:
        deadline = time.monotonic() + 60
        while LINE not in output and (left := deadline - time.monotonic()) > 0 and qemu.poll() is None:
            if select.select([qemu.stdout], [], [], left)[0]:
                output += qemu.stdout.read1(4096)
    finally:
        qemu.kill()
        qemu.wait()
    assert LINE in output, output
