"""The local package repository: package TOMLs, meta-packages and repo.toml as the installer reads them."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from tasks.errors import FormatError, InputError
from tasks.formats import pkgar, repo
from tasks.formats.pkgkeys import KeyPair

TARGET = "aarch64-unknown-redox"
KEY = KeyPair(b"\x42" * 32)


def make_stage(root: Path) -> Path:
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "hello").write_bytes(b"\x7fELF" + b"hello" * 2000)
    os.chmod(root / "usr" / "bin" / "hello", 0o755)
    (root / "etc").mkdir()
    (root / "etc" / "hello.conf").write_text("greeting = hi\n")
    return root


def record(name: str = "hello", version: str = "1.2.3", **fields) -> repo.PackageRecord:
    return repo.PackageRecord(name=name, version=version, target=TARGET, **fields)


@pytest.fixture
def stage(tmp_path: Path) -> Path:
    return make_stage(tmp_path / "stage")


def test_package_is_written_with_its_toml(tmp_path: Path, stage: Path) -> None:
    written = repo.publish(tmp_path / "repo", record(depends=("libc",), source_identifier="abc123",
                                                      commit_identifier="def456"), stage, KEY)
    archive = tmp_path / "repo" / TARGET / "hello.pkgar"
    package = pkgar.verify(archive, KEY.public_key)
    document = tomllib.loads((tmp_path / "repo" / TARGET / "hello.toml").read_text())
    assert document == {
        "name": "hello", "version": "1.2.3", "target": TARGET, "blake3": package.header.blake3.hex(),
        "source_identifier": "abc123", "commit_identifier": "def456",
        "storage_size": archive.stat().st_size, "network_size": archive.stat().st_size, "depends": ["libc"]}
    assert list(document) == ["name", "version", "target", "blake3", "source_identifier", "commit_identifier",
                              "storage_size", "network_size", "depends"]  # upstream's field order
    assert written == repo.load_record(tmp_path / "repo" / TARGET / "hello.toml")


def test_compressed_package_reports_its_unpacked_size(tmp_path: Path, stage: Path) -> None:
    written = repo.publish(tmp_path / "repo", record(), stage, KEY, packaging=pkgar.Packaging.LZMA2)
    unpacked = sum(path.stat().st_size for path in stage.rglob("*") if path.is_file())
    assert written.storage_size == 136 + 2 * 308 + unpacked
    assert written.network_size == (tmp_path / "repo" / TARGET / "hello.pkgar").stat().st_size
    assert written.network_size < written.storage_size


def test_old_header_format_is_passed_through(tmp_path: Path, stage: Path) -> None:
    with pytest.raises(FormatError, match="no flags"):
        repo.publish(tmp_path / "repo", record(), stage, KEY, header_format=pkgar.HeaderFormat.COUNT_U64,
                     packaging=pkgar.Packaging.LZMA2)


def test_meta_package_has_a_toml_only_and_empty_fields_are_omitted(tmp_path: Path, stage: Path) -> None:
    repo.publish(tmp_path / "repo", record("desktop"), stage, KEY)
    repo.publish(tmp_path / "repo", record("desktop", version="", depends=("hello", "orbital")), None, KEY)
    directory = tmp_path / "repo" / TARGET
    assert not (directory / "desktop.pkgar").exists()  # a stale archive from when it had files is gone
    assert (directory / "desktop.toml").read_text() == (
        f'name = "desktop"\ntarget = "{TARGET}"\ndepends = [\n    "hello",\n    "orbital",\n]\n')


def test_empty_depends_is_still_written(tmp_path: Path, stage: Path) -> None:
    repo.publish(tmp_path / "repo", record(), stage, KEY)
    assert tomllib.loads((tmp_path / "repo" / TARGET / "hello.toml").read_text())["depends"] == []


def test_meta_package_with_files_and_versioned_package_without_are_errors(tmp_path: Path, stage: Path) -> None:
    with pytest.raises(InputError, match="meta-package"):
        repo.publish(tmp_path / "repo", record(version=""), stage, KEY)
    with pytest.raises(InputError, match="no stage"):
        repo.publish(tmp_path / "repo", record(), None, KEY)


def test_publishing_is_deterministic(tmp_path: Path, stage: Path) -> None:
    for copy in ("a", "b"):
        repo.publish(tmp_path / copy, record(), make_stage(tmp_path / f"stage-{copy}"), KEY)
        repo.write_index(tmp_path / copy / TARGET)
    for name in ("hello.pkgar", "hello.toml", "repo.toml"):
        assert (tmp_path / "a" / TARGET / name).read_bytes() == (tmp_path / "b" / TARGET / name).read_bytes()


def test_failed_publish_keeps_the_previous_package(tmp_path: Path, stage: Path) -> None:
    repo.publish(tmp_path / "repo", record(), stage, KEY)
    directory = tmp_path / "repo" / TARGET
    before = {path.name: path.read_bytes() for path in directory.iterdir()}
    os.mkfifo(stage / "etc" / "fifo")
    with pytest.raises(FormatError):
        repo.publish(tmp_path / "repo", record(version="2.0"), stage, KEY)
    assert {path.name: path.read_bytes() for path in directory.iterdir()} == before


def test_index_lists_every_package_sorted(tmp_path: Path, stage: Path) -> None:
    hello = repo.publish(tmp_path / "repo", record("hello"), stage, KEY)
    repo.publish(tmp_path / "repo", record("base", version=""), None, KEY)
    repo.publish(tmp_path / "repo", record("acid", version="", depends=("hello",)), None, KEY)
    directory = tmp_path / "repo" / TARGET
    assert repo.write_index(directory) == {"acid": "", "base": "", "hello": hello.blake3}
    assert (directory / "repo.toml").read_text() == (
        f'[packages]\nacid = ""\nbase = ""\nhello = "{hello.blake3}"\n')
    repo.write_index(directory, build_id="0123abc")  # reads its own previous output without trouble
    assert tomllib.loads((directory / "repo.toml").read_text()) == {
        "build_id": "0123abc", "packages": {"acid": "", "base": "", "hello": hello.blake3}}


def test_index_falls_back_to_the_version_without_a_hash(tmp_path: Path) -> None:
    (tmp_path / "x.toml").write_text(f'name = "x"\nversion = "0.1"\ntarget = "{TARGET}"\n')
    assert repo.write_index(tmp_path) == {"x": "0.1"}


def test_unknown_fields_are_ignored_as_upstream_does(tmp_path: Path) -> None:
    (tmp_path / "x.toml").write_text(f'name = "x"\ntarget = "{TARGET}"\npatch_identifier = "p"\n')
    assert repo.load_record(tmp_path / "x.toml") == repo.PackageRecord(name="x", target=TARGET)


@pytest.mark.parametrize("text, key", [('name = "x"\n', "target"), ('name = "x"\ntarget = "t"\nstorage_size = "big"\n',
                                                                     "storage_size")])
def test_malformed_package_toml_names_the_field(tmp_path: Path, text: str, key: str) -> None:
    (tmp_path / "x.toml").write_text(text)
    with pytest.raises(FormatError) as error:
        repo.load_record(tmp_path / "x.toml")
    assert error.value.key == key and error.value.path == tmp_path / "x.toml"


@pytest.mark.parametrize("name", ["gcc", "gcc.libs", "host:gcc", "target:gcc.libs", "libstdc++"])
def test_valid_package_names(name: str) -> None:
    repo.check_package_name(name)


@pytest.mark.parametrize("name", ["", "a/b", "a\0b", "a.b.c", "a:b", "host:", "host:a:b", "host:host:a"])
def test_invalid_package_names(name: str) -> None:
    with pytest.raises(InputError, match="invalid package name"):
        repo.check_package_name(name)
