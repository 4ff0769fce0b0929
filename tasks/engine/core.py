"""One build directory's engine: its state, tree hasher, publisher and lock (all under ``<build>/engine/``)."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import BuildError
from .lock import BuildLock
from .publish import Publisher, combined_output_hash
from .state import Change, Signature, StateStore, format_explanation
from .treehash import TreeHasher


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


class Engine:
    """The engine of one build directory."""

    def __init__(self, build_dir: Path, *, exclude: Iterable[Path] = (), workers: int | None = None,
                 warn: Callable[[str], None] = _warn):
        self.build_dir = Path(build_dir).absolute()
        self.dir = self.build_dir / "engine"
        self.state = StateStore(self.dir / "state.sqlite")
        self.trees = TreeHasher(self.dir / "cache", exclude=(self.build_dir, *exclude), workers=workers)
        self.outputs = TreeHasher(self.dir / "output-cache", workers=workers)
        self.publisher = Publisher(self.state, self.dir / "journal")
        self.lock = BuildLock(self.dir / "build.lock")
        self.warn = warn
        self._verified: dict[str, tuple[tuple, list[str], str | None]] = {}
        self._warned: set[str] = set()
        self._trusted: set[str] = set()

    def start_build(self, *, wait: bool = True, timeout: float | None = None) -> list[str]:
        """Take the build lock, then finish what a killed build had journalled (returns those tasks)."""
        self.lock.acquire(wait=wait, timeout=timeout)
        return self.publisher.recover()

    def ensure_started(self, *, wait: bool = True) -> None:
        """:meth:`start_build` once per process tree: a no-op when this process (or the parent it was forked
        from, as doit's ``-n`` workers are) already holds the lock. The kernel releases it when the build exits."""
        if not self.lock.held:
            self.start_build(wait=wait)

    def end_build(self) -> None:
        self.lock.release()
        self.state.close()

    def is_current(self, task: str, signature: Signature) -> bool:
        """Recorded with this signature, and its outputs still hold what was recorded: one that another task's
        script (or a hand) wrote makes the task stale, with a warning naming it."""
        if not self.state.is_current(task, signature):
            return False
        changed, _ = self._verify(task)
        if changed and task not in self._warned:
            self._warned.add(task)
            self.warn(f"{', '.join(changed)}: changed since {task} recorded it (another task's script or a hand "
                      f"wrote it); {task} runs again")
        return not changed

    def trust(self, tasks: Iterable[str]) -> None:
        """Take these tasks' outputs to hold what was recorded, without reading them: the no-op evidence saw them
        untouched since (the check after an edit, :mod:`.narrow`)."""
        self._trusted.update(tasks)

    def output_hash(self, task: str) -> str | None:
        """What the task's outputs hold now, as an output hash: its recorded one while they still hold what was
        recorded, None without a record or when an output is gone. A dependent's signature names this, so what it
        read is what it records, even when something wrote into its dependency's outputs meanwhile."""
        return self._verify(task)[1]

    def changed_outputs(self, task: str) -> list[str]:
        return self._verify(task)[0]

    def _verify(self, task: str) -> tuple[list[str], str | None]:
        """(outputs whose content differs from the record, the output hash of what they hold), once per record."""
        identity = self.state.recorded(task)
        if identity is None:
            return [], None
        known = self._verified.get(task)
        if known is not None and known[0] == identity:
            return known[1], known[2]
        if task in self._trusted:
            self._trusted.discard(task)  # once: a record written since is this run's own, and verified as usual
            self._verified[task] = (identity, [], identity[1])
            return [], identity[1]
        record = self.state.get(task)
        assert record is not None
        digests: list[str | None] = []
        for output in record.outputs:
            try:
                digests.append(self.outputs.output_digest(Path(output)) if os.path.lexists(output) else None)
            except BuildError:
                digests.append(None)
        # what the outputs hold now (equal to the recorded hash while none changed); None: an output is gone
        now = None if None in digests else combined_output_hash(list(zip(record.outputs, digests)))
        if record.digests:
            changed = [output for output, old, new in zip(record.outputs, record.digests, digests, strict=True)
                       if new is not None and new != old]
        else:  # a record of schema 2 holds the combined hash only
            changed = [] if now in (None, record.output_hash) else list(record.outputs)
        self._verified[task] = (identity, changed, now)
        return changed, now

    def explain(self, task: str, signature: Signature) -> str:
        changes = self.state.explain(task, signature)
        changes += [Change("output changed", output) for output in self.changed_outputs(task)]
        return format_explanation(task, sorted(changes, key=lambda change: change.component))
