"""Build system for a pure-Rust aarch64 Redox OS.

The layout mirrors the pipeline (``docs/architecture.md``): ``stages/`` holds one module per stage — toolchain,
fetch, cook, relibc, base, initfs, pkg, host-tools, image, qcow2 — each declaring in one class what it depends on,
what its signature covers, what it writes and what it does; ``cli/`` makes doit's tasks from them and holds doit's
loader (a no-op answered from evidence), ``explain``, ``help`` and the boot commands. The work is done by modules
that know nothing of doit, one folder per concern: ``model`` (recipes, configs, the graph), ``cookbook``,
``toolchain`` (and the host tools), ``formats`` (pkgar, keys, the package repository), ``initfs``, ``image``
(installer, GPT/RedoxFS checks, qcow2, backups, FUSE), ``qemu`` and ``engine`` (tree hashes, state, stamps, lock,
evidence, code versions); beside them one of each shared piece: ``errors``, ``process``, ``hashing``, ``atomic``,
``templating``, the settings table (``variables``, made into ``settings``), the paths (``layout``) and the tree's
revision (``revision``).
"""
