"""The one command runner: real processes, their output, their failures."""
from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from tasks.errors import CommandError
from tasks.process import run

LATE_STDOUT = "import sys\nfor i in range(60): print('line', i)\nprint('boom: the real reason', file=sys.stderr)\n" \
              "sys.exit(3)\n"


def test_capture_returns_stdout_and_children_see_no_terminal(tmp_path):
    assert run(["bash", "-c", "echo out; echo err >&2"], capture=True) == "out\n"
    assert run(["bash", "-c", "[ -t 1 ] && echo tty || echo pipe"], capture=True) == "pipe\n"
    log = tmp_path / "logs" / "x.log"
    run(["bash", "-c", "echo logged; echo also >&2"], log=log)
    assert log.read_text().splitlines() == ["$ bash -c 'echo logged; echo also >&2'", "logged", "also"]


def test_a_failure_names_the_command_status_tail_and_log(tmp_path):
    log = tmp_path / "x.log"
    with pytest.raises(CommandError) as caught:
        run(["bash", "-c", "for i in $(seq 50); do echo $i; done; exit 3"], log=log)
    message = str(caught.value)
    assert message.startswith("`bash -c 'for i in $(seq 50); do echo $i; done; exit 3'` failed with exit status 3")
    assert "last 20 lines of output:\n  31\n" in message and message.endswith(f"full log: {log}")


def test_the_error_message_survives_block_buffered_stdout_flushed_after_it():
    # Python's stdout to a pipe is block-buffered: its 60 lines arrive after the stderr line.
    with pytest.raises(CommandError) as caught:
        run([sys.executable, "-c", LATE_STDOUT])
    assert "boom: the real reason" in str(caught.value)


def test_a_missing_program_is_named():
    with pytest.raises(CommandError, match="command not found: no-such-tool-here"):
        run(["no-such-tool-here"])


def test_secrets_are_masked_in_the_log_the_failure_and_the_captured_output(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "x.log"
    script = 'echo "password: Some(\\"hunter22\\")"; echo "hunter22 on stderr" >&2; exit 3'
    with pytest.raises(CommandError) as failed:
        run(["sh", "-c", script], log=log, secrets=["hunter22"])
    assert "hunter22" not in str(failed.value)
    assert 'password: Some("***")' in str(failed.value) and "*** on stderr" in str(failed.value)
    assert "hunter22" not in log.read_text() and "*** on stderr" in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600 and stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    assert run(["echo", "hunter22"], capture=True, secrets=["hunter22"]) == "***\n"


RUSTC_FAILURE = """+ export CARGO_TARGET_DIR=/x
+ cargo build --release
   Compiling hello v0.1.0
error[E0425]: cannot find value `this` in this scope
 --> src/main.rs:1:13
  |
1 | fn main() { this is not rust }
  |             ^^^^ not found in this scope

warning: unused variable
error: could not compile `hello` (bin "hello") due to 1 previous error
"""


def test_a_compiler_failure_shows_its_errors_first_and_no_shell_trace(tmp_path):
    """Issue 13: the compiler's error lines and their context, not `bash -x` traces; the full log keeps all."""
    script = tmp_path / "fail.sh"
    script.write_text(f"cat >&2 <<'EOF'\n{RUSTC_FAILURE}EOF\nexit 101\n")
    log = tmp_path / "x.log"
    with pytest.raises(CommandError) as caught:
        run(["bash", str(script)], log=log)
    lines = str(caught.value).splitlines()
    assert lines[1:8] == ["its errors:", "  error[E0425]: cannot find value `this` in this scope",
                          "   --> src/main.rs:1:13", "    |", "  1 | fn main() { this is not rust }",
                          "    |             ^^^^ not found in this scope",
                          "  error: could not compile `hello` (bin \"hello\") due to 1 previous error"]
    assert not any(line.lstrip().startswith("+ ") for line in lines) and "warning: unused" not in str(caught.value)
    assert lines[-1] == f"full log: {log}" and "+ export CARGO_TARGET_DIR=/x" in log.read_text()
