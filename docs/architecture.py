"""Draw the pipeline as the stage declarations say it is: docs/architecture.dot and, with graphviz, .svg.

    .venv/bin/python docs/architecture.py          # after a change to a stage's deps or imports

Every stage is a node (its module, then the helper modules no other stage imports); an edge is a dependency of one
of its tasks in the graph of the default config (the fork's desktop), solid when the dependency's output is part of
the signature, dashed when it is order-only. Read from the code each time, so that the picture cannot drift.
"""
from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

from doit import doit_cmd  # noqa: E402

from tasks.cli import creators  # noqa: E402
from tasks.engine.codeversion import CodeGraph  # noqa: E402
from tasks.settings import PROJECT_DIR  # noqa: E402
from tasks.stages import STAGES  # noqa: E402


def edges(build: Path) -> dict[tuple[str, str], bool]:
    """(stage, the stage it depends on) → signed (True) or order-only, over every task of the default graph."""
    doit_cmd.reset_vars()
    doit_cmd.set_var("build", str(build))
    found: dict[tuple[str, str], bool] = {}
    for stage_class in STAGES:
        stage = stage_class(creators.context())
        for task in creators.planned(stage):
            for dep in task.deps:
                key = (stage.name, dep.task.split(":", 1)[0])
                found[key] = found.get(key, False) or not dep.order_only
    return found


def helpers() -> dict[str, list[str]]:
    """Each stage's module, and the project modules that no other stage imports."""
    graph = CodeGraph(PROJECT_DIR / "tasks")
    closures = {stage.name: [path.relative_to(graph.package_dir).as_posix()
                             for path in graph.closure(Path(inspect.getfile(stage)))] for stage in STAGES}
    shared = {path for name, paths in closures.items() for other, theirs in closures.items() if other != name
              for path in paths if path in theirs}
    modules = {stage.name: Path(inspect.getfile(stage)).relative_to(graph.package_dir).as_posix() for stage in STAGES}
    return {name: [modules[name], *(path for path in paths if path not in shared and path != modules[name])]
            for name, paths in closures.items()}


def dot(build: Path) -> str:
    lines = ["digraph pipeline {", '  rankdir=LR; node [shape=box, fontname="Helvetica", fontsize=11];',
             '  edge [color="#555555"];']
    for name, modules in helpers().items():
        label = "\\n".join([name, *modules])
        lines.append(f'  "{name}" [label="{label}"];')
    for (stage, dep), signed in sorted(edges(build).items()):
        if stage != dep:
            lines.append(f'  "{dep}" -> "{stage}"{"" if signed else " [style=dashed]"};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    source = DOCS / "architecture.dot"
    with tempfile.TemporaryDirectory() as build:
        source.write_text(dot(Path(build)))
    if shutil.which("dot") is None:
        sys.exit(f"wrote {source}; graphviz's dot is not installed (apt-get install graphviz), so no SVG")
    subprocess.run(["dot", "-Tsvg", source, "-o", source.with_suffix(".svg")], check=True)
    print(f"wrote {source} and {source.with_suffix('.svg')}")


if __name__ == "__main__":
    main()
