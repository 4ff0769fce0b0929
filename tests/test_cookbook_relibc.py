"""relibc stage → sysroot with the real tools: cc-built objects, ar archives, rust-lld from the installed
Rust toolchain (llvm-ar is not installed here; binutils ar reads and writes the same archive format)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tasks.cookbook.relibc import EMPTY_ARCHIVE, STUB_LIBRARIES, assemble_relibc_sysroot
from tasks.errors import InputError
from tasks.settings import host_triple


def rust_lld() -> Path | None:
    if shutil.which("rustc") is None:
        return None
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True).stdout.strip()
    lld = Path(sysroot) / "lib" / "rustlib" / host_triple() / "bin" / "rust-lld"
    return lld if lld.is_file() else None


pytestmark = pytest.mark.skipif(rust_lld() is None or shutil.which("cc") is None or shutil.which("ar") is None,
                                reason="needs cc, ar and rust-lld")


def archive(directory: Path, name: str, symbols: list[str]) -> Path:
    objects = []
    for symbol in symbols:
        source = directory / f"{name}-{symbol}.c"
        source.write_text(f"int {symbol}(void) {{ return 0; }}\n")
        objects.append(directory / f"{name}-{symbol}.o")
        subprocess.run(["cc", "-c", source, "-o", objects[-1]], check=True)
    library = directory / f"lib{name}.a"
    subprocess.run(["ar", "rcs", library, *objects], check=True)
    for path in objects:
        path.unlink()
    return library


def symbols(path: Path) -> set[str]:
    return {line.split()[-1] for line in subprocess.run(["nm", path], capture_output=True, text=True,
                                                        check=True).stdout.splitlines() if line.strip()}


def test_cargo_output_becomes_the_sysroot(tmp_path: Path) -> None:
    stage = tmp_path / "relibc-release"
    stage.mkdir()
    archive(stage, "relibc", ["printf", "malloc"])
    for crt, names in {"crt0": ["_start", "relibc_start"], "crti": ["_init"], "crtn": ["_fini"]}.items():
        archive(stage, crt, names)
    (stage / "include" / "sys").mkdir(parents=True)
    (stage / "include" / "sys" / "types.h").write_text("/* header */\n")
    sysroot = tmp_path / "build" / "aarch64" / "sysroot"

    assemble_relibc_sysroot(stage, sysroot, ar="ar", rust_lld=str(rust_lld()), log=tmp_path / "relibc.log")
    lib = sysroot / "lib"
    assert sorted(path.name for path in lib.iterdir()) == sorted(
        ["libc.a", "crt0.o", "crti.o", "crtn.o", *STUB_LIBRARIES])
    assert symbols(lib / "libc.a") >= {"printf", "malloc"}
    assert symbols(lib / "crt0.o") == {"_start", "relibc_start"}  # both members merged into one object
    assert b"ELF" in (lib / "crt0.o").read_bytes()[:4]
    assert all((lib / stub).read_bytes() == EMPTY_ARCHIVE for stub in STUB_LIBRARIES)
    assert (sysroot / "include" / "sys" / "types.h").is_file()
    assert not sysroot.with_name("sysroot.partial").exists()


def test_missing_crt_keeps_the_previous_sysroot(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    stage.mkdir()
    archive(stage, "relibc", ["printf"])
    sysroot = tmp_path / "sysroot"
    (sysroot / "lib").mkdir(parents=True)
    (sysroot / "lib" / "libc.a").write_text("previous\n")
    with pytest.raises(InputError, match="relibc stage has neither crt0.o nor libcrt0.a"):
        assemble_relibc_sysroot(stage, sysroot, ar="ar", rust_lld=str(rust_lld()))
    assert (sysroot / "lib" / "libc.a").read_text() == "previous\n"
