#!/usr/bin/env bash
# A fleet on one machine: N network namespaces ("nodes"), each with its own kube-proxy-shaped
# ruleset loaded with `iptables-restore --counters` and the exporter serving in it as root
# with the DaemonSet's collection and metrics flags, all scraped by one real Prometheus in a
# namespace of its own, bridged to theirs. After a warm-up it measures, over a window:
#   - per node: samples per scrape, scrape durations, successful scrapes, the exporter's
#     collection time, CPU (both processes: the collector, with the dump commands it ran,
#     and the server) and RSS;
#   - Prometheus: head series, resident memory (now and peak) and memory per head series,
#     samples appended per second, CPU, and scrapes refused for exceeding sample_limit.
# The last line, `summary key=value …`, is for scripts and tests (tests/kernel/fleet.rs).
# Figures are recorded in docs/fleet.md. Needs root; touches no firewall but the nodes'.
# Everything it made goes on exit, on failure and on SIGINT or SIGTERM. Killed with SIGKILL,
# its processes die with it (a parent-death signal) but its namespaces (nfe-fleet*-PID-*)
# and its work directory stay: `ip netns del` them (the kernel tests delete such namespaces
# once their process is gone).
#
# The exporter gets every argument of the DaemonSet's container (deploy/kubernetes/
# daemonset.yaml) except the web, listen, audit, Kubernetes and logging ones, so that the
# fleet runs as the manifest says when the manifest changes; sample_limit is the first
# `sampleLimit` in the files under deploy/kubernetes/ (a PodMonitor's), else the
# `sample_limit` of deploy/prometheus/prometheus.yml, else 50000.
#
# Usage: sudo scripts/fleet-sim.sh N [RULES]   (RULES default 10000; node i gets RULES+i-1
# rules, as the generator gives the same ruleset for the same size)
# Environment:
#   NFE_BINARY                 the exporter (default: built with cargo, release)
#   NFE_FLEET_RULESETS         a directory of dumps 1.rules … N.rules to load instead of
#                              generated ones (e.g. `iptables-save --counters` of real nodes)
#   NFE_FLEET_INTERVAL         Prometheus's scrape interval in seconds (default 5)
#   NFE_FLEET_WARMUP           seconds between every target's first scrape and the window (30)
#   NFE_FLEET_WINDOW           seconds measured (60)
#   NFE_FLEET_DEPLOY           the deploy/ directory read (default: this checkout's), e.g.
#                              another branch's, to measure its manifests
#   NFE_FLEET_SAMPLE_LIMIT     overrides the sample_limit found in deploy/ (0: none)
#   NFE_FLEET_TIMEOUT          seconds each wait for readiness may take (120)
set -euo pipefail

usage="usage: fleet-sim.sh N [RULES]   (N nodes, 1 to 1000; RULES per node, default 10000)"
NODES=${1:?$usage}
RULES=${2:-10000}
INTERVAL=${NFE_FLEET_INTERVAL:-5}
WARMUP=${NFE_FLEET_WARMUP:-30}
WINDOW=${NFE_FLEET_WINDOW:-60}
TIMEOUT=${NFE_FLEET_TIMEOUT:-120}
RULESETS=${NFE_FLEET_RULESETS:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEPLOY=$(realpath "${NFE_FLEET_DEPLOY:-$ROOT/deploy}")
MANIFEST="$DEPLOY/kubernetes/daemonset.yaml"
PORT=9455
PROMETHEUS=127.0.0.1:9090
# The nodes' and Prometheus's bridge addresses: 10.77.0.1 is Prometheus, node i is the
# (i+1)th address. No address of the generated rulesets (10.96/12 services, 10.244/16 pods)
# falls in it.
NET=10.77

die() {
    echo "fleet-sim: $*" >&2
    exit 1
}
say() { echo "fleet-sim: $*" >&2; }
integer() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= $2)); }

if ! integer "$NODES" 1 || ((NODES > 1000)); then
    die "N must be a number of nodes from 1 to 1000 (the bridge takes 1024 ports)"$'\n'"$usage"
fi
integer "$RULES" 1 || die "RULES must be a positive number"$'\n'"$usage"
for setting in INTERVAL WARMUP WINDOW TIMEOUT; do
    integer "${!setting}" 1 || die "NFE_FLEET_$setting must be a positive number of seconds, not '${!setting}'"
done
((WINDOW >= 2 * INTERVAL)) || die "NFE_FLEET_WINDOW ($WINDOW s) must hold two scrape intervals ($INTERVAL s) at least"
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, iptables-restore, the exporter as the DaemonSet runs it)"
[[ -f $MANIFEST ]] || die "no DaemonSet manifest at $MANIFEST"
if [[ -n $RULESETS ]]; then
    for i in $(seq 1 "$NODES"); do
        [[ -r $RULESETS/$i.rules ]] || die "NFE_FLEET_RULESETS=$RULESETS has no readable $i.rules"
    done
fi

bash "$ROOT/scripts/install-missing.sh" prometheus=prometheus curl=curl jq=jq ip=iproute2 \
    iptables-restore=iptables setpriv=util-linux

# What cleanup ends and deletes; filled as they are made.
PIDS=()
SLEEPER=""
NAMESPACES=()
WORK=$(mktemp -d -t fleet-sim.XXXXXX)

cleanup() {
    local status=$? pid ns waited
    trap - EXIT INT TERM
    set +e
    [[ -z $SLEEPER ]] || kill "$SLEEPER" 2>/dev/null
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    # The exporter gives its server process up to 10 s on SIGTERM.
    for pid in "${PIDS[@]}"; do
        waited=0
        while kill -0 "$pid" 2>/dev/null && ((waited < 120)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for ns in "${NAMESPACES[@]}"; do
        # Whatever still runs inside: a dump command the collector had started.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null || say "cannot delete namespace $ns"
    done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Sleeps $1 seconds in a way a signal interrupts at once: bash runs a trap only after the
# foreground command ends, but a `wait` returns when a trapped signal arrives.
pause() {
    sleep "$1" &
    SLEEPER=$!
    wait "$SLEEPER"
    SLEEPER=""
}

# Starts "$@" in the background; it gets SIGKILL if this script dies without cleaning up.
start() {
    setpriv --pdeathsig KILL "$@" &
    PIDS+=($!)
}

# The items of the first `args:` list after the container `- name: netfilter-exporter`, one
# per line, unquoted; fails on a flow-style list (`args: [...]`) or without that container.
daemonset_args() {
    awk '
        /^[[:space:]]*- name:[[:space:]]*netfilter-exporter[[:space:]]*$/ { container = 1; next }
        !container || done { next }
        !inside && /^[[:space:]]*args:[[:space:]]*[^[:space:]#]/ { exit 1 }
        !inside && /^[[:space:]]*args:[[:space:]]*(#.*)?$/ { inside = 1; indent = -1; next }
        !inside || /^[[:space:]]*(#.*)?$/ { next }
        {
            match($0, /^[[:space:]]*/)
            if ($0 !~ /^[[:space:]]*- / || (indent >= 0 && RLENGTH != indent)) { done = 1; next }
            indent = RLENGTH
            item = $0
            sub(/^[[:space:]]*- +/, "", item)
            if (item ~ /^".*"[[:space:]]*$/ || item ~ /^\x27.*\x27[[:space:]]*$/) {
                sub(/[[:space:]]+$/, "", item)
                item = substr(item, 2, length(item) - 2)
            } else {
                sub(/[[:space:]]+#.*$/, "", item)
                sub(/[[:space:]]+$/, "", item)
            }
            print item
        }
        END { if (!container) exit 1 }' "$MANIFEST"
}

# The collection and metrics flags among the DaemonSet's arguments (standard input), one per
# line: everything but the web, listen, audit, Kubernetes and logging flags, whose settings
# are the fleet's own or not the fleet's concern.
collection_flags() {
    local arg value_follows=0
    while IFS= read -r arg; do
        if ((value_follows)); then
            value_follows=0
            [[ $arg == -* ]] || continue
        fi
        case $arg in
        serve) ;;
        --web.* | --audit.* | --kubernetes.* | --listen-address* | --listen-port* | --log.*)
            [[ $arg == *=* ]] || value_follows=1
            ;;
        -l | -p) value_follows=1 ;;
        -l?* | -p?* | -v | -vv | -vvv | -q | -qq | -qqq | --verbose | --quiet) ;;
        *) echo "$arg" ;;
        esac
    done
}

# The sample_limit a PodMonitor (or the Prometheus configuration) in deploy/ sets, and the file
# that sets it; nothing when none does.
deploy_sample_limit() {
    local file limit
    while IFS= read -r file; do
        limit=$(sed -n 's/^[[:space:]]*sampleLimit:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$file" | head -n 1)
        if [[ -n $limit ]]; then
            echo "$limit $file"
            return
        fi
    done < <(find "$DEPLOY/kubernetes" -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
    file="$DEPLOY/prometheus/prometheus.yml"
    [[ -f $file ]] || return 0
    limit=$(sed -n 's/^[[:space:]]*sample_limit:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$file" | head -n 1)
    if [[ -n $limit ]]; then echo "$limit $file"; fi
}

# Runs "$@" in Prometheus's namespace.
in_prometheus() { ip netns exec "$PROMETHEUS_NS" "$@"; }

# Polls "$@" once a second until it succeeds; dies with $1's description after TIMEOUT s.
wait_for() {
    local what=$1 deadline=$((SECONDS + TIMEOUT))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || die "$what: not within ${TIMEOUT} s (NFE_FLEET_TIMEOUT)"
        pause 1
    done
}

# The last lines of a log, indented, for an error message.
log_tail() { tail -n 20 "$1" 2>/dev/null | sed 's/^/    /'; }

# Dies when a process of the fleet has exited, with its log.
check_running() {
    local i
    for i in $(seq 1 "$NODES"); do
        kill -0 "${EXPORTER[$i]}" 2>/dev/null ||
            die "the exporter of node $i exited; its log:"$'\n'"$(log_tail "$WORK/node-$i.log")"
    done
    kill -0 "$PROMETHEUS_PID" 2>/dev/null ||
        die "Prometheus exited; its log:"$'\n'"$(log_tail "$WORK/prometheus.log")"
}

# Answers of an instant query at time $2 (default: now), one `node value` line per series,
# by node number; a series without a node label is shown as node 0.
query() {
    local answer
    answer=$(in_prometheus curl -sS --fail --max-time 10 --get \
        --data-urlencode "query=$1" ${2:+--data-urlencode "time=$2"} \
        "http://$PROMETHEUS/api/v1/query") || die "Prometheus did not answer the query $1"
    jq -r '.data.result[] | "\(.metric.node // "0") \(.value[1])"' <<<"$answer" | sort -n
}

# Figures from Prometheus: FIG["NAME NODE"].
declare -A FIG
# Sets FIG["$1 NODE"] to each node's answer to query $2 at time $3.
by_node() {
    local answers node value
    answers=$(query "$2" "$3") || exit 1
    while read -r node value; do FIG["$1 $node"]=$value; done <<<"$answers"
}

# Saves Prometheus's own metrics (its /metrics) to file $1.
save_prometheus_metrics() {
    in_prometheus curl -sS --fail --max-time 10 -o "$1" "http://$PROMETHEUS/metrics" ||
        die "Prometheus did not answer on /metrics"
}

# The sum of the samples of family $2 in saved metrics $1 (0 when absent).
metric() {
    awk -v name="$2" '$1 == name || index($1, name "{") == 1 { v += $2 }
        END { if (v == int(v)) printf "%.0f\n", v; else printf "%.6f\n", v }' "$1"
}

# The processes of node $1's exporter: the one started and, as root, its server process.
exporter_pids() {
    echo "${EXPORTER[$1]}"
    pgrep -P "${EXPORTER[$1]}" -f internal-web-server || true
}

# CPU clock ticks node $1's exporter used so far: user and system time of both processes and
# of the children they waited for (dump commands).
exporter_ticks() {
    local pid total=0
    for pid in $(exporter_pids "$1"); do
        total=$((total + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat")))
    done
    echo "$total"
}

# Field $2 (VmRSS, VmHWM) of process $1's status, in KiB.
status_kib() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }

# The rules of a dump: its `-A` lines.
rules_in() { grep -cE '^(\[[0-9]+:[0-9]+\] )?-A ' "$1" || true; }

# The exporter and, unless NFE_FLEET_RULESETS gives the dumps, the generator.
if [[ -z ${NFE_BINARY:-} || -z $RULESETS ]]; then
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install the Rust toolchain, or set NFE_BINARY and NFE_FLEET_RULESETS"
    say "building with cargo (release)"
    (cd "$ROOT" && cargo build --release --quiet --bin netfilter_exporter --example generate_ruleset) ||
        die "cargo build failed"
fi
BINARY=${NFE_BINARY:-$ROOT/target/release/netfilter_exporter}
GENERATOR=$ROOT/target/release/examples/generate_ruleset
[[ -x $BINARY ]] || die "the exporter $BINARY is not an executable file (NFE_BINARY)"
BINARY=$(realpath "$BINARY")

manifest_args=$(daemonset_args) ||
    die "cannot read the args of the container netfilter-exporter in $MANIFEST: only a block list (\`- --flag\` lines) is read"
mapfile -t FLAGS < <(collection_flags <<<"$manifest_args")
read -r SAMPLE_LIMIT limit_origin <<<"$(deploy_sample_limit)"
if [[ -n ${NFE_FLEET_SAMPLE_LIMIT:-} ]]; then
    integer "$NFE_FLEET_SAMPLE_LIMIT" 0 || die "NFE_FLEET_SAMPLE_LIMIT must be a number"
    SAMPLE_LIMIT=$NFE_FLEET_SAMPLE_LIMIT
    limit_origin="NFE_FLEET_SAMPLE_LIMIT"
elif [[ -z $SAMPLE_LIMIT ]]; then
    SAMPLE_LIMIT=50000
    limit_origin="the script's default: deploy/ sets no sampleLimit"
fi

echo "fleet-sim: $NODES nodes, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, Linux $(uname -r), $(prometheus --version 2>&1 | head -n 1)"
echo "exporter: $BINARY serve${FLAGS[*]:+ ${FLAGS[*]}} (flags from $MANIFEST: ${FLAGS[*]:-none})"
echo "scrape interval ${INTERVAL} s, sample_limit $SAMPLE_LIMIT ($limit_origin), warm-up ${WARMUP} s, window ${WINDOW} s"
echo "work directory: $WORK"

# The bridge, in Prometheus's namespace; a veth pair to each node.
PROMETHEUS_NS="nfe-fleetprom-$$-0"
ip netns add "$PROMETHEUS_NS" || die "cannot create the network namespace $PROMETHEUS_NS"
NAMESPACES+=("$PROMETHEUS_NS")
in_prometheus ip link set lo up
in_prometheus ip link add fleet type bridge
in_prometheus ip addr add "$NET.0.1/16" dev fleet
in_prometheus ip link set fleet up

declare -a NODE_NS ADDRESS RULE_COUNT EXPORTER
say "creating $NODES nodes"
for i in $(seq 1 "$NODES"); do
    ns="nfe-fleet-$$-$i"
    ip netns add "$ns" || die "cannot create the network namespace $ns"
    NAMESPACES+=("$ns")
    NODE_NS[i]=$ns
    ADDRESS[i]="$NET.$(((i + 1) / 256)).$(((i + 1) % 256))"
    ip -n "$ns" link set lo up
    in_prometheus ip link add "node$i" type veth peer name eth0 netns "$ns"
    in_prometheus ip link set "node$i" master fleet up
    ip -n "$ns" addr add "${ADDRESS[i]}/16" dev eth0
    ip -n "$ns" link set eth0 up

    dump="$WORK/$i.rules"
    if [[ -n $RULESETS ]]; then
        cp "$RULESETS/$i.rules" "$dump"
    else
        "$GENERATOR" "$((RULES + i - 1))" >"$dump" || die "the generator failed for node $i"
    fi
    RULE_COUNT[i]=$(rules_in "$dump")
    ip netns exec "$ns" iptables-restore --counters <"$dump" 2>"$WORK/restore-$i.log" ||
        die "iptables-restore failed in node $i:"$'\n'"$(log_tail "$WORK/restore-$i.log")"
    rm -f "$dump"
done

say "starting $NODES exporters"
for i in $(seq 1 "$NODES"); do
    start ip netns exec "${NODE_NS[i]}" "$BINARY" serve "${FLAGS[@]}" \
        --web.listen-address "${ADDRESS[i]}:$PORT" 2>"$WORK/node-$i.log"
    EXPORTER[i]=${PIDS[-1]}
done

{
    printf 'global:\n  scrape_interval: %ss\n  scrape_timeout: %ss\n' "$INTERVAL" "$INTERVAL"
    printf 'scrape_configs:\n  - job_name: netfilter\n    sample_limit: %s\n    static_configs:\n' "$SAMPLE_LIMIT"
    for i in $(seq 1 "$NODES"); do
        printf "      - targets: ['%s:%s']\n        labels: {node: '%s'}\n" "${ADDRESS[i]}" "$PORT" "$i"
    done
} >"$WORK/prometheus.yml"
start ip netns exec "$PROMETHEUS_NS" prometheus --config.file="$WORK/prometheus.yml" \
    --storage.tsdb.path="$WORK/data" --web.listen-address="$PROMETHEUS" 2>"$WORK/prometheus.log"
PROMETHEUS_PID=${PIDS[-1]}

exporters_answer() {
    local i
    check_running
    for i in $(seq 1 "$NODES"); do
        in_prometheus curl -sf --max-time 2 -o /dev/null "http://${ADDRESS[i]}:$PORT/-/healthy" || return 1
    done
}
wait_for "every exporter answering on its bridge address" exporters_answer
prometheus_ready() {
    check_running
    in_prometheus curl -sf --max-time 2 -o /dev/null "http://$PROMETHEUS/-/ready"
}
wait_for "Prometheus ready" prometheus_ready
say "waiting for every target's first scrape"
all_scraped() {
    check_running
    [[ $(query 'count(up{job="netfilter"})' | awk '{ print $2 }') == "$NODES" ]]
}
wait_for "every target scraped" all_scraped

say "warming up for ${WARMUP} s"
pause "$WARMUP"
check_running

# The window: CPU from /proc at both ends, Prometheus's counters at both ends, the rest from
# range queries ending at its end.
hz=$(getconf CLK_TCK)
declare -a TICKS_START
for i in $(seq 1 "$NODES"); do TICKS_START[i]=$(exporter_ticks "$i"); done
save_prometheus_metrics "$WORK/start.metrics"
start_time=$(date +%s.%N)
load_start=$(cut -d' ' -f1 /proc/loadavg)
say "measuring for ${WINDOW} s"
pause "$WINDOW"
check_running
end_time=$(date +%s.%N)
load_end=$(cut -d' ' -f1 /proc/loadavg)
elapsed=$(awk -v a="$start_time" -v b="$end_time" 'BEGIN { print b - a }')
declare -a CPU RSS PEAK
for i in $(seq 1 "$NODES"); do
    CPU[i]=$(awk -v t="$(($(exporter_ticks "$i") - TICKS_START[i]))" -v hz="$hz" -v s="$elapsed" \
        'BEGIN { printf "%.1f", t / hz / s * 100 }')
    RSS[i]=""
    PEAK[i]=0
    for pid in $(exporter_pids "$i"); do
        RSS[i]+="${RSS[i]:+ + }$(($(status_kib "$pid" VmRSS) / 1024))"
        PEAK[i]=$((PEAK[i] + $(status_kib "$pid" VmHWM)))
    done
done
save_prometheus_metrics "$WORK/end.metrics"
# Change per second of Prometheus's counter $1 over the window.
per_second() {
    awk -v a="$(metric "$WORK/start.metrics" "$1")" -v b="$(metric "$WORK/end.metrics" "$1")" \
        -v s="$elapsed" 'BEGIN { printf "%.3f", (b - a) / s }'
}
prometheus_cpu=$(awk -v c="$(per_second process_cpu_seconds_total)" 'BEGIN { printf "%.1f", c * 100 }')
appended=$(per_second prometheus_tsdb_head_samples_appended_total | awk '{ printf "%.0f", $1 }')
head_series=$(metric "$WORK/end.metrics" prometheus_tsdb_head_series)
prometheus_rss=$(metric "$WORK/end.metrics" process_resident_memory_bytes)
prometheus_peak=$(($(status_kib "$PROMETHEUS_PID" VmHWM) * 1024))
exceeded=$(metric "$WORK/end.metrics" prometheus_target_scrapes_exceeded_sample_limit_total)

# The range queries end at the window's end, asked once the scrapes started before it have
# been stored: a scrape's samples carry its start time but land when it ends, up to a scrape
# timeout later.
at=${end_time%.*}
range="[${WINDOW}s]"
pause $((INTERVAL + 1))
by_node samples "scrape_samples_scraped{job=\"netfilter\"}" "$at"
by_node max_samples "max_over_time(scrape_samples_scraped{job=\"netfilter\"}$range)" "$at"
by_node scrape_avg "avg_over_time(scrape_duration_seconds{job=\"netfilter\"}$range)" "$at"
by_node scrape_max "max_over_time(scrape_duration_seconds{job=\"netfilter\"}$range)" "$at"
by_node scrapes "count_over_time(up{job=\"netfilter\"}$range)" "$at"
by_node ok "sum_over_time(up{job=\"netfilter\"}$range)" "$at"
by_node up "up{job=\"netfilter\"}" "$at"
by_node collection "sum by (node) (avg_over_time(netfilter_exporter_collection_duration_seconds{job=\"netfilter\"}$range))" "$at"

echo "machine load (1-minute average) $load_start at the window's start, $load_end at its end"
printf '\n%-5s %-12s %7s %9s %17s %11s %12s %6s %14s %13s\n' node address rules samples \
    "scrape avg/max s" "scrapes ok" "collection s" "CPU %" "RSS MiB" "peak RSS MiB"
total_samples=0 max_samples=0 up=0 scrapes=0 failed=0 log_problems=0
for i in $(seq 1 "$NODES"); do
    samples=${FIG["samples $i"]:-0} most=${FIG["max_samples $i"]:-0}
    count=${FIG["scrapes $i"]:-0} ok=${FIG["ok $i"]:-0}
    printf '%-5s %-12s %7s %9s %17s %11s %12s %6s %14s %13s\n' "$i" "${ADDRESS[i]}" "${RULE_COUNT[i]}" \
        "$samples" "$(printf '%.3f/%.3f' "${FIG["scrape_avg $i"]:-0}" "${FIG["scrape_max $i"]:-0}")" "$ok/$count" \
        "$(printf '%.3f' "${FIG["collection $i"]:-0}")" "${CPU[i]}" "${RSS[i]}" "$((PEAK[i] / 1024))"
    total_samples=$((total_samples + samples))
    ((most > max_samples)) && max_samples=$most
    [[ ${FIG["up $i"]:-0} == 1 ]] && up=$((up + 1))
    scrapes=$((scrapes + count))
    failed=$((failed + count - ok))
    problems=$(grep -cE 'level=(warn|error)' "$WORK/node-$i.log" || true)
    log_problems=$((log_problems + problems))
done
cpu_total=$(printf '%s\n' "${CPU[@]}" | awk '{ s += $1 } END { printf "%.1f", s }')
rss_total=$(for i in $(seq 1 "$NODES"); do for pid in $(exporter_pids "$i"); do status_kib "$pid" VmRSS; done; done |
    awk '{ s += $1 } END { printf "%.0f", s / 1024 }')
echo
echo "exporters: $total_samples samples per round of scrapes ($((total_samples / NODES)) per node)," \
    "CPU $cpu_total% of a core in all ($(awk -v c="$cpu_total" -v n="$NODES" 'BEGIN { printf "%.2f", c / n }')% per node)," \
    "RSS $rss_total MiB in all; $up of $NODES up, $failed of $scrapes scrapes failed"
echo "Prometheus: $head_series head series, RSS $((prometheus_rss / 1048576)) MiB" \
    "(peak $((prometheus_peak / 1048576)) MiB), $(awk -v r="$prometheus_rss" -v s="$head_series" \
        'BEGIN { printf "%.0f", s ? r / s : 0 }') bytes of RSS per head series," \
    "$appended samples/s appended, CPU $prometheus_cpu% of a core," \
    "$exceeded scrapes over sample_limit"
if ((failed > 0)); then
    echo "why scrapes failed (each target's last error):"
    in_prometheus curl -sS --fail --max-time 10 "http://$PROMETHEUS/api/v1/targets" |
        jq -r '.data.activeTargets[] | select(.lastError != "") | "    node \(.labels.node): \(.lastError)"' |
        sort -n -k2
fi
if ((log_problems > 0)); then
    echo "exporter log lines at warn or error: $log_problems; distinct messages:"
    cat "$WORK"/node-*.log | grep -E 'level=(warn|error)' |
        sed -E 's/^ts=[^ ]+ //' | sort | uniq -c | sort -rn | head -n 10 | sed 's/^/    /'
fi
echo "summary nodes=$NODES up=$up scrapes=$scrapes failed_scrapes=$failed" \
    "sample_limit=$SAMPLE_LIMIT max_samples_per_scrape=$max_samples" \
    "samples_per_round=$total_samples exceeded_sample_limit=$exceeded head_series=$head_series" \
    "prometheus_rss_bytes=$prometheus_rss exporter_cpu_percent=$cpu_total log_problems=$log_problems" \
    "work=$WORK"
