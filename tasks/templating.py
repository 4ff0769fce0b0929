"""The one way to render a file from ``tasks/templates/``: jinja2 with StrictUndefined, so a missing variable
is an error instead of an empty string in a target spec or a build script."""
from __future__ import annotations

import shlex
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


@cache
def _environment() -> jinja2.Environment:
    import jinja2  # here: loading the tasks (the check after an edit) renders nothing
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    environment.filters["shquote"] = lambda value: shlex.quote(str(value))
    return environment


def render(name: str, **context: Any) -> str:
    return _environment().get_template(name).render(**context)


def template_path(name: str) -> Path:
    return TEMPLATES_DIR / name
