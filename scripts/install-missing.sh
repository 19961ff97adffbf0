#!/usr/bin/env bash
# Installs, with apt-get, the Debian packages of the commands that are missing.
# Usage: scripts/install-missing.sh COMMAND=PACKAGE...   (e.g. make=make cc=gcc)
# Needs root only when something is missing; prints what it installs on stderr.
set -euo pipefail

missing=()
packages=()
for pair in "$@"; do
    command=${pair%%=*}
    package=${pair#*=}
    if ! command -v "$command" >/dev/null 2>&1; then
        missing+=("$command")
        packages+=("$package")
    fi
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
echo "$(basename "$0"): missing ${missing[*]}; installing ${packages[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then
    echo "$(basename "$0"): installing packages needs root (run as root, or install: ${packages[*]})" >&2
    exit 1
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"
