"""The QEMU command line: typed run options, what they resolve to on this host, and the argv built from them.

:func:`resolve` looks things up (acceleration, UEFI firmware, disk format); :func:`qemu_argv` is a pure function of
its result and the session's paths, so the printed command line can be golden-tested.
"""
from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from ..errors import InputError

QEMU = "qemu-system-aarch64"
# QEMU's virt machine maps each of its two flash banks as exactly 64 MiB; a smaller firmware file loads with -bios.
PFLASH_SIZE = 64 * 1024 * 1024
QCOW2_MAGIC = b"QFI\xfb"
SHARE_TAG = "hostshare"

_HOMEBREW_SHARE_DIRS = (Path("/opt/homebrew/share/qemu"), Path("/usr/local/share/qemu"), Path("/usr/share/qemu"))
# (firmware code, its variable-store template), searched in this order.
FIRMWARE_CANDIDATES: tuple[tuple[Path, Path | None], ...] = (
    (Path("/usr/share/AAVMF/AAVMF_CODE.fd"), Path("/usr/share/AAVMF/AAVMF_VARS.fd")),
    (Path("/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"), None),
    *((share / "edk2-aarch64-code.fd", share / "edk2-arm-vars.fd") for share in _HOMEBREW_SHARE_DIRS),
)


TCG_CPU = "cortex-a72"


class Accel(StrEnum):
    KVM = "kvm"
    HVF = "hvf"
    TCG = "tcg"

    @property
    def cpu(self) -> str:
        # Hardware acceleration runs the host's own CPU. Emulated, the CPU the fork's scripts use under TCG: the
        # fork's own firmware (firmware/QEMU_EFI.fd) prints nothing at all on QEMU 10's `max` CPU.
        return TCG_CPU if self is Accel.TCG else "host"


class DiskFormat(StrEnum):
    RAW = "raw"
    QCOW2 = "qcow2"


@dataclass(frozen=True)
class PortForward:
    """A host port forwarded to a guest port over QEMU's user network (``2222:22``, ``udp:5353:53``)."""

    host: int
    guest: int
    protocol: str = "tcp"

    @classmethod
    def parse(cls, text: str) -> "PortForward":
        found = re.fullmatch(r"(?:(tcp|udp):)?(\d{1,5}):(\d{1,5})", text.strip())
        if found is None:
            raise InputError(f"not a port forward: {text!r} (expected HOST:GUEST or tcp|udp:HOST:GUEST)",
                             key="forward")
        protocol, host, guest = found.groups()
        return cls(host=int(host), guest=int(guest), protocol=protocol or "tcp")

    def qemu(self) -> str:
        return f"hostfwd={self.protocol}::{self.host}-:{self.guest}"


@dataclass(frozen=True)
class Firmware:
    """UEFI firmware: its code, and the template its per-run writable variable store is copied from."""

    code: Path
    vars_template: Path | None = None

    @property
    def pflash(self) -> bool:
        return self.code.stat().st_size == PFLASH_SIZE


class RunOptions(BaseModel):
    """How to boot: the image (or a kernel for direct boot) and the machine around it."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    image: Path | None = None
    snapshot: bool = True
    acpi: bool = False
    """ACPI tables for the guest. Off by default: the fork's aarch64 kernel reads the DeviceTree, and with ACPI on it
    prints nothing after ``kernel_entry`` under the Debian firmware (``-M virt,acpi=off``)."""
    memory: str = "2G"
    cpus: int = 4
    gui: bool = False
    extra_args: tuple[str, ...] = ()
    forwards: tuple[PortForward, ...] = ()
    share_dir: Path | None = None
    accel: Accel | None = None
    firmware: Path | None = None
    firmware_vars: Path | None = None
    kernel: Path | None = None
    initrd: Path | None = None
    append: str | None = None
    qemu: str = QEMU

    @field_validator("memory")
    @classmethod
    def _memory_size(cls, memory: str) -> str:
        if re.fullmatch(r"\d+[KMGT]?", memory) is None:
            raise ValueError(f"not a memory size: {memory!r} (e.g. 2G, 512M)")
        return memory

    @field_validator("cpus")
    @classmethod
    def _at_least_one_cpu(cls, cpus: int) -> int:
        if cpus < 1:
            raise ValueError("needs at least one cpu")
        return cpus

    @field_validator("forwards", mode="before")
    @classmethod
    def _parse_forwards(cls, forwards: object) -> object:
        if isinstance(forwards, (list, tuple)):
            return tuple(PortForward.parse(item) if isinstance(item, str) else item for item in forwards)
        return forwards

    @model_validator(mode="after")
    def _something_to_boot(self) -> "RunOptions":
        if self.image is None and self.kernel is None:
            raise ValueError("nothing to boot: set image (or kernel for a direct kernel boot)")
        if (self.initrd is not None or self.append is not None) and self.kernel is None:
            raise ValueError("initrd and append need kernel")
        return self


@dataclass(frozen=True)
class Machine:
    """Run options with everything looked up on this host: all one QEMU command line needs."""

    options: RunOptions
    accel: Accel
    firmware: Firmware | None
    disk_format: DiskFormat | None


@dataclass(frozen=True)
class SessionFiles:
    """Where a session's console, monitor, console log and firmware variables live."""

    console_socket: Path
    qmp_socket: Path
    console_log: Path
    vars_file: Path


def resolve(options: RunOptions, *, dry_run: bool = False) -> Machine:
    """Look up acceleration, firmware (none for a direct kernel boot) and the image's format (for a dry run, of an
    image not built yet: the one its name says)."""
    firmware = None if options.kernel is not None else find_firmware(options.firmware, options.firmware_vars)
    for path, key in ((options.kernel, "kernel"), (options.initrd, "initrd")):
        if path is not None and not path.is_file():
            raise InputError("not found", path=path, key=key)
    disk_format = None if options.image is None else \
        detect_format(options.image, missing_ok=dry_run)
    return Machine(options=options, accel=options.accel or detect_accel(), firmware=firmware,
                   disk_format=disk_format)


def detect_accel(machine: str | None = None, system: str | None = None,
                 kvm_device: Path = Path("/dev/kvm")) -> Accel:
    """KVM or HVF on an aarch64 host that offers it; otherwise emulation."""
    machine = (machine or platform.machine()).lower()
    system = system or platform.system()
    if machine not in ("aarch64", "arm64"):
        return Accel.TCG
    if system == "Linux" and os.access(kvm_device, os.R_OK | os.W_OK):
        return Accel.KVM
    if system == "Darwin":
        return Accel.HVF
    return Accel.TCG


def find_firmware(code: Path | None = None, vars_template: Path | None = None,
                  candidates: tuple[tuple[Path, Path | None], ...] = FIRMWARE_CANDIDATES) -> Firmware:
    """The firmware set in the options, or the first of ``candidates`` installed on this host."""
    if code is not None:
        if not code.is_file():
            raise InputError("firmware not found", path=code, key="firmware")
        if vars_template is None:
            vars_template = next((known for known_code, known in candidates if known_code == code), None)
        return Firmware(code=code, vars_template=_existing(vars_template))
    for known_code, known_vars in candidates:
        if known_code.is_file():
            return Firmware(code=known_code, vars_template=_existing(vars_template or known_vars))
    searched = ", ".join(str(known_code) for known_code, _ in candidates)
    raise InputError(f"no aarch64 UEFI firmware found (searched {searched}); install qemu-efi-aarch64 (Debian) "
                     "or qemu (Homebrew), or set firmware=PATH", key="firmware")


def _existing(path: Path | None) -> Path | None:
    return path if path is not None and path.is_file() else None


def detect_format(image: Path, missing_ok: bool = False) -> DiskFormat:
    try:
        with open(image, "rb") as stream:
            magic = stream.read(len(QCOW2_MAGIC))
    except FileNotFoundError:
        if missing_ok:
            return DiskFormat.QCOW2 if image.suffix == ".qcow2" else DiskFormat.RAW
        raise InputError("image not found (build it first)", path=image, key="image") from None
    return DiskFormat.QCOW2 if magic == QCOW2_MAGIC else DiskFormat.RAW


def qemu_argv(machine: Machine, files: SessionFiles) -> list[str]:
    """The command line: machine, firmware or kernel, disk, share, network, display, console and QMP monitor."""
    options = machine.options
    argv = [options.qemu, "-M", "virt" if options.acpi else "virt,acpi=off", "-accel", str(machine.accel),
            "-cpu", machine.accel.cpu,
            "-smp", str(options.cpus), "-m", options.memory]
    argv += _boot_args(machine, files)
    if options.image is not None:
        snapshot = "on" if options.snapshot else "off"
        argv += ["-drive", f"file={_value(options.image)},format={machine.disk_format},id=disk0,if=none,"
                           f"snapshot={snapshot}",
                 "-device", "virtio-blk-pci,drive=disk0"]
    if options.share_dir is not None:
        argv += ["-fsdev", f"local,id=host0,path={_value(options.share_dir)},security_model=none",
                 "-device", f"virtio-9p-pci,fsdev=host0,mount_tag={SHARE_TAG}"]
    netdev = ",".join(["user", "id=net0", *(forward.qemu() for forward in options.forwards)])
    argv += ["-netdev", netdev, "-device", "virtio-net-pci,netdev=net0"]
    if options.gui:
        argv += ["-device", "virtio-gpu-pci", "-device", "qemu-xhci", "-device", "usb-kbd", "-device", "usb-tablet"]
    else:
        argv += ["-nographic"]
    # The serial console is a socket any client can attach to, logged whoever is attached; the monitor is QMP.
    argv += ["-chardev", f"socket,id=console0,path={_value(files.console_socket)},server=on,wait=off,"
                         f"logfile={_value(files.console_log)},logappend=on",
             "-serial", "chardev:console0",
             "-qmp", f"unix:{_value(files.qmp_socket)},server=on,wait=off",
             "-monitor", "none"]
    return argv + list(options.extra_args)


def _boot_args(machine: Machine, files: SessionFiles) -> list[str]:
    options = machine.options
    if options.kernel is not None:
        argv = ["-kernel", str(options.kernel)]
        if options.initrd is not None:
            argv += ["-initrd", str(options.initrd)]
        if options.append is not None:
            argv += ["-append", options.append]
        return argv
    assert machine.firmware is not None
    if not machine.firmware.pflash:
        return ["-bios", str(machine.firmware.code)]
    return ["-drive", f"if=pflash,format=raw,readonly=on,file={_value(machine.firmware.code)}",
            "-drive", f"if=pflash,format=raw,file={_value(files.vars_file)}"]


def _value(path: Path) -> str:
    """A path inside a QEMU ``key=value,…`` option, where a literal comma is written twice."""
    return str(path).replace(",", ",,")
