"""Shared by the cookbook tests: fixture trees copied into tmp_path, sources served by a local bare git
repository and an HTTP server on 127.0.0.1, and cooking on the host triple (no Redox toolchain exists here)."""
from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import blake3

from tasks.cookbook.cook import CookRequest
from tasks.cookbook.fetch import SourcePaths
from tasks.cookbook.paths import CookPaths
from tasks.cookbook.script import ScriptOptions
from tasks.model.recipe import Recipe, load_recipe
from tasks.settings import host_triple
from tasks.toolchain.env import host_build

FIXTURES = Path(__file__).parent / "fixtures" / "cookbook"


def copy_fixtures(tmp_path: Path) -> Path:
    """A tree with ``recipes/``, ``sources/`` and ``patches/`` from the fixtures."""
    for name in ("recipes", "sources", "patches"):
        shutil.copytree(FIXTURES / name, tmp_path / name, symlinks=True)
    return tmp_path


def write_recipe(root: Path, name: str, text: str) -> Recipe:
    """``recipes/<name>/recipe.toml`` with the fixture's patches beside it, where a recipe's patches live."""
    directory = root / "recipes" / name
    directory.mkdir(parents=True, exist_ok=True)
    for patch in (root / "patches").glob("*.patch"):
        shutil.copy(patch, directory)
    (directory / "recipe.toml").write_text(text)
    return load_recipe(directory)


def git(*args: str | Path, cwd: Path | None = None) -> str:
    # Test setup only (building the "remote" repository); the code under test uses tasks.process.
    return subprocess.run(["git", *map(str, args)], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/local/bin:/usr/bin:/bin",
                               "HOME": str(cwd or "/tmp")}).stdout.strip()


def bare_repository(tmp_path: Path, source: Path) -> tuple[Path, str]:
    """A bare repository holding ``source`` as one commit on ``main``; returns its path and the commit."""
    work = tmp_path / "git-work"
    shutil.copytree(source, work)
    git("init", "-q", "-b", "main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "initial", cwd=work)
    bare = tmp_path / "served" / "repo.git"
    git("clone", "-q", "--bare", work, bare, cwd=tmp_path)
    return bare, git("rev-parse", "HEAD", cwd=work)


def make_tarball(source: Path, destination: Path, top: str = "greet-1.0") -> Path:
    with tarfile.open(destination, "w:gz") as tar:
        tar.add(source, arcname=top)
    return destination


def serve_greet_tarball(root: Path) -> tuple[Path, str]:
    """The greet fixture as ``<root>/served/greet-1.0.tar.gz``: the directory to serve and the tarball's BLAKE3."""
    served = root / "served"
    served.mkdir()
    tarball = make_tarball(root / "sources" / "greet", served / "greet-1.0.tar.gz")
    return served, blake3.blake3(tarball.read_bytes()).hexdigest()


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Served:
    url: str
    requests: list[str]


@contextmanager
def http_server(directory: Path) -> Iterator[Served]:
    """Serve ``directory`` on 127.0.0.1 (an ephemeral port) while the block runs; counts the requests."""
    handler = functools.partial(_CountingHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_address[1]}", server.requests)  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def source_paths(root: Path, recipe: Recipe) -> SourcePaths:
    return SourcePaths.for_recipe(recipe, root / "build")


def cook_paths(root: Path, recipe: Recipe, source: Path | None = None) -> CookPaths:
    return CookPaths(recipe=recipe.dir, source=source or recipe.dir / "source",
                     target=root / "build" / "cook" / recipe.name, root=root,
                     log=root / "build" / "logs" / f"cook-{recipe.name}.log")


def host_request(*dependency_stages: Path, **options: object) -> CookRequest:
    return CookRequest(cargo=host_build(), options=ScriptOptions(target=host_triple(), jobs=2, **options),
                       dependency_stages=dependency_stages)
