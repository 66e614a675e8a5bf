#!/usr/bin/env bash
# A node on PostgreSQL (--cluster) against the embedded journal, in one sitting (issue 22):
# logins per second with their latency (PBKDF2 at 1,000 iterations, so that the store's
# share shows), and heartbeat round trips per second, each pair of runs alternating which
# goes first. Starts its own throwaway PostgreSQL (initdb and pg_ctl in the scratch
# directory; as the postgres user when run as root), with fsync on, as a real one runs.
#
#     bash benches/cluster.sh                       # ROUNDS=3 SECS=5 CONNS=8
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-8}
cargo build -q --release --bin sessiond --example loadgen
lg=target/release/examples/loadgen

pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ -x "$pgbin/initdb" ] || { echo "no PostgreSQL (apt-get install postgresql)"; exit 1; }
as_pg=()
if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir"
    as_pg=(runuser -u postgres --)
fi
pgport=7649
"${as_pg[@]}" "$pgbin/initdb" -D "$dir/pg" -U postgres --auth=trust -E UTF8 >/dev/null
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pgport -c unix_socket_directories=$dir" start >/dev/null
stop_pg() { "${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null 2>&1 || true; }
trap 'stop_pg; cleanup' EXIT
chmod 777 "$dir"
url="postgresql://postgres@127.0.0.1:$pgport/postgres"

start_server embedded 7640 1000
EPID=$SPID EPW=$SPW
start_server cluster 7641 1000 --cluster "$url" --node-id bench
CPID=$SPID CPW=$SPW

run() { # run NAME MODE
    local port pw pid
    if [ "$1" = embedded ]; then port=7640 pw=$EPW pid=$EPID; else port=7641 pw=$CPW pid=$CPID; fi
    local t0 t1 out
    t0=$(ticks "$pid")
    if [ "$2" = logins ]; then
        out=$("$lg" --addr "127.0.0.1:$port" --password "$pw" --conns "$CONNS" --secs "$SECS" --mode logins | tail -1)
    else
        out=$("$lg" --addr "127.0.0.1:$port" --password "$pw" --conns 100 --secs "$SECS" | tail -1)
    fi
    t1=$(ticks "$pid")
    awk -v n="$1" -v m="$2" -v r="$(field rps <<<"$out")" -v p50="$(field p50_us <<<"$out")" \
        -v p99="$(field p99_us <<<"$out")" -v t=$((t1 - t0)) -v s="$SECS" -v hz="$hz" \
        'BEGIN { printf "%-8s %-9s %8.0f/s  p50 %6d us  p99 %6d us  server CPU %.1f us each\n", n, m, r, p50, p99, t * 1e6 / hz / (r * s) }'
}
for mode in logins pingpong; do
    for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then run embedded "$mode"; run cluster "$mode"; else run cluster "$mode"; run embedded "$mode"; fi
    done
done
