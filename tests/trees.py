"""Small recipe trees written by tests: ``make_tree(root, {"core/ion": "<recipe.toml>"}, {"x.toml": "..."})``."""
from __future__ import annotations

from pathlib import Path


def make_tree(root: Path, recipes: dict[str, str], configs: dict[str, str] | None = None) -> Path:
    for where, text in recipes.items():
        directory = root / "recipes" / where
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "recipe.toml").write_text(text)
    for where, text in (configs or {}).items():
        path = root / "config" / where
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


LIB = '''[build]
template = "custom"
script = """
mkdir -p "$COOKBOOK_STAGE/usr/share/lib"
cp "$COOKBOOK_SOURCE/data.txt" "$COOKBOOK_STAGE/usr/share/lib/data.txt"
sleep ${SLOW:-0}
"""
'''
APP = '''[build]
template = "custom"
dependencies = ["lib"]
script = """
mkdir -p "$COOKBOOK_STAGE/usr/share/app"
cat "$COOKBOOK_SYSROOT/usr/share/lib/data.txt" "$COOKBOOK_SOURCE/app.txt" > "$COOKBOOK_STAGE/usr/share/app/out.txt"
sleep ${SLOW:-0}
"""
'''
OTHER = '''[build]
template = "custom"
script = """
mkdir -p "$COOKBOOK_STAGE/usr/share/other"
cp "$COOKBOOK_SOURCE/other.txt" "$COOKBOOK_STAGE/usr/share/other/"
echo "flags=$RUSTFLAGS" > "$COOKBOOK_STAGE/usr/share/other/flags.txt"
sleep ${SLOW:-0}
"""
'''


def bash_recipes_tree(root: Path) -> Path:
    """Three small bash recipes for the host (``lib``; ``app``, built against lib's stage; ``other``, which puts
    ``$RUSTFLAGS`` into its output) with their sources, and ``config/c.toml`` asking for app and other."""
    make_tree(root, {"lib": LIB, "app": APP, "other": OTHER}, {"c.toml": '[packages]\napp = {}\nother = {}\n'})
    for recipe, files in {"lib": {"data.txt": "lib data\n", "notes.txt": "not built\n"},
                          "app": {"app.txt": "app\n"}, "other": {"other.txt": "other\n"}}.items():
        (root / "recipes" / recipe / "source").mkdir()
        for name, text in files.items():
            (root / "recipes" / recipe / "source" / name).write_text(text)
    return root


def cargo(*deps: str, runtime: tuple[str, ...] = ()) -> str:
    text = '[source]\ngit = "https://example.org/x.git"\n[build]\ntemplate = "cargo"\n'
    text += f"dependencies = {list(deps)!r}\n".replace("'", '"')
    if runtime:
        text += f"[package]\ndependencies = {list(runtime)!r}\n".replace("'", '"')
    return text


def sparse_file(path: Path, size: int, head: bytes = b"") -> Path:
    """A file of ``size`` bytes starting with ``head`` (disk images, firmware) that takes no disk space."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as stream:
        stream.write(head)
        stream.truncate(size)
    return path


def redoxfs_image(redoxfs_bin: Path, tree: Path, image: Path, lead: bytes) -> Path:
    """``redoxfs-ar`` of ``tree`` into a 16 MiB filesystem, written to ``image`` after ``lead`` (what precedes the
    filesystem on a disk: a partition table, say)."""
    from tasks.process import run
    filesystem = image.with_name(image.name + ".fs")
    with open(filesystem, "wb") as disk:
        disk.truncate(16 * 1024 * 1024)
    run([redoxfs_bin / "redoxfs-ar", filesystem, tree], capture=True)
    image.write_bytes(lead + filesystem.read_bytes())
    return image
