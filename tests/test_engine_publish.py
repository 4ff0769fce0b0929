"""Publishing: artifacts, stamps and records agree, after a failure and after kill -9 at any moment."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tasks.atomic import PARTIAL_SUFFIX
from tasks.engine import (
    Engine,
    Signature,
    StampContext,
    output_digest,
    read_stamp,
    stamp_path,
    verify_stamp,
)
from tasks.hashing import hash_value
from tests.processes import kill_9_after_ready

ROOT = Path(__file__).resolve().parent.parent


class Boom(Exception):
    pass


def publish_image(engine: Engine, content: bytes, source: str, context: StampContext | None = None) -> None:
    with engine.publisher.publish("image", Signature({"source": source}), context) as stage:
        stage.file(engine.build_dir / "image.bin").write_bytes(content)
        tree = stage.directory(engine.build_dir / "sysroot")
        (tree / "lib").mkdir()
        (tree / "lib" / "libc.a").write_bytes(content * 2)


def test_publish_records_outputs_and_stamps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    engine = Engine(tmp_path / "build")
    context = StampContext(main_repo=tmp_path, toolchain="rustc 1.95.0 cranelift")
    publish_image(engine, b"v1", "s1", context)
    record = engine.state.get("image")
    assert record is not None and engine.state.is_current("image", Signature({"source": "s1"}))
    image, sysroot = engine.build_dir / "image.bin", engine.build_dir / "sysroot"
    assert record.outputs == (str(image), str(sysroot))
    assert record.output_hash == hash_value([["image.bin", output_digest(image)], ["sysroot", output_digest(sysroot)]])
    stamp = read_stamp(image)
    assert stamp is not None and verify_stamp(image) and verify_stamp(sysroot)
    assert (stamp.task, stamp.artifact, stamp.signature) == ("image", "image.bin", record.signature)
    assert stamp.built_at == "2023-11-14T22:13:20Z" and stamp.toolchain == "rustc 1.95.0 cranelift"
    assert stamp.git["main"].revision is None
    assert not list(engine.build_dir.glob("*" + PARTIAL_SUFFIX)) and not list(engine.publisher.journal_dir.iterdir())


def test_byte_identical_rebuild_keeps_the_output_hash_though_the_stamp_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(tmp_path / "build")
    context = StampContext(main_repo=tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    publish_image(engine, b"v1", "s1", context)
    first_hash, first_stamp = engine.state.output_hash("image"), stamp_path(engine.build_dir / "image.bin").read_text()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1800000000")
    publish_image(engine, b"v1", "s1-with-a-comment", context)
    assert engine.state.output_hash("image") == first_hash
    assert stamp_path(engine.build_dir / "image.bin").read_text() != first_stamp


def test_a_failing_task_leaves_artifacts_stamps_and_record_untouched(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "build")
    publish_image(engine, b"v1", "s1", StampContext(main_repo=tmp_path))
    before = {path.name: path.read_bytes() for path in engine.build_dir.iterdir() if path.is_file()}
    record = engine.state.get("image")
    with pytest.raises(Boom):
        with engine.publisher.publish("image", Signature({"source": "s2"}), StampContext(main_repo=tmp_path)) as stage:
            stage.file(engine.build_dir / "image.bin").write_bytes(b"half")
            raise Boom
    assert {path.name: path.read_bytes() for path in engine.build_dir.iterdir() if path.is_file()} == before
    assert engine.state.get("image") == record
    assert not list(engine.build_dir.glob("*" + PARTIAL_SUFFIX))


def test_recover_finishes_a_journalled_publication(tmp_path: Path) -> None:
    """The moment after the journal is written and before any rename, as a kill would leave it."""
    engine = Engine(tmp_path / "build")
    publish_image(engine, b"v1", "s1", StampContext(main_repo=tmp_path))
    signature = Signature({"source": "s2"})
    publisher = engine.publisher
    stage = publisher.publish("image", signature, StampContext(main_repo=tmp_path)).__enter__()
    stage.file(engine.build_dir / "image.bin").write_bytes(b"v2")
    entry = publisher._journal_entry("image", signature, stage, StampContext(main_repo=tmp_path))
    (publisher.journal_dir / "pending.json").write_text(json.dumps(entry))
    assert engine.build_dir.joinpath("image.bin").read_bytes() == b"v1"
    assert Engine(tmp_path / "build").start_build(wait=False) == ["image"]
    assert engine.build_dir.joinpath("image.bin").read_bytes() == b"v2" and verify_stamp(engine.build_dir / "image.bin")
    assert engine.state.is_current("image", signature)


PUBLISHER = """
import sys
from pathlib import Path
from tasks.engine import Engine, Signature, StampContext
engine = Engine(Path(sys.argv[1]))
engine.start_build(wait=False)
context = StampContext(main_repo=Path(sys.argv[1]).parent, toolchain="test")
print("ready", flush=True)
iteration = int(sys.argv[2])
while True:
    slot = iteration % 4
    header = f"artifact {iteration}\\n".encode()
    body = bytes([iteration % 251]) * (50_000 + 9_000 * slot)
    with engine.publisher.publish(f"task{slot}", Signature({"iteration": str(iteration)}), context) as stage:
        stage.file(engine.build_dir / f"file{slot}.bin").write_bytes(header + body + b"END")
        tree = stage.directory(engine.build_dir / f"tree{slot}")
        for part in range(5):
            (tree / f"part{part}").write_bytes(header + body[: 1000 * part] + b"END")
    print(iteration, flush=True)
    iteration += 1
"""


def test_kill_9_during_publication_never_leaves_a_half_artifact(tmp_path: Path) -> None:
    rng = random.Random(7)
    build = tmp_path / "build"
    finished_counts = []
    for trial in range(22):
        finished = kill_9_after_ready(PUBLISHER, [str(build), str(trial * 1_000_000)], ROOT, rng, 0.25)
        finished_counts.append(len(finished))

        artifacts = [path for path in build.iterdir() if path.name.startswith(("file", "tree"))
                     and not path.name.endswith((PARTIAL_SUFFIX, ".json"))]
        for artifact in artifacts:  # before any recovery: every file at an artifact path is complete
            files = [artifact] if artifact.is_file() else list(artifact.iterdir())
            assert artifact.is_file() or len(files) == 5
            assert all(path.read_bytes().startswith(b"artifact ") and path.read_bytes().endswith(b"END")
                       for path in files)

        engine = Engine(build)
        engine.start_build(wait=False)  # what the next build does first
        for artifact in artifacts:
            assert verify_stamp(artifact), artifact
        for task in engine.state.tasks():
            record = engine.state.get(task)
            assert record is not None
            assert record.output_hash == hash_value([[Path(path).name, output_digest(Path(path))]
                                                     for path in record.outputs])
            stamp = read_stamp(Path(record.outputs[0]))
            assert stamp is not None and stamp.signature == record.signature
        for iteration in finished[-4:]:
            record = engine.state.get(f"task{iteration % 4}")
            assert record is not None and int(record.components["iteration"]) >= iteration
        engine.end_build()
    assert sum(1 for count in finished_counts if count > 0) >= 15, finished_counts
