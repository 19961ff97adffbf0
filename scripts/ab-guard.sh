#!/usr/bin/env bash
# The performance guard of the core, as an A/B of two builds in the same minutes: each
# binary reads a generated kube-proxy-shaped dump through a stand-in `iptables-save` that
# prints the file, so only the exporter's own work is timed. For each build it reports:
#   - the collection time `dump` reports (`iptables_scrape_duration_milliseconds`) and the
#     peak RSS of `dump`, fastest and slowest of RUNS runs, the builds run alternately;
#   - for the server (`--collect-interval 5`): its RSS between collections, its peak RSS,
#     the time of a gzip scrape (fastest and slowest of 10) and the share of a core it
#     used over 30 s.
# Needs no root and touches no firewall. Figures go to docs/performance.md.
#
# Usage: scripts/ab-guard.sh OLD_BINARY NEW_BINARY [RULES] [RUNS]   (defaults: 100000 5)
set -euo pipefail

OLD=${1:?usage: ab-guard.sh OLD_BINARY NEW_BINARY [RULES] [RUNS]}
NEW=${2:?usage: ab-guard.sh OLD_BINARY NEW_BINARY [RULES] [RUNS]}
RULES=${3:-100000}
RUNS=${4:-5}
PORT=${NFE_BENCH_PORT:-19456}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

bash "$ROOT/scripts/install-missing.sh" /usr/bin/time=time curl=curl
cd "$ROOT"
cargo build --release --quiet --example generate_ruleset
"$ROOT/target/release/examples/generate_ruleset" "$RULES" >"$WORK/dump"
mkdir "$WORK/bin"
printf '#!/bin/sh\nexec cat %q\n' "$WORK/dump" >"$WORK/bin/iptables-save"
chmod +x "$WORK/bin/iptables-save"
export PATH="$WORK/bin:$PATH"
echo "dump: $RULES rules, $(grep -c '^:' "$WORK/dump") chains, $(wc -c <"$WORK/dump") bytes"

# Prints "<collection ms> <peak RSS kB>" of one `dump`.
one_dump() {
    /usr/bin/time -f '%M' -o "$WORK/time" "$1" dump -t iptables >"$WORK/out" 2>/dev/null || true
    local ms
    ms=$(awk '/^iptables_scrape_duration_milliseconds /{print $2}' "$WORK/out")
    echo "$ms $(cat "$WORK/time")"
}

declare -A MS RSS
for _ in $(seq 1 "$RUNS"); do
    for build in old new; do
        bin=$OLD
        [[ $build == new ]] && bin=$NEW
        read -r ms rss < <(one_dump "$bin")
        MS[$build]+="$ms "
        RSS[$build]+="$rss "
    done
done
range() { tr ' ' '\n' | grep . | sort -n | awk 'NR==1{a=$1} {b=$1} END{printf "%s–%s", a, b}'; }
for build in old new; do
    echo "$build dump: collection $(echo "${MS[$build]}" | range) ms, peak RSS $(echo "${RSS[$build]}" | range) kB"
done

# The server: RSS between collections, peak, gzip scrape time, CPU share.
status() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for build in old new; do
    bin=$OLD
    [[ $build == new ]] && bin=$NEW
    "$bin" --web.listen-address "127.0.0.1:$PORT" -t iptables --collect-interval 5 \
        2>/dev/null &
    SERVER_PID=$!
    for _ in $(seq 1 300); do
        if curl -sf -o "$WORK/probe" "http://127.0.0.1:$PORT/metrics" &&
            grep -q '^iptables_rules_total' "$WORK/probe"; then
            break
        fi
        sleep 0.2
    done
    # Past two more collections, between two of them.
    sleep 12
    between=$(status "$SERVER_PID" VmRSS)
    times=""
    for _ in $(seq 1 10); do
        t=$(curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w '%{time_total}' \
            "http://127.0.0.1:$PORT/metrics")
        times+="$(awk -v t="$t" 'BEGIN{printf "%.1f", t * 1000}') "
    done
    start=$(cpu_ticks "$SERVER_PID")
    sleep 30
    end=$(cpu_ticks "$SERVER_PID")
    hz=$(getconf CLK_TCK)
    share=$(awk -v a="$start" -v b="$end" -v hz="$hz" 'BEGIN{printf "%.1f", (b - a) / hz / 30 * 100}')
    echo "$build server: RSS between collections $between kB, peak $(status "$SERVER_PID" VmHWM) kB," \
        "gzip scrape $(echo "$times" | range) ms, $share% of a core"
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
done
