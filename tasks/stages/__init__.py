"""doit task declarations, one module per stage; ``all`` gathers them for ``dodo.py``, ``loader`` answers no-ops.

Nothing is imported here: the loader (``[tool.doit] loader`` in pyproject.toml) must stay light.
"""
