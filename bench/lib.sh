# bench/lib.sh: what the benchmark scripts share; source it (. "$here/lib.sh").

# start_hub BINARY FOLDER [HUB ARGS…]: a hub with plain MQTT and HTTP on 127.0.0.1 (ports the
# kernel picks, written to FOLDER/hub/hub.json), TLS listeners off, its log in FOLDER/hub.log.
# Sets hub_pid and returns once the hub says it is ready (at most 10 s).
start_hub() {
  local bin=$1 folder=$2
  shift 2
  "$bin" hub --certs "$folder/hub" --listen-mqtt 127.0.0.1:0 --listen-http 127.0.0.1:0 --listen-mqtts off \
    --listen-https off "$@" > "$folder/hub.log" 2>&1 &
  hub_pid=$!
  for _ in $(seq 1 100); do grep -q "ready" "$folder/hub.log" && return 0; sleep 0.1; done
  echo "start_hub: the hub did not get ready in 10 s (see $folder/hub.log)" >&2
  return 1
}

# report_scenario HUB_FOLDER PROFILE OUT: bench/scenarios/bench-report.yaml (Azure devices
# reporting every 50 ms) pointed at the hub of HUB_FOLDER (start_hub's FOLDER) and at PROFILE.
report_scenario() {
  sed "s|hub_json: hub.json|hub_json: $1/hub/hub.json|; s|../profiles/bench-chatty.yaml|$2|" \
    "$(dirname "${BASH_SOURCE[0]}")/scenarios/bench-report.yaml" > "$3"
}

# report_bench HUB_BINARY: the setting of a benchmark of one run reporting against one hub: a work
# folder `dir`, a hub started from HUB_BINARY (`hub`, its pid), and $dir/s.yaml, the reporting
# scenario with bench-chatty.yaml pointed at it. On exit the hub and `run` (the script's run
# process, when it sets one) are stopped and the folder removed.
report_bench() {
  dir=$(mktemp -d)
  hub=
  run=
  trap 'kill $hub $run 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
  start_hub "$1" "$dir"
  hub=$hub_pid
  report_scenario "$dir" "$(dirname "${BASH_SOURCE[0]}")/profiles/bench-chatty.yaml" "$dir/s.yaml"
}
