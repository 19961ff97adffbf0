#!/usr/bin/env bash
# Measures `netfilter_exporter serve -t iptables` on a generated kube-proxy-shaped ruleset
# (nf_tables backend) in a throwaway network namespace while restores keep changing it the
# way kube-proxy does during rollouts (examples/churn_ruleset.rs moves 10 services'
# endpoints every 2 s), against anchors measured in the same run: `iptables-save --counters`
# and the exporter's own collections of the unchanged ruleset. Then checks that the served
# series are exactly iptables-save's, times the collection after one restore moving 1,000
# services, and a one-shot `dump` in a fresh process. Needs root. Not a CI test: at 100k
# rules it takes several minutes. docs/iptables-nft.md, "Under churn", has one run.
#
# Usage: scripts/bench-churn.sh [RULES] [SECONDS]   (default 100000 40: the churn's length)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LC_ALL=C

rules=${1:-100000}
seconds=${2:-40}
ns="nfe-bench-churn-$$"
addr=127.0.0.1:9455
exporter=target/release/netfilter_exporter
churn=target/release/examples/churn_ruleset
period=2
work=$(mktemp -d)
server=
churner=
cleanup() {
    for pid in $churner $server; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() { ip netns exec "$ns" "$@"; }
fail() { echo "bench-churn: $*" >&2; exit 1; }
# An awk expression's value; fractions with six decimals (awk's default keeps six digits).
calc() { awk "BEGIN { OFMT = \"%.6f\"; print ($1) }"; }
# Seconds since the $EPOCHREALTIME value $1.
since() { calc "$EPOCHREALTIME - $1"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mean() { awk '{ s += $1 } END { if (NR) print s / NR }'; }
# Three significant digits; "a/b" as a ratio.
sig() { awk -v v="$1" 'BEGIN { printf "%.3g", v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3gx", a / b; else printf "-" }'; }

# Median wall time of three runs of a command.
wall3() {
    local start
    for _ in 1 2 3; do
        start=$EPOCHREALTIME
        "$@" > /dev/null
        since "$start"
    done | median
}

# The exporter's own series, which come before the rules' in the exposition: the rest is
# not read (the server logs each such scrape, closed early, at debug level).
status() {
    in_ns curl -sN "http://$addr/metrics" 2>/dev/null | sed '/^# HELP iptables_/q' || true
}

# One line for the collection a status shows: end time, wall, CPU, iptables-save runs so
# far, rule texts listed, from iptables-save, and decoded.
record() {
    awk '
        $1 == "netfilter_exporter_collection_timestamp_seconds{source=\"iptables\"}" { t = $2 }
        $1 == "netfilter_exporter_collection_duration_seconds{source=\"iptables\"}" { d = $2 }
        $1 == "netfilter_exporter_collection_cpu_seconds{source=\"iptables\"}" { c = $2 }
        $1 == "netfilter_exporter_iptables_save_runs_total{source=\"iptables\"}" { r = $2 }
        $1 == "netfilter_exporter_rule_texts{source=\"iptables\",how=\"listed\"}" { l = $2 }
        $1 == "netfilter_exporter_rule_texts{source=\"iptables\",how=\"iptables_save\"}" { s = $2 }
        $1 == "netfilter_exporter_rule_texts{source=\"iptables\",how=\"decoded\"}" { e = $2 }
        END { if (t != "") print t, d, c, r, l, s, e }'
}

# Waits for a collection that ended after time $1, and prints its record.
next_collection() {
    local after=$1 line deadline=$((SECONDS + 600))
    while ((SECONDS < deadline)); do
        kill -0 "$server" 2>/dev/null || fail "the exporter exited: $(tail -n 5 "$work/server.log")"
        line=$(status | record)
        if [[ -n $line ]] && calc "${line%% *} > $after" | grep -qx 1; then
            echo "$line"
            return
        fi
        sleep 0.2
    done
    fail "no collection for 600 s"
}

# Field $1 (1: end, 2: wall, 3: CPU, 4: iptables-save runs, 5: listed, 6: saved, 7: decoded)
# of a record.
field() { awk -v f="$1" '{ print $f }'; }

# Compares every iptables_* series the exporter serves with those of `dump
# --no-iptables-netlink` (iptables-save) on the same, unchanged ruleset; prints "yes" or
# "no (N differ)" and keeps the first differences in $work/differences. Scrapes are
# traffic through the ruleset's chains, so the dump runs first, once a whole collection has
# run since the last scrape, and the exposition fetched after it is checked to be from a
# collection that started after that scrape.
exact() {
    local quiet=$EPOCHREALTIME started
    sleep "$(calc "1 + 2 * $unchanged_wall + 0.5")"
    in_ns "$exporter" dump -t iptables --no-iptables-netlink > "$work/reference.prom"
    in_ns curl -s "http://$addr/metrics" > "$work/served.prom"
    started=$(record < "$work/served.prom" | awk '{ printf "%.6f", $1 - $2 }')
    [[ $(calc "$started > $quiet") == 1 ]] || echo "(the served collection predates the last scrape)" >&2
    for f in served reference; do
        grep '^iptables_' "$work/$f.prom" | grep -v '^iptables_scrape_duration_milliseconds' | sort > "$work/$f.series"
    done
    local differ
    differ=$(comm -3 "$work/served.series" "$work/reference.series" | sed 's/^\t//; s/ [^ ]*$//' | sort -u | wc -l)
    diff "$work/served.series" "$work/reference.series" | grep '^[<>]' | head -n 6 | cut -c 1-220 > "$work/differences" || true
    if ((differ == 0)); then echo "yes"; else echo "no ($differ differ)"; fi
}

row() { rows+=("$(printf '  %-42s %10s %12s %16s' "$@")"); }
rows=()
row "" "value" "/ unchanged" "iptables-save /"
section() { rows+=("== $*"); }

cargo build --release --quiet --bin netfilter_exporter --example generate_ruleset --example churn_ruleset
target/release/examples/generate_ruleset "$rules" > "$work/rules"
ip netns add "$ns"
in_ns ip link set lo up
echo "loading $rules rules..." >&2
in_ns iptables-restore --counters < "$work/rules"
in_ns iptables-save -t nat > "$work/nat"

# Every version made beforehand, so that the churn costs only the restores.
restores=$(((seconds + period - 1) / period))
for v in $(seq "$restores"); do
    "$churn" "$work/nat" 10 "$v" > "$work/churn-$v"
done
services=$(grep -c '^:KUBE-SVC-' "$work/nat")
big=$((services < 1000 ? services : 1000))
"$churn" "$work/nat" "$big" $((restores + 1)) > "$work/big"

echo "timing iptables-save..." >&2
save_wall=$(wall3 in_ns iptables-save --counters)
section "anchor"
row "iptables-save --counters, wall (median 3)" "$(sig "$save_wall") s"

echo "starting the exporter..." >&2
# Not through in_ns: $! is then the exporter itself (ip netns exec execs it).
ip netns exec "$ns" "$exporter" serve -t iptables --collect-interval 1 --collect-cpu-budget 0 \
    --log.level debug --web.listen-address "$addr" > "$work/server.log" 2>&1 &
server=$!
# Settled: a collection that found every rule text cached.
last=0
first=
while :; do
    line=$(next_collection "$last")
    last=$(field 1 <<< "$line")
    first=${first:-$line}
    [[ $(field 5 <<< "$line") == 0 && $(field 6 <<< "$line") == 0 && $(field 7 <<< "$line") == 0 ]] && break
done

echo "unchanged ruleset, 15 s..." >&2
start=$EPOCHREALTIME
: > "$work/unchanged"
while [[ $(calc "$(since "$start") < 15") == 1 ]]; do
    line=$(next_collection "$last")
    last=$(field 1 <<< "$line")
    echo "$line" >> "$work/unchanged"
done
unchanged_wall=$(field 2 < "$work/unchanged" | median)
unchanged_cpu=$(field 3 < "$work/unchanged" | median)
section "unchanged ruleset: $(wc -l < "$work/unchanged") collections, 1 s apart"
row "collection wall (median)" "$(sig "$unchanged_wall") s" "" "$(ratio "$save_wall" "$unchanged_wall")"
row "collection CPU (median)" "$(sig "$unchanged_cpu") s"
section "first collection after the start"
row "wall" "$(sig "$(field 2 <<< "$first")") s" "$(ratio "$(field 2 <<< "$first")" "$unchanged_wall")" "$(ratio "$save_wall" "$(field 2 <<< "$first")")"
row "CPU" "$(sig "$(field 3 <<< "$first")") s" "$(ratio "$(field 3 <<< "$first")" "$unchanged_cpu")"
row "iptables-save runs / rule texts decoded" "$(field 4 <<< "$first") / $(field 7 <<< "$first")"

echo "churn: 10 services every $period s for $seconds s..." >&2
runs_before=$(tail -n 1 "$work/unchanged" | field 4)
churn_start=$EPOCHREALTIME
churn_end=$(calc "$churn_start + $seconds")
(
    for v in $(seq "$restores"); do
        pause=$(calc "$churn_start + ($v - 1) * $period - $EPOCHREALTIME")
        if [[ $(calc "$pause > 0") == 1 ]]; then sleep "$pause"; fi
        t=$EPOCHREALTIME
        in_ns iptables-restore --noflush < "$work/churn-$v"
        since "$t" >> "$work/restore-times"
    done
) &
churner=$!
: > "$work/churn"
while [[ $(calc "$EPOCHREALTIME < $churn_end") == 1 ]]; do
    line=$(next_collection "$last")
    last=$(field 1 <<< "$line")
    echo "$line" >> "$work/churn"
done
wait "$churner"
churner=
awk -v a="$churn_start" -v b="$churn_end" '$1 >= a && $1 <= b' "$work/churn" > "$work/during"
[[ -s $work/during ]] || fail "no collection ended during the churn"
churn_wall=$(field 2 < "$work/during" | mean)
churn_cpu=$(field 3 < "$work/during" | mean)
churn_runs=$(($(tail -n 1 "$work/during" | field 4) - runs_before))
section "churn: 10 services every $period s for $seconds s: $restores restores (mean $(sig "$(mean < "$work/restore-times")") s), $(wc -l < "$work/during") collections"
row "collection wall (mean)" "$(sig "$churn_wall") s" "$(ratio "$churn_wall" "$unchanged_wall")" "$(ratio "$save_wall" "$churn_wall")"
row "collection CPU (mean)" "$(sig "$churn_cpu") s" "$(ratio "$churn_cpu" "$unchanged_cpu")"
row "iptables-save runs" "$churn_runs"
row "rule texts listed (sum)" "$(field 5 < "$work/during" | awk '{ s += $1 } END { print s }')"
row "rule texts from iptables-save (sum)" "$(field 6 < "$work/during" | awk '{ s += $1 } END { print s }')"
row "rule texts decoded (sum)" "$(field 7 < "$work/during" | awk '{ s += $1 } END { print s }')"

echo "two collections after the churn, then the series..." >&2
for _ in 1 2; do
    line=$(next_collection "$last")
    last=$(field 1 <<< "$line")
done
section "after the churn"
row "series exact" "$(exact)"
cp "$work/differences" "$work/differences-churn"

echo "$big services in one restore..." >&2
line=$(next_collection "$last")
last=$(field 1 <<< "$line")
runs_before=$(field 4 <<< "$line")
t=$EPOCHREALTIME
in_ns iptables-restore --noflush < "$work/big"
restored=$EPOCHREALTIME
restore_wall=$(since "$t")
# The collection that met the new rules: the first with uncached texts, or else the first
# that started after the restore.
while :; do
    line=$(next_collection "$last")
    last=$(field 1 <<< "$line")
    read -r end wall cpu runs listed saved decoded <<< "$line"
    ((listed + saved + decoded > 0)) && break
    [[ $(calc "$end - $wall > $restored") == 1 ]] && break
done
section "$big services in one restore ($(sig "$restore_wall") s)"
row "next collection wall" "$(sig "$wall") s" "$(ratio "$wall" "$unchanged_wall")" "$(ratio "$save_wall" "$wall")"
row "next collection CPU" "$(sig "$cpu") s" "$(ratio "$cpu" "$unchanged_cpu")"
row "its iptables-save runs" "$((runs - runs_before))"
row "its rule texts decoded / listed / from iptables-save" "$decoded / $listed / $saved"
row "series exact" "$(exact)"
cp "$work/differences" "$work/differences-big"

kill "$server"
wait "$server" || true
server=
echo "timing dump in fresh processes..." >&2
dump_wall=$(wall3 in_ns "$exporter" dump -t iptables)
section "dump -t iptables, fresh process"
row "wall (median 3)" "$(sig "$dump_wall") s" "" "$(ratio "$save_wall" "$dump_wall")"

echo "netfilter_exporter under churn: $rules rules, $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"
printf '%s\n' "${rows[@]}"
for when in churn big; do
    if [[ -s $work/differences-$when ]]; then
        echo "first differences after the $when restore (< served, > iptables-save):"
        cat "$work/differences-$when"
    fi
done
echo "server log, lines by level and message:"
sed -n 's/.* level=\([a-z]*\) .* message=\("[^"]*"\|[^ ]*\).*/\1 \2/p' "$work/server.log" | sort | uniq -c
grep -E 'level=(warn|error)' "$work/server.log" | head -n 5 | cut -c 1-300 || true
