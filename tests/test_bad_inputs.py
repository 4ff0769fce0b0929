"""A corpus of bad inputs: each gives one precise line (file, key, reason) on the real CLI and a non-zero exit, with
no traceback, and leaves the previous build's artifacts, stamps and records as they were and nothing written outside
the build directory (issue 12)."""
from __future__ import annotations

import io
import shutil
import tarfile
from dataclasses import astuple, dataclass
from pathlib import Path

import blake3
import pytest

from tasks.engine import StateStore
from tasks.formats import pkgar, pkgkeys
from tasks.formats.pkgkeys import KeyPair
from tasks.hashing import hash_file
from tasks.settings import host_triple
from tasks.variables import NAMES
from tests.conftest import run_doit
from tests.test_pkgar import forge
from tests.trees import bash_recipes_tree, cargo, make_tree

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
    # refused when loaded, naming the user's file (issue 19, item 8)
    "include names a directory": ({"a": OK}, {"c.toml": 'include = ["d"]\n' + PACKAGE_A, "d/x.toml": ""},
                                  "{root}/config/c.toml: include[0]: 'd' is a directory ({root}/config/d): an "
                                  "include names a config file"),
    "empty file path": ({"a": OK}, {"c.toml": PACKAGE_A + '[[files]]\npath = ""\ndata = "x"\n'},
                        "{root}/config/c.toml: files[0].path: a path in the image must not be empty"),
    "symlink and directory": ({"a": OK}, {"c.toml": PACKAGE_A + '[[files]]\npath = "/x"\ndata = "y"\n'
                                                                'symlink = true\ndirectory = true\n'},
                              "{root}/config/c.toml: files[0]: symlink and directory are both true: an entry is a "
                              "file, a directory or a symlink"),
    "directory over a file": ({"a": OK}, {"c.toml": PACKAGE_A + '[[files]]\npath = "/x"\ndata = "y"\n'
                                                                '[[files]]\npath = "/x/"\ndata = ""\n'
                                                                'directory = true\n'},
                              "{root}/config/c.toml: files[1]: '/x/' is a directory here but a file in "
                              "{root}/config/c.toml: files[0]: a path is one kind in the image"),
    "file over a directory in an include": (
        {"a": OK}, {"c.toml": 'include = ["d.toml"]\n' + PACKAGE_A + '[[files]]\npath = "/etc"\ndata = "x"\n',
                    "d.toml": '[[files]]\npath = "/etc"\ndata = ""\ndirectory = true\n'},
        "{root}/config/c.toml: files[0]: '/etc' is a file here but a directory in {root}/config/d.toml: files[0]: a "
        "path is one kind in the image"),
    "symlink over a file": ({"a": OK}, {"c.toml": PACKAGE_A + '[[files]]\npath = "/x"\ndata = "y"\n'
                                                              '[[files]]\npath = "x"\ndata = "y"\nsymlink = true\n'},
                            "{root}/config/c.toml: files[1]: 'x' is a symlink here but a file in "
                            "{root}/config/c.toml: files[0]: a path is one kind in the image"),
    "file under a file": ({"a": OK}, {"c.toml": PACKAGE_A + '[[files]]\npath = "/x"\ndata = "y"\n'
                                                            '[[files]]\npath = "/x/y/z"\ndata = "y"\n'},
                          "{root}/config/c.toml: files[1]: '/x/y/z' is under '/x', a file in {root}/config/c.toml: "
                          "files[0]"),
    "filesystem size too small": ({"a": OK}, {"c.toml": PACKAGE_A + '[general]\nfilesystem_size = 8\n'},
                                  "{root}/config/c.toml: general.filesystem_size: 8 MiB is too small: the image "
                                  "needs at least 32 (MiB)"),
    "filesystem size too small from an include": (
        {"a": OK}, {"c.toml": 'include = ["d.toml"]\n' + PACKAGE_A, "d.toml": '[general]\nfilesystem_size = 0\n'},
        "{root}/config/d.toml: general.filesystem_size: 0 MiB is too small: the image needs at least 32 (MiB)"),
    "runtime dependency cycle": ({"a": OK + '[package]\ndependencies = ["b"]\n',
                                  "b": OK + '[package]\ndependencies = ["a"]\n'}, {},
                                 "{root}/recipes/a/recipe.toml: package.dependencies[0]: runtime dependency cycle: "
                                 "a -> b -> a (the installer would follow it forever)"),
    "cargopath climbs out": ({"a": OK + 'cargopath = "../../../etc"\n'}, {},
                             "{root}/recipes/a/recipe.toml: build.cargopath: '../../../etc': must be a path beneath "
                             "the source (no '..', not absolute)"),
    "cargopath absolute": ({"a": OK + 'cargopath = "/etc"\n'}, {},
                           "{root}/recipes/a/recipe.toml: build.cargopath: '/etc': must be a path beneath the source "
                           "(no '..', not absolute)"),
    "pyprojectpath climbs out": ({"a": '[build]\ntemplate = "python"\npyprojectpath = "x/../.."\n'}, {},
                                 "{root}/recipes/a/recipe.toml: build.pyprojectpath: 'x/../..': must be a path "
                                 "beneath the source (no '..', not absolute)"),
    "patch climbs out": ({"a": '[source]\ngit = "https://x/a.git"\npatches = ["../../../../etc/passwd"]\n'
                               '[build]\ntemplate = "cargo"\n'}, {},
                         "{root}/recipes/a/recipe.toml: source.patches[0]: '../../../../etc/passwd': must be a path "
                         "beneath the recipe's directory (no '..', not absolute)"),
    "patch absolute": ({"a": '[source]\ntar = "https://x/a.tar"\npatches = ["ok.patch", "/etc/shadow"]\n'
                             '[build]\ntemplate = "cargo"\n'}, {},
                       "{root}/recipes/a/recipe.toml: source.patches[1]: '/etc/shadow': must be a path beneath the "
                       "recipe's directory (no '..', not absolute)"),
    "missing config": ({"a": OK}, {"other.toml": PACKAGE_A},
                       "{root}/config/c.toml: config file not found (choose one with config=PATH)"),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The small bash recipes of tests/trees.py, built: the previous good artifacts every bad input must leave."""
    root = bash_recipes_tree(tmp_path_factory.mktemp("built") / "tree")
    result = run_doit("pkg", *host_args(root))
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def host_args(root: Path) -> tuple[str, ...]:
    return f"root={root}", "config=config/c.toml", f"target={host_triple()}"


def with_case(built: Path, tmp_path: Path, recipes: dict, configs: dict) -> Path:
    """A copy of the built tree (its build directory too) with the case's recipes added and its configs in place
    of config/ (``c.toml`` asks for ``a`` besides the built packages unless the case gives configs)."""
    root = tmp_path / "tree"
    shutil.copytree(built, root, symlinks=True)
    shutil.rmtree(root / "config")
    return make_tree(root, recipes, configs or {"c.toml": PACKAGE_A + BUILT_PACKAGES})


BUILT_PACKAGES = "app = {}\nother = {}\n"


def artifacts(root: Path) -> dict[str, tuple]:
    """Every artifact and stamp of the build directory (stages, packages, their stamps), and every record of the
    build state."""
    build = root / "build"
    seen = files_of([path for top in (build / host_triple(), build / "cookbook" / "repo") for path in top.rglob("*")])
    state = StateStore(build / "engine" / "state.sqlite")
    seen.update({f"record {task}": astuple(state.get(task)) for task in state.tasks()})
    state.close()
    return seen


def files_of(paths: list[Path]) -> dict[str, tuple]:
    """Each file by content, mode and mtime, each symlink by target, each directory by its presence (its mtime
    follows what came and went inside, a partial removed on failure too)."""
    def entry(path: Path) -> tuple:
        if path.is_symlink():
            return ("link", str(path.readlink()))
        if path.is_dir():
            return ("dir",)
        status = path.lstat()
        return ("file", hash_file(path), status.st_mode, status.st_mtime_ns)
    return {str(path): entry(path) for path in paths}


def outside_build(root: Path, tmp_path: Path) -> dict[str, tuple]:
    """What the run may not write: the tree minus its build directory, the test's sentinel directory, and the
    installer's staging directories in /tmp."""
    tree = [path for path in root.rglob("*") if (root / "build") not in path.parents and path != root / "build"]
    sentinels = list((tmp_path / "outside").rglob("*")) if (tmp_path / "outside").exists() else []
    return {**files_of(tree + sentinels), **{str(path): () for path in Path("/tmp").glob("redox_installer_*")}}


def assert_refused(root: Path, tmp_path: Path, expected: str, *variables: str) -> None:
    """``doit pkg`` on the bad input (``variables`` after the tree's own): one ERROR line, exactly ``expected``; a
    non-zero exit; no traceback; the previous artifacts, stamps and records as they were; nothing written outside
    the build directory."""
    before, around = artifacts(root), outside_build(root, tmp_path)
    result = run_doit("pkg", *host_args(root), *variables)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert [line for line in output.splitlines() if line.startswith("ERROR: ")] == \
        ["ERROR: " + expected.format(root=root)], output
    assert artifacts(root) == before
    assert outside_build(root, tmp_path) == around


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_one_precise_line_and_keeps_the_previous_build(case, built, tmp_path):
    recipes, configs, expected = CASES[case]
    assert_refused(with_case(built, tmp_path, recipes, configs), tmp_path, expected)


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
    "a misspelt variable": ("confg", "x", f"unknown variable confg= (did you mean config=? the variables: "
                                          f"{', '.join(NAMES)}; `doit help` says what each does)"),
}


@pytest.mark.parametrize("case", VARIABLE_CASES)
def test_a_bad_setting_gives_one_precise_line_and_keeps_the_previous_build(case, built, tmp_path):
    name, value, expected = VARIABLE_CASES[case]
    assert_refused(with_case(built, tmp_path, {"a": OK}, {}), tmp_path, expected, f"{name}={value}")


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


# --- inputs found bad while building: sources, archives, prebuilt packages -----------------------------------------
# Each case starts from a good build of the bash recipes plus `fetched` (a tar source, from a file:// URL) and `boot`
# (rule "binary", from a prebuilt directory signed by its server's key), then makes one input bad: the build that
# follows must refuse it, keep every previous artifact (the good stage and package of that very recipe too), and
# write nothing outside the build directory.

FETCHED = '''[source]
tar = "{url}"
blake3 = "{blake3}"
[build]
template = "custom"
script = """
mkdir -p "$COOKBOOK_STAGE/usr/share/fetched"
cp "$COOKBOOK_SOURCE/hello.txt" "$COOKBOOK_STAGE/usr/share/fetched/"
"""
'''
BOOT = '[source]\ngit = "https://example.org/unreachable.git"\n[build]\ntemplate = "custom"\nscript = "false"\n'


@dataclass
class Good:
    root: Path
    server: Path  # the prebuilt directory: id_ed25519.pub.toml and <target>/boot.pkgar
    server_key: KeyPair
    outside: Path  # the sentinel directory a hostile input aims at

    @property
    def package(self) -> Path:
        return self.server / host_triple() / "boot.pkgar"

    def recipe(self, name: str, text: str) -> None:
        (self.root / "recipes" / name / "recipe.toml").write_text(text)

    def tarball(self, name: str, members: list[tuple[tarfile.TarInfo, bytes]]) -> tuple[str, str]:
        """A tarball of the given members, under the sentinel's parent; its file:// URL and BLAKE3."""
        path = self.outside.parent / "served" / name
        path.parent.mkdir(exist_ok=True)
        with tarfile.open(path, "w:gz") as tar:
            for info, data in members:
                info.size = len(data) if info.isfile() else 0
                tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
        return path.as_uri(), blake3.blake3(path.read_bytes()).hexdigest()

    def forge(self, entries: list[tuple[bytes, bytes, int]], key: KeyPair | None = None) -> None:
        forge(self.package, key or self.server_key, entries)


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o644
    return info


@pytest.fixture
def good(tmp_path) -> Good:
    root = bash_recipes_tree(tmp_path / "tree")
    outside = tmp_path / "outside" / "sentinel"
    outside.parent.mkdir()
    server, server_key = tmp_path / "server", pkgkeys.generate()
    (server / host_triple()).mkdir(parents=True)
    pkgkeys.write_key_files(server_key, server / "id_ed25519.pub.toml", tmp_path / "server-secret.toml")
    content = tmp_path / "boot-content"
    (content / "boot").mkdir(parents=True)
    (content / "boot/bootloader.efi").write_bytes(b"MZ prebuilt")
    pkgar.create(content, server / host_triple() / "boot.pkgar", server_key)
    made = Good(root, server, server_key, outside)
    for name, text in {"fetched": "", "boot": BOOT}.items():
        (root / "recipes" / name).mkdir()
        made.recipe(name, text)
    url, digest = made.tarball("good.tar.gz", [(member("hello-1.0/hello.txt"), b"hello\n")])
    made.recipe("fetched", FETCHED.format(url=url, blake3=digest))
    (root / "config/c.toml").write_text(f'[packages]\n{BUILT_PACKAGES}fetched = {{}}\nboot = "binary"\n')
    result = run_doit("pkg", *host_args(root), f"prebuilt={server}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root / "recipes/fetched/source/hello.txt").read_text() == "hello\n"
    return made


def bad_tar(good: Good, members: list[tuple[tarfile.TarInfo, bytes]]) -> str:
    url, digest = good.tarball("bad.tar.gz", members)
    good.recipe("fetched", FETCHED.format(url=url, blake3=digest))
    return f"{{root}}/build/downloads/{digest}.tar"


def garbage_tar(good: Good) -> str:
    path = good.outside.parent / "served" / "garbage.tar.gz"
    path.write_bytes(b"this is no tar archive\n" * 10)
    digest = blake3.blake3(path.read_bytes()).hexdigest()
    good.recipe("fetched", FETCHED.format(url=path.as_uri(), blake3=digest))
    return f"fetch:fetched: {{root}}/build/downloads/{digest}.tar: not a tar archive (plain, gzip, bzip2 or xz)"


def tar_blake3_mismatch(good: Good) -> str:
    url, digest = good.tarball("other.tar.gz", [(member("hello-1.0/hello.txt"), b"changed upstream\n")])
    good.recipe("fetched", FETCHED.format(url=url, blake3="0" * 64))
    return (f"fetch:fetched: {{root}}/recipes/fetched/recipe.toml: source.blake3: mismatch for {url}: expected "
            f"{'0' * 64}, downloaded {digest}")


def tar_missing_blake3(good: Good) -> str:
    url, digest = good.tarball("other.tar.gz", [(member("hello-1.0/hello.txt"), b"changed upstream\n")])
    good.recipe("fetched", FETCHED.format(url=url, blake3="").replace('blake3 = ""\n', ""))
    return f"fetch:fetched: {{root}}/recipes/fetched/recipe.toml: source.blake3: missing; {url} has blake3 = " \
           f"\"{digest}\" (add it to the recipe)"


def tar_unreachable(good: Good) -> str:
    url = (good.outside.parent / "served" / "gone.tar.gz").as_uri()
    good.recipe("fetched", FETCHED.format(url=url, blake3="1" * 64))
    return (f"fetch:fetched: {{root}}/recipes/fetched/recipe.toml: source.tar: cannot download {url}: [Errno 2] No "
            f"such file or directory: '{good.outside.parent}/served/gone.tar.gz'")


def patch_missing(good: Good) -> str:
    text = (good.root / "recipes/fetched/recipe.toml").read_text()
    good.recipe("fetched", text.replace("[build]", 'patches = ["fix.patch"]\n[build]'))
    return "fetch:fetched: {root}/recipes/fetched/recipe.toml: source.patches[0]: patch file fix.patch does not exist"


def patch_that_does_not_apply(good: Good) -> str:
    text = (good.root / "recipes/fetched/recipe.toml").read_text()
    good.recipe("fetched", text.replace("[build]", 'patches = ["fix.patch"]\n[build]'))
    (good.root / "recipes/fetched/fix.patch").write_text(
        "--- a/hello.txt\n+++ b/hello.txt\n@@ -1 +1 @@\n-not what is there\n+patched\n")
    return ("fetch:fetched: {root}/recipes/fetched/recipe.toml: source.patches[0]: fix.patch does not apply (Hunk #1 "
            "FAILED at 1.)")


def path_source_missing(good: Good) -> str:
    good.recipe("fetched", FETCHED.replace('tar = "{url}"\nblake3 = "{blake3}"', 'path = "../nowhere"'))
    return "fetch:fetched: {root}/recipes/fetched/recipe.toml: source.path: {root}/recipes/nowhere is not a directory"


def git_unreachable(good: Good) -> str:
    url = (good.outside.parent / "nowhere.git").as_uri()
    good.recipe("fetched", FETCHED.replace('tar = "{url}"\nblake3 = "{blake3}"', f'git = "{url}"'))
    return (f"fetch:fetched: {{root}}/recipes/fetched/recipe.toml: source.git: cannot clone {url} (fatal: '"
            f"{good.outside.parent}/nowhere.git' does not appear to be a git repository)")


def package_missing(good: Good) -> str:
    good.package.unlink()
    return (f"cook:boot: {good.package}: boot is taken prebuilt (rule \"binary\"), but this file is missing: put the "
            f"package server's {host_triple()}/boot.pkgar there, or choose another directory with prebuilt=DIR")


def package_by_another_key(good: Good) -> str:
    good.forge([(b"boot/bootloader.efi", b"MZ evil", 0o100644)], key=pkgkeys.generate())
    return (f"cook:boot: {good.package}: the header signature does not verify with the trusted public key (wrong "
            "key, or a tampered header)")


def package_tampered(good: Good) -> str:
    data = bytearray(good.package.read_bytes())
    data[-1] ^= 0xFF
    good.package.write_bytes(bytes(data))
    return (f"cook:boot: {good.package}: entry 'boot/bootloader.efi' does not match its BLAKE3 (tampered or corrupt "
            "data)")


def package_truncated(good: Good) -> str:
    good.package.write_bytes(good.package.read_bytes()[:100])
    return f"cook:boot: {good.package}: truncated: expected 136 more bytes at offset 0"


def package_entry_climbs_out(good: Good) -> str:
    good.forge([(b"boot/bootloader.efi", b"MZ", 0o100644), (b"../../outside/sentinel", b"evil", 0o100644)])
    return f"cook:boot: {good.package}: entry path '../../outside/sentinel' contains '..'"


def package_entry_with_nul(good: Good) -> str:
    good.forge([(b"boot/bootloader.efi\0.txt", b"MZ", 0o100644)])
    return f"cook:boot: {good.package}: entry path 'boot/bootloader.efi\\x00.txt' contains NUL"


def package_entry_under_its_symlink(good: Good) -> str:
    good.forge([(b"boot/out", str(good.outside.parent).encode(), 0o120777), (b"boot/out/sentinel", b"evil", 0o100644)])
    return (f"cook:boot: {good.package}: entry 'boot/out/sentinel' lies under the symlink entry 'boot/out', which "
            "extraction would follow")


def package_repeated_path(good: Good) -> str:
    good.forge([(b"boot/bootloader.efi", b"MZ", 0o100644), (b"boot/bootloader.efi", b"MZ2", 0o100644)])
    return f"cook:boot: {good.package}: two entries have the path 'boot/bootloader.efi'"


def prebuilt_key_missing(good: Good) -> str:
    (good.server / "id_ed25519.pub.toml").unlink()
    return (f"cook:boot: {good.server}/id_ed25519.pub.toml: boot is taken prebuilt (rule \"binary\"), but this file "
            "is missing: put the package server's id_ed25519.pub.toml there, or choose another directory with "
            "prebuilt=DIR")


BUILD_CASES = {case.__name__.replace("_", " "): case for case in (
    garbage_tar, tar_blake3_mismatch, tar_missing_blake3, tar_unreachable, patch_missing, patch_that_does_not_apply,
    path_source_missing, git_unreachable, package_missing, package_by_another_key, package_tampered,
    package_truncated, package_entry_climbs_out, package_entry_with_nul, package_entry_under_its_symlink,
    package_repeated_path, prebuilt_key_missing)}
TAR_CASES = {
    "tar member climbs out": ([(member("hello-1.0/../../../outside/sentinel"), b"evil")],
                              "member 'hello-1.0/../../../outside/sentinel' escapes the source directory"),
    "tar symlink out": ([(member("hello-1.0/out", tarfile.SYMTYPE, "/tmp"), b"")],
                        "symlink 'hello-1.0/out' points outside the source: /tmp"),
    "tar hardlink out": ([(member("hello-1.0/passwd", tarfile.LNKTYPE, "/etc/passwd"), b"")],
                         "hardlink 'hello-1.0/passwd' points outside the source: /etc/passwd"),
    "tar device": ([(member("hello-1.0/null", tarfile.CHRTYPE), b"")],
                   "member 'hello-1.0/null' is a device or fifo, which a source must not hold"),
    "tar fifo": ([(member("hello-1.0/pipe", tarfile.FIFOTYPE), b"")],
                 "member 'hello-1.0/pipe' is a device or fifo, which a source must not hold"),
}


@pytest.mark.parametrize("case", sorted(BUILD_CASES))
def test_a_bad_source_or_package_gives_one_precise_line_and_keeps_the_previous_build(case, good, tmp_path):
    expected = BUILD_CASES[case](good)
    assert_refused(good.root, tmp_path, expected, f"prebuilt={good.server}")
    assert not good.outside.exists()


@pytest.mark.parametrize("case", sorted(TAR_CASES))
def test_a_hostile_archive_gives_one_precise_line_and_keeps_the_previous_build(case, good, tmp_path):
    members, reason = TAR_CASES[case]
    archive = bad_tar(good, [(member("hello-1.0/hello.txt"), b"new\n"), *members])
    assert_refused(good.root, tmp_path, f"fetch:fetched: {archive}: {reason}", f"prebuilt={good.server}")
    assert not good.outside.exists()
    assert (good.root / "recipes/fetched/source/hello.txt").read_text() == "hello\n"  # the previous source


def test_at_least_100_distinct_bad_inputs():
    assert len(CASES) + len(VARIABLE_CASES) + len(BUILD_CASES) + len(TAR_CASES) >= 100


@pytest.mark.parametrize("broken", ["directory", "dangling symlink"])
def test_a_broken_recipe_file_is_named_not_missing(broken, built, tmp_path):
    """Before: "no recipe named 'b'", as if the recipe were not there (issue 19, item 8)."""
    root = with_case(built, tmp_path, {"a": OK}, {"c.toml": PACKAGE_A + BUILT_PACKAGES + "b = {}\n"})
    recipe = root / "recipes/b/recipe.toml"
    recipe.parent.mkdir()
    if broken == "directory":
        recipe.mkdir()
        expected = "{root}/recipes/b/recipe.toml: a directory, not a file"
    else:
        recipe.symlink_to(tmp_path / "gone.toml")
        expected = f"{{root}}/recipes/b/recipe.toml: a symlink to {tmp_path}/gone.toml, which does not exist"
    assert_refused(root, tmp_path, expected)
