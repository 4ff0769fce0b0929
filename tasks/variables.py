"""Every setting, declared once: doit's command-line variables (``doit image config=config/aarch64/desktop.toml``).

:data:`SETTINGS` names each variable with its type, default and help. It makes :class:`tasks.settings.Settings`
(the typed, validated object the build reads), the variables the doit commands accept, and what ``doit help``
says of them. Standard library only: the no-op check (:mod:`tasks.cli.loader`) needs the build directory before
anything heavier is imported.
"""
from __future__ import annotations

import os
from collections import namedtuple
from collections.abc import Mapping
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


class Setting(namedtuple("Setting", "name kind default help metavar choices sticks",
                         defaults=("VALUE", (), True))):
    """One variable. ``kind``: how the value is read: ``path``, ``text``, ``count`` (a whole number ≥ 0), ``size``
    (bytes, or ``128MiB``), ``posix-path`` (a path inside the image), ``choice`` (one of ``choices``). ``default``:
    None for none, or one computed from other settings (the help says which). ``sticks``: False for an argument of
    one command (``image=`` of ``inspect``), never written to the settings file. A named tuple, not a dataclass:
    the no-op imports this module, and ``dataclasses`` would cost it more than its stats."""

    __slots__ = ()

    @property
    def usage(self) -> str:
        return f"{self.name}={self.metavar}"

    @property
    def described(self) -> str:
        return self.help if self.default is None else f"{self.help} [default: {self.default}]"


SETTINGS: tuple[Setting, ...] = (
    Setting("root", "path", None, "the tree to build, holding recipes/ and config/ [default: this project]",
            metavar="DIR"),
    Setting("config", "path", "config/aarch64/desktop.toml",
            "the installer config, relative to root; config/<name>.toml when config/<arch>/<name>.toml is absent "
            "(as upstream's mk/config.mk)", metavar="FILE"),
    Setting("build", "path", None, "where everything built goes [default: <root>/build]", metavar="DIR"),
    Setting("target", "text", "aarch64-unknown-redox", "the Redox target of the image and the package repository",
            metavar="TRIPLE"),
    Setting("toolchain", "choice", "pinned",
            "what compiles the recipes: the pinned (Cranelift) toolchain for the target, or the host's own compilers "
            "for this machine (the demo: host programs as placeholders in a target-shaped image, which cannot boot)",
            metavar="pinned|host", choices=("pinned", "host")),
    Setting("rust", "text", None,
            "the Rust installation that builds for the target: a rustup toolchain name, or a directory whose bin/ "
            "holds rustc and cargo (Debian's rustc-web: /usr); reaches cargo through the environment, never by "
            "editing the sources [default: the pin, [tool.redox.toolchain] in the tree's pyproject.toml, else in "
            "this project's]", metavar="NAME|DIR"),
    Setting("backend", "choice", None, "the codegen backend of target builds [default: the pin's, cranelift]",
            metavar="cranelift|llvm", choices=("cranelift", "llvm")),
    Setting("board", "text", None,
            "a board of the initfs layout (tasks/templates/initfs/layout.toml) [default: none, QEMU virt]",
            metavar="NAME"),
    Setting("rust_log", "text", None,
            "the RUST_LOG filter that the initfs's init.rc exports [default: the base source's init.rc as it is; "
            "warn where the initfs takes the project's template]", metavar="FILTER"),
    Setting("initfs_max_size", "size", "128MiB",
            "the initfs's size limit (bytes, or 128MiB): the fork's redox-initfs-ar is a debug build, whose limit "
            "is 128 MiB", metavar="SIZE"),
    Setting("boot_dir", "posix-path", "boot",
            "where packages carry boot files (bootloader, kernel, initfs): the fork's boot, upstream usr/lib/boot",
            metavar="DIR"),
    Setting("backups", "count", 2, "previous disk images (and qcow2s) kept: x.bak, x.bak.1, …", metavar="N"),
    Setting("initfs_archiver", "path", None,
            "the fork's redox-initfs-ar, to pack the initfs instead of the built-in writer", metavar="FILE"),
    Setting("bootloader", "path", None,
            "a UEFI bootloader file (BOOTAA64.EFI) for the image: packaged as `bootloader` "
            "(<boot_dir>/bootloader.efi, where the installer reads it) and signed with the build's own key, "
            "whatever the bootloader recipe's rule says [default: the recipe's rule]", metavar="FILE"),
    Setting("prebuilt", "path", None,
            "where packages taken prebuilt (rule binary) come from, laid out like the package server: "
            "<dir>/<target>/<name>.pkgar and <dir>/id_ed25519.pub.toml [default: <build>/prebuilt]", metavar="DIR"),
    Setting("prebuilt_url", "text", None,
            "a package server (upstream's REPO_BINARY layout: <url>/<target>/<name>.pkgar and .toml) that packages "
            "taken prebuilt (rule binary) are downloaded from, once, into a per-user cache; verified against the key "
            "pinned in config/<arch>/package-server.pub.toml (or config/package-server.pub.toml) [default: none: "
            "they come from prebuilt=DIR]", metavar="URL"),
    Setting("cache", "text", None,
            "a build cache shared by machines: s3://BUCKET/PREFIX (credentials, endpoint and region from "
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_REGION) or file:///DIR; a task whose "
            "signature has an entry signed by a key pinned in config/<arch>/cache-keys/ (or config/cache-keys/) "
            "takes its outputs from it instead of running [default: none]", metavar="URL"),
    Setting("cache_upload", "choice", "no",
            "whether tasks run here are uploaded to the cache, signed with this build's key (CI: yes; a laptop "
            "that only reads: no)", metavar="yes|no", choices=("yes", "no")),
    Setting("cache_rustc", "choice", "no",
            "whether the cooks' cargo builds compile through sccache, storing in the cache of cache= (its prefix "
            "rustc/), so that a recipe that changed recompiles only its changed library crates, on every machine "
            "whose tree and build directory are at the same paths (sccache keys Rust by absolute paths); not a "
            "build with the Cranelift backend, which sccache cannot wrap", metavar="yes|no",
            choices=("yes", "no")),
    Setting("overlay", "path", None,
            "a directory whose files land in the image over the packages, with their modes (owners: its "
            "owners.toml) [default: <config>.overlay beside the config, e.g. config/aarch64/desktop.overlay]",
            metavar="DIR"),
    Setting("firmware", "path", None,
            "the UEFI firmware `doit boot` and `doit test-in-redox` boot the image with, such as the tree's own "
            "(the fork's firmware/QEMU_EFI.fd); --firmware overrides it for one command [default: searched: "
            "AAVMF, qemu-efi-aarch64, Homebrew edk2]", metavar="FILE"),
    Setting("image", "path", None, "the disk image `doit inspect` reads [default: the config's, as `doit image` "
            "builds it]", metavar="FILE", sticks=False),
    Setting("name", "text", None, "the name `doit promote` keeps the image under (works, a feature), or the tag of "
            "`doit release`", metavar="NAME", sticks=False),
    Setting("from", "text", None, "the promotion `doit restore` takes the image or files from", metavar="NAME",
            sticks=False),
)
SETTING = {setting.name: setting for setting in SETTINGS}
NAMES = tuple(SETTING)


SETTINGS_FILE_NAME = "settings.toml"
"""The settings that stick (untracked, in the project directory, as upstream's ``.config``): ``NAME = "VALUE"`` for
any of :data:`SETTINGS`, written by ``doit settings NAME=VALUE``; the command line overrides it. A relative path in
it is relative to the project directory (``config``, as everywhere, to ``root``). ``$REDOX_BUILD_SETTINGS`` names
another file."""


SETTINGS_FILE_ENV = "REDOX_BUILD_SETTINGS"  # another settings file (the tests give each their own)


def settings_file() -> Path:
    return Path(os.environ.get(SETTINGS_FILE_ENV) or PROJECT_DIR / SETTINGS_FILE_NAME)


class SettingsFileError(ValueError):
    """The settings file cannot be read: the message names the file, the key and the reason."""


def saved_settings(path: Path | None = None) -> dict[str, str]:
    """The settings file's values as command-line values would be (strings; paths made absolute)."""
    path = path or settings_file()
    try:
        text = path.read_text(encoding="utf-8-sig")
        import tomllib  # here: the usual case is no file, and a no-op reads this on every run
        data = tomllib.loads(text)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:  # UnicodeDecodeError and tomllib.TOMLDecodeError are ValueErrors
        raise SettingsFileError(f"{path}: cannot be read: {error}") from None
    values = {}
    for name, value in data.items():
        if name not in SETTING:
            import difflib
            near = difflib.get_close_matches(name, NAMES, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise SettingsFileError(f"{path}: {name}: not a setting{hint}; the settings: {', '.join(NAMES)}")
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise SettingsFileError(f"{path}: {name}: expected a string or a whole number, got {value!r}")
        text = str(value)
        if SETTING[name].kind == "path" and name != "config" and text:
            text = str(path.parent / text)  # as written in the file: relative to the directory it is in
        values[name] = text
    return values


# What a path setting must name: an existing file, an existing directory, or a directory the build may create.
PATH_KINDS = {"root": "directory", "build": "directory to create", "firmware": "file", "bootloader": "file",
              "initfs_archiver": "file", "prebuilt": "directory", "overlay": "directory to create"}


def config_file(config: Path) -> Path:
    """The config to load. As upstream's ``mk/config.mk``: ``config/<arch>/<name>.toml`` when it exists, else the
    architecture-independent ``config/<name>.toml``."""
    if not config.exists() and config.parent.parent.name == "config":
        shared = config.parent.parent / config.name
        if shared.exists():
            return shared
    return config


def path_problem(name: str, value: str, values: Mapping[str, str]) -> str | None:
    """Why the path ``value`` of setting ``name`` cannot serve (``values``: the other settings), or None."""
    if name == "config":
        path = Path(value) if Path(value).is_absolute() else root_dir(values) / value
        return None if config_file(path).is_file() else f"no config file at {path}"
    kind = PATH_KINDS.get(name) or ("directory" if name == "rust" and "/" in value else None)  # else a rustup name
    path = Path(value)
    if kind == "file" and not path.is_file():
        return "not a file" if path.exists() else "no such file"
    if kind == "directory" and not path.is_dir():
        return "not a directory" if path.exists() else "no such directory"
    if kind == "directory to create":
        if path.exists() and not path.is_dir():
            return "not a directory"
        existing = next(parent for parent in (path, *path.parents) if parent.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            return f"cannot be created: {existing} is not a writable directory"
    return None


def help_lines(width: int = 100) -> list[str]:
    """Each setting's usage and help, aligned and wrapped, as ``doit help`` shows them."""
    import textwrap
    column = 2 + max(len(setting.usage) for setting in SETTINGS) + 2
    return [textwrap.fill(setting.described, width, initial_indent=f"  {setting.usage:<{column - 4}}  ",
                          subsequent_indent=" " * column) for setting in SETTINGS]


def root_dir(variables: Mapping[str, str]) -> Path:
    """``root=``: the tree holding ``recipes/`` and ``config/`` (default: this project)."""
    return Path(variables.get("root", PROJECT_DIR)).resolve()


def build_dir(variables: Mapping[str, str]) -> Path:
    """``build=``: where everything built goes (default: ``<root>/build``)."""
    build = variables.get("build")
    return Path(build).resolve() if build else root_dir(variables) / "build"
