"""doit commands on the disk image after it is built: ``inspect``, ``promote``, ``promotions``, ``restore`` and
``release`` (the work is :mod:`tasks.image.files` and :mod:`tasks.image.keep`).

An operation that changes the image on purpose (``restore``) keeps the previous image as ``.bak`` like a rebuild
does, is refused while a QEMU session of this build boots the image, and records the image's new content in the
build's store (:func:`tasks.cli.creators.record_changed_output`): the qcow2 is then stale, and nothing takes the
change for a foreign write.
"""
from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path, PurePosixPath

from doit.cmd_base import Command

from ..errors import BuildError, InputError, display_path
from .commands import BuildCommand

USAGE_ERROR = 3


class Inspect(Command):
    name = "inspect"
    doc_purpose = "list, read or copy out the files of the image without FUSE; the image is never changed"
    doc_usage = "[image=FILE] (ls|tree|cat|get) [PATH] [DEST]"
    doc_description = ("ls PATH: a directory's entries (kind, mode, uid, gid, size); tree PATH: everything below it; "
                       "cat PATH: a file's content; get PATH DEST: a file, or a directory's tree, onto the host. "
                       "image= reads another image (a promoted one, a .bak) instead of the config's; raw images "
                       "only (a qcow2 is converted from the raw one). Paths go on into the initfs the image "
                       "carries: cat /boot/initfs/etc/init.rc, ls /boot/initfs/bin.")

    def execute(self, params, args):
        from ..image.initfs_view import initfs_at
        from ..layout import Layout
        from .creators import settings
        usage = f"ERROR: usage: doit inspect {self.doc_usage}"
        if not args or args[0] not in ("ls", "tree", "cat", "get"):
            print(usage, file=sys.stderr)
            return USAGE_ERROR
        command, rest = args[0], args[1:]
        try:
            chosen = settings()
            files = image_files(chosen.image or Layout(chosen).disk_image)
            if rest and (found := initfs_at(files, rest[0])) is not None and \
                    (command != "cat" or found[1] != "/"):  # cat of the archive itself is its bytes
                files, rest = found[0], [found[1], *rest[1:]]
            if command in ("ls", "tree") and len(rest) <= 1:
                for entry in (files.ls if command == "ls" else files.tree)(rest[0] if rest else "/"):
                    print(entry)
            elif command == "cat" and len(rest) == 1:
                sys.stdout.buffer.write(files.read(rest[0]))
            elif command == "get" and len(rest) == 2:
                files.get(rest[0], Path(rest[1]))
                print(f"{args[1]} -> {rest[1]}")
            else:
                print(usage, file=sys.stderr)
                return USAGE_ERROR
        except BuildError as error:
            print(f"ERROR: {error}", file=sys.stderr)
            return USAGE_ERROR
        return 0


def image_files(image: Path):
    from ..image.files import ImageFiles
    from ..toolchain import hosttools
    return ImageFiles(image, hosttools.ensure_own("redox-image"))


class _ImageCommand(BuildCommand):
    """A command on the config's image; the project is loaded (the image task's record and inputs)."""

    def _execute(self, pos_args=None):
        from ..layout import Layout
        from .creators import settings
        return self.on_image(Layout(settings()), pos_args or [])

    def on_image(self, layout, args: list[str]) -> int:
        raise NotImplementedError


def _manifest(layout) -> dict:
    from ..image.keep import manifest_of
    from .creators import state
    record = state().get("image")
    return manifest_of(layout.disk_image, {} if record is None else record.components, layout.repo_dir)


def _refuse_while_booted(layout) -> None:
    from ..qemu.session import sessions_using
    using = sessions_using(layout.build, layout.disk_image)
    if using:
        raise InputError(f"QEMU session {', '.join(using)} boots this image: `doit boot-stop` first",
                         path=layout.disk_image)


class Promote(_ImageCommand):
    name = "promote"
    doc_purpose = "keep the current image (and qcow2) as <image>-<name>.img, with its stamp and a manifest"
    doc_usage = "name=NAME"
    doc_description = ("The manifest (<image>-<name>.img.manifest.json) holds the image's digest, the inputs of the "
                       "image task, the package versions and the git revisions. `works` is just a name. "
                       "`doit promotions` lists them; `doit restore from=NAME` brings one back.")

    def on_image(self, layout, args):
        from ..image.keep import promote
        from .creators import settings
        name = getattr(settings(), "name")
        if not name:
            raise InputError("which name? doit promote name=NAME (works, or the feature that works)", key="name")
        promotion, previous = promote(layout.disk_image, layout.qcow2_image, name, _manifest(layout),
                                      settings().backups)
        print(f"promoted {display_path(layout.disk_image)} as {display_path(promotion.image)} "
              f"({len(promotion.manifest['packages'])} packages)")
        if previous is not None:
            print(f"the previous {name} is kept as {display_path(previous)} (with its qcow2, stamp and manifest)")
        return 0


class Promotions(_ImageCommand):
    name = "promotions"
    doc_purpose = "list the promoted images of the config's image"
    doc_usage = ""

    def on_image(self, layout, args):
        from ..image.keep import promotions
        found = promotions(layout.disk_image)
        if not found:
            print(f"no promotions of {display_path(layout.disk_image)} yet (doit promote name=NAME)")
        for promotion in found:
            main = promotion.manifest.get("git", {}).get("main", {})
            revision = (main.get("revision") or "?")[:12] + ("-dirty" if main.get("dirty") else "")
            print(f"{promotion.name:<16} {promotion.manifest.get('promoted_at', '?')}  main {revision}  "
                  f"{len(promotion.manifest.get('packages', {}))} packages  {display_path(promotion.image)}")
        return 0


class Restore(_ImageCommand):
    name = "restore"
    doc_purpose = "bring the image back from a promotion, or single files of it into the current image"
    doc_usage = "from=NAME [PATH ...]"
    doc_description = ("Without PATH the whole image; with paths, those files (their modes and owners too) are "
                       "copied from the promoted image into the current one. The image it replaces is kept as "
                       ".bak; the qcow2 is stale afterwards (doit qcow2 converts it again).")

    def on_image(self, layout, args):
        from ..atomic import atomic_path
        from ..image.backups import install_with_backups
        from ..image.files import sparse_copy
        from ..image.keep import find_promotion, note_restore
        from .creators import record_changed_output, settings, signature_of
        chosen = settings()
        source = getattr(chosen, "from")
        if not source:
            raise InputError("from which promotion? doit restore from=NAME [PATH …]", key="from")
        promotion = find_promotion(layout.disk_image, source)
        _refuse_while_booted(layout)
        image = layout.disk_image
        if not args:
            with atomic_path(image, install=functools.partial(install_with_backups, keep=chosen.backups)) as part:
                sparse_copy(promotion.image, part)
            note_restore(image, promotion)  # `doit explain image` says what the image is now
            recorded = record_changed_output("image")
            what = f"the whole image from {display_path(promotion.image)}"
        else:
            in_overlay = self._restore_files(image, promotion, args, chosen)
            # A restored file the overlay holds is restored there too, or the next build would bring it back.
            recorded = record_changed_output("image", signature_of("image") if in_overlay else None)
            what = f"{', '.join(args)} from {display_path(promotion.image)}" + (
                f" (and in the overlay: {', '.join(in_overlay)})" if in_overlay else "")
        print(f"restored {what} into {display_path(image)} (the previous one is {display_path(image)}.bak)"
              + ("" if recorded else "; the image has no build record, so nothing was recorded"))
        return 0

    @staticmethod
    def _restore_files(image: Path, promotion, paths: list[str], chosen) -> list[str]:
        """Copy ``paths`` from the promoted image into ``image`` and, where the overlay holds them, into the overlay,
        together or not at all; returns the paths restored in the overlay."""
        import tempfile

        from ..image.files import Put
        from ..image.overlay import overlay_file
        promoted, current = image_files(promotion.image), image_files(image)
        with tempfile.TemporaryDirectory(prefix="restore-") as scratch, contextlib.ExitStack() as overlay_changes:
            operations, in_overlay = [], []
            for index, path in enumerate(paths):
                entry = promoted.stat(path)
                if entry.kind != "f":
                    raise InputError(f"{path}: only files are restored one by one (restore the whole image "
                                     "for more)", path=promotion.image)
                copy = Path(scratch) / str(index)
                promoted.get(path, copy)
                operations.append(Put(copy, path, entry.mode, entry.uid, entry.gid))
                target = overlay_file(chosen.overlay_dir, PurePosixPath("/") / path)
                if target.is_file():
                    overlay_changes.enter_context(_placed_in_overlay(copy, target, chosen.overlay_dir))
                    in_overlay.append(path)
            current.apply(operations, backups=chosen.backups)
        return in_overlay


class Release(_ImageCommand):
    name = "release"
    doc_purpose = "the image as the fork releases it: <image>.iso.gz, its SHA-256, release notes, the git tag"
    doc_usage = "[name=TAG]"
    doc_description = ("Written to <build>/<arch>/release/. The tag (default: release-<date>-<commit>) is printed "
                       "as the git command to run; nothing is pushed or tagged. An image built from a tree with "
                       "uncommitted changes is not released (the tag would name a commit that did not make it) "
                       "unless --dirty-ok.")
    cmd_options = ({"name": "dirty_ok", "long": "dirty-ok", "type": bool, "default": False,
                    "help": "release an image built from uncommitted changes [default: %(default)s]"},)

    def _execute(self, dirty_ok, pos_args=None):
        self.dirty_ok = dirty_ok
        return super()._execute(pos_args)

    def on_image(self, layout, args):
        from ..image.keep import release
        from .creators import settings
        manifest = _manifest(layout)
        dirty = sorted(name for name, revision in manifest.get("git", {}).items() if revision.get("dirty"))
        if dirty and not self.dirty_ok:
            raise InputError(f"built from uncommitted changes ({', '.join(dirty)}): its tag would name a commit "
                             "that did not make it; commit, rebuild and release, or --dirty-ok", path=layout.disk_image)
        commit = (manifest.get("git", {}).get("main", {}).get("revision") or "unknown")[:9]
        tag = getattr(settings(), "name") or f"release-{(manifest.get('built_at') or '')[:10]}-{commit}"
        made = release(layout.disk_image, layout.arch_dir / "release", manifest, tag)
        print(f"released {display_path(made.archive)}")
        print(f"  checksum: {display_path(made.checksum)} (cd {display_path(made.archive.parent)} && "
              f"sha256sum -c {made.checksum.name})")
        print(f"  notes:    {display_path(made.notes)}")
        print(f"  tag it:   git tag -a {tag} -m 'Release {tag}' && git push origin {tag}")
        return 0


class Inject(_ImageCommand):
    name = "inject"
    doc_purpose = "put a file into the config's overlay and into the current image at once: a rebuild keeps it"
    doc_usage = "SRC DEST"
    doc_description = ("SRC (a host file) becomes DEST in the overlay (config/<arch>/<config>.overlay/, or overlay=) "
                       "with its mode, and the overlay is written into the current image in one transaction: the "
                       "image is then what a build with that overlay makes, and is recorded so; the qcow2 is stale. "
                       "The previous image is kept as .bak; refused while a QEMU session boots the image.")

    def on_image(self, layout, args):
        from ..image.overlay import overlay_file, overlay_operations
        from .creators import record_changed_output, settings, signature_of
        if len(args) != 2:
            raise InputError("doit inject SRC DEST: a host file and its path in the image")
        source, destination = Path(args[0]), args[1]
        if not source.is_file():
            raise InputError("not a file", path=source)
        inside = PurePosixPath("/") / destination
        if not destination or ".." in inside.parts or inside == PurePosixPath("/"):
            raise InputError(f"{destination!r}: a file's path in the image, without '..'")
        chosen = settings()
        overlay = chosen.overlay_dir
        target = overlay_file(overlay, inside)
        image = layout.disk_image
        files = None
        if image.is_file():  # every refusal before anything is written: the overlay and the image change together
            _refuse_while_booted(layout)
            files = image_files(image)
            if _kind_in_image(files, str(inside)) == "d":
                raise InputError(f"{inside} is a directory in the image: a file never replaces a directory",
                                 path=image)
        with _placed_in_overlay(source, target, overlay):
            if files is not None:
                files.apply(overlay_operations(overlay), backups=chosen.backups)
        print(f"{display_path(source)} -> {display_path(target)} (the overlay)")
        if files is None:
            print(f"no image yet: `doit image` builds {display_path(image)} with it")
            return 0
        recorded = record_changed_output("image", signature_of("image"))
        print(f"{display_path(source)} -> {inside} in {display_path(image)} (the previous one is "
              f"{display_path(image)}.bak)" + ("" if recorded else "; the image has no build record"))
        return 0


def _kind_in_image(files, path: str) -> str | None:
    """``d``, ``f`` or ``l`` for what the image has at ``path``; None where it has nothing."""
    try:
        return files.stat(path).kind
    except BuildError:
        return None


@contextlib.contextmanager
def _placed_in_overlay(source: Path, target: Path, overlay: Path):
    """``source`` copied to ``target`` in the overlay for the ``with`` block; when the block fails, the overlay is
    put back as it was (the previous file, or none, and no directory made for it). The previous file waits outside
    the overlay, which the block reads whole."""
    import shutil
    import tempfile
    made = [overlay / parent for parent in reversed(target.relative_to(overlay).parents)
            if not (overlay / parent).exists()]
    with tempfile.TemporaryDirectory(prefix="redox-inject-") as scratch:
        previous = Path(scratch) / "previous"
        if target.exists():
            shutil.copy2(target, previous)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(source, target)
            yield
        except BaseException:
            if previous.exists():
                shutil.copy2(previous, target)
            else:
                target.unlink(missing_ok=True)
            for directory in reversed(made):
                directory.rmdir()
            raise
