"""A minimal synchronous client for QEMU's machine protocol (QMP) on a unix socket.

Stopping a session needs two commands (``qmp_capabilities``, ``system_powerdown``); the QEMU project's own
``qemu.qmp`` package is asyncio-based and still alpha, so a blocking line-oriented client is simpler here.
"""
from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from ..errors import CommandError


class Qmp:
    """One QMP connection, negotiated and ready for commands; use as a context manager."""

    def __init__(self, path: Path, timeout: float = 10.0):
        self.path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.settimeout(timeout)
        try:
            self._socket.connect(str(path))
            self._stream = self._socket.makefile("rwb")
            greeting = self._read()
            if "QMP" not in greeting:
                raise CommandError(f"not a QMP greeting: {greeting}", path=path)
            self.execute("qmp_capabilities")
        except (OSError, ValueError) as failure:
            self._socket.close()
            raise CommandError(f"QMP monitor does not answer: {failure}", path=path) from None
        except CommandError:
            self._socket.close()
            raise

    def execute(self, command: str, **arguments: Any) -> Any:
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self._stream.write(json.dumps(request).encode() + b"\n")
        self._stream.flush()
        while True:
            reply = self._read()
            if "error" in reply:
                raise CommandError(f"QMP {command}: {reply['error'].get('desc', reply['error'])}", path=self.path)
            if "return" in reply:
                return reply["return"]
            # Anything else is an asynchronous event (POWERDOWN, SHUTDOWN…): not the answer to this command.

    def _read(self) -> dict[str, Any]:
        line = self._stream.readline()
        if not line:
            raise ValueError("connection closed")
        return json.loads(line)

    def close(self) -> None:
        self._stream.close()
        self._socket.close()

    def __enter__(self) -> "Qmp":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
