"""Build system for a pure-Rust aarch64 Redox OS.

Layout mirrors the pipeline: ``stages/`` holds one module per stage (toolchain, recipes: fetch/cook/pkg, the
pipeline: relibc, base, initfs, image, qcow2; explain; the boot commands) that only declares doit tasks and
commands, plus ``stages/loader`` (doit's loader and reporter: a no-op answered from evidence). ``build`` says what
each task does and ``signatures`` what its output depends on; ``variables`` and ``settings`` what the command line
asks for; ``model`` (recipes, configs), ``graph``, ``formats`` (initfs, pkgar, GPT, RedoxFS), ``engine`` (tree
hashes, state, stamps, lock, no-op evidence), ``cookbook``, ``toolchain``, ``qemu`` and ``process`` know nothing of
doit.
"""
