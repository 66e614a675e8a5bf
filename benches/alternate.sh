#!/usr/bin/env bash
# Two builds of the server side by side, in one sitting: each driven in turn by this
# build's loadgen (`--conns N --secs SECS`), the order swapped every round (the first run
# of a pair tends to be slower on a shared box), with the server's CPU time read from
# /proc around each run. Prints one line per run: rt/s and us of server CPU per round trip.
#
#     BEFORE=/tmp/old/sessiond bash benches/alternate.sh     # AFTER defaults to this build
#     NS="1000 100" ROUNDS=3 SECS=5 ...                       # the defaults
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BEFORE:?BEFORE=path of the other sessiond binary}"
AFTER=${AFTER:-target/release/sessiond}
SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
NS=${NS:-1000 100}
cargo build -q --release --bin sessiond --example loadgen
dir=$(mktemp -d)
declare -A PID PW PORT BIN=([before]=$BEFORE [after]=$AFTER)
cleanup() {
    for v in before after; do [ -n "${PID[$v]:-}" ] && kill -TERM "${PID[$v]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
port=7610
for v in before after; do
    PORT[$v]=$port
    RUST_LOG=error "${BIN[$v]}" --listen "127.0.0.1:$port" --data-dir "$dir/$v" \
        --iterations 10000 --max-sessions-per-user 0 --login-burst 1000000 \
        --login-rate 1000000 --address-hashes 100000 --max-connections-per-address 20000 \
        --max-connections 20000 --login-timeout 120s --heartbeat-interval 300s \
        --heartbeat-timeout 900s >"$dir/$v.out" 2>"$dir/$v.err" &
    PID[$v]=$!
    port=$((port + 1))
done
for v in before after; do
    for _ in $(seq 100); do grep -q "password:" "$dir/$v.out" 2>/dev/null && break; sleep 0.1; done
    PW[$v]=$(awk '/password:/ {print $2}' "$dir/$v.out")
    [ -n "${PW[$v]}" ] || { echo "the $v server did not start"; cat "$dir/$v.err"; exit 1; }
done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
run() {
    local t0 t1 rps
    t0=$(ticks "${PID[$1]}")
    rps=$(target/release/examples/loadgen --addr "127.0.0.1:${PORT[$1]}" --password "${PW[$1]}" \
        --conns "$2" --secs "$SECS" | tail -1 | sed -n 's/.*"rps":\([0-9.]*\).*/\1/p')
    t1=$(ticks "${PID[$1]}")
    awk -v r="$rps" -v t=$((t1 - t0)) -v s="$SECS" -v hz="$hz" -v v="$1" -v n="$2" \
        'BEGIN { printf "%-6s %5d conns: %7.0f rt/s, %.2f us of server CPU per round trip\n", v, n, r, t * 1e6 / hz / (r * s) }'
}
for n in $NS; do
    for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then run after "$n"; run before "$n"; else run before "$n"; run after "$n"; fi
    done
done
