#!/usr/bin/env bash
# Compares, on one generated native nftables ruleset loaded into a throwaway network
# namespace, the exporter's nftables collection with `nft -j list ruleset` (what other
# nftables exporters run) and with the bare per-chain netlink dump of
# ../shared/tools/nft_dump_cost.py, in the same minutes. Prints wall time and peak RSS of
# each (best of RUNS) and the ratios. Needs root. Not a CI test: the 100k and 1M runs
# take minutes.
#
# Usage: scripts/bench-nftables.sh [RULES] [SET_ELEMENTS] [RUNS]   (default 100000 0 3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rules=${1:-100000}
elements=${2:-0}
runs=${3:-3}
ns="nfe-bench-$$"
work=$(mktemp -d)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cargo build --release --quiet --bin netfilter_exporter --example generate_ruleset
exporter=target/release/netfilter_exporter
target/release/examples/generate_ruleset --nftables "$rules" "$elements" > "$work/rules.nft"
ip netns add "$ns"
echo "loading $rules rules and a set of $elements elements..." >&2
ip netns exec "$ns" nft -f "$work/rules.nft"

# Best wall time (s) and its peak RSS (MB) of a command over $runs runs.
measure() {
    python3 - "$runs" "$@" <<'PY'
import resource, subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
best = None
for _ in range(runs):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = __import__("os").wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"{cmd[0]} failed: status {status}")
    if best is None or wall < best[0]:
        best = (wall, usage.ru_maxrss / 1024)
print(f"{best[0]:.3f} {best[1]:.1f}")
PY
}

read -r ours ours_mb < <(measure ip netns exec "$ns" "$exporter" dump -t nftables)
read -r nft nft_mb < <(measure ip netns exec "$ns" nft -j list ruleset)
bare=$(ip netns exec "$ns" python3 ../shared/tools/nft_dump_cost.py | awk '/^per chain/ {print $(NF-5)}')
chains=$(ip netns exec "$ns" "$exporter" dump -t nftables | grep -c '^nftables_chain_rules{' || true)
python3 - "$rules" "$elements" "$chains" "$ours" "$ours_mb" "$nft" "$nft_mb" "$bare" <<'PY'
import sys
rules, elements, chains = sys.argv[1:4]
ours, ours_mb, nft, nft_mb, bare = map(float, sys.argv[4:9])
print(f"ruleset: {rules} rules in {chains} chains, a set of {elements} elements")
print(f"{'':32}{'wall s':>9}{'peak MB':>9}")
print(f"{'netfilter_exporter dump':32}{ours:9.3f}{ours_mb:9.1f}")
print(f"{'nft -j list ruleset':32}{nft:9.3f}{nft_mb:9.1f}")
print(f"{'bare per-chain dump (Python)':32}{bare:9.3f}")
print(f"nft -j / ours: {nft / ours:.1f}x time, {nft_mb / ours_mb:.1f}x memory; ours / bare dump: {ours / bare:.2f}x")
PY
