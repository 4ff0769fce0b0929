"""Stamps: provenance beside each rebuilt artifact, only when it is rebuilt; text stamps from templates."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import jinja2
import pytest

from tasks.engine import (
    Engine,
    Signature,
    StampContext,
    read_stamp,
    render_stamp,
    stamp_path,
)
from tasks.engine.stamp import build_time, collect_revisions, git_revision
from tasks.errors import InputError

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=GIT_ENV,
                          text=True).stdout.strip()


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "README").write_text("hello\n")
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "initial")
    return path


def test_build_time_honours_source_date_epoch() -> None:
    assert build_time({"SOURCE_DATE_EPOCH": "0"}) == "1970-01-01T00:00:00Z"
    assert build_time({}).endswith("Z") and build_time({}) > "2024"
    with pytest.raises(InputError, match="SOURCE_DATE_EPOCH: not a whole number"):
        build_time({"SOURCE_DATE_EPOCH": "yesterday"})


def test_git_revision_and_dirty_flag(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    head = git(repo, "rev-parse", "HEAD")
    assert git_revision(repo).model_dump() == {"path": str(repo), "revision": head, "dirty": False}
    (repo / "README").write_text("changed\n")
    assert git_revision(repo).dirty
    git(repo, "checkout", "README")
    (repo / "new-file").write_text("untracked\n")
    assert git_revision(repo).dirty
    (repo / "sub").mkdir()
    assert git_revision(repo / "sub").revision == head  # a directory inside a work tree has its revision
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_revision(plain).model_dump() == {"path": str(plain), "revision": None, "dirty": False}
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "-q")
    assert git_revision(fresh).revision is None


def test_collect_revisions_names_main_and_every_source(tmp_path: Path) -> None:
    main, relibc = make_repo(tmp_path / "main"), make_repo(tmp_path / "relibc")
    revisions = collect_revisions(StampContext(main_repo=main, sources={"relibc": relibc}))
    assert set(revisions) == {"main", "relibc"}
    assert revisions["relibc"].revision == git(relibc, "rev-parse", "HEAD")


def test_stamp_content_and_it_changes_only_with_a_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    main, ion = make_repo(tmp_path / "main"), make_repo(tmp_path / "ion")
    (ion / "dirty").write_text("x")
    engine = Engine(tmp_path / "build")
    context = StampContext(main_repo=main, sources={"ion": ion}, toolchain="rustc 1.95.0; cranelift")

    def build(task: str, content: bytes) -> None:
        with engine.publisher.publish(task, Signature({"content": content.decode()}), context) as stage:
            stage.file(engine.build_dir / f"{task}.bin").write_bytes(content)

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    build("ion", b"ion v1")
    build("kernel", b"kernel v1")
    stamp = read_stamp(engine.build_dir / "ion.bin")
    assert stamp is not None
    assert stamp.model_dump() == {
        "task": "ion", "artifact": "ion.bin", "signature": Signature({"content": "ion v1"}).digest,
        "output_hash": stamp.output_hash, "toolchain": "rustc 1.95.0; cranelift", "built_at": "2023-11-14T22:13:20Z",
        "git": {"main": {"path": str(main), "revision": git(main, "rev-parse", "HEAD"), "dirty": False},
                "ion": {"path": str(ion), "revision": git(ion, "rev-parse", "HEAD"), "dirty": True}}}
    kernel_stamp = stamp_path(engine.build_dir / "kernel.bin").read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")
    build("ion", b"ion v2")
    assert stamp_path(engine.build_dir / "kernel.bin").read_bytes() == kernel_stamp
    rebuilt = read_stamp(engine.build_dir / "ion.bin")
    assert rebuilt is not None and rebuilt.built_at == "2027-01-15T08:00:00Z"
    assert rebuilt.output_hash != stamp.output_hash


def test_render_text_stamps_from_a_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    engine = Engine(tmp_path / "build")
    with engine.publisher.publish("os-release", Signature({}), StampContext(main_repo=tmp_path)) as stage:
        stage.file(engine.build_dir / "os-release").write_text("NAME=Redox\n")
    stamp = read_stamp(engine.build_dir / "os-release")
    assert stamp is not None
    text = render_stamp('BUILD_ID="{{ stamp.built_at }} {{ stamp.signature[:12] }}"\n', stamp)
    assert text == f'BUILD_ID="1970-01-01T00:00:00Z {stamp.signature[:12]}"\n'
    with pytest.raises(jinja2.UndefinedError):
        render_stamp("{{ stamp.no_such_field }}", stamp)
