#!/usr/bin/env bash
# WebSocket against plain TCP on one server, in one sitting (issue 21): heartbeat ping-pong
# round trips per second over each transport, the order swapped every round, with the
# server's CPU per round trip; the same for TLS over TCP against wss:// (with openssl at
# hand, for a certificate); then the server's memory per idle session over each (a fresh
# server per reading, so one transport's sessions do not count for the other).
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

if command -v openssl >/dev/null 2>&1; then
    echo "== the same over TLS: TLS over TCP against wss:// (a CA and a certificate for localhost made here)"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
        -keyout "$dir/key.pem" -out "$dir/cert.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$dir/san.ext"
    openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 2 -extfile "$dir/san.ext" -out "$dir/cert.pem" 2>/dev/null
    start_server tls 7620 1000 --ws-listen 127.0.0.1:7621 --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem"
    tls_run() { # tls_run TRANSPORT CONNS PIPELINE
        local extra=(--addr 127.0.0.1:7620 --tls-ca "$dir/ca.pem")
        [ "$1" = wss ] && extra=(--addr 127.0.0.1:7621 --ws --tls-ca "$dir/ca.pem")
        local out
        out=$("$lg" "${extra[@]}" --password "$SPW" --conns "$2" --pipeline "$3" --secs "$SECS" | tail -1)
        printf "%-3s %5d conns x%-2d: %7.0f rt/s, p99 %5d us\n" "$1" "$2" "$3" "$(field rps <<<"$out")" "$(field p99_us <<<"$out")"
    }
    for p in $PIPE; do
        for r in $(seq "$ROUNDS"); do
            if [ $((r % 2)) = 1 ]; then tls_run tls 100 "$p"; tls_run wss 100 "$p"; else tls_run wss 100 "$p"; tls_run tls 100 "$p"; fi
        done
    done
    stop_server "$SPID"
fi

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
