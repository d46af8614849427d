#!/usr/bin/env bash
# bench/syscalls.sh BINARY [EXTRA RUN ARGS]: the system calls a reported patch costs. 2,000
# Azure devices report every 50 ms (40,000 patches/s) against a hub of the same binary for 10 s;
# over 2 s in the middle, perf counts each process's recvfrom, recvmsg, sendto, epoll_ctl, epoll_wait and
# timerfd_settime calls (syscall tracepoints; needs perf and tracefs), printed per second and
# per patch. Counts do not depend on the host's speed, unlike CPU times.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1; shift
command -v perf > /dev/null || { echo "syscalls.sh: needs perf (Debian: linux-perf)" >&2; exit 2; }
. "$here/lib.sh"
report_bench "$bin"
"$bin" run "$dir/s.yaml" --duration 10s --metrics-listen off --report-dir "$dir/rep" "$@" > "$dir/run.log" 2>&1 &
run=$!
sleep 5
events=syscalls:sys_enter_recvfrom,syscalls:sys_enter_recvmsg,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_timerfd_settime
perf stat -x, -e "$events" -p "$run" -o "$dir/run.stat" -- sleep 2 &
perf stat -x, -e "$events" -p "$hub" -o "$dir/hub.stat" -- sleep 2 &
wait %2 %3
wait $run || true
run=
python3 - "$dir" <<'PY'
import re, sys
d = sys.argv[1]
rows = [int(m.group(2)) for m in (re.match(r'^\[ *(\d+)s.*reported (\d+)/s', l) for l in open(f"{d}/run.log")) if m and 5 <= int(m.group(1)) <= 8]
rate = sum(rows) / len(rows) if rows else 0
print(f"reported patches: {rate:.0f}/s")
for p in ("run", "hub"):
    for line in open(f"{d}/{p}.stat"):
        f = line.strip().split(",")
        if len(f) > 2 and f[2].startswith("syscalls:"):
            n = float(f[0]) / 2 if f[0][0].isdigit() else float("nan")
            print(f"{p}  {f[2].split(':')[1][10:]:16s} {n:8.0f}/s  {n / rate if rate else float('nan'):5.2f} per patch")
PY
