"""The pipeline stages: toolchain → relibc → base → initfs → image → qcow2."""
from __future__ import annotations

from ..graph import Node
from .common import builder, inputs, project, tracked
from .recipes import cook_name, pkg_name


def _cook_if_present(*recipes: str) -> list[str]:
    steps = project().graph.steps
    return [cook_name(Node(name)) for name in recipes if Node(name) in steps]


def _recipes(*names: str) -> list:
    steps = project().graph.steps
    return [steps[Node(name)].recipe for name in names if Node(name) in steps]


def task_toolchain():
    """Check the pinned Rust toolchain and codegen backend; render the target specs"""
    return tracked("toolchain", "prepare_toolchain", (), lambda: inputs().toolchain(),
                   lambda: [] if builder().host_only else list(builder().specs().values()))


def task_relibc():
    """Build relibc and assemble the sysroot every userspace build links against"""
    cook = _cook_if_present("relibc")
    if not cook or builder().host_only:  # a host build links against the host libc
        return {"actions": None, "task_dep": ["toolchain", *cook], "uptodate": [True]}
    return {"task_dep": ["toolchain", *cook],
            **tracked("relibc", "relibc_sysroot", (), lambda: inputs().relibc(), lambda: [builder().sysroot])}


def task_base():
    """Build the base system: daemons and drivers (recipes core/base)"""
    return {"actions": None, "task_dep": ["relibc", *_cook_if_present("base")], "uptodate": [True]}


def task_initfs():
    """Pack the initfs: bootstrap, daemons, init.rc; size and header checked"""
    return {"task_dep": ["base", *_cook_if_present("base-initfs")],
            **tracked("initfs", "initfs", (), lambda: inputs().initfs(),
                      lambda: [builder().initfs_image, *builder().initfs_package_files()],
                      lambda: inputs().stamp_context(_recipes("base", "base-initfs")))}


def task_image():
    """Assemble the disk image from the config with the upstream installer (no FUSE)"""
    packages = [pkg_name(step.node.recipe) for step in project().graph.image_steps() if not step.node.host]
    return {"task_dep": ["initfs", "host-tools", *packages],
            **tracked("image", "image", (), lambda: inputs().image(), lambda: [builder().disk_image],
                      lambda: inputs().stamp_context([]))}


def task_host_tools():
    """Build the host tools the image needs: redox_installer and redoxfs (the tree's source, else pinned releases)"""
    return {"basename": "host-tools",
            **tracked("host-tools", "host_tools", (), lambda: inputs().host_tools(),
                      lambda: builder().host_tool_bins())}


def task_qcow2():
    """Convert the disk image to qcow2 (qemu-img), keeping the previous one as .bak"""
    return {"task_dep": ["image"],
            **tracked("qcow2", "qcow2", (), lambda: inputs().qcow2(), lambda: [builder().qcow2_image],
                      lambda: inputs().stamp_context([]))}
