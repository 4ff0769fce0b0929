"""The git operations fetch needs; every one goes through tasks.process.run."""
from __future__ import annotations

from pathlib import Path

from ..errors import CommandError, InputError
from ..process import run


def _git(directory: Path, *args: str, log: Path | None = None, capture: bool = False) -> str:
    return run(["git", "-C", directory, *args], log=log, capture=capture)


def clone(url: str, destination: Path, *, branch: str | None, treeless: bool, log: Path | None) -> None:
    """Clone into ``destination`` (a new directory) without checking out: the caller checks out the wanted
    commit, and makes the clone the source only once that worked."""
    argv = ["git", "clone", "--no-checkout"]
    if treeless:
        argv.append("--filter=tree:0")  # upstream's shallow_clone: full history, trees fetched on demand
    if branch:
        argv += ["--branch", branch]
    run([*argv, "--", url, destination], log=log)


def _commit_of(directory: Path, ref: str) -> str | None:
    try:
        return _git(directory, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", capture=True).strip()
    except CommandError:
        return None


def resolve(directory: Path, rev: str | None, branch: str | None, *, offline: bool, log: Path | None,
            where: str | None = None) -> str:
    """The commit to check out: ``rev`` (fetched only when not present), else the tip of ``branch`` (or of the
    remote's default branch), updated from the remote unless offline. ``where`` names the repository in errors
    (default: ``directory``)."""
    where = where or str(directory)
    if rev:
        commit = _commit_of(directory, rev)
        if commit is None and not offline:
            try:
                _git(directory, "fetch", "--tags", "origin", rev, log=log)
            except CommandError:  # "not our ref": the remote has no such revision
                pass
            else:
                commit = _commit_of(directory, rev) or _commit_of(directory, "FETCH_HEAD")
        if commit is None:
            raise InputError(f"revision {rev} is not in {where}" + (" (offline)" if offline else ""),
                             key="source.rev")
        return commit
    remote_ref = f"refs/remotes/origin/{branch}" if branch else "refs/remotes/origin/HEAD"
    if not offline:
        _git(directory, "fetch", "origin", *([f"+{branch}:{remote_ref}"] if branch else []), log=log)
    commit = _commit_of(directory, remote_ref)
    if commit is None:
        raise InputError(f"{remote_ref} is not in {where}" + (" (offline)" if offline else ""),
                         key="source.branch" if branch else "source.git")
    return commit


def checkout(directory: Path, commit: str, branch: str | None, *, log: Path | None) -> None:
    """Check out ``commit`` (detached, or as local ``branch`` when tracking one), dropping what an earlier fetch
    added (patches, script output): fetch only calls this on a tree it owns."""
    if branch:
        _git(directory, "checkout", "--quiet", "--force", "-B", branch, commit, log=log)
    else:
        _git(directory, "checkout", "--quiet", "--force", "--detach", commit, log=log)
    _git(directory, "clean", "--quiet", "-fd", log=log)
    if (directory / ".gitmodules").exists():
        _git(directory, "submodule", "update", "--init", "--recursive", log=log)
