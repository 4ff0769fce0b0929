"""The shared build cache (tasks/cache) against a real Garage on 127.0.0.1 (tests/garage.py), and a shared directory.

"CI" builds the demo with ``cache_upload=yes`` and a key that writes; "a developer" (another build directory, another
HOME, a key that only reads) builds the same commit of the tree: every cook, package, the initfs and the image come
from the cache, and the image is the same bytes. What a reader gets is checked against a manifest signed by a key the
tree pins: a tampered, truncated, unsigned or wrongly signed entry is refused once and the task runs here. A store that
is down, or refuses to be written, costs a warning, never the build.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks.formats.pkgkeys import ensure_keys, generate, write_key_files
from tasks.toolchain import hosttools
from tasks.variables import PROJECT_DIR
from tests.conftest import run_doit
from tests.garage import Garage, free_port

DEMO = ("config=config/aarch64/demo.toml", "toolchain=host")
KEY_DIR = Path("cookbook/build")  # the build's package key, inside its build directory
COOKED = ("cook:kernel", "cook:bootloader", "cook:base-initfs", "cook:hello")
PACKAGED = ("pkg:kernel", "pkg:bootloader", "pkg:base-initfs", "pkg:hello")
IMAGE = "aarch64/demo.img"


@pytest.fixture(scope="module")
def garage(tmp_path_factory: pytest.TempPathFactory):
    binary = hosttools.ensure("garage", PROJECT_DIR / "build") / "garage"
    store = Garage.start(binary, tmp_path_factory.mktemp("garage"))
    yield store
    store.stop()


class Team:
    """A tree under git (every machine builds one commit of it) whose config pins CI's cache key; CI's build
    directory holds that key, which also signs the packages: the team's package key, which every machine has."""

    def __init__(self, root: Path):
        self.root = root
        self.tree = root / "tree"
        shutil.copytree(PROJECT_DIR / "demo", self.tree, ignore=shutil.ignore_patterns("build"))
        self.ci = root / "ci"
        ensure_keys(self.ci / KEY_DIR)
        (self.tree / "config" / "cache-keys").mkdir()
        shutil.copy(self.ci / KEY_DIR / "id_ed25519.pub.toml", self.tree / "config" / "cache-keys" / "ci.pub.toml")
        for argv in (["init", "-q"], ["add", "-A"], ["-c", "user.name=ci", "-c", "user.email=ci@example.org",
                                                      "commit", "-qm", "tree"]):
            subprocess.run(["git", *argv], cwd=self.tree, check=True)

    def machine(self, name: str) -> Path:
        """A new build directory with the team's package key."""
        build = self.root / name
        shutil.copytree(self.ci / KEY_DIR, build / KEY_DIR)
        return build

    def build(self, build: Path, *variables: str, env: dict | None = None, target: str = "image"):
        return run_doit(target, f"root={self.tree}", f"build={build}", *DEMO, *variables, env=env, timeout=600)


def events(build: Path) -> dict[str, str]:
    """Each task's last outcome with the cache in this build directory."""
    lines = (build / "cache" / "task-cache.jsonl").read_text().splitlines()
    return {event["task"]: event["event"] for event in map(json.loads, lines)
            if event["task"] and event["event"] != "rustc"}


def another_home(root: Path) -> dict[str, str]:
    """Another user's HOME; the host tools and cargo as installed for this one (they are not under test)."""
    import os
    home = root / "home"
    home.mkdir(exist_ok=True)
    tools = str(hosttools.install_root("x").parent)
    cargo_home = os.environ.get("CARGO_HOME", str(Path.home() / ".cargo"))
    rustup = os.environ.get("RUSTUP_HOME", str(Path.home() / ".rustup"))
    return {"HOME": str(home), "REDOX_HOST_TOOLS": tools, "CARGO_HOME": cargo_home, "RUSTUP_HOME": rustup}


@pytest.fixture(scope="module")
def published(garage: Garage, tmp_path_factory: pytest.TempPathFactory) -> Team:
    """CI has built the demo and uploaded it to the bucket."""
    team = Team(tmp_path_factory.mktemp("team"))
    url = f"cache=s3://{garage.bucket}/team"
    done = team.build(team.ci, url, "cache_upload=yes", env=garage.env(garage.writer))
    assert done.returncode == 0, done.stdout + done.stderr
    assert events(team.ci) == dict.fromkeys(events(team.ci), "uploaded") and "image" in events(team.ci)
    return team


def test_another_machine_builds_the_demo_from_the_cache_with_no_cook_or_package_run(garage, published, tmp_path):
    developer = published.machine("developer")
    env = {**garage.env(garage.reader), **another_home(tmp_path)}
    done = published.build(developer, f"cache=s3://{garage.bucket}/team", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    outcome = events(developer)
    assert {task: outcome[task] for task in (*COOKED, *PACKAGED, "initfs", "image")} == \
        dict.fromkeys((*COOKED, *PACKAGED, "initfs", "image"), "hit")
    for task in (*COOKED, *PACKAGED):
        assert f"{task}: taken from the cache (s3://cache/team)" in done.stdout
    assert (developer / IMAGE).read_bytes() == (published.ci / IMAGE).read_bytes()
    assert "warning" not in done.stderr, done.stderr
    # Published as if run: stamped and recorded, so the next run is a no-op, which never asks the store (it is
    # unreachable now, and nothing says so).
    assert json.loads((developer / f"{IMAGE}.stamp.json").read_text())["task"] == "image"
    again = published.build(developer, f"cache=s3://{garage.bucket}/team",
                            env={**env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"})
    assert again.returncode == 0 and "up to date" in again.stdout and "cache" not in again.stderr, again


def test_a_reader_that_asks_to_upload_is_told_once_and_builds(garage, published, tmp_path):
    """A developer's key may only read: the upload is refused by the store, said once, and the build succeeds."""
    developer = published.machine("writer-without-rights")
    done = published.build(developer, f"cache=s3://{garage.bucket}/other-prefix", "cache_upload=yes",
                           env={**garage.env(garage.reader), **another_home(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.count("cache:") == 1 and "cannot upload to s3://cache/other-prefix" in done.stderr, \
        done.stderr
    assert (developer / IMAGE).is_file()


def test_a_store_that_is_down_costs_a_warning_not_the_build(published, tmp_path):
    developer = published.machine("offline")
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_REGION": "garage",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    done = published.build(developer, "cache=s3://cache/team", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.count("cannot be reached") == 1, done.stderr
    assert "taken from the cache" not in done.stdout
    assert (developer / IMAGE).is_file()


def test_an_unchanged_output_hits_downstream_although_its_inputs_differ(garage, published, tmp_path):
    """Hash equivalence: a file of hello's source that its build ignores makes cook:hello run here, but its output
    is CI's, so the package (whose signature names that output's hash) comes from the cache."""
    notes = published.root / "equivalent"
    shutil.copytree(published.tree, notes)
    (notes / "recipes" / "hello" / "source" / "NOTES.md").write_text("a note no build reads\n")
    developer = published.machine("equivalent-build")
    env = {**garage.env(garage.reader), **another_home(tmp_path)}
    done = run_doit("image", f"root={notes}", f"build={developer}", *DEMO, f"cache=s3://{garage.bucket}/team",
                    env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    outcome = events(developer)
    assert outcome["cook:hello"] == "miss" and outcome["pkg:hello"] == "hit", outcome


# --- trust: against a shared directory (file://), whose entries a test can reach and spoil --------------------------

@pytest.fixture
def shared_dir(tmp_path: Path) -> tuple[Team, Path]:
    """CI has uploaded the demo into a shared directory."""
    team = Team(tmp_path / "team")
    store = tmp_path / "store"
    done = team.build(team.ci, f"cache=file://{store}", "cache_upload=yes", target="pkg")
    assert done.returncode == 0, done.stdout + done.stderr
    return team, store


def _hello_entry(store: Path) -> Path:
    return next((store / "entries" / "cook" / "hello").glob("*.json"))


def _blob(store: Path, entry: Path) -> Path:
    return store / "blobs" / json.loads(entry.read_text())["manifest"]["outputs"][0]["blob"]


def _truncate(store: Path) -> None:
    blob = _blob(store, _hello_entry(store))
    blob.write_bytes(blob.read_bytes()[:100])


def _tamper(store: Path) -> None:
    """Another output packed under the blob's name (what an attacker with write access to the store can do)."""
    from tasks.cache.entry import pack
    blob = _blob(store, _hello_entry(store))
    fake = store.parent / "fake"
    fake.write_text("#!/bin/sh\necho owned\n")
    pack(fake, store.parent / "fake.tar.gz")
    shutil.copy(store.parent / "fake.tar.gz", blob)


def _edit_manifest(store: Path) -> None:
    entry = _hello_entry(store)
    document = json.loads(entry.read_text())
    document["manifest"]["outputs"][0]["size"] += 1
    entry.write_text(json.dumps(document))


def _unsign(store: Path) -> None:
    entry = _hello_entry(store)
    document = json.loads(entry.read_text())
    entry.write_text(json.dumps(document["manifest"]))


def _sign_with_another_key(store: Path) -> None:
    from tasks.cache.entry import Manifest, signed
    entry = _hello_entry(store)
    manifest = Manifest.model_validate(json.loads(entry.read_text())["manifest"])
    entry.write_bytes(signed(manifest, generate()))


@pytest.mark.parametrize("spoil", [_truncate, _tamper, _edit_manifest, _unsign, _sign_with_another_key])
def test_a_spoiled_entry_is_refused_once_and_the_task_runs_here(shared_dir, spoil, tmp_path):
    team, store = shared_dir
    spoil(store)
    developer = team.machine("developer")
    done = team.build(developer, f"cache=file://{store}", target="pkg")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.count("the entry of cook:hello is refused") == 1, done.stderr
    outcome = events(developer)
    assert outcome["cook:hello"] == "refused" and outcome["cook:kernel"] == "hit", outcome
    hello = developer / "x86_64-unknown-linux-gnu" / "recipes" / "hello" / "stage" / "usr" / "bin" / "hello"
    assert hello.is_file() and b"owned" not in hello.read_bytes()
    assert not list((developer / "cache" / "restoring").iterdir())  # nothing left half-unpacked


def test_a_key_the_tree_does_not_pin_never_uploads(tmp_path):
    """A build whose key is not pinned would write entries no reader accepts: it says so once, and uploads none."""
    team = Team(tmp_path / "team")
    stranger = tmp_path / "stranger"
    write_key_files(generate(), stranger / KEY_DIR / "id_ed25519.pub.toml", stranger / KEY_DIR / "id_ed25519.toml")
    store = tmp_path / "store"
    done = team.build(stranger, f"cache=file://{store}", "cache_upload=yes", target="pkg")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.count("is not pinned in") == 1, done.stderr
    assert not (store / "entries").exists()


@pytest.mark.parametrize(("url", "reason"), [("http://bucket/x", "not s3://BUCKET/PREFIX or file:///DIR"),
                                             ("s3://key:secret@bucket/x", "credentials do not belong in the URL"),
                                             ("file://relative/dir", "file:// needs an absolute path")])
def test_a_cache_url_that_cannot_serve_is_refused_naming_the_setting(url, reason, tmp_path):
    done = run_doit("list", f"root={PROJECT_DIR / 'demo'}", f"build={tmp_path}", *DEMO, f"cache={url}")
    assert done.returncode != 0
    assert "cache" in done.stderr and reason in done.stderr, done.stderr
    assert "secret" not in done.stderr  # credentials are never echoed


def test_the_cache_commands_say_what_it_served_whether_it_holds_and_prune_it(shared_dir):
    team, store = shared_dir
    developer = team.machine("developer")
    url = f"cache=file://{store}"
    done = team.build(developer, url, target="pkg")
    assert "9 tasks run (8 from the cache)," in done.stdout, done.stdout

    def cache(*args: str):
        return run_doit("cache", *args, f"root={team.tree}", f"build={developer}", *DEMO, url)

    stats = cache("stats")
    assert stats.returncode == 0 and "tasks taken from it: 8, not in it: 0, refused: 0" in stats.stdout, stats
    verify = cache("verify")
    assert verify.returncode == 0 and verify.stdout.count(": ok") == 8, verify
    _truncate(store)
    verify = cache("verify")
    assert verify.returncode == 1 and "cook:hello: refused: its blob for" in verify.stdout, verify
    assert cache("prune", "--older-than=1d").stdout.strip() == "removed 0 entries and 0 blobs older than 1d"
    old = 1_600_000_000  # everything but the two kernel entries, blobs too: those the kernel entries name stay
    for path in store.rglob("*"):
        if path.is_file() and "kernel" not in str(path):
            os.utime(path, (old, old))
    pruned = cache("prune", "--older-than=30d")
    assert pruned.returncode == 0 and "removed 6 entries and 8 blobs" in pruned.stdout, pruned
    assert [path.parent.name for path in (store / "entries").rglob("*.json")] == ["kernel", "kernel"]
    assert cache("verify").stdout.count(": ok") == 2  # what was kept still holds: its blobs were kept
    assert "a number and a unit" in cache("prune", "--older-than=soon").stderr


@pytest.mark.parametrize("action", [("verify",), ("prune", "--older-than=1d")])
def test_a_cache_command_on_a_store_that_is_down_says_so_in_one_line(published, action):
    dead = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_REGION": "garage",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    done = run_doit("cache", *action, f"root={published.tree}", f"build={published.ci}", *DEMO,
                    "cache=s3://cache/team", env=dead)
    assert done.returncode != 0
    assert "cache: s3://cache/team cannot be reached" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_three_node_cluster_serves_a_build_while_a_node_is_killed(tmp_path):
    """Replication factor 3: with one node killed -9 in the middle of the developer's build, every task still
    comes from the cache (reads need two of the three)."""
    binary = hosttools.ensure("garage", PROJECT_DIR / "build") / "garage"
    cluster = Garage.start(binary, tmp_path / "cluster", nodes=3)
    try:
        team = Team(tmp_path / "team")
        url = f"cache=s3://{cluster.bucket}/team"
        done = team.build(team.ci, url, "cache_upload=yes", env=cluster.env(cluster.writer), target="pkg")
        assert done.returncode == 0, done.stdout + done.stderr
        developer = team.machine("developer")
        argv = [str(Path(sys.executable).parent / "doit"), "-f", str(PROJECT_DIR / "dodo.py"), "pkg",
                f"root={team.tree}", f"build={developer}", *DEMO, url]
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(PROJECT_DIR), **cluster.env(cluster.reader)})
        events_file = developer / "cache" / "task-cache.jsonl"
        deadline = time.monotonic() + 120
        while not (events_file.exists() and events_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
        cluster.stop(2)
        out, err = child.communicate(timeout=600)
        assert child.returncode == 0, out + err
        assert events(developer) == dict.fromkeys((*COOKED, *PACKAGED), "hit"), (events(developer), err)
    finally:
        cluster.stop()


def test_kill_9_while_taking_from_the_cache_leaves_nothing_half_published(shared_dir):
    """Builds taking everything from the cache are killed -9 after a random number of hits: after each kill every
    task's record still describes what its outputs hold, and the build that then finishes has CI's bytes."""
    from tasks.engine import Engine
    team, store = shared_dir
    rng = random.Random(22)
    recorded: list[int] = []  # how many of the tasks had a record when each build was killed
    repo = Path("cookbook/repo/aarch64-unknown-redox")
    for attempt in range(5):
        developer = team.machine(f"developer-{attempt}")
        argv = [str(Path(sys.executable).parent / "doit"), "-f", str(PROJECT_DIR / "dodo.py"), "pkg",
                f"root={team.tree}", f"build={developer}", *DEMO, f"cache=file://{store}"]
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)})
        events_file, hits = developer / "cache" / "task-cache.jsonl", rng.randint(1, 7)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None and \
                (not events_file.exists() or events_file.read_text().count("\n") < hits):
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))  # inside the next task's restore, or between two
        child.send_signal(signal.SIGKILL)
        child.wait()
        engine = Engine(developer)
        engine.start_build()  # finishes a journalled publication, as the next build would
        for task in (*COOKED, *PACKAGED):
            assert engine.state.get(task) is None or not engine.changed_outputs(task), task
        recorded.append(sum(engine.state.get(task) is not None for task in (*COOKED, *PACKAGED)))
        engine.end_build()
        done = team.build(developer, f"cache=file://{store}", target="pkg")
        assert done.returncode == 0, done.stdout + done.stderr
        for name in ("hello.pkgar", "kernel.pkgar", "bootloader.pkgar", "base-initfs.toml"):
            assert (developer / repo / name).read_bytes() == (team.ci / repo / name).read_bytes(), name
        assert not list((developer / "cache" / "restoring").iterdir())
    assert all(0 < count < 8 for count in recorded), recorded  # every kill came in the middle of the build


@pytest.mark.parametrize("kind", ["hard link out", "symlink then through it", "absolute name"])
def test_a_blob_never_writes_outside_where_it_is_unpacked(kind, tmp_path):
    """Even a blob whose manifest a pinned key signed (a leaked key) is unpacked inside its scratch directory only."""
    import io
    import tarfile

    from tasks.cache.entry import Refused, unpack
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    blob = tmp_path / "blob.tar.gz"
    with tarfile.open(blob, "w:gz") as archive:
        def add(name: str, **fields) -> None:
            info = tarfile.TarInfo(name)
            data = fields.pop("data", b"")
            for field, value in fields.items():
                setattr(info, field, value)
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            archive.addfile(info, io.BytesIO(data))
        add("output", type=tarfile.DIRTYPE, mode=0o755)
        if kind == "hard link out":
            add("output/link", type=tarfile.LNKTYPE, linkname=str(victim))
        elif kind == "symlink then through it":
            add("output/up", type=tarfile.SYMTYPE, linkname=str(tmp_path))
            add("output/up/victim", data=b"owned\n")
        else:
            add(str(victim), data=b"owned\n")
    (tmp_path / "into").mkdir()
    with pytest.raises(Refused):
        unpack(blob, tmp_path / "into")
    assert victim.read_text() == "untouched\n"


GREET = {  # a cargo recipe whose program uses a library crate of its own: sccache caches library crates
    "recipe.toml": '[build]\ntemplate = "cargo"\n\n[package]\nversion = "0.1.0"\n',
    "source/Cargo.toml": '[package]\nname = "greet"\nversion = "0.1.0"\nedition = "2021"\n\n'
                         '[dependencies]\ngreetlib = { path = "greetlib" }\n',
    "source/src/main.rs": 'fn main() {\n    println!("{}", greetlib::greeting());\n}\n',
    "source/greetlib/Cargo.toml": '[package]\nname = "greetlib"\nversion = "0.1.0"\nedition = "2021"\n',
    "source/greetlib/src/lib.rs": 'pub fn greeting() -> &\'static str {\n    "hello from a library crate"\n}\n',
}


def test_with_cache_rustc_another_machine_recompiles_only_the_crate_that_changed(tmp_path):
    """cache_rustc=yes: CI's cook of greet leaves its library crate in the cache's rustc/ (sccache). Another machine
    with the same layout (sccache keys Rust compilations by absolute paths: the tree and the build directory where
    CI's were, CI's build directory gone), whose checkout changed greet's main.rs, misses the task cache for
    cook:greet and runs it; its library crate comes from sccache: one hit, no miss (a binary crate is linked, never
    cached)."""
    team = Team(tmp_path / "team")
    for name, text in GREET.items():
        (team.tree / "recipes" / "greet" / name).parent.mkdir(parents=True, exist_ok=True)
        (team.tree / "recipes" / "greet" / name).write_text(text)
    config = team.tree / "config" / "aarch64" / "demo.toml"
    config.write_text(config.read_text().replace("hello = {}\n", "hello = {}\ngreet = {}\n"))
    settings = (f"cache=file://{tmp_path / 'store'}", "cache_rustc=yes")
    quick = {"SCCACHE_IDLE_TIMEOUT": "20"}  # the servers this test starts leave soon after it
    done = team.build(team.ci, *settings, "cache_upload=yes", target="cook:greet", env=quick)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _rustc(team.ci) == (0, 1)  # greetlib compiled, and kept

    shutil.copytree(team.ci / KEY_DIR, tmp_path / "team-key")
    shutil.rmtree(team.ci)
    shutil.copytree(tmp_path / "team-key", team.ci / KEY_DIR)
    main = team.tree / "recipes" / "greet" / "source" / "src" / "main.rs"
    main.write_text(main.read_text().replace("println!", "eprintln!"))
    done = team.build(team.ci, *settings, target="cook:greet", env=quick)
    assert done.returncode == 0, done.stdout + done.stderr
    assert events(team.ci)["cook:greet"] == "miss"
    assert _rustc(team.ci) == (1, 0)
    stats = run_doit("cache", "stats", f"root={team.tree}", f"build={team.ci}", *DEMO, *settings)
    assert "compilations (sccache): 1 hits, 0 misses" in stats.stdout, stats


def _rustc(build: Path) -> tuple[int, int]:
    """sccache's (hits, misses) of cook:greet in this build directory."""
    lines = (build / "cache" / "task-cache.jsonl").read_text().splitlines()
    counted = [(event["hits"], event["misses"]) for event in map(json.loads, lines)
               if event["event"] == "rustc" and event["task"] == "cook:greet"]
    assert len(counted) == 1, lines
    return counted[0]


def test_a_store_that_stops_answering_is_given_up_in_seconds_not_the_build(published, tmp_path):
    """A server that takes connections and never answers (a stuck proxy, a store under load): the first request
    times out, is said once, and the build goes on without the cache (the run's own timeout would end a hang)."""
    import socket
    import threading
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: [held.append(server.accept()[0]) for _ in range(64)], daemon=True).start()
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_REGION": "garage",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.getsockname()[1]}"}
    developer = published.machine("behind-a-stuck-store")
    done = run_doit("pkg", f"root={published.tree}", f"build={developer}", *DEMO, "cache=s3://cache/team", env=env,
                    timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.count("cannot be reached") == 1, done.stderr
    assert held  # the requests did reach the server that never answered
    server.close()


def test_two_machines_uploading_the_same_entries_at_once_leave_valid_entries(garage, published, tmp_path):
    """Two CI runners build the same commit and upload at once, to a fresh prefix: every entry a reader then checks
    holds (blobs are written before the manifest that names them; either whole manifest is valid)."""
    url = f"cache=s3://{garage.bucket}/race"
    runners = [published.machine(f"runner-{index}") for index in range(2)]
    argv = [str(Path(sys.executable).parent / "doit"), "-f", str(PROJECT_DIR / "dodo.py"), "pkg",
            f"root={published.tree}", *DEMO, url, "cache_upload=yes"]
    children = [subprocess.Popen([*argv, f"build={runner}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, env={**os.environ, "PYTHONPATH": str(PROJECT_DIR),
                                                 **garage.env(garage.writer)}) for runner in runners]
    for child in children:
        output, _ = child.communicate(timeout=300)
        assert child.returncode == 0, output
    uploaded = [events(runner) for runner in runners]
    for task in (*COOKED, *PACKAGED):  # one runner or both (the later one finds the entry there and leaves it)
        assert "uploaded" in {outcome.get(task) for outcome in uploaded}, (task, uploaded)
    reader = published.machine("reader")
    done = published.build(reader, url, target="pkg", env=garage.env(garage.reader))
    assert done.returncode == 0, done.stdout + done.stderr
    assert events(reader) == dict.fromkeys((*COOKED, *PACKAGED), "hit"), events(reader)
    verify = run_doit("cache", "verify", f"root={published.tree}", f"build={reader}", *DEMO, url,
                      env=garage.env(garage.reader))
    assert verify.returncode == 0 and verify.stdout.count(": ok") == 8, verify.stdout + verify.stderr
