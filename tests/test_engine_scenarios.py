"""The engine's contract on a small graph, driven the way the doit integration drives it (uptodate check, then the
action publishing under a signature): no-op, touch, one-byte edit, early cutoff, env and toolchain changes.

The graph runner here is a few lines of topological order standing in for doit, which this package must not import;
the sources, artifacts, stamps and state are real files.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tasks.engine import Engine, Signature, StampContext, env_components, verify_stamp

# task -> (its source directory, its dependencies, the environment variables it reads)
GRAPH = {"relibc": ("relibc", [], []), "base": ("base", ["relibc"], ["RUSTFLAGS"]),
         "ion": ("ion", ["relibc"], []), "image": ("image", ["base", "ion"], [])}


class Build:
    def __init__(self, root: Path):
        self.root = root
        self.engine = Engine(root / "build", workers=2)
        self.toolchain = "rustc 1.95.0 cranelift"
        for name in GRAPH:
            source = root / "src" / name
            source.mkdir(parents=True)
            (source / "main.rs").write_text(f"// {name}\nfn {name}() {{}}\n")

    def signature(self, task: str) -> Signature:
        source, deps, env = GRAPH[task]
        return Signature({"source": self.engine.trees.hash(self.root / "src" / source).digest,
                          "toolchain": self.toolchain, **env_components(env),
                          **{f"dep:{dep}": self.engine.state.output_hash(dep) or "(none)" for dep in deps}})

    def artifact(self, task: str) -> Path:
        return self.engine.build_dir / f"{task}.out"

    def run(self) -> list[str]:
        """Every task in dependency order: check, and run the stale ones. Returns those that ran."""
        executed = []
        self.engine.ensure_started(wait=False)
        for task in GRAPH:
            if self.engine.state.is_current(task, self.signature(task)):
                continue
            signature = self.signature(task)
            with self.engine.publisher.publish(task, signature, StampContext(main_repo=self.root,
                                                                             toolchain=self.toolchain)) as stage:
                stage.file(self.artifact(task)).write_bytes(self.compile(task))
            executed.append(task)
        self.engine.end_build()
        return executed

    def compile(self, task: str) -> bytes:
        """Comments do not reach the output, so a comment edit rebuilds byte-identically."""
        source, deps, env = GRAPH[task]
        code = [line for path in sorted((self.root / "src" / source).rglob("*.rs"))
                for line in path.read_text().splitlines() if not line.startswith("//")]
        inputs = [self.artifact(dep).read_text() for dep in deps] + [os.environ.get(name, "") for name in env]
        return "\n".join([task, *code, *inputs, self.toolchain]).encode()


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Build:
    monkeypatch.delenv("RUSTFLAGS", raising=False)
    result = Build(tmp_path)
    assert result.run() == list(GRAPH)
    return result


def test_second_run_executes_nothing_and_writes_nothing(build: Build) -> None:
    state_files = sorted(build.engine.dir.rglob("*"))
    before = {path: path.stat().st_mtime_ns for path in state_files if path.is_file() and "lock" not in path.name}
    assert build.run() == []
    after = {path: path.stat().st_mtime_ns for path in state_files if path.is_file() and "lock" not in path.name}
    assert after == before


def test_touch_of_every_source_executes_nothing(build: Build) -> None:
    later = time.time() - 60
    for path in (build.root / "src").rglob("*.rs"):
        os.utime(path, (later, later))
    assert build.run() == []


def test_one_byte_edit_runs_that_task_and_its_dependents(build: Build) -> None:
    main = build.root / "src" / "ion" / "main.rs"
    main.write_text(main.read_text().replace("fn ion", "fn ioN"))
    assert build.run() == ["ion", "image"]
    assert all(verify_stamp(build.artifact(task)) for task in GRAPH)


def test_early_cutoff_stops_after_a_byte_identical_rebuild(build: Build) -> None:
    image_stamp = (build.engine.build_dir / "image.out.stamp.json").read_bytes()
    main = build.root / "src" / "relibc" / "main.rs"
    main.write_text("// a comment the build ignores\n" + main.read_text())
    assert build.run() == ["relibc"]
    assert (build.engine.build_dir / "image.out.stamp.json").read_bytes() == image_stamp


def test_env_and_toolchain_changes_rerun_exactly_their_users(build: Build, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUSTFLAGS", "-C debuginfo=2")
    assert build.run() == ["base", "image"]
    assert [str(change) for change in build.engine.state.explain("base", build.signature("base"))] == []
    build.toolchain = "rustc 1.96.0 cranelift"
    stale = [change.component for change in build.engine.state.explain("relibc", build.signature("relibc"))]
    assert stale == ["toolchain"]
    assert build.run() == list(GRAPH)
