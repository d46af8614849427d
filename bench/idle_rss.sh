#!/usr/bin/env bash
# bench/idle_rss.sh BINARY... : RSS per idle device of `twinfleet run` — VmRSS of an N-device idle
# run (default 4,000; N=… to change) minus that of a 1-device run, divided by N − 1, 8 s after the
# start — for each binary given, alternately, in 2 rounds, against one separate hub (plain MQTT
# on 127.0.0.1). Give the old and the new binary to compare them in one invocation.
# The hub is build/twinfleet unless HUB=… names another binary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
hub_bin=${HUB:-$here/../build/twinfleet}
n=${N:-4000}
dir=$(mktemp -d)
"$hub_bin" hub --certs "$dir/hub" --listen-mqtt 127.0.0.1:0 --listen-http 127.0.0.1:0 --listen-mqtts 127.0.0.1:0 \
  --listen-https 127.0.0.1:0 > "$dir/hub.log" 2>&1 &
hub=$!
trap 'kill $hub 2>/dev/null || true; wait $hub 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do grep -q "ready" "$dir/hub.log" && break; sleep 0.1; done
sed "s|hub_json: hub.json|hub_json: $dir/hub/hub.json|; s|../profiles/bench-idle.yaml|$here/profiles/bench-idle.yaml|" \
  "$here/scenarios/bench-connect.yaml" > "$dir/s.yaml"
measure() {  # binary devices → VmRSS in kB after 8 s
  "$1" run "$dir/s.yaml" --devices "$2" --duration 20s --quiet --metrics-listen off > "$dir/run.log" 2>&1 &
  local run=$!
  sleep 8
  local rss
  rss=$(awk '/VmRSS/ {print $2}' /proc/$run/status)
  kill -INT $run
  wait $run || true
  echo "$rss"
}
for round in 1 2; do
  for bin in "$@"; do
    one=$(measure "$bin" 1)
    many=$(measure "$bin" "$n")
    echo "$bin round $round: 1 device ${one} kB, $n devices ${many} kB, per device $(( (many - one) * 1024 / (n - 1) )) B"
  done
done
