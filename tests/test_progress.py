"""What a build shows while it runs (issue 13): a line per task start and end without a terminal, rich's live
display on one (a real pseudo-terminal), a failure shown once, per-run logs; and a no-op that never imports rich."""
from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest

from tasks.logs import KEPT, last_line, start_run_log
from tests.conftest import PROJECT
from tests.processes import run_in_terminal
from tests.test_incremental import doit_command
from tests.trees import bash_recipes_tree

BUILT = {"toolchain", "cook:lib", "cook:app", "cook:other", "pkg:lib", "pkg:app", "pkg:other"}


@pytest.fixture
def tree(tmp_path):
    return bash_recipes_tree(tmp_path / "tree")


def piped(root, *args, env=None):
    return subprocess.run(doit_command(root, *(args or ("pkg",))), cwd=PROJECT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_without_a_terminal_each_task_gives_a_line_when_it_starts_and_one_with_its_duration_when_it_ends(tree):
    result = piped(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for task in BUILT:
        start = lines.index(f".  {task}")
        end = next(index for index, line in enumerate(lines) if re.fullmatch(rf"ok {task} \(\d+\.\d s\)", line))
        assert start < end
    assert "\x1b[" not in result.stdout  # no escape sequences into a pipe


def test_a_failure_is_shown_once_with_its_reason_first_and_then_its_log(tree):
    (tree / "recipes/lib/recipe.toml").write_text(
        '[build]\ntemplate = "custom"\nscript = """\necho compiling >&2\n'
        'echo "error[E0425]: cannot find value x in this scope" >&2\necho " --> src/main.rs:1:13" >&2\n'
        'echo >&2\nexit 101\n"""\n')
    result = piped(tree)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and errors[0].startswith("ERROR: cook:lib: cook lib: `bash -ex")
    after = output.split(errors[0] + "\n", 1)[1].splitlines()
    assert after[:3] == ["its errors:", "  error[E0425]: cannot find value x in this scope", "   --> src/main.rs:1:13"]
    assert "compiling" not in after and not any(line.lstrip().startswith("+ ") for line in after)
    log = next(line for line in after if line.startswith("full log: ")).removeprefix("full log: ")
    assert re.search(r"build/logs/cook-lib/\d{8}T\d{6}Z-\d+\.log$", log)
    assert "TaskFailed" not in output and "<stderr>" not in output and "####" not in output
    assert output.count("cannot find value x") == 1
    # the tasks the run never reached are counted too (issue 20, item 8): app's cook, the packages, maybe other's
    summary = re.search(r"^1 task failed \(cook:lib\), (\d+) not started \(the build stopped at the failure; "
                        r"--continue builds what does not need it\), (\d+) run, \d+ up to date$", result.stdout,
                        re.MULTILINE)
    assert summary and int(summary[1]) + int(summary[2]) == len(BUILT) - 1, result.stdout


def test_with_continue_the_tasks_a_failure_leaves_out_are_named_as_not_run_and_counted(tree):
    (tree / "recipes/lib/recipe.toml").write_text('[build]\ntemplate = "custom"\nscript = "exit 3"\n')
    result = piped(tree, "--continue", "pkg")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "internal error" not in output and "Traceback" not in output
    assert [line for line in output.splitlines() if line.startswith("ERROR: ")] == [
        line for line in output.splitlines() if line.startswith("ERROR: cook:lib: ")]
    # app needs lib: its cook and both packages are left out, each said once; other is built
    left_out = re.findall(r"^-- not run: (\S+) \(it needs (\S+), which failed\)$", result.stdout, re.MULTILINE)
    assert sorted(left_out) == [("cook:app", "cook:lib"), ("pkg:app", "cook:app"), ("pkg:lib", "cook:lib")]
    assert "ok pkg:other" in result.stdout
    assert re.search(r"^1 task failed \(cook:lib\), 3 not run \(a task they need failed\), \d+ run, \d+ up to date$",
                     result.stdout, re.MULTILINE), result.stdout


def test_on_a_terminal_the_live_display_counts_tasks_and_shows_each_running_one(tree):
    first, output = run_in_terminal(doit_command(tree, "pkg"), env={"SLOW": "1"})
    assert first == 0, output
    assert re.search(r"\d of 7 tasks.* · 1 running", output)
    assert re.search(r"cook:lib\S*\s+\d\.\d s", output)  # the running task and its elapsed time
    assert "+ sleep 1" in output  # the last line of its log
    for task in BUILT:
        assert re.search(rf"✓\S* {re.escape(task)} \S*\d+\.\d s", output), task
    assert output.rstrip().endswith("\x1b[2K") and "\x1b[?25h" in output  # the display is gone, the cursor back
    (tree / "recipes/lib/source/data.txt").write_text("changed\n")
    again, output = run_in_terminal(doit_command(tree, "pkg"), env={"SLOW": "1"})
    assert again == 0, output
    assert re.search(r"cook:lib\S*\s+\d\.\d s / ~1\.\d s", output)  # against the time it took last time


COUNTER = re.compile(r"^(\d+) of (\d+) tasks · (\d+) running")
FINISHED = re.compile(r"^✓ (\S+) \d")
RUNNING = re.compile(r"^  (\S+)\s+\d+\.\d s(?: / ~\S+ s)?\s*(.*)$")


def frames(output: str, columns: int = 120, rows: int = 60):
    """Each screen a terminal shows, replayed by pyte: one per redraw of the live display."""
    import pyte
    screen = pyte.Screen(columns, rows)
    stream = pyte.Stream(screen)
    for chunk in re.split(r"(?=\x1b\[\?25l|\r\x1b\[2K)", output):
        stream.feed(chunk)
        yield [line.rstrip() for line in screen.display]


def test_with_two_jobs_every_frame_of_the_live_display_tells_the_truth(tree):
    """Issue 20, item 4: between two timed refreshes, a line printed above the display repeated the display as last
    drawn: finished tasks in the running block, the count behind, and the log column showing a log's header."""
    status, output = run_in_terminal(doit_command(tree, "-n", "2", "pkg"), env={"SLOW": "1"}, columns=120)
    assert status == 0, output
    summary = re.search(r"(\d+) up to date", output)  # no summary when every task ran
    up_to_date = int(summary.group(1)) if summary else 0
    shown = 0
    for number, screen in enumerate(frames(output)):
        finished = {match[1] for line in screen if (match := FINISHED.match(line))}
        counters = [(index, match) for index, line in enumerate(screen) if (match := COUNTER.match(line))]
        if not counters:
            continue
        (index, counter), = counters  # one display, not a stale copy above it
        running = {match[1]: match[2] for line in screen[index + 1:] if (match := RUNNING.match(line))}
        done, total, count = (int(group) for group in counter.groups())
        assert not finished & running.keys(), (number, screen)
        assert count == len(running) and total == len(BUILT), (number, screen)
        assert len(finished) <= done <= len(finished) + up_to_date, (number, screen)
        assert not any(log.startswith("# ") or log == "}" for log in running.values()), (number, screen)
        shown += 1
    assert shown >= 3  # the display was seen changing


def test_a_no_op_imports_neither_rich_nor_doit(tree):
    """The evidence answers before doit is imported (tasks.cli.invocation), and the progress display is never made."""
    assert piped(tree).returncode == 0
    status, output = run_in_terminal(doit_command(tree, "pkg"), env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert status == 0 and "nothing changed since the last run" in output
    assert re.search(r"\|\s+tasks\.cli\.invocation\b", output)  # the import log
    assert not re.search(r"\|\s+(rich|doit)\b", output)


def test_each_run_of_a_task_has_its_own_log_with_a_header_and_the_latest_at_a_stable_path(tree):
    assert piped(tree).returncode == 0
    (tree / "recipes/lib/source/data.txt").write_text("changed\n")
    assert piped(tree).returncode == 0
    logs = tree / "build/logs"
    runs = sorted((logs / "cook-lib").iterdir())
    assert len(runs) == 2 and [path.name for path in (logs / "cook-other").iterdir()] != []
    assert (logs / "cook-lib.log").resolve() == runs[-1]
    header = runs[-1].read_text().splitlines()[:2]
    assert re.fullmatch(r"# cook:lib, run at .* by `doit -f \S+/dodo.py pkg root=\S+ config=config/c.toml "
                        r"target=\S+`", header[0])
    assert re.fullmatch(r"# signature [0-9a-f]{32} \(code, .*source.*\)", header[1])
    assert runs[-1].stat().st_mode & 0o777 == 0o600 and (logs / "cook-lib").stat().st_mode & 0o777 == 0o700


def test_only_the_last_runs_are_kept(tmp_path):
    stable = tmp_path / "logs" / "cook-x.log"
    for number in range(KEPT + 3):
        run = start_run_log(stable, [f"run {number}"])
        os.utime(run, (number, number))
        run.rename(run.with_name(f"2026{number:04d}.log"))  # distinct names, in order
        stable.unlink()
        stable.symlink_to(run.with_name(f"2026{number:04d}.log"))
    kept = sorted(path.name for path in (tmp_path / "logs" / "cook-x").iterdir())
    assert len(kept) == KEPT and kept[-1] == f"2026{KEPT + 2:04d}.log"
    assert last_line(stable) == f"# run {KEPT + 2}"


def test_a_reader_that_goes_away_stops_the_output_not_the_build(tree):
    """`doit pkg | head -1`: the first line is read, the pipe closes, and the build goes on to the end, unseen (no
    BrokenPipeError traceback, status 0), so that the next run has nothing to do."""
    command = " ".join(shlex.quote(arg) for arg in doit_command(tree, "pkg"))
    errors = shlex.quote(str(tree / "err.txt"))
    result = subprocess.run(["bash", "-c", f"set -o pipefail; {command} 2>{errors} | head -1"], cwd=PROJECT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.count("\n") == 1, (tree / "err.txt").read_text()
    assert "Traceback" not in (tree / "err.txt").read_text() and "BrokenPipe" not in (tree / "err.txt").read_text()
    assert "nothing changed since the last run" in piped(tree).stdout
