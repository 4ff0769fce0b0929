"""What the build asks of the shared cache: a task's outputs for its signature, and keeping them for others.

:meth:`TaskCache.restore` downloads an entry into a scratch directory of the build, checks it against its signed
manifest (the blob's BLAKE3, then the unpacked output's digest), and only then puts the outputs in place: a kill at
any moment before leaves the previous outputs untouched, and the caller records the task as if it had run.
:meth:`TaskCache.upload` keeps a task's outputs after it ran. Neither ever fails a build: the store down, slow or
full is said once and the cache is left alone for the rest of the run; a refused entry is said once and the task
runs here. Every outcome is an event (:mod:`.events`), which ``doit cache stats`` counts.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from ..engine.publish import output_digest
from ..hashing import blake3_file
from .entry import Manifest, Output, Refused, accepted, blob_name, entry_name, pack, signed, unpack
from .events import events_file, note
from .store import Missing, Store, Unavailable

if TYPE_CHECKING:
    from ..formats.pkgkeys import KeyPair


@dataclass(frozen=True)
class Keys:
    """The public keys whose entries are accepted, and how to get the key this build signs with."""

    trusted: frozenset[bytes]
    pinned_in: Path  # where they are pinned, for the messages
    signer: Callable[[], KeyPair]  # the build's key pair, made when first needed

    @classmethod
    def pinned(cls, directory: Path, signer: Callable[[], KeyPair]) -> Keys:
        """The keys of ``directory/*.pub.toml`` (pkgar's public key files); none when it does not exist."""
        from ..formats.pkgkeys import load_public_key
        return cls(frozenset(load_public_key(path) for path in sorted(directory.glob("*.pub.toml"))), directory,
                   signer)


class TaskCache:
    def __init__(self, store: Store, build_dir: Path, keys: Keys, *, upload: bool, warn: Callable[[str], None]):
        self.store = store
        self.build_dir = build_dir
        self.keys = keys
        self.upload_wanted = upload
        self.warn = warn
        self.scratch = build_dir / "cache" / "restoring"
        self.events = events_file(build_dir)
        self._down = False

    # --- reading ---------------------------------------------------------------------------------------------------

    def restore(self, task: str, signature: str, possible: list[Path], place: Callable[[Path, Path], None]) -> bool:
        """Put the cached outputs of ``task`` with ``signature`` in place (``place(unpacked, final)``), each one of
        the ``possible`` outputs; False when there is no usable entry."""
        relative = self._relative(possible)
        if self._down or relative is None:
            return False
        try:
            manifest = self._manifest(task, signature)
            if strays := [output.path for output in manifest.outputs if output.path not in relative]:
                raise Refused(f"it names outputs this task does not write here: {', '.join(strays)}")
            with self._scratch() as scratch:
                unpacked = self._fetch_all(manifest, scratch)
                for path, output in zip(unpacked, manifest.outputs, strict=True):
                    final = possible[relative.index(output.path)]
                    final.parent.mkdir(parents=True, exist_ok=True)
                    place(path, final)
        except Missing:
            self._note("miss", task)
            return False
        except Refused as error:
            self._note("refused", task)
            self.warn(f"cache: the entry of {task} is refused: {error}; {task} runs here")
            return False
        except Unavailable as error:
            self._unavailable(error)
            return False
        self._note("hit", task)
        return True

    def _manifest(self, task: str, signature: str) -> Manifest:
        """The manifest of the task's entry for this signature, accepted (:func:`.entry.accepted`)."""
        return accepted(self.store.get(entry_name(task, signature)), self.keys.trusted, task, signature)

    def _fetch_all(self, manifest: Manifest, scratch: Path) -> list[Path]:
        """Every output of the entry, downloaded and checked, under ``scratch``."""
        return [self._fetch(output, scratch / str(index)) for index, output in enumerate(manifest.outputs)]

    def _fetch(self, output: Output, into: Path) -> Path:
        """One output, downloaded and unpacked under ``into`` and checked against the manifest."""
        into.mkdir()
        blob = into / "blob"
        try:
            self.store.download(blob_name(output.blob), blob)
        except Missing:
            raise Refused(f"its blob for {output.path} is missing from the store") from None
        if blob.stat().st_size != output.size or blake3_file(blob) != output.blob:
            raise Refused(f"its blob for {output.path} is not what the manifest names (tampered or truncated)")
        unpacked = unpack(blob, into / "tree")
        blob.unlink()
        if output_digest(unpacked) != output.digest:
            raise Refused(f"{output.path} unpacks to other content than the manifest names")
        return unpacked

    # --- writing ---------------------------------------------------------------------------------------------------

    def upload(self, task: str, signature: str, components: dict[str, str], output_hash: str, outputs: list[Path],
               digests: list[str]) -> None:
        """Keep the outputs a task just published (``digests``: as recorded) under its signature."""
        relative = self._relative(outputs)
        if not self.upload_wanted or self._down or relative is None:
            return
        key = self.keys.signer()
        if key.public_key not in self.keys.trusted:
            self.upload_wanted = False
            self.warn(f"cache: this build's key ({key.public_key.hex()[:16]}…) is not pinned in "
                      f"{self.keys.pinned_in}, so no reader would accept what it uploads: nothing is uploaded")
            return
        name = entry_name(task, signature)
        try:
            if self.store.exists(name):
                return
            with self._scratch() as scratch:
                listed = [self._put(path, rel, digest, scratch / f"{index}.tar.gz")
                          for index, (path, rel, digest) in enumerate(zip(outputs, relative, digests, strict=True))]
            manifest = Manifest(task=task, signature=signature, components=components, output_hash=output_hash,
                                outputs=listed)
            self.store.put(name, signed(manifest, key))
        except Unavailable as error:  # a key that may only read, a full store: reading goes on
            self.upload_wanted = False
            self.warn(f"cache: cannot upload to {self.store.url} ({error}); nothing more is uploaded in this run")
            return
        self._note("uploaded", task)

    def _put(self, path: Path, relative: str, digest: str, blob: Path) -> Output:
        blake, size = pack(path, blob)
        if not self.store.exists(blob_name(blake)):
            self.store.put(blob_name(blake), blob)
        return Output(path=relative, digest=digest, blob=blake, size=size)

    # --- looking after it (doit cache) -----------------------------------------------------------------------------

    def verify(self, task: str, signature: str) -> str:
        """What the store holds for the task's signature: ``ok``, ``none``, or why it is refused (each blob is
        downloaded and checked as a build would, and nothing is put in place)."""
        try:
            manifest = self._manifest(task, signature)
            with self._scratch() as scratch:
                self._fetch_all(manifest, scratch)
        except Missing:
            return "none"
        except Refused as error:
            return f"refused: {error}"
        return "ok"

    def prune(self, older_than: timedelta) -> tuple[int, int]:
        """Remove the entries last written longer ago than ``older_than``, then the blobs as old that no entry left
        names (a younger blob may belong to an entry being written); returns (entries, blobs) removed."""
        limit = datetime.now(UTC) - older_than
        kept: set[str] = set()
        entries = blobs = 0
        for listed in self.store.list("entries"):
            if listed.modified < limit:
                entries += self._delete(listed.key)
                continue
            try:
                kept.update(output["blob"] for output in json.loads(self.store.get(listed.key))["manifest"]["outputs"])
            except (ValueError, KeyError, TypeError, Missing):
                continue  # not an entry a reader would take: it keeps nothing
        for listed in self.store.list("blobs"):
            if listed.modified < limit and listed.key.removeprefix("blobs/") not in kept:
                blobs += self._delete(listed.key)
        return entries, blobs

    def _delete(self, name: str) -> bool:
        """Remove an object; False when it was gone already (another prune got there first)."""
        try:
            self.store.delete(name)
        except Missing:
            return False
        return True

    # --- helpers ---------------------------------------------------------------------------------------------------

    def _relative(self, outputs: list[Path]) -> list[str] | None:
        """The outputs' paths relative to the build directory; None when one lies outside (host state)."""
        try:
            return [Path(path).relative_to(self.build_dir).as_posix() for path in outputs]
        except ValueError:
            return None

    @contextmanager
    def _scratch(self) -> Iterator[Path]:
        """A directory of this process inside the build (outputs move out of it by rename), removed after; those
        of processes that were killed are removed first."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        for left in self.scratch.iterdir():
            pid = left.name.split("-", 1)[0]
            if pid.isdigit() and not psutil.pid_exists(int(pid)):
                shutil.rmtree(left, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix=f"{os.getpid()}-", dir=self.scratch) as directory:
            yield Path(directory)

    def _unavailable(self, error: Unavailable) -> None:
        self._down = True
        self._note("unavailable", "")
        self.warn(f"cache: {self.store.url} cannot be reached ({error}); building without it")

    def _note(self, event: str, task: str) -> None:
        note(self.events, event, task)
