"""promote, promotions, restore (whole and single files) and release through the real CLI, on a real demo image
(issue 14, §3): what users did with pure-rust.works.img, feature copies and release.sh."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tasks.hashing import hash_file
from tasks.image.files import ImageFiles, Put
from tasks.image.installer import copy_from_fat, verify_image
from tasks.toolchain import hosttools
from tests.conftest import run_doit
from tests.test_demo_image import DEMO, EPOCH, Demo, build_demo


@pytest.fixture
def demo(tmp_path) -> Demo:
    made = Demo(tmp_path / "build")
    build_demo(made.build)
    return made


def doit(demo: Demo, *args: str):
    return run_doit(*args, f"root={DEMO}", "config=config/aarch64/demo.toml", "toolchain=host",
                    f"build={demo.build}", env={"SOURCE_DATE_EPOCH": str(EPOCH)})  # as build_demo


def test_promoting_again_under_a_name_keeps_the_previous_promotion(demo, tmp_path):
    """A known-good image is never lost behind the user's back (issue 19, item 6)."""
    assert doit(demo, "promote", "name=again").returncode == 0
    again = demo.image.with_name("demo-again.img")
    first = {path.name: hash_file(path) for path in demo.image.parent.glob("demo-again.*")}
    built = shutil.copyfile(demo.image, tmp_path / "built.img")  # put back at the end, for the tests after
    files = ImageFiles(demo.image, hosttools.ensure_own("redox-image"))
    (tmp_path / "motd").write_text("changed since\n")
    files.apply([Put(tmp_path / "motd", "/etc/motd")])
    second = doit(demo, "promote", "name=again")
    assert second.returncode == 0, second.stderr
    assert second.stdout.endswith(f"the previous again is kept as {again}.bak (with its qcow2, stamp and manifest)\n")
    assert {name: hash_file(again.with_name(name + ".bak")) for name in first} == first
    assert hash_file(again) == hash_file(demo.image) != first["demo-again.img"]
    assert doit(demo, "promotions").stdout.count("again ") == 1
    refused = doit(demo, "promote", "name=again", "backups=0")
    assert refused.returncode != 0 and "a promotion named again exists, and with backups=0 it would be lost" in \
        refused.stderr and hash_file(again) == hash_file(demo.image)
    shutil.copyfile(built, demo.image)


def test_promote_then_restore_the_whole_image_or_single_files_then_release(demo, tmp_path):
    promoted = doit(demo, "promote", "name=works")
    assert promoted.returncode == 0, promoted.stderr
    works = demo.image.with_name("demo-works.img")
    assert promoted.stdout == f"promoted {demo.image} as {works} (5 packages)\n"
    assert hash_file(works) == hash_file(demo.image) and works.with_suffix(".qcow2").is_file()
    manifest = json.loads(works.with_name("demo-works.img.manifest.json").read_text())
    assert manifest["packages"]["hello"] == "0.1.0" and "config" in manifest["inputs"]
    assert manifest["git"]["main"]["revision"] and works.with_name("demo-works.img.stamp.json").is_file()
    listed = doit(demo, "promotions")
    assert listed.stdout.startswith("works ") and str(works) in listed.stdout

    # The current image changes (as a session without snapshot would change it; a build would now rebuild it) ...
    files = ImageFiles(demo.image, hosttools.ensure_own("redox-image"))
    (tmp_path / "motd").write_text("broken\n")
    files.apply([Put(tmp_path / "motd", "/etc/motd"), Put(tmp_path / "motd", "/etc/hostname")])
    # ... and one file comes back from the promoted image, with its mode, the rest stays
    single = doit(demo, "restore", "from=works", "/etc/motd")
    assert single.returncode == 0, single.stderr
    assert files.read("/etc/motd") == b"Built by the pure-Rust aarch64 Redox build system demo.\n"
    assert files.read("/etc/hostname") == b"broken\n" and files.stat("/etc/motd").mode == 0o644
    assert demo.image.with_name("demo.img.bak").is_file()
    status = doit(demo, "list", "--status").stdout
    assert "U image" in status and "R qcow2" in status, status  # recorded as its new content; the qcow2 follows
    whole = doit(demo, "restore", "from=works")
    assert whole.returncode == 0 and hash_file(demo.image) == hash_file(works)
    assert ".  image" not in doit(demo, "qcow2").stdout  # the restored image is the image: not rebuilt

    missing = doit(demo, "restore", "from=nope")
    assert missing.returncode != 0 and "no promotion 'nope' of demo.img (the promotions: works)" in missing.stderr

    # this checkout may have uncommitted changes (the dirty case has its own test below)
    released = doit(demo, "release", "name=v0.1", "--dirty-ok")
    assert released.returncode == 0, released.stderr
    directory = demo.build / "aarch64" / "release"
    assert subprocess.run(["sha256sum", "-c", "demo.iso.gz.sha256"], cwd=directory, capture_output=True,
                          text=True).stdout == "demo.iso.gz: OK\n"
    assert subprocess.run(["gzip", "-dc", directory / "demo.iso.gz"], capture_output=True).stdout == \
        demo.image.read_bytes()
    notes = (directory / "demo-release-notes.md").read_text()
    assert notes.startswith("# v0.1\n") and "- hello 0.1.0" in notes
    assert "git tag -a v0.1 -m 'Release v0.1'" in released.stdout


def test_an_overlay_lands_over_the_packages_and_inject_puts_a_file_in_it_and_in_the_image(demo, tmp_path):
    """Issue 14, §2: the overlay (here overlay=DIR, not the repository's demo/config) with its modes and owners;
    `doit inject` makes the image what a build with the new overlay makes, without running the installer."""
    overlay = tmp_path / "overlay"
    (overlay / "etc").mkdir(parents=True)
    (overlay / "etc/motd").write_text("from the overlay\n")
    (overlay / "home/user").mkdir(parents=True)
    (overlay / "home/user/notes.txt").write_text("mine\n")
    (overlay / "usr/bin").mkdir(parents=True)
    (overlay / "usr/bin/hi").symlink_to("hello")
    (overlay / "owners.toml").write_text('["home/user/notes.txt"]\nuid = 1000\ngid = 1000\nmode = 0o600\n')
    built = doit(demo, "image", f"overlay={overlay}")
    assert built.returncode == 0 and ".  image" in built.stdout, built.stderr
    files = ImageFiles(demo.image, hosttools.ensure_own("redox-image"))
    assert files.read("/etc/motd") == b"from the overlay\n"
    notes = files.stat("/home/user/notes.txt")
    assert (notes.mode, notes.uid, notes.gid) == (0o600, 1000, 1000)
    home = files.stat("/home/user")
    assert (home.uid, home.gid) == (1000, 1000)  # a directory the image has keeps its owner
    assert files.stat("/usr/bin/hi").target == "hello" and "/owners.toml" not in {e.path for e in files.tree("/")}

    (tmp_path / "tool").write_text("#!/bin/sh\necho injected\n")
    (tmp_path / "tool").chmod(0o755)
    injected = doit(demo, "inject", str(tmp_path / "tool"), "/usr/bin/tool", f"overlay={overlay}")
    assert injected.returncode == 0, injected.stderr
    assert (overlay / "usr/bin/tool").read_text() == "#!/bin/sh\necho injected\n"
    tool = files.stat("/usr/bin/tool")
    assert (tool.kind, tool.mode) == ("f", 0o755) and files.read("/usr/bin/tool").endswith(b"echo injected\n")
    after = doit(demo, "qcow2", f"overlay={overlay}")
    assert ".  image" not in after.stdout and ".  qcow2" in after.stdout  # recorded: only the qcow2 follows
    injected_tree = sorted((e.kind, e.mode, e.uid, e.gid, e.size, e.path, e.target) for e in files.tree("/"))
    assert doit(demo, "forget", "image").returncode == 0
    rebuilt = doit(demo, "image", f"overlay={overlay}")  # from scratch, with the overlay as inject left it
    assert ".  image" in rebuilt.stdout
    assert sorted((e.kind, e.mode, e.uid, e.gid, e.size, e.path, e.target)
                  for e in ImageFiles(demo.image, hosttools.ensure_own("redox-image")).tree("/")) == injected_tree


def test_restore_brings_the_overlay_in_line_and_explain_tells_a_restored_image(demo, tmp_path):
    """Issue 19, item 6: a file restored from the works image stayed broken in the overlay, so the next full build
    brought it back; after a whole restore, `doit explain image` said up to date although the overlay held a file
    the image lacked."""
    overlay = tmp_path / "overlay"
    assert doit(demo, "promote", "name=works", f"overlay={overlay}").returncode == 0
    good_motd = ImageFiles(demo.image, hosttools.ensure_own("redox-image")).read("/etc/motd")
    (tmp_path / "broken").write_text("broken\n")
    assert doit(demo, "inject", str(tmp_path / "broken"), "/etc/motd", f"overlay={overlay}").returncode == 0
    restored = doit(demo, "restore", "from=works", "/etc/motd", f"overlay={overlay}")
    assert restored.returncode == 0, restored.stderr
    assert "(and in the overlay: /etc/motd)" in restored.stdout
    assert (overlay / "etc/motd").read_bytes() == good_motd
    assert ".  image" not in doit(demo, "image", f"overlay={overlay}").stdout  # recorded with the overlay it made
    assert doit(demo, "forget", "image").returncode == 0
    assert ".  image" in doit(demo, "image", f"overlay={overlay}").stdout  # a full build: the motd stays good
    files = ImageFiles(demo.image, hosttools.ensure_own("redox-image"))
    assert files.read("/etc/motd") == good_motd

    (tmp_path / "extra").write_text("extra\n")
    assert doit(demo, "inject", str(tmp_path / "extra"), "/etc/extra", f"overlay={overlay}").returncode == 0
    assert doit(demo, "restore", "from=works", f"overlay={overlay}").returncode == 0
    explained = doit(demo, "explain", "image", f"overlay={overlay}")
    lines = explained.stdout.splitlines()
    assert lines[0] == "image is up to date" and lines[1].startswith("  but it is the promotion 'works', restored at ")
    assert lines[2:] == ["  the overlay holds /etc/extra, which this image lacks or holds otherwise"]
    assert doit(demo, "forget", "image").returncode == 0
    assert ".  image" in doit(demo, "image", f"overlay={overlay}").stdout
    assert doit(demo, "explain", "image", f"overlay={overlay}").stdout == "image is up to date\n"


def overlay_state(overlay: Path) -> dict[str, str]:
    return {str(path.relative_to(overlay)): path.read_text() if path.is_file() and not path.is_symlink() else "<>"
            for path in sorted(overlay.rglob("*"))} if overlay.exists() else {}


@pytest.mark.parametrize("case", ["over /usr/bin", "over a directory of the overlay", "through a file of the overlay",
                                  "through a symlink in the overlay", "overlay a symlink", "under a file of the image",
                                  "under a symlink of the image", "empty path"])
def test_inject_refuses_what_would_replace_a_directory_or_write_through_a_symlink_and_changes_nothing(demo, tmp_path,
                                                                                                      case):
    """Issue 19, items 2, 3 and 7: refused, one line naming the path and the reason; the overlay, the image and
    everything outside stay as they were (an inject the image refuses leaves nothing in the overlay)."""
    overlay, outside = tmp_path / "overlay", tmp_path / "outside"
    (overlay / "etc/conf.d").mkdir(parents=True)
    (overlay / "etc/motd").write_text("motd\n")
    outside.mkdir()
    source = tmp_path / "file"
    source.write_text("nine bytes")
    destination, expected = {
        "over /usr/bin": ("/usr/bin", "/usr/bin is a directory in the image: a file never replaces a directory"),
        "over a directory of the overlay": ("/etc/conf.d", "a directory in the overlay: a file never replaces"),
        "through a file of the overlay": ("/etc/motd/x", "a file in the overlay where a directory must be"),
        "through a symlink in the overlay": ("/escape/passwd", "a symlink in the overlay: nothing is written"),
        "overlay a symlink": ("/etc/new", "the overlay is a symlink: nothing is written through it"),
        "under a file of the image": ("/etc/hostname/x", "hostname"),
        "under a symlink of the image": ("/bin/x", "/bin"),
        "empty path": ("", '`inject`: an empty argument ("") names nothing'),
    }[case]
    (overlay / "escape").symlink_to(outside)
    chosen = overlay
    if case == "overlay a symlink":
        chosen = tmp_path / "linked-overlay"
        chosen.symlink_to(outside)
    before = (overlay_state(overlay), hash_file(demo.image), sorted(outside.iterdir()))
    result = doit(demo, "inject", str(source), destination, f"overlay={chosen}")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output and expected in output, output
    assert (overlay_state(overlay), hash_file(demo.image), sorted(outside.iterdir())) == before


def image_tree(image: Path, scratch: Path) -> dict[str, tuple]:
    """Every node of an image: kind, mode, owner, and content (a file's hash, a symlink's target); and the hash of
    the EFI partition's loader (``EFI/BOOT/BOOTAA64.EFI``), which lies outside RedoxFS."""
    layout = verify_image(image)
    (efi_dir := scratch.parent / f"{scratch.name}-efi").mkdir(parents=True)
    efi = copy_from_fat(image, layout.efi.offset, layout.efi_file, efi_dir)
    files = ImageFiles(image, hosttools.ensure_own("redox-image"))
    files.get("/", scratch)
    tree: dict[str, tuple | str] = {str(layout.efi_file): hash_file(efi)}
    for entry in files.tree("/"):
        content = hash_file(scratch / entry.path.lstrip("/")) if entry.kind == "f" else entry.target
        tree[entry.path] = (entry.kind, entry.mode, entry.uid, entry.gid, content)
    return tree


def tree_beside_a_full_build(incremental: Path, variables: list[str], env: dict, scratch: Path) -> dict[str, tuple]:
    """The image of the build directory ``incremental``, checked equal file for file to a full build of the same
    tree in another build directory (with the same signing key); /etc/shadow only by kind, mode and owner: its
    hashes are salted from the image's seed, which a changed package changes, so a full build salts them anew where
    the update keeps the previous image's (the same password, other bytes)."""
    import shutil
    full = scratch / "full"
    shutil.copytree(incremental / "cookbook/build", full / "cookbook/build")  # one signing key for both builds
    assert run_doit("image", *variables, f"build={full}", env=env).returncode == 0
    ours = image_tree(incremental / "aarch64/demo.img", scratch / "ours")
    theirs = image_tree(full / "aarch64/demo.img", scratch / "theirs")
    assert ours["/etc/shadow"][:4] == theirs["/etc/shadow"][:4]
    assert {**ours, "/etc/shadow": None} == {**theirs, "/etc/shadow": None}
    return ours


# Each package of the demo changed (file, text, new text) and how the image follows: the package updated in place
# (base-initfs's daemons reach the image in the initfs package), or none: the bootloader, from which the installer
# alone writes the EFI partition, takes a full build (issue 19, item 4).
DEMO_EDITS = {
    "hello": ("recipes/hello/source/src/main.rs", "Hello from", "Hello again from", "hello"),
    "kernel": ("recipes/kernel/source/src/main.rs", "demo kernel placeholder", "demo kernel, edited", "kernel"),
    "base-initfs": ("recipes/base-initfs/source/src/bin/daemon.rs", "demo placeholder", "edited placeholder",
                    "initfs"),
    "bootloader": ("recipes/bootloader/source/bootloader.efi", "", "edited\n", None),
}


@pytest.mark.parametrize("package", DEMO_EDITS)
def test_one_changed_package_updates_the_image_as_a_full_build_would(package, tmp_path):
    """Issue 14, §2: the installer does not run, and the image equals a from-scratch build file for file, and its
    EFI partition's loader byte for byte (a new bootloader once left the old one there)."""
    import shutil
    tree = tmp_path / "demo"
    shutil.copytree(DEMO, tree, ignore=shutil.ignore_patterns("build", "share"))
    variables = [f"root={tree}", "config=config/aarch64/demo.toml", "toolchain=host"]
    env = {"SOURCE_DATE_EPOCH": str(EPOCH)}
    incremental, scratch = tmp_path / "incremental", tmp_path / "scratch"
    assert run_doit("image", *variables, f"build={incremental}", env=env).returncode == 0
    relative, old, new, in_place = DEMO_EDITS[package]
    edited = tree / relative
    edited.write_bytes(edited.read_bytes().replace(old.encode(), new.encode()) if old else
                       edited.read_bytes() + new.encode())
    (tree / "config/aarch64/demo.overlay/etc").mkdir(parents=True)
    (tree / "config/aarch64/demo.overlay/etc/motd").write_text("changed too\n")
    updated = run_doit("image", *variables, f"build={incremental}", env=env)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert (f"image: updated in place ({in_place}), not installed afresh" in updated.stdout) == bool(in_place) and \
        ("updated in place" in updated.stdout) == bool(in_place), updated.stdout
    # this run's log: the installer only merged the config (for /filesystem.toml), or it installed afresh
    assert ("--no-mount" in (incremental / "logs/image.log").read_text()) == (in_place is None)
    assert (incremental / "aarch64/demo.img.bak").is_file()
    ours = tree_beside_a_full_build(incremental, variables, env, scratch)
    assert ours["/etc/motd"][4] == hash_file(tree / "config/aarch64/demo.overlay/etc/motd")
    if package == "bootloader":
        assert ours["EFI/BOOT/BOOTAA64.EFI"] == hash_file(edited)
    again = run_doit("image", *variables, f"build={incremental}", env=env)
    assert ".  image" not in again.stdout


def test_a_package_that_moves_its_files_leaves_no_empty_directory_behind(tmp_path):
    """The incremental update removes the directories the old version alone had, as a full build never makes them."""
    import shutil
    tree = tmp_path / "demo"
    shutil.copytree(DEMO, tree, ignore=shutil.ignore_patterns("build", "share"))
    (tree / "recipes/mover/source").mkdir(parents=True)
    (tree / "recipes/mover/source/where").write_text("old/deep\n")
    (tree / "recipes/mover/recipe.toml").write_text(
        '[build]\ntemplate = "custom"\nscript = """\nwhere=$(cat "$COOKBOOK_SOURCE/where")\n'
        'mkdir -p "$COOKBOOK_STAGE/usr/share/$where"\necho data > "$COOKBOOK_STAGE/usr/share/$where/file"\n"""\n')
    config = tree / "config/aarch64/demo.toml"
    config.write_text(config.read_text().replace("hello = {}\n", "hello = {}\nmover = {}\n"))
    variables = [f"root={tree}", "config=config/aarch64/demo.toml", "toolchain=host"]
    env = {"SOURCE_DATE_EPOCH": str(EPOCH)}
    incremental = tmp_path / "incremental"
    assert run_doit("image", *variables, f"build={incremental}", env=env).returncode == 0
    (tree / "recipes/mover/source/where").write_text("new\n")
    updated = run_doit("image", *variables, f"build={incremental}", env=env)
    assert "image: updated in place (mover)" in updated.stdout, updated.stdout + updated.stderr
    ours = tree_beside_a_full_build(incremental, variables, env, tmp_path)
    assert "/usr/share/old" not in ours and "/usr/share/new/file" in ours


def test_a_package_added_to_the_config_and_removed_again_updates_the_image_in_place(tmp_path):
    """Adding a line to the config (a package and the dependency the installer follows) and taking it out again:
    the installer does not run, and each image equals a full build's file for file, /filesystem.toml included."""
    import shutil
    tree = tmp_path / "demo"
    shutil.copytree(DEMO, tree, ignore=shutil.ignore_patterns("build", "share"))
    for name, depends in (("extra", '[package]\ndependencies = ["extra-data"]\n\n'), ("extra-data", "")):
        (tree / f"recipes/{name}").mkdir(parents=True)
        (tree / f"recipes/{name}/recipe.toml").write_text(
            f'{depends}[build]\ntemplate = "custom"\nscript = """\nmkdir -p "$COOKBOOK_STAGE/usr/share/{name}/deep"\n'
            f'echo {name} > "$COOKBOOK_STAGE/usr/share/{name}/deep/file"\n"""\n')
    config = tree / "config/aarch64/demo.toml"
    original = config.read_text()
    variables = [f"root={tree}", "config=config/aarch64/demo.toml", "toolchain=host"]
    env = {"SOURCE_DATE_EPOCH": str(EPOCH)}
    incremental = tmp_path / "incremental"
    assert run_doit("image", *variables, f"build={incremental}", env=env).returncode == 0
    before = image_tree(incremental / "aarch64/demo.img", tmp_path / "before")

    config.write_text(original.replace("hello = {}\n", "hello = {}\nextra = {}\n"))
    added = run_doit("image", *variables, f"build={incremental}", env=env)
    assert "image: updated in place (extra, extra-data), not installed afresh" in added.stdout, \
        added.stdout + added.stderr
    ours = tree_beside_a_full_build(incremental, variables, env, tmp_path / "added")
    assert {"/usr/share/extra/deep/file", "/usr/share/extra-data/deep/file"} <= set(ours)
    assert ours["/filesystem.toml"] != before["/filesystem.toml"]  # it names the new package

    config.write_text(original)
    removed = run_doit("image", *variables, f"build={incremental}", env=env)
    assert "image: updated in place (-extra, -extra-data), not installed afresh" in removed.stdout, \
        removed.stdout + removed.stderr
    assert image_tree(incremental / "aarch64/demo.img", tmp_path / "after") == before


def test_a_release_is_never_written_through_a_symlinked_directory(tmp_path):
    from tasks.errors import InputError
    from tasks.image.keep import release
    image = tmp_path / "demo.img"
    image.write_bytes(b"image")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "release").symlink_to(elsewhere)
    with pytest.raises(InputError, match="a symlink: a release is written into the build directory"):
        release(image, tmp_path / "release", {}, "v1")
    assert list(elsewhere.iterdir()) == []


def test_an_image_built_from_uncommitted_changes_is_promoted_as_dirty_and_released_only_when_asked(tmp_path):
    """Issue 20, item 6: `doit release` printed `git tag … && git push …` for an image of an edited tree."""
    import shutil
    tree = tmp_path / "demo"
    shutil.copytree(DEMO, tree, ignore=shutil.ignore_patterns("build", "share"))
    env = {"SOURCE_DATE_EPOCH": str(EPOCH), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "demo"]):
        subprocess.run(["git", *command], cwd=tree, check=True, env={**os.environ, **env})
    motd = tree / "config/aarch64/demo.toml"
    motd.write_text(motd.read_text() + "# edited, not committed\n")
    variables = [f"root={tree}", "config=config/aarch64/demo.toml", "toolchain=host", f"build={tmp_path / 'build'}"]
    assert run_doit("image", *variables, env=env).returncode == 0
    assert run_doit("promote", "name=edited", *variables, env=env).returncode == 0
    listed = run_doit("promotions", *variables, env=env).stdout
    assert re.search(r"^edited .* main [0-9a-f]{9,12}-dirty ", listed, re.MULTILINE), listed
    refused = run_doit("release", *variables, env=env)
    assert refused.returncode == 3 and "git tag" not in refused.stdout
    assert "built from uncommitted changes (main): its tag would name a commit that did not make it" in refused.stderr
    assert not (tmp_path / "build/aarch64/release").exists()
    released = run_doit("release", "--dirty-ok", *variables, env=env)
    assert released.returncode == 0 and "git tag -a release-" in released.stdout, released.stderr


def test_explain_image_names_the_config_keys_and_overlay_files_that_changed(tmp_path):
    """Issue 20, item 5: it said `config changed: fa07… -> 8ed2…` and `overlay changed: d:… -> d:…`."""
    import shutil
    tree = tmp_path / "demo"
    shutil.copytree(DEMO, tree, ignore=shutil.ignore_patterns("build", "share"))
    overlay = tree / "config/aarch64/demo.overlay"
    (overlay / "etc").mkdir(parents=True)
    (overlay / "etc/motd").write_text("one\n")
    variables = [f"root={tree}", "config=config/aarch64/demo.toml", "toolchain=host", f"build={tmp_path / 'build'}"]
    env = {"SOURCE_DATE_EPOCH": str(EPOCH)}
    assert run_doit("image", *variables, env=env).returncode == 0
    config = tree / "config/aarch64/demo.toml"
    config.write_text(config.read_text().replace("filesystem_size = 64", "filesystem_size = 96"))
    (overlay / "etc/motd").write_text("two\n")
    (overlay / "etc/issue").write_text("new\n")
    explained = run_doit("explain", "image", *variables, env=env)
    assert explained.returncode == 0, explained.stderr
    lines = explained.stdout.splitlines()
    assert lines[0] == "image is stale:"
    assert f"  image ← config: {tree}/config/aarch64/demo.toml: general.filesystem_size changed" in lines
    assert f"  image ← overlay: {overlay}/etc/issue added" in lines
    assert f"  image ← overlay: {overlay}/etc/motd changed" in lines
