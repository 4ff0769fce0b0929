"""The recipes and packages the pipeline itself knows by name.

base-initfs's stage is what the initfs is made of: the layout's binaries under ``bin/`` and ``lib/drivers/``, and
the bootstrap ELF as ``bootstrap``; binaries missing there are taken from base's stage (``usr/bin/``,
``usr/lib/drivers/``). Its package holds no files: it depends on the package ``initfs``, which the initfs stage
publishes and which carries the image to ``<boot_dir>/initfs``.
"""
INITFS_SOURCES = ("base-initfs", "base")
INITFS_PACKAGE = "initfs"
