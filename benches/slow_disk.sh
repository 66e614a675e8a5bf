#!/usr/bin/env bash
# What a slow disk does (issue 16, point 8): a server whose every journal commit takes
# DELAY ms longer (examples/slowdisk.rs), under a login storm beside heartbeating
# connections; once with the bound on what waits for the disk (the default, 50,000
# events) and once without (0). Prints the heartbeat p99 calm and during the storm, the
# storm's logins and refusals, and the server's peak RSS.
#
#     bash benches/slow_disk.sh     # DELAY=200 SECS=10 STORM=32 BOUNDS="50000 0"
set -euo pipefail
cd "$(dirname "$0")/.."
DELAY=${DELAY:-200}
SECS=${SECS:-10}
STORM=${STORM:-32}
cargo build -q --release --example slowdisk --example loadgen
bin=target/release/examples
dir=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
rss() { awk '/^'"$2"':/ {print $2}' "/proc/$1/status"; }
for bound in ${BOUNDS:-50000 0}; do
    "$bin/slowdisk" --listen 127.0.0.1:7481 --data-dir "$dir/$bound" --commit-delay-ms "$DELAY" \
        --max-undurable-events "$bound" >"$dir/$bound.out" 2>"$dir/$bound.err" &
    pid=$!
    for _ in $(seq 100); do grep -q "listening" "$dir/$bound.out" 2>/dev/null && break; sleep 0.1; done
    pw=$(awk '/password:/ {print $2}' "$dir/$bound.out")
    calm=$("$bin/loadgen" --addr 127.0.0.1:7481 --password "$pw" --conns 50 --secs "$SECS" | tail -1)
    before=$(rss "$pid" VmRSS)
    storm=$("$bin/loadgen" --addr 127.0.0.1:7481 --password "$pw" --conns 50 --secs "$SECS" \
        --storm "$STORM" | tail -1)
    peak=$(rss "$pid" VmHWM)
    echo "bound $bound: calm $calm"
    echo "bound $bound: storm $storm"
    echo "bound $bound: heartbeat p99 calm $(echo "$calm" | field p99_us) us, during the storm $(echo "$storm" | field p99_us) us; storm logins $(echo "$storm" | field logins), errors $(echo "$storm" | field errors); server RSS $before kB before the storm, peak $peak kB"
    kill -TERM "$pid"
    wait "$pid" || true
    pid=""
done
