"""The disk image: the upstream ``redox_installer`` fills it from the local package repository, then we check it.

``redox_installer --cookbook=<dir> --no-mount -c <config> <image>.partial`` with ``TARGET`` exported writes GPT,
the EFI system partition (FAT) and RedoxFS without FUSE or root-only mounts (spec §6). The result is verified
before it replaces the previous image, which is kept as ``.bak`` (rotated, see :mod:`tasks.image.backups`).
"""
from __future__ import annotations

import functools
import tempfile
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..atomic import atomic_path, remove_path
from ..errors import CommandError, FormatError, InputError
from ..model.config import MIN_FILESYSTEM_MIB
from ..process import child_env, run
from ..settings import DEFAULT_TARGET
from ..toolchain import hosttools
from . import gpt, privatetmp, redoxfs
from .backups import install_with_backups
from .files import ImageFiles, Operation
from .reproducible import make_reproducible

MIB = 1024 * 1024
PUBLIC_CONFIG = "/filesystem.toml"  # the config the image was made from, as the installer copies it in


@dataclass(frozen=True)
class InstallerProfile:
    """What one installer release expects from the repository it installs from."""

    boot_dir: PurePosixPath  # where it reads bootloader{,-live}.efi inside the `bootloader` package
    reads_pkgar_flags: bool  # reads pkgar's `count: u32 + flags` header, so LZMA2 packages; else `count: u64` only
    heads_dir: PurePosixPath  # where it keeps the installed packages' pkgar heads in the image


# From each release's source: 0.2.40/0.2.41 lock pkgar 0.1.19 (u64 count) and read `boot/` (the fork's layout);
# 0.2.42 locks pkgar 0.2.1 (u32 count + flags), installs through redox-pkg 0.3 and reads `usr/lib/boot/`.
PROFILES: dict[str, InstallerProfile] = {
    "0.2.40": InstallerProfile(PurePosixPath("boot"), False, PurePosixPath("pkg/packages")),
    "0.2.41": InstallerProfile(PurePosixPath("boot"), False, PurePosixPath("pkg/packages")),
    "0.2.42": InstallerProfile(PurePosixPath("usr/lib/boot"), True, PurePosixPath("var/lib/packages")),
}
FORK_BOOT_DIR = PurePosixPath("boot")

EFI_BOOT_NAMES: dict[str, str] = {
    "aarch64-unknown-redox": "BOOTAA64.EFI",
    "x86_64-unknown-redox": "BOOTX64.EFI",
    "i586-unknown-redox": "BOOTIA32.EFI",
    "i686-unknown-redox": "BOOTIA32.EFI",
    "riscv64gc-unknown-redox": "BOOTRISCV64.EFI",
}
PARTITIONS: tuple[tuple[str, uuid.UUID], ...] = (("BIOS", gpt.BIOS_BOOT), ("EFI", gpt.EFI_SYSTEM),
                                              ("REDOX", gpt.LINUX_FS))


def pinned_profile() -> InstallerProfile:
    return PROFILES[hosttools.PINNED["redox_installer"].version]


@dataclass(frozen=True)
class ImageRequest:
    cookbook: Path  # holds build/id_ed25519.pub.toml and repo/<target>/<name>.{toml,pkgar}
    config: Path
    output: Path
    target: str
    files_tool: Path  # the redox-image tool's directory: writes the overlay, makes the image reproducible
    seed: str  # the image's GUIDs and RedoxFS UUID derive from it (tasks/image/reproducible.py)
    source_date: int  # every time in the image, in seconds since the epoch
    backups: int = 1  # previous images kept: .bak, .bak.1, …
    boot_dir: PurePosixPath = FORK_BOOT_DIR  # where the repository's `bootloader` package carries its EFI file
    size_mib: int | None = None  # overrides [general] filesystem_size
    secrets: tuple[str, ...] = ()  # the config's passwords: masked in logs and messages
    config_sources: tuple[Path, ...] = ()  # the files ``config`` includes, which the installer reads too
    overlay: tuple[Operation, ...] = ()  # written over the installed packages (tasks/image/overlay.py)


@dataclass(frozen=True)
class ImageLayout:
    """What :func:`verify_image` found."""

    efi: gpt.Partition
    redox: gpt.Partition
    efi_file: PurePosixPath
    efi_file_size: int
    filesystem: redoxfs.Header  # the newest header of the RedoxFS partition


def build_image(request: ImageRequest, build_dir: Path, log: Path | None = None) -> ImageLayout:
    """Write ``request.output`` with the pinned installer; the previous image survives any failure."""
    _check_request(request)
    installer = hosttools.ensure("redox_installer", build_dir) / "redox_installer"
    check_repository(installer, request, log)
    size_mib = request.size_mib or filesystem_size(installer, request.config, log)
    keep_previous = functools.partial(install_with_backups, keep=request.backups)
    with atomic_path(request.output, install=keep_previous) as partial:
        # The installer only opens an existing disk (0.2.40 never creates one): make it sparse, full size.
        with open(partial, "wb") as disk:
            disk.truncate(size_mib * MIB)
        _run_installer(installer, request, partial, build_dir, log)
        if request.overlay:
            ImageFiles(partial, request.files_tool).apply_to(partial, request.overlay)
        make_reproducible(partial, request.files_tool, request.seed, request.source_date, request.secrets)
        layout = verify_image(partial, request.target)
    return layout


def _run_installer(installer: Path, request: ImageRequest, disk: Path, build_dir: Path, log: Path | None) -> None:
    # TARGET picks the repo/<target>/ directory and the EFI file name; an empty stdin makes a password
    # prompt (a user without `password` while [general] prompt is true) fail instead of waiting. Its /tmp is
    # private where possible (tasks/image/privatetmp.py).
    scratch = privatetmp.fresh(build_dir / "installer-tmp")
    config = _without_clear_passwords(installer, request)
    argv = privatetmp.private_tmp_command(
        [installer, f"--cookbook={request.cookbook}", "--no-mount", "-c", config, disk],
        scratch=scratch, writable=[build_dir, disk.parent],
        readable=[installer, request.cookbook, request.config, config, *request.config_sources])
    try:
        run(argv, env=child_env(set={"TARGET": request.target}), log=log, stdin="", secrets=request.secrets)
    except CommandError as error:
        raise CommandError(error.reason, path=request.config, key="redox_installer") from None
    finally:
        remove_path(scratch)


def _without_clear_passwords(installer: Path, request: ImageRequest) -> Path:
    """The config the installer is run with: ``request.config`` and a postinstall ``/filesystem.toml``.

    The installer copies the merged config into the image as ``/filesystem.toml`` (mode 0644), clear-text passwords
    included. It writes that copy before the packages, and postinstall files after them: a postinstall entry of
    the same path, holding the merged config without ``password`` and ``encrypt_disk``, replaces it. The users'
    passwords reach ``/etc/shadow`` hashed, as before; the image keeps its record of the config it was made from.
    """
    import tomli_w
    public = {"path": PUBLIC_CONFIG, "data": public_config(installer, request.config), "postinstall": True,
              "mode": 0o644}
    config = request.config.with_name(request.config.stem + ".image.toml")
    config.write_text(tomli_w.dumps({"include": [str(request.config)], "files": [public]}), encoding="utf-8")
    return config


def public_config(installer: Path, config: Path) -> str:
    """What the image keeps as ``/filesystem.toml``: ``config`` merged by the installer, without ``password`` and
    ``encrypt_disk``. (Run without a log: the merge prints nothing worth keeping, and a logged run costs more.)"""
    import tomli_w
    merged_file = config.with_name(config.stem + ".merged.toml")
    run([installer, "-c", config, f"--output-config={merged_file}"], capture=True)
    merged = tomllib.loads(merged_file.read_text(encoding="utf-8"))
    merged_file.unlink()
    for user in merged.get("users", {}).values():
        user.pop("password", None)
    merged.get("general", {}).pop("encrypt_disk", None)
    return tomli_w.dumps(merged)


def _check_request(request: ImageRequest) -> None:
    profile = pinned_profile()
    if request.boot_dir != profile.boot_dir:
        version = hosttools.PINNED["redox_installer"].version
        raise InputError(f"boot files under {request.boot_dir}/, but the pinned redox_installer {version} reads "
                         f"them from {profile.boot_dir}/", key="boot_dir")
    if request.target not in EFI_BOOT_NAMES:
        raise InputError(f"the installer supports no target {request.target!r} "
                         f"(known: {', '.join(EFI_BOOT_NAMES)})", key="target")
    key = request.cookbook / "build" / "id_ed25519.pub.toml"
    if not key.is_file():
        raise InputError("missing: the installer verifies every package with this key", path=key)
    if not (request.cookbook / "repo" / request.target).is_dir():
        raise InputError("no package repository for this target", path=request.cookbook / "repo" / request.target)


def check_repository(installer: Path, request: ImageRequest, log: Path | None = None) -> None:
    """Every package the installer will want is in the repository: the config's, their depends, `bootloader`.

    The installer itself only says "No such file or directory" for a missing package.
    """
    repo = request.cookbook / "repo" / request.target
    listed = run([installer, "-c", request.config, "--list-packages"], capture=True, log=log).split()
    wanted = [(name, request.config, f"packages.{name}") for name in listed]
    wanted.append(("bootloader", request.config, "bootloader (read by the installer for the EFI partition)"))
    seen: set[str] = set()
    while wanted:
        name, wanted_by, key = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        metadata = repo / f"{name}.toml"
        if not metadata.is_file():
            raise InputError(f"not in the repository (no {metadata})", path=wanted_by, key=key)
        package = read_package(metadata)
        if package.get("version") and not metadata.with_suffix(".pkgar").is_file():
            raise InputError(f"has a version but no {metadata.with_suffix('.pkgar').name}", path=metadata,
                             key="version")
        wanted.extend((dependency, metadata, f"depends.{dependency}") for dependency in package.get("depends", []))


def read_package(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"invalid TOML: {error}", path=path) from None


def filesystem_size(installer: Path, config: Path, log: Path | None = None) -> int:
    """``[general] filesystem_size`` in MiB, with includes merged by the installer itself."""
    printed = run([installer, "-c", config, "--filesystem-size"], capture=True, log=log).strip()
    size = int(printed) if printed.isdigit() else 0
    if size < MIN_FILESYSTEM_MIB:
        raise InputError(f"filesystem_size is {printed or 'unset'}; the image needs at least {MIN_FILESYSTEM_MIB} "
                         "(MiB)",
                         path=config, key="general.filesystem_size")
    return size


def verify_image(path: Path, target: str = DEFAULT_TARGET) -> ImageLayout:
    """GPT with the installer's three partitions, the EFI loader in the FAT partition, RedoxFS at REDOX's start."""
    table = gpt.read_table(path)
    partitions = _expected_partitions(table, path)
    efi, redox = partitions["EFI"], partitions["REDOX"]
    efi_file = PurePosixPath("EFI/BOOT") / EFI_BOOT_NAMES[target]
    with tempfile.TemporaryDirectory(prefix="efi-") as scratch:
        copy = copy_from_fat(path, efi.offset, efi_file, Path(scratch))
        efi_file_size = copy.stat().st_size
    if efi_file_size == 0:
        raise FormatError("the EFI loader is empty: the `bootloader` package has no bootloader.efi where the "
                          "installer looks for it", path=path, key=f"EFI:{efi_file}")
    redoxfs.read_header(path, redox.offset)  # block 0 is where the bootloader and `redoxfs` look first
    newest = redoxfs.newest_header(path, redox.offset)
    if newest.size > redox.size:
        raise FormatError(f"RedoxFS claims {newest.size} bytes in a {redox.size}-byte partition", path=path,
                          key="REDOX")
    return ImageLayout(efi=efi, redox=redox, efi_file=efi_file, efi_file_size=efi_file_size, filesystem=newest)


def _expected_partitions(table: gpt.PartitionTable, path: Path) -> dict[str, gpt.Partition]:
    names = [part.name for part in table.partitions]
    if names != [name for name, _ in PARTITIONS]:
        raise FormatError(f"partitions are {names}, expected {[name for name, _ in PARTITIONS]}", path=path,
                          key="gpt.entries")
    for part, (name, type_guid) in zip(table.partitions, PARTITIONS):
        if part.type_guid != type_guid:
            raise FormatError(f"type is {part.type_guid}, expected {type_guid}", path=path, key=f"gpt.{name}")
    return {part.name: part for part in table.partitions}


def copy_from_fat(image: Path, offset: int, fat_path: PurePosixPath, dest_dir: Path) -> Path:
    """Copy one file out of the FAT filesystem at byte ``offset`` of ``image`` with mtools; no mount needed."""
    dest = dest_dir / fat_path.name
    try:
        run(["mcopy", "-n", "-i", f"{image}@@{offset}", f"::/{fat_path}", dest], capture=True)
    except CommandError as error:
        raise FormatError(f"cannot copy from the FAT partition at byte {offset}: {error.reason}", path=image,
                          key=f"EFI:{fat_path}") from None
    return dest
