"""The toolchain: one pin (:mod:`.pin`), what is installed (:mod:`.installed`), the target specs (:mod:`.specs`),
the build environment (:mod:`.env`), the fingerprint (:mod:`.fingerprint`), the one a build uses
(:mod:`.selected`), and the upstream host tools (:mod:`.hosttools`). Knows nothing of doit; import the module you
need (this package loads none of them, so that a stage's code version names only what it uses).
"""
