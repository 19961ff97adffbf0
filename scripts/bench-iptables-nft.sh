#!/usr/bin/env bash
# Compares, on a generated kube-proxy-shaped ruleset loaded with iptables-restore into a
# throwaway network namespace (nf_tables backend), one collection of the iptables source
# read over netlink with cached rule texts against one run of `iptables-save --counters`,
# in the same minutes; then the same while a rule is inserted before every collection (a
# changing ruleset); and the bare per-chain netlink dump of ../shared/tools/nft_dump_cost.py
# as the floor. Needs root. Not a CI test: at 100k rules it takes several minutes.
#
# Usage: scripts/bench-iptables-nft.sh [RULES] [RUNS]   (default 100000 3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rules=${1:-100000}
runs=${2:-3}
ns="nfe-bench-ipt-$$"
work=$(mktemp -d)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release --quiet --example generate_ruleset --example iptables_nft_timing
target/release/examples/generate_ruleset "$rules" > "$work/rules"
ip netns add "$ns"
echo "loading $rules rules..." >&2
ip netns exec "$ns" iptables-restore --counters < "$work/rules"

echo "== unchanged ruleset"
ip netns exec "$ns" target/release/examples/iptables_nft_timing "$runs"
echo "== a rule inserted before every collection"
ip netns exec "$ns" target/release/examples/iptables_nft_timing "$runs" --change
echo "== the bare per-chain netlink dump (Python)"
ip netns exec "$ns" python3 ../shared/tools/nft_dump_cost.py | grep '^per chain'
