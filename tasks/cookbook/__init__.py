"""Fetching and cooking recipes with the upstream cookbook's environment, and the relibc sysroot.

Nothing here knows doit: ``fetch:<name>`` calls :func:`fetch`, ``cook:<name>`` calls :func:`cook`, ``relibc``
calls :func:`assemble_relibc_sysroot`.
"""
from .cook import CookPaths, CookRequest, CookResult, assemble_sysroot, cook, split_optional_packages
from .fetch import FetchResult, FetchStatus, SourcePaths, fetch
from .relibc import assemble_relibc_sysroot
from .script import ScriptOptions, build_environment, build_script

__all__ = [
    "CookPaths", "CookRequest", "CookResult", "FetchResult", "FetchStatus", "ScriptOptions",
    "SourcePaths", "assemble_relibc_sysroot", "assemble_sysroot", "build_environment", "build_script", "cook",
    "fetch", "split_optional_packages",
]
