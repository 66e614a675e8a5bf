#!/usr/bin/env bash
# Back to service after a restart (issue 17, point 5): N clients (over N accounts, on
# THREADS threads of the load generator, 2) log in and heartbeat, each once every EVERY ms
# (1000; 0: ping-pong, as fast as answered). The server gets SIGTERM and starts again on
# the same data directory; each client waits as SERVER_SHUTDOWN's reconnect_after_ms says
# (SPREAD, 1s), plus a random part of up to as much again, reconnects and resumes with
# VERIFY_SESSION. Prints, for each of ROUNDS restarts: when the first and the last client
# were back, how long a resume took from its connect, the heartbeat p99 of those back
# meanwhile, the new server's CPU time until the last was back (its startup included) and
# the load generator's own CPU time from the stop on.
#
#     bash benches/restart.sh      # N=17000 ROUNDS=2 EVERY=1000 SPREAD=1s THREADS=2
#     SESSIOND=other/sessiond bash benches/restart.sh              # another build
#     SERVER_OPTS="--listen-backlog 128" bash benches/restart.sh   # more server options
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-17000}
ROUNDS=${ROUNDS:-2}
cargo build -q --release --bin sessiond --example loadgen
source benches/lib.sh
opts=(--shutdown-reconnect-after "${SPREAD:-1s}" ${SERVER_OPTS:-})
MAX_SESSIONS=1 start_server restart 7630 1000 "${opts[@]}"
"$bin/examples/loadgen" --addr 127.0.0.1:7630 --password "$SPW" --conns 1 --secs 1 \
    --accounts "$N" >/dev/null
for r in $(seq "$ROUNDS"); do
    echo "$SPID" >"$dir/pid"
    "$bin/examples/loadgen" --addr 127.0.0.1:7630 --conns "$N" --accounts "$N" \
        --mode restart --threads "${THREADS:-2}" --every "${EVERY:-1000}" \
        --server-pid-file "$dir/pid" >"$dir/restart$r.out" 2>"$dir/restart$r.err" &
    load=$!
    for _ in $(seq 1200); do
        grep -q "all $N in" "$dir/restart$r.err" && break
        kill -0 "$load" 2>/dev/null || { cat "$dir/restart$r.err"; grep -v " INFO " "$dir/restart.err" | tail; exit 1; }
        sleep 0.1
    done
    sleep 2 # heartbeating
    stop_server "$SPID"
    MAX_SESSIONS=1 start_server restart 7630 1000 "${opts[@]}"
    echo "$SPID" >"$dir/pid"
    wait "$load" || { cat "$dir/restart$r.err"; exit 1; }
    echo "round $r: $(head -1 "$dir/restart$r.out") $(grep "own CPU" "$dir/restart$r.err")"
    tail -1 "$dir/restart$r.out"
    [ -n "${SHOW_LOG:-}" ] && grep -v " INFO " "$dir/restart.err" | tail -20
done
