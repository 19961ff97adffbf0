#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine, as root: installs the system tools
# the kernel and HTTP tests drive (skipped when they are all present), then cargo test.
# Exits non-zero when anything fails; the output ends with cargo's `test result` lines.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The tools the kernel, HTTP, deploy/ and top tests drive (tmux holds top's full screen),
# and what the build needs (a C compiler and make build jemalloc, the program's allocator,
# from source).
bash scripts/install-missing.sh \
    iptables=iptables nft=nftables ip=iproute2 ping=iputils-ping nc=netcat-openbsd \
    curl=curl openssl=openssl prometheus=prometheus promtool=prometheus munin-run=munin-node \
    bpftool=bpftool systemd-analyze=systemd systemd-socket-activate=systemd capsh=libcap2-bin \
    setpriv=util-linux ipset=ipset tmux=tmux cc=gcc make=make

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
