"""A small aarch64 guest that behaves like Redox at the serial console, for the QEMU tests.

The Redox kernel cannot be built here, so the tests boot Debian's arm64 kernel with an initramfs made from Debian's
arm64 ``busybox-static``: its init prints ``redox login:``, asks for a password, and starts a shell whose prompt is
``root:~#``. The share is mounted where Redox shows it (``/scheme/9p.hostshare``) and the power button powers off,
as a polite ``system_powerdown`` expects.

Downloaded ``.deb`` files and the built kernel/initramfs are cached under the worktree's ``build/qemu-guest``
(git-ignored); everything is made from scratch when that directory is missing. Needs ``dpkg --add-architecture
arm64 && apt-get update`` (setup.sh) so that ``apt-get download`` finds arm64 packages.
"""
from __future__ import annotations

import fcntl
import gzip
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tasks.errors import CommandError
from tasks.hashing import hash_value
from tasks.process import run
from tasks.settings import PROJECT_DIR

CACHE_DIR = PROJECT_DIR / "build" / "qemu-guest"
KERNEL_META_PACKAGE = "linux-image-arm64"
BUSYBOX_PACKAGE = "busybox-static"
# Debian builds these as modules; the 9p share, the virtio disk and the power button need them.
GUEST_MODULES = ("virtio_pci", "virtio_blk", "9pnet_virtio", "9p", "gpio_keys", "evdev")
USER = "root"
PASSWORD = "password"
KERNEL_APPEND = "console=ttyAMA0 quiet"

INIT_SCRIPT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in $(cat /etc/modules); do insmod "/lib/modules/$module.ko"; done
mkdir -p /scheme/9p.hostshare
mount -t 9p -o trans=virtio,version=9p2000.L hostshare /scheme/9p.hostshare 2>/dev/null
# The virt machine's power button is a gpio key: any event on it means system_powerdown.
( while [ ! -e /dev/input/event0 ]; do sleep 1; done; head -c 1 /dev/input/event0 >/dev/null; poweroff -f ) &
export HOME=/root PATH=/bin PS1='root:~# '
cd /root
while true; do
  printf '\nredox login: '
  read -r user || continue
  [ -n "$user" ] || continue
  printf 'password: '
  stty -echo; read -r password; stty echo; echo
  if [ "$user" = "@USER@" ] && [ "$password" = "@PASSWORD@" ]; then
    setsid cttyhack sh -i
  else
    echo 'Login incorrect'
  fi
done
"""


@dataclass(frozen=True)
class Guest:
    kernel: Path
    initrd: Path
    append: str = KERNEL_APPEND
    user: str = USER
    password: str = PASSWORD


def build_guest(cache_dir: Path = CACHE_DIR) -> Guest:
    """The kernel and initramfs, from the cache when its recipe is unchanged."""
    debs = cache_dir / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test processes build the cache once
        return _build_guest(cache_dir, debs)


def _build_guest(cache_dir: Path, debs: Path) -> Guest:
    kernel_deb = _cached(debs, "linux-image-*-arm64_*_arm64.deb") or _download(_kernel_package(), debs)
    busybox_deb = _cached(debs, f"{BUSYBOX_PACKAGE}_*_arm64.deb") or _download(BUSYBOX_PACKAGE, debs)
    kernel, initrd, stamp = cache_dir / "vmlinuz", cache_dir / "initramfs.cpio.gz", cache_dir / "guest.stamp"
    recipe = hash_value([kernel_deb.name, busybox_deb.name, GUEST_MODULES, INIT_SCRIPT, USER, PASSWORD])
    if not (kernel.exists() and initrd.exists() and stamp.exists() and stamp.read_text() == recipe):
        _build(kernel_deb, busybox_deb, kernel, initrd)
        stamp.write_text(recipe)
    return Guest(kernel=kernel, initrd=initrd)


def _kernel_package() -> str:
    """The versioned package the meta package ``linux-image-arm64`` depends on today: it holds the kernel."""
    _require_arm64()
    listing = run(["apt-cache", "depends", f"{KERNEL_META_PACKAGE}:arm64"], capture=True)
    found = re.search(r"Depends: (linux-image-\S+?)(?::arm64)?$", listing, re.MULTILINE)
    if found is None:
        raise CommandError(f"apt-cache depends {KERNEL_META_PACKAGE}:arm64 names no kernel package:\n{listing}")
    return found.group(1)


def _require_arm64() -> None:
    if "arm64" not in run(["dpkg", "--print-foreign-architectures"], capture=True).split():
        raise CommandError("dpkg has no arm64 architecture: run setup.sh "
                           "(dpkg --add-architecture arm64 && apt-get update)")


def _cached(debs: Path, pattern: str) -> Path | None:
    found = sorted(debs.glob(pattern))
    return found[-1] if found else None


def _download(package: str, debs: Path) -> Path:
    _require_arm64()
    run(["apt-get", "download", f"{package}:arm64"], cwd=debs, log=debs / "download.log")
    downloaded = _cached(debs, f"{package}_*_arm64.deb")
    if downloaded is None:
        raise CommandError(f"apt-get download {package}:arm64 left no .deb in {debs}")
    return downloaded


def _build(kernel_deb: Path, busybox_deb: Path, kernel: Path, initrd: Path) -> None:
    with tempfile.TemporaryDirectory(dir=kernel.parent) as scratch:
        tree = Path(scratch)
        for deb in (kernel_deb, busybox_deb):
            run(["dpkg-deb", "-x", deb, tree])
        vmlinuz = next((tree / "boot").glob("vmlinuz-*"))
        modules = _module_files(next((tree / "lib" / "modules").iterdir()) / "kernel")
        busybox = (tree / "bin" / "busybox").read_bytes()
        image = _initramfs(busybox, modules)
        shutil.copyfile(vmlinuz, kernel.with_name(kernel.name + ".partial"))
        kernel.with_name(kernel.name + ".partial").replace(kernel)
    partial = initrd.with_name(initrd.name + ".partial")
    partial.write_bytes(gzip.compress(image, mtime=0))
    partial.replace(initrd)


def _module_files(kernel_tree: Path) -> dict[str, bytes]:
    """GUEST_MODULES and what they depend on, in load order (dependencies first)."""
    paths = {path.name.removesuffix(".ko"): path for path in kernel_tree.rglob("*.ko")}
    ordered: dict[str, bytes] = {}

    def add(name: str) -> None:
        if name in ordered:
            return
        data = paths[name].read_bytes()
        for dependency in _depends(data):
            add(dependency)
        ordered[name] = data

    for name in GUEST_MODULES:
        add(name)
    return ordered


def _depends(module: bytes) -> list[str]:
    found = re.search(rb"\0depends=([^\0]*)\0", module)
    return [name for name in (found.group(1).decode().split(",") if found else []) if name]


def _initramfs(busybox: bytes, modules: dict[str, bytes]) -> bytes:
    init = INIT_SCRIPT.replace("@USER@", USER).replace("@PASSWORD@", PASSWORD)
    entries: list[tuple[str, int, bytes, tuple[int, int]]] = [
        (name, stat.S_IFDIR | 0o755, b"", (0, 0))
        for name in ("bin", "dev", "etc", "lib", "lib/modules", "mnt", "proc", "root", "scheme", "sys", "tmp")
    ]
    entries += [
        ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),
        ("bin/busybox", stat.S_IFREG | 0o755, busybox, (0, 0)),
        ("init", stat.S_IFREG | 0o755, init.encode(), (0, 0)),
        ("etc/modules", stat.S_IFREG | 0o644, "\n".join(modules).encode() + b"\n", (0, 0)),
    ]
    entries += [(f"lib/modules/{name}.ko", stat.S_IFREG | 0o644, data, (0, 0)) for name, data in modules.items()]
    return _cpio_newc(entries)


def _cpio_newc(entries: list[tuple[str, int, bytes, tuple[int, int]]]) -> bytes:
    """The ``newc`` cpio archive the kernel unpacks as initramfs (no cpio tool on the host needed)."""
    out = bytearray()

    def record(inode: int, name: str, mode: int, data: bytes, rdev: tuple[int, int]) -> None:
        fields = (inode, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
        out.extend(b"070701" + b"".join(b"%08X" % field for field in fields) + name.encode() + b"\0")
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for inode, (name, mode, data, rdev) in enumerate(entries, start=1):
        record(inode, name, mode, data, rdev)
    record(0, "TRAILER!!!", 0, b"", (0, 0))
    return bytes(out)


def type_at_the_prompt_then_detach(terminal) -> None:
    """In an attached ``boot`` terminal (pexpect): reach the shell, run a command, detach with Ctrl-]."""
    terminal.send("\r")
    terminal.expect("root:~# ")
    terminal.send("echo typed-$((6 * 7))\r")
    terminal.expect("typed-42")
    terminal.expect("root:~# ")
    terminal.send("\x1d")
    terminal.expect("detached from session default")
