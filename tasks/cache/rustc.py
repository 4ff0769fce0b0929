"""The compile-level cache (``cache_rustc=yes``): sccache as cargo's ``RUSTC_WRAPPER`` in the cooks, storing in the
store of ``cache=`` under a prefix of its own (``rustc/``), so that a recipe whose task missed the cache recompiles
only the crates that changed, on every machine. sccache caches library crates (a binary crate is always linked
here), and never a build with a custom codegen backend (Cranelift): those run unwrapped.

sccache reads its configuration once, when its server starts: each build directory and store has a server of its
own (a socket named after them), so two builds never share a server configured for the other. sccache keys a Rust
compilation by absolute paths too (``CARGO_MANIFEST_DIR``, the source files): machines share compilations when their
tree and build directory are at the same paths (CI runners, containers, one checkout path for the team).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import CommandError
from ..hashing import hash_value
from ..process import run
from .events import events_file, note
from .store import s3_region


class RustcCache:
    def __init__(self, sccache: Path, url: str, build_dir: Path, upload: bool):
        self.sccache = sccache
        self.build_dir = build_dir
        self.env = _configuration(url, build_dir, upload)

    def wraps(self, rustflags: str) -> bool:
        """Whether a cargo build with these RUSTFLAGS can be wrapped: not with a custom codegen backend."""
        return "-Zcodegen-backend" not in rustflags

    def wrapper_env(self) -> dict[str, str]:
        return {"RUSTC_WRAPPER": str(self.sccache), **self.env}

    def count(self, task: str) -> None:
        """What sccache served the cook that just ran (its server's counts since the last cook, then zeroed)."""
        try:
            stats = json.loads(run([self.sccache, "--show-stats", "--stats-format=json"], env=self._env(),
                                   capture=True))["stats"]
            run([self.sccache, "--zero-stats"], env=self._env(), capture=True)
        except (CommandError, ValueError, KeyError):
            return  # counting is a report, never a reason to fail the cook
        hits, misses = (sum(stats[kind]["counts"].values()) for kind in ("cache_hits", "cache_misses"))
        note(events_file(self.build_dir), "rustc", task, hits=hits, misses=misses)

    def _env(self) -> dict[str, str]:
        return {**os.environ, **self.env}


def _configuration(url: str, build_dir: Path, upload: bool) -> dict[str, str]:
    parts = urlsplit(url)
    mode = "READ_WRITE" if upload else "READ_ONLY"
    socket = Path(tempfile.gettempdir()) / f"redox-sccache-{hash_value([str(build_dir), url, mode])[:16]}.sock"
    env = {"SCCACHE_SERVER_UDS": str(socket),
           "SCCACHE_IGNORE_SERVER_IO_ERROR": "1"}  # the store failing: compile here, never fail
    if parts.scheme == "file":
        return {**env, "SCCACHE_DIR": str(Path(parts.path) / "rustc"), "SCCACHE_LOCAL_RW_MODE": mode}
    prefix = "/".join(part for part in (parts.path.strip("/"), "rustc") if part) + "/"
    env |= {"SCCACHE_BUCKET": parts.hostname or "", "SCCACHE_S3_KEY_PREFIX": prefix, "SCCACHE_S3_RW_MODE": mode,
            "SCCACHE_REGION": s3_region()}
    if endpoint := os.environ.get("AWS_ENDPOINT_URL"):
        env |= {"SCCACHE_ENDPOINT": endpoint, "SCCACHE_S3_USE_SSL": "true" if endpoint.startswith("https") else "false"}
    return env
