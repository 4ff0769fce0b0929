"""Fetching and cooking recipes with the upstream cookbook's environment, and the relibc sysroot.

Nothing here knows doit: ``fetch:<name>`` calls :func:`.fetch.fetch`, ``cook:<name>`` calls :func:`.cook.cook`,
``relibc`` calls :func:`.relibc.assemble_relibc_sysroot`; :mod:`.paths` is the layout of a cook, :mod:`.script` the
build script and its environment, :mod:`.git` and :mod:`.archive` the two ways to download. Import the module you
need: this package loads none of them, so that the layout costs nothing to read.
"""
