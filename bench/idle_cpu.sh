#!/usr/bin/env bash
# (bench/idle_cpu.sh BINARY [N]: run it for a baseline binary and a new one in the same invocation.)
# idle CPU of a run of N idle Azure devices against a separate hub: CPU seconds of the run
# process (and of the hub beside it) over a 10 s window once all are connected. $1: twinfleet
# binary for the run; HUB=… the hub's binary (default build/twinfleet).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1; n=${2:-5000}
dir=$(mktemp -d)
${HUB:-$here/../build/twinfleet} hub --certs $dir/hub --listen-mqtt 127.0.0.1:0 --listen-http 127.0.0.1:0 --listen-mqtts 127.0.0.1:0 --listen-https 127.0.0.1:0 > $dir/hub.log 2>&1 &
hub=$!
for i in $(seq 1 100); do grep -q "ready" $dir/hub.log && break; sleep 0.1; done
sed "s|hub_json: hub.json|hub_json: $dir/hub/hub.json|; s|../profiles/bench-idle.yaml|$here/profiles/bench-idle.yaml|" $here/scenarios/bench-connect.yaml > $dir/s.yaml
$bin run $dir/s.yaml --devices $n --duration 30s --quiet --metrics-listen off > $dir/run.log 2>&1 &
run=$!
sleep 12
t0=$(awk '{print $14+$15}' /proc/$run/stat); h0=$(awk '{print $14+$15}' /proc/$hub/stat); sleep 10
t1=$(awk '{print $14+$15}' /proc/$run/stat); h1=$(awk '{print $14+$15}' /proc/$hub/stat)
rss=$(grep VmRSS /proc/$run/status | awk '{print $2}')
ticks=$((t1 - t0)); hub_ticks=$((h1 - h0))  # clock ticks of 1/100 s over 10 s: 1,000 would be a whole core
echo "$bin n=$n idle_cpu=$((ticks / 10)).$((ticks % 10)) % of a core ($ticks ticks in 10 s) rss_kb=$rss" \
  "hub_idle_cpu=$((hub_ticks / 10)).$((hub_ticks % 10)) %"
kill -INT $run; wait $run || true; kill $hub; wait $hub || true; rm -rf $dir
