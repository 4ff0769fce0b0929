"""Source-tree hashing on real files and real git repositories."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tasks.engine.treehash import Exclusions, TreeHasher, hash_directory, walk
from tasks.errors import InputError

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=GIT_ENV)


def make_tree(root: Path, files: int = 100) -> Path:
    for index in range(files):
        path = root / f"dir{index % 7}" / f"sub{index % 3}" / f"file{index}.rs"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"fn f{index}() {{}}\n" * (index % 5 + 1))
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "link").symlink_to("dir0/sub0/file0.rs")
    return root


def make_repo(root: Path, files: int = 100) -> Path:
    make_tree(root, files)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


@pytest.fixture
def hasher(tmp_path: Path) -> TreeHasher:
    # Window 0: files just written count as stable, so cache hits show in these fast tests. Tests of edits use
    # `careful`, with the real window, so a same-size edit within one timestamp tick is still seen.
    return TreeHasher(tmp_path / "cache", racy_window_ns=0)


@pytest.fixture
def careful(tmp_path: Path) -> TreeHasher:
    return TreeHasher(tmp_path / "cache-careful")


def test_second_walk_reads_no_file(tmp_path: Path, hasher: TreeHasher) -> None:
    tree = make_tree(tmp_path / "src")
    first = hasher.hash(tree)
    second = hasher.hash(tree)
    assert first.method == second.method == "walk"
    assert first.hashed_files == first.files == 102
    assert second.hashed_files == 0 and second.digest == first.digest


def test_touch_rereads_files_but_keeps_digest_and_stores_new_stat(tmp_path: Path, hasher: TreeHasher) -> None:
    tree = make_tree(tmp_path / "src")
    before = hasher.hash(tree)
    later = time.time() - 3600  # a different mtime; a future one would never be trusted
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.utime(path, (later, later))
    touched = hasher.hash(tree)
    again = hasher.hash(tree)
    assert touched.hashed_files == 101 and touched.digest == before.digest
    assert again.hashed_files == 0 and again.digest == before.digest


def test_one_byte_edit_changes_digest(tmp_path: Path, careful: TreeHasher) -> None:
    tree = make_tree(tmp_path / "src")
    before = careful.hash(tree).digest
    target = tree / "dir3" / "sub0" / "file3.rs"
    data = bytearray(target.read_bytes())
    data[0] ^= 1  # same size, within the same timestamp tick as the first hash: the racy window catches it
    target.write_bytes(bytes(data))
    assert careful.hash(tree).digest != before
    data[0] ^= 1
    target.write_bytes(bytes(data))
    assert careful.hash(tree).digest == before


def test_edit_that_restores_size_and_mtime_is_seen_through_ctime(tmp_path: Path, hasher: TreeHasher) -> None:
    tree = make_tree(tmp_path / "src")
    target = tree / "dir1" / "sub1" / "file1.rs"
    time.sleep(0.05)  # past a timestamp tick, so ctime moves below
    before = hasher.hash(tree).digest
    stat = target.stat()
    time.sleep(0.05)
    target.write_bytes(target.read_bytes().upper())
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert hasher.hash(tree).digest != before


def test_symlink_target_counts_and_differs_from_a_file(tmp_path: Path, hasher: TreeHasher) -> None:
    tree = make_tree(tmp_path / "src")
    before = hasher.hash(tree).digest
    (tree / "link").unlink()
    (tree / "link").symlink_to("dir0/sub0/file7.rs")
    retargeted = hasher.hash(tree).digest
    (tree / "link").unlink()
    (tree / "link").write_text("dir0/sub0/file7.rs")
    as_file = hasher.hash(tree).digest
    assert len({before, retargeted, as_file}) == 3


def test_executable_bit_counts_other_mode_bits_do_not(tmp_path: Path, hasher: TreeHasher) -> None:
    tree = make_tree(tmp_path / "src")
    before = hasher.hash(tree).digest
    (tree / "dir2" / "sub2" / "file2.rs").chmod(0o600)
    assert hasher.hash(tree).digest == before
    (tree / "dir2" / "sub2" / "file2.rs").chmod(0o744)
    assert hasher.hash(tree).digest != before


def test_rename_and_delete_count_empty_directory_does_not(tmp_path: Path, hasher: TreeHasher) -> None:
    tree = make_tree(tmp_path / "src")
    before = hasher.hash(tree).digest
    (tree / "empty").mkdir()
    assert hasher.hash(tree).digest == before
    (tree / "run.sh").rename(tree / "run2.sh")
    renamed = hasher.hash(tree)
    (tree / "run2.sh").unlink()
    deleted = hasher.hash(tree)
    assert len({before, renamed.digest, deleted.digest}) == 3
    assert deleted.files == 101


def test_exclusions(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src")
    build = tree / "build"
    hasher = TreeHasher(tmp_path / "cache", exclude=[build], racy_window_ns=0)
    before = hasher.hash(tree).digest
    (tree / ".git").mkdir()
    (tree / ".git" / "HEAD").write_text("ref: x\n")
    (tree / "dir1" / ".git").write_text("gitdir: elsewhere\n")
    cargo_target = tree / "target"
    (cargo_target / "debug").mkdir(parents=True)
    (cargo_target / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n")
    (cargo_target / "debug" / "app").write_bytes(b"\x7fELF")
    (tree / "dir2" / "target").mkdir()
    (tree / "dir2" / "target" / ".rustc_info.json").write_text("{}")
    build.mkdir()
    (build / "image.bin").write_bytes(b"x" * 100)
    assert hasher.hash(tree, git=False).digest == before
    (tree / "dir3" / "target").mkdir()
    (tree / "dir3" / "target" / "source.rs").write_text("a source directory called target still counts\n")
    assert hasher.hash(tree, git=False).digest != before


def test_non_utf8_file_name(tmp_path: Path, hasher: TreeHasher) -> None:
    tree = make_tree(tmp_path / "src")
    before = hasher.hash(tree).digest
    (Path(os.fsdecode(bytes(tree) + b"/caf\xe9"))).write_text("latin-1 name\n")
    assert hasher.hash(tree).digest != before


def test_parallel_readers_give_the_serial_digest(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src", files=400)
    serial = TreeHasher(tmp_path / "serial", workers=1).hash(tree)
    parallel = TreeHasher(tmp_path / "parallel", workers=8).hash(tree)
    assert serial.digest == parallel.digest and parallel.hashed_files == 402


def test_git_tree_with_dirty_and_untracked_files_equals_the_walk(tmp_path: Path, hasher: TreeHasher) -> None:
    repo = make_repo(tmp_path / "repo")
    assert hasher.hash(repo).method == "git"
    (repo / "dir0" / "sub1" / "file1.rs").write_text("modified\n")
    (repo / "dir4" / "sub1" / "file4.rs").unlink()
    (repo / "dir5" / "sub2" / "file5.rs").write_text("staged\n")
    git(repo, "add", "dir5/sub2/file5.rs")
    (repo / "dir6" / "sub0" / "file6.rs").chmod(0o755)
    (repo / "new" / "deep").mkdir(parents=True)
    (repo / "new" / "deep" / "untracked.rs").write_text("untracked\n")
    (repo / "link").unlink()
    (repo / "link").symlink_to("elsewhere")
    git(repo, "mv", "dir2/sub2/file2.rs", "moved.rs")
    by_git = hasher.hash(repo)
    by_walk = hasher.hash(repo, git=False)
    plain = tmp_path / "plain"
    shutil.copytree(repo, plain, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    by_copy = hasher.hash(plain)
    assert by_git.method == "git" and by_copy.method == "walk"
    assert by_git.digest == by_walk.digest == by_copy.digest
    assert by_git.files == by_walk.files
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "everything")
    assert hasher.hash(repo).digest == by_copy.digest


def test_git_noop_reads_no_file_and_edit_is_seen(tmp_path: Path, hasher: TreeHasher, careful: TreeHasher) -> None:
    repo = make_repo(tmp_path / "repo", files=300)
    first = hasher.hash(repo)
    assert first.hashed_files == first.files == 302
    second = hasher.hash(repo)
    assert second.hashed_files == 0 and second.digest == first.digest
    target = repo / "dir1" / "sub1" / "file1.rs"
    original = target.read_bytes()
    careful_before = careful.hash(repo).digest
    target.write_bytes(original.replace(b"f1", b"g1"))
    edited = careful.hash(repo)
    assert edited.digest != careful_before and edited.hashed_files == 1
    target.write_bytes(original)
    assert careful.hash(repo).digest == careful_before == first.digest


def test_git_touch_changes_nothing(tmp_path: Path, hasher: TreeHasher) -> None:
    repo = make_repo(tmp_path / "repo")
    before = hasher.hash(repo).digest
    later = time.time() - 3600  # a different mtime; a future one would never be trusted
    for path in repo.rglob("*.rs"):
        os.utime(path, (later, later))
    after = hasher.hash(repo)
    assert after.digest == before and after.hashed_files == 0


def test_git_ignored_files_do_not_count(tmp_path: Path, hasher: TreeHasher) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / ".gitignore").write_text("*.o\n/out/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore")
    before = hasher.hash(repo).digest
    (repo / "dir0" / "x.o").write_bytes(b"object")
    (repo / "out").mkdir()
    (repo / "out" / "log").write_text("generated\n")
    assert hasher.hash(repo).digest == before


def test_a_tree_without_git_leaves_out_what_its_gitignore_files_ignore_as_git_does(tmp_path: Path,
                                                                                   hasher: TreeHasher) -> None:
    """The real kernel's build.rs writes config.toml into its source, which its .gitignore lists: in a copy without
    .git that file must not make the kernel stale either (issue 18, also seen). The walk agrees with git."""
    tree = make_tree(tmp_path / "kernel")
    (tree / ".gitignore").write_text("target\n/config.toml\n*.o\n!keep.o\n")
    (tree / "dir1" / ".gitignore").write_text("generated/\n")
    (tree / "dir1" / "sub0" / "config.toml").write_text("not at the top: counts\n")
    before = hasher.hash(tree)
    assert before.method == "walk" and before.files == 102 + 3
    (tree / "config.toml").write_text("written by build.rs\n")
    (tree / "dir0" / "x.o").write_bytes(b"object")
    (tree / "dir1" / "sub1" / "generated").mkdir()
    (tree / "dir1" / "sub1" / "generated" / "bindings.rs").write_text("// generated\n")
    (tree / "target").mkdir()
    (tree / "target" / "notes").write_text("not cargo's, yet ignored\n")
    assert hasher.hash(tree).digest == before.digest
    (tree / "dir0" / "keep.o").write_bytes(b"included again by !keep.o")
    assert hasher.hash(tree).digest != before.digest
    # a walk from a subdirectory (an untracked nested tree) keeps the outer rules
    assert not any(rel.endswith(b"bindings.rs") for rel, _ in walk(os.fsencode(tree), Exclusions(os.fsencode(tree)),
                                                                   b"dir1/sub1"))
    git(tree, "init", "-q")
    git(tree, "add", "-A")
    git(tree, "commit", "-qm", "all")
    assert hasher.hash(tree).method == "git" and hasher.hash(tree).digest == hasher.hash(tree, git=False).digest


def test_git_without_commits_equals_the_walk(tmp_path: Path, hasher: TreeHasher) -> None:
    tree = make_tree(tmp_path / "repo")
    git(tree, "init", "-q")
    by_git = hasher.hash(tree)
    assert by_git.method == "git" and by_git.digest == hasher.hash(tree, git=False).digest


def test_untracked_nested_repository_counts_like_the_walk(tmp_path: Path, hasher: TreeHasher) -> None:
    repo = make_repo(tmp_path / "repo")
    make_repo(repo / "vendor" / "nested", files=10)
    by_git = hasher.hash(repo)
    assert by_git.digest == hasher.hash(repo, git=False).digest
    assert by_git.files == 102 + 12


def test_tree_with_submodules_is_walked(tmp_path: Path, hasher: TreeHasher) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / ".gitmodules").write_text('[submodule "x"]\n\tpath = x\n')
    assert hasher.hash(repo).method == "walk"


def test_cache_survives_a_new_hasher_and_a_corrupt_cache_file(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src")
    first = TreeHasher(tmp_path / "cache", racy_window_ns=0).hash(tree)
    assert TreeHasher(tmp_path / "cache", racy_window_ns=0).hash(tree).hashed_files == 0
    for cache_file in (tmp_path / "cache" / "trees").iterdir():
        cache_file.write_bytes(b"garbage")
    again = TreeHasher(tmp_path / "cache", racy_window_ns=0).hash(tree)
    assert again.digest == first.digest and again.hashed_files == 102


def test_hash_directory_of_outputs_counts_everything(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "out")
    digests = [hash_directory(tree)]
    (tree / "empty").mkdir()
    digests.append(hash_directory(tree))
    (tree / "dir1" / "sub1" / "file1.rs").chmod(0o600)
    digests.append(hash_directory(tree))
    (tree / "empty").chmod(0o700)
    digests.append(hash_directory(tree))
    (tree / "target").mkdir()
    (tree / "target" / "CACHEDIR.TAG").write_text("tag")
    digests.append(hash_directory(tree))
    assert len(set(digests)) == len(digests)
    assert hash_directory(tree, workers=1) == digests[-1]


def test_git_exclusions_match_the_walk(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    build = repo / "build"
    hasher = TreeHasher(tmp_path / "cache", exclude=[build], racy_window_ns=0)
    before = hasher.hash(repo)
    build.mkdir()
    (build / "image.bin").write_bytes(b"untracked, not ignored, but the build directory")
    (repo / "target" / "debug").mkdir(parents=True)
    (repo / "target" / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n")
    (repo / "target" / "debug" / "app").write_bytes(b"\x7fELF")
    after = hasher.hash(repo)
    assert after.method == "git" and after.digest == before.digest
    assert after.digest == hasher.hash(repo, git=False).digest


def test_a_missing_source_tree_is_a_one_line_input_error(tmp_path: Path, hasher: TreeHasher) -> None:
    with pytest.raises(InputError) as failure:
        hasher.hash(tmp_path / "no-such-source")
    assert str(failure.value).endswith("no-such-source: source tree does not exist")
