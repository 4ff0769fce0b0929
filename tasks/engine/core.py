"""One build directory's engine: its state, tree hasher, publisher and lock (all under ``<build>/engine/``)."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .lock import BuildLock
from .publish import Publisher
from .state import Signature, StateStore, format_explanation
from .treehash import TreeHasher


class Engine:
    """The engine of one build directory."""

    def __init__(self, build_dir: Path, *, exclude: Iterable[Path] = (), workers: int | None = None):
        self.build_dir = Path(build_dir).absolute()
        self.dir = self.build_dir / "engine"
        self.state = StateStore(self.dir / "state.sqlite")
        self.trees = TreeHasher(self.dir / "cache", exclude=(self.build_dir, *exclude), workers=workers)
        self.publisher = Publisher(self.state, self.dir / "journal")
        self.lock = BuildLock(self.dir / "build.lock")

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

    def explain(self, task: str, signature: Signature) -> str:
        return format_explanation(task, self.state.explain(task, signature))
