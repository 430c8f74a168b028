#!/usr/bin/env bash
# The durable path's table in one command: the SQLite ceiling, the HTTP floor
# (the same load against `http_floor`: the webhook in and the sendTexts out,
# no store, no engine: the most this machine allows the path), then the load
# generator (its own process) against `switchyard serve` processes at 50 and
# 1000 contacts on SQLite FULL and NORMAL, and PostgreSQL with 1 and 2 nodes.
#
#   bash bench/durable-path.sh [POSTGRES_URL]
#
# POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres) is the
# server's maintenance database: each PostgreSQL run creates a fresh database
# there and drops it afterwards. Without a PostgreSQL those rows are skipped.
# REPEAT=N runs each row N times (quote the median). To compare two builds,
# alternate them with bench/ab.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PG=${1:-postgres://postgres@127.0.0.1:5432/postgres}
REPEAT=${REPEAT:-1}
cargo build --release -q -p switchyard --bin switchyard --example loadgen --example http_floor
cargo build --release -q -p switchyard-store --example sqlite_ceiling
echo "machine: $(nproc) cores, load: $(uptime | sed 's/.*load average: //')"
target/release/examples/sqlite_ceiling 20000

row() { # label, then loadgen arguments; SQLITE_SYNCHRONOUS from the caller
    for _ in $(seq "$REPEAT"); do
        out=$(target/release/examples/loadgen "$@")
        printf '%-34s %s | %s | %s | %s\n' "$label" "$(grep throughput <<<"$out" | tr -s ' ')" \
            "$(grep 'p50' <<<"$out" | tr -s ' ')" "$(grep 'p99' <<<"$out" | tr -s ' ')" "$(grep 'cpu per' <<<"$out" | tr -s ' ')"
    done
}

for contacts in 50 1000; do
    label="http floor, $contacts contacts" row "$contacts" --floor
done
for contacts in 50 1000; do
    for sync in full normal; do
        label="sqlite $sync, $contacts contacts" SQLITE_SYNCHRONOUS=$sync row "$contacts"
    done
done
if psql "$PG" -qAtc 'select 1' >/dev/null 2>&1; then
    for contacts in 50 1000; do
        for nodes in 1 2; do
            db="switchyard_bench_$$_${contacts}_${nodes}"
            psql "$PG" -qc "CREATE DATABASE $db" >/dev/null
            label="postgres $nodes node(s), $contacts contacts" row "$contacts" "${PG%/*}/$db" "$nodes"
            psql "$PG" -qc "DROP DATABASE $db" >/dev/null
        done
    done
else
    echo "postgres: nothing answers at $PG; its rows are skipped"
fi
