#!/usr/bin/env bash
# Builds and runs the exporter on a Debian machine, as root: installs what the build needs
# (a C compiler and make, for the jemalloc allocator) when missing, then `cargo run --release`
# with the arguments given (none: serve every backend on 0.0.0.0:9455).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-missing.sh cc=gcc make=make
# rustup installs into ~/.cargo/bin, which a non-login shell may not have in PATH.
if ! command -v cargo >/dev/null 2>&1 && [[ -f "${CARGO_HOME:-$HOME/.cargo}/env" ]]; then
    # shellcheck disable=SC1091
    source "${CARGO_HOME:-$HOME/.cargo}/env"
fi
exec cargo run --release -- "$@"
