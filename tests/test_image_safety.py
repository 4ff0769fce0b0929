"""The installer runs with a private /tmp and leaves nothing behind; a failed image rebuild keeps the previous image
and its stamp (issue 12, items 1 and 8), through the real CLI on a copy of the demo."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tasks.hashing import hash_file
from tasks.image import privatetmp
from tasks.settings import PROJECT_DIR
from tests.conftest import run_doit

pytestmark = pytest.mark.slow


def staging_dirs() -> set[Path]:
    return set(Path("/tmp").glob("redox_installer_*"))


def test_a_failing_installer_leaves_no_staging_tree_and_keeps_the_previous_image_and_stamp(tmp_path):
    tree = tmp_path / "demo"
    shutil.copytree(PROJECT_DIR / "demo", tree, ignore=shutil.ignore_patterns("build"))
    args = ("image", f"root={tree}", "config=config/aarch64/demo.toml", "toolchain=host")
    before = staging_dirs()
    first = run_doit(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    image = tree / "build/aarch64/demo.img"
    stamp = image.with_name(image.name + ".stamp.json")
    kept = {image: hash_file(image), stamp: hash_file(stamp)}
    log = (tree / "build/logs/image.log").read_text()
    if privatetmp.bubblewrap() is not None:  # Linux with bubblewrap (setup.sh installs it); else the shell clean-up
        assert f"$ {privatetmp.bubblewrap()} --die-with-parent --dev-bind / / --bind " in log
    # A file below a file: the installer fails while it writes the staging tree, after it has begun.
    config = tree / "config/aarch64/demo.toml"
    config.write_text(config.read_text() + '\n[[files]]\npath = "/etc/motd/below"\ndata = "x"\n')
    failed = run_doit(*args)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert {path: hash_file(path) for path in kept} == kept
    assert staging_dirs() == before  # nothing left in the host's /tmp, by either run
    assert not (tree / "build/installer-tmp").exists() and not list(image.parent.glob("*.partial"))
