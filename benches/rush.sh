#!/usr/bin/env bash
# Logins while heartbeats saturate the loop (issue 17, point 3): N connections log in at
# once over N accounts, each heartbeating (ping-pong) from its own login on, as the
# clients of a restarted server come back; against the calm case (no heartbeat until all
# are in). Then the heartbeat p99 of 100 connections calm and beside a login storm (4
# connections logging in and out at PBKDF2 10,000), the other side of the trade, and the
# median of the ROUNDS ratios. One server per measure, the runs alternated ROUNDS times.
#
#     bash benches/rush.sh       # N=10000 ROUNDS=3 SECS=3 PARTS="rush storm"
#     SESSIOND=other/sessiond bash benches/rush.sh     # another build of the server
#     PARTS=storm ROUNDS=10 ACCOUNTS=same bash benches/rush.sh    # the storm on one account
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-3}
cargo build -q --release --bin sessiond --example loadgen
source benches/lib.sh
load() { "$bin/examples/loadgen" "$@" | tail -1; }

PARTS=${PARTS:-rush storm}
if [[ $PARTS == *rush* ]]; then
MAX_SESSIONS=1 start_server rush 7620 1000
rush_pid=$SPID
load --addr 127.0.0.1:7620 --password "$SPW" --conns 1 --secs 1 --accounts "$N" >/dev/null
for r in $(seq "$ROUNDS"); do
    for mode in join rush; do
        t0=$(ticks "$rush_pid")
        out=$(load --addr 127.0.0.1:7620 --conns "$N" --secs "$SECS" --accounts "$N" --mode "$mode")
        t1=$(ticks "$rush_pid")
        echo "$out"
        echo "round $r $mode: all $N in after $(echo "$out" | field join_secs) s (heartbeat p99 meanwhile $(echo "$out" | field join_p99_us) us), server CPU $(awk -v t=$((t1 - t0)) -v hz="$hz" 'BEGIN { printf "%.1f", t / hz }') s"
    done
done
stop_server "$rush_pid"
fi

[[ $PARTS == *storm* ]] || exit 0
# The storm: 100 connections heartbeating over accounts of their own, 4 more logging in
# and out over 4 others (ACCOUNTS=same: everyone as the first admin, so each storm login
# also pushes NEW_LOGIN to 32 of the heartbeating connections).
accounts=(--accounts 104)
[[ ${ACCOUNTS:-} == same ]] && accounts=()
start_server storm 7621 10000
ratios=()
for r in $(seq "$ROUNDS"); do
    calm=$(load --addr 127.0.0.1:7621 --password "$SPW" --conns 100 --secs "$SECS" "${accounts[@]}")
    storm=$(load --addr 127.0.0.1:7621 --password "$SPW" --conns 100 --secs "$SECS" --mode storm "${accounts[@]}")
    c=$(echo "$calm" | field p99_us) s=$(echo "$storm" | field p99_us)
    ratio=$(awk -v c="$c" -v s="$s" 'BEGIN { printf "%.2f", s / c }')
    ratios+=("$ratio")
    echo "round $r: heartbeat p99 calm $c us, beside a login storm $s us (${ratio}x; $(echo "$storm" | field logins) storm logins)"
done
echo "storm / calm p99, median of $ROUNDS: $(printf '%s\n' "${ratios[@]}" | median)x"
