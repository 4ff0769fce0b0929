#!/usr/bin/env bash
# Set up a fresh machine (Linux: Debian/Ubuntu; macOS: Homebrew) for building and testing.
# Idempotent: run it again after pulling.  SETUP_SKIP_SYSTEM=1 skips the system packages.
set -euo pipefail
cd "$(dirname "$0")"

system_packages() {
  if [ "${SETUP_SKIP_SYSTEM:-0}" = 1 ]; then return; fi
  if command -v apt-get >/dev/null 2>&1; then
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    # arm64 packages: the Debian kernel and busybox that the QEMU tests boot (tests/qemu_guest.py downloads them)
    dpkg --print-foreign-architectures | grep -qx arm64 || $sudo dpkg --add-architecture arm64
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends \
      python3-venv git patch make gcc binutils qemu-utils mtools fdisk ninja-build graphviz bubblewrap >/dev/null
    # (bubblewrap: the installer's private /tmp, tasks/image/privatetmp.py)
    # QEMU for boot/test-in-redox. Debian's qemu-system-arm breaks a newer backported qemu-utils, so it is installed
    # on its own (apt removes that qemu-utils) and qemu-utils again after it, at the matching version.
    # ipxe-qemu provides efi-virtio.rom, without which virtio-net-pci does not start.
    $sudo apt-get install -y -qq --no-install-recommends qemu-system-arm qemu-efi-aarch64 ipxe-qemu >/dev/null
    $sudo apt-get install -y -qq --no-install-recommends qemu-utils >/dev/null
    # A Rust installation outside rustup that cross-compiles aarch64 for real (LLVM backend, -Zbuild-std): the
    # compiler, cargo and the standard library source of one release, its LLVM's binutils (rust-web-llvm: llvm-ar-NN
    # and friends), lld (ld.lld), and gdisk to read GPT images.
    $sudo apt-get install -y -qq --no-install-recommends rustc-web cargo-web rust-web-src rust-web-llvm lld gdisk \
      >/dev/null
    # The C compiler for the target (crates that compile C: onig_sys, blake3, lzma-sys): the clang of the compiler's
    # LLVM, which rust-web-llvm names (its rust-clang links to clang-NN) but does not install.
    local clang; clang=$(readlink /usr/bin/rust-clang || echo clang)
    $sudo apt-get install -y -qq --no-install-recommends "$clang" >/dev/null
  elif command -v brew >/dev/null 2>&1; then
    brew install qemu mtools ninja graphviz
  fi
}

python_env() {
  local python=${PYTHON:-python3}
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  # PYTHONWARNINGS: setuptools' notice on editable installs, a box of asterisks, is no error
  # compat: the checkout on sys.path by a .pth line; the default finder imports pathlib, re and urllib at every start
  # (20 ms of each no-op)
  PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e '.[test]' --config-settings editable_mode=compat
}

# `doit` and `rdoit` on PATH: linked into ~/.local/bin when that is on PATH (never over a file that is not a link)
commands_on_path() {
  local bin="$HOME/.local/bin"
  case ":$PATH:" in
    *":$bin:"*) ;;
    *) echo "doit and rdoit are in .venv/bin: add it to PATH (or: source .venv/bin/activate)"; return ;;
  esac
  mkdir -p "$bin"
  for name in doit rdoit; do
    if [ -e "$bin/$name" ] && [ ! -L "$bin/$name" ]; then
      echo "$bin/$name is not ours: left as it is (.venv/bin/$name is this project's)"
    else
      ln -sfn "$PWD/.venv/bin/$name" "$bin/$name"
      echo "$name: $bin/$name -> .venv/bin/$name"
    fi
  done
}

system_packages
python_env
commands_on_path
echo "setup done: .venv/bin/doit builds the default image, from any directory of the project; doit help says more"
