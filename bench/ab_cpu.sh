#!/usr/bin/env bash
# bench/ab_cpu.sh BINARY_A BINARY_B [DEVICES]: two binaries measured at the same time. Each runs
# its own hub and a run of DEVICES Azure devices (default 1,000) reporting every 50 ms (20,000
# patches/s each, 40,000 in all) for 14 s; over 5 s in the middle, each run's and each hub's CPU
# per reported patch (/proc/PID/stat). Both pairs share whatever the host gives this machine in
# those seconds, so the difference between them survives the host's changes of speed, which
# move each figure by half within an hour (bench/README.md, stops 14 and 15). Alternate the
# order between invocations: for i in 1 2 3; do bench/ab_cpu.sh A B; bench/ab_cpu.sh B A; done
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bins=("$1" "$2")
devices=${3:-1000}
. "$here/lib.sh"
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
hubs=()
for i in 0 1; do
  mkdir -p "$dir/$i"
  start_hub "${bins[$i]}" "$dir/$i"
  pids+=("$hub_pid")
  hubs+=("$hub_pid")
  report_scenario "$dir/$i" "$here/profiles/bench-chatty.yaml" "$dir/s$i.yaml"
done
runs=()
for i in 0 1; do
  "${bins[$i]}" run "$dir/s$i.yaml" --devices "$devices" --duration 14s --metrics-listen off --report-dir "$dir/rep$i" > "$dir/run$i.log" 2>&1 &
  pids+=($!)
  runs+=($!)
done
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
sleep 5
before=("$(cpu "${runs[0]}")" "$(cpu "${hubs[0]}")" "$(cpu "${runs[1]}")" "$(cpu "${hubs[1]}")")
sleep 5
after=("$(cpu "${runs[0]}")" "$(cpu "${hubs[0]}")" "$(cpu "${runs[1]}")" "$(cpu "${hubs[1]}")")
wait "${runs[@]}" || true
python3 - "$(getconf CLK_TCK)" "$dir" "${bins[@]}" "${before[@]}" "${after[@]}" <<'PY'
import re, sys
tck, d, a, b = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
before, after = list(map(int, sys.argv[5:9])), list(map(int, sys.argv[9:13]))
def rate(i):
    rows = [int(m.group(2)) for m in (re.match(r'^\[ *(\d+)s.*reported (\d+)/s', l) for l in open(f"{d}/run{i}.log")) if m and 6 <= int(m.group(1)) <= 10]
    if not rows:
        sys.exit(f"ab_cpu: no progress lines in run {i}'s output")
    return sum(rows) / len(rows)
for i, name in enumerate((a, b)):
    r = rate(i)
    us = lambda k: (after[k] - before[k]) / tck * 1e6 / (r * 5)
    print(f"{name:40s} rate {r:6.0f}/s | run {us(2 * i):5.1f} us/patch | hub {us(2 * i + 1):5.1f} us/patch")
PY
