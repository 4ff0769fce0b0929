"""Evidence for a no-op: what a successful run's verdicts rested on, checked next time with stats alone.

A build whose every task came out current leaves, per invocation (command-line variables and targets), an
:class:`Evidence`: a *spec* of what to observe and the *observation* it made:

* where recipes are found: the directories of ``recipes/`` above the recipes, and every ``recipe.toml``;
* every file below the input directories — the recipes the build read, ``config/``, the build system's own code —
  by ``lstat`` (size, mtime, ctime, inode, mode); a recipe's ``source/`` that is a git work tree by its
  ``git status`` and the stat of the paths git names, as the engine's tree hash reads it;
* single files, environment variables and command outputs (``rustc -vV``) that signatures read outside those;
* the outputs of every task, by ``lstat`` of each output's top path (present, and not replaced or written since:
  a file artifact written by hand sends the run the normal way, which verifies every output's content), and the
  state's generation (any record since changes it).

The directories are observed *before* any verdict reads them, the rest before the tasks are checked: a file edited
while the build runs differs next time. The next run of the same invocation observes the spec again — no recipe is
parsed, no signature computed — and an equal observation means every task would be found current once more. Any
difference sends it the normal way, which leaves new evidence when it ends well.

A file whose stat is younger than the racy window when observed (it could change again within the same timestamp
tick) is observed by content instead. Knows nothing of doit. The observing itself is :mod:`.observe`'s, which the
entry point uses without this module: checking costs no more than the stats.
"""
from __future__ import annotations

import marshal
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..hashing import hash_bytes
from .observe import (
    FORMAT,
    GENERATION,
    OUTPUTS,
    RECIPE_FILE,
    Listings,
    Observation,
    TooManyRacyFiles,
    look_again,
    read_kept,
)

__all__ = ["GENERATION", "OUTPUTS", "RECIPE_FILE", "Evidence", "Listings", "Observation", "Plan", "Spec",
           "TooManyRacyFiles", "described", "describe_key", "plan_path"]


@dataclass
class Spec:
    """What to observe. Paths are absolute strings (marshal keeps them as they are)."""

    indexes: list[str] = field(default_factory=list)  # recipes/ directories, walked down to the recipe files
    zones: list[str] = field(default_factory=list)  # directories, walked whole
    code_zones: list[str] = field(default_factory=list)  # walked whole, minus __pycache__
    files: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    probes: list[list[str]] = field(default_factory=list)  # argv, run in the current directory
    outputs: list[str] = field(default_factory=list)
    state: str | None = None  # the engine's state database

    def as_data(self) -> dict:
        return dict(self.__dict__)

    def merged(self, other: Spec) -> Spec:
        """Both specs' observations (a path named twice is observed once)."""
        lists = {}
        for name, mine in self.__dict__.items():
            if isinstance(mine, list):
                known = {_hashable(item) for item in mine}
                lists[name] = mine + [item for item in getattr(other, name) if _hashable(item) not in known]
        return Spec(**lists, state=self.state or other.state)

    def covers(self, other: Spec) -> bool:
        """Whether everything ``other`` observes is observed here too."""
        return all({_hashable(item) for item in theirs} <= {_hashable(item) for item in getattr(self, name)}
                   for name, theirs in other.__dict__.items() if isinstance(theirs, list))


def _hashable(item: str | list[str]) -> str | tuple[str, ...]:
    return tuple(item) if isinstance(item, list) else item


@dataclass
class Plan:
    """The tasks the evidence covers and how an edit reaches them (:mod:`.narrow` reads it): kept with the evidence
    so that the check after an edit knows, without loading anything, which tasks the changed files can touch."""

    deps: dict[str, list[str]] = field(default_factory=dict)
    """Every task → the tasks it runs after (doit's ``task_dep``; a group's are its members)."""
    readers: dict[str, list[str]] = field(default_factory=dict)
    """A recipe → the tasks whose inputs read its directory (its own, those built from its source by ``same_as``,
    and the single-task stages that say so: the initfs reads base's)."""
    zones: dict[bytes, list[str]] = field(default_factory=dict)
    """A recipe's directory, and the real directory its ``source`` links to → the recipes."""
    pipeline: list[str] = field(default_factory=list)
    """The tasks that may read any recipe's files (of a stage that does not say which: judged after every edit)."""
    owners: list[str] = field(default_factory=list)
    """The task of each observed output (parallel to :attr:`Spec.outputs`)."""
    project: str | None = None
    """The digest of the loaded project kept beside the evidence (:meth:`tasks.model.project.Project.save`)."""


@dataclass
class Evidence:
    """A spec and what was observed of it, plus a summary for the message (tasks covered, files observed)."""

    spec: Spec
    seen: Observation
    tasks: int
    plan: Plan | None = None
    """Read by :meth:`load_plan` (a file of its own: a no-op never needs it)."""
    listings: Listings = field(default_factory=dict)
    """The directories listed by the observation: the next one lists only those that changed."""
    latest: Observation | None = None
    """What :meth:`changes` observed: taken before anything read it, so a run that then finds its spec unchanged can
    keep it as its own observation of the inputs instead of observing them again."""
    latest_listings: Listings = field(default_factory=dict)
    plan_digest: str | None = None
    path: Path | None = None

    def inputs_seen(self, spec: Spec) -> Observation | None:
        """The latest observation of the inputs, when ``spec`` asks for the same inputs (its outputs aside)."""
        if self.latest is None or replace(spec, outputs=[], state=None) != replace(self.spec, outputs=[], state=None):
            return None
        return {key: value for key, value in self.latest.items() if key not in (OUTPUTS, GENERATION)}

    def save(self, path: Path) -> None:
        """The evidence at ``path``, and its plan (unless the one it was loaded with) in a file beside it."""
        from ..atomic import write_atomically  # here: the module a no-op imports does without it
        if self.plan is not None and self.plan_digest is None:
            data = marshal.dumps(dict(self.plan.__dict__))
            write_atomically(plan_path(path), data)
            self.plan_digest = hash_bytes(data)
        write_atomically(path, marshal.dumps((FORMAT, self.spec.as_data(), self.seen, self.tasks, self.listings,
                                              self.plan_digest)))

    @classmethod
    def load(cls, path: Path) -> Evidence | None:
        return None if (kept := read_kept(path)) is None else cls.of_kept(kept, path)

    @classmethod
    def of_kept(cls, kept: tuple, path: Path) -> Evidence:
        """The evidence :func:`.observe.read_kept` read from ``path``."""
        spec, seen, tasks, listings, digest = kept
        return cls(Spec(**spec), seen, tasks, listings=listings, plan_digest=digest, path=path)

    def load_plan(self) -> Plan | None:
        """The plan saved with this evidence, if it is still the one (None: none, or another run's since)."""
        if self.plan is None and self.path is not None and self.plan_digest is not None:
            try:
                data = plan_path(self.path).read_bytes()
                if hash_bytes(data) == self.plan_digest:
                    self.plan = Plan(**marshal.loads(data))
            except (OSError, EOFError, ValueError, TypeError):
                pass
        return self.plan

    def changed_keys(self, exclude: Iterable[Path] = ()) -> list[bytes | str]:
        """What observing the spec now finds different (empty: the evidence holds), as observation keys; the new
        observation is kept as :attr:`latest`. Unobservable: ``OSError`` or :class:`TooManyRacyFiles`."""
        changed, self.latest, self.latest_listings = look_again(self.spec, self.seen, self.listings, exclude)
        return changed

    def changed_or_why(self, exclude: Iterable[Path] = ()) -> list[bytes | str] | str:
        """:meth:`changed_keys`, or why the inputs cannot be observed (``cannot observe: …``)."""
        try:
            return self.changed_keys(exclude)
        except (OSError, TooManyRacyFiles) as error:
            return f"cannot observe: {error}"

    def changes(self, exclude: Iterable[Path] = ()) -> list[str]:
        """:meth:`changed_or_why` in words."""
        return described(self.changed_or_why(exclude))

    def changed_outputs(self) -> list[str]:
        """The outputs whose ``lstat`` differs between the evidence and :attr:`latest`."""
        assert self.latest is not None
        then, now = self.seen.get(OUTPUTS, ()), self.latest.get(OUTPUTS, ())
        return [path for path, old, new in zip(self.spec.outputs, then, now, strict=True) if old != new]


def plan_path(evidence: Path) -> Path:
    return evidence.parent.parent / "plans" / evidence.name


def described(changes: list[bytes | str] | str) -> list[str]:
    """Changed keys in words, sorted: paths, ``env NAME``, ``probe ARGV``, ``git ROOT``, ``outputs``, ``generation``
    (or the one reason they could not be observed)."""
    return [changes] if isinstance(changes, str) else sorted(describe_key(key) for key in changes)


def describe_key(key: bytes | str) -> str:
    return os.fsdecode(key).strip("\0").replace("\0", " ")
