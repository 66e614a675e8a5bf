#!/usr/bin/env bash
# The curve (issue 17): heartbeat round trips per second (ping-pong, one outstanding per
# connection), the server's CPU per round trip, and bytes of server RSS per idle
# connection, against the connection count, for sessiond and the bare echo server, in one
# sitting (each count: sessiond then echo, each on a fresh server for the memory). Writes
# benches/curve.tsv and draws benches/curve.svg from it (benches/chart.py).
#
#     bash benches/curve.sh       # COUNTS="100 1000 5000 10000 17000" SECS=3
set -euo pipefail
cd "$(dirname "$0")/.."
COUNTS=${COUNTS:-100 1000 5000 10000 17000}
SECS=${SECS:-3}
cargo build -q --release --bin sessiond --example loadgen --example echo
source benches/lib.sh
load() { "$bin/examples/loadgen" "$@" | tail -1; }
echo_server() {
    "$bin/examples/echo" "127.0.0.1:$1" >/dev/null 2>&1 &
    EPID=$!
    PIDS+=("$EPID")
    sleep 0.3
}
out=benches/curve.tsv
printf 'conns\tsessiond_rps\techo_rps\tsessiond_bytes\techo_bytes\tsessiond_cpu_us\techo_cpu_us\n' >"$out"
port=7640
for n in $COUNTS; do
    start_server "curve$n" $port 1000
    s_idle=$(load --addr 127.0.0.1:$port --password "$SPW" --conns "$n" --secs 1 --mode idle \
        --server-pid "$SPID" --accounts "$n")
    s=$(load --addr 127.0.0.1:$port --conns "$n" --secs "$SECS" --accounts "$n" --server-pid "$SPID")
    stop_server "$SPID"
    echo_server $((port + 1))
    e_idle=$(load --target echo --addr 127.0.0.1:$((port + 1)) --conns "$n" --secs 1 --mode idle \
        --server-pid "$EPID")
    e=$(load --target echo --addr 127.0.0.1:$((port + 1)) --conns "$n" --secs "$SECS" \
        --server-pid "$EPID")
    stop_server "$EPID"
    row="$n	$(echo "$s" | field rps)	$(echo "$e" | field rps)	$(echo "$s_idle" | field bytes_per_session)	$(echo "$e_idle" | field bytes_per_session)	$(echo "$s" | field server_cpu_us_per_rt)	$(echo "$e" | field server_cpu_us_per_rt)"
    echo "$row" | tee -a "$out"
    port=$((port + 2))
done
python3 benches/chart.py "$out" benches/curve.svg
echo "wrote $out and benches/curve.svg"
