"""Packages from a package server (issue 14, §4) through the real CLI: a server on 127.0.0.1 started here, packages
in the current pkgar format (u32 count, LZMA2) signed with a test key, the key pinned in the tree's config; a
tampered package, a wrong key, a missing package, a server that breaks off mid-download, and offline use."""
from __future__ import annotations

import functools
import http.server
import os
import subprocess
import threading
import tomllib
from pathlib import Path

import pytest

from tasks.formats import pkgar, pkgkeys
from tasks.formats.pkgar import HeaderFormat, Packaging
from tasks.settings import host_triple
from tests.conftest import PROJECT
from tests.test_incremental import doit_command, executed, stage
from tests.trees import bash_recipes_tree

BOOT = '[source]\ngit = "https://example.org/unreachable.git"\n[build]\ntemplate = "custom"\nscript = "false"\n'


class Server:
    """A package server on 127.0.0.1 serving ``root``; ``break_off`` makes it send half of every .pkgar and close."""

    def __init__(self, root: Path):
        self.root, self.break_off = root, False
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                if outer.break_off and self.path.endswith(".pkgar"):
                    data = (outer.root / self.path.lstrip("/")).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:len(data) // 2])
                    self.close_connection = True
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=root))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("REDOX_PACKAGE_CACHE", str(tmp_path / "cache"))
    tree = bash_recipes_tree(tmp_path / "tree")
    (tree / "recipes/boot").mkdir()
    (tree / "recipes/boot/recipe.toml").write_text(BOOT)
    (tree / "config/c.toml").write_text('[packages]\nboot = "binary"\n')
    served = tmp_path / "served" / host_triple()
    served.mkdir(parents=True)
    key = pkgkeys.generate()
    pkgkeys.write_key_files(key, tmp_path / "server.pub.toml", tmp_path / "server-secret.toml")
    shutil_copy(tmp_path / "server.pub.toml", tree / "config/package-server.pub.toml")  # pinned by the tree
    serve(served, key, "boot", {"boot/bootloader.efi": b"MZ from the server"}, ["firmware"])
    serve(served, key, "firmware", {"lib/firmware/blob": b"blob"}, [])
    server = Server(tmp_path / "served")
    yield tree, server, served, key, tmp_path
    server.stop()


def serve(served: Path, key, name: str, files: dict[str, bytes], depends: list[str], version: str = "1.0") -> None:
    """``name`` on the package server: its pkgar in the server's current format (u32 count and flags, LZMA2 entries:
    the pinned installer reads neither) and its TOML."""
    content = served.parent.parent / "content" / name
    for path, data in files.items():
        (content / path).parent.mkdir(parents=True, exist_ok=True)
        (content / path).write_bytes(data)
    pkgar.create(content, served / f"{name}.pkgar", key, header_format=HeaderFormat.COUNT_U32_FLAGS,
                 packaging=Packaging.LZMA2)
    (served / f"{name}.toml").write_text(f'name = "{name}"\nversion = "{version}"\ndepends = {depends!r}\n'
                                         .replace("'", '"'))


def shutil_copy(source: Path, destination: Path) -> None:
    destination.write_bytes(source.read_bytes())


def doit(tree, *args, env=None):
    return subprocess.run(doit_command(tree, *args), cwd=PROJECT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_a_package_comes_from_the_server_once_verified_converted_and_with_its_dependencies(world):
    tree, server, served, key, tmp = world
    result = doit(tree, "pkg", f"prebuilt_url={server.url}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"download:boot", "cook:boot", "pkg:boot"} <= executed(result.stdout)
    assert (stage(tree, "boot") / "boot/bootloader.efi").read_bytes() == b"MZ from the server"
    ours = pkgkeys.load_public_key(tree / "build/cookbook/build/id_ed25519.pub.toml")
    repackaged = pkgar.open_package(tree / "build/cookbook/repo" / host_triple() / "boot.pkgar", ours)
    assert repackaged.header.flags.packaging == Packaging.UNCOMPRESSED  # LZMA2 from the server, converted
    cache = next((tmp / "cache").glob(f"*/{host_triple()}"))
    assert {path.name for path in cache.iterdir()} == {"boot.pkgar", "boot.toml", "firmware.pkgar",
                                                        "firmware.toml"}  # its dependency is followed
    assert "boot from http://127.0.0.1" in result.stderr and "depends on firmware" in result.stderr

    server.stop()  # offline from the cache: forget the download, nothing is fetched again
    assert doit(tree, "forget", "download:boot", f"prebuilt_url={server.url}").returncode == 0
    offline = doit(tree, "pkg", f"prebuilt_url={server.url}", env={"COOKBOOK_OFFLINE": "1"})
    assert offline.returncode == 0 and "download:boot" in executed(offline.stdout), offline.stderr


def fresh(tmp: Path, name: str) -> None:
    for cached in (tmp / "cache").glob(f"*/*/{name}.*"):
        cached.unlink()


@pytest.mark.parametrize("case", ["tampered", "wrong key", "missing", "broken off", "no pinned key"])
def test_a_bad_package_or_server_is_one_precise_error_and_nothing_is_cached(world, case):
    tree, server, served, key, tmp = world
    package = served / "boot.pkgar"
    expected = {
        "tampered": f"{server.url}/{host_triple()}/boot.pkgar: entry 'boot/bootloader.efi': LZMA2 data ends ",
        "wrong key": f"{server.url}/{host_triple()}/boot.pkgar: the header signature does not verify with the "
                     "trusted public key",
        "missing": f"prebuilt_url: the package server has no {server.url}/{host_triple()}/boot.toml (HTTP 404)",
        "broken off": f"prebuilt_url: the download of {server.url}/{host_triple()}/boot.pkgar broke off after",
        "no pinned key": f"{tree}/config/package-server.pub.toml: no public key of the package server {server.url} "
                         "is pinned",
    }[case]
    if case == "tampered":
        data = bytearray(package.read_bytes())
        data[-1] ^= 0xFF
        package.write_bytes(bytes(data))
    elif case == "wrong key":
        pkgkeys.write_key_files(pkgkeys.generate(), tree / "config/package-server.pub.toml", tmp / "other.toml")
    elif case == "missing":
        package.unlink()
        package.with_suffix(".toml").unlink()
    elif case == "broken off":
        server.break_off = True
    else:
        (tree / "config/package-server.pub.toml").unlink()
    result = doit(tree, "pkg", f"prebuilt_url={server.url}")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and errors[0].startswith("ERROR: download:boot: ") and expected in errors[0], output
    assert not list((tmp / "cache").glob("*/*/boot.pkgar")) and not stage(tree, "boot").exists()


@pytest.mark.parametrize("depends", ["../../../escaped", "/{tmp}/escaped", "host:escaped", "a.b.c", 42, ""])
def test_a_dependency_name_from_the_servers_metadata_never_becomes_a_path_outside_the_cache(world, depends):
    """A package's TOML is not signed: its `depends` names are checked against the package-name rules before any
    is used, and the package is refused and left out of the cache (issue 19, item 1)."""
    tree, server, served, key, tmp = world
    name = depends.format(tmp=str(tmp).strip("/")) if isinstance(depends, str) else depends
    (served / "boot.toml").write_text(f'name = "boot"\nversion = "1.0"\ndepends = [{name!r}]\n'.replace("'", '"'))
    result = doit(tree, "pkg", f"prebuilt_url={server.url}")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and errors[0].startswith(
        f"ERROR: download:boot: {server.url}/{host_triple()}/boot.toml: depends: "), output
    assert not list(tmp.rglob("escaped*")) and not list((tmp / "cache").glob("*/*/boot.*"))
    assert not stage(tree, "boot").exists()


def test_a_binary_package_without_a_recipe_comes_from_the_server_with_its_dependencies(world):
    """Issue 20, item 1: `tool = "binary"` with no recipe said "no recipe named 'tool'"; upstream's installer takes
    it from the package server. Its dependencies come from its metadata: one without a recipe (firmware) is taken
    prebuilt too, one with a recipe (lib) is built."""
    tree, server, served, key, tmp = world
    serve(served, key, "tool", {"usr/bin/tool": b"#!/bin/sh\necho served\n"}, ["firmware", "lib"], version="2.0")
    (tree / "config/c.toml").write_text('[packages]\ntool = "binary"\n')
    result = doit(tree, "pkg", f"prebuilt_url={server.url}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"download:tool", "cook:tool", "pkg:tool", "download:firmware", "pkg:firmware", "cook:lib",
            "pkg:lib"} <= executed(result.stdout)
    assert (stage(tree, "tool") / "usr/bin/tool").read_bytes() == b"#!/bin/sh\necho served\n"
    record = tomllib.loads((tree / "build/cookbook/repo" / host_triple() / "tool.toml").read_text())
    assert (record["version"], record["depends"]) == ("2.0", ["firmware", "lib"])  # what the installer follows
    assert "depends on" not in result.stderr  # its dependencies are part of the build, not a warning
    again = doit(tree, "pkg", f"prebuilt_url={server.url}")
    assert again.returncode == 0 and executed(again.stdout) == set()

    (tree / "config/c.toml").write_text('[packages]\nnope = "binary"\n')
    missing = doit(tree, "pkg", f"prebuilt_url={server.url}")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert (f"ERROR: {tree}/config/c.toml: packages.nope: no recipe named 'nope', and taken prebuilt: "
            f"prebuilt_url: the package server has no {server.url}/{host_triple()}/nope.toml (HTTP 404)") in \
        missing.stderr, missing.stderr
