#!/usr/bin/env bash
# bench/hub_timer.sh HUB_BINARY: a hub delaying Azure twin responses by 50 ms (a delivery fault)
# while 100 devices report every second (100 delayed deliveries a second) for 12 s; the hub's
# CPU over 5 s in the middle, and the run's reported_patch row (count, errors, min, p50, p99,
# max in ms). The run is build/twinfleet. Give it the old and the new hub binary in turn.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
hubbin=$1
dir=$(mktemp -d)
printf 'faults:\n  delivery:\n    - { kinds: [azure.twin_response], delay: 50ms }\n' > $dir/hub.yaml
$hubbin hub --certs "$dir/hub" --config $dir/hub.yaml --listen-mqtt 127.0.0.1:0 --listen-http 127.0.0.1:0 --listen-mqtts off --listen-https off > "$dir/hub.log" 2>&1 &
hub=$!
trap 'kill $hub 2>/dev/null || true; wait $hub 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do grep -q "ready" "$dir/hub.log" && break; sleep 0.1; done
sed "s|every: 50ms|every: 1s|" "$here/profiles/bench-chatty.yaml" > "$dir/p.yaml"
sed "s|hub_json: hub.json|hub_json: $dir/hub/hub.json|; s|../profiles/bench-chatty.yaml|$dir/p.yaml|" "$here/scenarios/bench-report.yaml" > "$dir/s.yaml"
$here/../build/twinfleet run "$dir/s.yaml" --devices 100 --duration 12s --metrics-listen off --quiet > "$dir/run.log" 2>&1 &
run=$!
sleep 5
c0=$(awk '{print $14+$15}' /proc/$hub/stat)
sleep 5
c1=$(awk '{print $14+$15}' /proc/$hub/stat)
wait $run || true
echo "hub CPU $(( (c1 - c0) * 100 / 5 / $(getconf CLK_TCK) )).$(( ((c1 - c0) * 1000 / 5 / $(getconf CLK_TCK)) % 10 )) % over 5 s; $(grep -E '^  reported_patch ' $dir/run.log)"
