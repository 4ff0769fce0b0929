"""Build system for a pure-Rust aarch64 Redox OS.

Layout mirrors the pipeline: the stage modules (``toolchain``, ``cook``, ``relibc``, ``base``, ``initfs``,
``image``, ``qcow2``, ``run``) only declare doit tasks; ``model`` (recipes, configs), ``formats`` (initfs,
pkgar, …), ``engine`` (hashing state, stamps) and ``process`` know nothing of doit.
"""
