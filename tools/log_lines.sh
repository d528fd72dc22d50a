#!/usr/bin/env bash
# Log volume of `radar up` with 1,000 simulated CWMP devices: lines per minute once they are
# settled, idle (periodic inform every hour) or busy (every 10 s = 100 informs/s).
# usage: tools/log_lines.sh LABEL PERIODIC [RUST_LOG]    (RADAR_BIN picks the binary)
set -euo pipefail
label=$1; periodic=$2; filter=${3:-}
bin=${RADAR_BIN:-target/release/radar}
dir=$(mktemp -d)
if [ -n "$filter" ]; then export RUST_LOG=$filter; fi
"$bin" up --data-dir "$dir/data" --cwmp-listen 127.0.0.1:27547 --usp-listen 127.0.0.1:27548 \
    --api-listen 127.0.0.1:27557 --grpc-listen 127.0.0.1:27560 2> "$dir/radar.log" > /dev/null &
radar=$!
sleep 3
unset RUST_LOG
"$bin" sim --acs http://127.0.0.1:27547/ --count 1000 --periodic "$periodic" --spread 20s \
    > /dev/null 2>&1 &
sim=$!
sleep 60   # bootstrap and settle
before=$(wc -l < "$dir/radar.log")
sleep 60
after=$(wc -l < "$dir/radar.log")
echo "$label periodic=$periodic filter=${filter:-default} startup_and_bootstrap_lines=$before lines_per_min=$((after - before))"
kill "$sim" "$radar"
wait "$sim" "$radar" 2>/dev/null || true
rm -rf "$dir"
