"""Signatures, and the record of what each task last built.

A task's **signature** is a set of named input components (``"recipe"``, ``"source"``, ``"dep:relibc"``,
``"toolchain"``, ``"env:RUSTFLAGS"``, ``"code"`` …, each a hash) and their combined digest. After a task succeeds its
signature, the hash of its outputs and the output paths are **recorded** in one SQLite (WAL) transaction, right away:
``kill -9`` at any moment loses at most the task that was running, never a finished one, and never leaves a half
record. A task is current when its recorded signature equals the one computed now and its outputs still exist
(the engine checks, besides, that they still hold what was recorded: :meth:`tasks.engine.core.Engine.is_current`).

A run that changes its own inputs (a build script that writes into its source) is recorded with the signature it
started from, so it runs again; when the next run, started from exactly what the last one left, changes them again,
the build itself does it, and the signature it leaves is *accepted* as current too: reported once, never a rebuild
on every run.

**Early cutoff** comes from what goes into a signature: a dependent names its dependencies' recorded *output*
hashes (``dep:<task>``), not their signatures, so a rebuild that comes out byte-identical changes nothing downstream.

Records are read straight from the database on every question (a primary-key lookup), never from a cache: with
``doit -n`` other processes record tasks while this one asks.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from ..errors import InputError
from ..hashing import canonical_json, hash_text, hash_value

SCHEMA_VERSION = 4
UNSET = "(unset)"
_SCHEMA = ("""
CREATE TABLE IF NOT EXISTS records (
    task TEXT PRIMARY KEY,
    signature TEXT NOT NULL,
    components TEXT NOT NULL,
    output_hash TEXT NOT NULL,
    outputs TEXT NOT NULL,
    time REAL NOT NULL,
    digests TEXT NOT NULL DEFAULT '[]',
    left TEXT,
    accepted TEXT,
    duration REAL
) WITHOUT ROWID
""", """
CREATE TABLE IF NOT EXISTS durations (task TEXT PRIMARY KEY, seconds REAL NOT NULL) WITHOUT ROWID
""", """
CREATE TABLE IF NOT EXISTS generation (value INTEGER NOT NULL)
""", """
INSERT INTO generation SELECT 0 WHERE NOT EXISTS (SELECT * FROM generation)
""")
_NEXT_GENERATION = "UPDATE generation SET value = value + 1"
_ADDED_IN_3 = {"digests": "TEXT NOT NULL DEFAULT '[]'", "left": "TEXT", "accepted": "TEXT", "duration": "REAL"}
_COLUMNS = "task, signature, components, output_hash, outputs, time, digests, left, accepted, duration"


@dataclass(frozen=True)
class Signature:
    """Named input components (name → hash) and their combined digest."""

    components: Mapping[str, str]

    def __post_init__(self) -> None:
        for name, value in self.components.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(f"signature component {name!r}: names and values must be strings")
        object.__setattr__(self, "components", dict(self.components))

    @cached_property
    def digest(self) -> str:
        return hash_value(self.components)


def env_components(names: Iterable[str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env:<NAME>`` → hash of its value (or ``(unset)``) for an allow-list of variables."""
    source = os.environ if env is None else env
    return {f"env:{name}": hash_text(source[name]) if name in source else UNSET for name in names}


ChangeKind = Literal["never built", "added", "removed", "changed", "output missing", "output changed"]


@dataclass(frozen=True)
class Change:
    """One reason a task is stale, in the manner of bitbake-diffsigs."""

    kind: ChangeKind
    component: str
    old: str | None = None
    new: str | None = None

    def __str__(self) -> str:
        if self.kind == "never built":
            return "never built (no record)"
        if self.kind == "output missing":
            return f"output {self.component} is missing"
        if self.kind == "output changed":
            return f"output {self.component} no longer holds what the task recorded (something else wrote it)"
        if self.kind == "added":
            return f"{self.component} added: {self.new}"
        if self.kind == "removed":
            return f"{self.component} removed (was {self.old})"
        return f"{self.component} changed: {self.old} -> {self.new}"


def format_explanation(task: str, changes: Sequence[Change]) -> str:
    if not changes:
        return f"{task} is up to date"
    return "\n".join([f"{task} is stale:", *(f"  {change}" for change in changes)])


@dataclass(frozen=True)
class Record:
    task: str
    signature: str
    components: dict[str, str]
    output_hash: str
    outputs: tuple[str, ...]
    time: float
    digests: tuple[str, ...] = ()  # each output's digest, as recorded (empty in records of schema 2)
    left: str | None = None  # the signature the run left its inputs at, when it changed them while it ran
    accepted: str | None = None  # a second signature that counts as current: what the build's own edits leave
    duration: float | None = None  # seconds the run took (the progress display's estimate next time)

    def current_with(self, signature: Signature) -> bool:
        return signature.digest in (self.signature, self.accepted)


class StateStore:
    """The task records of one build directory, in ``path`` (an SQLite database in WAL mode)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._connection: sqlite3.Connection | None = None
        self._pid = 0
        self._rows: dict[str, tuple[str, str, str]] | None = None
        self._rows_version = -1

    def get(self, task: str) -> Record | None:
        row = self._db().execute(f"SELECT {_COLUMNS} FROM records WHERE task = ?", (task,)).fetchone()
        if row is None:
            return None
        name, signature, components, output_hash, outputs, at, digests, left, accepted, duration = row
        return Record(name, signature, json.loads(components), output_hash, tuple(json.loads(outputs)), at,
                      tuple(json.loads(digests)), left, accepted, duration)

    def is_current(self, task: str, signature: Signature) -> bool:
        """Recorded with this signature (or its accepted one), and every recorded output still exists."""
        row = self._all().get(task)
        return (row is not None and signature.digest in (row[0], row[4])
                and all(os.path.lexists(output) for output in json.loads(row[2])))

    def recorded(self, task: str) -> tuple[str, ...] | None:
        """The record's identity as this connection last read it (changes whenever the task is recorded again)."""
        return self._all().get(task)

    def explain(self, task: str, signature: Signature) -> list[Change]:
        """Why ``task`` is stale against ``signature``; empty when it is current."""
        record = self.get(task)
        if record is None:
            return [Change("never built", task, None, signature.digest)]
        old, new = record.components, signature.components
        changes = [Change("removed", name, old[name], None) for name in sorted(old.keys() - new.keys())]
        changes += [Change("added", name, None, new[name]) for name in sorted(new.keys() - old.keys())]
        changes += [Change("changed", name, old[name], new[name])
                    for name in sorted(old.keys() & new.keys()) if old[name] != new[name]]
        if record.current_with(signature):
            changes = []
        elif not changes:  # recorded by an older digest formula
            changes.append(Change("changed", "(signature)", record.signature, signature.digest))
        changes += [Change("output missing", output) for output in record.outputs if not os.path.lexists(output)]
        return sorted(changes, key=lambda change: change.component)

    def output_hash(self, task: str) -> str | None:
        row = self._all().get(task)
        return None if row is None else row[1]

    def record(self, task: str, signature: Signature, output_hash: str, outputs: Iterable[str | os.PathLike[str]],
               digests: Iterable[str] = (), *, left: str | None = None, accepted: str | None = None,
               duration: float | None = None) -> Record:
        """Store a finished task, in one transaction of its own."""
        record = Record(task, signature.digest, dict(signature.components), output_hash,
                        tuple(str(output) for output in outputs), time.time(), tuple(digests), left, accepted,
                        duration)
        self._rows = None
        with self._transaction() as db:
            db.execute(f"INSERT OR REPLACE INTO records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (record.task, record.signature, canonical_json(record.components), record.output_hash,
                        json.dumps(record.outputs), record.time, json.dumps(record.digests), record.left,
                        record.accepted, record.duration))
            if duration is not None:
                db.execute("INSERT OR REPLACE INTO durations (task, seconds) VALUES (?, ?)", (task, duration))
            db.execute(_NEXT_GENERATION)
        return record

    def duration(self, task: str) -> float | None:
        """How long ``task`` took when it last ran; kept when its record is forgotten or cleaned (the progress
        display's estimate next time)."""
        row = self._db().execute("SELECT seconds FROM durations WHERE task = ?", (task,)).fetchone()
        return None if row is None else row[0]

    def forget(self, tasks: Iterable[str]) -> list[str]:
        """Remove the records of ``tasks`` (they are stale from now on); returns those that had one."""
        known = [task for task in tasks if self.get(task) is not None]
        self._rows = None
        with self._transaction() as db:
            db.executemany("DELETE FROM records WHERE task = ?", [(task,) for task in known])
            db.execute(_NEXT_GENERATION)
        return known

    def generation(self) -> int:
        """How many records were written: equal numbers mean the same records (the no-op evidence's check)."""
        return self._db().execute("SELECT value FROM generation").fetchone()[0]

    def outputs(self, tasks: Iterable[str]) -> list[str]:
        """The recorded outputs of those tasks that have a record."""
        rows = self._all()
        return [output for task in tasks if (row := rows.get(task)) is not None for output in json.loads(row[2])]

    def tasks(self) -> list[str]:
        return [row[0] for row in self._db().execute("SELECT task FROM records ORDER BY task")]

    def _all(self) -> dict[str, tuple[str, str, str, float, str | None]]:
        """task → (signature, output hash, outputs, time, accepted signature) of every record, read in one query
        and kept until a connection commits: ``PRAGMA data_version`` changes when another connection (a ``doit -n``
        worker, another build) committed, and this connection's own writes drop the copy. A no-op check of
        thousands of tasks thus costs one query, and a worker's record is still seen at once."""
        db = self._db()
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if self._rows is None or version != self._rows_version:
            self._rows = {row[0]: row[1:] for row
                          in db.execute("SELECT task, signature, output_hash, outputs, time, accepted FROM records")}
            self._rows_version = version
        return self._rows

    def close(self) -> None:
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _db(self) -> sqlite3.Connection:
        """The connection of this process (a forked ``doit -n`` worker opens its own: SQLite forbids sharing)."""
        if self._connection is None or self._pid != os.getpid():
            self._connection, self._pid = self._open(), os.getpid()
            self._rows = None
        return self._connection

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            # synchronous=NORMAL in WAL mode: a committed record survives the death of the process; a power cut may
            # lose the last records but never corrupts the database.
            db.execute("PRAGMA synchronous = NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                self._create(db, version)
        except sqlite3.DatabaseError as error:
            raise InputError(f"cannot open the build state: {error}", path=self.path) from None
        return db

    def _create(self, db: sqlite3.Connection, version: int) -> None:
        """A new database, or one of schema 1 (records only) given its generation counter, or of schema 2 given
        the columns of schema 3 (older records have no per-output digests), or of schema 3 given the durations that
        outlive a forgotten record (schema 4)."""
        if version not in (0, 1, 2, 3, SCHEMA_VERSION):
            raise InputError(f"build state has schema {version}, this build system writes {SCHEMA_VERSION}; "
                             "remove the file to start afresh", path=self.path)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA:
            db.execute(statement)
        columns = {row[1] for row in db.execute("PRAGMA table_info(records)")}
        for name, declaration in _ADDED_IN_3.items():
            if name not in columns:
                db.execute(f"ALTER TABLE records ADD COLUMN {name} {declaration}")
        db.execute("INSERT OR IGNORE INTO durations SELECT task, duration FROM records WHERE duration IS NOT NULL")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
