"""Cooking on the host triple with real cargo, make, bash and strip (no Redox toolchain exists here)."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
from cookbook_fixtures import (
    bare_repository,
    cook_paths,
    copy_fixtures,
    host_request,
    http_server,
    serve_greet_tarball,
    source_paths,
    write_recipe,
)

from tasks.cookbook.cook import cook
from tasks.cookbook.fetch import fetch
from tasks.errors import BuildError, CommandError
from tasks.model.recipe import load_recipe
from tasks.settings import host_triple
from tests.conftest import CORPUS


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return copy_fixtures(tmp_path)


def run_binary(path: Path) -> str:
    return subprocess.run([path], check=True, capture_output=True, text=True).stdout


def has_symbols(path: Path) -> bool:
    return "no symbols" not in subprocess.run(["nm", path], capture_output=True, text=True).stderr


def has_debug_info(path: Path) -> bool:
    return ".debug_info" in subprocess.run(["objdump", "-h", path], capture_output=True, text=True).stdout


@pytest.mark.slow
def test_cargo_crate_with_crates_io_dependency_from_git_with_patch(root: Path) -> None:
    bare, commit = bare_repository(root, root / "sources" / "hello-dep")
    recipe = write_recipe(root, "hello-dep", f'[source]\ngit = "file://{bare}"\nrev = "{commit}"\n'
                          'patches = ["hello-dep-greeting.patch"]\n\n[build]\ntemplate = "cargo"\n')
    fetched = fetch(recipe, source_paths(root, recipe))
    paths = cook_paths(root, recipe)
    request = host_request(source_ident=fetched.ident)

    result = cook(recipe, paths, request)
    binary = result.stage / "usr" / "bin" / "hello-dep"
    assert run_binary(binary) == "patched 42\n"
    assert not has_symbols(binary)  # stripped by the postscript
    assert not (result.stage / "usr" / ".crates.toml").exists() and not (paths.target / "stage.tmp").exists()
    assert (paths.build / "target" / host_triple() / "release").is_dir()  # the wrapper passed --target

    # Cooking again (the engine decides when: tests/test_incremental.py) reuses cargo's build directory.
    assert run_binary(cook(recipe, paths, request).stage / "usr" / "bin" / "hello-dep") == "patched 42\n"


@pytest.mark.slow
def test_workspace_with_cookbook_cargo_packages_and_nostrip(root: Path) -> None:
    recipe = load_recipe(root / "recipes" / "ws")
    fetch(recipe, source_paths(root, recipe))
    paths = cook_paths(root, recipe)
    request = host_request(strip=False)
    stage = cook(recipe, paths, request).stage
    assert sorted(path.name for path in (stage / "usr" / "bin").iterdir()) == ["alpha-tool", "beta"]
    assert run_binary(stage / "usr" / "bin" / "alpha-tool") == "alpha_tool\n"
    assert has_symbols(stage / "usr" / "bin" / "beta")


HOST_PATH_WORKSPACE = {
    # as the fork's base: the workspace's own settings name paths of its developer's machine
    "Cargo.toml": '[workspace]\nmembers = ["app"]\nresolver = "2"\n\n'
                  '[patch.crates-io]\ngreet = { path = "/home/fork-dev/src/greet" }\n',
    ".cargo/config.toml": '[target.{host}]\nlinker = "/home/fork-dev/bin/cc-wrapper"\n',
    "app/Cargo.toml": '[package]\nname = "app"\nversion = "0.1.0"\nedition = "2021"\n\n'
                      '[dependencies]\ngreet = "0.1"\n',
    "app/src/main.rs": 'fn main() { println!("{}", greet::greeting()); }\n',
    "vendor/greet/Cargo.toml": '[package]\nname = "greet"\nversion = "0.1.0"\nedition = "2021"\n',
    "vendor/greet/src/lib.rs": 'pub fn greeting() -> &\'static str { "greet from the recipe\'s override" }\n',
}


@pytest.mark.slow
def test_a_recipe_overrides_the_workspaces_host_paths_through_cargo_config(root: Path) -> None:
    """Issue 11: the workspace's .cargo/config.toml (a linker) and [patch] (a path dependency) point at another
    machine's paths; the recipe passes cargo --config after the -p list, and the source is never edited."""
    script = ('cookbook_cargo_workspace "${COOKBOOK_RECIPE}/programs.txt" \\' + "\n"
              '    --config "patch.crates-io.greet.path=\\"${COOKBOOK_SOURCE}/vendor/greet\\"" \\' + "\n"
              '    --config "target.${TARGET}.linker=\\"cc\\""' + "\n")
    recipe = write_recipe(root, "hostpaths", f"[build]\ntemplate = \"custom\"\nscript = '''\n{script}'''\n")
    (recipe.dir / "programs.txt").write_text("# package directory\napp usr/bin\n")
    source = recipe.dir / "source"
    for relative, text in HOST_PATH_WORKSPACE.items():
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_text(text.replace("{host}", host_triple()))
    # the lock file a workspace ships (cookbook builds are --locked); path dependencies carry no path in it
    subprocess.run(["cargo", "generate-lockfile", "--offline", "--config",
                    f'patch.crates-io.greet.path="{source}/vendor/greet"'], cwd=source, check=True,
                   capture_output=True)
    before = {path: path.read_bytes() for path in source.rglob("*") if path.is_file()}
    stage = cook(recipe, cook_paths(root, recipe), host_request()).stage
    assert run_binary(stage / "usr" / "bin" / "app") == "greet from the recipe's override\n"
    assert {path: path.read_bytes() for path in source.rglob("*") if path.is_file()} == before


def _cook_greet(root: Path) -> Path:
    served, digest = serve_greet_tarball(root)
    with http_server(served) as server:
        recipe = write_recipe(root, "greet", f'[source]\ntar = "{server.url}/greet-1.0.tar.gz"\n'
                              f'blake3 = "{digest}"\npatches = ["greet-exclaim.patch"]\n\n'
                              '[build]\ntemplate = "configure"\n')
        fetch(recipe, source_paths(root, recipe))
    return cook(recipe, cook_paths(root, recipe), host_request()).stage


def test_configure_template_from_a_tar_source(root: Path) -> None:
    stage = _cook_greet(root)
    assert run_binary(stage / "usr" / "bin" / "greet") == f"greetings from {host_triple()}!\n"
    assert (stage / "usr" / "share" / "doc" / "greet" / "README").is_file()


@pytest.mark.parametrize("strip", ["strip", "llvm-strip"])
def test_the_postscript_strips_with_the_toolchains_strip(root: Path, strip: str) -> None:
    """The toolchain's strip is llvm-strip, which knows no -v: the postscript once passed it, every strip failed
    and find hid it, so the real tree's binaries kept their symbols."""
    if shutil.which(strip) is None:
        pytest.skip(f"no {strip} on this machine")
    script = ('mkdir -p "${COOKBOOK_STAGE}/usr/bin" "${COOKBOOK_STAGE}/usr/lib"\n'
              'echo "int main(void) { return 0; }" > main.c\n'
              'cc -g -o "${COOKBOOK_STAGE}/usr/bin/tool" main.c\n'
              'cc -g -c -o "${COOKBOOK_STAGE}/usr/lib/part.o" main.c\n')
    recipe = write_recipe(root, "stripped", f"[build]\ntemplate = \"custom\"\nscript = '''\n{script}'''\n")
    request = host_request()
    request = dataclasses.replace(request, cargo=dataclasses.replace(request.cargo, strip=shutil.which(strip)))
    stage = cook(recipe, cook_paths(root, recipe), request).stage
    assert not has_symbols(stage / "usr" / "bin" / "tool")
    part = stage / "usr" / "lib" / "part.o"
    assert not has_debug_info(part) and has_symbols(part)  # libraries lose their debug information only


def test_custom_script_sees_cookbook_variables_sysroot_and_splits_optional_package(root: Path) -> None:
    greet_stage = _cook_greet(root)
    recipe = load_recipe(root / "recipes" / "custom-vars")
    fetch(recipe, source_paths(root, recipe))
    paths = cook_paths(root, recipe)
    request = host_request(greet_stage)

    result = cook(recipe, paths, request)
    share = result.stage / "usr" / "share" / "custom-vars"
    triple = host_triple()
    assert (share / "info.txt").read_text() == f"custom-vars for {triple} ({triple}) jobs=2\n"
    assert (share / "from-sysroot.txt").read_text() == f"greetings from {triple}!\n"
    assert (share / "recipe.txt").read_text() == "custom-vars\n"
    assert (result.optional_stages["doc"] / "usr" / "share" / "doc" / "custom-vars" / "README").is_file()
    assert not (result.stage / "usr" / "share" / "doc" / "custom-vars" / "README").exists()
    assert (paths.sysroot / "bin").resolve() == (paths.sysroot / "usr" / "bin").resolve()

    (greet_stage / "usr" / "bin" / "extra").write_text("a dependency changed\n")
    cook(recipe, paths, request)
    assert (paths.sysroot / "usr" / "bin" / "extra").is_file()  # the sysroot follows the dependency's stage


@pytest.mark.slow
def test_upstream_custom_recipe_runs_unchanged_against_a_local_source(root: Path) -> None:
    upstream = CORPUS / "recipes" / "text" / "kibi" / "recipe.toml"
    if not upstream.is_file():
        pytest.skip("the upstream corpus (../shared/corpus) is not beside this checkout")
    directory = root / "recipes" / "kibi"
    directory.mkdir()
    shutil.copy(upstream, directory / "recipe.toml")
    shutil.copytree(root / "sources" / "kibi", directory / "source")  # the fork keeps sources in tree
    recipe = load_recipe(directory)
    assert "cookbook_cargo" in (recipe.build.script or "")
    assert fetch(recipe, source_paths(root, recipe)).status.value == "local"  # no network, nothing touched

    stage = cook(recipe, cook_paths(root, recipe), host_request()).stage
    assert run_binary(stage / "usr" / "bin" / "kibi") == "kibi fixture\n"
    assert (stage / "usr" / "share" / "kibi" / "syntax.d" / "rust.ini").is_file()


def test_failure_reports_the_log_tail_and_keeps_the_previous_stage(root: Path) -> None:
    recipe = write_recipe(root, "flaky", '[source]\npath = "../../sources/greet"\n\n[build]\ntemplate = "custom"\n'
                          'script = """\nmkdir -p "${COOKBOOK_STAGE}/etc"\necho one > "${COOKBOOK_STAGE}/etc/v"\n"""\n')
    fetch(recipe, source_paths(root, recipe))
    paths = cook_paths(root, recipe)
    cook(recipe, paths, host_request())
    recipe = write_recipe(root, "flaky", '[source]\npath = "../../sources/greet"\n\n[build]\ntemplate = "custom"\n'
                          'script = """\necho about to fail\nfalse\n"""\n')
    with pytest.raises(CommandError) as failure:
        cook(recipe, paths, host_request())
    message = str(failure.value)
    assert message.startswith("cook flaky: `bash -ex` failed with exit status 1")
    assert "about to fail" in message and "full log: " in message and "cook-flaky.log" in message
    assert (paths.stage / "etc" / "v").read_text() == "one\n"


def test_a_failed_cook_leaves_no_stage_tmp_behind(root: Path) -> None:
    recipe = write_recipe(root, "broken", '[source]\npath = "../../sources/greet"\n\n[build]\ntemplate = "custom"\n'
                          'script = """\nmkdir -p "${COOKBOOK_STAGE}/etc"\nfalse\n"""\n')
    fetch(recipe, source_paths(root, recipe))
    paths = cook_paths(root, recipe)
    with pytest.raises(CommandError):
        cook(recipe, paths, host_request())
    assert not (paths.target / "stage.tmp").exists() and not paths.stage.exists()


def test_none_template_stages_nothing_and_remote_is_not_yet_supported(root: Path) -> None:
    meta = write_recipe(root, "meta", '[package]\ndependencies = ["greet"]\n')
    result = cook(meta, cook_paths(root, meta), host_request())
    assert list(result.stage.iterdir()) == []
    remote = write_recipe(root, "prebuilt", '[build]\ntemplate = "remote"\n')
    with pytest.raises(BuildError, match="build.template: template 'remote' needs a local package repository"):
        cook(remote, cook_paths(root, remote), host_request())
    staged = cook(remote, cook_paths(root, remote), host_request(),
                  remote=lambda name, stage: (stage / f"{name}.txt").write_text("from a repository\n")).stage
    assert (staged / "prebuilt.txt").is_file()


RECORDING_CARGO = """#!/bin/sh
# Stands in for the pinned nightly cargo, which cannot build for aarch64-unknown-redox here: records what the
# cookbook runs, with the environment that matters, then stages a file as cargo install would.
names='RUSTFLAGS|RUSTUP_TOOLCHAIN|CARGO_INCREMENTAL|CARGO_TARGET_DIR|TARGET|GNU_TARGET|COOKBOOK_CRANELIFT'
names="$names|CARGO_PROFILE_RELEASE_LTO|RUSTC_WRAPPER|LDFLAGS"
{ printf '%s\\n' "$@"; echo ---; env | grep -E "^($names)=" | sort; } > "$CARGO_RECORD"
mkdir -p "$COOKBOOK_STAGE/usr/bin" && echo binary > "$COOKBOOK_STAGE/usr/bin/kibi"
"""


@pytest.mark.parametrize("backend", ["cranelift", "llvm"])
def test_aarch64_cargo_template_cook_runs_cargo_with_spec_build_std_and_static_flags(root: Path, tmp_path: Path,
                                                                                     backend: str) -> None:
    """The cargo template links statically with either backend: DYNAMIC_INIT's -rpath-link and -lgcc_s would fail
    the link with ld.lld (issue 18, item 1). The two runs differ only in what the backend needs."""
    from test_toolchain import SYSROOT, cranelift_toolchain

    from tasks.cookbook.cook import CookRequest
    from tasks.cookbook.script import ScriptOptions
    from tasks.toolchain.env import ArtifactKind, target_build
    from tasks.toolchain.pin import CodegenBackend

    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "cargo").write_text(RECORDING_CARGO)
    (fake / "cargo").chmod(0o755)
    record = tmp_path / "cargo-record.txt"
    spec = Path("/work/build/aarch64/aarch64-unknown-redox-clif.json")
    toolchain = cranelift_toolchain()
    pin = toolchain.pin.model_copy(update={"backend": CodegenBackend(backend)})
    toolchain = dataclasses.replace(toolchain, pin=pin)
    cargo = target_build(toolchain, ArtifactKind.USERSPACE, spec=spec, sysroot=SYSROOT, base={})
    cargo = dataclasses.replace(cargo, set={**cargo.set, "PATH": f"{fake}:/usr/bin:/bin", "CARGO_RECORD": str(record)})
    recipe = write_recipe(root, "kibi", '[build]\ntemplate = "cargo"\ncargoflags = ["--bin", "kibi"]\n')
    (recipe.dir / "source").mkdir()
    paths = cook_paths(root, recipe)
    request = CookRequest(cargo=cargo, options=ScriptOptions(target="aarch64-unknown-redox", jobs=4))
    stage = cook(recipe, paths, request).stage

    build = paths.build.resolve()
    argv, env = record.read_text().split("---\n")
    cranelift = backend == "cranelift"
    assert argv.splitlines() == [
        "install", "--target", str(spec), "-Zbuild-std=std,core,alloc,panic_abort",
        *(["-Zbuild-std-features=compiler_builtins/no-f16-f128"] if cranelift else []),
        "--path", f"{paths.source.resolve()}/.", "--root", f"{(paths.target / 'stage.tmp').resolve()}/usr",
        "-j", "4", "--no-track", "--locked", "--bin", "kibi"]
    assert env.splitlines() == [
        "CARGO_INCREMENTAL=0", *(["CARGO_PROFILE_RELEASE_LTO=off"] if cranelift else []),
        f"CARGO_TARGET_DIR={build}/target", *(["COOKBOOK_CRANELIFT=1"] if cranelift else []),
        "GNU_TARGET=aarch64-unknown-redox", f"LDFLAGS=-L{paths.sysroot.resolve()}/lib --static",
        "RUSTFLAGS=" + ("-Zcodegen-backend=cranelift " if cranelift else "")
        + f"-L {SYSROOT}/lib -C panic=abort -C link-arg=-z -C link-arg=muldefs",
        "RUSTUP_TOOLCHAIN=nightly-2026-01-02", "TARGET=aarch64-unknown-redox"]
    # Scripts that copy from target/$TARGET find cargo's output for the spec.
    assert (build / "target" / "aarch64-unknown-redox").resolve() == build / "target" / "aarch64-unknown-redox-clif"
    assert (stage / "usr" / "bin" / "kibi").is_file()
