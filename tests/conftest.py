"""Shared fixtures: the upstream corpus (read in place, never copied into the repo) and a CLI runner."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
CORPUS = (PROJECT.parent / "shared" / "corpus" / "redox-upstream").resolve()  # as the CLI resolves root=


@pytest.fixture(autouse=True, scope="session")
def no_settings_file(tmp_path_factory):
    """A developer's settings.toml (doit settings) never reaches the tests: each names its own, if any."""
    os.environ["REDOX_BUILD_SETTINGS"] = str(tmp_path_factory.mktemp("settings") / "none.toml")


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"the upstream corpus is absent: expected {CORPUS} (../shared beside the repo)")
    return CORPUS


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


def run_doit(*args: str, cwd: Path = PROJECT, env: dict | None = None, timeout: float = 300) -> Completed:
    """Run the real ``doit`` CLI of this venv on the project's dodo.py."""
    doit = Path(sys.executable).parent / "doit"
    command = [str(doit), "-f", str(PROJECT / "dodo.py"), *args]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(PROJECT), **(env or {})}, timeout=timeout)
    return Completed(result.returncode, result.stdout, result.stderr)


@pytest.fixture
def doit():
    return run_doit


@pytest.fixture(scope="session", autouse=True)
def host_tools() -> None:
    """Every host tool built before the first test (once per user, then cached): on a fresh machine building them
    takes minutes, which would otherwise fall inside the time limit of the first doit run that needs one."""
    from tasks.toolchain import hosttools
    for name in hosttools.PINNED:
        hosttools.ensure(name, PROJECT / "build")
    for name in hosttools.OWN:
        hosttools.ensure_own(name)


@pytest.fixture(scope="session")
def redoxfs_bin() -> Path:
    """The pinned redoxfs tools (built once per user, cached)."""
    from tasks.toolchain import hosttools
    return hosttools.ensure("redoxfs", PROJECT / "build")
