"""What the console driver says when a guest does not answer (issue 18, item 5): the fork's kernel without the
project's GIC patch shows `redox login:` but never receives what is typed. Reproducing that needs the real tree's
25-minute build, so the guest here is a stand-in on a real Unix socket, as QEMU's chardev is: it prints what such a
guest printed and reads input without echoing it. The driver's code path is the real one."""
from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from tasks.errors import CommandError
from tasks.qemu.console import Console, ConsoleSettings

QUICK = ConsoleSettings(boot_timeout=3, command_timeout=3, probe_timeout=1)


class DeafGuest:
    """A console that prints ``greeting`` to each connection, then reads and discards everything typed, printing
    ``after_input`` (a getty that redraws its prompt) for each chunk."""

    def __init__(self, path: Path, greeting: bytes, after_input: bytes = b""):
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen()
        self.greeting, self.after_input = greeting, after_input
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            connection.sendall(self.greeting)
            while connection.recv(1024):
                if self.after_input:
                    connection.sendall(self.after_input)
            connection.close()

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def short_dir():
    import tempfile
    with tempfile.TemporaryDirectory(prefix="con-") as directory:  # sun_path is short
        yield Path(directory)


def test_a_login_prompt_that_never_echoes_the_user_name_is_diagnosed_as_input_not_arriving(short_dir):
    guest = DeafGuest(short_dir / "console.sock", b"Welcome\r\nredox login: ", after_input=b"\r\nredox login: ")
    try:
        with Console(short_dir / "console.sock", QUICK) as console, pytest.raises(CommandError) as raised:
            console.ready(fresh=True)
    finally:
        guest.close()
    message = str(raised.value)
    assert "never echoed `root` typed at its login prompt: input on the serial console does not reach it" in message
    assert "wrong user or password" not in message
    assert "redox login:" in message  # what was seen comes with it


class RedrawingGetty(DeafGuest):
    """The fork's getty, as it answers on the serial console: its line editor redraws the prompt with the line so
    far at every key; Enter ends the name, then it asks for a password (or, for an unknown name, prompts again)."""

    def _serve(self) -> None:
        connection, _ = self.server.accept()
        prompt = b"\x1b[1mredox login:\x1b[0m "
        connection.sendall(prompt)
        line, asking = b"", "name"
        while data := connection.recv(1024):
            for byte in data:
                if byte != 13:
                    line += bytes([byte])
                    if asking == "name":
                        connection.sendall(b"\x1b[?1000l\r\x1b[J" + prompt + line)
                elif asking == "name" and line == b"root":
                    connection.sendall(b"\r\r\n\x1b[1mpassword:\x1b[0m ")
                    line, asking = b"", "password"
                elif asking == "name":
                    connection.sendall(b"\r\r\nLogin incorrect\r\n" + prompt)
                    line = b""
                elif asking == "password":
                    connection.sendall(b"\r\nroot:~# \x1b[0m")
                    line, asking = b"", "shell"
                else:  # a shell of `echo` only, whose lines end as the fork's console ends them: \r\r\r\n; as
                    # ion, it gives up the rest of a line at a command it cannot find, silently
                    said = []
                    for part in line.split(b"; "):
                        if not part.startswith(b"echo "):
                            break
                        said.append(part.removeprefix(b"echo ").replace(b"$?", b"0"))
                    connection.sendall(b"".join(b"\r\r\r\n" + words for words in said) + b"\r\r\r\nroot:~# ")
                    line = b""


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_a_login_prompt_redrawn_while_the_name_is_typed_is_not_a_refusal(short_dir, user):
    guest = RedrawingGetty(short_dir / "console.sock", b"")
    settings = QUICK.model_copy(update={"user": user})
    try:
        with Console(short_dir / "console.sock", settings) as console:
            console._child.expect("login:")
            if user == "root":
                console._log_in()  # answered by the password prompt, then the shell's
                console._sync()
                assert console.run("echo hi there").output == "hi there"
                assert console.run("echo a line ending in a prompt-like #").status == 0
                missing = console.run("nosuch --flag")
                assert (missing.status, missing.output) == (127, "")
                assert missing.note.startswith("the shell gave up the line before its end: the command was not found")
                assert console.run("echo still answering").output == "still answering"
            else:
                with pytest.raises(CommandError, match="logging in as nobody failed"):
                    console._log_in()
    finally:
        guest.close()


def test_a_silent_console_shows_the_last_lines_of_the_sessions_log_when_this_connection_saw_none(short_dir):
    log = short_dir / "console.log"
    log.write_text("".join(f"boot line {number}\r\n" for number in range(400)) + "init: running: getty\r\n")
    guest = DeafGuest(short_dir / "console.sock", b"")
    try:
        with Console(short_dir / "console.sock", QUICK, log=log) as console, pytest.raises(CommandError) as raised:
            console.ready(fresh=True)
    finally:
        guest.close()
    message = str(raised.value)
    assert f"last 15 console (from {log}) lines:" in message
    assert message.rstrip().endswith("init: running: getty") and "boot line 399" in message
