"""The pin, the install check (real rustup), target specs (golden, and parsed by a real nightly rustc when one is
installed) and the Cranelift aarch64 build environment (golden: no Redox toolchain or Cranelift exists here)."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tasks.errors import InputError
from tasks.hashing import hash_file
from tasks.templating import template_path
from tasks.toolchain.env import ArtifactKind, target_build
from tasks.toolchain.fingerprint import fingerprint, fingerprint_parts
from tasks.toolchain.installed import Toolchain, installed_toolchains, verify_toolchain
from tasks.toolchain.pin import CodegenBackend, ToolchainPin, disagreeing_pins, load_pin
from tasks.toolchain.specs import SpecKind, detect_fields, render_spec, write_specs

GOLDEN = Path(__file__).parent / "fixtures" / "toolchain"
SYSROOT = Path("/work/build/aarch64/sysroot")
RUST = Path("/home/dev/.rustup/toolchains/nightly-2026-01-02-x86_64-unknown-linux-gnu")
needs_rustup = pytest.mark.skipif(shutil.which("rustup") is None, reason="rustup is not installed")
DEBIAN = Path("/usr")  # rustc-web, cargo-web and rust-web-src (setup.sh installs them on Debian)
needs_debian_rust = pytest.mark.skipif(not (DEBIAN / "lib/rustlib/src/rust/library").is_dir()
                                       or not (DEBIAN / "bin/cargo").is_file(),
                                       reason="Debian's rustc-web, cargo-web and rust-web-src are not installed")


def test_pin_defaults_without_the_table_and_values_from_it(tmp_path: Path) -> None:
    assert load_pin(tmp_path / "missing.toml") == ToolchainPin()
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.redox.toolchain]\nchannel = "nightly-2026-03-01"\nbackend = "llvm"\n'
                         'components = ["rust-src"]\n')
    pin = load_pin(pyproject, overrides={"backend-path": "~/cg_clif.so"})
    assert (pin.channel, pin.backend, pin.components) == ("nightly-2026-03-01", CodegenBackend.LLVM, ("rust-src",))
    assert pin.backend_path == Path.home() / "cg_clif.so"
    pyproject.write_text('[tool.redox.toolchain]\nbackend = "gcc"\n')
    with pytest.raises(InputError, match=r"pyproject.toml: tool.redox.toolchain.backend: Input should be"):
        load_pin(pyproject)


def test_sources_rust_toolchain_files_are_reported_where_they_differ_and_never_written(tmp_path: Path) -> None:
    """A build never writes into the user's sources (issue 18, also seen): the pin reaches cargo through the
    environment, and the files that name another channel are only listed."""
    files = {
        "rust-toolchain.toml": '[toolchain]\nchannel = "nightly-2026-01-02"\n',
        "recipes/core/kernel/source/rust-toolchain.toml":
            '# kernel pin\n[toolchain]\nchannel = "nightly-2025-01-01"  # old\ncomponents = ["rust-src"]\n',
        "recipes/core/relibc/source/rust-toolchain.toml": '[toolchain\nchannel = "broken"\n',
        "recipes/core/base/source/target/release/rust-toolchain.toml": '[toolchain]\nchannel = "stale copy"\n',
    }
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    found = disagreeing_pins(ToolchainPin(), [tmp_path])
    assert [(path.relative_to(tmp_path).as_posix(), channel) for path, channel in found] == [
        ("recipes/core/kernel/source/rust-toolchain.toml", "nightly-2025-01-01"),
        ("recipes/core/relibc/source/rust-toolchain.toml", "?")]
    assert all((tmp_path / relative).read_text() == text for relative, text in files.items())


@needs_rustup
def test_missing_toolchain_fails_with_the_install_command() -> None:
    pin = ToolchainPin(channel="nightly-1999-01-01")
    with pytest.raises(InputError) as failure:
        verify_toolchain(pin)
    assert str(failure.value) == (
        "tool.redox.toolchain: toolchain nightly-1999-01-01 is not installed; fix: `rustup toolchain install "
        "nightly-1999-01-01 --component rust-src --component rustc-codegen-cranelift-preview "
        "--component llvm-tools-preview`")


@needs_rustup
def test_missing_components_fail_with_the_install_command() -> None:
    channel = installed_toolchains()[0]  # whatever is installed; it has no Cranelift component here
    pin = ToolchainPin(channel=channel, components=("rust-src",))
    have = subprocess.run(["rustup", "component", "list", "--installed", "--toolchain", channel],
                          capture_output=True, text=True).stdout
    if "cranelift" in have or "rust-src" in have:
        pytest.skip(f"{channel} already has these components")
    with pytest.raises(InputError, match=rf"toolchain {channel} lacks component rust-src, "
                                         rf"rustc-codegen-cranelift-preview; fix: `rustup toolchain install "
                                         rf"{channel} --component rust-src --component "
                                         rf"rustc-codegen-cranelift-preview`"):
        verify_toolchain(pin)


@needs_rustup
def test_missing_backend_library_fails_with_how_to_build_it(tmp_path: Path) -> None:
    pin = ToolchainPin(channel=installed_toolchains()[0], components=(), backend_path=tmp_path / "libcg.so")
    with pytest.raises(InputError, match=r"backend-path: Cranelift backend .*libcg.so does not exist; build it in "
                                         r"a rustc_codegen_cranelift checkout with `./y.sh prepare"):
        verify_toolchain(pin)


@needs_rustup
def test_installed_llvm_toolchain_verifies_and_fingerprints(tmp_path: Path) -> None:
    pin = ToolchainPin(channel=installed_toolchains()[0], components=(), backend="llvm")
    toolchain = verify_toolchain(pin)
    assert (toolchain.tools_dir / "rust-lld").is_file() and toolchain.codegen_backend is None
    specs = write_specs(tmp_path / "aarch64", "aarch64", tmp_path / "aarch64" / "sysroot")

    def digests() -> dict[str, str]:
        return {path.name: hash_file(path) for path in specs.values()}
    parts = fingerprint_parts(toolchain, digests())
    assert parts["rustc"].startswith("rustc ") and set(parts["specs"]) == {
        "aarch64-unknown-none.json", "aarch64-unknown-redox-clif.json", "aarch64-unknown-redox-clif-bootstrap.json"}
    before = fingerprint(toolchain, digests())
    assert fingerprint(toolchain, digests()) == before
    write_specs(tmp_path / "aarch64", "aarch64", tmp_path / "elsewhere" / "sysroot")
    assert fingerprint(toolchain, digests()) != before


@pytest.mark.parametrize("kind", list(SpecKind))
def test_target_specs_match_golden(kind: SpecKind) -> None:
    text = render_spec(kind, "aarch64", SYSROOT)
    assert text == (GOLDEN / f"{kind.value}.json").read_text()
    spec = json.loads(text)
    if kind is SpecKind.USERSPACE:
        assert spec["position-independent-executables"] is False
        assert spec["pre-link-objects"]["static-nopic-exe"] == [f"{SYSROOT}/lib/crt0.o", f"{SYSROOT}/lib/crti.o"]


def test_specs_are_written_once_and_reject_relative_sysroot(tmp_path: Path) -> None:
    written = write_specs(tmp_path, "aarch64", tmp_path / "sysroot")
    mtimes = {kind: path.stat().st_mtime_ns for kind, path in written.items()}
    assert {kind: path.stat().st_mtime_ns for kind, path in write_specs(tmp_path, "aarch64",
                                                                         tmp_path / "sysroot").items()} == mtimes
    with pytest.raises(InputError, match="absolute path"):
        render_spec(SpecKind.USERSPACE, "aarch64", Path("build/aarch64/sysroot"))
    with pytest.raises(InputError, match="no target spec parameters for architecture 'x86_64'"):
        render_spec(SpecKind.KERNEL, "x86_64", SYSROOT)


def _compilers() -> list:
    """Each installed compiler the tests can run: rustup's toolchains and Debian's rustc-web."""
    pins = [ToolchainPin(channel=name, components=(), backend="llvm")
            for name in (installed_toolchains() if shutil.which("rustup") else [])]
    if (DEBIAN / "lib/rustlib/src/rust/library").is_dir() and (DEBIAN / "bin/cargo").is_file():
        pins.append(ToolchainPin(path=DEBIAN, components=(), backend="llvm"))
    return [pytest.param(pin, id=pin.name) for pin in pins]


@pytest.mark.parametrize("pin", _compilers())
def test_each_compiler_loads_every_spec_with_the_fields_detected_for_it(tmp_path: Path, pin: ToolchainPin) -> None:
    """rustc 1.96 needs ``rustc-abi`` in a soft-float kernel spec; 1.95 rejects it: detected, not guessed."""
    toolchain = verify_toolchain(pin, search_path="/usr/bin:/bin")
    fields = detect_fields(toolchain, "aarch64")
    version = toolchain.output("rustc", "-V")
    if "1.96." in version:
        assert fields[SpecKind.KERNEL] == {"rustc-abi": "softfloat"}
    if "1.95." in version:
        assert fields[SpecKind.KERNEL] == {}
    for kind, spec in write_specs(tmp_path, "aarch64", tmp_path / "sysroot", fields).items():
        cfg = toolchain.output("rustc", "-Zunstable-options", "--print", "cfg", "--target", str(spec)).splitlines()
        assert 'target_arch="aarch64"' in cfg and 'target_has_atomic="64"' in cfg
        assert 'target_has_atomic="128"' not in cfg
        if kind is SpecKind.KERNEL:
            assert 'target_abi="softfloat"' in cfg and 'target_feature="neon"' not in cfg
        else:
            assert {'target_os="redox"', 'target_env="relibc"', 'target_feature="neon"'} <= set(cfg)
        if kind is SpecKind.USERSPACE:
            assert 'target_feature="crt-static"' in cfg


def cranelift_toolchain(backend_path: Path | None = None, json_flag: bool = False) -> Toolchain:
    """The fork's toolchain as it would be installed on a Linux host (not runnable here)."""
    return Toolchain(pin=ToolchainPin(backend_path=backend_path), host="x86_64-unknown-linux-gnu", sysroot=RUST,
                     backend_library=backend_path, json_target_spec_flag=json_flag)


def test_cranelift_userspace_build_environment_and_cargo_command_golden() -> None:
    spec = Path("/work/build/aarch64/aarch64-unknown-redox-clif.json")
    build = target_build(cranelift_toolchain(), ArtifactKind.USERSPACE, spec=spec, sysroot=SYSROOT, base={})
    tools = f"{RUST}/lib/rustlib/x86_64-unknown-linux-gnu/bin"
    assert dict(build.set) == {
        "RUSTUP_TOOLCHAIN": "nightly-2026-01-02",
        "CARGO_INCREMENTAL": "0",
        "RUSTFLAGS": f"-Zcodegen-backend=cranelift -L {SYSROOT}/lib -C panic=abort -C link-arg=-z "
                     "-C link-arg=muldefs",
        "AR": f"{tools}/llvm-ar", "STRIP": f"{tools}/llvm-strip", "OBJCOPY": f"{tools}/llvm-objcopy",
        "NM": f"{tools}/llvm-nm", "RANLIB": f"{tools}/llvm-ar s", "RUST_LLD": f"{tools}/rust-lld",
        "CARGO_TARGET_AARCH64_UNKNOWN_REDOX_CLIF_LINKER": f"{tools}/rust-lld",
        "CARGO_PROFILE_RELEASE_LTO": "off", "CARGO_PROFILE_DEV_LTO": "off", "COOKBOOK_CRANELIFT": "1",
        "COOKBOOK_STATIC": "1",
        # no clang was found: cc-rs gets a stand-in that refuses, never the host's cc
        "CC_aarch64_unknown_redox_clif": f"{template_path('no_target_compiler')} C",
        "CXX_aarch64_unknown_redox_clif": f"{template_path('no_target_compiler')} C++",
        "AR_aarch64_unknown_redox_clif": f"{tools}/llvm-ar",
    }
    env = build.env(base={"RUSTC_WRAPPER": "sccache", "CC_WRAPPER": "sccache", "HOME": "/home/dev"})
    assert "RUSTC_WRAPPER" not in env and "CC_WRAPPER" not in env and env["HOME"] == "/home/dev"
    assert build.cargo_argv("build", "--release", "-p", "init") == [
        "cargo", "build", "--target", str(spec), "-Zbuild-std=std,core,alloc,panic_abort",
        "-Zbuild-std-features=compiler_builtins/no-f16-f128", "--release", "-p", "init"]


def test_target_builds_compile_c_with_clang_for_the_target_and_relibcs_headers_or_refuse() -> None:
    """cc-rs crates (onig_sys, blake3, lzma-sys) get clang for aarch64 Redox with the sysroot's relibc headers; the
    kernel and the bootstrap, which link no libc, get the stand-in that refuses (issue 18, item 3)."""
    clang = Path("/usr/bin/clang-22")
    toolchain = dataclasses.replace(cranelift_toolchain(), tools={"clang": clang})
    spec = Path("/work/build/aarch64/aarch64-unknown-redox-clif.json")
    for kind in (ArtifactKind.USERSPACE, ArtifactKind.RELIBC):
        build = target_build(toolchain, kind, spec=spec, sysroot=SYSROOT, base={})
        assert build.set["CC_aarch64_unknown_redox_clif"] == str(clang)
        assert build.set["CFLAGS_aarch64_unknown_redox_clif"] == (
            f"--target=aarch64-unknown-redox -nostdlibinc -isystem {SYSROOT}/include -D__redox__ -D__unix__")
    kernel = target_build(toolchain, ArtifactKind.KERNEL, spec=spec.with_name("aarch64-unknown-none.json"),
                          sysroot=SYSROOT, base={})
    assert kernel.set["CC_aarch64_unknown_none"] == f"{template_path('no_target_compiler')} C"
    assert "CFLAGS_aarch64_unknown_none" not in kernel.set


def test_the_stand_in_compiler_fails_naming_the_crate_and_the_fix() -> None:
    failed = subprocess.run([template_path("no_target_compiler"), "C", "-c", "x.c"], capture_output=True, text=True,
                            env={"PATH": os.defpath, "CARGO_PKG_NAME": "onig_sys",
                                 "TARGET": "aarch64-unknown-redox-clif"})
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith("error: crate onig_sys compiles C for aarch64-unknown-redox-clif, and this build "
                                    "has no C compiler for that target") and "install clang" in failed.stderr


def test_kernel_and_relibc_build_std_and_self_built_backend() -> None:
    library = Path("/opt/cg_clif/dist/lib/librustc_codegen_cranelift.so")
    toolchain = cranelift_toolchain(backend_path=library, json_flag=True)
    spec = Path("/work/build/aarch64/aarch64-unknown-none.json")
    kernel = target_build(toolchain, ArtifactKind.KERNEL, spec=spec, sysroot=SYSROOT,
                          extra_rustflags=["-C", "link-arg=-Tlinkers/aarch64.ld"], base={"LD_LIBRARY_PATH": "/x"})
    assert kernel.set["RUSTFLAGS"] == (f"-Zcodegen-backend={library} -C relocation-model=static "
                                       "-C link-arg=-Tlinkers/aarch64.ld")
    assert kernel.set["LD_LIBRARY_PATH"] == f"{RUST}/lib:/x" and kernel.set["DYLD_LIBRARY_PATH"] == f"{RUST}/lib"
    assert kernel.cargo_flags == ("-Zbuild-std=core,alloc",
                                  "-Zbuild-std-features=compiler-builtins-mem,compiler_builtins/no-f16-f128")
    assert kernel.set["CARGO_UNSTABLE_JSON_TARGET_SPEC"] == "true"  # reaches a plain cargo in a Makefile too
    relibc = target_build(toolchain, ArtifactKind.RELIBC, spec=spec, sysroot=SYSROOT, base={})
    assert relibc.cargo_flags[0] == "-Zbuild-std=core,alloc"
    llvm = Toolchain(pin=ToolchainPin(backend="llvm"), host="x86_64-unknown-linux-gnu", sysroot=RUST,
                     backend_library=None, json_target_spec_flag=False)
    plain = target_build(llvm, ArtifactKind.RELIBC, spec=spec, sysroot=SYSROOT, base={})
    assert plain.set["RUSTFLAGS"] == "" and "CARGO_PROFILE_RELEASE_LTO" not in plain.set


def differences(first: dict, second: dict) -> dict[str, tuple]:
    return {key: (first.get(key), second.get(key)) for key in first.keys() | second.keys()
            if first.get(key) != second.get(key)}


@pytest.mark.parametrize("kind", list(ArtifactKind))
def test_cranelift_and_llvm_builds_differ_only_in_what_the_backend_requires(kind: ArtifactKind) -> None:
    spec = Path("/work/build/aarch64/aarch64-unknown-redox-clif.json")
    builds = {backend: target_build(Toolchain(pin=ToolchainPin(backend=backend), host="x86_64-unknown-linux-gnu",
                                              sysroot=RUST, backend_library=None, json_target_spec_flag=True),
                                    kind, spec=spec, sysroot=SYSROOT, base={})
              for backend in ("cranelift", "llvm")}
    cranelift, llvm = builds["cranelift"], builds["llvm"]
    rustflags = (cranelift.set["RUSTFLAGS"], llvm.set["RUSTFLAGS"])
    assert rustflags[0] == " ".join(["-Zcodegen-backend=cranelift", *([rustflags[1]] if rustflags[1] else [])])
    assert differences(dict(cranelift.set), dict(llvm.set)) == {
        "RUSTFLAGS": rustflags,
        "CARGO_PROFILE_RELEASE_LTO": ("off", None), "CARGO_PROFILE_DEV_LTO": ("off", None),  # Cranelift has no LTO
        "COOKBOOK_CRANELIFT": ("1", None)}
    no_libc = (ArtifactKind.KERNEL, ArtifactKind.BOOTSTRAP)
    features = ["compiler-builtins-mem"] if kind in no_libc else []
    flag = lambda names: [f"-Zbuild-std-features={','.join(names)}"] if names else []  # noqa: E731
    assert cranelift.cargo_flags == (cranelift.cargo_flags[0], *flag([*features, "compiler_builtins/no-f16-f128"]))
    assert llvm.cargo_flags == (cranelift.cargo_flags[0], *flag(features))


@needs_debian_rust
def test_a_rust_installation_outside_rustup_is_selected_by_its_directory() -> None:
    toolchain = verify_toolchain(ToolchainPin(path=DEBIAN, backend="llvm", components=()), search_path="/usr/bin:/bin")
    assert toolchain.name == "/usr" and toolchain.sysroot == DEBIAN and not toolchain.unstable
    assert toolchain.json_target_spec_flag  # cargo 1.96 refuses a .json target without it
    # Debian has no rust-lld and no llvm-tools: LLVM's own tools, of the compiler's LLVM version where installed
    # (rust-web-llvm), and lld's ld.lld
    llvm = toolchain.output("rustc", "-vV").split("LLVM version: ")[1].split(".")[0]
    preferred = {tool: next(name for name in (f"{program}-{llvm}", program) if shutil.which(name, path="/usr/bin"))
                 for tool, program in {"llvm-ar": "llvm-ar", "llvm-strip": "llvm-strip", "llvm-objcopy": "llvm-objcopy",
                                       "llvm-nm": "llvm-nm", "rust-lld": "ld.lld", "clang": "clang"}.items()}
    assert {name: path.name for name, path in toolchain.tools.items()} == preferred
    assert preferred["llvm-ar"] == f"llvm-ar-{llvm}"
    build = target_build(toolchain, ArtifactKind.USERSPACE, spec=Path("/b/aarch64-unknown-redox-clif.json"),
                         sysroot=SYSROOT, base={"PATH": "/home/dev/.cargo/bin:/usr/bin"})
    # reached through the environment: its bin/ first on PATH, its rustc, and unstable flags on a release compiler
    assert (build.set["PATH"], build.set["RUSTC"], build.set["RUSTC_BOOTSTRAP"]) == (
        "/usr/bin:/home/dev/.cargo/bin:/usr/bin", "/usr/bin/rustc", "1")
    assert "RUSTUP_TOOLCHAIN" not in build.set and build.set["RUST_LLD"] == "/usr/bin/ld.lld"
    assert build.set["CARGO_TARGET_AARCH64_UNKNOWN_REDOX_CLIF_LINKER"] == "/usr/bin/ld.lld"


def test_a_directory_that_is_no_rust_installation_is_named(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/rustc").write_text("")
    with pytest.raises(InputError, match=r"tool.redox.toolchain.path: not a Rust installation: no bin/cargo in "):
        verify_toolchain(ToolchainPin(path=tmp_path, backend="llvm"))


def test_missing_binutils_and_linker_are_each_named(tmp_path: Path) -> None:
    from tasks.toolchain.installed import find_tools
    toolchain = Toolchain(pin=ToolchainPin(path=tmp_path, backend="llvm"), host="x86_64-unknown-linux-gnu",
                          sysroot=tmp_path, backend_library=None, json_target_spec_flag=True)
    (tmp_path / "bin").mkdir()
    ar = tmp_path / "bin" / "llvm-ar-22"
    ar.write_text("#!/bin/sh\n")
    ar.chmod(0o755)
    with pytest.raises(InputError) as raised:
        find_tools(toolchain, "22", search_path=str(tmp_path / "bin"))
    message = str(raised.value)
    assert "lacks llvm-strip, llvm-objcopy, llvm-nm, rust-lld (or ld.lld): looked in " in message
    assert "llvm-ar," not in message and "(also as -22)" in message
