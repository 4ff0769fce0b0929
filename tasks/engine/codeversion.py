"""Code versions: which of the build system's own files a stage's output depends on, and their hash.

A stage's code version covers the bytes of its module and of every project module that its import statements name,
followed transitively, plus the data files it declares (templates, which no import names). It is found from the
import graph, not from a list kept by hand, so that an edit re-runs exactly the stages whose code it touches:

* imports inside functions count (the build machinery is imported where it is used); imports under
  ``if TYPE_CHECKING:`` do not, since they never run;
* ``from package import name`` counts the module ``package.name`` when there is one, and the package's
  ``__init__`` only when a name is taken from it: a stage module does not depend on its siblings through the
  package that holds them.

Each file is parsed once and remembered with its stat in a small cache, so that asking again costs a stat per file.
Knows nothing of doit; standard library and the project's hasher only.
"""
from __future__ import annotations

import ast
import marshal
import os
from collections.abc import Iterable
from pathlib import Path

from ..atomic import write_atomically
from ..hashing import hash_bytes, hash_value

CACHE_FORMAT = 1
Entry = tuple[tuple[int, int, int, int], str, list[str]]  # stat key, content hash, imported files (relative)


class CodeGraph:
    """The import graph of one package (``tasks``), with each file's content hash; cached in ``cache``."""

    def __init__(self, package_dir: Path, cache: Path | None = None):
        self.package_dir = Path(package_dir).resolve()
        self.package = self.package_dir.name
        self.cache = cache
        self._entries: dict[str, Entry] = self._load()
        self._changed = False

    def closure(self, module: Path) -> list[Path]:
        """``module`` and every project module it imports, directly or not, sorted."""
        seen: set[str] = set()
        pending = [self._relative(module)]
        while pending:
            rel = pending.pop()
            if rel not in seen:
                seen.add(rel)
                pending.extend(self._entry(rel)[2])
        return [self.package_dir / rel for rel in sorted(seen)]

    def version(self, module: Path, data: Iterable[Path] = ()) -> str:
        """The hash of ``module``'s closure and of the ``data`` files (a directory: every file below it)."""
        files = [self._relative(path) for path in self.closure(module)]
        data_files = sorted(self._relative(path) for path in _files(data))
        version = hash_value([[rel, self._entry(rel)[1]] for rel in files] +
                             [[rel, self._entry(rel, parse=False)[1]] for rel in data_files])
        self.save()
        return version

    def save(self) -> None:
        if self._changed and self.cache is not None:
            write_atomically(self.cache, marshal.dumps((CACHE_FORMAT, str(self.package_dir), self._entries)))
            self._changed = False

    # --- files ---------------------------------------------------------------------------------------------------

    def _relative(self, path: Path) -> str:
        return Path(path).resolve().relative_to(self.package_dir).as_posix()

    def _entry(self, rel: str, parse: bool = True) -> Entry:
        path = self.package_dir / rel
        st = os.stat(path)
        key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        entry = self._entries.get(rel)
        if entry is None or tuple(entry[0]) != key:
            data = path.read_bytes()
            imports = sorted(self._imports(rel, data)) if parse else []
            entry = self._entries[rel] = (key, hash_bytes(data), imports)
            self._changed = True
        return entry

    def _load(self) -> dict[str, Entry]:
        try:
            version, root, entries = marshal.loads(self.cache.read_bytes())  # type: ignore[union-attr]
        except (AttributeError, OSError, EOFError, ValueError, TypeError):
            return {}
        return entries if version == CACHE_FORMAT and root == str(self.package_dir) else {}

    # --- imports -------------------------------------------------------------------------------------------------

    def _imports(self, rel: str, source: bytes) -> set[str]:
        """The project files that the import statements of ``rel`` name."""
        package = rel.split("/")[:-1]  # of a module and of a package's __init__ alike
        found: set[str] = set()
        for node in _executed_imports(ast.parse(source, filename=rel)):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found |= self._module(_absolute(alias.name, self.package))
            elif node.level == 0:
                base = _absolute(node.module or "", self.package)
                if base is not None:
                    found |= self._from(base, [alias.name for alias in node.names])
            else:
                base = package[:len(package) - (node.level - 1)] if node.level - 1 <= len(package) else None
                if base is not None:
                    found |= self._from([*base, *(node.module.split(".") if node.module else [])],
                                        [alias.name for alias in node.names])
        found.discard(rel)
        return found

    def _from(self, base: list[str], names: list[str]) -> set[str]:
        """``from base import names``: each submodule named, and ``base`` itself when a name is not one."""
        found: set[str] = set()
        takes_attribute = False
        for name in names:
            submodule = self._module([*base, name]) if name != "*" else set()
            found |= submodule
            takes_attribute |= not submodule
        return found | self._module(base) if takes_attribute else found

    def _module(self, parts: list[str] | None) -> set[str]:
        """The file of a module (``[image, installer]``) inside the package, if it is one."""
        if parts is None:
            return set()
        for rel in ("/".join(parts) + ".py", "/".join([*parts, "__init__.py"])):
            if (self.package_dir / rel).is_file():
                return {rel}
        return set()


def _absolute(name: str, package: str) -> list[str] | None:
    """``tasks.image.installer`` → ``[image, installer]``; None for a module outside the package."""
    parts = name.split(".")
    return parts[1:] if parts[0] == package else None


def _executed_imports(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: at module level and in functions, not under ``if TYPE_CHECKING``."""
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        pending.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _files(paths: Iterable[Path]) -> list[Path]:
    files = []
    for path in paths:
        files.extend(sorted(file for file in Path(path).rglob("*") if file.is_file()) if Path(path).is_dir()
                     else [Path(path)])
    return files
