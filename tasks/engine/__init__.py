"""The content-hashed engine: source-tree hashes, task signatures and records, atomic stamped outputs, the lock.

Nothing here knows doit. :class:`Engine` gathers the pieces for one build directory (all state under
``<build>/engine/``); the task graph asks it whether a task is current, why not, and publishes what a task built.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .lock import BuildLock
from .publish import Publisher, Staging, output_digest, verify_stamp
from .stamp import Stamp, StampContext, read_stamp, render_stamp, stamp_path
from .state import Change, Record, Signature, StateStore, code_version, env_components, format_explanation
from .treehash import TreeHash, TreeHasher

__all__ = ["BuildLock", "Change", "Engine", "Publisher", "Record", "Signature", "Stamp", "StampContext", "Staging",
           "StateStore", "TreeHash", "TreeHasher", "code_version", "env_components", "format_explanation",
           "output_digest", "read_stamp", "render_stamp", "stamp_path", "verify_stamp"]


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
