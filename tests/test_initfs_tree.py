"""The initfs tree (tasks/initfs/tree.py): layout data, rendered etc/ files, assembly with a real strip tool.

There is no Redox target toolchain here, so the "built binaries" are host executables compiled with cc; the code path
(strip with `-o OUT IN`, copy, chmod, archive) is the one the real build takes with the toolchain's llvm-strip.
"""
from __future__ import annotations

import re
import shutil
import stat
import tomllib
from pathlib import Path

import jinja2
import pytest

from tasks.errors import CommandError, InputError
from tasks.initfs.format import InodeKind, read_initfs, write_initfs
from tasks.initfs.tree import (
    LAYOUT_FILE,
    TEMPLATES,
    InitfsLayout,
    assemble_tree,
    load_layout,
    render_init_drivers_rc,
    render_init_rc,
    render_pcid_config,
)
from tasks.process import run

TARGET = "aarch64-unknown-redox"
MANIFEST = {"commit": "5c7cb6174", "dirty": False, "date": "2026-01-17 21:50", "components": {"kernel": "9e26893"}}
# Commands that redox init runs itself rather than from PATH
INIT_BUILTINS = {"cd", "echo", "export", "run", "run.d", "stdio", "unset"}
RUN_PREFIXES = {"nowait", "notify"}


def layouts() -> list[InitfsLayout]:
    targets = tomllib.loads(LAYOUT_FILE.read_text())["targets"]
    return [load_layout(target, board) for target, table in targets.items()
            for board in [None, *table.get("boards", {})]]


def commands(script: str) -> set[str]:
    """The programs an init script runs."""
    found = set()
    for line in script.splitlines():
        words = line.split()
        while words and words[0] in RUN_PREFIXES:
            words = words[1:]
        if words and not words[0].startswith("#") and words[0] not in INIT_BUILTINS:
            found.add(words[0])
    return found


# --- layout --------------------------------------------------------------------------------------------------------

def test_default_aarch64_layout_is_the_forks_initfs():
    layout = load_layout(TARGET)
    assert set(layout.bin) >= {"init", "logd", "ramfs", "randd", "zerod", "pcid", "pcid-spawner", "acpid",
                               "fbbootlogd", "fbcond", "hwd", "inputd", "lived", "rtcd", "vesad", "redoxfs"}
    assert layout.drivers == ("nvmed", "virtio-blkd", "virtio-gpud", "virtio-9pd")
    assert layout.copies == {"nulld": "zerod"}


def test_a_board_replaces_the_keys_it_sets():
    virt, raspi = load_layout(TARGET), load_layout(TARGET, "raspi3bp")
    assert raspi.bin == virt.bin
    assert raspi.board_bin == ("bcm2835-sdhcid",) and raspi.drivers == () and raspi.pcid == ()
    assert "bcm2835-sdhcid" in raspi.binaries and "virtio-blkd" not in raspi.binaries


@pytest.mark.parametrize("layout", layouts(), ids=lambda layout: f"{layout.target}/{layout.board or 'default'}")
def test_every_command_the_init_scripts_run_is_in_bin(layout):
    available = set(layout.daemons) | set(layout.copies)
    assert commands(render_init_rc(MANIFEST)) - available == set()
    assert commands(render_init_drivers_rc(layout)) - available == set()


@pytest.mark.parametrize("layout", layouts(), ids=lambda layout: f"{layout.target}/{layout.board or 'default'}")
def test_pcid_config_renders_to_the_layouts_entries(layout):
    parsed = tomllib.loads(render_pcid_config(layout))
    expected = [driver.model_dump(by_alias=True, exclude_none=True) | {"command": list(driver.command)}
                for driver in layout.pcid]
    assert parsed.get("drivers", []) == expected


def test_unknown_target_and_board_are_input_errors():
    with pytest.raises(InputError, match=r"targets\.x86_64-unknown-redox: no initfs layout .*known: aarch64"):
        load_layout("x86_64-unknown-redox")
    with pytest.raises(InputError, match=r"boards\.rpi5: no such board \(known: raspi3bp\)"):
        load_layout(TARGET, "rpi5")


@pytest.mark.parametrize("keys, message", [
    ('drivers = ["nvmed", "nvmed"]', "listed twice in lib/drivers/: nvmed"),
    ('drivers = ["nvmed"]\ncopies = { nulld = "missing" }', "copies: bin/nulld"),
    ('drivers = []', "pcid entry 'NVMe' runs /scheme/initfs/lib/drivers/nvmed, which is not one of the drivers"),
    ('drivers = ["nvmed"]\nsurprise = 1', "surprise: Extra inputs are not permitted"),
    ('drivers = ["nvmed"', "not valid TOML"),
])
def test_inconsistent_layouts_are_rejected(tmp_path, keys, message):
    layout_file = tmp_path / "layout.toml"
    layout_file.write_text(f"""
[targets.t]
bin = ["init", "zerod"]
init_drivers = []
{keys}
[[targets.t.pcid]]
name = "NVMe"
command = ["/scheme/initfs/lib/drivers/nvmed"]
""")
    with pytest.raises(InputError, match=re.escape(message)):
        load_layout("t", path=layout_file)


# --- init.rc -------------------------------------------------------------------------------------------------------

def test_init_rc_has_the_stamp_on_line_2_and_the_log_level():
    text = render_init_rc(MANIFEST | {"dirty": True}, rust_log="info,pcid=debug")
    lines = text.splitlines()
    assert lines[1] == "# Pure-Rust Redox | Build: 5c7cb6174-dirty | 2026-01-17 21:50"
    assert "export PATH /scheme/initfs/bin" in lines
    assert "export RUST_BACKTRACE 1" in lines
    assert [line for line in lines if "RUST_LOG" in line] == ["export RUST_LOG info,pcid=debug"]
    assert lines.index("run /scheme/initfs/etc/init_drivers.rc") < lines.index(
        "redoxfs --uuid $REDOXFS_UUID file $REDOXFS_BLOCK")
    assert lines[-3:] == ["cd /", "export PATH /usr/bin", "run.d /usr/lib/init.d /etc/init.d"]
    assert render_init_rc(MANIFEST).splitlines()[1] == "# Pure-Rust Redox | Build: 5c7cb6174 | 2026-01-17 21:50"


@pytest.mark.parametrize("rust_log", ["", "warn\nrm -rf /", "info debug"])
def test_rust_log_that_would_break_init_rc_is_rejected(rust_log):
    with pytest.raises(InputError, match="rust_log"):
        render_init_rc(MANIFEST, rust_log)


@pytest.mark.parametrize("manifest, key", [
    ({"dirty": False, "date": "2026-01-17"}, "commit"),
    ({"commit": "abc\nexport PATH /evil", "date": "2026-01-17"}, "commit"),
    ({"commit": "abc", "date": "today\nnulld"}, "date"),
])
def test_bad_stamps_are_rejected(manifest, key):
    with pytest.raises(InputError, match=f"^{key}: "):
        render_init_rc(manifest)


def test_templates_fail_on_undefined_variables():
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined)
    with pytest.raises(jinja2.UndefinedError):
        environment.get_template("init.rc.j2").render(rust_log="warn")
    with pytest.raises(InputError):  # the module's own environment: a stamp without a date never renders
        render_init_rc({"commit": "abc"})


# --- assembly ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built_binaries(tmp_path_factory) -> dict[str, Path]:
    """One real executable with symbols and debug info per name of the default layout (host stand-ins)."""
    directory = tmp_path_factory.mktemp("built")
    (directory / "daemon.c").write_text("int main(void) { return 7; }\n")
    run(["cc", "-g", "-O0", "-o", directory / "daemon", directory / "daemon.c"])
    binaries = {}
    for name in load_layout(TARGET).binaries:
        binaries[name] = directory / name
        shutil.copyfile(directory / "daemon", binaries[name])
        binaries[name].chmod(0o700)
    return binaries


def strip_tool() -> Path:
    """The toolchain's llvm-strip when installed, else binutils' strip: both take `-o OUT IN`."""
    return Path(shutil.which("llvm-strip") or shutil.which("strip"))


def sections(path: Path) -> str:
    return run(["readelf", "-S", "-W", path], capture=True)


def test_assemble_strips_binaries_into_bin_and_lib_drivers(tmp_path, built_binaries):
    layout = load_layout(TARGET)
    tree = assemble_tree(tmp_path / "initfs", layout, built_binaries, manifest=MANIFEST, rust_log="debug",
                         strip=strip_tool(), log=tmp_path / "strip.log")

    expected = {f"bin/{name}" for name in layout.daemons} | {f"lib/drivers/{name}" for name in layout.drivers} | {
        "bin/nulld", "etc/init.rc", "etc/init_drivers.rc", "etc/pcid/initfs.toml"}
    assert set(tree.files) == expected
    original = built_binaries["init"]
    stripped = tmp_path / "initfs" / "bin" / "init"
    assert ".symtab" in sections(original) and ".debug_info" in sections(original)
    assert ".symtab" not in sections(stripped) and ".debug_info" not in sections(stripped)
    assert stripped.stat().st_size < original.stat().st_size
    run([stripped], ok_codes=[7])  # still a working executable
    assert stat.S_IMODE(stripped.stat().st_mode) == 0o755
    assert (tmp_path / "initfs" / "bin" / "nulld").read_bytes() == (tmp_path / "initfs" / "bin" / "zerod").read_bytes()
    assert "export RUST_LOG debug" in (tmp_path / "initfs" / "etc" / "init.rc").read_text()
    assert stat.S_IMODE((tmp_path / "initfs" / "etc" / "init.rc").stat().st_mode) == 0o644


def test_assemble_without_strip_copies_and_replaces_the_old_tree(tmp_path, built_binaries):
    (tmp_path / "initfs" / "bin").mkdir(parents=True)
    (tmp_path / "initfs" / "bin" / "stale").write_text("from an earlier build")

    assemble_tree(tmp_path / "initfs", load_layout(TARGET), built_binaries, manifest=MANIFEST)

    assert not (tmp_path / "initfs" / "bin" / "stale").exists()
    assert (tmp_path / "initfs" / "lib" / "drivers" / "nvmed").read_bytes() == built_binaries["nvmed"].read_bytes()
    assert not (tmp_path / "initfs.partial").exists()


def test_missing_binaries_are_named(tmp_path, built_binaries):
    partial = {name: path for name, path in built_binaries.items() if name not in ("redoxfs", "virtio-9pd")}
    with pytest.raises(InputError, match="no built binary for redoxfs, virtio-9pd"):
        assemble_tree(tmp_path / "initfs", load_layout(TARGET), partial, manifest=MANIFEST)

    gone = dict(built_binaries, lived=tmp_path / "target" / "release" / "lived")
    with pytest.raises(InputError, match=r"missing on disk: lived \(.*target/release/lived\)"):
        assemble_tree(tmp_path / "initfs", load_layout(TARGET), gone, manifest=MANIFEST)
    assert not (tmp_path / "initfs").exists()


def test_a_failing_strip_keeps_the_previous_tree(tmp_path, built_binaries):
    assemble_tree(tmp_path / "initfs", load_layout(TARGET), built_binaries, manifest=MANIFEST)
    before = sorted(path.name for path in (tmp_path / "initfs" / "bin").iterdir())
    with pytest.raises(CommandError, match="failed with exit status 1"):
        assemble_tree(tmp_path / "initfs", load_layout(TARGET), built_binaries, manifest=MANIFEST,
                      strip=Path(shutil.which("false")))
    assert sorted(path.name for path in (tmp_path / "initfs" / "bin").iterdir()) == before
    assert not (tmp_path / "initfs.partial").exists()


def test_assembled_tree_archives_and_reads_back(tmp_path, built_binaries):
    layout = load_layout(TARGET)
    assemble_tree(tmp_path / "initfs", layout, built_binaries, manifest=MANIFEST, strip=strip_tool())
    write_initfs(tmp_path / "initfs", tmp_path / "initfs.img", bootstrap=built_binaries["init"], mtime=0)

    image = read_initfs(tmp_path / "initfs.img")
    contents = {path: image.content(inode) for path, inode in image.walk() if inode.kind is InodeKind.FILE}
    assert contents["etc/init.rc"].decode().splitlines()[1] == \
        "# Pure-Rust Redox | Build: 5c7cb6174 | 2026-01-17 21:50"
    assert contents["bin/redoxfs"] == (tmp_path / "initfs" / "bin" / "redoxfs").read_bytes()
    assert contents["lib/drivers/virtio-gpud"][:4] == b"\x7fELF"
    assert {inode.mode for path, inode in image.walk() if path.startswith("bin/")} == {0o755}


USER_INIT_RC = ("# the fork's init.rc\n# Pure-Rust Redox | Build: 0000000 | edited by hand\n"
                "export PATH /scheme/initfs/bin\nexport RUST_LOG pcid=debug\nrtcd\n")


def test_the_users_init_rc_changes_only_in_its_stamp_and_on_request_its_rust_log(tmp_path: Path) -> None:
    from tasks.initfs.tree import BuildStamp, stamped_init_rc
    stamp = BuildStamp(commit="5c7cb6174", date="2026-01-17 21:50")
    kept = stamped_init_rc(USER_INIT_RC, stamp, None, tmp_path / "init.rc")
    assert kept == USER_INIT_RC.replace("0000000 | edited by hand", "5c7cb6174 | 2026-01-17 21:50")
    changed = stamped_init_rc(USER_INIT_RC, stamp, "info", tmp_path / "init.rc")
    assert changed == kept.replace("export RUST_LOG pcid=debug", "export RUST_LOG info")
    # a line 2 that is no comment stays: the stamp goes in before it
    assert stamped_init_rc("# first\nrtcd\n", stamp, None, tmp_path / "init.rc").splitlines() == [
        "# first", "# Pure-Rust Redox | Build: 5c7cb6174 | 2026-01-17 21:50", "rtcd"]
    with pytest.raises(InputError, match=r"init.rc: rust_log: has no `export RUST_LOG` line"):
        stamped_init_rc("# first\n# second\nrtcd\n", stamp, "info", tmp_path / "init.rc")


def test_the_users_files_are_taken_all_three_or_not_at_all(tmp_path: Path) -> None:
    from tasks.initfs.tree import user_files
    assert user_files(tmp_path, "aarch64-unknown-redox") is None  # no init.rc: the project's templates
    (tmp_path / "init.rc").write_text(USER_INIT_RC)
    with pytest.raises(InputError, match=r"has init.rc but not aarch64-unknown-redox/init_drivers.rc, "
                                         r"drivers/initfs.toml"):
        user_files(tmp_path, "aarch64-unknown-redox")
    for name in ("aarch64-unknown-redox/init_drivers.rc", "drivers/initfs.toml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"# {name}\n")
    assert user_files(tmp_path, "aarch64-unknown-redox") == {
        "etc/init.rc": tmp_path / "init.rc", "etc/init_drivers.rc": tmp_path / "aarch64-unknown-redox/init_drivers.rc",
        "etc/pcid/initfs.toml": tmp_path / "drivers/initfs.toml"}
