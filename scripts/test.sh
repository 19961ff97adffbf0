#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine, as root: installs the system tools
# the kernel and HTTP tests drive (skipped when they are all present), then cargo test.
# Exits non-zero when anything fails; the output ends with cargo's `test result` lines.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# One command per package the tests need; cc and make build jemalloc, the program's
# allocator, from source.
required_commands=(iptables nft ip ping nc curl prometheus munin-run cc make)
packages=(iptables nftables iproute2 iputils-ping netcat-openbsd curl prometheus munin-node gcc make)

missing=()
for command in "${required_commands[@]}"; do
    if ! command -v "$command" >/dev/null 2>&1; then
        missing+=("$command")
    fi
done

if ((${#missing[@]} > 0)); then
    echo "test.sh: missing ${missing[*]}; installing system packages" >&2
    if [[ $(id -u) -ne 0 ]]; then
        echo "test.sh: installing packages needs root (run as root, or install: ${packages[*]})" >&2
        exit 1
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"
fi

# rustup installs into ~/.cargo/bin, which a non-login shell may not have in PATH.
if ! command -v cargo >/dev/null 2>&1 && [[ -f "${CARGO_HOME:-$HOME/.cargo}/env" ]]; then
    # shellcheck disable=SC1091
    source "${CARGO_HOME:-$HOME/.cargo}/env"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: cargo not found; install the Rust toolchain (https://rustup.rs) and retry" >&2
    exit 1
fi

# --no-fail-fast: one failing test binary must not hide the results of the others.
exec cargo test --all-targets --no-fail-fast
