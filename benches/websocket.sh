#!/usr/bin/env bash
# WebSocket against plain TCP on one server, in one sitting (issue 21): heartbeat ping-pong
# round trips per second over each transport, the order swapped every round, with the
# server's CPU per round trip; then the server's memory per idle session over each (a
# fresh server per reading, so one transport's sessions do not count for the other).
#
#     bash benches/websocket.sh                        # NS="100 1000" ROUNDS=3 SECS=5
#     IDLE=10000 bash benches/websocket.sh             # idle sessions per reading
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
NS=${NS:-100 1000}
PIPE=${PIPE:-1 16}
IDLE=${IDLE:-10000}
cargo build -q --release --bin sessiond --example loadgen
lg=target/release/examples/loadgen

start_server ws 7620 1000 --ws-listen 127.0.0.1:7621
run() { # run TRANSPORT CONNS PIPELINE
    local extra=(--addr 127.0.0.1:7620)
    [ "$1" = ws ] && extra=(--addr 127.0.0.1:7621 --ws)
    local t0 t1 out rps
    t0=$(ticks "$SPID")
    out=$("$lg" "${extra[@]}" --password "$SPW" --conns "$2" --pipeline "$3" --secs "$SECS" | tail -1)
    t1=$(ticks "$SPID")
    rps=$(field rps <<<"$out")
    awk -v r="$rps" -v t=$((t1 - t0)) -v s="$SECS" -v hz="$hz" -v v="$1" -v n="$2" -v p="$3" \
        -v p99="$(field p99_us <<<"$out")" \
        'BEGIN { printf "%-3s %5d conns x%-2d: %7.0f rt/s, p99 %5d us, %.2f us of server CPU per round trip\n", v, n, p, r, p99, t * 1e6 / hz / (r * s) }'
}
echo "== heartbeat round trips, TCP and WebSocket on one server (${SECS}s runs)"
for p in $PIPE; do
    for n in $NS; do
        for r in $(seq "$ROUNDS"); do
            if [ $((r % 2)) = 1 ]; then run tcp "$n" "$p"; run ws "$n" "$p"; else run ws "$n" "$p"; run tcp "$n" "$p"; fi
        done
    done
done
stop_server "$SPID"

echo "== memory per idle session ($IDLE sessions, a fresh server each)"
for t in tcp ws; do
    start_server "idle-$t" 7630 1000 --ws-listen 127.0.0.1:7631
    extra=(--addr 127.0.0.1:7630)
    [ "$t" = ws ] && extra=(--addr 127.0.0.1:7631 --ws)
    out=$("$lg" "${extra[@]}" --password "$SPW" --conns "$IDLE" --mode idle --server-pid "$SPID" \
        --in-flight 256 --secs 2)
    echo "$t: ${out%%$'\n'*}"
    stop_server "$SPID"
done
