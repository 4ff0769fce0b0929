"""Ctrl-C through the real CLI (issue 12, item 6): one line, exit status 130, the build script's children stopped,
nothing half-written left, and the interrupted task runs again next time."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tasks.cli.interrupt import MESSAGE
from tasks.settings import PROJECT_DIR, host_triple
from tests.trees import make_tree

SLOW = '''[build]
template = "custom"
script = """
mkdir -p "$COOKBOOK_STAGE/usr/share/slow"
echo begun > "$COOKBOOK_STAGE/usr/share/slow/half"
sleep 120 &
echo $! > "$COOKBOOK_ROOT/sleeper.pid"
wait
"""
'''


def as_from_a_terminal() -> None:
    """SIGINT as a shell gives it to what it starts in the foreground: a test suite started in the background by a
    non-interactive shell (`pytest &`) ignores SIGINT, and its children would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_build(root: Path) -> subprocess.Popen[str]:
    doit = Path(sys.executable).parent / "doit"
    return subprocess.Popen([str(doit), "-f", str(PROJECT_DIR / "dodo.py"), "cook:slow", f"root={root}",
                             "config=config/c.toml", f"target={host_triple()}"], cwd=PROJECT_DIR, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=as_from_a_terminal, env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)})


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("to_group", [True, False], ids=["terminal Ctrl-C (the group)", "SIGINT to doit alone"])
def test_ctrl_c_prints_one_line_exits_130_and_stops_the_scripts_children(tmp_path: Path, to_group: bool) -> None:
    root = make_tree(tmp_path / "tree", {"slow": SLOW}, {"c.toml": "[packages]\nslow = {}\n"})
    build = start_build(root)
    wait_for(root / "sleeper.pid")
    time.sleep(0.2)  # the shell's `wait`
    sleeper = int((root / "sleeper.pid").read_text())
    (os.killpg if to_group else os.kill)(build.pid, signal.SIGINT)
    stdout, stderr = build.communicate(timeout=60)
    assert build.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and MESSAGE in stderr.splitlines()
    assert not psutil.pid_exists(sleeper) or psutil.Process(sleeper).status() == psutil.STATUS_ZOMBIE
    recipe_dir = root / "build" / host_triple() / "recipes/slow"
    assert not (recipe_dir / "stage.tmp").exists() and not (recipe_dir / "stage").exists()
    # Not recorded: the next run builds it again (and is let finish quickly).
    (root / "recipes/slow/recipe.toml").write_text(SLOW.replace("sleep 120 &", "true &"))
    again = subprocess.run([str(Path(sys.executable).parent / "doit"), "-f", str(PROJECT_DIR / "dodo.py"),
                            "cook:slow", f"root={root}", "config=config/c.toml", f"target={host_triple()}"],
                           cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)})
    assert again.returncode == 0 and ".  cook:slow" in again.stdout, again.stdout + again.stderr
    assert (recipe_dir / "stage/usr/share/slow/half").read_text() == "begun\n"


@pytest.mark.parametrize("delay", [0.06, 0.1, 0.2, 0.3])
def test_ctrl_c_while_doit_starts_is_one_line_too(delay: float) -> None:
    """While Python still imports doit (the first 0.3 s), Ctrl-C gave a KeyboardInterrupt traceback (issue 19,
    item 8). A run fast enough to finish before the signal is fine too."""
    doit = Path(sys.executable).parent / "doit"
    started = subprocess.Popen([str(doit), "list"], cwd=PROJECT_DIR, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, preexec_fn=as_from_a_terminal,
                               env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)})
    time.sleep(delay)
    started.send_signal(signal.SIGINT)
    out, err = started.communicate(timeout=60)
    assert "Traceback" not in err
    assert (started.returncode, err) == (130, MESSAGE + "\n") or started.returncode == 0, (started.returncode, err)
