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
tick) is observed by content instead. Knows nothing of doit; standard library and the engine's tree helpers only,
so that checking costs no more than the stats.
"""
from __future__ import annotations

import marshal
import os
import sqlite3
import subprocess
import time
from collections.abc import Container, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from stat import S_ISDIR, S_ISREG

from ..errors import BuildError
from ..hashing import hash_bytes, hash_value
from .treehash import (
    GIT_STATUS,
    RACY_WINDOW_NS,
    Exclusions,
    kind_of,
    parse_git_status,
    read_hash,
    run_git,
    scan,
    stat_key,
    walk,
)

FORMAT = 2  # 2: the plan (what narrows the check after an edit, in a file of its own) and the listings
RACY_READS = 256  # files read because their stat is too recent; beyond this no evidence is kept
SOURCE_DIR = b"source"  # a recipe's source: hashed the git way when it is a work tree (tasks.model.recipe.SOURCE_DIR)
RECIPE_FILE = b"recipe.toml"
GENERATION, OUTPUTS = "\0generation", "\0outputs"

Observation = dict[bytes | str, object]  # a path (bytes, as the file system has it) or "\0kind\0name" → value


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


class TooManyRacyFiles(Exception):
    """More recently written files than is worth reading on every check: keep no evidence this time."""


class Observer:
    """Observes a spec, in parts or whole; ``by_content`` names files compared by content whatever their stat."""

    def __init__(self, by_content: Iterable[bytes] = (), exclude: Iterable[Path] = (),
                 listings: Listings | None = None):
        self.by_content = set(by_content)
        self.exclude = tuple(exclude)  # the build directory: what builds write is no input
        self.trust_before_ns = time.time_ns() - RACY_WINDOW_NS
        self.reads = 0
        self._exclusions = Exclusions(b"", self.exclude)  # only its directory test is used, which needs no root
        self._visited: set[bytes] = set()
        self._known = listings or {}
        self.listings: Listings = {}
        """The directories this observer listed (or found as listed before), for the next one."""

    def observe(self, spec: Spec) -> Observation:
        """Everything; commands run in threads while this one walks the directories."""
        seen: Observation = {}
        with ThreadPoolExecutor(max_workers=4) as pool:
            probes = {_probe_key(argv): pool.submit(_probe, argv) for argv in spec.probes}
            self.directories(spec, seen, pool)
            self._files_and_env(spec, seen)
            self.outcome(spec, seen)
            seen.update({key: future.result() for key, future in probes.items()})
        return seen

    def directories(self, spec: Spec, seen: Observation, pool: ThreadPoolExecutor) -> None:
        """The indexes, with the zones they reach; the other zones; git work-tree sources by ``git status`` (run
        in ``pool`` meanwhile)."""
        statuses: dict[bytes, Future] = {}
        zones = dict.fromkeys(os.fsencode(zone) for zone in spec.zones)
        for index in spec.indexes:
            self._index(os.fsencode(index), zones, seen, statuses, pool)
        for zone in zones:
            self._walk(zone, seen, statuses, pool, code=False)
        for zone in spec.code_zones:
            self._walk(os.fsencode(zone), seen, statuses, pool, code=True)
        for root, status in statuses.items():
            self._git_tree(root, status, seen)

    def singles(self, spec: Spec, seen: Observation) -> None:
        """Files, environment variables and commands (these run here, one after the other)."""
        self._files_and_env(spec, seen)
        seen.update({_probe_key(argv): _probe(argv) for argv in spec.probes})

    def _files_and_env(self, spec: Spec, seen: Observation) -> None:
        for path in spec.files:
            self._file(os.fsencode(path), seen)
        seen.update({f"\0env\0{name}": os.environ.get(name) for name in spec.env})

    def outcome(self, spec: Spec, seen: Observation, earlier: tuple | None = None,
                written: Container[int] = ()) -> None:
        """What the run left: each output's stat, and the state's generation. Given what was observed of the outputs
        ``earlier``, only the outputs at the indexes ``written`` are observed again (the others are as they were
        before anything read them)."""
        if earlier is None:
            seen[OUTPUTS] = tuple(_lstat_key(path) for path in spec.outputs)
        else:
            seen[OUTPUTS] = tuple(_lstat_key(path) if index in written else key
                                  for index, (path, key) in enumerate(zip(spec.outputs, earlier, strict=True)))
        seen[GENERATION] = None if spec.state is None else read_generation(Path(spec.state))

    # --- walking ---------------------------------------------------------------------------------------------

    def _index(self, top: bytes, zones: dict[bytes, None], seen: Observation, statuses: dict[bytes, Future],
               pool: ThreadPoolExecutor) -> None:
        """What recipe discovery sees (tasks.model.index.discover): the directories down to the recipe directories
        (a new one, with a recipe or not, is a change) and each recipe file. A recipe directory that is also a zone
        is walked from the same listing (and taken off ``zones``)."""
        for directory, entries, below in self._scan(top):
            if entries is None:
                seen[directory] = None
                continue
            recipe = next((path for name, path, kind in entries if name == RECIPE_FILE and kind != DIRECTORY), None)
            if recipe is None or not _is_file(st := _stat_or_none(recipe)):
                seen[directory] = "directory"
                below.extend(path for _, path, kind in entries if kind == DIRECTORY)
                continue
            self._entry(recipe, st, seen)  # through a symlink, as the parser reads it
            if directory in zones:
                del zones[directory]
                self._walk(directory, seen, statuses, pool, code=False, entries=entries)

    def _walk(self, top: bytes, seen: Observation, statuses: dict[bytes, Future], pool: ThreadPoolExecutor, *,
              code: bool, entries: list[Entry] | None = None, source: bool = False) -> None:
        """``source``: ``top`` is a recipe's source, reached through a symlink (its real path names no recipe)."""
        trust_before_ns, by_content, exclusions = self.trust_before_ns, self.by_content, self._exclusions
        for directory, listed, below in self._scan(top, entries):
            if listed is None:  # gone: that is what is observed
                seen[directory] = None
                continue
            if _is_git_source(directory, listed, source and directory == top):
                statuses[directory] = pool.submit(run_git, directory, *GIT_STATUS)  # pruned: git status says it
                continue
            for name, path, kind in listed:  # the hot loop of a no-op: _entry inlined for files with a trusted stat
                if kind == DIRECTORY:
                    if not exclusions.directory(path, name) and not (code and name == b"__pycache__"):
                        below.append(path)
                elif name != b".git" and not (kind == OTHER and path in seen):  # (a recipe file: seen by _index)
                    st = os.lstat(path)
                    if st.st_mtime_ns < trust_before_ns > st.st_ctime_ns and path not in by_content:
                        seen[path] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode)
                    else:
                        self._entry(path, st, seen)
                    if kind == LINK:
                        self._link_target(path, seen, statuses, pool, code)

    def _scan(self, top: bytes, listing: list[Entry] | None = None
              ) -> Iterator[tuple[bytes, list[Entry] | None, list[bytes]]]:
        """:func:`treehash.scan` with :meth:`_list`: entries as (name, path, kind), a directory unchanged since an
        earlier observer listed it not listed again."""
        return scan(top, listing, lister=self._list)

    def _list(self, directory: bytes) -> list[Entry] | None:
        """A directory's entries (None: gone, or no directory). Its entries change only with its mtime (or, by a
        rename of it, its ctime and inode), so while those hold, and are older than the racy window, the names and
        kinds an earlier listing found are its entries still: one ``stat`` instead of a listing."""
        try:
            st = os.stat(directory)  # as scandir, through a symlink
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not S_ISDIR(st.st_mode):
            return None
        identity = (st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
        trusted = st.st_mtime_ns < self.trust_before_ns > st.st_ctime_ns
        known = self._known.get(directory)
        if not (trusted and known is not None and known[0] == identity):
            try:
                with os.scandir(directory) as entries:
                    known = (identity, tuple((entry.name, _kind(entry)) for entry in entries))
            except (FileNotFoundError, NotADirectoryError):
                return None
        if trusted:
            self.listings[directory] = known
        prefix = directory + b"/"
        return [(name, prefix + name, kind) for name, kind in known[1]]

    def _link_target(self, link: bytes, seen: Observation, statuses: dict[bytes, Future], pool: ThreadPoolExecutor,
                     code: bool) -> None:
        """What a symlink in a recipe leads to also counts: a source checked out elsewhere is hashed through it,
        a patch read through it."""
        try:
            target = os.stat(link)
        except (FileNotFoundError, NotADirectoryError):
            return  # dangling: the link's own stat says all there is
        if not os.path.isdir(link):
            self._entry(link, target, seen, key=link + b"\0target")
        elif (real := os.path.realpath(link)) not in self._visited:  # a link loop is followed once
            self._visited.add(real)
            # Walked by its real path: two links to one directory (base-initfs/source and bootstrap/source, both
            # base's source by same_as) are seen under the same keys whichever is met first.
            self._walk(real, seen, statuses, pool, code=code, source=_is_source_dir(link))

    def _git_tree(self, root: bytes, status: Future, seen: Observation) -> None:
        """A work tree as the engine hashes it: HEAD and the paths git reports, each by stat; with submodules the
        engine walks the tree, and so does this."""
        try:
            output = status.result()
        except BuildError as error:
            seen[f"\0git\0{os.fsdecode(root)}"] = str(error)
            return
        seen[f"\0git\0{os.fsdecode(root)}"] = hash_bytes(output)
        parsed = parse_git_status(output)
        exclusions = Exclusions(root, self.exclude)
        if parsed.submodules:
            self._walk_plain(root, exclusions, seen)
            return
        for rel in parsed.paths:
            if exclusions.relative(rel):
                continue
            if rel.endswith(b"/"):  # an untracked nested repository counts whole
                self._walk_plain(root, exclusions, seen, rel.rstrip(b"/"))
            else:
                self._file(root + b"/" + rel, seen)

    def _walk_plain(self, root: bytes, exclusions: Exclusions, seen: Observation, start: bytes = b"") -> None:
        """Every file below ``root/start`` as the tree hash's walk finds it."""
        for rel, st in walk(root, exclusions, start):
            self._entry(root + b"/" + rel, st, seen)

    def _file(self, path: bytes, seen: Observation) -> None:
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            seen[path] = None
            return
        self._entry(path, st, seen)

    def _entry(self, path: bytes, st: os.stat_result, seen: Observation, key: bytes | None = None) -> None:
        key = path if key is None else key
        if key in self.by_content or max(st.st_mtime_ns, st.st_ctime_ns) >= self.trust_before_ns:
            seen[key] = self._content(path, st)
        else:
            seen[key] = stat_key(st)

    def _content(self, path: bytes, st: os.stat_result) -> tuple:
        """A file by its content (``st`` is its lstat, or its stat when read through a symlink)."""
        kind = kind_of(st.st_mode)
        if kind is None:
            return ("content", st.st_mode, None)
        self.reads += 1
        if self.reads > RACY_READS:
            raise TooManyRacyFiles(os.fsdecode(path))
        return ("content", st.st_mode, read_hash(path, kind)[0])


Listings = dict[bytes, tuple[tuple[int, int, int, int], tuple[tuple[bytes, str], ...]]]
"""A directory → (its mtime, ctime, inode and device, its entries' names and kinds) when listed."""
LINK, DIRECTORY, OTHER = "l", "d", "f"
Entry = tuple[bytes, bytes, str]  # a directory entry: name, path, kind


def _kind(entry: os.DirEntry) -> str:
    return LINK if entry.is_symlink() else DIRECTORY if entry.is_dir(follow_symlinks=False) else OTHER


def _stat_or_none(path: bytes) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _is_file(st: os.stat_result | None) -> bool:
    return st is not None and S_ISREG(st.st_mode)


def _is_source_dir(directory: bytes) -> bool:
    """A recipe's ``source/``: named so, beside a recipe file."""
    return os.path.basename(directory) == SOURCE_DIR and os.path.isfile(
        os.path.join(os.path.dirname(directory), RECIPE_FILE))


def _is_git_source(directory: bytes, entries: list[Entry], linked_source: bool = False) -> bool:
    """A recipe's ``source/`` (or, ``linked_source``, the directory a recipe's source link leads to) that the
    engine hashes the git way (tasks.engine.treehash.is_git_tree)."""
    names = {name for name, _, _ in entries}
    return (b".git" in names and b".gitmodules" not in names
            and (linked_source or _is_source_dir(directory)))


def _probe_key(argv: list[str]) -> str:
    return "\0probe\0" + "\0".join(argv)


def _probe(argv: list[str]) -> str:
    """A command's exit status and output, as a hash (``rustc -vV``, ``git rev-parse HEAD``). Not
    tasks.process.run: this runs in a thread beside the walk, on the path whose cost is the point."""
    try:
        result = subprocess.run(argv, check=False, capture_output=True, stdin=subprocess.DEVNULL)
    except OSError as error:
        return f"cannot run: {error.strerror}"
    return hash_value([result.returncode, hash_bytes(result.stdout)])


def read_generation(path: Path) -> int | None:
    """The state database's generation, read without creating or upgrading it (None: there is none)."""
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(path, timeout=60)
        try:
            return db.execute("SELECT value FROM generation").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return None


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

    def content_paths(self) -> list[bytes]:
        return [path for path, value in self.seen.items() if isinstance(value, tuple) and value[:1] == ("content",)]

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
        try:
            version, spec, seen, tasks, listings, digest = marshal.loads(path.read_bytes())
            if version != FORMAT:
                return None
            return cls(Spec(**spec), seen, tasks, listings=listings, plan_digest=digest, path=path)
        except (OSError, EOFError, ValueError, TypeError):  # none yet, or unreadable: the run takes the long way
            return None

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
        observer = Observer(self.content_paths(), exclude, self.listings)
        now = self.latest = observer.observe(self.spec)
        self.latest_listings = observer.listings
        if now == self.seen:
            return []
        return [key for key in self.seen.keys() | now.keys() if self.seen.get(key, now) != now.get(key, self)]

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


def _lstat_key(path: str) -> tuple[int, int, int, int, int] | None:
    try:
        return stat_key(os.lstat(path))
    except (FileNotFoundError, NotADirectoryError):
        return None
