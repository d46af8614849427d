#!/usr/bin/env bash
# bench/tls_rss.sh BINARY... : memory per idle device over MQTT/TLS — for each binary given,
# alternately, in 2 rounds: VmRSS of an N-device idle TLS run (default 2,000; N=… to change)
# minus that of a 1-device run, divided by N − 1, 12 s after the start; and the growth of the
# hub's VmRSS over the N-device run, divided by N. Each measurement starts its own hub from the
# same binary (MQTT/TLS on 127.0.0.1, the development CA), so that the hub's figure is that
# binary's too. The run's CPU per device (connect, TLS handshake, subscribe, GET, then idle) is
# printed beside, in 10 ms ticks: a coarse check, not a measurement.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
n=${N:-2000}
measure() {  # binary devices → "run-RSS-kB hub-growth-kB run-ticks"
  local bin=$1 devices=$2 dir
  dir=$(mktemp -d)
  "$bin" hub --certs "$dir/hub" --listen-mqtt off --listen-mqtts 127.0.0.1:0 --listen-http 127.0.0.1:0 --listen-https off \
    > "$dir/hub.log" 2>&1 &
  local hub=$!
  for _ in $(seq 1 100); do grep -q "ready" "$dir/hub.log" && break; sleep 0.1; done
  sed "s|hub_json: hub.json|hub_json: $dir/hub/hub.json|; s|../profiles/bench-idle.yaml|$here/profiles/bench-idle.yaml|" \
    "$here/scenarios/bench-connect.yaml" > "$dir/s.yaml"
  local hub0
  hub0=$(awk '/VmRSS/ {print $2}' /proc/$hub/status)
  "$bin" run "$dir/s.yaml" --devices "$devices" --duration 30s --quiet --metrics-listen off --set target.transport=tls \
    > "$dir/run.log" 2>&1 &
  local run=$!
  sleep 12
  echo "$(awk '/VmRSS/ {print $2}' /proc/$run/status) $(( $(awk '/VmRSS/ {print $2}' /proc/$hub/status) - hub0 )) $(awk '{print $14 + $15}' /proc/$run/stat)"
  kill -INT $run
  wait $run || true
  kill $hub
  wait $hub || true
  rm -rf "$dir"
}
for round in 1 2; do
  for bin in "$@"; do
    read -r one _ ticks_one <<< "$(measure "$bin" 1)"
    read -r many hub_growth ticks_many <<< "$(measure "$bin" "$n")"
    echo "$bin round $round: run $(( (many - one) * 1024 / (n - 1) )) B per TLS device, hub $(( hub_growth * 1024 / n )) B per connection," \
      "run CPU ~$(( (ticks_many - ticks_one) * 10000 / n )) us per device"
  done
done
