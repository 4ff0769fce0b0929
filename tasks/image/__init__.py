"""The disk image and its copies: the pinned installer (:mod:`.installer`), the checks of what it wrote (GPT in
:mod:`.gpt`, the RedoxFS header in :mod:`.redoxfs`), the qcow2 conversion (:mod:`.qcow2`), the kept previous
images (:mod:`.backups`) and the FUSE mount that reads a RedoxFS back (:mod:`.fuse`). Knows nothing of doit; import
the module you need (this package loads none of them).
"""
