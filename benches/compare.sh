#!/usr/bin/env bash
# The issue 9 comparison in one run, on this machine: heartbeat round trips against the
# bare mio echo server (the ceiling) at 100 and 1,000 connections, heartbeat p99 with and
# without a login storm, and server memory and CPU with 10,000 idle sessions (each on a
# fresh server: one account's logins paced 256 at a time and all sent at once, and all at
# once over 10,000 accounts). Prints each loadgen JSON line, then the ratios.
#
#     bash benches/compare.sh            # SECS=10 ROUNDS=5 bash benches/compare.sh for more
#     SESSIOND=/tmp/old/sessiond bash benches/compare.sh   # another build of the server,
#                                        # driven by this build's loadgen and echo
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
IDLE=${IDLE:-10000}
cargo build -q --release --bin sessiond --example loadgen --example echo
bin=target/release
sessiond=${SESSIOND:-$bin/sessiond}
dir=$(mktemp -d)
spid=""
epid=""
ipid=""
cleanup() {
    [ -n "$spid" ] && kill -TERM "$spid" 2>/dev/null || true
    [ -n "$ipid" ] && kill -TERM "$ipid" 2>/dev/null || true
    [ -n "$epid" ] && kill "$epid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

# A server (PORT NAME ITERATIONS): the load account's many sessions and its logins from
# one address need the limits opened; long heartbeat timeouts let idle sessions stay
# idle. The hash queue is the default (256): loadgen waits out SERVER_BUSY's retry-after.
server() {
    RUST_LOG=error "$sessiond" --listen "127.0.0.1:$1" --data-dir "$dir/$2" \
        --iterations "$3" --max-sessions-per-user 0 --login-burst 1000000 \
        --login-rate 1000000 --address-hashes 100000 --max-connections-per-address 20000 \
        --max-connections 20000 --login-timeout 120s --heartbeat-interval 300s \
        --heartbeat-timeout 900s >"$dir/$2.out" 2>"$dir/$2.err" &
}
# The first admin's password, once the server printed it.
password() {
    for _ in $(seq 100); do
        grep -q "password:" "$dir/$1.out" 2>/dev/null && break
        sleep 0.1
    done
    awk '/password:/ {print $2}' "$dir/$1.out"
}
server 7600 main 10000
spid=$!
"$bin/examples/echo" 127.0.0.1:7601 >/dev/null 2>&1 &
epid=$!
pw=$(password main)
[ -n "$pw" ] || { echo "the server did not start"; cat "$dir/main.err"; exit 1; }

field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
run() { "$bin/examples/loadgen" "$@" | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

summary=()
for n in 100 1000; do
    # ROUNDS alternating pairs; the ratio of the means (this box's noise is +-20% a run)
    ssum=0
    esum=0
    for _ in $(seq "$ROUNDS"); do
        s=$(run --addr 127.0.0.1:7600 --password "$pw" --conns "$n" --secs "$SECS")
        e=$(run --target echo --addr 127.0.0.1:7601 --conns "$n" --secs "$SECS")
        echo "$s"
        echo "$e"
        ssum=$(awk -v a="$ssum" -v b="$(echo "$s" | field rps)" 'BEGIN { print a + b }')
        esum=$(awk -v a="$esum" -v b="$(echo "$e" | field rps)" 'BEGIN { print a + b }')
    done
    smean=$(awk -v a="$ssum" -v n="$ROUNDS" 'BEGIN { printf "%.0f", a / n }')
    emean=$(awk -v a="$esum" -v n="$ROUNDS" 'BEGIN { printf "%.0f", a / n }')
    summary+=("heartbeats, $n conns, mean of $ROUNDS: $smean vs echo $emean rt/s: ratio $(ratio "$smean" "$emean") (target >= 0.95)")
done
calm=$(run --addr 127.0.0.1:7600 --password "$pw" --conns 100 --secs "$SECS")
storm=$(run --addr 127.0.0.1:7600 --password "$pw" --conns 100 --secs "$SECS" --mode storm)
echo "$calm"
echo "$storm"
summary+=("heartbeat p99, 100 conns: $(echo "$calm" | field p99_us) us calm, $(echo "$storm" | field p99_us) us during a login storm: ratio $(ratio "$(echo "$storm" | field p99_us)" "$(echo "$calm" | field p99_us)") (target <= 2)")
logins=$(run --addr 127.0.0.1:7600 --password "$pw" --conns 8 --secs "$SECS" --mode logins)
echo "$logins"
summary+=("logins (PBKDF2 10,000 iterations + journal): $(echo "$logins" | field rps)/s, p99 $(echo "$logins" | field p99_us) us")
kill -TERM "$spid"
wait "$spid" || true
spid=""
# Idle memory on a fresh server each time (a used heap would flatter the growth): one
# account's logins paced 256 at a time, then sent all at once, then all at once spread
# over IDLE accounts (registered first; the baseline is read after that).
for run in "256 0" "0 0" "0 $IDLE"; do
    read -r inflight accounts <<<"$run"
    name="idle$inflight-$accounts"
    server 7602 "$name" 1000
    ipid=$!
    ipw=$(password "$name")
    idle=$(run --addr 127.0.0.1:7602 --password "$ipw" --conns "$IDLE" --secs "$SECS" \
        --mode idle --server-pid "$ipid" --in-flight "$inflight" --accounts "$accounts")
    echo "$idle"
    how=$([ "$inflight" = 0 ] && echo "all logins at once" || echo "logins $inflight at a time")
    who=$([ "$accounts" = 0 ] && echo "one account" || echo "$accounts accounts")
    summary+=("idle, $IDLE sessions ($who, $how): $(echo "$idle" | field bytes_per_session) bytes of RSS per session (target <= 512), $(echo "$idle" | field cpu_pct)% of a core (target < 1)")
    kill -TERM "$ipid"
    wait "$ipid" || true
    ipid=""
done

echo
printf '%s\n' "${summary[@]}"
