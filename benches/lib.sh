# Shared by the bench scripts (sourced, from the repository's top): a scratch directory
# cleaned up on exit, servers started with the load generator's limits opened, and the
# readings every script takes.
bin=target/release
dir=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

# start_server NAME PORT ITERATIONS [MORE OPTIONS...]: a sessiond (SESSIOND, else this
# build) on 127.0.0.1:PORT with data in $dir/NAME: one account's many sessions and the
# logins of one address need the limits opened (MAX_SESSIONS per account, 0: none), long
# heartbeat timeouts let idle sessions stay idle. Sets SPID and SPW (the first admin's
# password).
start_server() {
    local name=$1 port=$2 iterations=$3
    shift 3
    RUST_LOG=${RUST_LOG:-error} "${SESSIOND:-$bin/sessiond}" --listen "127.0.0.1:$port" \
        --data-dir "$dir/$name" --iterations "$iterations" --max-sessions-per-user "${MAX_SESSIONS:-0}" \
        --login-burst 1000000 --login-rate 1000000 --address-hashes 100000 \
        --max-connections-per-address 20000 --max-connections 20000 --login-timeout 120s \
        --heartbeat-interval 300s --heartbeat-timeout 900s "$@" \
        >>"$dir/$name.out" 2>>"$dir/$name.err" &
    SPID=$!
    PIDS+=("$SPID")
    for _ in $(seq 100); do
        grep -q "listening" "$dir/$name.out" "$dir/$name.err" 2>/dev/null && break
        sleep 0.1
    done
    SPW=$(awk '/password:/ {print $2}' "$dir/$name.out" | head -1)
    grep -q "listening" "$dir/$name.out" || { echo "$name did not start:"; cat "$dir/$name.err"; exit 1; }
}

# stop_server PID: SIGTERM, and wait for it to exit.
stop_server() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# field NAME: a number from the JSON line on stdin.
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
# ticks PID: the process's CPU time so far (user + system, in clock ticks).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# median: the median of the numbers on stdin, one per line.
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
