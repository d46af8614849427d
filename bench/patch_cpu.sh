#!/usr/bin/env bash
# bench/patch_cpu.sh BINARY [EXTRA RUN ARGS]: 2,000 Azure devices reporting every 50 ms (40,000
# reported patches/s offered) against a separate hub for 14 s; over 5 s in the middle, the run's
# and the hub's CPU per reported patch (/proc/PID/stat) and context switches per second (every
# thread's /proc/PID/task/*/status). Run it for two binaries, or two settings, alternating in one
# invocation: the host's speed moves these figures by half within an hour (bench/README.md,
# stop 14). HUB=… the hub's binary (default build/twinfleet). Example:
#   for i in 1 2 3; do for g in 0 1ms; do bench/patch_cpu.sh build/twinfleet --wake-grid $g; done; done
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1; shift
. "$here/lib.sh"
report_bench "${HUB:-$here/../build/twinfleet}"
"$bin" run "$dir/s.yaml" --duration 14s --metrics-listen off --report-dir "$dir/rep" "$@" > "$dir/run.log" 2>&1 &
run=$!
sleep 5
switches() { local s=0; for t in /proc/$1/task/*; do s=$((s + $(awk '/ctxt_switches/{n+=$2} END{print n}' "$t/status"))); done; echo $s; }
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
r0=$(switches $run); h0=$(switches $hub); rc0=$(cpu $run); hc0=$(cpu $hub)
sleep 5
r1=$(switches $run); h1=$(switches $hub); rc1=$(cpu $run); hc1=$(cpu $hub)
wait $run || true
run=
python3 - "$dir/run.log" "$r1" "$r0" "$h1" "$h0" "$rc1" "$rc0" "$hc1" "$hc0" "$(getconf CLK_TCK)" "$*" <<'PY'
import re, sys
log, r1, r0, h1, h0, rc1, rc0, hc1, hc0, tck = sys.argv[1], *map(int, sys.argv[2:11])
rows = [int(m.group(2)) for m in (re.match(r'^\[ *(\d+)s.*reported (\d+)/s', l) for l in open(log)) if m and 6 <= int(m.group(1)) <= 10]
if not rows:
    sys.exit("patch_cpu: no progress lines in the run's output")
rate = sum(rows) / len(rows)
us = lambda ticks: ticks / tck * 1e6 / (rate * 5)
print(f"{sys.argv[11] or '(defaults)':24s} rate {rate:6.0f}/s | run {us(rc1 - rc0):5.1f} us/patch, {(r1 - r0) / 5:6.0f} switches/s"
      f" | hub {us(hc1 - hc0):5.1f} us/patch, {(h1 - h0) / 5:6.0f} switches/s")
PY
grep -E "^  reported_patch " "$dir/run.log" | tail -1
