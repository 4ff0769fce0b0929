"""The command line, on doit: the loader and reporter (a no-op answered from evidence, :mod:`.loader`), the task
creators made from the stages (:mod:`.creators`, gathered for ``dodo.py`` in :mod:`.all`), ``doit explain`` and
the boot commands (:mod:`.boot`).

Nothing is imported here: the loader (``[tool.doit] loader`` in pyproject.toml) must stay light.
"""
