"""``doit cache stats | verify | prune --older-than=AGE``: the shared cache of ``cache=`` (:mod:`tasks.cache`)."""
from __future__ import annotations

import re
from datetime import timedelta

from doit.exceptions import InvalidCommand

from .commands import BuildCommand

OPT_OLDER_THAN = {"name": "older_than", "long": "older-than", "type": str, "default": "",
                  "help": "prune: entries (and the blobs only they name) last written longer ago than AGE: 30d, 12h, "
                          "2w, 90m"}
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Cache(BuildCommand):
    name = "cache"
    doc_purpose = "the shared build cache (cache=URL): what it served this build, whether its entries hold, pruning"
    doc_usage = "stats | verify | prune --older-than=AGE"
    doc_description = ("stats: how often this build directory's tasks came from the cache, missed it, were refused "
                       "or uploaded. verify: downloads and checks the entry of every task of the config that has a "
                       "record, as a build would (exit status 1 when one is refused). prune: removes old entries.")
    cmd_options = (OPT_OLDER_THAN,)

    def _execute(self, older_than, pos_args=None):
        from .creators import settings, task_cache
        # doit reads options before the first argument only: `prune --older-than=30d` arrives as two arguments
        words = [word for word in pos_args or [] if not word.startswith("--older-than=")]
        older_than = next((word.split("=", 1)[1] for word in pos_args or [] if word not in words), older_than)
        action = (words or [""])[0]
        if action not in ("stats", "verify", "prune") or len(words) != 1:
            raise InvalidCommand("doit cache stats | verify | prune --older-than=AGE")
        cache = task_cache()
        if cache is None:
            raise InvalidCommand("no cache is set: cache=s3://BUCKET/PREFIX or cache=file:///DIR (doit settings "
                                 "cache=… keeps it)")
        if action == "stats":
            return _stats(cache, settings().build)
        from ..cache.store import Unavailable
        try:
            return _verify(cache) if action == "verify" else _prune(cache, older_than)
        except Unavailable as error:
            raise InvalidCommand(f"cache: {cache.store.url} cannot be reached ({error})") from None


def _stats(cache, build) -> int:
    from ..cache.events import counted
    counts = counted(cache.events)
    print(f"cache {cache.store.url}, as {build} used it:")
    print(f"  tasks taken from it: {counts['hit']}, not in it: {counts['miss']}, refused: {counts['refused']}, "
          f"uploaded: {counts['uploaded']}; the store unreachable: {counts['unavailable']} times")
    print(f"  compilations (sccache): {counts['rustc-hits']} hits, {counts['rustc-misses']} misses")
    return 0


def _verify(cache) -> int:
    from .creators import PLANNED, SIGNATURES, state
    refused = 0
    for task, planned in PLANNED.items():
        if not planned.cached or state().get(task) is None:
            continue
        verdict = cache.verify(task, SIGNATURES[task]().digest)
        refused += verdict.startswith("refused")
        print(f"{task}: {verdict}")
    return 1 if refused else 0


def _prune(cache, older_than: str) -> int:
    match = re.fullmatch(r"(\d+)([mhdw])", older_than)
    if match is None:
        raise InvalidCommand(f"--older-than={older_than!r}: a number and a unit (m, h, d, w): 30d, 12h")
    entries, blobs = cache.prune(timedelta(**{UNITS[match[2]]: int(match[1])}))
    print(f"removed {entries} entries and {blobs} blobs older than {older_than}")
    return 0
