"""Task records: signatures, explain, early cutoff, and a store that survives kill -9 of its writer."""
from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.engine.state import (
    Change,
    Signature,
    StateStore,
    env_components,
    format_explanation,
)
from tasks.errors import InputError
from tasks.hashing import hash_text, hash_value
from tests.processes import kill_9_after_ready

ROOT = Path(__file__).resolve().parent.parent


def test_signature_digest_ignores_component_order_and_rejects_non_strings() -> None:
    first = Signature({"recipe": "a", "source": "b"})
    assert first.digest == Signature({"source": "b", "recipe": "a"}).digest
    assert first.digest != Signature({"recipe": "a", "source": "c"}).digest
    with pytest.raises(TypeError):
        Signature({"recipe": 1})  # type: ignore[dict-item]


def test_record_then_current_until_a_component_or_an_output_changes(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.sqlite")
    output = tmp_path / "out.bin"
    output.write_bytes(b"x")
    signature = Signature({"recipe": "r1", "source": "s1"})
    assert not store.is_current("cook:ion", signature)
    record = store.record("cook:ion", signature, "h1", [output])
    assert store.get("cook:ion") == record and record.outputs == (str(output),)
    assert store.is_current("cook:ion", signature)
    assert store.output_hash("cook:ion") == "h1"
    assert not store.is_current("cook:ion", Signature({"recipe": "r1", "source": "s2"}))
    output.unlink()
    assert not store.is_current("cook:ion", signature)
    assert store.explain("cook:ion", signature) == [Change("output missing", str(output))]


def test_explain_lists_added_removed_and_changed_components(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.sqlite")
    old = Signature({"recipe": "r1", "source": "s1", "env:RUST_LOG": "l1"})
    new = Signature({"recipe": "r1", "source": "s2", "env:RUSTFLAGS": "f1"})
    assert store.explain("cook:ion", new) == [Change("never built", "cook:ion", None, new.digest)]
    store.record("cook:ion", old, "h", [])
    changes = store.explain("cook:ion", new)
    assert changes == [Change("added", "env:RUSTFLAGS", None, "f1"), Change("removed", "env:RUST_LOG", "l1", None),
                       Change("changed", "source", "s1", "s2")]
    assert format_explanation("cook:ion", changes) == (
        "cook:ion is stale:\n  env:RUSTFLAGS added: f1\n  env:RUST_LOG removed (was l1)\n"
        "  source changed: s1 -> s2")
    assert store.explain("cook:ion", old) == []
    assert format_explanation("cook:ion", []) == "cook:ion is up to date"


def test_early_cutoff_a_byte_identical_rebuild_leaves_the_dependent_current(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.sqlite")

    def dependent_signature() -> Signature:
        return Signature({"recipe": "base", "dep:relibc": store.output_hash("relibc") or ""})

    store.record("relibc", Signature({"source": "v1"}), "libc-output", [])
    store.record("base", dependent_signature(), "base-output", [])
    store.record("relibc", Signature({"source": "v1-with-a-comment"}), "libc-output", [])
    assert store.is_current("base", dependent_signature())
    store.record("relibc", Signature({"source": "v2"}), "different-libc-output", [])
    assert not store.is_current("base", dependent_signature())
    assert [change.component for change in store.explain("base", dependent_signature())] == ["dep:relibc"]


def test_env_components(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUSTFLAGS", "-C opt-level=3")
    monkeypatch.delenv("RUST_LOG", raising=False)
    components = env_components(["RUSTFLAGS", "RUST_LOG"])
    assert components == {"env:RUSTFLAGS": hash_text("-C opt-level=3"), "env:RUST_LOG": "(unset)"}


def test_records_are_shared_between_processes(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    code = ("import sys; from tasks.engine.state import StateStore, Signature; "
            "StateStore(sys.argv[1]).record('from-child', Signature({'a': 'b'}), 'h', [])")
    subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, check=True)
    record = StateStore(path).get("from-child")
    assert record is not None and record.components == {"a": "b"}


def test_a_store_of_another_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    sqlite3.connect(path).execute("PRAGMA user_version = 99")
    with pytest.raises(InputError, match="schema 99"):
        StateStore(path).tasks()


WRITER = """
import sys
from tasks.engine.state import StateStore, Signature
from tasks.hashing import hash_text, hash_value
store = StateStore(sys.argv[1])
print("ready", flush=True)
iteration = int(sys.argv[2])  # each trial counts on from its own base
while True:
    components = {"iteration": str(iteration), "source": hash_text(str(iteration)), "dep:x": hash_text("x")}
    store.record(f"task{iteration % 40}", Signature(components), hash_value(components), [f"/out/{iteration}"])
    print(iteration, flush=True)
    iteration += 1
"""


def test_kill_9_of_a_writer_loses_at_most_the_running_record(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    path = tmp_path / "state.sqlite"
    killed_mid_sequence: list[int] = []
    for trial in range(24):
        finished = kill_9_after_ready(WRITER, [str(path), str(trial * 1_000_000)], ROOT, rng, 0.08)

        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        db.close()
        store = StateStore(path)
        for task in store.tasks():
            record = store.get(task)
            assert record is not None
            iteration = int(record.components["iteration"])
            assert task == f"task{iteration % 40}"
            assert record.signature == Signature(record.components).digest
            assert record.output_hash == hash_value(record.components)
            assert record.outputs == (f"/out/{iteration}",)
        killed_mid_sequence.append(len(finished))
        for iteration in finished[-40:]:  # every record the writer reported done is there
            record = store.get(f"task{iteration % 40}")
            assert record is not None and int(record.components["iteration"]) >= iteration
        store.close()
    assert sum(1 for count in killed_mid_sequence if count > 0) >= 20, killed_mid_sequence


def test_a_forgotten_task_keeps_its_duration_for_the_next_estimate(tmp_path: Path) -> None:
    """`doit clean` and `doit forget` remove records; the time a task took stays (issue 20, item 8)."""
    store = StateStore(tmp_path / "state.sqlite")
    store.record("cook:ion", Signature({"recipe": "r1"}), "h1", [], duration=12.5)
    store.record("cook:ion", Signature({"recipe": "r2"}), "h2", [])  # a run whose time was not measured
    assert store.forget(["cook:ion"]) == ["cook:ion"] and store.get("cook:ion") is None
    assert store.duration("cook:ion") == 12.5 and store.duration("cook:other") is None


def test_a_store_of_schema_3_keeps_its_records_and_their_durations(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    StateStore(path).record("cook:ion", Signature({"recipe": "r1"}), "h1", [], duration=3.0)
    old = sqlite3.connect(path)
    old.execute("DROP TABLE durations")
    old.execute("PRAGMA user_version = 3")
    old.close()
    store = StateStore(path)
    assert store.get("cook:ion").duration == 3.0 and store.duration("cook:ion") == 3.0
