"""Stage parts that need no compiler: the text stamp (git revision, source date) and the initfs's input checks."""
from __future__ import annotations

import time

import pytest

from tasks.engine.treehash import TreeHasher
from tasks.errors import InputError
from tasks.layout import Layout
from tasks.model.project import Project
from tasks.process import run
from tasks.revision import TreeRevision
from tasks.settings import Settings
from tasks.stages.initfs import Initfs
from tasks.stages.stage import Context
from tests.trees import make_tree

EPOCH = 1_700_000_000  # 2023-11-14 22:13 UTC
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_COMMITTER_DATE": f"{EPOCH + 60} +0000",
           "GIT_AUTHOR_DATE": f"{EPOCH + 60} +0000"}


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "tree", {"hello": "[package]\nversion = \"1.0\"\n"},
                     {"c.toml": "[packages]\nhello = {}\n"})


def context(tree) -> Context:
    settings = Settings.from_vars({"root": str(tree), "config": "config/c.toml"})
    return Context(Project.load(settings), Layout(settings), TreeHasher(settings.build / "trees"))


def git(tree, *args: str) -> str:
    return run(["git", "-C", tree, *args], capture=True, env={"PATH": "/usr/bin:/bin", **GIT_ENV}).strip()


def test_stamp_outside_git_uses_source_date_epoch(tree, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    stamp = TreeRevision(tree).stamp
    assert (stamp.label, stamp.date) == ("unversioned", "2023-11-14 22:13")


def test_stamp_in_git_is_the_commit_dated_by_it_dirty_once_edited_and_built_now(tree, monkeypatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    git(tree, "init", "-q")
    git(tree, "add", ".")
    git(tree, "commit", "-q", "-m", "tree")
    commit = git(tree, "rev-parse", "--short=9", "HEAD")
    before = time.time()
    stamp = TreeRevision(tree).stamp
    assert (stamp.label, stamp.date) == (commit, "2023-11-14 22:14")  # the commit's time, one minute later
    assert stamp.built in {time.strftime("%Y-%m-%d %H:%M", time.gmtime(moment)) for moment in (before, time.time())}
    (tree / "untracked.txt").write_text("not the commit's\n")
    assert TreeRevision(tree).stamp.label == commit
    # An edit of a tracked file makes it -dirty (issue 20, item 6): one signature for every edit after it, so the
    # initfs and the image are rebuilt once for the flag, not for each edit; the build time is in no signature.
    (tree / "config/c.toml").write_text("[packages]\n")
    edited = TreeRevision(tree).stamp
    assert edited.label == f"{commit}-dirty"
    (tree / "config/c.toml").write_text("[packages]\nhello = {}\n# again\n")
    assert TreeRevision(tree).stamp.identity() == edited.identity() and "built" not in edited.identity()


def test_a_bad_source_date_epoch_is_named(tree, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(InputError, match="SOURCE_DATE_EPOCH"):
        TreeRevision(tree).stamp


def test_initfs_without_base_initfs_in_the_config_says_so(tree) -> None:
    with pytest.raises(InputError, match="needs recipe 'base-initfs'") as raised:
        Initfs(context(tree)).run()
    assert raised.value.path == tree / "config/c.toml"
