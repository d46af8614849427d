#!/usr/bin/env bash
# `make demo`: the main job — the quickstart scenario: a mixed fleet of the four shipped
# profiles (light bulbs and Raspberry Pis on the Azure dialect; light bulbs, thermostats with a
# classic and a named shadow, and MXChip DevKits on the AWS dialect) against the hub embedded in
# the twinfleet process, with a live progress line, a summary at the end, and the reports
# (summary.json, junit.xml, report.html) in reports/quickstart-<time>/. Ctrl-C ends it early and
# still reports. DEMO_DURATION=30s shortens it.
set -euo pipefail
cd "$(dirname "$0")/.."
cli=build/twinfleet
"$cli" --version
report="reports/quickstart-$(date -u +%Y%m%dT%H%M%SZ)"
args=(run scenarios/quickstart.yaml --report-dir "$report")
if [[ -n "${DEMO_DURATION:-}" ]]; then args+=(--duration "$DEMO_DURATION"); fi
set +e
"$cli" "${args[@]}"
code=$?
set -e
# 99: the run went through but a threshold of the scenario failed (the lines above say which).
# That is a result worth showing, not a broken demo.
if [[ $code -eq 99 ]]; then
  echo "demo: a threshold failed on this machine (see above); the reports are in $report"
  exit 0
fi
exit $code
