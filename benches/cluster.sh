#!/usr/bin/env bash
# Nodes on PostgreSQL (--cluster) against the embedded journal, in one sitting (issue 22):
# logins per second with their latency (PBKDF2 at 1,000 iterations, so that the store's
# share shows) and heartbeat round trips per second, for the embedded journal, one node,
# and two nodes serving at once (the load split over both), each set of runs alternating
# which goes first; then the takeover latency (examples/takeover.rs): a login on one node
# revoking the account's connection on another, against the same on one node. Starts its
# own throwaway PostgreSQL (initdb and pg_ctl in the scratch directory; as the postgres
# user when run as root), with fsync on, as a real one runs.
#
#     bash benches/cluster.sh                       # ROUNDS=3 SECS=5 CONNS=8 TAKEOVERS=300
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh
SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-8}
TAKEOVERS=${TAKEOVERS:-300}
cargo build -q --release --bin sessiond --example loadgen --example takeover
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
start_server node-a 7641 1000 --cluster "$url" --node-id a
APID=$SPID CPW=$SPW

# load NAME MODE PORT...: the load split over the ports (one load generator each, at
# once); prints the summed rate, the worst p50 and p99, and the servers' CPU per operation.
load() {
    local name=$1 mode=$2
    shift 2
    local ports=("$@") n=$# pids=() lgs=() t0=0 t1=0 pw
    for p in "${ports[@]}"; do pids+=("$(pid_of "$p")"); done
    for p in "${pids[@]}"; do t0=$((t0 + $(ticks "$p"))); done
    local i=0
    for port in "${ports[@]}"; do
        pw=$CPW; [ "$port" = 7640 ] && pw=$EPW
        if [ "$mode" = logins ]; then
            "$lg" --addr "127.0.0.1:$port" --password "$pw" --conns $((CONNS / n)) --secs "$SECS" --mode logins | tail -1 >"$dir/out.$i" &
            lgs+=($!)
        else
            "$lg" --addr "127.0.0.1:$port" --password "$pw" --conns $((100 / n)) --secs "$SECS" | tail -1 >"$dir/out.$i" &
            lgs+=($!)
        fi
        i=$((i + 1))
    done
    wait "${lgs[@]}"
    for p in "${pids[@]}"; do t1=$((t1 + $(ticks "$p"))); done
    local r=0 p50=0 p99=0 v
    for j in $(seq 0 $((n - 1))); do
        v=$(field rps <"$dir/out.$j"); r=$(awk -v a="$r" -v b="$v" 'BEGIN { print a + b }')
        v=$(field p50_us <"$dir/out.$j"); [ "${v%.*}" -gt "$p50" ] && p50=${v%.*}
        v=$(field p99_us <"$dir/out.$j"); [ "${v%.*}" -gt "$p99" ] && p99=${v%.*}
    done
    awk -v n="$name" -v m="$mode" -v r="$r" -v p50="$p50" -v p99="$p99" -v t=$((t1 - t0)) \
        -v s="$SECS" -v hz="$hz" \
        'BEGIN { printf "%-9s %-9s %8.0f/s  p50 %6d us  p99 %6d us  server CPU %.1f us each\n", n, m, r, p50, p99, t * 1e6 / hz / (r * s) }'
}
pid_of() { case $1 in 7640) echo "$EPID" ;; 7641) echo "$APID" ;; 7642) echo "$BPID" ;; esac; }

echo "== the embedded journal and one node"
for mode in logins pingpong; do
    for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then load embedded "$mode" 7640; load one-node "$mode" 7641
        else load one-node "$mode" 7641; load embedded "$mode" 7640; fi
    done
done

start_server node-b 7642 1000 --cluster "$url" --node-id b
BPID=$SPID
echo "== the embedded journal and two nodes serving at once (the load split over both)"
for mode in logins pingpong; do
    for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then load embedded "$mode" 7640; load two-nodes "$mode" 7641 7642
        else load two-nodes "$mode" 7641 7642; load embedded "$mode" 7640; fi
    done
done

# Takeovers need one session per account: the nodes again, with the limit at 1.
stop_server "$APID"; stop_server "$BPID"
MAX_SESSIONS=1 start_server node-a1 7643 1000 --cluster "$url" --node-id a1
A1=$SPID
to=target/release/examples/takeover
echo "== takeover latency (us, from the new LOGIN_REQUEST), $TAKEOVERS takeovers each"
printf 'one node alone:          '; SESSIOND_PASSWORD=$CPW "$to" --first 127.0.0.1:7643 --second 127.0.0.1:7643 --rounds "$TAKEOVERS"
MAX_SESSIONS=1 start_server node-b1 7644 1000 --cluster "$url" --node-id b1
for r in $(seq "$ROUNDS"); do
    printf 'across two nodes:        '; SESSIOND_PASSWORD=$CPW "$to" --first 127.0.0.1:7643 --second 127.0.0.1:7644 --rounds "$TAKEOVERS"
    printf 'one node of two:         '; SESSIOND_PASSWORD=$CPW "$to" --first 127.0.0.1:7643 --second 127.0.0.1:7643 --rounds "$TAKEOVERS"
done
stop_server "$A1"
