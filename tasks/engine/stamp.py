"""Stamps: a small JSON manifest beside each rebuilt artifact, and text stamps rendered from it.

``<artifact>.stamp.json`` says what the artifact was built from: the input signature, the artifact's own content
hash, the git revision and dirty flag of the main repository and of each component source tree, the toolchain
fingerprint and the UTC build time (``SOURCE_DATE_EPOCH`` when set, for reproducible builds). It is written by the
publisher together with the artifact, so an artifact that is not rebuilt keeps its old stamp. Text that an
artifact carries (init.rc line 2, /etc/os-release BUILD_ID …) is rendered from a jinja2 template with the stamp.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ..errors import InputError
from .treehash import run_git

STAMP_SUFFIX = ".stamp.json"


class GitRevision(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    revision: str | None  # None: not a git work tree, or no commit yet
    dirty: bool


class Stamp(BaseModel):
    model_config = ConfigDict(frozen=True)

    task: str
    artifact: str
    signature: str
    output_hash: str
    toolchain: str
    built_at: str
    git: dict[str, GitRevision]


class StampContext(BaseModel):
    """What a task knows about its provenance: the main repository, its component sources, its toolchain."""

    model_config = ConfigDict(frozen=True)

    main_repo: Path
    sources: dict[str, Path] = {}
    toolchain: str = ""


def stamp_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + STAMP_SUFFIX)


def git_revision(path: Path) -> GitRevision:
    """HEAD and dirty flag (changed, staged or untracked files) of a work tree, in one git call."""
    if not (path / ".git").exists() and not _inside_work_tree(path):
        return GitRevision(path=str(path), revision=None, dirty=False)
    output = run_git(os.fsencode(path), "status", "--porcelain=v2", "-z", "--branch", "--untracked-files=normal")
    revision, dirty = None, False
    for record in output.split(b"\0"):
        if record.startswith(b"# branch.oid "):
            oid = record[len(b"# branch.oid "):].decode()
            revision = None if oid == "(initial)" else oid
        elif record and not record.startswith(b"#"):
            dirty = True
    return GitRevision(path=str(path), revision=revision, dirty=dirty)


def _inside_work_tree(path: Path) -> bool:
    return any((parent / ".git").exists() for parent in path.resolve().parents)


def collect_revisions(context: StampContext) -> dict[str, GitRevision]:
    """``main`` and each named source tree → its git revision and dirty flag."""
    trees = {"main": context.main_repo, **context.sources}
    return {name: git_revision(Path(path)) for name, path in trees.items()}


def build_time(env: Mapping[str, str] | None = None) -> str:
    """The build time in UTC, ISO 8601: ``SOURCE_DATE_EPOCH`` when set, else now."""
    source = os.environ if env is None else env
    epoch = source.get("SOURCE_DATE_EPOCH")
    if epoch is None:
        moment = datetime.now(UTC)
    else:
        try:
            moment = datetime.fromtimestamp(int(epoch), UTC)
        except ValueError:
            raise InputError(f"not a whole number of seconds: {epoch!r}", key="SOURCE_DATE_EPOCH") from None
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def stamp_json(stamp: Stamp) -> bytes:
    return (json.dumps(stamp.model_dump(), indent=2, sort_keys=True) + "\n").encode()


def read_stamp(artifact: Path) -> Stamp | None:
    path = stamp_path(artifact)
    if not path.exists():
        return None
    return Stamp.model_validate_json(path.read_bytes())


def render_stamp(template: str, stamp: Stamp) -> str:
    """Render text carried by an artifact (``{{ stamp.built_at }}``, ``{{ stamp.git.main.revision }}`` …)."""
    import jinja2  # here: loading the tasks (the check after an edit) renders nothing
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return environment.from_string(template).render(stamp=stamp)
