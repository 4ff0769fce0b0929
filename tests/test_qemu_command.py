"""The QEMU command line: golden test for the real Redox image, and each option's effect."""
from __future__ import annotations

import shlex
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest

from tasks.errors import InputError
from tasks.process import command_line, run
from tasks.qemu.command import (
    FIRMWARE_CANDIDATES,
    PFLASH_SIZE,
    Accel,
    DiskFormat,
    PortForward,
    RunOptions,
    SessionFiles,
    detect_accel,
    detect_format,
    find_firmware,
    qemu_argv,
    resolve,
)
from tasks.qemu.session import SessionPaths
from tests.trees import sparse_file

# The fork's image: a raw GPT disk booted by UEFI firmware from pflash, share/ over 9p, ssh forwarded, serial only;
# no ACPI tables, since the fork's kernel is a DeviceTree kernel (with ACPI on it hangs after kernel_entry).
GOLDEN_REDOX = (
    "qemu-system-aarch64 -M virt,acpi=off -accel tcg -cpu cortex-a72 -smp 4 -m 2G"
    " -drive if=pflash,format=raw,readonly=on,file={tmp}/firmware/AAVMF_CODE.fd"
    " -drive if=pflash,format=raw,file={tmp}/build/run/default/vars.fd"
    " -drive file={tmp}/build/aarch64/pure-rust.img,format=raw,id=disk0,if=none,snapshot=on"
    " -device virtio-blk-pci,drive=disk0"
    " -fsdev local,id=host0,path={tmp}/share,security_model=none"
    " -device virtio-9p-pci,fsdev=host0,mount_tag=hostshare"
    " -netdev user,id=net0,hostfwd=tcp::2222-:22 -device virtio-net-pci,netdev=net0"
    " -nographic"
    " -chardev socket,id=console0,path={tmp}/build/run/default/console.sock,server=on,wait=off,"
    "logfile={tmp}/build/logs/qemu-default-console.log,logappend=on -serial chardev:console0"
    " -qmp unix:{tmp}/build/run/default/qmp.sock,server=on,wait=off -monitor none"
)


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    # Unix socket paths are limited to 107 bytes: under pytest-xdist's longer temporary paths the session layer
    # moves its sockets to /tmp, which the golden command lines do not show. A short directory keeps them in build/.
    path = Path(tempfile.mkdtemp(prefix="qemu-cmd-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def firmware(tmp_path: Path) -> tuple[Path, Path]:
    return (sparse_file(tmp_path / "firmware" / "AAVMF_CODE.fd", PFLASH_SIZE),
            sparse_file(tmp_path / "firmware" / "AAVMF_VARS.fd", PFLASH_SIZE))


@pytest.fixture
def redox_image(tmp_path: Path) -> Path:
    # Protective MBR signature and GPT header signature where a GPT disk has them; format detection reads it raw.
    head = bytearray(1024)
    head[510:512] = b"\x55\xaa"
    head[512:520] = b"EFI PART"
    return sparse_file(tmp_path / "build" / "aarch64" / "pure-rust.img", 64 << 20, bytes(head))


def files_for(build: Path) -> SessionFiles:
    return SessionPaths.of(build, "default").files


def test_golden_command_line_for_the_redox_image(tmp_path, firmware, redox_image):
    code, vars_template = firmware
    options = RunOptions(image=redox_image, share_dir=tmp_path / "share", forwards=["2222:22"], accel=Accel.TCG,
                         firmware=code, firmware_vars=vars_template)
    argv = qemu_argv(resolve(options), files_for(tmp_path / "build"))
    assert command_line(argv) == GOLDEN_REDOX.format(tmp=tmp_path)


def test_acpi_on_asks_for_the_plain_virt_machine(tmp_path, firmware, redox_image):
    code, _ = firmware
    argv = qemu_argv(resolve(RunOptions(image=redox_image, acpi=True, accel=Accel.TCG, firmware=code)),
                     files_for(tmp_path / "build"))
    assert argv[argv.index("-M") + 1] == "virt"


def test_snapshot_off_gui_and_extra_args(tmp_path, firmware, redox_image):
    code, _ = firmware
    options = RunOptions(image=redox_image, snapshot=False, gui=True, memory="4G", cpus=2, accel=Accel.HVF,
                         firmware=code, extra_args=("-d", "guest_errors"))
    argv = qemu_argv(resolve(options), files_for(tmp_path / "build"))
    assert f"file={redox_image},format=raw,id=disk0,if=none,snapshot=off" in argv
    assert "-nographic" not in argv and "virtio-gpu-pci" in argv
    assert argv[argv.index("-cpu") + 1] == "host" and argv[argv.index("-accel") + 1] == "hvf"
    assert argv[argv.index("-m") + 1] == "4G" and argv[argv.index("-smp") + 1] == "2"
    assert argv[-2:] == ["-d", "guest_errors"]
    assert "-fsdev" not in argv and argv[argv.index("-netdev") + 1] == "user,id=net0"


def test_qcow2_image_is_detected(tmp_path, firmware):
    image = tmp_path / "dev.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", image, "16M"])
    assert detect_format(image) is DiskFormat.QCOW2
    argv = qemu_argv(resolve(RunOptions(image=image, firmware=firmware[0], accel=Accel.TCG)), files_for(tmp_path))
    assert f"file={image},format=qcow2,id=disk0,if=none,snapshot=on" in argv


def test_missing_image_names_it(tmp_path):
    with pytest.raises(InputError, match="image: image not found") as failure:
        detect_format(tmp_path / "nothing.img")
    assert failure.value.path == tmp_path / "nothing.img"


def test_direct_kernel_boot_has_no_firmware(tmp_path):
    kernel, initrd = sparse_file(tmp_path / "vmlinuz", 4096), sparse_file(tmp_path / "initrd", 4096)
    options = RunOptions(kernel=kernel, initrd=initrd, append="console=ttyAMA0 quiet", accel=Accel.TCG)
    argv = qemu_argv(resolve(options), files_for(tmp_path))
    joined = shlex.join(argv)
    assert f"-kernel {kernel} -initrd {initrd} -append 'console=ttyAMA0 quiet'" in joined
    assert "pflash" not in joined and "-bios" not in joined and "virtio-blk-pci" not in joined


def test_small_firmware_loads_with_bios(tmp_path):
    """QEMU_EFI.fd as Debian ships it (2 MiB) does not fit a 64 MiB flash bank: -bios, and no vars file."""
    code = sparse_file(tmp_path / "QEMU_EFI.fd", 2 << 20)
    image = sparse_file(tmp_path / "disk.img", 1 << 20)
    argv = qemu_argv(resolve(RunOptions(image=image, firmware=code, accel=Accel.TCG)), files_for(tmp_path))
    assert argv[argv.index("-bios") + 1] == str(code) and not any("pflash" in arg for arg in argv)


def test_firmware_search_order_and_vars_template(tmp_path):
    debian = (tmp_path / "AAVMF" / "AAVMF_CODE.fd", tmp_path / "AAVMF" / "AAVMF_VARS.fd")
    homebrew = (tmp_path / "brew" / "edk2-aarch64-code.fd", tmp_path / "brew" / "edk2-arm-vars.fd")
    candidates = (debian, homebrew)
    with pytest.raises(InputError, match="no aarch64 UEFI firmware found"):
        find_firmware(candidates=candidates)
    sparse_file(homebrew[0], PFLASH_SIZE)
    assert find_firmware(candidates=candidates).vars_template is None  # template missing: a blank store is used
    sparse_file(homebrew[1], PFLASH_SIZE)
    assert find_firmware(candidates=candidates).code == homebrew[0]
    sparse_file(debian[0], PFLASH_SIZE)
    sparse_file(debian[1], PFLASH_SIZE)
    found = find_firmware(candidates=candidates)
    assert (found.code, found.vars_template, found.pflash) == (debian[0], debian[1], True)
    assert find_firmware(homebrew[0], candidates=candidates).vars_template == homebrew[1]
    with pytest.raises(InputError, match="firmware not found"):
        find_firmware(tmp_path / "typo.fd", candidates=candidates)


def test_this_host_has_firmware_from_the_search_list():
    """setup.sh installs qemu-efi-aarch64 (Debian) / qemu (Homebrew): the default search must find it."""
    found = find_firmware()
    assert found.code in [code for code, _ in FIRMWARE_CANDIDATES] and found.code.is_file()


@pytest.mark.parametrize("machine, system, kvm, expected", [
    ("x86_64", "Linux", True, Accel.TCG),  # an x86 host emulates aarch64, /dev/kvm or not
    ("aarch64", "Linux", True, Accel.KVM),
    ("aarch64", "Linux", False, Accel.TCG),
    ("arm64", "Darwin", False, Accel.HVF),
])
def test_acceleration(tmp_path, machine, system, kvm, expected):
    kvm_device = sparse_file(tmp_path / "kvm", 0) if kvm else tmp_path / "no-kvm"
    accel = detect_accel(machine, system, kvm_device)
    assert accel is expected
    assert accel.cpu == ("cortex-a72" if expected is Accel.TCG else "host")


def test_port_forwards():
    assert PortForward.parse("2222:22").qemu() == "hostfwd=tcp::2222-:22"
    assert PortForward.parse("udp:5353:53").qemu() == "hostfwd=udp::5353-:53"
    with pytest.raises(InputError, match="not a port forward"):
        PortForward.parse("22")


def test_paths_with_commas_are_escaped(tmp_path, firmware):
    image = sparse_file(tmp_path / "a,b.img", 1 << 20)
    argv = qemu_argv(resolve(RunOptions(image=image, firmware=firmware[0], accel=Accel.TCG)), files_for(tmp_path))
    assert f"file={tmp_path}/a,,b.img,format=raw,id=disk0,if=none,snapshot=on" in argv


@pytest.mark.parametrize("bad", [{"memory": "2 GB", "image": "x"}, {"cpus": 0, "image": "x"}, {},
                                 {"image": "x", "initrd": "i"}])
def test_invalid_options_are_rejected(bad):
    with pytest.raises(pydantic.ValidationError):
        RunOptions(**bad)
