"""Source-tree hashing: one xxh3-128 digest over the paths, kinds and contents of every file in a tree.

The digest is defined over a *manifest*: for each regular file and symlink below the root, the entry
``<kind> <content hash> <relative path>``, sorted by path bytes. ``kind`` is ``f`` (regular file), ``x`` (regular,
owner-executable) or ``l`` (symlink, whose content is its target string). Of the mode only the executable bit counts,
as in git: permission bits that follow the umask must not make two checkouts of one revision differ. Directories
themselves do not count (as in git): an empty directory changes nothing.

Excluded everywhere: ``.git``, any directory named ``target`` that cargo made (it holds ``CACHEDIR.TAG`` or
``.rustc_info.json``; a source directory that happens to be called ``target`` still counts), the paths given
(the build directory), and in a source tree what its ``.gitignore`` files ignore, as git would (pathspec): a
file a build writes into its own source (the kernel's build.rs writes ``config.toml``, which the kernel's
``.gitignore`` lists) is generated, not an input, in a copy without ``.git`` as in a work tree.

Two ways reach the same digest:

* **git work trees** (the root holds ``.git``, and no submodules): one ``git status`` gives the HEAD commit and every
  path that differs from it — modified, staged, deleted or untracked. Only those paths are looked at; the digest is
  cached per (commit, state of those paths), so a no-op costs one git call and reads no file. Git's index already
  caches every file's stat. Files git *ignores* do not count: by git's own definition they are generated, and
  counting them would make a tree that is built in place stale forever.
* **any other tree**: a scandir walk with a persistent stat cache (path → size, mtime, ctime, inode, mode, hash): a
  file is read only when its stat changed, so ``touch`` re-reads it but changes nothing, and a no-op reads no file.

Files to read are read by a pool of threads: cold hashing waits on system calls, not on the interpreter.
"""
from __future__ import annotations

import marshal
import os
import stat
import subprocess
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CommandError, InputError
from ..hashing import hash_bytes, hash_value
from ..process import child_env
from .observe import (
    KIND_EXEC,
    KIND_FILE,
    KIND_LINK,
    RACY_WINDOW_NS,
    Exclusions,
    StatKey,
    kind_of,
    read_hash,
    scan,
    stat_key,
)

Manifest = dict[bytes, tuple[bytes, str]]  # relative path -> (kind, content hash)

CACHE_FORMAT = 2
PARALLEL_MIN_FILES = 64
BATCH_FILES = 32
GIT_STATES_KEPT = 16
MANIFESTS_KEPT = 256
# Every path that differs from HEAD (untracked included, ignored not), and HEAD itself.
GIT_STATUS = ("status", "--porcelain=v2", "-z", "--branch", "--no-renames", "--untracked-files=all", "--ignored=no")
_GIT_ENV_UNSET = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
                  "GIT_PREFIX")


@dataclass(frozen=True)
class TreeHash:
    digest: str
    method: str  # "git" or "walk"
    files: int  # entries in the manifest
    hashed_files: int  # files whose content was read by this call
    hashed_bytes: int


def default_workers() -> int:
    return min(8, 4 * (os.cpu_count() or 1))


def manifest_digest(manifest: Manifest) -> str:
    return hash_bytes(b"".join(kind + b" " + digest.encode() + b" " + path + b"\0"
                               for path, (kind, digest) in sorted(manifest.items())))


def read_hashes(root: bytes, jobs: list[tuple[bytes, bytes]], workers: int) -> list[tuple[str, int]]:
    """``read_hash`` for (relative path, kind) jobs, in order, by a thread pool when there are many."""
    def one_batch(batch: list[tuple[bytes, bytes]]) -> list[tuple[str, int]]:
        return [read_hash(root + b"/" + rel, kind) for rel, kind in batch]

    if len(jobs) < PARALLEL_MIN_FILES or workers <= 1:
        return one_batch(jobs)
    batches = [jobs[start:start + BATCH_FILES] for start in range(0, len(jobs), BATCH_FILES)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [result for batch in pool.map(one_batch, batches) for result in batch]


GITIGNORE = b".gitignore"
# The .gitignore rules in force in a directory: (the directory whose file they come from, its spec), outermost first.
IgnoreRules = tuple[tuple[bytes, object], ...]


def walk(root: bytes, exclusions: Exclusions, start: bytes = b"", *,
         directories: bool = False) -> Iterator[tuple[bytes, os.stat_result]]:
    """(relative path, lstat) of every file and symlink below ``root/start`` (and, with ``directories``, every
    directory), minus exclusions."""
    skip_git = exclusions.source
    base = root if root.endswith(b"/") else root + b"/"
    top = base + start if start else root
    inherited = {top: _outer_ignore_rules(root, start) if exclusions.source else ()}
    for directory, entries, below in scan(top):
        prefix = directory[len(base):] + b"/" if len(directory) > len(base) else b""  # its path relative to root
        rules = inherited.pop(directory, ())
        if exclusions.source and any(entry.name == GITIGNORE for entry in entries):
            rules = _with_ignore_file(rules, directory)
        for entry in entries:  # a list: scan raises for a missing directory here
            if entry.is_dir(follow_symlinks=False):
                if not exclusions.directory(entry.path, entry.name) and not _ignored(rules, entry.path, True):
                    below.append(entry.path)
                    inherited[entry.path] = rules
                    if directories:
                        yield prefix + entry.name, entry.stat(follow_symlinks=False)
            elif (entry.name != b".git" or not skip_git) and (
                    entry.is_file(follow_symlinks=False) or entry.is_symlink()) and (  # d_type: no system call
                    not _ignored(rules, entry.path, False)):
                yield prefix + entry.name, entry.stat(follow_symlinks=False)


def _with_ignore_file(rules: IgnoreRules, directory: bytes) -> IgnoreRules:
    try:
        with open(directory + b"/" + GITIGNORE, encoding="utf-8", errors="replace") as stream:
            lines = stream.read().splitlines()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return rules
    from pathspec import GitIgnoreSpec  # only trees that have a .gitignore pay for its import
    return (*rules, (directory, GitIgnoreSpec.from_lines(lines)))


def _outer_ignore_rules(root: bytes, start: bytes) -> IgnoreRules:
    """The rules of the .gitignore files between ``root`` and ``root/start`` (exclusive), for a walk from there."""
    rules: IgnoreRules = ()
    parts = start.strip(b"/").split(b"/") if start else []
    for depth in range(len(parts)):
        rules = _with_ignore_file(rules, b"/".join([root.rstrip(b"/"), *parts[:depth]]))
    return rules


def _ignored(rules: IgnoreRules, path: bytes, is_directory: bool) -> bool:
    """Whether git would ignore ``path``: the deepest .gitignore with a matching pattern decides, and within it
    the last matching pattern (a ``!`` pattern includes again)."""
    for directory, spec in reversed(rules):
        relative = os.fsdecode(path[len(directory) + 1:]) + ("/" if is_directory else "")
        if (include := spec.check_file(relative).include) is not None:
            return include
    return False


def hash_directory(path: Path, workers: int | None = None) -> str:
    """The digest of an output directory. Unlike a source tree, everything counts: empty directories and full
    permission bits are part of an artifact (an image's modes); nothing is excluded or cached."""
    root = os.fsencode(os.path.abspath(path))
    entries = list(walk(root, Exclusions(root, source=False), directories=True))
    jobs = [(rel, kind) for rel, st in entries if (kind := kind_of(st.st_mode)) is not None]
    contents = dict(zip((rel for rel, _ in jobs), read_hashes(root, jobs, workers or default_workers()), strict=True))
    return _output_tree_digest(entries, {rel: digest for rel, (digest, _) in contents.items()})


def _output_tree_digest(entries: list[tuple[bytes, os.stat_result]], contents: dict[bytes, str]) -> str:
    """An output directory's digest: every entry by its kind and full mode, a file or symlink by its content too."""
    return manifest_digest({rel: (_output_kind(st.st_mode), contents.get(rel, "-")) for rel, st in entries})


def _output_kind(mode: int) -> bytes:
    kind = b"d" if stat.S_ISDIR(mode) else b"l" if stat.S_ISLNK(mode) else b"f"
    return b"%s%04o" % (kind, stat.S_IMODE(mode))


StatEntry = tuple[StatKey, bytes, str, bool]  # stat key, kind, content hash, trusted


@dataclass
class _TreeCache:
    """One tree's persistent cache: stat entries, the last walk's digest, digests per git state."""

    path: Path
    stats: dict[bytes, StatEntry] = field(default_factory=dict)
    walk_digest: tuple[str, int] | None = None
    git_digests: dict[bytes, tuple[str, int]] = field(default_factory=dict)
    changed: bool = False

    @classmethod
    def load(cls, path: Path) -> _TreeCache:
        try:
            stats, walk_digest, git_digests = marshal.loads(path.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return cls(path)
        return cls(path, stats, walk_digest, git_digests)

    def save(self) -> None:
        if self.changed:
            from ..atomic import write_atomically  # here: the no-op's imports do without it
            write_atomically(self.path, marshal.dumps((self.stats, self.walk_digest, self.git_digests)))
            self.changed = False

    def replace_stats(self, stats: dict[bytes, StatEntry]) -> None:
        if stats != self.stats:
            self.stats, self.changed = stats, True

    def remember_git(self, key: bytes, value: tuple[str, int]) -> None:
        self.git_digests.pop(key, None)
        self.git_digests[key] = value
        while len(self.git_digests) > GIT_STATES_KEPT:
            del self.git_digests[next(iter(self.git_digests))]
        self.changed = True


@dataclass
class _Lookup:
    """Files seen in one pass: those the stat cache answers, and those still to read."""

    root: bytes
    old: dict[bytes, StatEntry]
    trust_before_ns: int  # a stat newer than this may change again unseen within its timestamp tick
    stats: dict[bytes, StatEntry] = field(default_factory=dict)
    to_read: list[tuple[bytes, bytes, os.stat_result]] = field(default_factory=list)
    hashed_bytes: int = 0

    def see(self, files: Iterable[tuple[bytes, os.stat_result]]) -> None:
        """The no-op hot loop: one dict lookup and one tuple comparison per file."""
        old, stats, to_read = self.old, self.stats, self.to_read
        for rel, st in files:
            entry = old.get(rel)
            if entry is not None and entry[3] and entry[0] == stat_key(st):
                stats[rel] = entry
            elif (kind := kind_of(st.st_mode)) is not None:
                to_read.append((rel, kind, st))

    def read(self, workers: int) -> None:
        hashes = read_hashes(self.root, [(rel, kind) for rel, kind, _ in self.to_read], workers)
        for (rel, kind, st), (digest, size) in zip(self.to_read, hashes, strict=True):
            self.stats[rel] = (stat_key(st), kind, digest, max(st.st_mtime_ns, st.st_ctime_ns) < self.trust_before_ns)
            self.hashed_bytes += size

    def manifest(self) -> Manifest:
        return {rel: (kind, digest) for rel, (_, kind, digest, _) in self.stats.items()}


class TreeHasher:
    """Hashes source trees, keeping its caches under ``cache_dir`` (one small file per tree, one blob map)."""

    def __init__(self, cache_dir: Path, exclude: Iterable[Path] = (), workers: int | None = None,
                 racy_window_ns: int = RACY_WINDOW_NS):
        self.cache_dir = Path(cache_dir)
        self.exclude = tuple(Path(path).absolute() for path in exclude)
        self.workers = workers or default_workers()
        self.racy_window_ns = racy_window_ns
        self.manifests = ManifestStore(self.cache_dir / "manifests")

    def hash(self, root: Path, *, git: bool | None = None) -> TreeHash:
        """Digest of the tree at ``root``; ``git``: True/False forces a method, None picks git for work trees."""
        root_bytes = os.fsencode(os.path.abspath(root))
        if not os.path.isdir(root_bytes):
            raise InputError("source tree does not exist", path=root)
        exclusions = Exclusions(root_bytes, self.exclude)
        if git if git is not None else is_git_tree(root_bytes):
            cache = self._cache(root_bytes, "git")
            result = self._hash_git(root_bytes, exclusions, cache)
            cache.save()
            if result is not None:
                return result
        cache = self._cache(root_bytes, "walk")
        result = self._hash_walk(root_bytes, exclusions, cache)
        cache.save()
        return result

    def output_digest(self, path: Path) -> str:
        """:func:`tasks.engine.publish.output_digest` of a published artifact, through a stat cache of its own: a
        file is read again only when its stat changed, so checking that outputs still hold what was recorded
        costs a walk of stats."""
        root = os.fsencode(os.path.abspath(path))
        try:
            top = os.lstat(root)
        except FileNotFoundError:
            raise CommandError("the task did not produce this output", path=path) from None
        if stat.S_ISDIR(top.st_mode):
            base, entries = root, list(walk(root, Exclusions(root, source=False), directories=True))
        elif kind_of(top.st_mode) is not None:
            base, entries = os.path.dirname(root), [(os.path.basename(root), top)]
        else:
            raise CommandError("output is neither a file, a symlink nor a directory", path=path)
        cache = self._cache(root, "output")
        lookup = _Lookup(base, cache.stats, time.time_ns() - self.racy_window_ns)
        lookup.see((rel, st) for rel, st in entries if not stat.S_ISDIR(st.st_mode))
        lookup.read(self.workers)
        cache.replace_stats(lookup.stats)
        cache.save()
        if not stat.S_ISDIR(top.st_mode):
            (_, (kind, digest)), = lookup.manifest().items()
            return f"{kind.decode()}:{digest}"
        return "d:" + _output_tree_digest(entries, {rel: digest for rel, (_, digest) in lookup.manifest().items()})

    def _cache(self, root: bytes, method: str) -> _TreeCache:
        key = hash_value([CACHE_FORMAT, method, os.fsdecode(root), sorted(map(str, self.exclude))])
        return _TreeCache.load(self.cache_dir / "trees" / f"{key}.marshal")

    def _hash_walk(self, root: bytes, exclusions: Exclusions, cache: _TreeCache) -> TreeHash:
        lookup = _Lookup(root, cache.stats, time.time_ns() - self.racy_window_ns)
        lookup.see(walk(root, exclusions))
        # Every entry a cache hit and as many as before: the same files with the same content. Otherwise files
        # were read; the cache is rewritten only if that changed an entry (re-reading a file still inside the
        # racy window changes nothing, and a no-op writes nothing).
        unchanged = not lookup.to_read and len(lookup.stats) == len(cache.stats)
        lookup.read(self.workers)
        if cache.walk_digest is None or not (unchanged or lookup.stats == cache.stats):
            manifest = lookup.manifest()
            cache.walk_digest = (manifest_digest(manifest), len(lookup.stats))
            cache.stats, cache.changed = lookup.stats, True
            self.manifests.keep(root, cache.walk_digest[0], manifest)
        return TreeHash(cache.walk_digest[0], "walk", cache.walk_digest[1], len(lookup.to_read), lookup.hashed_bytes)

    def _hash_git(self, root: bytes, exclusions: Exclusions, cache: _TreeCache) -> TreeHash | None:
        """The git way; None when this tree needs the walk (it has submodules)."""
        status = parse_git_status(run_git(root, *GIT_STATUS))
        if status.submodules:
            return None
        lookup = _Lookup(root, cache.stats, time.time_ns() - self.racy_window_ns)
        gone: set[bytes] = set()
        for rel in status.paths:
            if exclusions.relative(rel):
                continue
            if rel.endswith(b"/"):  # an untracked nested repository: its files count, as in the walk
                lookup.see(walk(root, exclusions, rel.rstrip(b"/")))
                continue
            try:
                st = os.lstat(root + b"/" + rel)
            except (FileNotFoundError, NotADirectoryError):
                gone.add(rel)
                continue
            if kind_of(st.st_mode) is None:
                gone.add(rel)
            else:
                lookup.see([(rel, st)])
        lookup.read(self.workers)
        cache.replace_stats(lookup.stats)
        overlay = lookup.manifest()
        key = hash_bytes(b"\0".join([status.head or b"(initial)", *sorted(gone),
                                     *(b" ".join((rel, kind, digest.encode()))
                                       for rel, (kind, digest) in sorted(overlay.items()))])).encode()
        known = cache.git_digests.get(key)
        read_files, read_bytes = len(lookup.to_read), lookup.hashed_bytes
        if known is None:
            committed = self._head_manifest(root, status.head, set(overlay) | gone, exclusions)
            if committed is None:
                return None
            manifest, head_files, head_bytes = committed
            manifest.update(overlay)
            known = (manifest_digest(manifest), len(manifest))
            cache.remember_git(key, known)
            self.manifests.keep(root, known[0], manifest)
            read_files, read_bytes = read_files + head_files, read_bytes + head_bytes
        return TreeHash(known[0], "git", known[1], read_files, read_bytes)

    def _head_manifest(self, root: bytes, head: bytes | None, overridden: set[bytes],
                       exclusions: Exclusions) -> tuple[Manifest, int, int] | None:
        """The manifest of the committed files that git reports clean, with the count and size of the files read
        for it; None when HEAD has a submodule."""
        if head is None:
            return {}, 0, 0
        blobs = _BlobCache.load(self.cache_dir / "git-blobs.marshal")
        manifest: Manifest = {}
        missing: list[tuple[bytes, bytes, bytes]] = []
        for record in run_git(root, "ls-tree", "-r", "-z", "--full-tree", head).split(b"\0"):
            if not record:
                continue
            meta, rel = record.split(b"\t", 1)
            mode, object_type, oid = meta.split(b" ")
            if object_type == b"commit":
                return None
            if rel in overridden or exclusions.relative(rel):
                continue
            kind = KIND_LINK if mode == b"120000" else KIND_EXEC if mode == b"100755" else KIND_FILE
            digest = blobs.hashes.get(oid)
            if digest is None:
                missing.append((rel, kind, oid))
            else:
                manifest[rel] = (kind, digest)
        # A clean file's work-tree content is its blob's content, so reading the work tree fills the blob map.
        hashes = read_hashes(root, [(rel, kind) for rel, kind, _ in missing], self.workers)
        for (rel, kind, oid), (digest, _) in zip(missing, hashes, strict=True):
            manifest[rel] = (kind, digest)
            blobs.hashes[oid] = digest
        if missing:
            blobs.save()
        return manifest, len(missing), sum(size for _, size in hashes)


class ManifestStore:
    """The manifests of the digests trees recently had, so that ``doit explain`` can name the files that differ
    between a recorded digest and today's. Written only when a tree's digest is computed anew (never by a no-op);
    the most recent :data:`MANIFESTS_KEPT` are kept."""

    def __init__(self, directory: Path):
        self.directory = directory

    def keep(self, root: bytes, digest: str, manifest: Manifest) -> None:
        path = self.directory / f"{digest}.marshal"
        if path.exists():
            os.utime(path)  # recently seen again: kept longer
            return
        from ..atomic import write_atomically  # here: the no-op's imports do without it
        write_atomically(path, marshal.dumps((root, manifest)))
        kept = sorted(self.directory.glob("*.marshal"), key=lambda known: known.stat().st_mtime_ns)
        for old in kept[:-MANIFESTS_KEPT]:
            old.unlink(missing_ok=True)

    def changes(self, old: str, new: str) -> tuple[str, list[tuple[str, str]]] | None:
        """(the tree's root, [(``changed``/``added``/``removed``, relative path)]) between two digests of one tree;
        None when either manifest is no longer kept."""
        try:
            root, before = marshal.loads((self.directory / f"{old}.marshal").read_bytes())
            _, after = marshal.loads((self.directory / f"{new}.marshal").read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return None
        differences = [("removed", rel) for rel in before.keys() - after.keys()]
        differences += [("added", rel) for rel in after.keys() - before.keys()]
        differences += [("changed", rel) for rel in before.keys() & after.keys() if before[rel] != after[rel]]
        return os.fsdecode(root), sorted(((kind, os.fsdecode(rel)) for kind, rel in differences), key=lambda d: d[1])


@dataclass
class _BlobCache:
    """git blob id → content hash. Blob ids name content, so an entry never goes stale."""

    path: Path
    hashes: dict[bytes, str]

    @classmethod
    def load(cls, path: Path) -> _BlobCache:
        try:
            return cls(path, marshal.loads(path.read_bytes()))
        except (OSError, EOFError, ValueError, TypeError):
            return cls(path, {})

    def save(self) -> None:
        from ..atomic import write_atomically  # here: the no-op's imports do without it
        write_atomically(self.path, marshal.dumps(self.hashes))


def is_git_tree(root: bytes) -> bool:
    """A work tree whose top is ``root`` (``.git`` directory or file) and that declares no submodules."""
    return os.path.lexists(root + b"/.git") and not os.path.lexists(root + b"/.gitmodules")


def run_git(root: bytes, *args: str) -> bytes:
    """Raw stdout of a git command in ``root``.

    Not tasks.process.run: the output is NUL-separated raw bytes (paths need not be UTF-8), and this call sits on the
    no-op path, where the per-call overhead of ``sh`` matters.
    """
    # --no-optional-locks: `git status` would otherwise refresh the index under index.lock, and a build checking a
    # source tree must never make the user's own git command in that tree fail.
    result = subprocess.run(["git", "--no-optional-locks", "-C", os.fsdecode(root), *args], capture_output=True,
                            env=child_env(unset=_GIT_ENV_UNSET))
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip()
        raise CommandError(f"`git {' '.join(args)}` failed with exit status {result.returncode}: {reason}",
                           path=os.fsdecode(root))
    return result.stdout


@dataclass(frozen=True)
class GitStatus:
    head: bytes | None  # None before the first commit
    paths: list[bytes]  # every path that differs from HEAD; untracked nested repositories end with "/"
    submodules: bool


def parse_git_status(output: bytes) -> GitStatus:
    """Parse ``git status --porcelain=v2 -z --branch``."""
    head: bytes | None = None
    paths: list[bytes] = []
    submodules = False
    records = iter(output.split(b"\0"))
    for record in records:
        tag = record[:2]
        if record.startswith(b"# branch.oid "):
            oid = record[len(b"# branch.oid "):]
            head = None if oid == b"(initial)" else oid
        elif tag in (b"1 ", b"2 ", b"u "):
            fields = record.split(b" ", {b"1 ": 8, b"2 ": 9, b"u ": 10}[tag])
            submodules |= fields[2].startswith(b"S")
            paths.append(fields[-1])
            if tag == b"2 ":  # a rename carries its source path in the next record
                paths.append(next(records))
        elif tag in (b"? ", b"! "):
            paths.append(record[2:])
    return GitStatus(head, paths, submodules)
