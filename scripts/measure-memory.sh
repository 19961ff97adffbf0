#!/usr/bin/env bash
# Measures the exporter on a generated kube-proxy-style ruleset loaded into a throwaway
# network namespace (never the host's firewall):
#   - iptables-restore and iptables-save times for the ruleset itself;
#   - peak memory (maximum resident set size) and wall time of `netfilter_exporter dump`;
#   - scrape latency of /metrics (plain and gzip) from a server running in the namespace,
#     and the same bytes sent by netcat from a file (the floor of a plain scrape);
#   - scrapes per second with wrk on a smaller ruleset, and, as the ceiling of the machine,
#     nginx serving the same bytes from a file (sendfile on) to the same wrk, when nginx is
#     installed (not installed here: Debian's package starts a web server on port 80).
# Figures are recorded in docs/performance.md. Needs root (ip netns, iptables-restore).
#
# Usage: sudo scripts/measure-memory.sh [RULES] [WRK_RULES]   (defaults: 100000 10000)
set -euo pipefail

RULES=${1:-100000}
WRK_RULES=${2:-10000}
PORT=${NFE_BENCH_PORT:-19455}
NS="nfe-bench-$$"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
SERVER_PID=""

cleanup() {
    if [[ -f "$WORK/nginx.pid" ]]; then
        kill "$(cat "$WORK/nginx.pid" 2>/dev/null)" 2>/dev/null || true
    fi
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# time(1) by its path: `time` alone is the shell's keyword.
bash "$ROOT/scripts/install-missing.sh" /usr/bin/time=time curl=curl wrk=wrk nc=netcat-openbsd \
    iptables-restore=iptables ip=iproute2 cc=gcc make=make

cd "$ROOT"
cargo build --release --quiet --bin netfilter_exporter --example generate_ruleset
BIN="$ROOT/target/release/netfilter_exporter"
GEN="$ROOT/target/release/examples/generate_ruleset"

in_ns() { ip netns exec "$NS" "$@"; }

# Loads a generated ruleset of $1 rules into the namespace, replacing its mangle, filter and nat
# tables.
load() {
    "$GEN" "$1" >"$WORK/rules-$1.txt"
    local start end
    start=$(date +%s.%N)
    in_ns iptables-restore --counters <"$WORK/rules-$1.txt"
    end=$(date +%s.%N)
    echo "loaded $1 rules ($(wc -c <"$WORK/rules-$1.txt") bytes) with iptables-restore in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s"
}

# Prints "<max RSS kB> <elapsed s>" of a command run under /usr/bin/time inside the namespace.
measure() {
    in_ns /usr/bin/time -f '%M %e' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" || true
    cat "$WORK/time"
}

# Waits until the server in the namespace serves a page with rule series.
wait_for_server() {
    for _ in $(seq 1 300); do
        if in_ns curl -sf -o "$WORK/probe" "http://127.0.0.1:$PORT/metrics" &&
            grep -q '^iptables_rules_total' "$WORK/probe"; then
            return 0
        fi
        sleep 0.2
    done
    echo "server did not come up" >&2
    return 1
}

start_server() {
    # Not through the in_ns function: a backgrounded function is a subshell, and $! must be
    # the exporter itself (ip netns exec execs it) so that it can be stopped by its id.
    ip netns exec "$NS" "$BIN" --web.listen-address "127.0.0.1:$PORT" --scrape-targets iptables \
        --log.level warn &
    SERVER_PID=$!
    wait_for_server
}

stop_server() {
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

ip netns add "$NS"
in_ns ip link set lo up

echo "== $RULES rules"
load "$RULES"
echo "rules in namespace: $(in_ns iptables-save | grep -c '^-A ')"
for i in 1 2 3; do
    read -r rss secs < <(measure iptables-save --counters)
    echo "iptables-save --counters run $i: ${secs} s, max RSS ${rss} kB"
done
for i in 1 2 3; do
    read -r rss secs < <(measure "$BIN" dump --scrape-targets iptables)
    echo "netfilter_exporter dump run $i: ${secs} s, max RSS ${rss} kB ($((rss / 1024)) MiB), exposition $(wc -c <"$WORK/out") bytes"
done
# time(1) reports the largest RSS of the process tree, which may be iptables-save's own. To
# see the exporter's, replay the saved dump through a stand-in iptables-save that only
# copies it.
in_ns iptables-save --counters >"$WORK/dump.txt"
mkdir -p "$WORK/bin"
printf '#!/bin/sh\nexec cat %q\n' "$WORK/dump.txt" >"$WORK/bin/iptables-save"
chmod +x "$WORK/bin/iptables-save"
for i in 1 2 3; do
    read -r rss secs < <(measure env PATH="$WORK/bin:$PATH" "$BIN" dump --scrape-targets iptables)
    echo "netfilter_exporter dump of the saved dump run $i: ${secs} s, max RSS ${rss} kB ($((rss / 1024)) MiB)"
done

start_server
for encoding in identity gzip; do
    for i in 1 2 3 4 5; do
        in_ns curl -s -o /dev/null -H "Accept-Encoding: $encoding" \
            -w "scrape ($encoding) $i: %{time_total} s, %{size_download} bytes\n" \
            "http://127.0.0.1:$PORT/metrics"
    done
done
# The floor of a plain scrape on this machine: the same bytes sent from a file by netcat.
in_ns curl -s -o "$WORK/plain.txt" "http://127.0.0.1:$PORT/metrics"
{
    printf 'HTTP/1.1 200 OK\r\nContent-Length: %s\r\nConnection: close\r\n\r\n' \
        "$(wc -c <"$WORK/plain.txt")"
    cat "$WORK/plain.txt"
} >"$WORK/response"
for i in 1 2 3; do
    ip netns exec "$NS" timeout 20 nc -l -p "$((PORT + 1))" -q 0 <"$WORK/response" >/dev/null &
    sleep 0.3
    in_ns curl -s -o /dev/null -w "netcat floor (identity) $i: %{time_total} s\n" \
        "http://127.0.0.1:$((PORT + 1))/"
    wait $!
done
rm -f "$WORK/plain.txt" "$WORK/response"
echo "server peak RSS after scrapes: $(awk '/VmHWM/ {print $2, $3}' "/proc/$SERVER_PID/status")"
# Collections every 5 s: the peak is reached while one renders beside the last publication.
sleep 16
echo "server peak RSS after 3 more collections: $(awk '/VmHWM/ {print $2, $3}' "/proc/$SERVER_PID/status"), now $(awk '/VmRSS/ {print $2, $3}' "/proc/$SERVER_PID/status")"
stop_server

echo "== $WRK_RULES rules, wrk"
load "$WRK_RULES"
start_server
# Prints wrk's throughput lines and the share of both cores each kind of work took meanwhile.
run_wrk() {
    local before after
    before=$(head -1 /proc/stat)
    in_ns wrk -t2 -c50 -d10s "$@" | grep -E 'Requests/sec|Transfer/sec|Latency|requests in'
    after=$(head -1 /proc/stat)
    awk -v a="$before" -v b="$after" 'BEGIN {
        split(a, x); split(b, y); total = 0
        for (i = 2; i <= 9; i++) { d[i] = y[i] - x[i]; total += d[i] }
        printf "  CPU: user %.0f%%, system %.0f%%, softirq %.0f%%, idle %.0f%%\n",
            100 * (d[2] + d[3]) / total, 100 * d[4] / total, 100 * d[8] / total, 100 * d[5] / total
    }'
}

for encoding in identity gzip; do
    echo "wrk -t2 -c50 -d10s, Accept-Encoding: $encoding"
    run_wrk -H "Accept-Encoding: $encoding" "http://127.0.0.1:$PORT/metrics"
done
in_ns curl -s -o "$WORK/metrics" "http://127.0.0.1:$PORT/metrics"
stop_server
# The machine's ceiling for plain responses of this size: a static file server that sends
# from the page cache (sendfile), serving the exporter's own bytes.
if ! command -v nginx >/dev/null; then
    echo "nginx not installed: no ceiling measured (apt-get install nginx-light, then run again)"
    exit 0
fi
cat >"$WORK/nginx.conf" <<EOF
user root;
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type text/plain;
    server { listen 127.0.0.1:$((PORT + 1)); root $WORK; }
}
EOF
in_ns nginx -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf"
echo "nginx, same $(wc -c <"$WORK/metrics") bytes from a file, wrk -t2 -c50 -d10s"
run_wrk "http://127.0.0.1:$((PORT + 1))/metrics"
in_ns nginx -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" -s stop
