"""Reading TOML files into pydantic models with one-line errors and warnings for unknown keys.

Upstream parsers (serde without ``deny_unknown_fields``) ignore unknown keys; we accept them too but report each
one, so a typo such as ``dependancies`` is visible.
"""
from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import tomli
from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import InputError

M = TypeVar("M", bound=BaseModel)

_POSITION = re.compile(r"^(?P<message>.*?) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")
_POSITION_EOF = re.compile(r"^(?P<message>.*?) \(at end of document\)$")

_TYPE_MESSAGES = {
    "string_type": "expected a string",
    "bool_type": "expected a boolean (true or false)",
    "int_type": "expected an integer",
    "list_type": "expected an array",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "missing": "missing required key",
}


class Table(BaseModel):
    """Base of every TOML table model: no type coercion (as serde), unknown keys kept for warnings."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, populate_by_name=True)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a leading BOM is accepted, as the installer accepts it
    except FileNotFoundError:
        if path.is_symlink():
            raise InputError(f"a symlink to {os.readlink(path)}, which does not exist", path=path) from None
        raise InputError("file not found", path=path) from None
    except IsADirectoryError:
        raise InputError("a directory, not a file", path=path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read: {error}", path=path) from None
    try:
        return tomli.loads(text)
    except tomli.TOMLDecodeError as error:
        raise syntax_error(path, str(error)) from None


def syntax_error(path: Path, message: str) -> InputError:
    """A TOML syntax error as ``file: line L, column C: reason``."""
    if match := _POSITION.match(message):
        where = f"line {match['line']}, column {match['column']}"
    elif match := _POSITION_EOF.match(message):
        where = "end of file"
    else:
        return InputError(f"invalid TOML: {message}", path=path)
    reason = match["message"]
    return InputError(f"invalid TOML: {reason[0].lower()}{reason[1:]}", path=path, key=where)


def validate(model: type[M], data: dict[str, Any], path: Path) -> tuple[M, list[str]]:
    """Validate ``data`` as ``model``; return it with one warning per unknown key."""
    try:
        value = model.model_validate(data)
    except ValidationError as error:
        raise validation_error(error, path) from None
    return value, [f"{key}: unknown key (ignored{f'; did you mean {near}?' if near else ''})"
                   for key, near in unknown_keys(value)]


def nearest(word: str, known: Iterable[str]) -> str | None:
    """The one of ``known`` that ``word`` is most probably a typo of, if any is close."""
    return next(iter(difflib.get_close_matches(word, list(known), n=1)), None)


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the nearest of ``known``, or nothing."""
    near = nearest(word, known)
    return f" (did you mean {near!r}?)" if near else ""


def validation_error(error: ValidationError, path: Path) -> InputError:
    """The first validation error as one line: file, dotted key path, reason."""
    detail = error.errors(include_url=False)[0]
    key = key_path(detail["loc"])
    reason = detail.get("ctx", {}).get("reason") or _TYPE_MESSAGES.get(detail["type"]) or detail["msg"]
    reason = reason.removeprefix("Value error, ")
    bounds = {"greater_than_equal": ("at least", "ge"), "less_than_equal": ("at most", "le")}
    if (bound := bounds.get(detail["type"])) is not None:
        reason = f"must be {bound[0]} {detail['ctx'][bound[1]]}, got {detail['input']!r}"
    if detail["type"] in _TYPE_MESSAGES and detail["type"] != "missing":
        reason += f", got {_describe(detail['input'])}"
    return InputError(reason, path=path, key=key or None)


def key_path(loc: tuple[Any, ...]) -> str:
    """``('build', 'dependencies', 0)`` → ``build.dependencies[0]``; tags of tagged unions are dropped."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and (part.startswith("<") or part == "[key]"):
            continue  # pydantic's markers for a union member and for a dict key
        else:
            # A key TOML must quote is shown quoted, so that the path reads back as the file's key.
            shown = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)
            text += ("." if text else "") + shown
    return text


def unknown_keys(value: BaseModel, prefix: str = "") -> list[tuple[str, str | None]]:
    """Every key the models do not know, dotted, with the nearest known key of its table when one is close."""
    known = [field.alias or name for name, field in type(value).model_fields.items()]
    found = [(f"{prefix}{key}", nearest(key, known)) for key in (value.model_extra or {})]
    for name, field in type(value).model_fields.items():
        label = f"{prefix}{field.alias or name}"
        child = getattr(value, name)
        if isinstance(child, BaseModel):
            found += unknown_keys(child, label + ".")
        elif isinstance(child, (list, tuple)):
            for index, item in enumerate(child):
                if isinstance(item, BaseModel):
                    found += unknown_keys(item, f"{label}[{index}].")
        elif isinstance(child, dict):
            for key, item in child.items():
                if isinstance(item, BaseModel):
                    found += unknown_keys(item, f"{label}.{key}.")
    return found


def _describe(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array",
             dict: "a table"}
    kind = kinds.get(type(value), type(value).__name__)
    shown = repr(value)
    return f"{kind} {shown}" if len(shown) <= 40 else kind
