#!/usr/bin/env bash
# Alternated A/B runs of the durable path, the way BENCHMARKS.md compares
# builds on a shared, noisy machine: each round runs every build once, in
# turn, each run on a fresh SQLite file or a fresh PostgreSQL database, so
# two builds are compared within the same minutes. Even rounds run the
# builds in reverse order.
#
#   bash bench/ab.sh [--pg NODES] LABEL=DIR[:VAR=VALUE] ... -- CONTACTS [LOADGEN ARGS]
#
# DIR holds a build's `switchyard`, `loadgen` and `http_floor` (copy them
# there from target/release and target/release/examples). `:VAR=VALUE` sets
# one environment variable for that build's runs (the load generator passes
# its environment on to `serve`), so one build can be compared with itself
# under another setting. ROUNDS (default 3) is the number of rounds.
#
# Each run prints the load generator's throughput, p50 and p99, the CPU per
# message of serve and of the load, and:
# - on SQLite, the `sqlite-writer` thread's CPU per message (sampled from
#   /proc every 0.2 s while serve runs);
# - with `--pg NODES`, PostgreSQL's CPU per message (every postgres process
#   of the local server, and what the postmaster reaped) and its WAL bytes
#   per message. Each run creates a database on PG_ADMIN_URL (default
#   postgres://postgres@127.0.0.1:5432/postgres), passes it and NODES to
#   the load generator, and drops it afterwards. The server must run on
#   this machine for the CPU figure.
set -euo pipefail

pg_nodes=""
if [ "${1:-}" = "--pg" ]; then
    pg_nodes=${2:?"--pg needs a node count"}
    shift 2
fi
builds=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    builds+=("$1")
    shift
done
[ "${1:-}" = "--" ] || { echo "usage: bench/ab.sh [--pg NODES] LABEL=DIR[:VAR=VALUE] ... -- CONTACTS [LOADGEN ARGS]" >&2; exit 2; }
shift
[ ${#builds[@]} -gt 0 ] && [ $# -gt 0 ] || { echo "bench/ab.sh: name at least one build and the contacts" >&2; exit 2; }
contacts=$1
shift
extra=("$@")
rounds=${ROUNDS:-3}
admin=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
for build in "${builds[@]}"; do
    dir=${build#*=}
    dir=${dir%%:*}
    for binary in switchyard loadgen; do
        [ -x "$dir/$binary" ] || { echo "bench/ab.sh: $dir/$binary is missing (build '${build%%=*}')" >&2; exit 2; }
    done
done

# Clock ticks of the local PostgreSQL: the postmaster's own and reaped
# children's, plus its live children's.
postmaster=""
if [ -n "$pg_nodes" ]; then
    postmaster=$(pgrep -o -x postgres || true)
    [ -n "$postmaster" ] || echo "bench/ab.sh: no local postgres process: PostgreSQL CPU not measured" >&2
fi
pg_ticks() {
    [ -n "$postmaster" ] || { echo 0; return; }
    local total
    total=$(awk '{print $14+$15+$16+$17}' "/proc/$postmaster/stat")
    for child in $(pgrep -P "$postmaster"); do
        total=$((total + $(awk '{print $14+$15}' "/proc/$child/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
hz=$(getconf CLK_TCK)
field() { grep -oP "$1 +\K[0-9.]+" <<<"$2" | head -1 || true; }

run=0
failed=0
for round in $(seq "$rounds"); do
    # Odd rounds run the builds in the order given, even rounds in reverse
    # (ABBA), so a build that always ran first or last in its round (after
    # the previous run's checkpoint, say) is not favoured.
    order=("${builds[@]}")
    if [ $((round % 2)) -eq 0 ]; then
        order=()
        for ((i = ${#builds[@]} - 1; i >= 0; i--)); do order+=("${builds[$i]}"); done
    fi
    for build in "${order[@]}"; do
        label=${build%%=*}
        dir=${build#*=}
        setting=""
        if [[ "$dir" == *:* ]]; then
            setting=${dir#*:}
            dir=${dir%%:*}
        fi
        run=$((run + 1))
        args=("$contacts")
        database=""
        if [ -n "$pg_nodes" ]; then
            database="ab_$$_$run"
            psql "$admin" -qAtc "CREATE DATABASE $database" >/dev/null
            args+=("${admin%/*}/$database" "$pg_nodes")
            lsn=$(psql "$admin" -qAtc "SELECT pg_current_wal_lsn()")
        fi
        args+=("${extra[@]}")
        out=$(mktemp)
        before=$(pg_ticks)
        (
            [ -z "$setting" ] || export "${setting?}"
            SWITCHYARD_BIN="$dir/switchyard" FLOOR_BIN="$dir/http_floor" exec "$dir/loadgen" "${args[@]}"
        ) >"$out" 2>&1 &
        loadgen=$!
        writer_ticks=0
        serve=""
        while kill -0 "$loadgen" 2>/dev/null; do
            [ -n "$serve" ] || serve=$(pgrep -f "^$dir/switchyard serve" | head -1 || true)
            if [ -z "$pg_nodes" ] && [ -n "$serve" ]; then
                for task in /proc/"$serve"/task/*; do
                    if [ "$(cat "$task/comm" 2>/dev/null)" = sqlite-writer ]; then
                        ticks=$(awk '{print $14+$15}' "$task/stat" 2>/dev/null || true)
                        [ -z "$ticks" ] || writer_ticks=$ticks
                    fi
                done
            fi
            sleep 0.2
        done
        status=0
        wait "$loadgen" || status=$?
        report=$(cat "$out")
        rm -f "$out"
        messages=$(field 'messages:' "$report")
        line="round $round $label: $(field 'throughput:' "$report") msg/s, p50 $(field 'latency p50:' "$report") ms, p99 $(field 'latency p99:' "$report") ms, $(grep -oP 'cpu per message: +\K.*' <<<"$report" || true)"
        if [ "$status" -ne 0 ] || [ -z "$messages" ] || [ "$messages" -eq 0 ]; then
            failed=1
            echo "round $round $label: the load generator failed (exit $status):" >&2
            grep -v '^ ' <<<"$report" | grep -v -e '^Stack backtrace:' -e '^$' | tail -5 >&2
        elif [ -n "$pg_nodes" ]; then
            after=$(pg_ticks)
            wal=$(psql "$admin" -qAtc "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn')::BIGINT")
            echo "$line, postgres $(( (after - before) * 1000000 / hz / messages )) µs and $(( wal / messages )) WAL bytes per message"
        else
            echo "$line, writer thread $(( writer_ticks * 1000000 / hz / messages )) µs per message"
        fi
        if [ -n "$database" ]; then
            psql "$admin" -qAtc "DROP DATABASE $database WITH (FORCE)" >/dev/null
        fi
    done
done
# A failed run fails the script, after the other runs have printed.
exit "$failed"
