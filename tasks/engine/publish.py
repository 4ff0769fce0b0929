"""Publishing a task's results as one recoverable step: its artifacts, their stamps, and its record.

A task builds each output at ``<path>.partial`` (:meth:`Staging.file` / :meth:`Staging.directory`). When its
body returns, the publisher hashes the partials, writes the stamps (as partials too), then writes a **journal**
entry naming every move with its expected hash and the record to store; only then does it rename the partials into
place, record the task, and delete the journal entry. A ``kill -9`` before the journal is written leaves the old
artifacts, stamps and record; a kill after it is finished by :meth:`Publisher.recover` at the start of the next
build (a move counts as done when the path holds the expected hash), so artifacts, stamps and records always agree.

The task's **output hash** covers its artifacts only, not their stamps: a stamp holds the build time, and a
byte-identical rebuild must give the same output hash so that nothing downstream rebuilds (early cutoff).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import fresh_partial, move_into_place, remove_path, write_atomically
from ..errors import CommandError, GraphError
from ..hashing import hash_bytes, hash_text, hash_value
from .observe import kind_of, read_hash
from .stamp import Stamp, StampContext, build_time, collect_revisions, read_stamp, stamp_json, stamp_path
from .state import Signature, StateStore
from .treehash import hash_directory


def output_digest(path: Path) -> str:
    """Content hash of one artifact: ``<kind>:<hash>`` for a file (f/x), symlink (l) or directory tree (d)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise CommandError("the task did not produce this output", path=path) from None
    kind = kind_of(mode)
    if kind is not None:
        return f"{kind.decode()}:{read_hash(os.fsencode(path), kind)[0]}"
    if os.path.isdir(path):
        return f"d:{hash_directory(path)}"
    raise CommandError("output is neither a file, a symlink nor a directory", path=path)


def combined_output_hash(digests: list[tuple[str | os.PathLike[str], str]]) -> str:
    """A task's output hash: over each artifact's name and digest (the stamps aside)."""
    return hash_value([[Path(path).name, digest] for path, digest in digests])


def verify_stamp(artifact: Path) -> bool:
    """Whether the artifact's content is what its stamp says (false when either is missing)."""
    stamp = read_stamp(artifact)
    return stamp is not None and os.path.lexists(artifact) and output_digest(artifact) == stamp.output_hash


@dataclass
class Staging:
    """The outputs a running task builds, each at its ``.partial`` path until published."""

    moves: list[tuple[Path, Path]] = field(default_factory=list)  # (partial, final)

    def file(self, path: Path) -> Path:
        """Where to write the file artifact ``path``."""
        return self._add(Path(path), fresh_partial(Path(path), directory=False))

    def directory(self, path: Path) -> Path:
        """An empty directory to fill for the directory artifact ``path``."""
        return self._add(Path(path), fresh_partial(Path(path), directory=True))

    def _add(self, final: Path, partial: Path) -> Path:
        if any(final == known for _, known in self.moves):
            raise GraphError("output staged twice by one task", path=final)
        self.moves.append((partial, final))
        return partial

    def discard(self) -> None:
        for partial, _ in self.moves:
            remove_path(partial)


class Publisher:
    """Publishes tasks' outputs into place and records them in ``state``; journal entries live in ``journal_dir``."""

    def __init__(self, state: StateStore, journal_dir: Path):
        self.state = state
        self.journal_dir = Path(journal_dir)

    @contextmanager
    def publish(self, task: str, signature: Signature, stamp: StampContext | None = None) -> Iterator[Staging]:
        """Stage outputs in the body; on success publish them (stamped when ``stamp`` is given) and record the
        task. An exception in the body removes the partials and leaves old artifacts and the record as they were."""
        staging = Staging()
        try:
            yield staging
            entry = self._journal_entry(task, signature, staging, stamp)
        except BaseException:
            staging.discard()
            raise
        journal = self.journal_dir / f"{hash_text(task)}.json"
        write_atomically(journal, json.dumps(entry).encode())
        self._finish(journal, entry, recovering=False)

    def recover(self) -> list[str]:
        """Finish every publication a killed build had journalled; returns their tasks. Call under the build lock."""
        finished = []
        for journal in sorted(self.journal_dir.glob("*.json")):
            entry = json.loads(journal.read_bytes())
            self._finish(journal, entry, recovering=True)
            finished.append(entry["task"])
        return finished

    def adopt(self, task: str, signature: Signature, outputs: list[Path], stamp: StampContext | None = None, *,
              left: Signature | None = None, accept_left: bool = False, duration: float | None = None) -> None:
        """Record outputs a task already put in place itself (each written atomically by its own code) and stamp
        them. The stamps go through the journal like published outputs, so a record and its stamps agree.
        ``left``: the signature of the inputs as the run left them, when it changed them (``accept_left``: and that
        counts as current, see :mod:`tasks.engine.state`); ``duration``: the seconds the run took."""
        staging = Staging()
        try:
            entry = self._entry(task, signature, [(path, path, output_digest(path)) for path in outputs], staging,
                                stamp)
        except BaseException:
            staging.discard()
            raise
        entry["moves"] = [move for move in entry["moves"] if move[0] != move[1]]  # adopted outputs stay put
        entry["duration"] = duration
        if left is not None:
            entry["left"] = left.digest
            entry["accepted"] = left.digest if accept_left else None
        journal = self.journal_dir / f"{hash_text(task)}.json"
        write_atomically(journal, json.dumps(entry).encode())
        self._finish(journal, entry, recovering=False)

    def _journal_entry(self, task: str, signature: Signature, staging: Staging,
                       stamp: StampContext | None) -> dict:
        artifacts = [(partial, final, output_digest(partial)) for partial, final in staging.moves]
        return self._entry(task, signature, artifacts, staging, stamp)

    def _entry(self, task: str, signature: Signature, artifacts: list[tuple[Path, Path, str]], staging: Staging,
               stamp: StampContext | None) -> dict:
        output_hash = combined_output_hash([(final, digest) for _, final, digest in artifacts])
        moves = [[str(partial), str(final), digest] for partial, final, digest in artifacts]
        if stamp is not None:
            moves += self._stage_stamps(task, signature, staging, artifacts, stamp)
        return {"task": task, "components": signature.components, "output_hash": output_hash,
                "outputs": [str(final) for _, final, _ in artifacts],
                "digests": [digest for _, _, digest in artifacts], "moves": moves}

    @staticmethod
    def _stage_stamps(task: str, signature: Signature, staging: Staging, artifacts: list[tuple[Path, Path, str]],
                      context: StampContext) -> list[list[str]]:
        revisions, built_at = collect_revisions(context), build_time()
        moves = []
        for _, final, digest in artifacts:
            text = stamp_json(Stamp(task=task, artifact=final.name, signature=signature.digest, output_hash=digest,
                                    toolchain=context.toolchain, built_at=built_at, git=revisions))
            partial = staging.file(stamp_path(final))
            partial.write_bytes(text)
            moves.append([str(partial), str(stamp_path(final)), f"f:{hash_bytes(text)}"])
        return moves

    def _finish(self, journal: Path, entry: dict, *, recovering: bool) -> None:
        """Apply a journal entry. When recovering, a move whose partial no longer holds the staged content was
        done before the kill (what is left at the partial path is the tree it replaced), so it is not redone."""
        for partial, final, digest in entry["moves"]:
            partial_path = Path(partial)
            if recovering and not (os.path.lexists(partial_path) and output_digest(partial_path) == digest):
                remove_path(partial_path)
            else:
                move_into_place(partial_path, Path(final))
        self.state.record(entry["task"], Signature(entry["components"]), entry["output_hash"], entry["outputs"],
                          entry.get("digests", ()), left=entry.get("left"), accepted=entry.get("accepted"),
                          duration=entry.get("duration"))
        journal.unlink()
