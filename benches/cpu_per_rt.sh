#!/usr/bin/env bash
# Server CPU per heartbeat round trip, sessiond against the bare echo server, at one
# connection count (issue 17: within 5% at 10,000): one server of each, driven in turn by
# the same load generator (ping-pong, one outstanding per connection), the order swapped
# every round; the CPU is each server's own, read from /proc around the measurement.
# Prints each round and the median of the ratios.
#
#     bash benches/cpu_per_rt.sh     # N=10000 ROUNDS=6 SECS=5, PIN=1 to pin (below)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
ROUNDS=${ROUNDS:-6}
SECS=${SECS:-5}
cargo build -q --release --bin sessiond --example loadgen --example echo
source benches/lib.sh
# PIN=1: the servers on the last CPU, the load generator on the others (less variance
# from where the scheduler puts them, on a box this small).
gen=()
[[ -n ${PIN:-} ]] && gen=(taskset -c "0-$(($(nproc) - 2))")
pin() { [[ -z ${PIN:-} ]] || taskset -a -p -c "$(($(nproc) - 1))" "$1" >/dev/null; }
load() { "${gen[@]}" "$bin/examples/loadgen" "$@" | tail -1; }
start_server cpu 7650 1000
pin "$SPID"
"$bin/examples/echo" 127.0.0.1:7651 >/dev/null 2>&1 &
EPID=$!
pin "$EPID"
PIDS+=("$EPID")
sleep 0.3
load --addr 127.0.0.1:7650 --password "$SPW" --conns 1 --secs 1 --accounts "$N" >/dev/null
sessiond() { load --addr 127.0.0.1:7650 --conns "$N" --secs "$SECS" --accounts "$N" --server-pid "$SPID"; }
echo_() { load --target echo --addr 127.0.0.1:7651 --conns "$N" --secs "$SECS" --server-pid "$EPID"; }
ratios=()
for r in $(seq "$ROUNDS"); do
    if ((r % 2)); then s=$(sessiond); e=$(echo_); else e=$(echo_); s=$(sessiond); fi
    sc=$(echo "$s" | field server_cpu_us_per_rt) ec=$(echo "$e" | field server_cpu_us_per_rt)
    ratio=$(awk -v s="$sc" -v e="$ec" 'BEGIN { printf "%.3f", s / e }')
    ratios+=("$ratio")
    echo "round $r: sessiond $(echo "$s" | field rps) rt/s, $sc us of CPU per round trip; echo $(echo "$e" | field rps) rt/s, $ec us (${ratio}x)"
done
echo "sessiond / echo CPU per round trip at $N connections, median of $ROUNDS: $(printf '%s\n' "${ratios[@]}" | median)x"
