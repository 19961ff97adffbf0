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
    setpriv=util-linux ipset=ipset tmux=tmux cc=gcc make=make python3=python3

# kubernetes-validate (PyPI), which checks deploy/kubernetes/ against the Kubernetes API's
# schemas offline. Debian's python3 refuses `pip install` outside a virtual environment
# (PEP 668), so it gets one of its own in the cache; its path reaches the test through
# KUBERNETES_VALIDATE. Debian's venv module needs python3-venv, which has no command for
# install-missing.sh to look for: the package is named as the missing command.
python3 -c 'import ensurepip' 2>/dev/null || bash scripts/install-missing.sh python3-venv=python3-venv
kubernetes_validate_version=1.37.0
kubernetes_validate_env=${XDG_CACHE_HOME:-$HOME/.cache}/netfilter_exporter/kubernetes-validate
export KUBERNETES_VALIDATE=$kubernetes_validate_env/bin/kubernetes-validate
if [[ $("$KUBERNETES_VALIDATE" --version 2>/dev/null) != "$kubernetes_validate_version" ]]; then
    python3 -m venv "$kubernetes_validate_env"
    "$kubernetes_validate_env/bin/pip" install --quiet "kubernetes-validate==$kubernetes_validate_version"
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
