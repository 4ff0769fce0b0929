"""What ``doit explain TASK…`` says (:class:`tasks.cli.commands.Explain`): why a task would run, as the chain down
to the input that changed, with the file names:

    pkg:hello is stale:
      pkg:hello ← cook:hello ← source: demo/recipes/hello/source/src/main.rs changed

A task is "up to date" only when the tasks it depends on are too; one whose own inputs match but whose dependency
is stale says so (it runs again if that dependency's output changes). A tree's files are named from the manifests
the tree hasher keeps of recent digests (:class:`tasks.engine.treehash.ManifestStore`); other inputs by their
component (``recipe``, ``toolchain``, ``env:RUSTFLAGS``…), as bitbake-diffsigs does.
"""
from __future__ import annotations

from ..engine import Change
from ..errors import display_path
from .creators import PLANNED, engine, signature_of

FILES_SHOWN = 10


def explanation(task: str) -> str:
    signature_of(task)  # an unknown task: the error names it
    own = _causes(task, {})
    if own:
        return "\n".join([f"{task} is stale:", *(f"  {' ← '.join(chain)}" for chain in own)])
    upstream = [chain for dep in _deps(task) for chain in _causes(dep, {}, follow=True)]
    if not upstream:
        return "\n".join([f"{task} is up to date", *_restored(task)])
    return "\n".join([f"{task} is up to date itself, but a task it depends on is stale (it runs again if that "
                      "task's output changes):", *(f"  {task} ← {' ← '.join(chain)}" for chain in upstream)])


def _restored(task: str) -> list[str]:
    """For the image after a whole ``doit restore``: that it is a promotion's, not what its inputs build, and which
    files of the overlay it lacks (the next build brings them)."""
    if task != "image":
        return []
    from ..image.keep import restored_from
    from ..image.overlay import overlay_differences
    from ..layout import Layout
    from .creators import settings
    from .images import image_files
    image = Layout(settings()).disk_image
    if (note := restored_from(image)) is None:
        return []
    lines = [f"  but it is the promotion {note['from']!r}, restored at {note['at']}, not what its inputs build: "
             f"`doit forget image` and `doit image` build it from them"]
    missing = overlay_differences(settings().overlay_dir, image_files(image))
    lines += [f"  the overlay holds {path}, which this image lacks or holds otherwise" for path in missing]
    return lines


def _deps(task: str) -> list[str]:
    planned = PLANNED.get(task)
    return [] if planned is None else [dep.task for dep in planned.deps if not dep.order_only and dep.task in PLANNED]


def _causes(task: str, seen: dict[str, list[list[str]]], follow: bool = False) -> list[list[str]]:
    """The chains from ``task`` down to each changed input; ``follow``: through dependencies that are stale
    although the task's own inputs match (for a task's upstream)."""
    if task in seen:
        return seen[task]
    seen[task] = []
    changes = engine().state.explain(task, signature_of(task))
    changes += [Change("output changed", output) for output in engine().changed_outputs(task)]
    chains: list[list[str]] = []
    for change in changes:
        dep = change.component.removeprefix("dep:")
        if change.component.startswith("dep:") and change.kind == "changed" and dep in PLANNED:
            below = _causes(dep, seen, follow=True)
            chains += [[task, *chain] for chain in below] or \
                [[task, f"{dep} was built again since {task} ran (its output changed)"]]
        else:
            chains += [[task, text] for text in _described(change)]
    if not chains and follow:
        chains = [[task, *chain] for dep in _deps(task) for chain in _causes(dep, seen, follow=True)]
    seen[task] = chains
    return chains


def _described(change: Change) -> list[str]:
    """A change in words; a tree's by the files that differ, when the hasher still knows both manifests."""
    if change.component == "code" and change.kind == "changed":
        return ["code: this build system's code for the stage changed (its module under tasks/, what it imports, "
                "its templates)"]
    if change.kind == "changed" and change.old and change.new:
        files = engine().trees.manifests.changes(change.old, change.new)
        if files is not None and files[1]:
            root, differences = files
            shown = [f"{change.component}: {display_path(f'{root}/{rel}')} {kind}"
                     for kind, rel in differences[:FILES_SHOWN]]
            if len(differences) > FILES_SHOWN:
                shown.append(f"{change.component}: and {len(differences) - FILES_SHOWN} more files")
            return shown
    return [str(change)]
