"""Fetch a recipe's source: git, tar, path or same_as, then its patches and script.

What fetch owns it records in a state file (what it fetched and the tree digest it left). A source that already
matches is not touched; a source without a record, or whose tree differs from the record (a user edited it in
place), is never overwritten: fetch reports it as local or dirty instead. Offline, no network is touched and
anything missing fails with a clear error.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ..atomic import atomic_path, write_text_if_changed
from ..engine.treehash import TreeHasher
from ..errors import CommandError, InputError
from ..hashing import hash_file, hash_value
from ..model.recipe import GitSource, PathSource, Recipe, SameAsSource, TarSource
from ..process import run
from . import archive, git
from .script import run_fetch_script


class FetchStatus(StrEnum):
    UNCHANGED = "unchanged"   # the source already matched the recipe
    FETCHED = "fetched"       # created or updated
    LOCAL = "local"           # a source fetch did not create (kept in tree, or no [source]): left as it is
    DIRTY = "dirty"           # edited since fetch created it: left as it is


@dataclass(frozen=True)
class SourcePaths:
    """Where a recipe's source goes, where fetch keeps its record and where downloads are cached."""

    source: Path
    state: Path
    downloads: Path

    @classmethod
    def for_recipe(cls, recipe: Recipe, build_dir: Path) -> "SourcePaths":
        """Upstream layout: ``<recipe>/source``; records and downloads under the build directory."""
        return cls(source=recipe.source_dir, state=build_dir / "fetch" / f"{recipe.name}.json",
                   downloads=build_dir / "downloads")


@dataclass(frozen=True)
class FetchResult:
    status: FetchStatus
    source: Path          # the directory to build from (for same_as: the other recipe's source)
    ident: str            # git commit, tar BLAKE3, or the tree digest of a path/local source
    message: str = ""


STATE_FORMAT = 2  # 2: trees digested by the engine's tree hash


@dataclass(frozen=True)
class _State:
    identity: str
    ident: str
    tree: str
    format: int = STATE_FORMAT


def _read_state(path: Path) -> _State | None:
    """The record of what fetch left there; None when there is none it can trust (then it touches nothing)."""
    try:
        state = _State(**json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None
    return state if state.format == STATE_FORMAT else None


def _write_state(path: Path, state: _State) -> None:
    write_text_if_changed(path, json.dumps(state.__dict__, indent=1) + "\n")


def _identity(recipe: Recipe, **fields: object) -> str:
    """What the recipe asks of its source, including the content of its patches."""
    source = recipe.source
    patches = [hash_file(recipe.dir / patch) for patch in getattr(source, "patches", [])]
    return hash_value({**fields, "patches": patches, "script": getattr(source, "script", None)})


def fetch(recipe: Recipe, paths: SourcePaths, *, trees: TreeHasher | None = None, offline: bool = False,
          log: Path | None = None, same_as_source: Path | None = None) -> FetchResult:
    """Bring ``paths.source`` to what ``recipe`` asks for. ``trees``: the engine's tree hasher, whose caches make
    the "edited since fetched?" check cost a stat walk or a ``git status`` (default: one with its caches beside
    the fetch records). ``same_as_source``: the other recipe's source directory (the caller fetches that recipe
    first)."""
    fetcher = _Fetcher(recipe, paths, trees or TreeHasher(paths.state.parent / "trees"), log)
    source = recipe.source
    if isinstance(source, SameAsSource):
        return fetcher.link_same_as(same_as_source)
    if source is None:
        return fetcher.untouched(FetchStatus.LOCAL, "recipe has no [source]")
    _check_patches_exist(recipe)
    state = _read_state(paths.state)
    found = fetched_state(paths, fetcher.trees)
    if found == "local":
        return fetcher.untouched(FetchStatus.LOCAL, "source exists but was not fetched by this build; kept")
    if found == "edited":
        return fetcher.untouched(FetchStatus.DIRTY,
                                 f"source changed since it was fetched; not updated (`doit unfetch {recipe.name} "
                                 f"--force` removes it, to fetch again)")
    if isinstance(source, GitSource):
        return fetcher.git(source, state, offline)
    if isinstance(source, TarSource):
        return fetcher.tar(source, state, offline)
    assert isinstance(source, PathSource)
    return fetcher.path(source, state)


def fetched_state(paths: SourcePaths, trees: TreeHasher) -> str:
    """What is at the source path: ``missing``, ``local`` (a source this build did not fetch), ``edited`` (since it
    was fetched) or ``fetched`` (as it was fetched)."""
    if not (paths.source.exists() or paths.source.is_symlink()):
        return "missing"
    state = _read_state(paths.state)
    if state is None:
        return "local"
    return "edited" if trees.hash(paths.source).digest != state.tree else "fetched"


def _telling_line(reason: str, marker: str) -> str:
    """The line of a failed command's output that says why (git's ``fatal:``, patch's ``FAILED``), else its first."""
    lines = [line.strip() for line in reason.splitlines()]
    return next((line for line in lines if marker in line), lines[0])


def _check_patches_exist(recipe: Recipe) -> None:
    for index, patch in enumerate(getattr(recipe.source, "patches", [])):
        if not (recipe.dir / patch).is_file():
            raise InputError(f"patch file {patch} does not exist", path=recipe.path, key=f"source.patches[{index}]")


@dataclass(frozen=True)
class _Fetcher:
    """One fetch of one recipe's source."""

    recipe: Recipe
    paths: SourcePaths
    trees: TreeHasher
    log: Path | None

    def digest(self, directory: Path) -> str:
        return self.trees.hash(directory).digest

    def untouched(self, status: FetchStatus, message: str) -> FetchResult:
        ident = self.digest(self.paths.source) if self.paths.source.is_dir() else ""
        return FetchResult(status, self.paths.source, ident, message)

    def finish(self, directory: Path) -> str:
        """Apply patches (``patch -p1``, in order) and the script to a freshly fetched tree; return its digest."""
        recipe, log = self.recipe, self.log
        for index, patch in enumerate(getattr(recipe.source, "patches", [])):
            try:
                run(["patch", "--batch", "--forward", "-p1", "-d", directory, "-i", recipe.dir / patch], log=log)
            except CommandError as error:
                raise CommandError(f"{patch} does not apply ({_telling_line(error.reason, 'FAILED')})",
                                   path=recipe.path, key=f"source.patches[{index}]") from None
        if script := getattr(recipe.source, "script", None):
            try:
                run_fetch_script(recipe, directory, script, log)
            except CommandError as error:
                raise CommandError(f"the script failed: {error.reason}", path=recipe.path,
                                   key="source.script") from None
        return self.digest(directory)

    def git(self, source: GitSource, state: _State | None, offline: bool) -> FetchResult:
        recipe, paths, log = self.recipe, self.paths, self.log
        identity = _identity(recipe, git=source.git, rev=source.rev, branch=source.branch)
        # Fetched before from another kind of source (a tar, a path): cloned afresh, replacing it once done.
        if not paths.source.exists() or (state is not None and not (paths.source / ".git").exists()):
            if offline:
                raise InputError(f"offline and {paths.source} is missing: fetch it online first", path=recipe.path,
                                 key="source.git")
            # Cloned, checked out and finished aside: a rev that does not exist leaves no half clone that the
            # next run would take for the user's own source.
            with atomic_path(paths.source) as partial:
                try:
                    git.clone(source.git, partial, branch=source.branch, treeless=bool(source.shallow_clone),
                              log=log)
                except CommandError as error:
                    raise CommandError(f"cannot clone {source.git} ({_telling_line(error.reason, 'fatal:')})",
                                       path=recipe.path, key="source.git") from None
                commit = self._resolve(partial, source, offline)
                git.checkout(partial, commit, source.branch, log=log)
                tree = self.finish(partial)
            _write_state(paths.state, _State(identity, commit, tree))
            return FetchResult(FetchStatus.FETCHED, paths.source, commit)
        commit = self._resolve(paths.source, source, offline)
        if state is not None and state.identity == identity and state.ident == commit:
            return FetchResult(FetchStatus.UNCHANGED, paths.source, commit)
        git.checkout(paths.source, commit, source.branch, log=log)
        tree = self.finish(paths.source)
        _write_state(paths.state, _State(identity, commit, tree))
        return FetchResult(FetchStatus.FETCHED, paths.source, commit)

    def _resolve(self, directory: Path, source: GitSource, offline: bool) -> str:
        try:
            return git.resolve(directory, source.rev, source.branch, offline=offline, log=self.log, where=source.git)
        except InputError as error:  # name the recipe, whose key it is
            raise InputError(error.reason, path=self.recipe.path, key=error.key) from None

    def tar(self, source: TarSource, state: _State | None, offline: bool) -> FetchResult:
        recipe, paths = self.recipe, self.paths
        identity = _identity(recipe, tar=source.tar, blake3=source.blake3)
        if state is not None and state.identity == identity and paths.source.is_dir():
            return FetchResult(FetchStatus.UNCHANGED, paths.source, state.ident)
        tarball = archive.cached_tar_path(paths.downloads, source.tar, source.blake3)
        if not tarball.exists():
            if offline:
                raise InputError(f"offline and {source.tar} is not in {paths.downloads}: fetch it online first",
                                 path=recipe.path, key="source.tar")
            try:
                archive.download(source.tar, tarball)
            except InputError as error:
                raise InputError(error.reason, path=recipe.path, key=error.key) from None
        ident = archive.verify_blake3(tarball, source.blake3, source.tar, recipe.path)
        with atomic_path(paths.source) as partial:
            archive.extract(tarball, partial)
            tree = self.finish(partial)
        _write_state(paths.state, _State(identity, ident, tree))
        return FetchResult(FetchStatus.FETCHED, paths.source, ident)

    def path(self, source: PathSource, state: _State | None) -> FetchResult:
        recipe, paths = self.recipe, self.paths
        origin = (recipe.dir / source.path).resolve()
        if not origin.is_dir():
            raise InputError(f"{origin} is not a directory", path=recipe.path, key="source.path")
        ident = self.digest(origin)
        identity = hash_value({"path": str(origin), "tree": ident})
        if state is not None and state.identity == identity and paths.source.is_dir():
            return FetchResult(FetchStatus.UNCHANGED, paths.source, ident)
        with atomic_path(paths.source) as partial:
            shutil.copytree(origin, partial, symlinks=True)
        _write_state(paths.state, _State(identity, ident, self.digest(paths.source)))
        return FetchResult(FetchStatus.FETCHED, paths.source, ident)

    def link_same_as(self, other: Path | None) -> FetchResult:
        """``source`` becomes a symlink to the other recipe's source, as upstream does."""
        recipe, paths = self.recipe, self.paths
        if other is None:
            raise InputError("the source of the recipe named by same_as was not given", path=recipe.path,
                             key="source.same_as")
        target = os.path.relpath(other, paths.source.parent)
        if paths.source.is_symlink() and os.readlink(paths.source) == target:
            return FetchResult(FetchStatus.UNCHANGED, other, "")
        if paths.source.exists() or paths.source.is_symlink():
            return self.untouched(FetchStatus.LOCAL, "source exists and is not the same_as link; kept")
        paths.source.parent.mkdir(parents=True, exist_ok=True)
        paths.source.symlink_to(target)
        return FetchResult(FetchStatus.FETCHED, other, "")
