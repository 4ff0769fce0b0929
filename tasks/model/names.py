"""Package names, with the upstream grammar (pkgutils ``PackageName::new``).

``[host:|target:]<recipe>[.<optional package>]``: non-empty, no ``/`` or NUL, at most one ``.``, at most one
``:`` and only as the ``host:``/``target:`` prefix.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

PREFIXES = ("host", "target")


@dataclass(frozen=True, order=True)
class PackageRef:
    """A parsed package name: which recipe, built for the host or the target, and which optional package."""

    recipe: str
    host: bool = False
    optional: str | None = None

    @property
    def package(self) -> str:
        """The package file name (``recipe`` or ``recipe.opt``), without the host prefix."""
        return self.recipe if self.optional is None else f"{self.recipe}.{self.optional}"

    def __str__(self) -> str:
        return ("host:" if self.host else "") + self.package


def parse_package_name(name: str) -> PackageRef:
    """Parse ``name`` or raise ``ValueError`` saying which rule it breaks."""
    if not name:
        raise ValueError("package name is empty")
    if "/" in name or "\0" in name:
        raise ValueError(f"invalid package name {name!r}: must not contain '/' or NUL")
    if any(char.isspace() for char in name):
        # The installer's --list-packages output, which the image step reads, is split on whitespace.
        raise ValueError(f"invalid package name {name!r}: must not contain whitespace")
    host = False
    if ":" in name:
        prefix, _, rest = name.partition(":")
        if prefix not in PREFIXES or ":" in rest:
            raise ValueError(f"invalid package name {name!r}: ':' is only allowed in the prefixes "
                             f"'host:' and 'target:'")
        host, name = prefix == "host", rest
    if name.count(".") > 1:
        raise ValueError(f"invalid package name {name!r}: at most one '.' (the optional-package suffix)")
    recipe, dot, optional = name.partition(".")
    if not recipe or (dot and not optional):
        raise ValueError(f"invalid package name {name!r}: empty recipe or optional-package part")
    return PackageRef(recipe, host, optional or None)


def _check(name: str) -> str:
    parse_package_name(name)
    return name


PackageName = Annotated[str, AfterValidator(_check)]
"""A string field holding a valid package name."""


def _check_sibling(name: str) -> str:
    # Optional packages may name a sibling of their own recipe as ".foo".
    if name.startswith(".") and name.count(".") == 1 and len(name) > 1 and "/" not in name:
        return name
    return _check(name)


OptionalDependencyName = Annotated[str, AfterValidator(_check_sibling)]
