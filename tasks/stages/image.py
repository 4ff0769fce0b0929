"""``image``: the disk image of the selected config (``build/<arch>/<config>.img``: GPT, the EFI system partition,
RedoxFS), written by the pinned ``redox_installer`` from the local package repository and checked before it
replaces the previous one, which is kept as ``.bak``. The installer reads the config with the build's text stamps
added: ``/usr/lib/os-release`` with ``BUILD_ID`` and the first line of root's ion initrc. The config's overlay
(``config/<arch>/<config>.overlay/``, or ``overlay=DIR``) is written over the packages last."""
from __future__ import annotations

from pathlib import Path

from ..engine.publish import output_digest
from ..formats.pkgkeys import public_key_digest
from ..hashing import hash_file, hash_value
from ..model.recipe import Recipe
from ..revision import TreeRevision
from .stage import NONE, Dep, Stage, task_name

OS_RELEASE = "/usr/lib/os-release"
ION_INITRC = ".config/ion/initrc"  # in root's home (the installer's default: /home/root; the fork's: /root)


class Image(Stage):
    """Assemble the disk image from the config with the upstream installer (no FUSE)"""

    name = "image"
    cached = True
    data = ("templates/stamps",)

    @property
    def revision(self) -> TreeRevision:
        return self.ctx.shared(TreeRevision, self.settings.root)

    def recipes(self) -> list[str]:
        return []  # the packages by their output hashes; the config, the overlay and the key are no recipe's

    def deps(self) -> list[Dep]:
        packages = [Dep(task_name("pkg", step.node)) for step in self.graph.image_steps() if not step.node.host]
        return [Dep("initfs"), Dep("host-tools"), *packages]

    def inputs(self) -> dict[str, str]:
        inputs = {
            # each file by its name in the tree: a checkout elsewhere (another machine's) signs the same
            "config": hash_value([[self._in_tree(path), hash_file(path)] for path in self.ctx.project.config.sources]),
            "settings": hash_value([self.settings.target, self.settings.boot_dir]),
            "stamp": hash_value(self.revision.stamp.identity()),
            "key": self.ctx.shared(public_key_digest, self.layout.key_dir),
            # the overlay's every mode counts (and its owners.toml): the output digest of the tree
            "overlay": output_digest(overlay) if (overlay := self.settings.overlay_dir).is_dir() else NONE,
        }
        self._keep_manifests(inputs)
        return inputs

    def _in_tree(self, path: Path) -> str:
        root = self.settings.root
        return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)

    def _keep_manifests(self, inputs: dict[str, str]) -> None:
        """What the config and overlay digests stand for, kept as the tree hasher keeps a tree's, so that
        `doit explain image` names the keys and files that changed, not two digests."""
        import os

        from ..image.overlay import overlay_manifest
        from ..model.config import key_manifest
        manifests, config_dir = self.ctx.trees.manifests, self.settings.root / "config"
        manifests.keep(os.fsencode(config_dir), inputs["config"],
                       key_manifest(self.ctx.project.config.sources, config_dir))
        if inputs["overlay"] != NONE:
            overlay = self.settings.overlay_dir
            manifests.keep(os.fsencode(overlay), inputs["overlay"], overlay_manifest(overlay))

    def outputs(self) -> list[Path]:
        return [self.layout.disk_image]

    def stamp_sources(self) -> list[Recipe]:
        return []

    def place(self, unpacked: Path, final: Path) -> None:
        """As after a build here: the previous image stays as ``.bak``, and the repository has its index."""
        from ..formats.repo import write_index
        from ..image.backups import install_with_backups
        install_with_backups(unpacked, final, self.settings.backups)
        write_index(self.layout.repo_dir)

    def run(self) -> None:
        from ..formats.repo import write_index
        from ..image import incremental
        from ..image.files import ImageFiles
        from ..image.installer import ImageRequest, build_image, pinned_profile
        from ..image.overlay import overlay_operations
        from ..toolchain import hosttools
        self.layout.repo_dir.mkdir(parents=True, exist_ok=True)
        write_index(self.layout.repo_dir)
        image, tool = self.layout.disk_image, hosttools.ensure_own("redox-image")
        overlay = tuple(overlay_operations(self.settings.overlay_dir))
        previous, inputs = incremental.read_contents(image), self.inputs()
        foreseen = incremental.install_order(self.layout.repo_dir, self.ctx.project.config.wanted_packages)
        current = self._contents(inputs, foreseen or [], foreseen=foreseen is not None)
        update = incremental.changed_packages(previous, current, image)
        if update is not None:
            self._update_in_place(update, list(overlay), tool)
        else:
            build_image(ImageRequest(cookbook=self.layout.cookbook, config=self._stamped_config(),
                                     output=image, target=self.settings.target, files_tool=tool,
                                     # the GUIDs derive from the inputs and the hashes of the packages foreseen
                                     seed=hash_value([sorted(inputs.items()), current.packages]),
                                     source_date=self.revision.source_date_epoch,
                                     backups=self.settings.backups, boot_dir=self.settings.boot_dir,
                                     config_sources=tuple(self.ctx.project.config.sources),
                                     secrets=self._secrets(), overlay=overlay),
                        self.settings.build, log=self.layout.log("image"))
            heads = ImageFiles(image, tool).ls(str(pinned_profile().heads_dir))
            installed = sorted(entry.path.removesuffix(".pkgar_head") for entry in heads)
            current = self._contents(inputs, installed, foreseen=installed == sorted(foreseen or []))
        incremental.write_contents(image, current)

    def _contents(self, inputs: dict[str, str], installed: list[str], foreseen: bool):
        """What the image is made of (tasks/image/incremental.py): what only the installer applies (the config but
        its packages, which are the next part), the installed packages' hashes, the overlay's digest."""
        from ..image import incremental
        from ..image.installer import __file__ as installer_code
        config = self.ctx.project.config
        applied = hash_value([config.general.model_dump(mode="json"), [entry.model_dump(mode="json")
                                                                       for entry in config.files],
                              {name: user.model_dump(mode="json") for name, user in sorted(config.users.items())},
                              {name: group.model_dump(mode="json") for name, group in sorted(config.groups.items())}])
        # The EFI partition is the installer's alone, made from the `bootloader` package: a new one is a full build.
        bootloader = self.layout.repo_dir / "bootloader.pkgar"
        base = hash_value([[name, value] for name, value in sorted(inputs.items()) if name not in ("overlay", "config")]
                          + [applied, hash_file(Path(__file__)), hash_file(Path(installer_code)),
                             hash_file(bootloader) if bootloader.is_file() else None])
        return incremental.Contents(base, incremental.installed_packages(self.layout.repo_dir, installed),
                                    inputs["overlay"], foreseen=foreseen, config=inputs["config"])

    def _update_in_place(self, update, overlay: list, tool: Path) -> None:
        import tempfile

        from ..formats.pkgkeys import load_public_key
        from ..image import incremental
        from ..image.files import ImageFiles, Put
        from ..image.installer import PUBLIC_CONFIG, pinned_profile, public_config
        from ..toolchain import hosttools
        config, image = self.ctx.project.config, self.layout.disk_image
        protected = {str(entry.path) for entry in config.files} | {str(user.home or f"/home/{name}")
                                                                   for name, user in config.users.items()}
        files = ImageFiles(image, tool, source_date=self.revision.source_date_epoch)
        with tempfile.TemporaryDirectory(prefix="image-update-") as scratch:
            if update.config_changed:  # the config's copy in the image (its packages): as a full build writes it
                installer = hosttools.ensure("redox_installer", self.settings.build) / "redox_installer"
                public = Path(scratch) / "filesystem.toml"
                public.write_text(public_config(installer, self._stamped_config()))
                overlay = [Put(public, PUBLIC_CONFIG, 0o644), *overlay]  # before the overlay, as the installer
            operations = incremental.update_operations(files, update, self.layout.repo_dir,
                                                       pinned_profile().heads_dir,
                                                       load_public_key(self.layout.public_key), protected,
                                                       overlay, Path(scratch))
            files.apply(operations, backups=self.settings.backups)
        what = [*update.write, *(f"-{name}" for name in update.remove)]
        print(f"image: updated in place ({', '.join(what) or 'the overlay'}), not installed afresh")

    def _secrets(self) -> tuple[str, ...]:
        config = self.ctx.project.config
        passwords = [user.password for user in config.users.values() if user.password]
        return tuple([*passwords, *([config.general.encrypt_disk] if config.general.encrypt_disk else [])])

    def _stamped_config(self) -> Path:
        """The selected config plus the build's text stamps as ``[[files]]`` (the pinned installer 0.2.40 does not
        add BUILD_ID); the config's own content of those files is kept. The installer reads it beside the image
        (``include`` of the original)."""
        import tomli_w

        from ..atomic import write_text_if_changed
        from ..templating import render
        config = self.ctx.project.config
        stamp, files = self.revision.stamp, {entry.path: entry.data for entry in config.files}
        root = config.users.get("root")
        initrc_path = f"{((root.home if root else None) or '/home/root').rstrip('/')}/{ION_INITRC}"
        stamped = [
            {"path": OS_RELEASE, "data": render("stamps/os-release.j2", stamp=stamp,
                                                os_release=files.get(OS_RELEASE, ""))},
            {"path": initrc_path, "data": render("stamps/ion-initrc.j2", stamp=stamp,
                                                 initrc=files.get(initrc_path, "")), "mode": 0o644},
        ]
        path = self.layout.stamped_config
        write_text_if_changed(path, tomli_w.dumps({"include": [str(self.settings.config_file)], "files": stamped}))
        return path

