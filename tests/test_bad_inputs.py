"""A corpus of bad inputs: each gives one precise line (file, key, reason) on the real CLI and a non-zero exit."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.trees import cargo, make_tree

OK = '[source]\ngit = "https://example.org/a.git"\n[build]\ntemplate = "cargo"\n'
PACKAGE_A = '[packages]\na = {}\n'

# name: (recipes, configs, expected message with {root} for the tree)
CASES = {
    "toml syntax": ({"a": '[build]\ntemplate = "cargo"\ndependencies = ["x",\n'}, {},
                    "{root}/recipes/a/recipe.toml: end of file: invalid TOML: invalid value"),
    "toml syntax line": ({"a": '[build]\ntemplate = = "cargo"\n'}, {},
                         "{root}/recipes/a/recipe.toml: line 2, column 12: invalid TOML: invalid value"),
    "wrong type": ({"a": '[build]\ntemplate = "cargo"\ndependencies = "x"\n'}, {},
                   "{root}/recipes/a/recipe.toml: build.dependencies: expected an array, got a string 'x'"),
    "unknown template": ({"a": '[build]\ntemplate = "carg"\n'}, {},
                         "{root}/recipes/a/recipe.toml: build.template: unknown template 'carg' (expected one of: "
                         "none, remote, cargo, configure, cmake, meson, python, custom)"),
    "missing template": ({"a": '[build]\ndependencies = []\n'}, {},
                         "{root}/recipes/a/recipe.toml: build.template: missing required key"),
    "custom without script": ({"a": '[build]\ntemplate = "custom"\n'}, {},
                              "{root}/recipes/a/recipe.toml: build.script: missing required key for template "
                              "'custom'"),
    "build not a table": ({"a": 'build = 3\n'}, {},
                          "{root}/recipes/a/recipe.toml: build: expected a table, got an integer 3"),
    "slash in name": ({"a": cargo("x/y")}, {},
                      "{root}/recipes/a/recipe.toml: build.dependencies[0]: invalid package name 'x/y': must not "
                      "contain '/' or NUL"),
    "two dots": ({"a": cargo("x.y.z")}, {},
                 "{root}/recipes/a/recipe.toml: build.dependencies[0]: invalid package name 'x.y.z': at most one "
                 "'.' (the optional-package suffix)"),
    "bad prefix": ({"a": cargo("foo:bar")}, {},
                   "{root}/recipes/a/recipe.toml: build.dependencies[0]: invalid package name 'foo:bar': ':' is "
                   "only allowed in the prefixes 'host:' and 'target:'"),
    "double prefix": ({"a": cargo(runtime=("host:target:x",))}, {},
                      "{root}/recipes/a/recipe.toml: package.dependencies[0]: invalid package name "
                      "'host:target:x': ':' is only allowed in the prefixes 'host:' and 'target:'"),
    "empty dependency": ({"a": cargo("")}, {},
                         "{root}/recipes/a/recipe.toml: build.dependencies[0]: package name is empty"),
    "source without kind": ({"a": '[source]\nurl = "https://example.org"\n'}, {},
                            "{root}/recipes/a/recipe.toml: source: expected one of the keys same_as, path, git or "
                            "tar"),
    "bool as string": ({"a": '[source]\ngit = "https://example.org/a.git"\nshallow_clone = "yes"\n'}, {},
                       "{root}/recipes/a/recipe.toml: source.shallow_clone: expected a boolean (true or false), "
                       "got a string 'yes'"),
    "patches not a list": ({"a": '[source]\ntar = "https://example.org/a.tar"\npatches = "a.patch"\n'}, {},
                           "{root}/recipes/a/recipe.toml: source.patches: expected an array, got a string "
                           "'a.patch'"),
    "same_as nowhere": ({"a": '[source]\nsame_as = "../nope"\n[build]\ntemplate = "cargo"\n'}, {},
                        "{root}/recipes/a/recipe.toml: source.same_as: no recipe at '../nope'"),
    "optional package name": ({"a": OK + '[[optional-packages]]\nname = "x.y"\n'}, {},
                              "{root}/recipes/a/recipe.toml: optional-packages[0].name: invalid optional package "
                              "name 'x.y': must be non-empty without '.', '/', ':'"),
    "optional package missing": ({"a": OK}, {"c.toml": '[packages]\n"a.doc" = {}\n'},
                                 "{root}/recipes/a/recipe.toml: optional-packages: recipe 'a' has no optional "
                                 "package 'doc'"),
    "dependency cycle": ({"a": cargo("b"), "b": cargo("a")}, {},
                         "{root}/recipes/a/recipe.toml: build.dependencies[0]: dependency cycle: a -> b -> a"),
    # template "none" (a meta-package) has its build dependencies checked like any other (issue 12, item 4)
    "none: missing dependency": ({"a": '[build]\ntemplate = "none"\ndependencies = ["nope"]\n'}, {},
                                 "{root}/recipes/a/recipe.toml: build.dependencies[0]: no recipe named 'nope' under "
                                 "{root}/recipes"),
    "none: dependency cycle": ({"a": '[build]\ntemplate = "none"\ndependencies = ["b"]\n', "b": cargo("a")}, {},
                               "{root}/recipes/a/recipe.toml: build.dependencies[0]: dependency cycle: a -> b -> a"),
    "none: depends on itself": ({"a": '[build]\ntemplate = "none"\ndependencies = ["a"]\n'}, {},
                                "{root}/recipes/a/recipe.toml: build.dependencies[0]: dependency cycle: a -> a"),
    "near miss of a recipe name": ({"a": cargo("hello"), "helo": OK}, {},
                                   "{root}/recipes/a/recipe.toml: build.dependencies[0]: no recipe named 'hello' "
                                   "under {root}/recipes (did you mean 'helo'?)"),
    "missing recipe from recipe": ({"a": cargo("nope")}, {},
                                   "{root}/recipes/a/recipe.toml: build.dependencies[0]: no recipe named 'nope' "
                                   "under {root}/recipes"),
    "missing recipe from config": ({"a": OK}, {"c.toml": '[packages]\nnope = {}\n'},
                                   "{root}/config/c.toml: packages.nope: no recipe named 'nope' under "
                                   "{root}/recipes"),
    "config syntax": ({"a": OK}, {"c.toml": '[packages\na = {}\n'},
                      "{root}/config/c.toml: line 1, column 10: invalid TOML: expected ']' at the end of a table "
                      "declaration"),
    "include loop": ({"a": OK}, {"c.toml": 'include = ["d.toml"]\n', "d.toml": 'include = ["c.toml"]\n'},
                     "{root}/config/d.toml: include[0]: include loop: {root}/config/c.toml -> {root}/config/d.toml "
                     "-> {root}/config/c.toml"),
    "missing include": ({"a": OK}, {"c.toml": 'include = ["nope.toml"]\n'},
                        "{root}/config/c.toml: include[0]: included file 'nope.toml' not found (looked for "
                        "{root}/config/nope.toml)"),
    "include not a list": ({"a": OK}, {"c.toml": 'include = "d.toml"\n'},
                           "{root}/config/c.toml: include: expected an array, got a string 'd.toml'"),
    "unknown rule": ({"a": OK}, {"c.toml": '[packages]\na = "binari"\n'},
                     "{root}/config/c.toml: packages.a: unknown rule 'binari' (expected a table or one of: "
                     "ignore, source, binary, local)"),
    "size as string": ({"a": OK}, {"c.toml": '[general]\nfilesystem_size = "big"\n'},
                       "{root}/config/c.toml: general.filesystem_size: expected an integer, got a string 'big'"),
    "bad package key": ({"a": OK}, {"c.toml": '[packages]\n"x/y" = {}\n'},
                        "{root}/config/c.toml: packages.\"x/y\": invalid package name 'x/y': must not contain '/' "
                        "or NUL"),
    # Paths the config puts into the image, which the installer writes on the host (issue 12, item 1)
    "file path climbs out": ({"a": OK}, {"c.toml": '[[files]]\npath = "../../../../tmp/x"\ndata = "x"\n'},
                             "{root}/config/c.toml: files[0].path: '../../../../tmp/x': a path in the image must "
                             "not contain '..' (the installer writes it on the host)"),
    "rooted file path climbs out": ({"a": OK}, {"c.toml": '[[files]]\npath = "/../../tmp/x"\ndata = "x"\n'},
                                    "{root}/config/c.toml: files[0].path: '/../../tmp/x': a path in the image must "
                                    "not contain '..' (the installer writes it on the host)"),
    "file under a symlink out": ({"a": OK}, {"c.toml": '[[files]]\npath = "/evil"\ndata = "/tmp"\nsymlink = true\n'
                                             '[[files]]\npath = "/evil/x"\ndata = "x"\n'},
                                 "{root}/config/c.toml: files[1]: '/evil/x' is under the symlink '/evil' -> '/tmp' "
                                 "({root}/config/c.toml: files[0]), whose target leaves the image: the installer "
                                 "would write through it onto the host"),
    "file under a relative symlink out": (
        {"a": OK}, {"c.toml": '[[files]]\npath = "/a/up"\ndata = "../../tmp"\nsymlink = true\n'
                              '[[files]]\npath = "/a/up/x"\ndata = "x"\n'},
        "{root}/config/c.toml: files[1]: '/a/up/x' is under the symlink '/a/up' -> '../../tmp' "
        "({root}/config/c.toml: files[0]), whose target leaves the image: the installer would write through it onto "
        "the host"),
    "file at a symlink out": ({"a": OK}, {"c.toml": '[[files]]\npath = "/evil"\ndata = "/tmp/x"\nsymlink = true\n'
                                          '[[files]]\npath = "/evil"\ndata = "x"\n'},
                              "{root}/config/c.toml: files[1]: '/evil' is under the symlink '/evil' -> '/tmp/x' "
                              "({root}/config/c.toml: files[0]), whose target leaves the image: the installer would "
                              "write through it onto the host"),
    "home climbs out": ({"a": OK}, {"c.toml": '[users.u]\nhome = "/../../tmp/h"\n'},
                        "{root}/config/c.toml: users.u.home: '/../../tmp/h': a path in the image must not contain "
                        "'..' (the installer writes it on the host)"),
    "user name climbs out": ({"a": OK}, {"c.toml": '[users."../../tmp/u"]\n'},
                             "{root}/config/c.toml: users.\"../../tmp/u\": '../../tmp/u': not an account name (a "
                             "letter or '_', then letters, digits, '_', '.', '-'; at most 64 characters): it names "
                             "the home /home/<name> and a line of /etc/passwd"),
    "group name with a space": ({"a": OK}, {"c.toml": '[groups."a b"]\n'},
                                "{root}/config/c.toml: groups.\"a b\": 'a b': not an account name (a letter or '_', "
                                "then letters, digits, '_', '.', '-'; at most 64 characters): it names the home "
                                "/home/<name> and a line of /etc/passwd"),
    "shell with a separator": ({"a": OK}, {"c.toml": '[users.u]\nshell = "/bin/ion;0;0"\n'},
                               "{root}/config/c.toml: users.u.shell: '/bin/ion;0;0': must not contain ';', a newline "
                               "or NUL (fields of /etc/passwd and /etc/group)"),
    "package name with a space": ({"a": OK}, {"c.toml": '[packages]\n"a b" = {}\n'},
                                  "{root}/config/c.toml: packages.\"a b\": invalid package name 'a b': must not "
                                  "contain whitespace"),
    # what the installer's own parser rejects (issue 12, inputs that should match the real installer)
    "file without data": ({"a": OK}, {"c.toml": '[[files]]\npath = "/x"\ndirectory = true\n'},
                          "{root}/config/c.toml: files[0].data: missing required key"),
    "group without members": ({"a": OK}, {"c.toml": '[groups.g]\ngid = 5\n'},
                              "{root}/config/c.toml: groups.g.members: missing required key"),
    "negative filesystem size": ({"a": OK}, {"c.toml": '[general]\nfilesystem_size = -1\n'},
                                 "{root}/config/c.toml: general.filesystem_size: must be at least 0, got -1"),
    "filesystem size over u32": ({"a": OK}, {"c.toml": '[general]\nfilesystem_size = 4294967296\n'},
                                 "{root}/config/c.toml: general.filesystem_size: must be at most 4294967295, got "
                                 "4294967296"),
    "uid over u32": ({"a": OK}, {"c.toml": '[users.u]\nuid = 4294967296\n'},
                     "{root}/config/c.toml: users.u.uid: must be at most 4294967295, got 4294967296"),
    "package rule not a string": ({"a": OK}, {"c.toml": '[packages]\na = true\n'},
                                  "{root}/config/c.toml: packages.a: expected a table or one of: ignore, source, "
                                  "binary, local (got True)"),
    # sources
    "tar not a string": ({"a": '[source]\ntar = 3\n[build]\ntemplate = "cargo"\n'}, {},
                         "{root}/recipes/a/recipe.toml: source.tar: expected a string, got an integer 3"),
    "same_as itself": ({"a": '[source]\nsame_as = "../a"\n[build]\ntemplate = "cargo"\n'}, {},
                       "{root}/recipes/a/recipe.toml: source.same_as: same_as cycle: a -> a"),
    "rev not a string": ({"a": '[source]\ngit = "https://x/a.git"\nrev = 5\n[build]\ntemplate = "cargo"\n'}, {},
                         "{root}/recipes/a/recipe.toml: source.rev: expected a string, got an integer 5"),
    "source not a table": ({"a": 'source = "x"\n[build]\ntemplate = "cargo"\n'}, {},
                           "{root}/recipes/a/recipe.toml: source: expected one of the keys same_as, path, git or tar"),
    # recipe keys
    "package version not a string": ({"a": OK + '[package]\nversion = 1\n'}, {},
                                     "{root}/recipes/a/recipe.toml: package.version: expected a string, got an "
                                     "integer 1"),
    "script not a string": ({"a": '[build]\ntemplate = "custom"\nscript = 1\n'}, {},
                            "{root}/recipes/a/recipe.toml: build.script: expected a string, got an integer 1"),
    "bad dev-dependency name": ({"a": '[build]\ntemplate = "cargo"\ndev-dependencies = ["a/b"]\n'}, {},
                                "{root}/recipes/a/recipe.toml: build.dev-dependencies[0]: invalid package name "
                                "'a/b': must not contain '/' or NUL"),
    # dependencies
    "depends on itself": ({"a": '[build]\ntemplate = "cargo"\ndependencies = ["a"]\n'}, {},
                          "{root}/recipes/a/recipe.toml: build.dependencies[0]: dependency cycle: a -> a"),
    "runtime dependency missing": ({"a": OK + '[package]\ndependencies = ["nope"]\n'}, {},
                                   "{root}/recipes/a/recipe.toml: package.dependencies[0]: no recipe named 'nope' "
                                   "under {root}/recipes"),
    "host dependency missing": ({"a": '[build]\ntemplate = "cargo"\ndependencies = ["host:nope"]\n'}, {},
                                "{root}/recipes/a/recipe.toml: build.dependencies[0]: no recipe named 'nope' under "
                                "{root}/recipes"),
    "empty dependency name": ({"a": '[build]\ntemplate = "cargo"\ndependencies = [""]\n'}, {},
                              "{root}/recipes/a/recipe.toml: build.dependencies[0]: package name is empty"),
    # includes and merges
    "include of itself": ({"a": OK}, {"c.toml": 'include = ["c.toml"]\n' + PACKAGE_A},
                          "{root}/config/c.toml: include[0]: include loop: {root}/config/c.toml -> "
                          "{root}/config/c.toml"),
    "syntax error in an include": ({"a": OK}, {"c.toml": 'include = ["d.toml"]\n' + PACKAGE_A, "d.toml": '[general\n'},
                                   "{root}/config/d.toml: line 1, column 9: invalid TOML: expected ']' at the end of "
                                   "a table declaration"),
    # [[files]]
    "file path not a string": ({"a": OK}, {"c.toml": '[[files]]\npath = 3\ndata = ""\n'},
                               "{root}/config/c.toml: files[0].path: expected a string, got an integer 3"),
    "file mode a string": ({"a": OK}, {"c.toml": '[[files]]\npath = "/x"\ndata = ""\nmode = "755"\n'},
                           "{root}/config/c.toml: files[0].mode: expected an integer, got a string '755'"),
    "files not an array": ({"a": OK}, {"c.toml": '[files]\npath = "/x"\n'},
                           "{root}/config/c.toml: files: expected an array, got a table {{'path': '/x'}}"),
    "symlink not a boolean": ({"a": OK}, {"c.toml": '[[files]]\npath = "/x"\ndata = ""\nsymlink = "yes"\n'},
                              "{root}/config/c.toml: files[0].symlink: expected a boolean (true or false), got a "
                              "string 'yes'"),
    "file path with NUL": ({"a": OK}, {"c.toml": '[[files]]\npath = "/x\\u0000y"\ndata = ""\n'},
                           "{root}/config/c.toml: files[0].path: '/x\\x00y': a path in the image must not contain NUL"),
    # users and groups
    "users not a table": ({"a": OK}, {"c.toml": 'users = 3\n'},
                          "{root}/config/c.toml: users: expected a table, got an integer 3"),
    "uid a string": ({"a": OK}, {"c.toml": '[users.u]\nuid = "1"\n'},
                     "{root}/config/c.toml: users.u.uid: expected an integer, got a string '1'"),
    "negative uid": ({"a": OK}, {"c.toml": '[users.u]\nuid = -1\n'},
                     "{root}/config/c.toml: users.u.uid: must be at least 0, got -1"),
    "members not a list": ({"a": OK}, {"c.toml": '[groups.g]\nmembers = "u"\n'},
                           "{root}/config/c.toml: groups.g.members: expected an array, got a string 'u'"),
    "negative gid": ({"a": OK}, {"c.toml": '[groups.g]\ngid = -2\nmembers = []\n'},
                     "{root}/config/c.toml: groups.g.gid: must be at least 0, got -2"),
    "home with a newline": ({"a": OK}, {"c.toml": '[users.u]\nhome = "/home/u\\n"\n'},
                            "{root}/config/c.toml: users.u.home: '/home/u\\n': must not contain ';', a newline or NUL "
                            "(fields of /etc/passwd and /etc/group)"),
    "user name too long": ({"a": OK}, {"c.toml": f'[users.{"a" * 65}]\n'},
                           f"{{root}}/config/c.toml: users.{'a' * 65}: '{'a' * 65}': not an account name (a letter "
                           "or '_', then letters, digits, '_', '.', '-'; at most 64 characters): it names the home "
                           "/home/<name> and a line of /etc/passwd"),
    # [general] and packages
    "efi size a string": ({"a": OK}, {"c.toml": '[general]\nefi_partition_size = "1"\n'},
                          "{root}/config/c.toml: general.efi_partition_size: expected an integer, got a string '1'"),
    "prompt not a boolean": ({"a": OK}, {"c.toml": '[general]\nprompt = 1\n'},
                             "{root}/config/c.toml: general.prompt: expected a boolean (true or false), got an "
                             "integer 1"),
    "package version an integer": ({"a": OK}, {"c.toml": '[packages]\na = {version = 1}\n'},
                                   "{root}/config/c.toml: packages.a.version: expected a string, got an integer 1"),
    "empty package name": ({"a": OK}, {"c.toml": '[packages]\n"" = {}\n'},
                           "{root}/config/c.toml: packages.\"\": package name is empty"),
    "file without path": ({"a": OK}, {"c.toml": '[[files]]\ndata = "x"\n'},
                          "{root}/config/c.toml: files[0].path: missing required key"),
    "uid as string": ({"a": OK}, {"c.toml": '[users.root]\nuid = "0"\n'},
                      "{root}/config/c.toml: users.root.uid: expected an integer, got a string '0'"),
    "missing config": ({"a": OK}, {"other.toml": PACKAGE_A},
                       "{root}/config/c.toml: config file not found (choose one with config=PATH)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_one_precise_line(case, tmp_path, doit):
    recipes, configs, expected = CASES[case]
    root = make_tree(tmp_path / "tree", recipes, configs or {"c.toml": PACKAGE_A})
    result = doit("list", f"root={root}", "config=config/c.toml")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]
    assert errors == ["ERROR: " + expected.format(root=root)], result.stderr
    assert "Traceback" not in result.stderr


# settings (doit variables): name, value, expected message
VARIABLE_CASES = {
    "backups": ("backups", "abc", "backups: Input should be a valid integer, unable to parse string as an integer "
                                  "(got 'abc')"),
    "initfs_max_size": ("initfs_max_size", "huge", "initfs_max_size: could not parse value and unit from byte string "
                                                   "(got 'huge')"),
    "toolchain": ("toolchain", "bogus", "toolchain: Input should be 'pinned' or 'host' (got 'bogus')"),
    "backend": ("backend", "gcc", "backend: Input should be 'cranelift' or 'llvm' (got 'gcc')"),
    "config": ("config", "config/nope.toml", "{root}/config/nope.toml: config file not found (choose one with "
                                             "config=PATH)"),
    "a misspelt variable": ("confg", "x", "unknown variable confg= (did you mean config=? the variables: root, "
                                          "config, build, target, toolchain, rust, backend, board, rust_log, "
                                          "initfs_max_size, boot_dir, backups, initfs_archiver, bootloader, "
                                          "prebuilt; `doit help` says what each does)"),
}


@pytest.mark.parametrize("case", VARIABLE_CASES)
def test_a_bad_setting_gives_one_precise_line(case, tmp_path, doit):
    name, value, expected = VARIABLE_CASES[case]
    root = make_tree(tmp_path / "tree", {"a": OK}, {"c.toml": PACKAGE_A})
    result = doit("list", f"root={root}", "config=config/c.toml", f"{name}={value}")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]
    assert errors == ["ERROR: " + expected.format(root=root)], result.stderr


def test_a_root_that_does_not_exist_is_refused_and_nothing_is_created(tmp_path, doit):
    result = doit("list", f"root={tmp_path / 'nowhere'}", "config=config/c.toml")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"root={tmp_path / 'nowhere'}: no such directory" in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_a_config_with_a_byte_order_mark_is_read_as_the_installer_reads_it(tmp_path, doit):
    root = make_tree(tmp_path / "tree", {"a": OK}, {})
    (root / "config").mkdir()
    (root / "config/c.toml").write_bytes(b"\xef\xbb\xbf" + PACKAGE_A.encode())
    result = doit("list", "--all", f"root={root}", "config=config/c.toml")
    assert result.returncode == 0 and "cook:a" in result.stdout, result.stderr


def test_duplicate_recipe_name_is_a_warning_listing_both(tmp_path, doit):
    root = make_tree(tmp_path / "tree", {"core/a": OK, "wip/a": cargo("nope")}, {"c.toml": PACKAGE_A})
    result = doit("list", "--all", f"root={root}", "config=config/c.toml")
    assert result.returncode == 0, result.stderr
    assert (f"warning: recipe 'a' is defined 2 times: {root}/recipes/core/a, {root}/recipes/wip/a; "
            f"using {root}/recipes/core/a") in result.stderr
    assert "cook:a" in result.stdout


def test_unknown_key_is_a_visible_warning(tmp_path, doit):
    root = make_tree(tmp_path / "tree", {"a": OK + 'dependancies = ["x"]\n'}, {"c.toml": PACKAGE_A})
    result = doit("list", f"root={root}", "config=config/c.toml")
    assert result.returncode == 0
    assert (f"warning: {root}/recipes/a/recipe.toml: build.dependancies: unknown key (ignored; did you mean "
            f"dependencies?)") in result.stderr


def test_at_least_25_bad_inputs():
    assert len(CASES) >= 25


@pytest.mark.parametrize("entries", [
    '[[files]]\npath = "/../../../../../..{sentinel}"\ndata = "x"\n',
    '[[files]]\npath = "/evil"\ndata = "{parent}"\nsymlink = true\n\n[[files]]\npath = "/evil/{name}"\ndata = "x"\n',
    '[users.u]\nhome = "/../../../../../..{sentinel}"\n',
], ids=["climbing path", "symlink followed", "climbing home"])
def test_a_hostile_config_writes_nothing_on_the_host(entries, tmp_path, doit):
    """`doit image` on such a config stops at load time: no installer runs, nothing appears at the sentinel."""
    import shutil

    from tasks.settings import PROJECT_DIR
    tree = tmp_path / "demo"
    shutil.copytree(PROJECT_DIR / "demo", tree, ignore=shutil.ignore_patterns("build"))
    sentinel = tmp_path / "outside" / "sentinel"
    sentinel.parent.mkdir()
    config = tree / "config/aarch64/hostile.toml"
    config.write_text('include = ["../base.toml"]\n\n' + entries.format(sentinel=sentinel, parent=sentinel.parent,
                                                                         name=sentinel.name))
    before = set(Path("/tmp").glob("redox_installer_*"))
    result = doit("image", f"root={tree}", "config=config/aarch64/hostile.toml", "toolchain=host")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")][0].startswith(
        f"ERROR: {config}: ")
    assert not sentinel.exists() and set(Path("/tmp").glob("redox_installer_*")) == before
