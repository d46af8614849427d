#!/usr/bin/env bash
# `make bench`: runs every benchmark program under build/bench/ and prints their tables.
# Benchmarks report medians of repeated runs and ratios against a baseline measured in the
# same invocation, because these machines are shared and noisy.
set -euo pipefail
build_dir=${1:-build}
shopt -s nullglob
found=0
for program in "$build_dir"/bench/*_bench; do
  [ -x "$program" ] || continue
  found=1
  echo "== $(basename "$program")"
  if [ "$(basename "$program")" = hub_bench ]; then
    # The closed loop (defaults), then a short open-model sweep: fixed offered rates with
    # latency measured from each request's intended start (see bench/hub_bench.cpp).
    "$program" --twinfleet "$build_dir/twinfleet"
    echo
    "$program" --twinfleet "$build_dir/twinfleet" --devices 200 --seconds 3 --sweep 5000,10000,20000,30000
  elif [ "$(basename "$program")" = fleet_bench ]; then
    # `twinfleet run` vs the official Node SDK on one hub (bench/README.md, "Fleet engine"): a
    # short variant by default (~2 min); FLEET_BENCH_FULL=1 runs the issue's sizes (19,500
    # devices, 3 repetitions, ~10 min). The SDKs: the conformance tests' pinned install.
    sdks="$build_dir/conformance-sdks"
    sdk_args=(--node-modules "$sdks/node_modules")
    bash tests/conformance/install.sh "$sdks" >/dev/null || sdk_args=(--no-sdk)
    size=(--quick)
    [ "${FLEET_BENCH_FULL:-0}" = 1 ] && size=()
    "$program" --twinfleet "$build_dir/twinfleet" --scenarios bench/scenarios --node-script bench/node/sdk_bench.js \
      "${sdk_args[@]}" "${size[@]}"
  else
    "$program"
  fi
  echo
done
if [ "$found" = 0 ]; then
  echo "bench: no benchmark programs in $build_dir/bench (build with TWINFLEET_BUILD_BENCH=ON)" >&2
  exit 1
fi
