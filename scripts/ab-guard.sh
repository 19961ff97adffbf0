#!/usr/bin/env bash
# An A/B of two builds in the same minutes, on a generated kube-proxy-shaped dump that a
# stand-in `iptables-save` prints, so that only the exporter's own work is timed. The builds
# run alternately, RUNS times each; every figure is the median of a build's runs, and the
# last column is NEW/OLD. Measured:
#   - `dump`: the collection time it reports (`iptables_scrape_duration_milliseconds`), its
#     CPU time (user + system) and its peak RSS;
#   - the server, collecting every 2 s: CPU time per collection (all its processes, over
#     20 s without scrapes), RSS between collections and peak RSS of the collector and, when
#     it runs as root, of the server process apart, and the time of a gzipped and of a plain
#     scrape.
# As root the exporter runs as two processes (privilege separation); with NFE_AB_USER=nobody
# it runs unprivileged, as one process. Both builds run with --no-iptables-netlink: the dump
# says nf_tables, and the netlink path would read this host's tables instead of the
# stand-in after the first collection. Needs no firewall and touches none. Figures go to
# docs/performance.md.
#
# Usage: scripts/ab-guard.sh OLD_BINARY NEW_BINARY [RULES] [RUNS]   (defaults: 100000 5)
set -euo pipefail

OLD=$(realpath "${1:?usage: ab-guard.sh OLD_BINARY NEW_BINARY [RULES] [RUNS]}")
NEW=$(realpath "${2:?usage: ab-guard.sh OLD_BINARY NEW_BINARY [RULES] [RUNS]}")
RULES=${3:-100000}
RUNS=${4:-5}
PORT=${NFE_BENCH_PORT:-19456}
AS_USER=${NFE_AB_USER:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
chmod 755 "$WORK"
SERVER_PID=""

cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

bash "$ROOT/scripts/install-missing.sh" /usr/bin/time=time curl=curl setpriv=util-linux
cd "$ROOT"
cargo build --release --quiet --example generate_ruleset
"$ROOT/target/release/examples/generate_ruleset" "$RULES" >"$WORK/dump"
mkdir "$WORK/bin"
# Written by the stand-in and by time(1), which may run as $AS_USER.
: >"$WORK/runs"
: >"$WORK/time"
chmod 666 "$WORK/runs" "$WORK/time"
# Each run of the stand-in marks one collection.
printf '#!/bin/sh\necho >>%q\nexec cat %q\n' "$WORK/runs" "$WORK/dump" >"$WORK/bin/iptables-save"
chmod 755 "$WORK/bin/iptables-save"
export PATH="$WORK/bin:$PATH"
echo "dump: $RULES rules, $(grep -c '^:' "$WORK/dump") chains, $(wc -c <"$WORK/dump") bytes;" \
    "$(if [[ -n $AS_USER ]]; then echo "as $AS_USER, one process"; else echo "as $(id -un)"; fi)"

# Runs a command as $AS_USER when set, replacing the shell it runs in (so that a command
# started in the background is the process whose id $! gives).
as_user() {
    if [[ -n $AS_USER ]]; then
        exec setpriv --reuid="$AS_USER" --regid="$(id -g "$AS_USER")" --clear-groups --inh-caps=-all "$@"
    fi
    exec "$@"
}

declare -A FIG
# Appends value $3 to figure $2 of build $1.
add() { FIG["$1 $2"]+="$3 "; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END{if (NR % 2) print v[(NR+1)/2]; else printf "%.6g\n", (v[NR/2]+v[NR/2+1])/2}'; }
binary() { if [[ $1 == old ]]; then echo "$OLD"; else echo "$NEW"; fi; }

# `dump`: collection ms, CPU s, peak RSS kB.
one_dump() {
    (as_user /usr/bin/time -f '%U %S %M' -o "$WORK/time" "$(binary "$1")" dump -t iptables \
        --no-iptables-netlink >"$WORK/out" 2>/dev/null) || true
    local ms user sys rss
    ms=$(awk '/^iptables_scrape_duration_milliseconds /{print $2}' "$WORK/out")
    read -r user sys rss <"$WORK/time"
    add "$1" dump_collection_ms "$ms"
    add "$1" dump_cpu_ms "$(awk -v u="$user" -v s="$sys" 'BEGIN{print (u + s) * 1000}')"
    add "$1" dump_peak_kB "$rss"
    echo "  $1 dump: collection $ms ms, CPU $user + $sys s, peak $rss kB"
}

# The exporter's processes: the one started and, as root, its server process (its other
# children are the stand-in's runs).
pids() {
    local child
    echo "$SERVER_PID"
    for child in $(cat "/proc/$SERVER_PID/task/"*/children 2>/dev/null); do
        if grep -qa internal-web-server "/proc/$child/cmdline" 2>/dev/null; then echo "$child"; fi
    done
}
status() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status"; }
cpu_ticks() {
    local total=0 pid
    for pid in $(pids); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}
runs() { wc -l <"$WORK/runs"; }
# Waits for the next collection to start, then until the exporter has used no CPU for 0.5 s.
between_collections() {
    local start last now still=0
    start=$(runs)
    while [[ $(runs) == "$start" ]]; do sleep 0.05; done
    last=$(cpu_ticks)
    while ((still < 5)); do
        sleep 0.1
        now=$(cpu_ticks)
        if [[ $now == "$last" ]]; then still=$((still + 1)); else still=0; fi
        last=$now
    done
}

one_server() {
    local build=$1 hz
    hz=$(getconf CLK_TCK)
    as_user "$(binary "$build")" --web.listen-address "127.0.0.1:$PORT" -t iptables --no-iptables-netlink \
        --collect-interval 2 --log.level warn &
    SERVER_PID=$!
    for _ in $(seq 1 300); do
        if curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && [[ $(runs) -gt 0 ]]; then
            break
        fi
        sleep 0.2
    done
    between_collections
    between_collections
    # CPU per collection, over about 20 s without scrapes.
    local ticks0 runs0 ticks1 runs1
    ticks0=$(cpu_ticks)
    runs0=$(runs)
    sleep 20
    between_collections
    ticks1=$(cpu_ticks)
    runs1=$(runs)
    local cpu
    cpu=$(awk -v t="$((ticks1 - ticks0))" -v r="$((runs1 - runs0))" -v hz="$hz" \
        'BEGIN{printf "%.1f", t / hz / r * 1000}')
    add "$build" collection_cpu_ms "$cpu"
    # RSS between collections, then 10 gzipped scrapes, three times.
    local i pid collector server rss times plain t
    rss=""
    times=""
    plain=""
    for i in 1 2 3; do
        between_collections
        collector=$(status "$SERVER_PID" VmRSS)
        server=0
        for pid in $(pids); do
            [[ $pid == "$SERVER_PID" ]] || server=$(status "$pid" VmRSS)
        done
        add "$build" collector_rss_kB "$collector"
        add "$build" server_rss_kB "$server"
        add "$build" total_rss_kB "$((collector + server))"
        rss+="$collector+$server "
        for _ in $(seq 1 10); do
            t=$(curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w '%{time_total}' \
                "http://127.0.0.1:$PORT/metrics")
            t=$(awk -v t="$t" 'BEGIN{printf "%.2f", t * 1000}')
            add "$build" gzip_scrape_ms "$t"
            times+="$t "
        done
        for _ in $(seq 1 5); do
            t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/metrics")
            t=$(awk -v t="$t" 'BEGIN{printf "%.2f", t * 1000}')
            add "$build" plain_scrape_ms "$t"
            plain+="$t "
        done
    done
    local collector_peak server_peak=0
    collector_peak=$(status "$SERVER_PID" VmHWM)
    for pid in $(pids); do
        [[ $pid == "$SERVER_PID" ]] || server_peak=$(status "$pid" VmHWM)
    done
    add "$build" collector_peak_kB "$collector_peak"
    add "$build" server_peak_kB "$server_peak"
    echo "  $build server: CPU $cpu ms per collection ($((runs1 - runs0)) collections)," \
        "RSS between collections (collector+server) $rss kB, peak $collector_peak+$server_peak kB," \
        "gzip scrapes $(echo "$times" | median) ms (median of 30)," \
        "plain scrapes $(echo "$plain" | median) ms (median of 15)"
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

for run in $(seq 1 "$RUNS"); do
    echo "run $run of $RUNS ($(cut -d' ' -f1-3 /proc/loadavg) load)"
    # Alternate which build goes first.
    order="old new"
    ((run % 2)) || order="new old"
    for build in $order; do one_dump "$build"; done
    for build in $order; do one_server "$build"; done
done

echo
printf '%-22s %12s %12s %8s\n' "median of $RUNS runs" old new new/old
for figure in dump_collection_ms dump_cpu_ms dump_peak_kB collection_cpu_ms collector_rss_kB \
    server_rss_kB total_rss_kB collector_peak_kB server_peak_kB gzip_scrape_ms plain_scrape_ms; do
    o=$(echo "${FIG[old $figure]:-}" | median)
    n=$(echo "${FIG[new $figure]:-}" | median)
    printf '%-22s %12s %12s %8s\n' "$figure" "$o" "$n" \
        "$(awk -v o="$o" -v n="$n" 'BEGIN{if (o > 0) printf "%.2f", n / o; else print "-"}')"
done
