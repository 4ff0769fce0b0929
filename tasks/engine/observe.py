"""Observing files by their stat: what a no-op costs, and all it imports.

The evidence of a run (:mod:`.evidence`) is checked by observing its spec again — directories walked, files and
outputs ``lstat``-ed, a few commands run — and comparing. The entry point does this before doit, or anything heavier
than the standard library's lightest modules, is imported (:mod:`tasks.cli.invocation`), so this module keeps to
them: the tree hash's module (:mod:`.treehash`) is imported only for what a no-op rarely meets (a git work-tree
source), and the evidence is read here as marshal keeps it, without its classes. The primitives the tree hash
shares live here too: :func:`scan`, :class:`Exclusions`, :func:`stat_key`, :func:`kind_of`, :func:`read_hash`.
"""
from __future__ import annotations

import marshal
import os
import subprocess
import time
from collections.abc import Callable, Container, Iterable, Iterator
from stat import S_ISDIR, S_ISLNK, S_ISREG, S_IXUSR

from ..errors import InputError
from ..hashing import CHUNK, hash_bytes, new_hasher

TYPE_CHECKING = False  # typing's, without importing typing: this module's imports are a no-op's cost
if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from .evidence import Spec

FORMAT = 4  # 4: stats as one number (stat_print); 3: probes as "status hash"; 2: the plan and the listings
# A file whose mtime or ctime is this close to the moment we looked at it may still be changed within the same
# timestamp tick without its stat changing ("racy git"); its cache entry is not trusted until it is older.
RACY_WINDOW_NS = 2_000_000_000
RACY_READS = 256  # files read because their stat is too recent; beyond this no evidence is kept
SOURCE_DIR = b"source"  # a recipe's source: hashed the git way when it is a work tree (tasks.model.recipe.SOURCE_DIR)
RECIPE_FILE = b"recipe.toml"
KIND_FILE, KIND_EXEC, KIND_LINK = b"f", b"x", b"l"  # a file's kind in a tree manifest (kind_of)
_SOURCE_END = b"/" + SOURCE_DIR
GENERATION, OUTPUTS = "\0generation", "\0outputs"

Observation = dict[bytes | str, object]  # a path (bytes, as the file system has it) or "\0kind\0name" → value


def read_kept(path: str | os.PathLike) -> tuple | None:
    """The evidence :meth:`.evidence.Evidence.save` left at ``path`` as marshal keeps it: (spec as a dict,
    observation, tasks, listings, plan digest); None when there is none, or of another format."""
    try:
        with open(path, "rb") as stream:
            version, *kept = marshal.loads(stream.read())
        return tuple(kept) if version == FORMAT and len(kept) == 5 else None
    except (OSError, EOFError, ValueError, TypeError):  # none yet, or unreadable: the run takes the long way
        return None


def look_again(spec: Spec, seen: Observation, listings: Listings, exclude: Iterable[os.PathLike | str] = ()
               ) -> tuple[list[bytes | str], Observation, Listings]:
    """Observe ``spec`` now: the keys whose value differs from ``seen`` (empty: the evidence holds), the new
    observation, and the directories listed. Unobservable: ``OSError`` or :class:`TooManyRacyFiles`."""
    observer = Observer(content_paths(seen), exclude, listings)
    now = observer.observe(spec)
    if now == seen:
        return [], now, observer.listings
    return [key for key in seen.keys() | now.keys() if seen.get(key, now) != now.get(key, seen)], now, observer.listings


def content_paths(seen: Observation) -> list[bytes]:
    """The files an observation compared by content: the next compares them so too."""
    return [path for path, value in seen.items() if isinstance(value, tuple) and value[:1] == ("content",)]


class TooManyRacyFiles(Exception):
    """More recently written files than is worth reading on every check: keep no evidence this time."""


class Observer:
    """Observes a spec, in parts or whole; ``by_content`` names files compared by content whatever their stat."""

    def __init__(self, by_content: Iterable[bytes] = (), exclude: Iterable[os.PathLike | str] = (),
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
        self._statuses: dict[bytes, Future] = {}  # a git work-tree source → its `git status`, running meanwhile
        self._git: ThreadPoolExecutor | None = None

    def observe(self, spec: Spec) -> Observation:
        """Everything; the commands run while this process walks the directories."""
        seen: Observation = {}
        probes = {_probe_key(argv): _Probe(argv) for argv in spec.probes}
        self.directories(spec, seen)
        self._files_and_env(spec, seen)
        self.outcome(spec, seen)
        seen.update({key: probe.result() for key, probe in probes.items()})
        return seen

    def directories(self, spec: Spec, seen: Observation) -> None:
        """The indexes, with the zones they reach; the other zones; git work-tree sources by ``git status`` (run
        in threads meanwhile)."""
        zones = dict.fromkeys(os.fsencode(zone) for zone in spec.zones)
        for index in spec.indexes:
            self._index(os.fsencode(index), zones, seen)
        for zone in zones:
            self._walk(zone, seen, code=False)
        for zone in spec.code_zones:
            self._walk(os.fsencode(zone), seen, code=True)
        statuses, self._statuses = self._statuses, {}
        for root, status in statuses.items():
            self._git_tree(root, status, seen)
        if self._git is not None:
            self._git.shutdown()
            self._git = None

    def singles(self, spec: Spec, seen: Observation) -> None:
        """Files, environment variables and commands (these run here, one after the other)."""
        self._files_and_env(spec, seen)
        seen.update({_probe_key(argv): _Probe(argv).result() for argv in spec.probes})

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
            seen[OUTPUTS] = tuple(_lstat_print(path) for path in spec.outputs)
        else:
            seen[OUTPUTS] = tuple(_lstat_print(path) if index in written else key
                                  for index, (path, key) in enumerate(zip(spec.outputs, earlier, strict=True)))
        seen[GENERATION] = None if spec.state is None else read_generation(spec.state)

    # --- walking ---------------------------------------------------------------------------------------------

    def _index(self, top: bytes, zones: dict[bytes, None], seen: Observation) -> None:
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
                self._walk(directory, seen, code=False, entries=entries)

    def _walk(self, top: bytes, seen: Observation, *, code: bool, entries: list[Entry] | None = None,
              source: bool = False) -> None:
        """``source``: ``top`` is a recipe's source, reached through a symlink (its real path names no recipe)."""
        trust_before_ns, by_content, exclusions = self.trust_before_ns, self.by_content, self._exclusions
        for directory, listed, below in self._scan(top, entries):
            if listed is None:  # gone: that is what is observed
                seen[directory] = None
                continue
            linked = source and directory == top
            if (linked or directory.endswith(_SOURCE_END)) and _is_git_source(directory, listed, linked):
                self._git_status(directory)  # pruned: git status says it
                continue
            for name, path, kind in listed:  # the hot loop of a no-op: _entry inlined for a trusted stat (stat_print)
                if kind == DIRECTORY:
                    if not exclusions.directory(path, name) and not (code and name == b"__pycache__"):
                        below.append(path)
                elif name != b".git" and not (kind == OTHER and path in seen):  # (a recipe file: seen by _index)
                    st = os.lstat(path)
                    if st.st_mtime_ns < trust_before_ns > st.st_ctime_ns and path not in by_content:
                        seen[path] = hash((st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode))
                    else:
                        self._entry(path, st, seen)
                    if kind == LINK:
                        self._link_target(path, seen, code)

    def _scan(self, top: bytes, listing: list[Entry] | None = None
              ) -> Iterator[tuple[bytes, list[Entry] | None, list[bytes]]]:
        """:func:`scan` with :meth:`_list`: entries as (name, path, kind), a directory unchanged since an earlier
        observer listed it not listed again."""
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
        identity = hash((st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev))
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

    def _link_target(self, link: bytes, seen: Observation, code: bool) -> None:
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
            self._walk(real, seen, code=code, source=_is_source_dir(link))

    def _git_status(self, root: bytes) -> None:
        """Start ``git status`` in a work-tree source (the tree hash's module, and threads, only for those)."""
        if self._git is None:
            from concurrent.futures import ThreadPoolExecutor
            self._git = ThreadPoolExecutor(max_workers=4)
        from .treehash import GIT_STATUS, run_git
        self._statuses[root] = self._git.submit(run_git, root, *GIT_STATUS)

    def _git_tree(self, root: bytes, status: Future, seen: Observation) -> None:
        """A work tree as the engine hashes it: HEAD and the paths git reports, each by stat; with submodules the
        engine walks the tree, and so does this."""
        from ..errors import BuildError
        from .treehash import parse_git_status
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
        from .treehash import walk
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
            seen[key] = stat_print(st)

    def _content(self, path: bytes, st: os.stat_result) -> tuple:
        """A file by its content (``st`` is its lstat, or its stat when read through a symlink)."""
        kind = kind_of(st.st_mode)
        if kind is None:
            return ("content", st.st_mode, None)
        self.reads += 1
        if self.reads > RACY_READS:
            raise TooManyRacyFiles(os.fsdecode(path))
        return ("content", st.st_mode, read_hash(path, kind)[0])


Listings = dict[bytes, tuple[int, tuple[tuple[bytes, str], ...]]]
"""A directory → (the hash of its mtime, ctime, inode and device, its entries' names and kinds) when listed."""
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


class _Probe:
    """A command's exit status and output, as a hash (``rustc -vV``, ``git rev-parse HEAD``): started when made, read
    by :meth:`result`, so that it runs while the walk goes on. Not tasks.process.run: this is the no-op's path,
    whose cost is the point."""

    def __init__(self, argv: list[str]):
        self._argv = tuple(argv)
        try:
            self._process: subprocess.Popen | str = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError as error:
            self._process = f"cannot run: {error.strerror}"

    def result(self) -> str:
        if isinstance(self._process, str):
            return self._process
        output, _ = self._process.communicate()
        if self._process.returncode == 0:
            _PROBED[self._argv] = output
        return f"{self._process.returncode} {hash_bytes(output)}"


_PROBED: dict[tuple[str, ...], bytes] = {}


def probed(argv: list[str]) -> str | None:
    """The output of ``argv`` if this process ran it as a probe and it succeeded (None: it did not): what a signature
    reads of a command (the host's ``rustc -vV``) is what the observation saw of it a moment ago, and the run after
    an edit need not run it again."""
    output = _PROBED.get(tuple(argv))
    return None if output is None else output.decode(errors="replace")


def read_generation(path: str) -> int | None:
    """The state database's generation, read without creating or upgrading it (None: there is none)."""
    if not os.path.isfile(path):
        return None
    import sqlite3  # here: an evidence without a state database (none yet) does without it
    try:
        db = sqlite3.connect(path, timeout=60)
        try:
            return db.execute("SELECT value FROM generation").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return None


class Exclusions:
    """What a source-tree hash leaves out: ``.git``, cargo's ``target`` directories, and the given paths."""

    def __init__(self, root: bytes, paths: Iterable[os.PathLike | str] = (), *, source: bool = True):
        self.root = root
        self.source = source
        self.paths = frozenset(os.fsencode(os.path.abspath(path)) for path in paths)
        self._inside = any(path.startswith(root + b"/") for path in self.paths)
        self._memo: dict[bytes, bool] = {}

    def directory(self, path: bytes, name: bytes) -> bool:
        """Whether the directory at absolute ``path`` (named ``name``) is left out."""
        if not self.source:
            return False
        return name == b".git" or path in self.paths or (name == b"target" and _is_cargo_target(path))

    def relative(self, rel: bytes) -> bool:
        """Whether a path reported relative to the root lies in a left-out directory (or is one)."""
        if not self.source or (not self._inside and b"target" not in rel):
            return False
        parts = rel.rstrip(b"/").split(b"/")
        return any(self._prefix(b"/".join(parts[:end]), parts[end - 1]) for end in range(1, len(parts) + 1))

    def _prefix(self, rel: bytes, name: bytes) -> bool:
        if rel not in self._memo:
            self._memo[rel] = self.directory(self.root + b"/" + rel, name)
        return self._memo[rel]


def _is_cargo_target(path: bytes) -> bool:
    return os.path.exists(path + b"/CACHEDIR.TAG") or os.path.exists(path + b"/.rustc_info.json")


def scan(top: bytes, listing: list | None = None, *, missing_ok: bool = False,
         lister: Callable[[bytes], list | None] | None = None) -> Iterator[tuple[bytes, list | None, list[bytes]]]:
    """The directory walk that the tree hash and the no-op evidence share: depth first, one listing per directory
    (``os.scandir``'s entries, or what ``lister`` gives), yielding ``(path, entries, below)`` for ``top`` and then
    for each directory the consumer chose.

    What to do with each entry is the consumer's (the per-file work stays in its own loop): it appends to ``below``
    the paths of the subdirectories to go into (``entry.path``; what it leaves out is pruned), and those are walked
    next, the last appended first. ``listing``: ``top``'s entries, when the consumer has already listed it. With
    ``missing_ok`` a directory that is gone (or no longer a directory) is yielded with ``entries`` None; without,
    the error is raised (a ``lister`` answers None itself)."""
    stack = [top]
    while stack:
        directory = stack.pop()
        if listing is None:
            listing = lister(directory) if lister is not None else _scandir(directory, missing_ok)
        below: list[bytes] = []
        yield directory, listing, below
        stack += below
        listing = None


def _scandir(directory: bytes, missing_ok: bool) -> list[os.DirEntry] | None:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        if not missing_ok:
            raise
        return None


StatKey = tuple[int, int, int, int, int]  # size, mtime_ns, ctime_ns, inode, mode


def stat_key(st: os.stat_result) -> StatKey:
    """What a cached answer about a file is keyed by: any write, rename or chmod changes one of these."""
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode


def stat_print(st: os.stat_result) -> int:
    """What an observation keeps of a file's stat: the hash of its :func:`stat_key`, one number where the tuple is
    six objects. An observation holds tens of thousands, made, compared and read back on every no-op; a change
    that leaves the hash equal has a chance of one in 2⁶⁴. (Python's hash of a tuple of numbers is the same in
    every process: no salt.)"""
    return hash(stat_key(st))


def _lstat_print(path: str) -> int | None:
    try:
        return stat_print(os.lstat(path))
    except (FileNotFoundError, NotADirectoryError):
        return None


def kind_of(mode: int) -> bytes | None:
    """The manifest kind of a file mode; None for what does not count (directories, devices, sockets)."""
    if S_ISLNK(mode):
        return KIND_LINK
    if S_ISREG(mode):
        return KIND_EXEC if mode & S_IXUSR else KIND_FILE
    return None


def read_hash(path: bytes, kind: bytes) -> tuple[str, int]:
    """Content hash and size of one file (a symlink's content is its target string)."""
    if kind == KIND_LINK:
        target = os.readlink(path)
        return hash_bytes(target), len(target)
    try:
        with open(path, "rb", buffering=0) as stream:
            data = stream.read(CHUNK)
            if len(data) < CHUNK:
                return hash_bytes(data), len(data)
            hasher, size = new_hasher(), 0
            while data:
                hasher.update(data)
                size += len(data)
                data = stream.read(CHUNK)
            return hasher.hexdigest(), size
    except OSError as error:
        raise InputError(f"cannot read while hashing the tree: {error.strerror}", path=os.fsdecode(path)) from None
