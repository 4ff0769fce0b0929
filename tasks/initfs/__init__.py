"""The initfs: which built binaries go where and the files init reads (:mod:`.tree`), and the RedoxFtw archive the
bootstrap reads (:mod:`.format`). Knows nothing of doit; import the module you need (this package loads none).
"""
